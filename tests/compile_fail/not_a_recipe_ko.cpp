// `int` (position 1) is not a bijector recipe.
// expect: bijou: a Chain element is not a bijector recipe
// expect: chain_element_is_not_a_bijector_recipe_at<1, int ?>
#include <bijou/bijou.hpp>

int main() {
    bijou::Transform<bijou::Chain<bijou::ActNorm, int>, bijou::Shape<2>> t;
    return int(t.parameter_count()) == 8 ? 0 : 1;
}
