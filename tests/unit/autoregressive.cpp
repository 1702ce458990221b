// Unit tests of MADE (nn/made.hpp) and the autoregressive flows (bijectors/autoregressive.hpp): the
// Jacobian is triangular in the chosen order, MADE's masks are autoregressive (and a checkpoint whose
// masks are not is rejected before it commits), identity at initialisation, orders, options,
// checkpoints.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>

#include <unistd.h>

namespace unit_autoregressive {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class F>
void add_noise(F& f, double sd, std::uint64_t seed) {
    Rng rng(seed);
    for (const auto& t : f.params().tensors())
        if (t.trainable)
            for (std::size_t i = 0; i < t.size; ++i) f.params().data(t)[i] += decltype(+f.params().data(t)[i])(sd * rng.normal());
}

std::string error_of(auto&& f) {
    try {
        f();
    } catch (const error& e) {
        return e.what();
    }
    return "(no error)";
}

/// z_j must not change when x_i changes, for every j whose degree is below x_i's.
template <class Recipe>
void check_triangular(const Options& o) {
    constexpr int D = 5, n = 2;
    Transform<Recipe, Shape<D>, double, Reference> f(o);
    add_noise(f, 0.3, 11);
    const std::vector<int> deg = f.bijector().degrees();
    Rng rng(3);
    std::vector<double> x(std::size_t(n) * D), z(x.size()), z2(x.size());
    for (auto& v : x) v = rng.normal();
    f.forward_raw(x.data(), z.data(), n);
    for (int i = 0; i < D; ++i) {
        auto xp = x;
        for (int s = 0; s < n; ++s) xp[std::size_t(s) * D + i] += 0.37;
        f.forward_raw(xp.data(), z2.data(), n);
        for (int s = 0; s < n; ++s)
            for (int j = 0; j < D; ++j) {
                const std::size_t k = std::size_t(s) * D + j;
                INFO("input " << i << " (degree " << deg[std::size_t(i)] << ") output " << j << " (degree "
                              << deg[std::size_t(j)] << ")");
                if (deg[std::size_t(j)] < deg[std::size_t(i)]) CHECK(z2[k] == z[k]);
                else if (j == i) CHECK(z2[k] != z[k]);
            }
    }
    // ... and some later output does depend on the first input in the order (the net is not trivial)
    const int first = int(std::find(deg.begin(), deg.end(), 1) - deg.begin());
    auto xp = x;
    xp[std::size_t(first)] += 0.37;
    f.forward_raw(xp.data(), z2.data(), n);
    int changed = 0;
    for (int j = 0; j < D; ++j) changed += j != first && z2[std::size_t(j)] != z[std::size_t(j)];
    CHECK(changed == D - 1);
}

}  // namespace

TEST_CASE("autoregressive: the Jacobian is triangular in the MADE order (MAF and IAF, affine and spline)") {
    for (MadeOrder order : {MadeOrder::natural, MadeOrder::reversed, MadeOrder::random}) {
        for (MadeDegrees hd : {MadeDegrees::cyclic, MadeDegrees::sampled}) {
            const Options o = Options{.hidden = 12, .hidden_layers = 2, .seed = 5}
                                  .with(AutoregressiveOptions{.order = order, .hidden_degrees = hd})
                                  .with(SplineOptions{.bins = 4, .bound = 2.0});
            INFO("order " << setting_name(order) << ", hidden degrees " << setting_name(hd));
            check_triangular<MaskedAutoregressive<AffineTransform>>(o);
            check_triangular<MaskedAutoregressive<RationalQuadraticTransform>>(o);
            check_triangular<InverseAutoregressive<AffineTransform>>(o);
            check_triangular<InverseAutoregressive<RationalQuadraticTransform>>(o);
        }
    }
}

TEST_CASE("autoregressive: orders give the degrees they promise, alternating flips along a Stack") {
    using F = Transform<Stack<MaskedAutoregressive<>>, Shape<4>, float, Reference>;
    F f(Options{.steps_per_level = 3, .hidden = 8});
    CHECK(f.bijector()[0].degrees() == std::vector<int>{1, 2, 3, 4});
    CHECK(f.bijector()[1].degrees() == std::vector<int>{4, 3, 2, 1});
    CHECK(f.bijector()[2].degrees() == std::vector<int>{1, 2, 3, 4});
    using G = Transform<MaskedAutoregressive<>, Shape<6>, float, Reference>;
    G a(Options{.hidden = 8, .seed = 1}.with(AutoregressiveOptions{.order = MadeOrder::random}));
    G b(Options{.hidden = 8, .seed = 1}.with(AutoregressiveOptions{.order = MadeOrder::random}));
    G c(Options{.hidden = 8, .seed = 2}.with(AutoregressiveOptions{.order = MadeOrder::random}));
    auto sorted = a.bijector().degrees();
    std::sort(sorted.begin(), sorted.end());
    CHECK(sorted == std::vector<int>{1, 2, 3, 4, 5, 6});
    CHECK(a.bijector().degrees() == b.bijector().degrees());  // reproducible from the seed
    CHECK(a.bijector().degrees() != c.bijector().degrees());
}

TEST_CASE("autoregressive: zero-initialised MADE outputs make MAF and IAF the identity") {
    Rng rng(2);
    std::vector<double> x(3 * 4), z(x.size());
    for (auto& v : x) v = 1.5 * rng.normal();
    auto check = [&]<class R>(R) {
        Transform<R, Shape<4>, double, Cpu> f(Options{.hidden = 8});
        f.forward_raw(x.data(), z.data(), 3);
        for (std::size_t k = 0; k < x.size(); ++k) CHECK(z[k] == doctest::Approx(x[k]).epsilon(1e-12).scale(1));
        for (double ld : f.last_log_det(3)) CHECK(std::abs(ld) < 1e-12);
    };
    check(MaskedAutoregressive<AffineTransform>{});
    check(MaskedAutoregressive<RationalQuadraticTransform>{});
    check(InverseAutoregressive<AffineTransform>{});
    check(InverseAutoregressive<RationalQuadraticTransform>{});
}

TEST_CASE("MADE: masks that are not autoregressive, or degrees that are not a permutation, are rejected") {
    using F = Transform<MaskedAutoregressive<>, Shape<3>, float, Reference>;
    F f(Options{.hidden = 4, .hidden_layers = 1});
    const auto& ps = f.params();
    std::vector<float> values(ps.values().begin(), ps.values().end());
    std::vector<float> buffers(ps.buffers().begin(), ps.buffers().end());
    CHECK(error_of([&] { ps.check_staged(values.data(), buffers.data()); }) == "(no error)");

    const TensorInfo* mask0 = ps.find("autoregressive.made.0.mask");
    const TensorInfo* degrees = ps.find("autoregressive.made.degrees");
    REQUIRE(mask0 != nullptr);
    REQUIRE(degrees != nullptr);
    {  // let every hidden unit see every input: output 2 (degree 3) … and output 1 see input 2
        auto b = buffers;
        std::fill_n(b.begin() + std::ptrdiff_t(mask0->offset), mask0->size, 1.0f);
        const std::string e = error_of([&] { ps.check_staged(values.data(), b.data()); });
        CHECK(e.find("MADE 'autoregressive.made': the masks let output") != std::string::npos);
        CHECK(e.find("not autoregressive") != std::string::npos);
    }
    {
        auto b = buffers;
        b[degrees->offset + 1] = 1.0f;  // degrees {1, 1, 3}
        CHECK(error_of([&] { ps.check_staged(values.data(), b.data()); }).find("degrees is not a permutation of 1..3") !=
              std::string::npos);
    }
    {
        auto b = buffers;
        b[mask0->offset] = 0.5f;
        CHECK(error_of([&] { ps.check_staged(values.data(), b.data()); }).find("masks are 0 or 1") != std::string::npos);
    }
}

TEST_CASE("autoregressive: checkpoints keep the transform, order and masks, and a load checks the settings") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("bijou_ar_" + std::to_string(::getpid()));
    fs::create_directories(dir);
    const fs::path path = dir / "maf.safetensors";
    using F = Flow<Shape<3>, Stack<MaskedAutoregressive<RationalQuadraticTransform>>, StandardNormal, float, Cpu>;
    const Options base = Options{.steps_per_level = 2, .hidden = 8, .seed = 4}
                             .with(AutoregressiveOptions{.order = MadeOrder::random})
                             .with(SplineOptions{.bins = 5});
    F a(base);
    add_noise(a, 0.2, 9);
    save_checkpoint(path, a);
    const auto meta = read_checkpoint_metadata(path);
    CHECK(meta.at("setting.steps.0.kind") == "masked");
    CHECK(meta.at("setting.steps.0.transform") == "rational_quadratic");
    CHECK(meta.at("setting.steps.1.order") == "random");
    CHECK(meta.at("setting.steps.1.bins") == "5");

    F b(base);
    load_checkpoint(path, b);
    const std::vector<float> x{0.3f, -1.0f, 2.0f, 0.1f, 0.2f, -2.9f};
    const double* la = a.log_prob_raw(x.data(), 2);
    const std::vector<double> lpa(la, la + 2);
    const double* lb = b.log_prob_raw(x.data(), 2);
    CHECK(lpa == std::vector<double>(lb, lb + 2));

    F natural(base.with(AutoregressiveOptions{.order = MadeOrder::natural}));
    CHECK(error_of([&] { load_checkpoint(path, natural); })
              .find("setting 'steps.0.order': the file has 'random' but the model has 'natural'") != std::string::npos);
    fs::remove_all(dir);
}

TEST_CASE("autoregressive: MAF samples by inverting in D passes, IAF evaluates in D passes, both round-trip") {
    using M = Flow<Shape<4>, Stack<MaskedAutoregressive<RationalQuadraticTransform>>, StandardNormal, double, Cpu>;
    using I = Flow<Shape<4>, Stack<InverseAutoregressive<RationalQuadraticTransform>>, StandardNormal, double, Cpu>;
    const Options o = Options{.steps_per_level = 3, .hidden = 16}.with(SplineOptions{.bins = 6, .bound = 2.0});
    auto run = [&]<class F>(F& f) {
        add_noise(f, 0.3, 5);
        Rng rng(8);
        std::vector<double> x(4 * 5), z(x.size()), xr(x.size());
        for (auto& v : x) v = 1.3 * rng.normal();
        f.forward_raw(x.data(), z.data(), 5);
        const std::vector<double> ld(f.last_log_det(5).begin(), f.last_log_det(5).end());
        f.inverse_raw(z.data(), xr.data(), 5);
        double worst = 0;
        for (std::size_t k = 0; k < x.size(); ++k) worst = std::max(worst, std::abs(xr[k] - x[k]));
        CHECK(worst < 1e-10);
        for (int s = 0; s < 5; ++s) CHECK(f.last_log_det(5)[std::size_t(s)] == doctest::Approx(-ld[std::size_t(s)]).epsilon(1e-10));
        CHECK(std::abs(ld[0]) > 1e-3);  // not the identity
    };
    M m(o);
    run(m);
    I i(o);
    run(i);
}

}  // namespace unit_autoregressive
