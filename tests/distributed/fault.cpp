// fault MODE RANK STEP — a data-parallel training loop in which rank RANK fails at step STEP:
//   throw  an exception (what a bad file or a bad argument on one rank gives): the rank's handler
//          calls MpiWorld::abort, which names the rank and ends the whole job
//   kill   the process dies (SIGKILL): the launcher notices and ends the job
//   none   no fault: the run finishes and rank 0 prints "finished"
// fault_check.cmake runs it under mpiexec with a timeout: a fault must end the job with a non-zero
// status and a message naming the rank, never leave the other ranks waiting in the all-reduce.
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <bijou/bijou.hpp>
#include <bijou/distributed/data_parallel.hpp>
#include <bijou/distributed/mpi.hpp>

int main(int argc, char** argv) {
    bijou::distributed::MpiWorld world(argc, argv);
    try {
        if (argc != 4) throw bijou::invalid_argument("usage: fault throw|kill|none RANK STEP");
        const std::string mode = argv[1];
        const int fail_rank = std::atoi(argv[2]), fail_step = std::atoi(argv[3]);
        bijou::distributed::DataParallel dp(world);
        bijou::RealNVP<bijou::Shape<2>> model({.steps_per_level = 2, .hidden = 16, .seed = 3});
        bijou::Adam<float> opt(model.parameter_count());
        dp.broadcast_parameters(model);
        const int batch = 8 * world.size();
        auto x = bijou::make_batch<float, bijou::Shape<2>>(dp.shard(batch).size());
        bijou::Rng rng(world.rank());
        for (int step = 0; step < 30; ++step) {
            if (world.rank() == fail_rank && step == fail_step) {
                if (mode == "throw")
                    throw bijou::io_error("data/part-" + std::to_string(fail_rank) + ".bin: truncated (a simulated fault)");
                if (mode == "kill") std::raise(SIGKILL);
            }
            for (auto& v : x) v = float(rng.normal());
            dp.train_step(model, opt, x, batch, {.lr = 1e-3}, step);
        }
        if (world.rank() == 0) std::printf("finished: 30 steps on %d ranks\n", world.size());
    } catch (const std::exception& e) {
        world.abort(e.what());
    }
    return 0;
}
