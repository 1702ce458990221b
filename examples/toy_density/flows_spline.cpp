// The spline flows of toy_density: rational-quadratic spline couplings (Neural Spline Flows,
// alternating masks) and MAF with rational-quadratic transforms. Settings::bins and bound set the
// splines (SplineOptions).
#include "toy_density/run.hpp"

namespace toy {

namespace {
bijou::Options spline_options(const Settings& s) {
    return bijou::Options{}.with(bijou::SplineOptions{.bins = s.bins, .bound = s.bound});
}
}  // namespace

Result train_spline(const Settings& s, Picture& p) {
    using Model =
        bijou::Flow<bijou::Shape<2>, bijou::Stack<bijou::RationalQuadraticCoupling>, bijou::StandardNormal, float, bijou::Cpu>;
    return train<Model>(s, spline_options(s), p);
}

Result train_maf_spline(const Settings& s, Picture& p) {
    using Model = bijou::Flow<bijou::Shape<2>, bijou::Stack<bijou::MaskedAutoregressive<bijou::RationalQuadraticTransform>>,
                              bijou::StandardNormal, float, bijou::Cpu>;
    return train<Model>(s, spline_options(s), p);
}

}  // namespace toy
