// Fixed3 only takes Shape<3>, and here it receives Shape<3>.
#include "test_recipes.hpp"

int main() {
    bijou::Transform<bijou::Chain<bijou::ActNorm, cf::Fixed3>, bijou::Shape<3>> t;
    return int(t.parameter_count()) == 6 ? 0 : 1;
}
