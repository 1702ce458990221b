// Every element of the Chain is a recipe.
#include <bijou/bijou.hpp>

int main() {
    bijou::Transform<bijou::Chain<bijou::ActNorm, bijou::ActNorm>, bijou::Shape<2>> t;
    return int(t.parameter_count()) == 8 ? 0 : 1;
}
