// A flat Shape<784> (MNIST as a vector) is not an image: Glow has nothing to squeeze.
// expect: bijou: Glow and MultiScaleRealNVP take an image Shape<C, H, W>
// expect: glow_needs_an_image_shape<bijou::Shape<784> ?>
#include <bijou/bijou.hpp>

int main() {
    bijou::Glow<bijou::Shape<784>, 2> model;
    return model.levels() == 2 ? 0 : 1;
}
