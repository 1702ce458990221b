// Glow squeezes 2x2 blocks at each of its 3 levels: 32 -> 16 -> 8 -> 4, always even.
#include <bijou/bijou.hpp>

int main() {
    bijou::Glow<bijou::Shape<1, 32, 32>, 3> model;
    return model.levels() == 3 ? 0 : 1;
}
