// Fixed3 (position 1) only takes Shape<3>, but ActNorm (position 0) hands it Shape<2>.
// expect: bijou: a Chain element receives a shape other than the one it takes
// expect: chain_shape_mismatch_at<1, bijou::Shape<3>, bijou::Shape<2> ?>
#include "test_recipes.hpp"

int main() {
    bijou::Transform<bijou::Chain<bijou::ActNorm, cf::Fixed3>, bijou::Shape<2>> t;
    return int(t.parameter_count()) == 6 ? 0 : 1;
}
