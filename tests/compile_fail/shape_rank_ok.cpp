// A Shape has one extent (vector) or three (image).
#include <bijou/core/shape.hpp>

static_assert(bijou::Shape<2, 3, 4>::size == 24);
static_assert(bijou::Shape<6>::size == 6);

int main() {}
