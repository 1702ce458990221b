// Glow with 0 levels has no model at all.
// expect: bijou: Glow needs at least one level
#include <bijou/bijou.hpp>

int main() {
    bijou::Glow<bijou::Shape<1, 32, 32>, 0> model;
    return model.levels() == 1 ? 0 : 1;
}
