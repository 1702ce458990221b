// A channel-wise spline coupling (position 1) cannot split 3 channels in two halves.
// expect: bijou: a Chain element cannot be bound to the shape it receives
// expect: chain_recipe_rejects_shape_at<1, bijou::RationalQuadraticCoupling, bijou::Shape<3, 8, 8> ?>
#include <bijou/bijou.hpp>

int main() {
    bijou::Flow<bijou::Shape<3, 8, 8>, bijou::Chain<bijou::ActNorm, bijou::RationalQuadraticCoupling>> model;
    return model.parameter_count() > 0 ? 0 : 1;
}
