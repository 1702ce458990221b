// mnist_glow: Glow L=3 on 3-channel images, Shape<3, 32, 32> (--data cifar10:DIR, or folder:DIR of RGB
// PNGs), in its own translation unit. The one 3-channel model type: the number of channels is part of
// the model's type, and each model type costs a unit's compile time (docs/mnist.md).
#include "mnist_glow/commands.hpp"

namespace mnist_glow {

int run_glow3_rgb(const Cli& cli, const Metadata& meta) {
    return run<bijou::Glow<bijou::Shape<3, 32, 32>, 3>>(cli, meta, "Glow L=3 RGB");
}

}  // namespace mnist_glow
