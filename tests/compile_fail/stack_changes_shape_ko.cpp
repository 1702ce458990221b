// The Step of a Stack maps Shape<4> to Shape<2>, so its copies cannot follow one another.
// expect: bijou: the Step of a Stack/Repeat must keep its shape
// expect: stack_step_changes_shape<cf::ToSize<2>, bijou::Shape<4>, bijou::Shape<2> ?>
#include "test_recipes.hpp"

int main() {
    bijou::Transform<bijou::Stack<cf::ToSize<2>>, bijou::Shape<4>> t;
    bijou::Transform<bijou::Repeat<bijou::Chain<bijou::ActNorm, cf::ToSize<4>>, 2>, bijou::Shape<4>> r;
    return int(t.parameter_count() + r.parameter_count()) == 16 ? 0 : 1;
}
