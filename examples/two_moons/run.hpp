// two_moons/run.hpp — the two-moons program after its command line: train, evaluate, draw. A
// template on the backend, so that two_moons.cpp runs it on the Cpu and two_moons_cuda.cu (built when
// CUDA is) on a GPU. Under mpirun (a World of several processes, Cpu only) it trains data-parallel:
// every rank draws the same global batch and trains on its shard (bijou::distributed::DataParallel:
// one all-reduce of the gradients per step), so N processes compute what one does; rank 0 alone
// prints and writes the pictures.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <xtensor/xview.hpp>

#include <bijou/bijou.hpp>
#include <bijou/distributed/data_parallel.hpp>

#include "common/density.hpp"
#include "common/png.hpp"
#include "common/world.hpp"

namespace two_moons {

using Clock = std::chrono::steady_clock;
using Batch = xt::xtensor<float, 2>;

/// The command line's values.
struct Settings {
    int steps = 4000, batch = 512, hidden = 256, couplings = 8, train_size = 50000, eval_size = 10000;
    int threads = 0, warmup = 100, log_every = 250;
    double lr = 2e-3, min_lr_frac = 0.0, clip = 50.0, noise = 0.05;
    unsigned long long seed = 0;
    std::string out = ".";
    bool no_png = false;
};

template <class B>
std::string device_label() {
    if constexpr (std::is_same_v<B, bijou::Cpu>) return std::to_string(bijou::num_threads()) + " threads";
    else return std::string(B::name);
}

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct View {
    double x0, x1, y0, y1;
    static View fit(const std::vector<const Batch*>& sets, double margin = 0.08) {
        std::vector<float> xs, ys;
        for (const Batch* b : sets)
            for (std::size_t i = 0; i < b->shape(0); ++i) xs.push_back((*b)(i, 0)), ys.push_back((*b)(i, 1));
        auto q = [](std::vector<float>& v, double p) {
            std::size_t k = std::size_t(p * double(v.size() - 1));
            std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
            return double(v[k]);
        };
        double x0 = q(xs, 0.002), x1 = q(xs, 0.998), y0 = q(ys, 0.002), y1 = q(ys, 0.998);
        const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2;
        const double half = std::max(x1 - x0, y1 - y0) * (0.5 + margin);
        return {cx - half, cx + half, cy - half, cy + half};
    }
};

inline example::Canvas scatter(const Batch& pts, const View& v, int size, example::Rgb colour) {
    example::Canvas c(size, size);
    for (std::size_t i = 0; i < pts.shape(0); ++i) {
        const int px = int((pts(i, 0) - v.x0) / (v.x1 - v.x0) * size);
        const int py = int((v.y1 - pts(i, 1)) / (v.y1 - v.y0) * size);
        c.blend(px, py, colour, 0.35);
        c.blend(px + 1, py, colour, 0.2);
        c.blend(px, py + 1, colour, 0.2);
    }
    return c;
}

/// Trains, evaluates and draws on backend B; returns the process exit code. `world`: the processes
/// of an mpirun job (null or one process: train alone).
template <class B>
int run(const Settings& s, example::World* world = nullptr) {
        const auto& [steps, batch, hidden, couplings, train_size, eval_size, threads, warmup, log_every, lr, min_lr_frac,
                     clip, noise, seed, out, no_png] = s;
    try {
        const auto t0 = Clock::now();
        if (threads > 0) bijou::set_num_threads(threads);
        const int processes = world ? world->size() : 1;
        const bool root = !world || world->rank() == 0, draw = !no_png && root;
        if (draw) std::filesystem::create_directories(out);

        const Batch train = bijou::two_moons<float>(train_size, noise, seed);
        const Batch heldout = bijou::two_moons<float>(eval_size, noise, seed + 1000003);

        bijou::Options opt;
        opt.steps_per_level = couplings;
        opt.hidden = hidden;
        opt.seed = seed;
        bijou::RealNVP<bijou::Shape<2>, bijou::StandardNormal, float, B> model(opt);
        bijou::Adam<float, B> adam(model.parameter_count());
        // Linear warm-up, then a cosine decay to min_lr_frac·lr at the last step.
        const bijou::TrainConfig cfg{.lr = lr, .warmup = warmup, .clip = clip,
                                     .anneal = bijou::CosineAnneal{.steps = steps, .floor = min_lr_frac}};
        // Data-parallel over the processes of an mpirun job: rank 0's parameters everywhere, and each
        // rank's rows of the global batch (x_local).
        std::optional<bijou::distributed::DataParallel<example::World>> dp;
        Batch x_local;
        // (--device cuda under mpirun is refused in main, and the Cuda run gets no world.)
        if constexpr (!bijou::ExecutorBackend<B>) {
            if (processes > 1) {
                dp.emplace(*world);
                dp->broadcast_parameters(model);
                x_local = Batch::from_shape({std::size_t(dp->shard(batch).size()), 2});
            }
        }
        model.reserve(dp ? int(x_local.shape(0)) : batch);

        std::printf("two_moons: RealNVP, %d couplings, hidden %d, %zu parameters; %d steps of batch %d, %s%s\n", couplings,
                    hidden, model.parameter_count(), steps, batch, device_label<B>().c_str(),
                    processes > 1 ? (" per process, " + std::to_string(processes) + " processes").c_str() : "");

        // Epoch-wise shuffled batches (one random stream over the whole run), gathered into one
        // preallocated tensor.
        bijou::EpochSampler sampler(train.shape(0), {.seed = seed + 17}, bijou::EpochOrder::continued);
        Batch x = Batch::from_shape({std::size_t(batch), 2});

        const auto t_train = Clock::now();
        double running = 0.0;
        int running_n = 0, skipped = 0;
        for (int step = 0; step < steps; ++step) {
            sampler.next_batch(train, x);  // the global batch: the same on every rank
            const auto r = [&] {
                if constexpr (!bijou::ExecutorBackend<B>) {
                    if (dp) {
                        std::copy_n(x.data() + std::size_t(dp->shard(batch).begin) * 2, x_local.size(), x_local.data());
                        return dp->train_step(model, adam, x_local, batch, cfg, step);
                    }
                }
                return bijou::train_step(model, adam, x, cfg, step);
            }();
            if (r.skipped) ++skipped;
            else running += r.loss, ++running_n;
            if ((step + 1) % log_every == 0 || step + 1 == steps) {
                const double el = seconds_since(t_train), sps = (step + 1) / el;
                std::printf("step %6d/%d  nll %.4f  lr %.2e  %.1f steps/s  eta %.0fs\n", step + 1, steps,
                            running / std::max(1, running_n), r.lr, sps, (steps - step - 1) / sps);
                std::fflush(stdout);
                running = 0.0, running_n = 0;
            }
        }
        const double train_s = seconds_since(t_train);

        // Held-out NLL in nats on fresh points.
        double nll = 0.0;
        const auto lp = model.log_prob(heldout);
        for (float l : lp) nll -= double(l);
        nll /= double(lp.size());

        if (draw) {
            const int S = 480;
            bijou::Rng srng(seed + 99);
            const Batch samples = model.sample(std::min(eval_size, 20000), 1.0, srng);
            const Batch shown = xt::view(heldout, xt::range(0, std::min<std::size_t>(heldout.shape(0), 20000)), xt::all());
            const std::vector<const Batch*> shown_set{&shown};
            const View v = View::fit(shown_set);
            example::write_png(std::filesystem::path(out) / "data.png", scatter(shown, v, S, {31, 119, 180}));
            example::write_png(std::filesystem::path(out) / "samples.png", scatter(samples, v, S, {214, 39, 40}));
            example::write_png(std::filesystem::path(out) / "density.png",
                               example::density_image(model, v.x0, v.x1, v.y0, v.y1, 320));
            const auto stages = model.forward_stages(shown);
            const int P = 240, cols = std::min<int>(int(stages.size()), 5);
            const int rows = (int(stages.size()) + cols - 1) / cols;
            example::Canvas sheet(cols * P, rows * P, {240, 240, 240});
            for (std::size_t k = 0; k < stages.size(); ++k) {
                const std::vector<const Batch*> one{&stages[k]};
                const View sv = View::fit(one);
                auto panel = scatter(stages[k], sv, P - 4, k == 0 ? example::Rgb{31, 119, 180} : example::Rgb{44, 160, 44});
                sheet.paste(panel, int(k % std::size_t(cols)) * P + 2, int(k / std::size_t(cols)) * P + 2);
            }
            example::write_png(std::filesystem::path(out) / "stages.png", sheet);
            std::printf("wrote data.png samples.png density.png stages.png to %s\n", out.c_str());
        }

        const double total_s = seconds_since(t0);
        std::printf("{\"example\":\"two_moons\",\"device\":\"%s\",\"steps\":%d,\"batch\":%d,\"threads\":%d,"
                    "\"processes\":%d,\"skipped\":%d,\"train_seconds\":%.2f,\"seconds\":%.2f,\"steps_per_s\":%.1f,"
                    "\"heldout_nll\":%.4f}\n",
                    std::string(B::name).c_str(), steps, batch, bijou::num_threads(), processes, skipped, train_s, total_s,
                    steps / train_s, nll);
        return 0;
    } catch (const bijou::error& e) {
        if (world && world->size() > 1) world->abort(e.what());  // ends every rank, naming this one
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    }
}

}  // namespace two_moons
