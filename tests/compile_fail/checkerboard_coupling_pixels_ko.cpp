// A checkerboard coupling (position 1) needs at least two pixels: one kept, one transformed.
// expect: bijou: a Chain element cannot be bound to the shape it receives
// expect: chain_recipe_rejects_shape_at<1, bijou::CheckerboardAffineCoupling, bijou::Shape<3, 1, 1> ?>
#include <bijou/bijou.hpp>

int main() {
    bijou::Flow<bijou::Shape<3, 1, 1>, bijou::Chain<bijou::ActNorm, bijou::CheckerboardAffineCoupling>> model;
    return model.parameter_count() > 0 ? 0 : 1;
}
