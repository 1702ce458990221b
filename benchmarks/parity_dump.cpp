// parity_dump — writes bijou models and reference outputs for the PyTorch parity check
// (benchmarks/pytorch/parity.py, which mirrors bijou in benchmarks/pytorch/bijou_torch.py).
//
//   parity_dump <out_dir> [glow | two_moons | spline | maf | maf_spline]      (all when none is named)
// writes, for a small Glow<Shape<1, 16, 16>, 2> (K = 2, hidden 16, sigmoid scales) and for the
// two-moons RealNVP<Shape<2>> (8 couplings, separate 2→256→256→2 MLPs, tanh scales):
//   <out_dir>/<name>.ckpt.safetensors   save_checkpoint(model): every parameter and buffer
//   <out_dir>/<name>.batch.safetensors  float32 tensors
//       "x"         (n, C, H, W) or (n, 2)   a batch the model was not initialised or trained on
//       "log_prob"  (n,)                     model.log_prob(x), nats per sample
//       "z"         (n, D)                   model.forward(x).z, the flat latent
//       "z_sample"  (n, D), "x_sample"       a latent drawn at temperature 0.7 and model.inverse of it
//     and __metadata__ {"model": "Glow" | "RealNVP" | "SplineFlow" | "MAF", "shape", "levels",
//     "steps_per_level", "hidden", "hidden_layers", "net", "scale", "mask", "n_bits", "bins", "bound",
//     "transform"} (strings, as safetensors requires).
// The toy flows (examples/toy_density's, smaller: hidden 32, 6 bins on [−2.5, 2.5]): "spline" = 4
// rational-quadratic couplings, "maf" = 4 affine MAF layers, "maf_spline" = 3 spline MAF layers.
// Each model is data-initialised (ActNorm) on one batch, then trained for a few Adam steps (lr 1e-2)
// so that no parameter is left at its initial value: the zero-initialised last convolutions of the
// couplings, the split convolutions and the top prior all become non-zero. Prints one line per model.
// Exit status 0, or 1 with a message on any error.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>

namespace {

namespace fs = std::filesystem;

/// A float32 tensor for the batch file.
struct Named {
    std::string name;
    std::vector<std::size_t> shape;
    std::vector<float> data;
};

template <class Tensor>
Named named(std::string name, const Tensor& t) {
    Named r{std::move(name), {}, {}};
    for (auto d : t.shape()) r.shape.push_back(std::size_t(d));
    r.data.assign(t.begin(), t.end());
    return r;
}

/// A minimal safetensors writer (bijou's own writer is specific to model parameters): an 8-byte
/// little-endian header length, the JSON header padded with spaces to a multiple of 8, the data.
void write_safetensors(const fs::path& path, const std::vector<Named>& tensors,
                       const std::map<std::string, std::string>& metadata) {
    nlohmann::ordered_json h = nlohmann::ordered_json::object();
    h["__metadata__"] = metadata;
    std::uint64_t off = 0;
    for (const auto& t : tensors) {
        const std::uint64_t bytes = t.data.size() * sizeof(float);
        h[t.name] = {{"dtype", "F32"}, {"shape", t.shape}, {"data_offsets", {off, off + bytes}}};
        off += bytes;
    }
    std::string text = h.dump();
    text.append((8 - text.size() % 8) % 8, ' ');
    std::ofstream f(path, std::ios::binary);
    char len[8];
    for (int b = 0; b < 8; ++b) len[b] = char((std::uint64_t(text.size()) >> (8 * b)) & 0xFF);
    f.write(len, 8);
    f.write(text.data(), std::streamsize(text.size()));
    for (const auto& t : tensors)  // little-endian hosts only (x86-64, aarch64)
        f.write(reinterpret_cast<const char*>(t.data.data()), std::streamsize(t.data.size() * sizeof(float)));
    if (!f) throw bijou::io_error(path.string() + ": cannot write");
}

/// Fails unless every trainable parameter differs from its value at construction.
template <class Model>
void check_all_moved(const Model& model, const std::vector<float>& initial, const char* what) {
    const auto p = model.parameters();
    for (const auto& t : model.params().tensors()) {
        if (!t.trainable) continue;
        bool moved = false;
        for (std::size_t k = 0; k < t.size; ++k) moved = moved || p[t.offset + k] != initial[t.offset + k];
        if (!moved) throw bijou::error(std::string(what) + ": parameter '" + t.name + "' did not move in training");
    }
}

template <class Model>
void train_a_little(Model& model, const typename Model::data_tensor& x, int steps) {
    bijou::Adam<float> adam(model.parameter_count());
    const bijou::TrainConfig cfg{.lr = 1e-2, .warmup = 0, .clip = 0};
    for (int s = 0; s < steps; ++s) bijou::train_step(model, adam, x, cfg, s);
}

/// 8-bit images: a random smooth blob per image plus noise, as integers in [0, 255].
xt::xtensor<float, 4> blob_images(int n, int H, int W, bijou::Rng& rng) {
    xt::xtensor<float, 4> x = xt::xtensor<float, 4>::from_shape({std::size_t(n), 1, std::size_t(H), std::size_t(W)});
    for (int i = 0; i < n; ++i) {
        const double cy = H * rng.uniform(), cx = W * rng.uniform(), r = 2.0 + 4.0 * rng.uniform();
        for (int y = 0; y < H; ++y)
            for (int xx = 0; xx < W; ++xx) {
                const double d2 = ((y - cy) * (y - cy) + (xx - cx) * (xx - cx)) / (r * r);
                const double v = 230.0 * std::exp(-d2) + 12.0 * rng.normal() + 15.0;
                x(i, 0, y, xx) = float(std::floor(std::clamp(v, 0.0, 255.0)));
            }
    }
    return x;
}

std::map<std::string, std::string> config_of(const bijou::Options& o, const std::string& model, const std::string& shape) {
    return {{"model", model},
            {"shape", shape},
            {"steps_per_level", std::to_string(o.steps_per_level)},
            {"hidden", std::to_string(o.hidden)},
            {"hidden_layers", std::to_string(o.hidden_layers)}};
}

/// What both models write: the checkpoint, and a batch file with x, bijou's log_prob and latent z of
/// x, and a temperature-0.7 latent with bijou's inverse of it (catches a wrong latent order or inverse).
template <class Model>
void dump(const fs::path& dir, const std::string& name, const Model& model, const typename Model::data_tensor& x,
          bijou::Rng& rng, const std::map<std::string, std::string>& meta) {
    const auto lp = model.log_prob(x);
    const auto z = model.forward(x).z;
    auto z_sample = z;
    for (auto& v : z_sample) v = float(0.7 * rng.normal());
    const auto x_sample = model.inverse(z_sample).x;

    bijou::save_checkpoint(dir / (name + ".ckpt.safetensors"), model);
    write_safetensors(dir / (name + ".batch.safetensors"),
                      {named("x", x), named("log_prob", lp), named("z", z), named("z_sample", z_sample),
                       named("x_sample", x_sample)},
                      meta);
    std::printf("parity_dump: %s: %zu parameters, log_prob[0] = %.6f nats\n", name.c_str(), model.parameter_count(),
                double(lp(0)));
}

void dump_glow(const fs::path& dir) {
    using Model = bijou::Glow<bijou::Shape<1, 16, 16>, 2>;
    bijou::Options o;
    o.steps_per_level = 2;
    o.hidden = 16;
    o.seed = 3;
    Model model(o);
    const std::vector<float> initial(model.parameters().begin(), model.parameters().end());
    bijou::Rng rng(11);
    const auto train = model.dequantize(blob_images(32, 16, 16, rng), 8, rng);
    model.initialize(train);
    train_a_little(model, train, 12);
    check_all_moved(model, initial, "glow");

    const auto x = model.dequantize(blob_images(6, 16, 16, rng), 8, rng);
    auto meta = config_of(model.options(), "Glow", "1,16,16");
    meta["levels"] = std::to_string(Model::levels());
    meta["scale"] = "sigmoid";
    meta["n_bits"] = "8";
    dump(dir, "glow", model, x, rng, meta);
}

void dump_two_moons(const fs::path& dir) {
    using Model = bijou::RealNVP<bijou::Shape<2>>;  // as examples/two_moons
    bijou::Options o;
    o.steps_per_level = 8;
    o.hidden = 256;
    o.seed = 5;
    Model model(o);
    const std::vector<float> initial(model.parameters().begin(), model.parameters().end());
    const auto train = bijou::two_moons<float>(256, 0.05, 7);
    model.initialize(train);  // no data-dependent layers in this model: a no-op, kept for symmetry
    train_a_little(model, train, 12);
    check_all_moved(model, initial, "two_moons");

    const auto x = bijou::two_moons<float>(16, 0.05, 8);
    bijou::Rng rng(13);
    auto meta = config_of(model.options(), "RealNVP", "2");
    meta["net"] = "separate";
    meta["scale"] = "tanh";
    meta["mask"] = "alternating";
    dump(dir, "two_moons", model, x, rng, meta);
}

/// The toy flows (examples/toy_density): trained a little on 2·N(0, I) points, with bound 2.5 so that
/// the batch has points inside the splines and in their tails.
template <class Model>
void dump_toy(const fs::path& dir, const std::string& name, const std::string& kind, int layers,
              const std::string& transform) {
    bijou::Options o;
    o.steps_per_level = layers;
    o.hidden = 32;
    o.seed = 9;
    const bijou::SplineOptions so{.bins = 6, .bound = 2.5};
    Model model(o.with(so));
    const std::vector<float> initial(model.parameters().begin(), model.parameters().end());
    bijou::Rng rng(21);
    auto batch = [&](int n) {
        auto x = bijou::make_batch<float, bijou::Shape<2>>(n);
        for (auto& v : x) v = float(2.0 * rng.normal());
        return x;
    };
    train_a_little(model, batch(256), 12);
    check_all_moved(model, initial, name.c_str());
    auto meta = config_of(o, kind, "2");
    meta["bins"] = std::to_string(so.bins);
    meta["bound"] = bijou::number_setting(so.bound);
    if (!transform.empty()) meta["transform"] = transform;
    dump(dir, name, model, batch(32), rng, meta);
}

}  // namespace

int main(int argc, char** argv) {
    const std::string which = argc == 3 ? argv[2] : "";
    const std::vector<std::string> names{"glow", "two_moons", "spline", "maf", "maf_spline"};
    if (argc < 2 || argc > 3 || (argc == 3 && std::find(names.begin(), names.end(), which) == names.end())) {
        std::fprintf(stderr, "usage: parity_dump <out_dir> [glow | two_moons | spline | maf | maf_spline]\n");
        return 2;
    }
    try {
        using namespace bijou;
        const fs::path dir = argv[1];
        fs::create_directories(dir);
        auto want = [&](const char* n) { return which.empty() || which == n; };
        if (want("glow")) dump_glow(dir);
        if (want("two_moons")) dump_two_moons(dir);
        if (want("spline")) dump_toy<Flow<Shape<2>, Stack<RationalQuadraticCoupling>>>(dir, "spline", "SplineFlow", 4, "");
        if (want("maf"))
            dump_toy<Flow<Shape<2>, Stack<MaskedAutoregressive<AffineTransform>>>>(dir, "maf", "MAF", 4, "affine");
        if (want("maf_spline"))
            dump_toy<Flow<Shape<2>, Stack<MaskedAutoregressive<RationalQuadraticTransform>>>>(dir, "maf_spline", "MAF", 3,
                                                                                             "spline");
    } catch (const std::exception& e) {
        std::fprintf(stderr, "parity_dump: %s\n", e.what());
        return 1;
    }
    return 0;
}
