// The distributed tests' main: starts MPI (tests/CMakeLists.txt runs this program under mpiexec -n 1,
// 2 and 3), runs the doctest cases on every rank, and returns failure when any rank failed. Only
// CHECKs are used around collectives: a REQUIRE that threw on one rank would leave the others waiting
// in the next collective (ctest's timeout would end it, but the message would be lost).
#define DOCTEST_CONFIG_IMPLEMENT
#include <doctest/doctest.h>

#include <cstdio>

#include "world.hpp"

namespace {
bijou::distributed::MpiWorld* the_world = nullptr;
}

bijou::distributed::MpiWorld& bijou_test::world() { return *the_world; }

int main(int argc, char** argv) {
    bijou::distributed::MpiWorld world(argc, argv);
    the_world = &world;
    doctest::Context context(argc, argv);
    if (world.rank() != 0) context.setOption("no-intro", true), context.setOption("no-version", true);
    int failed = context.run() != 0 ? 1 : 0;
    double any = failed;
    world.allreduce_sum(&any, 1);
    if (world.rank() == 0)
        std::printf("distributed tests on %d process%s: %s\n", world.size(), world.size() == 1 ? "" : "es",
                    any > 0 ? "FAILED on some rank" : "passed on every rank");
    return any > 0 ? 1 : 0;
}
