// A Shape with two extents is neither a vector nor an image.
// expect: bijou: Shape takes one extent
#include <bijou/core/shape.hpp>

static_assert(bijou::Shape<2, 3>::size == 6);
static_assert(bijou::Shape<6>::size == 6);

int main() {}
