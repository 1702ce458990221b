// Glow's 3 levels squeeze 28 -> 14 -> 7: level 2 receives Shape<4, 7, 7> (level 0 has 1 channel,
// squeeze and split double it per level) and cannot squeeze its odd 7x7.
// expect: bijou: each squeeze halves H and W
// expect: glow_level_needs_even_height_and_width<2, bijou::Shape<4, 7, 7> ?>
#include <bijou/bijou.hpp>

int main() {
    bijou::Glow<bijou::Shape<1, 28, 28>, 3> model;
    return model.levels() == 3 ? 0 : 1;
}
