// A custom Glow step: any bijector recipe that keeps its shape.
#include <bijou/bijou.hpp>

using Step = bijou::Chain<bijou::ActNorm, bijou::InvConv1x1, bijou::AdditiveCoupling>;

int main() {
    bijou::Glow<bijou::Shape<1, 32, 32>, 3, Step> model;
    return model.levels() == 3 ? 0 : 1;
}
