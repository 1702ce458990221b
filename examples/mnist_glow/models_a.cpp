// mnist_glow: the Glow L=3 and MultiScaleRealNVP model types. The model types are compiled in two
// translation units (models_a.cpp, models_b.cpp) so that a two-core build compiles them side by side;
// most of a unit's time is the shared kernels, so more units would cost more in all (docs/mnist.md).
#include "mnist_glow/commands.hpp"

namespace mnist_glow {

Metadata read_metadata(const std::string& checkpoint) { return bijou::read_checkpoint_metadata(checkpoint); }

int run_glow3(const Cli& cli, const Metadata& meta) {
    return run<bijou::Glow<bijou::Shape<1, 32, 32>, 3>>(cli, meta, "Glow L=3");
}

int run_realnvp3(const Cli& cli, const Metadata& meta) {
    return run<bijou::MultiScaleRealNVP<bijou::Shape<1, 32, 32>, 3>>(cli, meta, "MultiScaleRealNVP 3 scales");
}

}  // namespace mnist_glow
