// EvenOnly (position 1) does not accept the Shape<1> that ActNorm (position 0) hands it.
// expect: bijou: a Chain element cannot be bound to the shape it receives
// expect: chain_recipe_rejects_shape_at<1, cf::EvenOnly, bijou::Shape<1> ?>
#include "test_recipes.hpp"

int main() {
    bijou::Transform<bijou::Chain<bijou::ActNorm, cf::EvenOnly>, bijou::Shape<1>> t;
    return int(t.parameter_count());
}
