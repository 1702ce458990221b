// mnist_glow — multi-scale Glow (or RealNVP) on MNIST, 28×28 zero-padded to 32×32, and Glow on
// 3-channel images (CIFAR-10, a folder of RGB PNGs) through --data cifar10:DIR | folder:DIR.
//
//   mnist_glow train        trains (time-bounded by --minutes), checkpoints, resumes with --resume
//   mnist_glow eval         full test set bits/dim of a checkpoint: "test bits/dim: X (…)"
//   mnist_glow classify     test accuracy of a class-conditional checkpoint: argmax_y log p(x | y)
//   mnist_glow sample       PNG grids of samples at several temperatures (--digit D: of one digit)
//   mnist_glow interpolate  a PNG row between two test images through the latent space
//   mnist_glow manipulate   Glow's attribute manipulation with the digit labels as attributes
//
// Every command but a fresh `train` reads the model type and its options from the checkpoint's
// metadata (its shape: 1,32,32 or 3,32,32); a fresh `train` takes the channels of --data's images; a checkpoint whose metadata has "setting.context_shape" is the class-conditional Glow L=3
// (train --conditional, models_c.cpp). docs/mnist.md explains the options, bits/dim and the checkpoints.
#include <chrono>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <CLI/CLI.hpp>

#include <bijou/core/error.hpp>
#include <bijou/core/backend.hpp>

#include "common/world.hpp"
#include "mnist_glow/app.hpp"
#include "mnist_glow/metadata.hpp"

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

const Clock::time_point process_start = Clock::now();  // before main: --minutes counts start-up too
volatile std::sig_atomic_t stop_flag = 0;

extern "C" void on_signal(int sig) {
    stop_flag = 1;
    std::signal(sig, SIG_DFL);  // a second Ctrl-C ends the process at once
}

/// The shipped MNIST: the source tree's examples/data/mnist (absolute path compiled in), else
/// data/mnist or mnist next to the executable (for a copied or installed program).
std::string default_data_dir(std::vector<std::string>& tried) {
    std::vector<fs::path> candidates;
#ifdef MNIST_GLOW_DATA_DIR
    candidates.emplace_back(MNIST_GLOW_DATA_DIR);
#endif
    std::error_code ec;
    const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
    if (!ec) {
        candidates.push_back(exe.parent_path() / "data" / "mnist");
        candidates.push_back(exe.parent_path() / "mnist");
    }
    for (const auto& c : candidates) {
        tried.push_back(c.string());
        if (fs::exists(c / "train-images-idx3-ubyte.gz", ec) || fs::exists(c / "train-images-idx3-ubyte", ec))
            return c.string();
    }
    return {};
}

using Runner = int (*)(const mnist_glow::Cli&, const mnist_glow::Metadata&);

/// The context shape of the class-conditional model (a one-hot digit), as checkpoints record it.
constexpr const char* conditional_context = "Shape<10>";

Runner pick_model(const std::string& model, int levels, const std::string& where, const std::string& device,
                  bool conditional, int channels) {
    if (channels == 3) {  // one 3-channel model type: Glow L=3 on the Cpu (models_rgb.cpp)
        if (!((model == "glow" || model == "Glow") && levels == 3) || conditional || device != "cpu")
            throw bijou::invalid_argument(where + "3-channel images train Glow with 3 levels, unconditional, on the "
                                          "Cpu (the one 3-channel model type compiled into mnist_glow); asked for " +
                                          model + " with " + std::to_string(levels) + " levels" +
                                          (conditional ? ", class-conditional" : "") + " on " + device);
        return mnist_glow::run_glow3_rgb;
    }
    if (channels != 1)
        throw bijou::invalid_argument(where + std::to_string(channels) + " channels: mnist_glow's models take 1 or 3");
    if (conditional) {
        if (!((model == "glow" || model == "Glow") && levels == 3))
            throw bijou::invalid_argument(where + "the class-conditional model (--conditional) is Glow with 3 levels only; " +
                                          model + " with " + std::to_string(levels) +
                                          " levels is compiled unconditional only (use --model glow --levels 3)");
        if (device == "cuda")
            throw bijou::invalid_argument(where + "the class-conditional Glow is compiled for the Cpu only (--device cpu)");
        return mnist_glow::run_glow3_conditional;
    }
    if (device == "cuda") {
#if defined(BIJOU_EXAMPLE_CUDA)
        if ((model == "glow" || model == "Glow") && levels == 3) return mnist_glow::run_glow3_cuda;
        throw bijou::invalid_argument(where + "--device cuda runs Glow with 3 levels (the default model); " + model +
                                      " with " + std::to_string(levels) + " levels is compiled for the Cpu only");
#else
        throw bijou::invalid_argument("--device cuda needs mnist_glow built with the CUDA backend (BIJOU_WITH_CUDA=ON, "
                                      "or AUTO where nvcc is installed)");
#endif
    }
    if (model == "glow" || model == "Glow") {
        if (levels == 2) return mnist_glow::run_glow2;
        if (levels == 3) return mnist_glow::run_glow3;
        if (levels == 4) return mnist_glow::run_glow4;
        throw bijou::invalid_argument(where + "Glow with " + std::to_string(levels) +
                                      " levels is not compiled into mnist_glow: the number of levels is a template "
                                      "parameter, and this program is built with 2, 3 and 4 (add it to models_b.cpp for more)");
    }
    if (model == "realnvp" || model == "MultiScaleRealNVP") {
        if (levels == 3) return mnist_glow::run_realnvp3;
        throw bijou::invalid_argument(where + "MultiScaleRealNVP with " + std::to_string(levels) +
                                      " scales is not compiled into mnist_glow: it is built with 3 only");
    }
    throw bijou::invalid_argument(where + "unknown model '" + model + "' (glow or realnvp)");
}

}  // namespace

namespace mnist_glow {
double process_seconds() { return std::chrono::duration<double>(Clock::now() - process_start).count(); }
bool stop_requested() { return stop_flag != 0; }
}  // namespace mnist_glow

int main(int argc, char** argv) {
    // Under mpirun, `train` runs data-parallel on every process (docs/distributed.md); the other
    // commands run on rank 0. Rank 0 alone prints.
    example::World world(argc, argv);
    world.quiet_unless_root();
    mnist_glow::Cli cli;
    cli.world = &world;
    CLI::App app{"Glow on MNIST (zero-padded to 32x32), CIFAR-10 or a folder of PNGs: train, evaluate, classify, sample, "
                 "interpolate, manipulate.\nSee docs/mnist.md."};
    app.require_subcommand(1);
    std::vector<CLI::App*> subs;

    auto common = [&](CLI::App* s, bool data) {
        s->add_option("--checkpoint", cli.checkpoint, "checkpoint file (safetensors)")->capture_default_str();
        s->add_option("--threads", cli.threads, "OpenMP threads (0: OpenMP's default)")
            ->check(CLI::NonNegativeNumber)
            ->capture_default_str();
        s->add_option("--device", cli.device, "cpu, or cuda (a GPU; Glow L=3; needs a build with CUDA)")
            ->check(CLI::IsMember({"cpu", "cuda"}))
            ->capture_default_str();
        if (data)
            s->add_option("--data", cli.data,
                          "the images, KIND:DIR: mnist:DIR (an IDX data set: train-images-idx3-ubyte, "
                          "train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte, raw or .gz; a bare "
                          "DIR means mnist:DIR), cifar10:DIR (data_batch_1..5.bin, test_batch.bin) or folder:DIR "
                          "(same-size PNGs up to 32x32: DIR/train and DIR/test, else the last tenth of DIR is the "
                          "test set); default: the MNIST shipped in examples/data/mnist");
        subs.push_back(s);
    };

    auto* train = app.add_subcommand("train", "train a model (time-bounded), checkpointing as it goes");
    common(train, true);
    train->add_option("--model", cli.model, "glow or realnvp (MultiScaleRealNVP, 3 scales)")
        ->check(CLI::IsMember({"glow", "realnvp"}))
        ->capture_default_str();
    train->add_option("--levels", cli.levels, "levels L of the multi-scale model (glow: 2, 3 or 4; realnvp: 3)")
        ->capture_default_str();
    train->add_option("--steps-per-level", cli.steps_per_level, "K, flow steps per level (glow)")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    train->add_option("--hidden", cli.hidden, "conditioner width (channels)")->check(CLI::PositiveNumber)->capture_default_str();
    train->add_option("--n-bits", cli.n_bits, "bits per pixel the model sees (x >> (8 - n))")
        ->check(CLI::Range(1, 8))
        ->capture_default_str();
    train->add_flag("--memory-saving", cli.memory_saving, "recompute activations in backward (less memory, ~1 extra forward)");
    train->add_flag("--conditional", cli.conditional,
                    "train the class-conditional Glow L=3, p(x | digit), on the images and their labels");
    train->add_option("--optimizer", cli.optimizer, "adam or adamax")->check(CLI::IsMember({"adam", "adamax"}))->capture_default_str();
    train->add_option("--lr", cli.lr, "learning rate after the warm-up")->check(CLI::PositiveNumber)->capture_default_str();
    train->add_option("--warmup", cli.warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
    train->add_option("--decay", cli.decay,
                      "anneal the lr linearly to 0 over this final fraction of the run (time budget, --steps or "
                      "--epochs, whichever ends it first; 0: constant lr)")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    train->add_option("--clip", cli.clip, "gradient-norm clip, in units of the bits/dim loss's gradient (0: off)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    train->add_option("--batch", cli.batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
    train->add_option("--minutes", cli.minutes, "wall-time budget of the whole process, start-up and final save included")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    train->add_option("--epochs", cli.epochs, "stop after this many epochs (0: no limit)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    train->add_option("--steps", cli.max_steps, "stop at this total step count (0: no limit)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    train->add_option("--seed", cli.seed, "seed of the initialisation, data order and dequantisation")->capture_default_str();
    train->add_option("--train-size", cli.train_size, "use the first N training images (0: all)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    train->add_option("--init-size", cli.init_size, "images in ActNorm's data-dependent initialisation batch (0: --batch)")
        ->check(CLI::Range(0, 100000))
        ->capture_default_str();
    train->add_option("--eval-size", cli.eval_size, "test images in the running test bits/dim")
        ->check(CLI::Range(1, 10000000))
        ->capture_default_str();
    train->add_option("--eval-every", cli.eval_every, "minutes between test bits/dim evaluations (0: only at the end)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    train->add_option("--save-every", cli.save_every, "minutes between checkpoints (0: only at the end)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    train->add_option("--log-every", cli.log_every, "seconds between progress lines")->check(CLI::NonNegativeNumber)->capture_default_str();
    train->add_flag("--resume", cli.resume, "continue the run in --checkpoint (model, optimizer, data order, random stream)");
    train->add_flag("--overwrite", cli.overwrite, "start afresh even if --checkpoint exists");

    auto* ev = app.add_subcommand("eval", "test-set bits/dim of a checkpoint");
    common(ev, true);
    ev->add_option("--limit", cli.limit, "evaluate the first N test images only (0: all)")->check(CLI::NonNegativeNumber)->capture_default_str();
    ev->add_option("--seed", cli.seed, "seed of the dequantisation noise")->capture_default_str();

    auto* cl = app.add_subcommand("classify", "test accuracy of a class-conditional checkpoint: argmax over digits y of log p(x | y)");
    common(cl, true);
    cl->add_option("--limit", cli.limit, "classify the first N test images only (0: all)")->check(CLI::NonNegativeNumber)->capture_default_str();
    cl->add_option("--seed", cli.seed, "seed of the dequantisation noise (one draw per image, shared by its 10 labels)")
        ->capture_default_str();

    auto* sa = app.add_subcommand("sample", "PNG grids of samples at several temperatures");
    common(sa, false);
    sa->add_option("--temperatures", cli.temperatures, "comma-separated temperatures")->delimiter(',')->capture_default_str();
    sa->add_option("--count", cli.count, "samples per grid")->check(CLI::Range(1, 10000))->capture_default_str();
    sa->add_option("--seed", cli.seed, "seed of the latent draws")->capture_default_str();
    sa->add_option("--digit", cli.digit, "class-conditional checkpoints: --count samples of this digit only")->check(CLI::Range(0, 9));
    sa->add_option("--per-digit", cli.per_digit,
                   "class-conditional checkpoints without --digit: samples per digit row (default: ceil(count / 10))")
        ->check(CLI::Range(1, 1000));
    sa->add_flag("--each", cli.each, "also write every sample as its own 28x28 PNG (padding cropped) in a subdirectory of --out");

    auto* in = app.add_subcommand("interpolate", "a PNG row between two test images through the latent space");
    common(in, true);
    in->add_option("--a", cli.a, "index of the first test image")->capture_default_str();
    in->add_option("--b", cli.b, "index of the second test image")->capture_default_str();
    in->add_option("--points", cli.points, "images along the latent line (ends included)")->check(CLI::Range(2, 1000))->capture_default_str();

    auto* ma = app.add_subcommand("manipulate", "move test images of one digit towards another along mean latent differences");
    common(ma, true);
    ma->add_option("--from", cli.from, "digit (label) A of the images that are moved")->check(CLI::Range(0, 255))->capture_default_str();
    ma->add_option("--to", cli.to, "digit (label) B: direction = mean z(B) - mean z(A)")->check(CLI::Range(0, 255))->capture_default_str();
    ma->add_option("--rows", cli.rows, "test images of digit A (one row each)")->check(CLI::Range(1, 1000))->capture_default_str();
    ma->add_option("--strengths", cli.strengths, "comma-separated strengths alpha: z + alpha * direction")
        ->delimiter(',')
        ->capture_default_str();

    for (auto* s : {sa, in, ma}) {
        s->add_option("--out", cli.out, "directory for the PNG")->capture_default_str();
        s->add_option("--zoom", cli.zoom, "pixels per image pixel")->check(CLI::Range(1, 16))->capture_default_str();
    }

    CLI11_PARSE(app, argc, argv);

    try {
        for (auto* s : subs)
            if (s->parsed()) {
                cli.command = s->get_name();
                for (const CLI::Option* o : s->get_options())
                    if (o->count() > 0)
                        for (const auto& n : o->get_lnames()) cli.given.insert("--" + n);
            }
        if (cli.threads > 0) bijou::set_num_threads(cli.threads);  // per process
        if (cli.command != "train" && world.rank() != 0) return 0;  // one process evaluates and draws
        if (!cli.data.empty()) {
            cli.source = mnist_glow::parse_data_source(cli.data);
        } else if (cli.command != "sample") {
            std::vector<std::string> tried;
            cli.source.dir = default_data_dir(tried);
            if (cli.source.dir.empty()) {
                std::string t;
                for (const auto& s : tried) t += "\n  " + s;
                throw bijou::io_error("cannot find the shipped MNIST (train-images-idx3-ubyte[.gz]); looked in:" + t +
                                      "\npass --data DIR");
            }
        }

        const bool fresh = cli.command == "train" && !cli.resume;
        mnist_glow::Metadata meta;
        Runner run = nullptr;
        if (fresh) {
            std::error_code ec;
            if (fs::exists(cli.checkpoint, ec) && !cli.overwrite)
                throw bijou::invalid_argument(cli.checkpoint + " exists: pass --resume to continue that run, --overwrite "
                                              "to start afresh, or another --checkpoint");
            run = pick_model(cli.model, cli.levels, "--model/--levels: ", cli.device, cli.conditional,
                             mnist_glow::source_channels(cli.source));
        } else {
            meta = mnist_glow::read_metadata(cli.checkpoint);
            auto get = [&](const char* k) {
                const auto it = meta.find(k);
                if (it == meta.end()) throw bijou::io_error(cli.checkpoint + ": __metadata__ has no '" + k + "'");
                return it->second;
            };
            const std::string shape = get("shape");
            if ((shape != "1,32,32" && shape != "3,32,32") || get("scalar") != "float32")
                throw bijou::io_error(cli.checkpoint + ": a " + get("scalar") + " model of shape (" + shape +
                                      "); mnist_glow reads float32 models of shape (1,32,32) or (3,32,32)");
            // Strictly (std::stoi read "3x" as 3); the model fields' values are checked by pick_model and
            // load_checkpoint, the training state by resume_state() (metadata.hpp) in run<Model>().
            const int levels = mnist_glow::meta_number<int>(meta, "levels", cli.checkpoint);
            // A conditional model records its context shape; mnist_glow's is a one-hot digit.
            const auto ctx = meta.find("setting.context_shape");
            const bool conditional = ctx != meta.end();
            if (conditional && ctx->second != conditional_context)
                throw bijou::io_error(cli.checkpoint + ": a model conditioned on a context " + ctx->second +
                                      "; mnist_glow's class-conditional model takes " + conditional_context +
                                      " (a one-hot digit)");
            if (!conditional && cli.command == "classify")
                throw bijou::invalid_argument(cli.checkpoint + ": classify needs a class-conditional checkpoint (train "
                                              "--conditional); this model is unconditional");
            if (!conditional && cli.command == "sample" && (cli.given.count("--digit") || cli.given.count("--per-digit")))
                throw bijou::invalid_argument(cli.checkpoint + ": sample --digit/--per-digit need a class-conditional "
                                              "checkpoint (train --conditional); this model is unconditional");
            // The data the checkpoint was trained on (train.data, absent before mnist_glow read other
            // sources: MNIST): its default when --data is not given is the shipped MNIST, which fits
            // only an MNIST-trained model; a resumed run continues on the same kind of data.
            const auto trained_on = meta.find("train.data");
            if (trained_on != meta.end() && cli.command != "sample") {
                const std::string& kind = trained_on->second;
                if (cli.data.empty() && kind != "mnist")
                    throw bijou::invalid_argument(cli.checkpoint + " was trained on " + kind + " data: pass --data " + kind +
                                                  ":DIR");
                if (cli.command == "train" && cli.source.kind != kind)
                    throw bijou::invalid_argument(cli.checkpoint + " was trained on " + kind + " data; --resume continues on "
                                                  "the same kind (--data " + kind + ":DIR), not " + cli.source.kind);
            }
            run = pick_model(get("model"), levels, cli.checkpoint + ": ", cli.device, conditional, shape[0] - '0');
        }
        if (cli.command == "train") {
            std::signal(SIGINT, on_signal);
            std::signal(SIGTERM, on_signal);
        }
        return run(cli, meta);
    } catch (const bijou::error& e) {
        if (world.size() > 1) world.abort(e.what());  // ends every rank of the job, naming this one
        std::fprintf(stderr, "%s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        if (world.size() > 1) world.abort(std::string("mnist_glow: ") + e.what());
        std::fprintf(stderr, "mnist_glow: %s\n", e.what());
        return 1;
    }
}
