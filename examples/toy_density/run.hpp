// toy_density/run.hpp — trains one flow on one toy density and reports its held-out NLL; the model
// types are instantiated in flows_affine.cpp and flows_spline.cpp (two translation units a parallel
// build compiles side by side) and chosen by name in toy_density.cpp.
#pragma once

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <bijou/bijou.hpp>

#include "common/density.hpp"
#include "common/png.hpp"
#include "toy_density/toy_data.hpp"

namespace toy {

using Clock = std::chrono::steady_clock;

/// The command line's values (0 for layers or steps: the flow's default, see flow_defaults).
struct Settings {
    std::string data = "checkerboard", flow = "spline";
    int steps = 0, layers = 0, batch = 512, hidden = 128, hidden_layers = 2, bins = 8, warmup = 100;
    int eval_size = 10000, threads = 0, log_every = 500;
    double lr = 1e-3, clip = 50.0, bound = 5.0;
    unsigned long long seed = 0;
    bool quiet = false;
};

/// What one training run reports.
struct Result {
    double heldout_nll = 0, seconds = 0, train_seconds = 0, steps_per_s = 0;
    int steps = 0, layers = 0, skipped = 0;
    std::size_t parameters = 0;
};

/// A square window onto the plane and the density image drawn in it (optional).
struct Picture {
    double x0 = -5, x1 = 5, y0 = -5, y1 = 5;
    int size = 0;  ///< 0: no picture
    example::Canvas canvas{1, 1};
};

/// Default depth and steps per flow: what `--data checkerboard --flow spline` meets its target with.
struct FlowDefaults {
    int layers, steps;
};
inline FlowDefaults flow_defaults(const std::string& flow) {
    if (flow == "spline") return {4, 8000};
    if (flow == "maf-spline") return {4, 8000};
    return {8, 8000};  // realnvp, maf
}

inline double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

/// Trains Model (a Flow on Shape<2>) with Adam on fresh batches of the data set, then evaluates it on
/// eval_size fresh points; draws exp(log p) into `picture` when its size is set.
template <class Model>
Result train(const Settings& s, const bijou::Options& extra, Picture& picture) {
    const auto t0 = Clock::now();
    const FlowDefaults d = flow_defaults(s.flow);
    Result r;
    r.layers = s.layers > 0 ? s.layers : d.layers;
    r.steps = s.steps > 0 ? s.steps : d.steps;
    bijou::Options o = extra;
    o.steps_per_level = r.layers;
    o.hidden = s.hidden;
    o.hidden_layers = s.hidden_layers;
    o.seed = s.seed;
    Model model(o);
    bijou::Adam<float, bijou::Cpu> adam(model.parameter_count());
    r.parameters = model.parameter_count();
    const bijou::TrainConfig cfg{.lr = s.lr, .warmup = s.warmup, .clip = s.clip,
                                 .anneal = bijou::CosineAnneal{.steps = r.steps, .floor = 0.0}};
    model.reserve(s.batch);
    if (!s.quiet)
        std::printf("toy_density: %s on %s, %d layers, hidden %d×%d, %zu parameters; %d steps of batch %d, %d threads\n",
                    s.flow.c_str(), s.data.c_str(), r.layers, s.hidden, s.hidden_layers, r.parameters, r.steps, s.batch,
                    bijou::num_threads());
    Points x = Points::from_shape({std::size_t(s.batch), 2});
    bijou::Rng data_rng(s.seed * 0x9E3779B97F4A7C15ull + 1);
    const auto t_train = Clock::now();
    double running = 0.0;
    int running_n = 0;
    for (int step = 0; step < r.steps; ++step) {
        fill(s.data, x, data_rng);
        const auto rep = bijou::train_step(model, adam, x, cfg, step);
        if (rep.skipped) ++r.skipped;
        else running += rep.loss, ++running_n;
        if (!s.quiet && ((step + 1) % s.log_every == 0 || step + 1 == r.steps)) {
            const double el = seconds_since(t_train), sps = (step + 1) / el;
            std::printf("step %6d/%d  nll %.4f  lr %.2e  %.1f steps/s  eta %.0fs\n", step + 1, r.steps,
                        running / std::max(1, running_n), rep.lr, sps, (r.steps - step - 1) / sps);
            std::fflush(stdout);
            running = 0.0, running_n = 0;
        }
    }
    r.train_seconds = seconds_since(t_train);
    r.steps_per_s = r.steps / r.train_seconds;

    const Points heldout = make(s.data, s.eval_size, s.seed + 1000003);
    const auto lp = model.log_prob(heldout);
    double nll = 0.0;
    for (float l : lp) nll -= double(l);
    r.heldout_nll = nll / double(lp.size());

    if (picture.size > 0)
        picture.canvas = example::density_image(model, picture.x0, picture.x1, picture.y0, picture.y1, picture.size);
    r.seconds = seconds_since(t0);
    return r;
}

// The flows (flows_affine.cpp, flows_spline.cpp).
Result train_realnvp(const Settings& s, Picture& p);
Result train_maf(const Settings& s, Picture& p);
Result train_spline(const Settings& s, Picture& p);
Result train_maf_spline(const Settings& s, Picture& p);

inline const std::vector<std::string> flow_names{"realnvp", "spline", "maf", "maf-spline"};

}  // namespace toy
