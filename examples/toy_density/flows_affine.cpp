// The affine flows of toy_density: RealNVP (affine couplings, alternating masks) and MAF (affine
// masked autoregressive layers, orders alternating natural/reversed).
#include "toy_density/run.hpp"

namespace toy {

Result train_realnvp(const Settings& s, Picture& p) {
    using Model = bijou::Flow<bijou::Shape<2>, bijou::Stack<bijou::AffineCoupling>, bijou::StandardNormal, float, bijou::Cpu>;
    return train<Model>(s, bijou::Options{}, p);
}

Result train_maf(const Settings& s, Picture& p) {
    using Model = bijou::Flow<bijou::Shape<2>, bijou::Stack<bijou::MaskedAutoregressive<bijou::AffineTransform>>,
                              bijou::StandardNormal, float, bijou::Cpu>;
    return train<Model>(s, bijou::Options{}, p);
}

}  // namespace toy
