// two_moons — RealNVP on the two-moons distribution.
//
// The classic set-up (Dinh et al. 2017 as in most tutorials): 8 affine couplings with alternating
// masks, separate shift and log-scale MLPs 2→256→256→2 (ReLU; tanh on the log-scale), standard
// normal base, 50,000 training points (sklearn's make_moons, noise 0.05, raw coordinates).
// Trains with Adam (linear warm-up, cosine decay, gradient clipping), prints progress, writes
// data.png, samples.png, density.png and stages.png to --out, and ends with one JSON line.
// --device cuda runs the same program on a GPU (two_moons_cuda.cu, built when CUDA is). Built with
// MPI, `mpirun -np N two_moons …` trains data-parallel on N processes (run.hpp); --threads is per process.
#include <cstdio>
#include <string>

#include <CLI/CLI.hpp>

#include "common/world.hpp"
#include "two_moons/run.hpp"

#if defined(BIJOU_EXAMPLE_CUDA)
int two_moons_run_cuda(const two_moons::Settings& s);  // two_moons_cuda.cu
#endif

int main(int argc, char** argv) {
    example::World world(argc, argv);  // the processes of an mpirun job, or this one
    world.quiet_unless_root();
    CLI::App app{"RealNVP on two moons: trains, reports held-out NLL, writes PNG pictures"};
    two_moons::Settings s;
    auto& [steps, batch, hidden, couplings, train_size, eval_size, threads, warmup, log_every, lr, min_lr_frac, clip,
           noise, seed, out, no_png] = s;
    std::string device = "cpu";
    app.add_option("--steps", steps, "training steps")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--batch", batch, "batch size")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--lr", lr, "peak Adam learning rate")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--min-lr", min_lr_frac, "final learning rate of the cosine decay, as a fraction of --lr")
        ->check(CLI::Range(0.0, 1.0))
        ->capture_default_str();
    app.add_option("--warmup", warmup, "linear warm-up steps")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--clip", clip, "gradient-norm clipping threshold (0: off)")
        ->check(CLI::NonNegativeNumber)
        ->capture_default_str();
    app.add_option("--hidden", hidden, "hidden width of the shift and log-scale MLPs")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--couplings", couplings, "number of affine couplings")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_option("--train-size", train_size, "training points")->check(CLI::Range(2, 10000000))->capture_default_str();
    app.add_option("--eval-size", eval_size, "fresh held-out points for the final NLL")
        ->check(CLI::Range(2, 10000000))
        ->capture_default_str();
    app.add_option("--noise", noise, "std-dev of the Gaussian noise on the moons")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--threads", threads, "OpenMP threads (0: OpenMP's default)")->check(CLI::NonNegativeNumber)->capture_default_str();
    app.add_option("--seed", seed, "seed of data, initialisation and batches")->capture_default_str();
    app.add_option("--out", out, "directory for the PNG pictures")->capture_default_str();
    app.add_option("--log-every", log_every, "progress line every N steps")->check(CLI::PositiveNumber)->capture_default_str();
    app.add_flag("--no-png", no_png, "skip the pictures");
    app.add_option("--device", device, "cpu, or cuda (a GPU; needs a build with CUDA)")
        ->check(CLI::IsMember({"cpu", "cuda"}))
        ->capture_default_str();
    CLI11_PARSE(app, argc, argv);

    if (device == "cuda") {
        if (world.size() > 1) world.abort("--device cuda trains on one process: run it without mpirun (or with -np 1)");
#if defined(BIJOU_EXAMPLE_CUDA)
        return two_moons_run_cuda(s);
#else
        std::fprintf(stderr, "two_moons: --device cuda needs a build with the CUDA backend (BIJOU_WITH_CUDA=ON, or "
                             "AUTO where nvcc is installed)\n");
        return 1;
#endif
    }
    return two_moons::run<bijou::Cpu>(s, &world);
}
