// toy_density — normalizing flows on the 2-D toy densities of FFJORD and Neural Spline Flows.
//
//   toy_density --data NAME --flow FLOW     NAME: moons, circles, checkerboard, 8gaussians, pinwheel,
//                                           2spirals; FLOW: realnvp, spline, maf, maf-spline
//   toy_density --all [--out DIR]           every pair, one JSON line each, and DIR/toy_grid.png: one
//                                           row per data set; columns: the data, then each flow's density
// Trains with Adam (linear warm-up, cosine decay, clipping) on fresh batches, prints progress, then one
// JSON line with the held-out NLL (nats, on --eval-size fresh points), steps/s and seconds. For the
// checkerboard, whose entropy is exactly ln 32, and for 8gaussians, whose entropy it estimates by Monte
// Carlo, the line also gives the entropy and the model's gap to it (no model can go below the entropy
// in expectation). docs/toy_density.md has the recorded figures.
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <string>

#include <CLI/CLI.hpp>

#include "toy_density/run.hpp"

namespace {

using namespace toy;

Result train_one(const Settings& s, Picture& p) {
    if (s.flow == "realnvp") return train_realnvp(s, p);
    if (s.flow == "spline") return train_spline(s, p);
    if (s.flow == "maf") return train_maf(s, p);
    return train_maf_spline(s, p);
}

/// The data set's entropy in nats (exact or a Monte Carlo estimate) and its standard error; NaN if unknown.
std::pair<double, double> entropy_of(const std::string& data) {
    if (data == "checkerboard") return {checkerboard_entropy, 0.0};
    if (data != "8gaussians") return {NAN, NAN};
    const int n = 1000000;
    const Points x = make(data, n, 424242);
    double s = 0.0, s2 = 0.0;
    for (int i = 0; i < n; ++i) {
        const double v = -eight_gaussians_log_density(x(std::size_t(i), 0), x(std::size_t(i), 1));
        s += v, s2 += v * v;
    }
    const double mean = s / n;
    return {mean, std::sqrt((s2 / n - mean * mean) / n)};
}

void report(const Settings& s, const Result& r) {
    const auto [h, se] = entropy_of(s.data);
    std::string extra;
    if (std::isfinite(h)) {
        char buf[160];
        std::snprintf(buf, sizeof buf, ",\"entropy\":%.4f,\"entropy_stderr\":%.4f,\"gap\":%.4f", h, se, r.heldout_nll - h);
        extra = buf;
    }
    std::printf("{\"example\":\"toy_density\",\"data\":\"%s\",\"flow\":\"%s\",\"layers\":%d,\"parameters\":%zu,"
                "\"steps\":%d,\"batch\":%d,\"threads\":%d,\"skipped\":%d,\"train_seconds\":%.2f,\"seconds\":%.2f,"
                "\"steps_per_s\":%.1f,\"heldout_nll\":%.4f%s}\n",
                s.data.c_str(), s.flow.c_str(), r.layers, r.parameters, r.steps, s.batch, bijou::num_threads(), r.skipped,
                r.train_seconds, r.seconds, r.steps_per_s, r.heldout_nll, extra.c_str());
    std::fflush(stdout);
}

/// The window a data set is drawn in: a square around its central 99.6%.
Picture window_for(const std::string& data, int size) {
    const Points x = make(data, 20000, 77);
    std::vector<float> xs, ys;
    for (std::size_t i = 0; i < x.shape(0); ++i) xs.push_back(x(i, 0)), ys.push_back(x(i, 1));
    auto q = [](std::vector<float>& v, double p) {
        const std::size_t k = std::size_t(p * double(v.size() - 1));
        std::nth_element(v.begin(), v.begin() + std::ptrdiff_t(k), v.end());
        return double(v[k]);
    };
    const double x0 = q(xs, 0.002), x1 = q(xs, 0.998), y0 = q(ys, 0.002), y1 = q(ys, 0.998);
    const double cx = (x0 + x1) / 2, cy = (y0 + y1) / 2, half = std::max(x1 - x0, y1 - y0) * 0.58;
    Picture p;
    p.x0 = cx - half, p.x1 = cx + half, p.y0 = cy - half, p.y1 = cy + half, p.size = size;
    return p;
}

/// A 2-D histogram of fresh data points in the picture's window, through the colour map.
example::Canvas data_panel(const std::string& data, const Picture& w) {
    const int S = w.size;
    std::vector<double> h(std::size_t(S) * S, 0.0);
    const Points x = make(data, 200000, 91);
    for (std::size_t i = 0; i < x.shape(0); ++i) {
        const int px = int((x(i, 0) - w.x0) / (w.x1 - w.x0) * S), py = int((w.y1 - x(i, 1)) / (w.y1 - w.y0) * S);
        if (px >= 0 && px < S && py >= 0 && py < S) h[std::size_t(py) * S + px] += 1.0;
    }
    const double hi = *std::max_element(h.begin(), h.end());
    example::Canvas c(S, S);
    for (int y = 0; y < S; ++y)
        for (int xx = 0; xx < S; ++xx) c.set(xx, y, example::colormap(h[std::size_t(y) * S + xx] / std::max(hi, 1.0)));
    return c;
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"Normalizing flows on 2-D toy densities: trains, reports held-out NLL (and the gap to the entropy)"};
    Settings s;
    bool all = false;
    std::string out = ".";
    app.add_option("--data", s.data, "data set")->check(CLI::IsMember(toy_names))->capture_default_str();
    app.add_option("--flow", s.flow, "flow")->check(CLI::IsMember(flow_names))->capture_default_str();
    app.add_flag("--all", all, "train every (data, flow) pair and draw DIR/toy_grid.png");
    app.add_option("--out", out, "directory for toy_grid.png (--all)")->capture_default_str();
    app.add_option("--steps", s.steps, "training steps (0: the flow's default)")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--layers", s.layers, "couplings or autoregressive layers (0: the flow's default)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--batch", s.batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--hidden", s.hidden, "conditioner width")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--hidden-layers", s.hidden_layers, "conditioner hidden layers")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--bins", s.bins, "spline bins (spline, maf-spline)")->check(CLI::Range(2, 1024))->capture_default_str();
    app.add_option("--bound", s.bound, "spline interval [-B, B] (spline, maf-spline)")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--lr", s.lr, "peak Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--warmup", s.warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--clip", s.clip, "gradient-norm clipping threshold (0: off)")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--eval-size", s.eval_size, "fresh held-out points")->check(CLI::Range(1, 10000000))->capture_default_str();
    app.add_option("--threads", s.threads, "OpenMP threads (0: OpenMP's default)")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--seed", s.seed, "seed of data, initialisation and batches")->capture_default_str();
    app.add_option("--log-every", s.log_every, "progress line every N steps")->check(CLI::PositiveNumber)->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    try {
        if (s.threads > 0) bijou::set_num_threads(s.threads);
        if (!all) {
            Picture none;
            report(s, train_one(s, none));
            return 0;
        }
        const int P = 160;
        const int cols = 1 + int(flow_names.size()), rows = int(toy_names.size());
        example::Canvas sheet(cols * P, rows * P, {255, 255, 255});
        for (int r = 0; r < rows; ++r) {
            Settings one = s;
            one.data = toy_names[std::size_t(r)];
            one.quiet = true;
            Picture w = window_for(one.data, P - 4);
            sheet.paste(data_panel(one.data, w), 2, r * P + 2);
            for (int c = 1; c < cols; ++c) {
                one.flow = flow_names[std::size_t(c - 1)];
                Picture p = w;
                report(one, train_one(one, p));
                sheet.paste(p.canvas, c * P + 2, r * P + 2);
            }
        }
        std::filesystem::create_directories(out);
        example::write_png(std::filesystem::path(out) / "toy_grid.png", sheet);
        std::printf("wrote %s\n", (std::filesystem::path(out) / "toy_grid.png").string().c_str());
        return 0;
    } catch (const bijou::error& e) {
        std::fprintf(stderr, "toy_density: %s\n", e.what());
        return 1;
    }
}
