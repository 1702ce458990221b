// mnist_glow --device cuda: Glow L=3 (the default model) on the Cuda backend; the same program as the
// Cpu model types (commands.hpp), compiled by nvcc. Only this one model type is compiled for the GPU,
// to keep the build short.
#include <bijou/cuda.cuh>

#include "mnist_glow/commands.hpp"

namespace mnist_glow {

int run_glow3_cuda(const Cli& cli, const Metadata& meta) {
    bijou::cuda::require_device("mnist_glow --device cuda");
    using Step = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1LU, bijou::AffineCoupling>;
    return run<bijou::Glow<bijou::Shape<1, 32, 32>, 3, Step, float, bijou::Cuda>>(cli, meta, "Glow L=3 (cuda)");
}

}  // namespace mnist_glow
