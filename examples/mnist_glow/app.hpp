// examples/mnist_glow/app.hpp — what the mnist_glow subcommands share: the parsed command line, the
// data source (data.hpp loads it: MNIST, CIFAR-10 or a PNG folder, zero-padded to C×32×32), PNG
// grids, checkpoint metadata ↔ Options, and run<Model>(), the whole program for one model type
// (commands.hpp). main.cpp parses the command line and picks the
// model type; each model type is compiled in its own translation unit (model_*.cpp) so that a
// parallel build compiles them side by side.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace example {
class World;  // common/world.hpp: the processes of an mpirun job, or this one
}

namespace mnist_glow {

/// Where the images come from (--data KIND:DIR; data.hpp says what each kind reads).
struct DataSource {
    std::string kind = "mnist";  // mnist | cifar10 | folder
    std::string dir;
    std::string spec() const { return kind + ":" + dir; }
};

/// "mnist:DIR", "cifar10:DIR", "folder:DIR", or a bare DIR (= mnist:DIR, as before --data took a kind).
/// Throws bijou::invalid_argument for an unknown kind or an empty directory.
DataSource parse_data_source(const std::string& arg);

/// The channels of `src`'s images (1 or 3) without reading its pixels: mnist 1, cifar10 3, folder as
/// its first PNG (data.cpp). Picks the model type of a fresh `train`.
int source_channels(const DataSource& src);

/// Everything any subcommand reads; `given` holds the long names of the options set explicitly.
struct Cli {
    std::string command;  // train | eval | classify | sample | interpolate | manipulate
    std::string data;     // --data as given
    DataSource source;    // --data parsed, or the shipped MNIST (resolved by main)
    std::string checkpoint = "mnist_glow.safetensors";
    std::string device = "cpu";  // cpu | cuda (Glow L=3 only; models_cuda.cu, built with CUDA)
    std::set<std::string> given;
    example::World* world = nullptr;  // train: data-parallel over its processes (main.cpp sets it)

    // model (train without --resume; otherwise from the checkpoint)
    std::string model = "glow";
    int levels = 3, steps_per_level = 8, hidden = 128, n_bits = 8;
    bool memory_saving = false;
    bool conditional = false;  // train --conditional: the class-conditional Glow L=3 p(x | digit)

    // training
    std::string optimizer = "adam";
    std::string optimizer_name;  // the one in use (train: from the checkpoint when resuming)
    int batch = 64, warmup = 500, threads = 0, train_size = 0, init_size = 0, eval_size = 2000;
    double lr = 5e-3, clip = 50.0, decay = 0.2, minutes = 30.0, eval_every = 5.0, save_every = 5.0, log_every = 10.0;
    long epochs = 0, max_steps = 0;
    std::uint64_t seed = 0;
    bool resume = false, overwrite = false;

    // eval, classify
    int limit = 0;

    // pictures
    std::string out = ".";
    int count = 64, zoom = 2;
    int digit = -1;     // sample --digit D (conditional checkpoints): samples of digit D only
    int per_digit = 0;  // sample without --digit on a conditional checkpoint: columns per digit row (0: ⌈count/10⌉)
    bool each = false;  // sample --each: also every sample as its own 28×28 PNG
    std::vector<double> temperatures{0.5, 0.7, 1.0};
    int a = 0, b = 1, points = 10;
    int from = 3, to = 8, rows = 8;
    std::vector<double> strengths{-0.5, 0.0, 0.25, 0.5, 0.75, 1.0, 1.25};
};

/// The elapsed wall time since the process started (main.cpp captures the start before main runs).
double process_seconds();

/// Set by SIGINT / SIGTERM; the training loop saves and stops when it sees it.
bool stop_requested();

/// A checkpoint's __metadata__ (bijou::CheckpointMetadata), without including io/checkpoint.hpp here:
/// main.cpp stays cheap to compile.
using Metadata = std::map<std::string, std::string>;
Metadata read_metadata(const std::string& checkpoint);

// One entry point per compiled model type (models_*.cpp); `meta` is the checkpoint's __metadata__
// for every command but a fresh `train` (then empty).
int run_glow2(const Cli& cli, const Metadata& meta);
int run_glow3(const Cli& cli, const Metadata& meta);
int run_glow4(const Cli& cli, const Metadata& meta);
int run_realnvp3(const Cli& cli, const Metadata& meta);
int run_glow3_conditional(const Cli& cli, const Metadata& meta);  // models_c.cpp: Glow L=3 p(x | digit)
int run_glow3_rgb(const Cli& cli, const Metadata& meta);          // models_rgb.cpp: Glow L=3 on 3×32×32
#if defined(BIJOU_EXAMPLE_CUDA)
int run_glow3_cuda(const Cli& cli, const Metadata& meta);  // models_cuda.cu: Glow L=3 on a GPU
#endif

}  // namespace mnist_glow
