// A user's program: a bijector of its own (my::Shift) composed with bijou's ActNorm in a Flow.
//   (a) log_prob on a small batch equals the closed form;
//   (b) my::Shift passes bijou's conformance suite.
// Exits non-zero, saying why, if either fails.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <initializer_list>
#include <numbers>
#include <string>
#include <string_view>
#include <type_traits>

#include <bijou/bijou.hpp>
#include <bijou/testing/conformance.hpp>

namespace my {

/// z = x + b with a trainable bias b (one value per coordinate); log|det ∂z/∂x| = 0.
template <bijou::EventShape S, bijou::Scalar T, bijou::Backend B>
class ShiftBijector {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size;

    explicit ShiftBijector(bijou::BuildContext&) {}

    void declare(bijou::ParamSet<T>& ps, const std::string& prefix) {
        ps.add(bijou::join_name(prefix, "bias"), {std::size_t(D)}, &bias_);
    }
    void reset_parameters(bijou::Rng&) {
        for (int j = 0; j < D; ++j) bias_[std::size_t(j)] = T(0);
    }
    std::size_t workspace_size(int) const { return 0; }

    void forward(const T* x, T* z, double*, int n, T*) const {
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < D; ++j) z[std::size_t(i) * D + j] = x[std::size_t(i) * D + j] + bias_[std::size_t(j)];
    }
    void inverse(const T* z, T* x, double*, int n, T*) const {
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < D; ++j) x[std::size_t(i) * D + j] = z[std::size_t(i) * D + j] - bias_[std::size_t(j)];
    }
    // dx = dz (assigned); ∂L/∂b_j = Σ_i dz_ij (added); the log-det does not depend on anything.
    void backward(const T*, const T*, const T* dz, const T*, T* dx, int n, T*) {
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < D; ++j) {
                dx[std::size_t(i) * D + j] = dz[std::size_t(i) * D + j];
                bias_.grad[j] += dz[std::size_t(i) * D + j];
            }
    }

    const bijou::TensorRef<T>& bias() const { return bias_; }

private:
    bijou::TensorRef<T> bias_;
};

/// Recipe: a learned shift.
struct Shift {
    static constexpr std::string_view name = "shift";
    template <class S, class T, class B>
    using bind = ShiftBijector<S, T, B>;
};

static_assert(bijou::BijectorRecipe<Shift>);
static_assert(bijou::Bijector<ShiftBijector<bijou::Shape<3>, double, bijou::Cpu>>);

}  // namespace my

namespace {

int failures = 0;

void fail(const std::string& what) {
    std::fprintf(stderr, "consumer: FAILED: %s\n", what.c_str());
    ++failures;
}

/// Sets a named tensor of the model (state_dict names: "actnorm.loc", "shift.bias", ...).
template <class Model>
void set_tensor(Model& model, const std::string& name, std::initializer_list<double> values) {
    const bijou::TensorInfo* info = model.params().find(name);
    if (!info || info->size != values.size()) {
        fail("no tensor '" + name + "' of size " + std::to_string(values.size()));
        return;
    }
    auto* p = model.params().data(*info);
    for (double v : values) *p++ = static_cast<std::remove_pointer_t<decltype(p)>>(v);
}

// (a) log p(x) = log N(z; 0, I) + Σ_j log_scale_j with z = (x + loc) ⊙ exp(log_scale) + b.
void check_log_prob() {
    using Model = bijou::Flow<bijou::Shape<2>, bijou::Chain<bijou::ActNorm, my::Shift>>;
    Model flow;
    const double loc[2] = {0.5, -1.0}, log_scale[2] = {0.3, -0.2}, bias[2] = {0.25, 2.0};
    set_tensor(flow, "actnorm.loc", {loc[0], loc[1]});
    set_tensor(flow, "actnorm.log_scale", {log_scale[0], log_scale[1]});
    set_tensor(flow, "shift.bias", {bias[0], bias[1]});

    Model::data_tensor x = bijou::make_batch<float, bijou::Shape<2>>(4);
    const double xs[4][2] = {{0.0, 0.0}, {1.0, -2.0}, {-0.7, 0.4}, {2.5, 1.5}};
    for (std::size_t i = 0; i < 4; ++i)
        for (std::size_t j = 0; j < 2; ++j) x(i, j) = float(xs[i][j]);

    const auto lp = flow.log_prob(x);
    if (lp.size() != 4) return fail("log_prob returned " + std::to_string(lp.size()) + " values for 4 samples");
    for (std::size_t i = 0; i < 4; ++i) {
        double want = 0.0;
        for (std::size_t j = 0; j < 2; ++j) {
            const double z = (xs[i][j] + loc[j]) * std::exp(log_scale[j]) + bias[j];
            want += -0.5 * z * z - 0.5 * std::log(2.0 * std::numbers::pi) + log_scale[j];
        }
        const double got = double(lp(i));
        std::printf("log_prob[%zu] = %.7f (closed form %.7f)\n", i, got, want);
        if (!(std::abs(got - want) <= 1e-5 * std::max(1.0, std::abs(want))))
            fail("log_prob[" + std::to_string(i) + "] = " + std::to_string(got) + ", closed form " +
                 std::to_string(want));
    }
}

// (b) the user's bijector against bijou's conformance suite.
void check_conformance() {
    const auto report = bijou::testing::conformance<my::Shift, bijou::Shape<3>, double, bijou::Cpu>();
    std::printf("%s", report.str().c_str());
    if (!report.ok()) fail("my::Shift does not pass bijou::testing::conformance");
}

}  // namespace

int main() {
    check_log_prob();
    check_conformance();
    if (failures) return 1;
    std::printf("consumer: ok\n");
    return 0;
}
