// tests/distributed/world.hpp — the MPI job the distributed tests run in (main.cpp starts it).
#pragma once

#include <bijou/distributed/mpi.hpp>

namespace bijou_test {
bijou::distributed::MpiWorld& world();
}
