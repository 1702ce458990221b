// mnist_glow: the Glow L=2 and L=4 model types (see models_a.cpp for why two units).
#include "mnist_glow/commands.hpp"

namespace mnist_glow {

int run_glow2(const Cli& cli, const Metadata& meta) {
    return run<bijou::Glow<bijou::Shape<1, 32, 32>, 2>>(cli, meta, "Glow L=2");
}

int run_glow4(const Cli& cli, const Metadata& meta) {
    return run<bijou::Glow<bijou::Shape<1, 32, 32>, 4>>(cli, meta, "Glow L=4");
}

}  // namespace mnist_glow
