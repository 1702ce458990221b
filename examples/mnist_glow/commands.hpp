// examples/mnist_glow/commands.hpp — run<Model>(): train, eval, classify, sample, interpolate and
// manipulate for one model type. Included by the model_*.cpp files only (one model type each).
//
// Data (data.hpp, --data mnist:DIR | cifar10:DIR | folder:DIR): every image is zero-padded to C×32×32
// (centred; MNIST's 28×28 gets 2 pixels each side), reduced to n bits (x >> (8 − n)), then
// dequantised by model.dequantize_keyed (the noise of an image a function of (seed, step, its row
// in the batch)): x̃ = (x + u)/2ⁿ − ½. C is the model type's: 1 (MNIST, gray PNGs)
// or 3 (CIFAR-10, RGB PNGs; models_rgb.cpp); data of the other kind is refused. Bits/dim are
// ImageFlow::bits_per_dim's, D = C·1024. Labels (MNIST's digits, CIFAR-10's classes) drive the
// conditional model, classify and manipulate; a PNG folder has none, and those refuse it.
// Training: Adam or Adamax through bijou::train_step (linear warm-up, clipping, non-finite steps
// skipped and reported) on batches from a bijou::EpochSampler; the final anneal (--decay) is a
// bijou::LinearAnneal of the run's progress. --clip is given per bits/dim, like PyTorch Glow code
// whose loss is bits/dim; bijou's loss is nats per image, D·ln 2 times larger, and so is its gradient,
// so the threshold passed to train_step is clip·D·ln 2 (Adam's update itself does not depend on the
// loss's scale).
// Resume: the checkpoint holds model, optimizer, step, epoch and position in the epoch's order; an
// epoch's order is a function of (seed, epoch) (EpochOrder::keyed), and the dequantisation noise of
// an image a function of (seed, step, its row in the batch) (ImageFlow::dequantize_keyed), so both
// are rebuilt, not stored. Training N steps in one run or N/2 + N/2 with --resume gives the same
// bytes on the same thread count with --decay 0 (a smoke test checks it); the default final anneal
// (--decay) is per run and partly time-based, so it is not reproducible to the bit. The checkpoint's
// training state is parsed and range-checked by resume_state() (metadata.hpp) before anything is
// built from it; a bad field throws bijou::io_error naming it.
// Conditional models (Model::conditional; models_c.cpp: Glow L=3 p(x | digit)) take each image's label
// as a one-hot context row (n, 10) beside x in every call: training batches pair images and labels
// (EpochSampler's paired next_batch), bits/dim are of log p(x | y), `classify` scores every label. The
// unconditional models' code paths are the `else` branches of `if constexpr (Model::conditional)`.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <numbers>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include <bijou/bijou.hpp>
#include <bijou/distributed/data_parallel.hpp>
#include <bijou/io/checkpoint.hpp>

#include "common/png.hpp"
#include "common/world.hpp"
#include "mnist_glow/app.hpp"
#include "mnist_glow/data.hpp"
#include "mnist_glow/metadata.hpp"

namespace mnist_glow {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// ---- data ----------------------------------------------------------------------------------------

/// Channels of a model type's images: 1 or 3 (its D is C·32·32).
template <class Model>
inline constexpr int channels_of = Model::D / plane;

/// The images of `part`, checked against the model type's channel count.
template <class Model>
ImageSet load_for(const DataSource& src, Part part, int n_bits, int limit = 0) {
    ImageSet s = load_images(src, part, n_bits, limit);
    if (s.channels != channels_of<Model>)
        throw bijou::invalid_argument(s.name + ": " + std::to_string(s.channels) + "-channel images, but this model takes " +
                                      std::to_string(channels_of<Model>) + " (shape " + std::to_string(channels_of<Model>) +
                                      ",32,32); pass --data with " + std::to_string(channels_of<Model>) + "-channel images" +
                                      (channels_of<Model> == 1 ? " (mnist:DIR, or folder:DIR of gray PNGs)"
                                                               : " (cifar10:DIR, or folder:DIR of RGB PNGs)"));
    return s;
}

/// Rows [s.begin, s.end) of x into dst (allocated once, s.size() rows): a rank's shard of a batch.
template <class Tensor>
void copy_rows(const Tensor& x, bijou::distributed::Shard s, Tensor& dst) {
    const std::size_t row = x.size() / x.shape()[0];
    std::copy_n(x.data() + std::size_t(s.begin) * row, std::size_t(s.size()) * row, dst.data());
}

/// Images [i0, i0 + n) of a set.
inline xt::xtensor<std::uint8_t, 4> slice(const ImageSet& s, int i0, int n) {
    auto out = xt::xtensor<std::uint8_t, 4>::from_shape({std::size_t(n), std::size_t(s.channels), side, side});
    std::copy_n(s.x.data() + std::size_t(i0) * s.image_values(), std::size_t(n) * s.image_values(), out.data());
    return out;
}

// ---- labels as contexts (conditional models) -----------------------------------------------------

/// Classes of the conditional model: its context is a one-hot digit, Shape<10>.
inline constexpr int n_labels = 10;

/// Checks that `s` has labels (a PNG folder has none).
inline void require_labels(const ImageSet& s, const std::string& what) {
    if (!s.has_labels())
        throw bijou::invalid_argument(what + ": " + s.name + " has no labels (a PNG folder); this needs labelled "
                                      "data (mnist:DIR or cifar10:DIR)");
}

/// Checks that `s` has labels and that every one is a class of the conditional model (0..9).
inline void check_labels(const ImageSet& s, const std::string& what) {
    require_labels(s, what);
    for (std::size_t i = 0; i < s.labels.size(); ++i)
        if (s.labels[i] >= n_labels)
            throw bijou::invalid_argument(what + ": image " + std::to_string(i) + " has label " + std::to_string(int(s.labels[i])) +
                                          "; the class-conditional model knows labels 0.." + std::to_string(n_labels - 1));
}

/// What a label is called in messages: a digit (MNIST) or a class (CIFAR-10).
inline std::string label_name(const DataSource& src) { return src.kind == "mnist" ? "digit" : "class"; }

/// Row i of c (n × 10) = the one-hot row of labels[i]; c already has labels.size() rows.
template <class Ctx>
void fill_one_hot(std::span<const std::uint8_t> labels, Ctx& c) {
    std::fill(c.begin(), c.end(), typename Ctx::value_type(0));
    for (std::size_t i = 0; i < labels.size(); ++i) c.data()[i * n_labels + labels[i]] = typename Ctx::value_type(1);
}

/// The contexts (n × 10) of the given labels.
template <class Model>
typename Model::context_tensor one_hot(std::span<const std::uint8_t> labels) {
    static_assert(Model::context_size == n_labels, "mnist_glow: the conditional model's context is a one-hot digit");
    auto c = Model::context_tensor::from_shape({labels.size(), std::size_t(n_labels)});
    fill_one_hot(labels, c);
    return c;
}

/// The context of one digit (a single row).
template <class Model>
typename Model::context_tensor one_hot_digit(int digit) {
    const std::uint8_t d = std::uint8_t(digit);
    return one_hot<Model>(std::span<const std::uint8_t>(&d, 1));
}

// ---- pictures ------------------------------------------------------------------------------------

/// Model-space images x̃ ∈ [−½, ½) back to 0..255 grey levels through the n-bit grid.
inline std::vector<std::uint8_t> to_grey(const float* x, std::size_t n_values, int n_bits) {
    const double levels = std::ldexp(1.0, n_bits);
    std::vector<std::uint8_t> g(n_values);
    for (std::size_t k = 0; k < n_values; ++k) {
        const double v = std::isfinite(x[k]) ? std::floor((double(x[k]) + 0.5) * levels) : 0.0;
        g[k] = std::uint8_t(std::lround(std::clamp(v, 0.0, levels - 1) * 255.0 / (levels - 1)));
    }
    return g;
}

/// n-bit integer images (as stored in an ImageSet) to 0..255 grey levels.
inline std::vector<std::uint8_t> to_grey(const std::uint8_t* x, std::size_t n_values, int n_bits) {
    const double levels = std::ldexp(1.0, n_bits);
    std::vector<std::uint8_t> g(n_values);
    for (std::size_t k = 0; k < n_values; ++k) g[k] = std::uint8_t(std::lround(x[k] * 255.0 / (levels - 1)));
    return g;
}

/// A rows × cols grid of C×32×32 images (0..255 values, channel-major, row-major in `grey`; C = 1:
/// gray, 3: RGB), each enlarged `zoom` times, 2-pixel gaps; `highlight` columns get a coloured frame
/// (originals next to model output).
inline example::Canvas grid(const std::vector<std::uint8_t>& grey, int channels, int rows, int cols, int zoom,
                            const std::vector<int>& highlight = {}) {
    const std::size_t image = std::size_t(channels) * plane;
    const int cell = side * zoom, gap = 2;
    example::Canvas c(cols * (cell + gap) + gap, rows * (cell + gap) + gap, {128, 128, 128});
    for (int r = 0; r < rows; ++r)
        for (int q = 0; q < cols; ++q) {
            const std::size_t img = std::size_t(r) * std::size_t(cols) + std::size_t(q);
            if ((img + 1) * image > grey.size()) continue;
            const int x0 = gap + q * (cell + gap), y0 = gap + r * (cell + gap);
            if (std::find(highlight.begin(), highlight.end(), q) != highlight.end())
                for (int k = -1; k <= cell; ++k) {
                    const example::Rgb red{214, 39, 40};
                    c.set(x0 + k, y0 - 1, red), c.set(x0 + k, y0 + cell, red);
                    c.set(x0 - 1, y0 + k, red), c.set(x0 + cell, y0 + k, red);
                }
            for (int y = 0; y < cell; ++y)
                for (int x = 0; x < cell; ++x) {
                    const std::uint8_t* p = grey.data() + img * image + std::size_t(y / zoom) * side + std::size_t(x / zoom);
                    c.at(x0 + x, y0 + y) = channels == 1 ? example::Rgb{p[0], p[0], p[0]} : example::Rgb{p[0], p[plane], p[2 * plane]};
                }
        }
    return c;
}

// ---- checkpoint metadata ↔ Options ---------------------------------------------------------------

/// The Options a checkpoint was written with, so that load_checkpoint's config check passes: the
/// model-level fields, and for a format-version-1 file (which kept them centrally) the couplings' and
/// Permutes' options. A version-2 file records those as settings of each bijector, which mnist_glow
/// leaves at their defaults.
inline bijou::Options options_from(const Metadata& m, const std::string& file) {
    auto pick = [&](const char* key, std::initializer_list<const char*> names) {
        const std::string v = meta_get(m, key, file);
        int i = 0;
        for (const char* n : names) {
            if (v == n) return i;
            ++i;
        }
        throw bijou::io_error(file + ": __metadata__ '" + key + "' = '" + v + "' is not a value mnist_glow knows");
    };
    bijou::Options o;
    o.steps_per_level = meta_number<int>(m, "steps_per_level", file);
    o.hidden = meta_number<int>(m, "hidden", file);
    o.hidden_layers = meta_number<int>(m, "hidden_layers", file);
    o.seed = meta_number<std::uint64_t>(m, "seed", file);
    o.memory_saving = meta_get(m, "memory_saving", file) == "true";
    if (meta_get(m, "format_version", file) == "1") {
        bijou::CouplingOptions c;
        c.net = pick("net", {"separate", "shared"}) == 0 ? bijou::CouplingNet::separate : bijou::CouplingNet::shared;
        const int sc = pick("scale", {"model_default", "tanh", "sigmoid"});
        c.scale = sc == 0 ? bijou::CouplingScale::model_default : sc == 1 ? bijou::CouplingScale::tanh : bijou::CouplingScale::sigmoid;
        c.mask = pick("mask", {"alternating", "half"}) == 0 ? bijou::MaskKind::alternating : bijou::MaskKind::half;
        c.zero_init_output = meta_get(m, "zero_init_output", file) == "true";
        const bool shuffle = pick("permute", {"reverse", "shuffle"}) == 1;
        o = o.with(c).with(bijou::PermuteOptions{shuffle ? bijou::PermuteKind::shuffle : bijou::PermuteKind::reverse});
    }
    return o;
}

inline std::string fmt_time(double s) {
    if (!std::isfinite(s) || s < 0) return "?";
    char buf[32];
    const long t = std::lround(s);
    if (t >= 3600) std::snprintf(buf, sizeof buf, "%ldh%02ldm%02lds", t / 3600, t / 60 % 60, t % 60);
    else std::snprintf(buf, sizeof buf, "%ldm%02lds", t / 60, t % 60);
    return buf;
}

/// 1024 → "1,024".
inline std::string thousands(long v) {
    const std::string digits = std::to_string(v < 0 ? -v : v);
    std::string s = v < 0 ? "-" : "";
    for (std::size_t k = 0; k < digits.size(); ++k) {
        if (k > 0 && (digits.size() - k) % 3 == 0) s += ',';
        s += digits[k];
    }
    return s;
}

inline double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

/// Mean bits/dim of images [0, n) of `set`, dequantised with a fresh Rng(seed), in chunks of `chunk`.
template <class Model>
double mean_bpd(const Model& model, const ImageSet& set, int n, int n_bits, std::uint64_t seed, int chunk) {
    bijou::Rng noise(seed);
    double sum = 0.0;
    for (int i0 = 0; i0 < n; i0 += chunk) {
        const int m = std::min(chunk, n - i0);
        xt::xtensor<double, 1> bpd;
        if constexpr (Model::conditional)  // log p(x | y), y the image's own label
            bpd = model.bits_per_dim(slice(set, i0, m),
                                     one_hot<Model>(std::span(set.labels).subspan(std::size_t(i0), std::size_t(m))), n_bits,
                                     noise);
        else
            bpd = model.bits_per_dim(slice(set, i0, m), n_bits, noise);
        for (double v : bpd) sum += v;
    }
    return sum / n;
}

/// x̃ at the centre of each n-bit bin (no noise): what interpolate and manipulate encode.
template <class Model>
typename Model::data_tensor centred(const xt::xtensor<std::uint8_t, 4>& x, int n_bits) {
    typename Model::data_tensor r = Model::data_tensor::from_shape(x.shape());
    const double levels = std::ldexp(1.0, n_bits);
    for (std::size_t k = 0; k < x.size(); ++k) r.data()[k] = float((x.data()[k] + 0.5) / levels - 0.5);
    return r;
}

// ---- train ---------------------------------------------------------------------------------------

/// Adam or Adamax, chosen at run time, so that the training loop and the checkpoint code are compiled
/// once per model type rather than once per (model, optimizer) pair (build time; see docs/mnist.md).
/// Offers what train_step (Optimizer) and save/load_checkpoint (CheckpointOptimizer) use. B: the
/// model's backend (the moments live where the parameters do).
template <class B>
class MomentOptimizer {
public:
    using backend = B;

    MomentOptimizer(const std::string& name, std::size_t parameter_count) : name_(name) {
        if (name == "adamax") adamax_.emplace(parameter_count);
        else if (name == "adam") adam_.emplace(parameter_count);
        else throw bijou::invalid_argument("unknown optimizer '" + name + "' (adam or adamax)");
    }
    /// The same kind of optimizer with its state in host memory (checkpoints of a device model).
    MomentOptimizer<bijou::Cpu> host_twin() const {
        MomentOptimizer<bijou::Cpu> h(name_, size());
        return h;
    }
    void step(std::span<float> params, std::span<const float> grads, double lr) {
        adam_ ? adam_->step(params, grads, lr) : adamax_->step(params, grads, lr);
    }
    auto state_tensors() { return adam_ ? adam_->state_tensors() : adamax_->state_tensors(); }
    auto state_tensors() const { return adam_ ? adam_->state_tensors() : adamax_->state_tensors(); }
    long step_count() const { return adam_ ? adam_->step_count() : adamax_->step_count(); }
    void set_step_count(long t) { adam_ ? adam_->set_step_count(t) : adamax_->set_step_count(t); }
    std::size_t size() const { return adam_ ? adam_->size() : adamax_->size(); }
    const bijou::AdamOptions& options() const { return adam_ ? adam_->options() : adamax_->options(); }
    void set_options(const bijou::AdamOptions& o) { adam_ ? adam_->set_options(o) : adamax_->set_options(o); }

private:
    std::string name_;
    std::optional<bijou::Adam<float, B>> adam_;
    std::optional<bijou::Adamax<float, B>> adamax_;
};

template <class Model, class Opt>
int train(const Cli& cli, const std::optional<ResumeState>& rs, Model& model, Opt& opt, const std::string& model_name) {
    const std::string ck = cli.checkpoint;
    const bool resume = rs.has_value();
    // Hyper-parameters of the data stream come from the checkpoint when resuming (so the run
    // continues exactly); the schedule (lr, warm-up, clip) too, unless given again explicitly. `rs`
    // was checked by resume_state() (metadata.hpp) before the model was built.
    auto sched = [&](const char* opt_name, auto from_checkpoint, auto from_cli) {
        return resume && !cli.given.count(opt_name) ? from_checkpoint : from_cli;
    };
    const int n_bits = resume ? rs->n_bits : cli.n_bits;
    const int batch = resume ? rs->batch : cli.batch;
    const int train_size = resume ? rs->train_size : cli.train_size;
    const std::uint64_t seed = resume ? rs->seed : cli.seed;
    const double lr = sched("--lr", rs ? rs->lr : 0.0, cli.lr), clip_bpd = sched("--clip", rs ? rs->clip : 0.0, cli.clip);
    const int warmup = sched("--warmup", rs ? rs->warmup : 0, cli.warmup);
    if (resume)
        for (const char* o : {"--n-bits", "--batch", "--seed", "--train-size", "--model", "--levels", "--steps-per-level",
                              "--hidden", "--optimizer", "--conditional"})
            if (cli.given.count(o))
                std::fprintf(stderr, "mnist_glow: note: %s is ignored with --resume (the checkpoint's value is used)\n", o);

    const auto t_load = Clock::now();
    ImageSet train_set = load_for<Model>(cli.source, Part::train, n_bits, train_size);
    const ImageSet test_set = load_for<Model>(cli.source, Part::test, n_bits, cli.eval_size);
    if constexpr (Model::conditional) {  // before anything else is said about the data
        check_labels(train_set, "train --conditional");
        check_labels(test_set, "train --conditional");
    }
    const std::size_t n_train = std::size_t(train_set.count());
    // The checkpoint's cursor and batch were checked against its train_count: it must be this data's.
    if (resume && n_train != std::size_t(rs->train_count))
        throw bijou::invalid_argument(train_set.name + ": " + std::to_string(n_train) + " images, but " + ck +
                                      " was trained on " + std::to_string(rs->train_count));
    if (n_train < std::size_t(batch))
        throw bijou::invalid_argument("--batch " + std::to_string(batch) + " is larger than the " +
                                      std::to_string(n_train) + " training images");
    // A conditional model's contexts: the labels (one per training image, paired with the images by
    // the sampler) and the batch's one-hot rows.
    [[maybe_unused]] xt::xtensor<std::uint8_t, 1> train_labels, lb;
    [[maybe_unused]] typename Model::context_tensor cb;
    if constexpr (Model::conditional) {
        train_labels = xt::xtensor<std::uint8_t, 1>::from_shape({n_train});
        std::copy(train_set.labels.begin(), train_set.labels.end(), train_labels.begin());
        lb = xt::xtensor<std::uint8_t, 1>::from_shape({std::size_t(batch)});
        cb = Model::context_tensor::from_shape({std::size_t(batch), std::size_t(n_labels)});
    }
    const double load_s = since(t_load);

    // Data-parallel under mpirun (docs/distributed.md): every rank draws the same global batch, keeps
    // its shard of rows and dequantises them with the noise keyed by (seed, step, row in the global
    // batch) that one process would give them, and trains on them; one all-reduce per step sums
    // the gradients (bijou::distributed::DataParallel). Rank 0 makes the time-based decisions (stop,
    // the anneal's lr, save) and broadcasts them; it alone evaluates, prints and writes files.
    const int processes = cli.world ? cli.world->size() : 1;
    const bool root = !cli.world || cli.world->rank() == 0;
    std::optional<bijou::distributed::DataParallel<example::World>> dp;
    bijou::distributed::Shard shard{0, batch};
    if (processes > 1) {
        if (batch < 2 * processes)
            throw bijou::invalid_argument("--batch " + std::to_string(batch) + " over " + std::to_string(processes) +
                                          " processes: each needs at least 2 images of every batch");
        if constexpr (bijou::ExecutorBackend<typename Model::backend>) {
            throw bijou::invalid_argument("--device cuda trains on one process: run it without mpirun (or with -np 1)");
        } else {
            dp.emplace(*cli.world);
            shard = dp->shard(batch);
            dp->broadcast_parameters(model);  // rank 0's parameters (a resumed run: the same file's)
        }
        if (resume) {  // every rank must have read the same training state (the same file on every host)
            double state[3] = {double(rs->step), double(rs->epoch), double(rs->cursor)};
            const double mine[3] = {state[0], state[1], state[2]};
            cli.world->broadcast(state, 3, 0);
            if (!std::equal(state, state + 3, mine))
                throw bijou::distributed_error(ck + " on this rank is at step " + std::to_string(rs->step) +
                                               ", rank 0's at step " + std::to_string(long(state[0])) +
                                               ": every rank must resume from the same checkpoint (the same file on "
                                               "every host)");
        }
    }

    long step = resume ? rs->step : 0, epoch = resume ? rs->epoch : 0;
    std::size_t cursor = resume ? rs->cursor : 0;
    double init_s = 0.0;
    if (!resume) {
        // ActNorm's data-dependent initialisation on a random batch (its own Rng: the training stream
        // does not depend on it).
        bijou::Rng init_rng(seed + 1);
        if (cli.init_size == 1)
            throw bijou::invalid_argument("--init-size 1: ActNorm's data-dependent initialisation needs at least 2 images");
        const std::size_t init_n = std::size_t(cli.init_size > 0 ? cli.init_size : batch);
        std::vector<std::size_t> idx(std::min(init_n, n_train));
        for (auto& i : idx) i = std::size_t(init_rng.below(n_train));
        if (int(idx.size()) < 2 * processes)
            throw bijou::invalid_argument("ActNorm's initialisation batch of " + std::to_string(idx.size()) + " images over " +
                                          std::to_string(processes) + " processes: each needs at least 2 (raise --init-size)");
        auto xi = xt::xtensor<std::uint8_t, 4>::from_shape({idx.size(), std::size_t(channels_of<Model>), side, side});
        bijou::gather_rows(train_set.x, idx, xi);
        const auto ti = Clock::now();
        const auto xd = model.dequantize(xi, n_bits, init_rng);  // every rank: the whole batch's noise
        [[maybe_unused]] typename Model::context_tensor ci;
        if constexpr (Model::conditional) {
            std::vector<std::uint8_t> li(idx.size());
            for (std::size_t k = 0; k < idx.size(); ++k) li[k] = train_set.labels[idx[k]];
            ci = one_hot<Model>(li);
        }
        auto initialize = [&](auto&&... c) {
            if constexpr (!bijou::ExecutorBackend<typename Model::backend>) {
                if (dp) {  // this rank's rows; ActNorm's statistics summed over the ranks
                    const auto s = dp->shard(int(idx.size()));
                    auto x_local = Model::data_tensor::from_shape(
                        {std::size_t(s.size()), std::size_t(channels_of<Model>), side, side});
                    copy_rows(xd, s, x_local);
                    if constexpr (sizeof...(c) == 0) {
                        dp->initialize(model, x_local);
                    } else {
                        auto c_local = Model::context_tensor::from_shape({std::size_t(s.size()), std::size_t(n_labels)});
                        copy_rows(c..., s, c_local);
                        dp->initialize(model, x_local, c_local);
                    }
                    return;
                }
            }
            model.initialize(xd, c...);
        };
        if constexpr (Model::conditional) initialize(ci);
        else initialize();
        init_s = since(ti);
    }

    // The data order: epoch e is a permutation that depends on (seed, e) only, so a resumed run
    // rebuilds it from the checkpoint's epoch and cursor.
    bijou::EpochSampler sampler(n_train, {.seed = seed, .epoch = epoch, .cursor = cursor});

    const double D_ln2 = Model::D * std::numbers::ln2;
    const bijou::TrainConfig cfg{.lr = lr, .warmup = warmup, .clip = clip_bpd * D_ln2};
    auto to_bpd = [&](double nats) { return Model::nats_to_bits_per_dim(nats, n_bits); };

    // The images' size before padding: `sample --each` crops its PNGs to it.
    const std::string image_size = std::to_string(train_set.cols) + "x" + std::to_string(train_set.rows);
    auto save = [&]() {
        const auto t = Clock::now();
        bijou::CheckpointMetadata extra{
            {"train.step", std::to_string(step)},          {"train.epoch", std::to_string(sampler.epoch())},
            {"train.cursor", std::to_string(sampler.cursor())},
            {"train.seed", std::to_string(seed)},          {"train.n_bits", std::to_string(n_bits)},
            {"train.batch", std::to_string(batch)},        {"train.lr", bijou::number_setting(lr)},
            {"train.warmup", std::to_string(warmup)},      {"train.clip", bijou::number_setting(clip_bpd)},
            {"train.optimizer", cli.optimizer_name},       {"train.train_count", std::to_string(n_train)},
            {"train.train_size", std::to_string(train_size)},
            {"train.data", cli.source.kind},               {"train.image_size", image_size},
            {"train.processes", std::to_string(processes)}, {"example", "mnist_glow"}};
        // Every rank holds the same state (checked: their parameters are rank 0's, bit for bit); rank 0
        // writes it (atomically) once all have reached here.
        if constexpr (!bijou::ExecutorBackend<typename Model::backend>)
            if (dp) dp->check_in_sync(model);
        if (root) bijou::save_checkpoint(ck, model, opt, extra);
        return since(t);
    };

    const double budget = cli.minutes * 60.0;
    const int eval_n = test_set.count();
    std::printf("mnist_glow train: %s, %zu parameters, %s, batch %d, lr %g (warm-up %d), clip %g bits/dim, %d-bit, "
                "%d threads\n  data %s: %zu training images (%dx%dx%d), %d test images for the running test bits/dim (load "
                "%.1f s)\n",
                model_name.c_str(), model.parameter_count(), cli.optimizer_name.c_str(), batch, lr, warmup, clip_bpd,
                n_bits, bijou::num_threads(), cli.source.spec().c_str(), n_train, train_set.channels, train_set.rows,
                train_set.cols, eval_n, load_s);
    if (!resume)
        std::printf("  ActNorm data-dependent initialisation on %d images: %.1f s\n", cli.init_size > 0 ? cli.init_size : batch,
                    init_s);
    if (cli.decay > 0)
        std::printf("  lr annealed linearly to 0 over the final %.0f%% of the run\n", 100 * cli.decay);
    if (resume) std::printf("  resumed from %s at step %ld (epoch %ld, image %zu)\n", ck.c_str(), step, epoch, cursor);
    if (processes > 1)
        std::printf("  data-parallel: %d processes x %d threads, %d or %d images of each batch per process\n", processes,
                    bijou::num_threads(), batch / processes, (batch + processes - 1) / processes);
    if (Model::conditional)
        std::printf("  class-conditional: each image's digit label is the model's context; bits/dim are of log p(x | y)\n");
    std::fflush(stdout);

    // Estimates that keep the whole process within --minutes: the time of a step, of a save and of
    // the final evaluation are reserved before each step is started.
    const double ckpt_bytes = double(model.parameter_count()) * 3 * sizeof(typename Model::scalar);
    double save_est = 0.3 + ckpt_bytes / 50e6, eval_per_image = -1.0, step_est = 0.0;
    // Before the first measured evaluation: a forward pass costs about a third of a training step
    // (forward + backward); half is a safe guess.
    auto eval_est = [&]() { return eval_n * (eval_per_image > 0 ? eval_per_image : 0.5 * step_est / batch); };

    auto xb = xt::xtensor<std::uint8_t, 4>::from_shape({std::size_t(batch), std::size_t(channels_of<Model>), side, side});
    // This rank's rows of each batch (and of its contexts): data-parallel runs only.
    auto xb_local = xt::xtensor<std::uint8_t, 4>::from_shape({std::size_t(shard.size()), std::size_t(channels_of<Model>), side, side});
    [[maybe_unused]] typename Model::context_tensor c_local;
    if constexpr (Model::conditional) c_local = Model::context_tensor::from_shape({std::size_t(shard.size()), std::size_t(n_labels)});
    model.reserve(shard.size());

    const auto t_train = Clock::now();
    const double loop_start = process_seconds();
    const long step0 = step;
    const double image0 = double(epoch) * double(n_train) + double(cursor);
    // How far this run is, in [0, 1]: by time (until the loop must stop to leave room for the final
    // save and evaluation), by --steps or by --epochs, whichever is furthest. It drives the final
    // anneal (--decay): the lr multiplier is 1 until progress 1 − decay, then falls linearly to 0.
    const bijou::LinearAnneal anneal{.fraction = cli.decay};
    auto progress = [&]() {
        const double stop_at = budget - save_est - eval_est() - 0.3;
        double p = stop_at > loop_start ? (process_seconds() - loop_start) / (stop_at - loop_start) : 1.0;
        if (cli.max_steps > step0) p = std::max(p, double(step - step0) / double(cli.max_steps - step0));
        const double images_end = double(cli.epochs) * double(n_train);
        if (cli.epochs > 0 && images_end > image0)
            p = std::max(p, (double(sampler.epoch()) * double(n_train) + double(sampler.cursor()) - image0) /
                                (images_end - image0));
        return p;
    };
    double last_log = 0.0, last_eval = 0.0, last_save = 0.0, run_loss = 0.0, last_train_bpd = NAN, last_test_bpd = NAN;
    long run_n = 0, skipped = 0, consecutive_skips = 0;
    std::string stopped = "time";
    for (;;) {
        // Rank 0's clock decides: {stop (1 signal, 2 time), the anneal's lr multiplier, save after
        // this step}, broadcast so that every rank stops, anneals and saves together.
        double decide[3] = {0.0, 1.0, 0.0};
        if (root) {
            decide[0] = stop_requested() ? 1.0
                        : process_seconds() + 1.5 * step_est + save_est + eval_est() + 0.3 > budget ? 2.0 : 0.0;
            decide[1] = anneal.at(progress());
            decide[2] = cli.save_every > 0 && since(t_train) - last_save >= cli.save_every * 60.0 ? 1.0 : 0.0;
        }
        if (dp) dp->communicator().broadcast(decide, 3, 0);
        if (decide[0] == 1.0) { stopped = "signal"; break; }
        if (cli.epochs > 0 && sampler.epoch() >= cli.epochs) { stopped = "epochs"; break; }
        if (cli.max_steps > 0 && step >= cli.max_steps) { stopped = "steps"; break; }
        if (decide[0] == 2.0) { stopped = "time"; break; }

        if constexpr (Model::conditional) {
            sampler.next_batch(train_set.x, xb, train_labels, lb);  // image i and its label: the same index
            fill_one_hot(std::span<const std::uint8_t>(lb.data(), lb.size()), cb);
        } else {
            sampler.next_batch(train_set.x, xb);
        }
        const auto ts = Clock::now();
        bijou::TrainConfig step_cfg = cfg;
        step_cfg.lr = cfg.lr * decide[1];
        auto on_skip = [&](const std::string& m) {
            if (root) std::fprintf(stderr, "mnist_glow: %s\n", m.c_str());
        };
        // This rank's images (all of them in one process), dequantised with the noise of their rows
        // in the global batch: a function of (seed, step, row), the same on any rank and on resume.
        if (dp) copy_rows(xb, shard, xb_local);
        const auto xd = model.dequantize_keyed(dp ? xb_local : xb, n_bits, bijou::CounterRng::key(seed + 2, std::uint64_t(step), 0),
                                               std::size_t(shard.begin));
        const auto r = [&] {
            if constexpr (!bijou::ExecutorBackend<typename Model::backend>) {
                if (dp) {
                    if constexpr (Model::conditional) {
                        copy_rows(cb, shard, c_local);
                        return dp->train_step(model, opt, xd, c_local, batch, step_cfg, step, on_skip);
                    } else {
                        return dp->train_step(model, opt, xd, batch, step_cfg, step, on_skip);
                    }
                }
            }
            if constexpr (Model::conditional) return bijou::train_step(model, opt, xd, cb, step_cfg, step, on_skip);
            else return bijou::train_step(model, opt, xd, step_cfg, step, on_skip);
        }();
        const double dt = since(ts);
        // The first step of a run sizes the arena and warms the caches: it does not count.
        if (step > step0) step_est = step_est == 0.0 ? dt : 0.9 * step_est + 0.1 * dt;
        ++step;
        if (r.skipped) {
            ++skipped;
            if (++consecutive_skips >= 50)
                throw bijou::numerical_error("50 consecutive training steps had a non-finite loss or gradient; stopping "
                                             "(try a lower --lr or --clip)");
        } else {
            consecutive_skips = 0;
            run_loss += r.loss, ++run_n;
        }

        const double el = since(t_train);
        if (el - last_log >= cli.log_every || step == step0 + 1) {
            const double ips = double(step - step0) * batch / el;
            double eta = budget - process_seconds();
            if (cli.epochs > 0)
                eta = std::min(eta, (double(cli.epochs) * n_train -
                                     (double(sampler.epoch()) * n_train + sampler.cursor())) / ips);
            if (cli.max_steps > 0) eta = std::min(eta, double(cli.max_steps - step) * batch / ips);
            last_train_bpd = run_n ? to_bpd(run_loss / run_n) : NAN;
            std::printf("step %6ld  epoch %.2f  loss %.3f bits/dim  |g| %.3g  lr %.2e  %.0f img/s  elapsed %s  eta %s\n",
                        step, sampler.epoch() + double(sampler.cursor()) / n_train, last_train_bpd, r.grad_norm / D_ln2,
                        r.lr, ips, fmt_time(process_seconds()).c_str(), fmt_time(eta).c_str());
            std::fflush(stdout);
            last_log = el, run_loss = 0.0, run_n = 0;
        }
        if (root && cli.eval_every > 0 && el - last_eval >= cli.eval_every * 60.0 &&
            process_seconds() + 2 * eval_est() + save_est + step_est < budget) {
            const auto te = Clock::now();
            last_test_bpd = mean_bpd(model, test_set, eval_n, n_bits, seed + 3, batch);
            eval_per_image = since(te) / eval_n;
            std::printf("step %6ld  test bits/dim %.4f (%d images, %.1f s)  elapsed %s\n", step, last_test_bpd, eval_n,
                        since(te), fmt_time(process_seconds()).c_str());
            std::fflush(stdout);
            last_eval = since(t_train);
        }
        if (decide[2] == 1.0) {  // rank 0's decision at the top of this step
            save_est = std::max(save_est, 1.5 * save());
            last_save = since(t_train);
        }
    }
    const double train_s = since(t_train);
    if (stopped == "signal") std::printf("interrupted: saving %s\n", ck.c_str());
    save();
    if (!root) return 0;  // rank 0 evaluates and reports
    std::printf("saved %s (step %ld)\n", ck.c_str(), step);
    std::fflush(stdout);

    const auto te = Clock::now();
    last_test_bpd = mean_bpd(model, test_set, eval_n, n_bits, seed + 3, batch);
    std::printf("test bits/dim on %d images: %.4f (%.1f s)\n", eval_n, last_test_bpd, since(te));
    if (run_n) last_train_bpd = to_bpd(run_loss / run_n);
    const double ips = train_s > 0 ? double(step - step0) * batch / train_s : 0.0;
    std::printf("{\"example\":\"mnist_glow\",\"command\":\"train\",\"model\":\"%s\",\"levels\":%d,\"steps_per_level\":%d,"
                "\"hidden\":%d,\"parameters\":%zu,\"optimizer\":\"%s\",\"batch\":%d,\"lr\":%g,\"n_bits\":%d,\"threads\":%d,"
                "\"steps\":%ld,\"steps_this_run\":%ld,\"epochs\":%.4f,\"skipped\":%ld,\"images_per_s\":%.1f,"
                "\"train_seconds\":%.2f,\"seconds\":%.2f,\"train_bpd\":%.4f,\"test_bpd\":%.4f,\"test_images\":%d,"
                "\"stopped\":\"%s\",\"checkpoint\":\"%s\",\"processes\":%d,\"allreduce_seconds\":%.2f%s}\n",
                model_name.c_str(), Model::levels(), model.options().steps_per_level, model.options().hidden,
                model.parameter_count(), cli.optimizer_name.c_str(), batch, lr, n_bits, bijou::num_threads(), step,
                step - step0, sampler.epoch() + double(sampler.cursor()) / n_train, skipped, ips, train_s, process_seconds(),
                std::isfinite(last_train_bpd) ? last_train_bpd : -1.0, last_test_bpd, eval_n, stopped.c_str(), ck.c_str(),
                processes, dp ? dp->allreduce_seconds() : 0.0, Model::conditional ? ",\"conditional\":true" : "");
    return stopped == "signal" ? 130 : 0;
}

// ---- eval, sample, interpolate, manipulate -------------------------------------------------------

template <class Model>
int eval(const Cli& cli, const Model& model, int n_bits, const std::string& model_name) {
    const auto t = Clock::now();
    const ImageSet test = load_for<Model>(cli.source, Part::test, n_bits, cli.limit);
    const auto te = Clock::now();
    if constexpr (Model::conditional) check_labels(test, "eval of a class-conditional model");
    const double bpd = mean_bpd(model, test, test.count(), n_bits, cli.seed, 100);
    const double eval_s = since(te);
    // The same bits per image over the real (unpadded) values: an upper bound on the model's bits/dim
    // of the 28×28 content, since the bits spent on the always-zero padding are counted in it.
    const double bpd_real = bpd * Model::D / test.real_values();
    if (Model::conditional)
        std::printf("class-conditional: bits/dim of log p(x | y), y the test image's own label\n");
    if (test.real_values() < Model::D)
        std::printf("test bits/dim: %.4f (over the %s padded dimensions; <= %.4f over the %s real %s)\n", bpd,
                    thousands(Model::D).c_str(), bpd_real, thousands(test.real_values()).c_str(),
                    test.channels == 1 ? "pixels" : "values");
    else
        std::printf("test bits/dim: %.4f (over the %s dimensions)\n", bpd, thousands(Model::D).c_str());
    // "test_bpd_784": the name from when every image was MNIST's 28×28; it is per real value.
    std::printf("{\"example\":\"mnist_glow\",\"command\":\"eval\",\"model\":\"%s\",\"levels\":%d,\"n_bits\":%d,"
                "\"data\":\"%s\",\"test_images\":%d,\"test_bpd\":%.6f,\"test_bpd_784\":%.6f,\"seed\":%llu,\"threads\":%d,"
                "\"images_per_s\":%.1f,\"seconds\":%.2f%s}\n",
                model_name.c_str(), Model::levels(), n_bits, cli.source.kind.c_str(), test.count(), bpd, bpd_real,
                (unsigned long long)cli.seed,
                bijou::num_threads(), test.count() / eval_s, since(t), Model::conditional ? ",\"conditional\":true" : "");
    return 0;
}

/// classify (conditional models): for each test image x̃ (dequantised once), log p(x̃ | y) for every
/// y = 0..9, predicted digit = argmax_y (Bayes' rule under a uniform prior over the digits).
template <class Model>
int classify(const Cli& cli, const Model& model, int n_bits, const std::string& model_name) {
    const auto t = Clock::now();
    const ImageSet test = load_for<Model>(cli.source, Part::test, n_bits, cli.limit);
    check_labels(test, "classify");
    const int n = test.count();
    const auto te = Clock::now();
    // Chunks of `chunk` images, each repeated 10 times with the 10 one-hot rows: one log_prob call of
    // chunk·10 rows per chunk.
    constexpr int chunk = 10;
    bijou::Rng noise(cli.seed);
    std::vector<std::array<long, n_labels>> confusion(n_labels);  // [true][predicted]
    for (auto& row : confusion) row.fill(0);
    double bpd_true = 0.0, bpd_marginal = 0.0;
    long correct = 0;
    std::vector<std::uint8_t> labels_rep;
    for (int i0 = 0; i0 < n; i0 += chunk) {
        const int m = std::min(chunk, n - i0);
        const auto xd = model.dequantize(slice(test, i0, m), n_bits, noise);  // the same x̃ for all 10 labels
        auto xr = Model::data_tensor::from_shape({std::size_t(m) * n_labels, std::size_t(channels_of<Model>), side, side});
        labels_rep.resize(std::size_t(m) * n_labels);
        for (int i = 0; i < m; ++i)
            for (int y = 0; y < n_labels; ++y) {
                const std::size_t row = std::size_t(i) * n_labels + std::size_t(y);
                std::copy_n(xd.data() + std::size_t(i) * Model::D, Model::D, xr.data() + row * Model::D);
                labels_rep[row] = std::uint8_t(y);
            }
        const auto lp = model.log_prob(xr, one_hot<Model>(labels_rep));
        for (int i = 0; i < m; ++i) {
            const std::size_t r0 = std::size_t(i) * n_labels;
            int best = 0;
            double top = -INFINITY;
            for (int y = 0; y < n_labels; ++y)
                if (double(lp(r0 + std::size_t(y))) > top) top = double(lp(r0 + std::size_t(y))), best = y;
            const int truth = test.labels[std::size_t(i0 + i)];
            ++confusion[std::size_t(truth)][std::size_t(best)];
            correct += best == truth;
            // log p(x̃) = log Σ_y p(y) p(x̃ | y) with p(y) = 1/10.
            double s = 0.0;
            for (int y = 0; y < n_labels; ++y) s += std::exp(double(lp(r0 + std::size_t(y))) - top);
            const double log_px = std::isfinite(top) ? top + std::log(s) - std::log(double(n_labels)) : -INFINITY;
            bpd_true += Model::nats_to_bits_per_dim(-double(lp(r0 + std::size_t(truth))), n_bits);
            bpd_marginal += Model::nats_to_bits_per_dim(-log_px, n_bits);
        }
    }
    const double classify_s = since(te), accuracy = double(correct) / n;
    std::printf("classify: %d test images, each scored under all %d labels (log p(x | y), one dequantisation per image)\n",
                n, n_labels);
    std::printf("per-digit accuracy (true digit: correct/images):\n ");
    for (int d = 0; d < n_labels; ++d) {
        long total = 0;
        for (long v : confusion[std::size_t(d)]) total += v;
        std::printf(" %d: %ld/%ld%s", d, confusion[std::size_t(d)][std::size_t(d)], total,
                    total ? (" (" + std::to_string(std::lround(100.0 * double(confusion[std::size_t(d)][std::size_t(d)]) / double(total))) + "%)").c_str() : "");
    }
    std::printf("\nconfusion (rows: true digit, columns: predicted):\n      ");
    for (int p = 0; p < n_labels; ++p) std::printf("%6d", p);
    std::printf("\n");
    for (int d = 0; d < n_labels; ++d) {
        std::printf("  %d:  ", d);
        for (int p = 0; p < n_labels; ++p) std::printf("%6ld", confusion[std::size_t(d)][std::size_t(p)]);
        std::printf("\n");
    }
    std::printf("bits/dim (%s dimensions): log p(x | true y) %.4f; log p(x) = log(1/10 sum_y p(x | y)) %.4f\n",
                thousands(Model::D).c_str(), bpd_true / n, bpd_marginal / n);
    std::printf("test accuracy: %.4f (%ld of %d) in %.1f s (%.1f images/s)\n", accuracy, correct, n, classify_s,
                n / classify_s);
    std::printf("{\"example\":\"mnist_glow\",\"command\":\"classify\",\"model\":\"%s\",\"n_bits\":%d,\"test_images\":%d,"
                "\"accuracy\":%.6f,\"correct\":%ld,\"bpd_given_label\":%.6f,\"bpd_marginal\":%.6f,\"seed\":%llu,"
                "\"threads\":%d,\"images_per_s\":%.1f,\"seconds\":%.2f}\n",
                model_name.c_str(), n_bits, n, accuracy, correct, bpd_true / n, bpd_marginal / n,
                (unsigned long long)cli.seed, bijou::num_threads(), n / classify_s, since(t));
    return 0;
}

/// The size of the training images before padding (cols × rows), which `sample --each` crops to:
/// the checkpoint's train.image_size, else 28×28 for a 1-channel model (checkpoints written before
/// mnist_glow read other data were all MNIST) and 32×32 for a 3-channel one.
struct ImageSize {
    int cols = side, rows = side;
};

inline ImageSize checkpoint_image_size(const Metadata& m, int channels, const std::string& file) {
    const auto it = m.find("train.image_size");
    if (it == m.end()) return channels == 1 ? ImageSize{28, 28} : ImageSize{};
    const std::string& v = it->second;
    const auto x = v.find('x');
    ImageSize s;
    if (x == std::string::npos ||
        std::from_chars(v.data(), v.data() + x, s.cols).ptr != v.data() + x ||
        std::from_chars(v.data() + x + 1, v.data() + v.size(), s.rows).ptr != v.data() + v.size() || s.cols < 1 ||
        s.cols > side || s.rows < 1 || s.rows > side)
        throw bijou::io_error(file + ": __metadata__ 'train.image_size' = '" + v + "' is not WxH with 1 <= W, H <= 32");
    return s;
}

/// Writes each of the n images of x (model space, C×32×32) as its own PNG of the training images'
/// size (the central `size`, padding cropped) into `dir`: 000.png, 001.png, …
inline void write_each(const fs::path& dir, const float* x, int n, int channels, ImageSize size, int n_bits) {
    fs::create_directories(dir);
    const int top = (side - size.rows) / 2, left = (side - size.cols) / 2;
    const std::size_t image = std::size_t(channels) * plane;
    const std::size_t width = std::max<std::size_t>(3, std::to_string(std::max(0, n - 1)).size());
    for (int i = 0; i < n; ++i) {
        const auto g = to_grey(x + std::size_t(i) * image, image, n_bits);
        example::Canvas c(size.cols, size.rows);
        for (int y = 0; y < size.rows; ++y)
            for (int q = 0; q < size.cols; ++q) {
                const std::uint8_t* p = g.data() + std::size_t(y + top) * side + std::size_t(q + left);
                c.at(q, y) = channels == 1 ? example::Rgb{p[0], p[0], p[0]} : example::Rgb{p[0], p[plane], p[2 * plane]};
            }
        std::string name = std::to_string(i);  // zero-padded to the width of the largest index
        name.insert(0, width - std::min(width, name.size()), '0');
        example::write_png(dir / (name + ".png"), c, channels == 1);  // gray PNGs of a 1-channel model
    }
}

template <class Model>
int sample(const Cli& cli, const Model& model, int n_bits, ImageSize size) {
    constexpr int C = channels_of<Model>;
    fs::create_directories(cli.out);
    auto temp_str = [](double t) {
        char b[32];
        std::snprintf(b, sizeof b, "%.2f", t);
        return std::string(b);
    };
    if constexpr (Model::conditional) {
        if (cli.digit >= 0) {  // --digit D: --count samples of digit D, a square-ish grid
            const int cols = std::max(1, int(std::lround(std::ceil(std::sqrt(double(cli.count))))));
            const int rows = (cli.count + cols - 1) / cols;
            for (double t : cli.temperatures) {
                bijou::Rng rng(cli.seed);
                const auto x = model.sample(cli.count, one_hot_digit<Model>(cli.digit), t, rng);
                const fs::path file = fs::path(cli.out) / ("samples_digit" + std::to_string(cli.digit) + "_t" + temp_str(t) + ".png");
                example::write_png(file, grid(to_grey(x.data(), x.size(), n_bits), C, rows, cols, cli.zoom));
                std::printf("wrote %s (%d samples of digit %d at temperature %.2f)\n", file.c_str(), cli.count, cli.digit, t);
                if (cli.each) {
                    const fs::path dir = fs::path(cli.out) / ("digit_" + std::to_string(cli.digit) + "_t" + temp_str(t));
                    write_each(dir, x.data(), cli.count, C, size, n_bits);
                    std::printf("wrote %d %dx%d PNGs in %s\n", cli.count, size.cols, size.rows, dir.c_str());
                }
            }
            return 0;
        }
        // No --digit: one row per digit 0..9, --per-digit columns (default ⌈count / 10⌉).
        const int cols = cli.per_digit > 0 ? cli.per_digit : std::max(1, (cli.count + n_labels - 1) / n_labels);
        std::vector<std::uint8_t> labels(std::size_t(n_labels) * std::size_t(cols));
        for (std::size_t k = 0; k < labels.size(); ++k) labels[k] = std::uint8_t(k / std::size_t(cols));
        const auto c = one_hot<Model>(labels);
        for (double t : cli.temperatures) {
            bijou::Rng rng(cli.seed);
            const auto x = model.sample(int(labels.size()), c, t, rng);
            const fs::path file = fs::path(cli.out) / ("samples_t" + temp_str(t) + ".png");
            example::write_png(file, grid(to_grey(x.data(), x.size(), n_bits), C, n_labels, cols, cli.zoom));
            std::printf("wrote %s (one row per digit 0..9, %d samples each, at temperature %.2f)\n", file.c_str(), cols, t);
            if (cli.each)
                for (int d = 0; d < n_labels; ++d) {
                    const fs::path dir = fs::path(cli.out) / ("digit_" + std::to_string(d) + "_t" + temp_str(t));
                    write_each(dir, x.data() + std::size_t(d) * std::size_t(cols) * Model::D, cols, C, size, n_bits);
                    std::printf("wrote %d %dx%d PNGs in %s\n", cols, size.cols, size.rows, dir.c_str());
                }
        }
        return 0;
    } else {
        const int cols = std::max(1, int(std::lround(std::ceil(std::sqrt(double(cli.count))))));
        const int rows = (cli.count + cols - 1) / cols;
        for (double t : cli.temperatures) {
            bijou::Rng rng(cli.seed);
            const auto x = model.sample(cli.count, t, rng);
            char name[64];
            std::snprintf(name, sizeof name, "samples_t%.2f.png", t);
            example::write_png(fs::path(cli.out) / name, grid(to_grey(x.data(), x.size(), n_bits), C, rows, cols, cli.zoom));
            std::printf("wrote %s (%d samples at temperature %.2f)\n", (fs::path(cli.out) / name).c_str(), cli.count, t);
            if (cli.each) {
                const fs::path dir = fs::path(cli.out) / ("samples_t" + temp_str(t));
                write_each(dir, x.data(), cli.count, C, size, n_bits);
                std::printf("wrote %d %dx%d PNGs in %s\n", cli.count, size.cols, size.rows, dir.c_str());
            }
        }
        return 0;
    }
}

template <class Model>
int interpolate(const Cli& cli, const Model& model, int n_bits) {
    const ImageSet test = load_for<Model>(cli.source, Part::test, n_bits);
    for (int i : {cli.a, cli.b})
        if (i < 0 || i >= test.count())
            throw bijou::invalid_argument("interpolate: test image " + std::to_string(i) + " does not exist (0.." +
                                          std::to_string(test.count() - 1) + ")");
    const auto xa = slice(test, cli.a, 1), xb = slice(test, cli.b, 1);
    if constexpr (Model::conditional) check_labels(test, "interpolate on a class-conditional model");
    const int label_a = test.has_labels() ? test.labels[std::size_t(cli.a)] : -1;
    const int label_b = test.has_labels() ? test.labels[std::size_t(cli.b)] : -1;
    const auto path = [&] {
        if constexpr (Model::conditional) {  // image a's label is the context of the whole path
            if (label_a >= n_labels)
                throw bijou::invalid_argument("interpolate: test image " + std::to_string(cli.a) + " has label " +
                                              std::to_string(label_a) + "; the class-conditional model knows 0..9");
            return model.interpolate(centred<Model>(xa, n_bits), centred<Model>(xb, n_bits), one_hot_digit<Model>(label_a),
                                     cli.points);
        } else {
            return model.interpolate(centred<Model>(xa, n_bits), centred<Model>(xb, n_bits), cli.points);
        }
    }();
    std::vector<std::uint8_t> grey = to_grey(xa.data(), Model::D, n_bits);  // original a, the path, original b
    const auto mid = to_grey(path.data(), path.size(), n_bits);
    grey.insert(grey.end(), mid.begin(), mid.end());
    const auto gb = to_grey(xb.data(), Model::D, n_bits);
    grey.insert(grey.end(), gb.begin(), gb.end());
    fs::create_directories(cli.out);
    const fs::path file = fs::path(cli.out) / "interpolation.png";
    example::write_png(file, grid(grey, channels_of<Model>, 1, cli.points + 2, cli.zoom, {0, cli.points + 1}));
    const std::string what = label_name(cli.source);
    auto with_label = [&](int i, int label) {
        return std::to_string(i) + (label >= 0 ? " (" + what + " " + std::to_string(label) + ")" : "");
    };
    std::printf("wrote %s (test images %s -> %s, %d points; originals framed at both ends%s)\n", file.c_str(),
                with_label(cli.a, label_a).c_str(), with_label(cli.b, label_b).c_str(), cli.points,
                Model::conditional
                    ? ("; the whole path conditioned on " + what + " " + std::to_string(label_a) + ", image a's label").c_str()
                    : "");
    return 0;
}

/// manipulate on a class-conditional model: encode test images of digit A with their own label, decode
/// the same latent with label B. Row r: the original (framed), f⁻¹(f(x | A) | A) (the reconstruction)
/// and f⁻¹(f(x | A) | B): the same style, drawn as digit B.
template <class Model>
int manipulate_conditional(const Cli& cli, const Model& model, const ImageSet& test, int n_bits) {
    for (int d : {cli.from, cli.to})
        if (d >= n_labels)
            throw bijou::invalid_argument("manipulate: label " + std::to_string(d) +
                                          ": the class-conditional model knows labels 0..9");
    if (cli.given.count("--strengths"))
        std::fprintf(stderr, "mnist_glow: note: --strengths is not used on a class-conditional checkpoint (it swaps the label)\n");
    std::vector<std::size_t> idx;
    for (int i = 0; i < test.count() && int(idx.size()) < cli.rows; ++i)
        if (test.labels[std::size_t(i)] == cli.from) idx.push_back(std::size_t(i));
    if (idx.empty()) throw bijou::invalid_argument("manipulate: no test image has label " + std::to_string(cli.from));
    const int rows = int(idx.size()), cols = 3;
    xt::xtensor<std::uint8_t, 4> x = xt::xtensor<std::uint8_t, 4>::from_shape({idx.size(), std::size_t(channels_of<Model>), side, side});
    bijou::gather_rows(test.x, idx, x);
    const std::vector<std::uint8_t> la(idx.size(), std::uint8_t(cli.from)), lb(idx.size(), std::uint8_t(cli.to));
    const auto ca = one_hot<Model>(la), cb = one_hot<Model>(lb);
    const auto z = model.forward(centred<Model>(x, n_bits), ca).z;
    const auto rec = model.inverse(z, ca).x, swapped = model.inverse(z, cb).x;
    const auto orig = to_grey(x.data(), x.size(), n_bits), g_rec = to_grey(rec.data(), rec.size(), n_bits),
               g_swap = to_grey(swapped.data(), swapped.size(), n_bits);
    std::vector<std::uint8_t> grey;
    for (int r = 0; r < rows; ++r)
        for (const auto* g : {&orig, &g_rec, &g_swap})
            grey.insert(grey.end(), g->begin() + std::ptrdiff_t(r) * Model::D, g->begin() + std::ptrdiff_t(r + 1) * Model::D);
    fs::create_directories(cli.out);
    const fs::path file = fs::path(cli.out) / "manipulation.png";
    example::write_png(file, grid(grey, channels_of<Model>, rows, cols, cli.zoom, {0}));
    const std::string what = label_name(cli.source);
    std::printf("wrote %s: %d test images of %s %d (framed), each encoded with its label %d, then decoded with "
                "label %d (reconstruction) and with label %d (class-conditional: the same latent, another %s)\n",
                file.c_str(), rows, what.c_str(), cli.from, cli.from, cli.from, cli.to, what.c_str());
    return 0;
}

/// manipulate on an unconditional model: Glow's attribute manipulation along mean latent differences.
template <class Model>
int manipulate_mean_latents(const Cli& cli, const Model& model, const ImageSet& test, int n_bits) {
    // Mean latent z = f(x) (every level's ε, concatenated) of the test images of each digit.
    auto mean_latent = [&](int digit, std::vector<int>* members) {
        std::vector<std::size_t> idx;
        for (int i = 0; i < test.count(); ++i)
            if (test.labels[std::size_t(i)] == digit) idx.push_back(std::size_t(i));
        if (idx.empty()) throw bijou::invalid_argument("manipulate: no test image has label " + std::to_string(digit));
        if (members) members->assign(idx.begin(), idx.end());
        std::vector<double> mean(Model::D, 0.0);
        for (std::size_t i0 = 0; i0 < idx.size(); i0 += 256) {
            const std::vector<std::size_t> part(idx.begin() + std::ptrdiff_t(i0),
                                                idx.begin() + std::ptrdiff_t(std::min(idx.size(), i0 + 256)));
            xt::xtensor<std::uint8_t, 4> x = xt::xtensor<std::uint8_t, 4>::from_shape({part.size(), std::size_t(channels_of<Model>), side, side});
            bijou::gather_rows(test.x, part, x);
            const auto z = model.forward(centred<Model>(x, n_bits)).z;
            for (std::size_t k = 0; k < z.size(); ++k) mean[k % Model::D] += double(z.data()[k]);
        }
        for (double& v : mean) v /= double(idx.size());
        return mean;
    };
    std::vector<int> members;
    const auto mean_from = mean_latent(cli.from, &members), mean_to = mean_latent(cli.to, nullptr);
    const int rows = std::min<int>(cli.rows, int(members.size())), cols = int(cli.strengths.size());
    std::vector<std::size_t> idx(members.begin(), members.begin() + rows);
    xt::xtensor<std::uint8_t, 4> x = xt::xtensor<std::uint8_t, 4>::from_shape({idx.size(), std::size_t(channels_of<Model>), side, side});
    bijou::gather_rows(test.x, idx, x);
    const auto z = model.forward(centred<Model>(x, n_bits)).z;
    // Row r: the original, then f⁻¹(z_r + α·(mean_to − mean_from)) for each strength α.
    auto zs = Model::latent_tensor::from_shape({std::size_t(rows) * std::size_t(cols), std::size_t(Model::D)});
    for (int r = 0; r < rows; ++r)
        for (int c = 0; c < cols; ++c)
            for (int k = 0; k < Model::D; ++k)
                zs.data()[(std::size_t(r) * std::size_t(cols) + std::size_t(c)) * Model::D + std::size_t(k)] =
                    float(z.data()[std::size_t(r) * Model::D + std::size_t(k)] +
                          cli.strengths[std::size_t(c)] * (mean_to[std::size_t(k)] - mean_from[std::size_t(k)]));
    const auto out = model.inverse(zs).x;
    std::vector<std::uint8_t> grey;
    const auto orig = to_grey(x.data(), x.size(), n_bits), made = to_grey(out.data(), out.size(), n_bits);
    for (int r = 0; r < rows; ++r) {
        grey.insert(grey.end(), orig.begin() + std::ptrdiff_t(r) * Model::D, orig.begin() + std::ptrdiff_t(r + 1) * Model::D);
        grey.insert(grey.end(), made.begin() + std::ptrdiff_t(r) * cols * Model::D,
                    made.begin() + std::ptrdiff_t(r + 1) * cols * Model::D);
    }
    fs::create_directories(cli.out);
    const fs::path file = fs::path(cli.out) / "manipulation.png";
    example::write_png(file, grid(grey, channels_of<Model>, rows, cols + 1, cli.zoom, {0}));
    std::string s;
    for (double a : cli.strengths) s += (s.empty() ? "" : ", ") + bijou::number_setting(a);
    std::printf("wrote %s: %d test images of %s %d (framed), moved along mean z(%d) - mean z(%d) at strengths %s\n",
                file.c_str(), rows, label_name(cli.source).c_str(), cli.from, cli.to, cli.from, s.c_str());
    return 0;
}

template <class Model>
int manipulate(const Cli& cli, const Model& model, int n_bits) {
    const ImageSet test = load_for<Model>(cli.source, Part::test, n_bits);
    require_labels(test, "manipulate");  // the labels are its attributes (the conditional model's: 0..9, checked below)
    if constexpr (Model::conditional) return manipulate_conditional(cli, model, test, n_bits);
    else return manipulate_mean_latents(cli, model, test, n_bits);
}

// ---- one model type ------------------------------------------------------------------------------

template <class Model>
int run(const Cli& cli, const Metadata& meta, const std::string& model_name) {
    const bool fresh = cli.command == "train" && !cli.resume;
    // Every checkpoint field the command uses is checked before anything is built from it.
    std::optional<ResumeState> rs;
    if (cli.command == "train" && !fresh) rs = resume_state(meta, cli.checkpoint);
    const int n_bits = cli.command == "train" ? 0 : checkpoint_n_bits(meta, cli.checkpoint);
    bijou::Options o;
    if (fresh) {
        o.steps_per_level = cli.steps_per_level;
        o.hidden = cli.hidden;
        o.seed = cli.seed;
        o.memory_saving = cli.memory_saving;
    } else {
        o = options_from(meta, cli.checkpoint);
        if (cli.given.count("--memory-saving")) o.memory_saving = cli.memory_saving;  // not part of the config check
    }
    Model model(o);
    if (cli.command == "train") {
        const std::string optimizer = fresh ? cli.optimizer : rs->optimizer;
        Cli c = cli;
        c.optimizer_name = optimizer;
        MomentOptimizer<typename Model::backend> opt(optimizer, model.parameter_count());
        if (!fresh) bijou::load_checkpoint(cli.checkpoint, model, opt);
        return train(c, rs, model, opt, model_name);
    }
    if constexpr (!Model::conditional) {  // main.cpp refuses these first; a guard for other callers
        if (cli.command == "classify")
            throw bijou::invalid_argument(cli.checkpoint + ": classify needs a class-conditional checkpoint (train "
                                          "--conditional); this model is unconditional");
        if (cli.command == "sample" && (cli.digit >= 0 || cli.given.count("--per-digit")))
            throw bijou::invalid_argument(cli.checkpoint + ": sample --digit/--per-digit need a class-conditional "
                                          "checkpoint (train --conditional); this model is unconditional");
    }
    bijou::load_checkpoint(cli.checkpoint, model);
    if (cli.command == "eval") return eval(cli, model, n_bits, model_name);
    if constexpr (Model::conditional)
        if (cli.command == "classify") return classify(cli, model, n_bits, model_name);
    if (cli.command == "sample")
        return sample(cli, model, n_bits, checkpoint_image_size(meta, channels_of<Model>, cli.checkpoint));
    if (cli.command == "interpolate") return interpolate(cli, model, n_bits);
    return manipulate(cli, model, n_bits);
}

}  // namespace mnist_glow
