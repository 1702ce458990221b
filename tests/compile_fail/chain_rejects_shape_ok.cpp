// EvenOnly accepts shapes with an even number of values, and here it receives Shape<2>.
#include "test_recipes.hpp"

int main() {
    bijou::Transform<bijou::Chain<bijou::ActNorm, cf::EvenOnly>, bijou::Shape<2>> t;
    return int(t.parameter_count());
}
