// A checkerboard coupling masks pixels, not channels: it takes any channel count, 3 included.
#include <bijou/bijou.hpp>

int main() {
    bijou::Flow<bijou::Shape<3, 8, 8>, bijou::Chain<bijou::ActNorm, bijou::CheckerboardAffineCoupling>> model;
    return model.parameter_count() > 0 ? 0 : 1;
}
