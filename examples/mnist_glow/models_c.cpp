// mnist_glow: the class-conditional Glow L=3, p(x | digit) (train --conditional), in its own translation
// unit: its couplings see the one-hot label through a learned per-channel projection, and its split
// priors and top prior are conditioned on it too (bijou's ConditionalSplit / ConditionalTopPrior).
#include "mnist_glow/commands.hpp"

namespace mnist_glow {

int run_glow3_conditional(const Cli& cli, const Metadata& meta) {
    using Label = bijou::Shape<n_labels>;  // one-hot digit
    using Step = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1LU, bijou::ConditionalAffineCoupling<Label>>;
    return run<bijou::Glow<bijou::Shape<1, 32, 32>, 3, Step>>(cli, meta, "Glow L=3 class-conditional");
}

}  // namespace mnist_glow
