// Glow needs at least one level (one squeeze, its steps, and the top prior).
#include <bijou/bijou.hpp>

int main() {
    bijou::Glow<bijou::Shape<1, 32, 32>, 1> model;
    return model.levels() == 1 ? 0 : 1;
}
