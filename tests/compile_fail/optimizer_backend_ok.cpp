// A model on the CudaHost backend (the Cuda backend's code, on the host) trains with an optimizer
// built for that backend.
#include <bijou/bijou.hpp>

int main() {
    bijou::RealNVP<bijou::Shape<2>, bijou::StandardNormal, float, bijou::CudaHost> m(
        bijou::Options{.steps_per_level = 2, .hidden = 4});
    bijou::Adam<float, bijou::CudaHost> adam(m.parameter_count());
    const auto x = bijou::two_moons<float>(8, 0.05, 0);
    return bijou::train_step(m, adam, x, bijou::TrainConfig{}, 0).skipped ? 1 : 0;
}
