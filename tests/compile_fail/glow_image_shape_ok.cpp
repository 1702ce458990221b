// Glow takes an image Shape<C, H, W>.
#include <bijou/bijou.hpp>

int main() {
    bijou::Glow<bijou::Shape<1, 16, 16>, 2> model;
    return model.levels() == 2 ? 0 : 1;
}
