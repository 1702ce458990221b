// A training step allocates nothing: every heap allocation of the process (malloc and friends, so
// operator new and Eigen's aligned_malloc too) is counted while train_step runs at a batch size it
// has seen before, and while an EpochSampler gathers batches. A separate executable, because it
// interposes malloc for the whole program.
#include <malloc.h>

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <xtensor/xbuilder.hpp>

#include <bijou/bijou.hpp>

#if defined(__SANITIZE_ADDRESS__)
// AddressSanitizer replaces malloc itself; interposing it again would crash. Report "skipped".
int main() {
    std::printf("skipped: AddressSanitizer owns malloc in this build\n");
    return 77;
}
#else

extern "C" void* __libc_malloc(std::size_t);
extern "C" void* __libc_calloc(std::size_t, std::size_t);
extern "C" void* __libc_realloc(void*, std::size_t);
extern "C" void* __libc_memalign(std::size_t, std::size_t);

namespace {
std::atomic<bool> counting{false};
std::atomic<long> allocations{0};
bool abort_on_alloc = false;  // BIJOU_ALLOC_ABORT=1: abort at the first counted allocation (for gdb)
void note() {
    if (counting.load(std::memory_order_relaxed)) {
        allocations.fetch_add(1, std::memory_order_relaxed);
        if (abort_on_alloc) std::abort();  // debugging: find the allocation in gdb
    }
}
}  // namespace

extern "C" {
void* malloc(std::size_t n) {
    note();
    return __libc_malloc(n);
}
void* calloc(std::size_t k, std::size_t n) {
    note();
    return __libc_calloc(k, n);
}
void* realloc(void* p, std::size_t n) {
    note();
    return __libc_realloc(p, n);
}
void* memalign(std::size_t a, std::size_t n) {
    note();
    return __libc_memalign(a, n);
}
void* aligned_alloc(std::size_t a, std::size_t n) {
    note();
    return __libc_memalign(a, n);
}
int posix_memalign(void** out, std::size_t a, std::size_t n) {
    note();
    *out = __libc_memalign(a, n);
    return *out ? 0 : 12;
}
}

template <class Model>
long count_step_allocations(Model& model, int batch, int threads) {
    bijou::set_num_threads(threads);
    bijou::Adam<float> adam(model.parameter_count());
    bijou::TrainConfig cfg{.lr = 1e-3, .warmup = 10, .clip = 50.0};
    auto x = bijou::make_batch<float, typename Model::in_shape>(batch);
    bijou::Rng rng(1);
    for (auto& v : x) v = float(rng.normal());
    if constexpr (Model::conditional) {  // a conditional model: the same, with a context batch
        auto c = bijou::make_batch<float, typename Model::context_shape>(batch);
        for (auto& v : c) v = float(rng.normal());
        model.initialize(x, c);
        for (long s = 0; s < 2; ++s) bijou::train_step(model, adam, x, c, cfg, s);
        allocations = 0;
        counting = true;
        for (long s = 2; s < 6; ++s) bijou::train_step(model, adam, x, c, cfg, s);
        counting = false;
        return allocations.load();
    } else {
        if constexpr (requires { model.initialize(x); }) model.initialize(x);
        for (long s = 0; s < 2; ++s) bijou::train_step(model, adam, x, cfg, s);  // first call sizes the arena
        allocations = 0;
        counting = true;
        for (long s = 2; s < 6; ++s) bijou::train_step(model, adam, x, cfg, s);
        counting = false;
        return allocations.load();
    }
}

/// EpochSampler::next_batch after construction: 20 batches of uint8 images, three epoch starts, both orders.
long count_sampler_allocations() {
    const xt::xtensor<std::uint8_t, 4> images = xt::zeros<std::uint8_t>({100, 1, 8, 8});
    auto batch = xt::xtensor<std::uint8_t, 4>::from_shape({16, 1, 8, 8});
    bijou::EpochSampler keyed(100, {.seed = 3}), continued(100, {.seed = 3}, bijou::EpochOrder::continued);
    allocations = 0;
    counting = true;
    for (int b = 0; b < 20; ++b) keyed.next_batch(images, batch), continued.next_batch(images, batch);
    counting = false;
    return allocations.load();
}

int main() {
    int failures = 0;
    auto report = [&](const char* what, long n) {
        std::printf("%-60s %ld allocations in 4 training steps\n", what, n);
        if (n != 0) ++failures;
    };
    // sanity: the counter sees allocations at all
    counting = true;
    void* volatile p = std::malloc(100);
    counting = false;
    std::free(p);
    if (allocations.load() != 1) {
        std::printf("FAILED: the allocation counter does not work\n");
        return 1;
    }
    abort_on_alloc = std::getenv("BIJOU_ALLOC_ABORT") != nullptr;
    for (int threads : {1, 2}) {
        bijou::RealNVP<bijou::Shape<2>> realnvp;  // hidden 256, 8 couplings: the two-moons model
        report(threads == 1 ? "RealNVP two moons, batch 512, 1 thread" : "RealNVP two moons, batch 512, 2 threads",
               count_step_allocations(realnvp, 512, threads));
        using Step = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1LU, bijou::AffineCoupling>;
        bijou::Flow<bijou::Shape<16>, bijou::Stack<Step>, bijou::DiagonalGaussian> glowish({.steps_per_level = 4, .hidden = 64});
        report(threads == 1 ? "ActNorm/InvConv1x1LU/AffineCoupling x4, batch 256, 1 thread"
                            : "ActNorm/InvConv1x1LU/AffineCoupling x4, batch 256, 2 threads",
               count_step_allocations(glowish, 256, threads));
        for (bool lean : {false, true}) {
            bijou::Glow<bijou::Shape<1, 16, 16>, 2> glow({.steps_per_level = 2, .hidden = 32, .memory_saving = lean});
            const std::string what = std::string("Glow 1x16x16 L=2 K=2, batch 16, ") + (lean ? "memory-saving, " : "") +
                                     std::to_string(threads) + (threads == 1 ? " thread" : " threads");
            report(what.c_str(), count_step_allocations(glow, 16, threads));
        }
        using CondStep = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1LU, bijou::ConditionalAffineCoupling<bijou::Shape<10>>>;
        bijou::Glow<bijou::Shape<1, 16, 16>, 2, CondStep> cond_glow({.steps_per_level = 2, .hidden = 32});
        report(threads == 1 ? "class-conditional Glow 1x16x16 L=2 K=2, batch 16, 1 thread"
                            : "class-conditional Glow 1x16x16 L=2 K=2, batch 16, 2 threads",
               count_step_allocations(cond_glow, 16, threads));
        using VecStep = bijou::ConditionalAffineCoupling<bijou::Shape<3>>;
        bijou::Flow<bijou::Shape<2>, bijou::Stack<VecStep>, bijou::ConditionalDiagonalGaussian<bijou::Shape<3>>> cond_vec(
            {.steps_per_level = 4, .hidden = 64});
        report(threads == 1 ? "conditional vector flow + conditional base, batch 256, 1 thread"
                            : "conditional vector flow + conditional base, batch 256, 2 threads",
               count_step_allocations(cond_vec, 256, threads));
        const auto spline_opts = bijou::Options{.steps_per_level = 3, .hidden = 32}.with(bijou::SplineOptions{.bins = 6});
        bijou::Flow<bijou::Shape<4>, bijou::Stack<bijou::RationalQuadraticCoupling>> spline(spline_opts);
        report(threads == 1 ? "spline couplings x3, batch 256, 1 thread" : "spline couplings x3, batch 256, 2 threads",
               count_step_allocations(spline, 256, threads));
        for (bool lean : {false, true}) {  // memory-saving: backward runs MAF's D-pass inverse
            auto o = spline_opts;
            o.memory_saving = lean;
            bijou::Flow<bijou::Shape<4>, bijou::Stack<bijou::MaskedAutoregressive<bijou::RationalQuadraticTransform>>> maf(o);
            const std::string what = std::string("spline MAF x3, batch 256, ") + (lean ? "memory-saving, " : "") +
                                     std::to_string(threads) + (threads == 1 ? " thread" : " threads");
            report(what.c_str(), count_step_allocations(maf, 256, threads));
        }
        bijou::Flow<bijou::Shape<4>, bijou::Stack<bijou::InverseAutoregressive<bijou::AffineTransform>>> iaf(spline_opts);
        report(threads == 1 ? "affine IAF x3, batch 256, 1 thread" : "affine IAF x3, batch 256, 2 threads",
               count_step_allocations(iaf, 256, threads));
    }
    const long sampler = count_sampler_allocations();
    std::printf("%-60s %ld allocations in 20 batches\n", "EpochSampler::next_batch, uint8 images, both orders", sampler);
    if (sampler != 0) ++failures;
    std::printf("%d passed, %d failed\n", failures ? 0 : 1, failures ? 1 : 0);
    return failures ? 1 : 0;
}

#endif  // __SANITIZE_ADDRESS__
