// A channel-wise spline coupling keeps C/2 channels and transforms the other C/2: 4 channels split evenly.
#include <bijou/bijou.hpp>

int main() {
    bijou::Flow<bijou::Shape<4, 8, 8>, bijou::Chain<bijou::ActNorm, bijou::RationalQuadraticCoupling>> model;
    return model.parameter_count() > 0 ? 0 : 1;
}
