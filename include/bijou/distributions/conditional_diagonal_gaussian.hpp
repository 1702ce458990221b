// bijou/distributions/conditional_diagonal_gaussian.hpp — a diagonal Gaussian base whose mean and
// log-scale come from the context: p(z | c) = N(loc(c), diag exp(2·log_scale(c))).
//
// Recipe `ConditionalDiagonalGaussian<Ctx>` (Ctx = Shape<K>, core/context.hpp), bound to any event
// shape S; it acts on the flattened event of D = S::size values. For each sample i,
//   [loc_i | log_scale_i] = net(c_i),   net: K → hidden → … → 2D, a ReLU MLP (nn/mlp.hpp) with
//   Options::hidden and Options::hidden_layers, its output layer zero at reset (so the base starts as
//   N(0, I), like the unconditional DiagonalGaussian), and then
//   log p(z_i | c_i) = Σ_j [ −½ u_ij² − log_scale_ij ] − (D/2)·log 2π,  u_ij = (z_ij − loc_ij)·exp(−log_scale_ij)
//   backward, for dlp_i = ∂L/∂log p(z_i | c_i):
//     dz_ij = −dlp_i·u_ij·exp(−log_scale_ij)  (assigned),  ∂L/∂loc_ij = −dz_ij,  ∂L/∂log_scale_ij = dlp_i·(u_ij² − 1),
//     then through the net: its parameter gradients +=, and ∂L/∂c added into the model's context gradient.
//   sample: z_i = loc_i + temperature·exp(log_scale_i) ⊙ ε_i,  ε ~ N(0, I) (sample-major draws).
// Parameters: "net.0.weight" (hidden, K), …, "net.<2·hidden_layers>.weight" (2D, hidden) and biases.
// Memory: the net runs on the backend's kernels in buffers this base owns (grown to the largest batch,
// so repeated calls allocate nothing); the elementwise part is host code in double on host copies
// (identity copies on a host backend), as in DiagonalGaussian. backward recomputes the net's forward
// (cheap next to the flow), so it needs nothing from an earlier log_prob.
// Cost: the net, O(n·(K·hidden + (hidden_layers − 1)·hidden² + hidden·2D)), plus O(n·D) elementwise.
#pragma once

#include <cmath>
#include <cstddef>
#include <numbers>
#include <string>
#include <string_view>

#include "bijou/core/concepts.hpp"
#include "bijou/core/context.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/mirror.hpp"
#include "bijou/nn/mlp.hpp"

namespace bijou {

template <EventShape S, Scalar T, Backend B, class Ctx>
class ConditionalDiagonalGaussianDistribution : public conditional_on<Ctx> {
public:
    using event_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int D = S::size, K = Ctx::size;

    explicit ConditionalDiagonalGaussianDistribution(BuildContext& ctx) : context_(ctx.template context<T>()) {
        const Options& o = ctx.options();
        if (o.hidden < 1 || o.hidden_layers < 1)
            throw invalid_argument("ConditionalDiagonalGaussian: Options::hidden and Options::hidden_layers must be at "
                                   "least 1 (got " + std::to_string(o.hidden) + " and " +
                                   std::to_string(o.hidden_layers) + ")");
        hidden_ = o.hidden, hidden_layers_ = o.hidden_layers;
        net_ = Mlp<T, B>(K, o.hidden, o.hidden_layers, 2 * D);
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        net_.declare(ps, join_name(prefix, "net"));
        ps.add_setting(join_name(prefix, "hidden"), std::to_string(hidden_));
        ps.add_setting(join_name(prefix, "hidden_layers"), std::to_string(hidden_layers_));
    }

    void reset_parameters(Rng& rng) { net_.reset_parameters(rng, /*zero_last=*/true); }

    /// lp[i] = log p(z_i | c_i) (assigned).
    void log_prob(const T* z, double* lp, int n) const {
        const T* out = run_net(n);
        const double c0 = -0.5 * D * std::log(2.0 * std::numbers::pi);
        const T* zh = z_host_.in(z, std::size_t(n) * D);
        double* lph = lp_host_.out(lp, std::size_t(n));
        for (int i = 0; i < n; ++i) {
            const T* row = out + std::size_t(i) * 2 * D;
            double acc = c0;
            for (int j = 0; j < D; ++j) {
                const double ls = double(row[D + j]);
                const double u = (double(zh[std::size_t(i) * D + j]) - double(row[j])) * std::exp(-ls);
                acc += -0.5 * u * u - ls;
            }
            lph[i] = acc;
        }
        lp_host_.finish(lp, std::size_t(n));
    }

    /// dz = dlp[i]·∇_z log p(z_i | c_i) (assigned); net gradients +=; ∂L/∂c added to the context gradient.
    void backward(const T* z, const T* dlp, T* dz, int n) {
        const std::size_t nd = std::size_t(n) * D;
        const T* out = run_net(n);
        const T* zh = z_host_.in(z, nd);
        const T* w = dlp_host_.in(dlp, std::size_t(n));
        T* dzh = dz_host_.out(dz, nd);
        T* douth = dout_host_.out(dout_.data(), 2 * nd);
        for (int i = 0; i < n; ++i) {
            const T* row = out + std::size_t(i) * 2 * D;
            T* drow = douth + std::size_t(i) * 2 * D;
            for (int j = 0; j < D; ++j) {
                const double ls = double(row[D + j]), inv_s = std::exp(-ls);
                const double u = (double(zh[std::size_t(i) * D + j]) - double(row[j])) * inv_s;
                const double g = double(w[i]) * u * inv_s;
                dzh[std::size_t(i) * D + j] = T(-g);
                drow[j] = T(g);
                drow[D + j] = T(double(w[i]) * (u * u - 1.0));
            }
        }
        dz_host_.finish(dz, nd);
        dout_host_.finish(dout_.data(), 2 * nd);
        const T* c = context_.values(n, "ConditionalDiagonalGaussian");
        T* dc = context_.grad();
        net_.backward(c, dout_.data(), dc ? dc_.data() : nullptr, n, ws_.data());
        if (dc != nullptr) accumulate(B{}, dc, dc_.data(), std::size_t(n) * K);
    }

    /// n samples of p(z | c) (the same draws from rng on every backend).
    void sample(T* z, int n, double temperature, Rng& rng) const {
        const T* out = run_net(n);
        T* zh = z_host_.out(z, std::size_t(n) * D);
        for (int i = 0; i < n; ++i)
            for (int j = 0; j < D; ++j) {
                const T* row = out + std::size_t(i) * 2 * D;
                const double s = std::exp(double(row[D + j]));
                zh[std::size_t(i) * D + j] = T(double(row[j]) + temperature * s * rng.normal());
            }
        z_host_.finish(z, std::size_t(n) * D);
    }

    /// The net c → [loc | log_scale].
    const Mlp<T, B>& net() const { return net_; }

private:
    /// The net's output [loc | log_scale] (n × 2D) for the current context, readable on the host.
    const T* run_net(int n) const {
        const T* c = context_.values(n, "ConditionalDiagonalGaussian");
        grow(n);
        net_.forward(c, out_.data(), n, ws_.data());
        return out_host_.in(out_.data(), std::size_t(n) * 2 * D);
    }
    void grow(int n) const {
        if (n <= capacity_) return;
        const std::size_t nn = std::size_t(n);
        out_.assign_zeros(nn * 2 * D);
        dout_.assign_zeros(nn * 2 * D);
        dc_.assign_zeros(nn * K);
        ws_.assign_zeros(net_.workspace_size(n));
        capacity_ = n;
    }

    ContextRef<T> context_;
    int hidden_ = 0, hidden_layers_ = 0;
    Mlp<T, B> net_;
    // the net's buffers in backend memory, grown to the largest batch (mutable: const calls use them)
    mutable Buffer<B, T> out_, dout_, dc_, ws_;
    mutable int capacity_ = 0;
    mutable HostStage<B, T> z_host_, dz_host_, dlp_host_, out_host_, dout_host_;
    mutable HostStage<B, double> lp_host_;
};

/// Recipe: a diagonal Gaussian base whose mean and log-scale are an MLP of the context Ctx = Shape<K>.
template <class Ctx>
struct ConditionalDiagonalGaussian {
    using context_shape = Ctx;
    static constexpr std::string_view name = "base";
    template <class S, class T, class B>
    using bind = ConditionalDiagonalGaussianDistribution<S, T, B, Ctx>;
};

}  // namespace bijou
