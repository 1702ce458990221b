// `int` is not a bijector recipe (no `name`, no `bind<Shape, T, Backend>`), so it cannot be Glow's step.
// expect: bijou: Glow's Step is not a bijector recipe
// expect: glow_step_is_not_a_bijector_recipe<int ?>
#include <bijou/bijou.hpp>

using Step = int;

int main() {
    bijou::Glow<bijou::Shape<1, 32, 32>, 3, Step> model;
    return model.levels() == 3 ? 0 : 1;
}
