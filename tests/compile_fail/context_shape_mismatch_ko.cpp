// The coupling at position 1 expects a context Shape<3>, but the one at position 0 expects Shape<2>.
// expect: bijou: the conditional elements of a model expect different context shapes
// expect: context_shape_mismatch_at<1, bijou::Shape<2>, bijou::Shape<3> ?>
#include <bijou/bijou.hpp>

int main() {
    using Step = bijou::Chain<bijou::ConditionalAffineCoupling<bijou::Shape<2>>, bijou::ConditionalAffineCoupling<bijou::Shape<3>>>;
    bijou::Transform<Step, bijou::Shape<4>> t;
    return t.parameter_count() > 0 ? 0 : 1;
}
