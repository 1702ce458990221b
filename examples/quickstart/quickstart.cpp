// Quick start: RealNVP on two moons, trained with Adam.
#include <bijou/bijou.hpp>

#include <cstdio>

int main() {
    using Model = bijou::RealNVP<bijou::Shape<2>>;  // 8 affine couplings, N(0, I) base, float, Cpu
    Model model({.steps_per_level = 8, .hidden = 128});        // 2→128→128→2 shift and log-scale nets
    bijou::Adam<float> adam(model.parameter_count());
    bijou::TrainConfig cfg{.lr = 2e-3, .warmup = 100, .clip = 50.0};

    const auto data = bijou::two_moons<float>(50000, /*noise=*/0.05, /*seed=*/0);
    xt::xtensor<float, 2> batch = xt::zeros<float>({256, 2});
    bijou::EpochSampler sampler(data.shape(0), {.seed = 1});  // every point once per epoch, shuffled
    for (long step = 0; step < 1500; ++step) {
        sampler.next_batch(data, batch);
        const auto report = bijou::train_step(model, adam, batch, cfg, step);
        if (step % 500 == 0) std::printf("step %4ld  nll %.3f nats\n", step, report.loss);
    }

    const auto test = bijou::two_moons<float>(10000, 0.05, /*seed=*/1);
    const auto log_p = model.log_prob(test);  // nats per point
    double nll = 0.0;
    for (float lp : log_p) nll -= lp;
    std::printf("held-out nll %.3f nats\n", nll / double(log_p.size()));

    bijou::Rng rng(1);
    const auto x = model.sample(3, /*temperature=*/1.0, rng);  // (3, 2) samples
    for (std::size_t i = 0; i < 3; ++i) std::printf("sample (%.3f, %.3f)\n", x(i, 0), x(i, 1));
}
