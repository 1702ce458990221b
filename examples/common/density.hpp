// examples/common/density.hpp — a 2-D flow's density as a picture (two_moons, toy_density).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>

#include <xtensor/xtensor.hpp>

#include "common/png.hpp"

namespace example {

/// exp(log p) of a Flow on Shape<2> over the square [x0, x1] × [y0, y1] (y up) on a size × size grid,
/// normalised to its maximum, through the colour map.
template <class Model>
Canvas density_image(const Model& model, double x0, double x1, double y0, double y1, int size) {
    xt::xtensor<float, 2> grid = xt::xtensor<float, 2>::from_shape({std::size_t(size) * size, 2});
    for (int y = 0; y < size; ++y)
        for (int x = 0; x < size; ++x) {
            grid(std::size_t(y) * size + x, 0) = float(x0 + (x + 0.5) / size * (x1 - x0));
            grid(std::size_t(y) * size + x, 1) = float(y1 - (y + 0.5) / size * (y1 - y0));
        }
    const auto lp = model.log_prob(grid);
    double hi = -1e300;
    for (float l : lp) hi = std::max(hi, double(l));
    Canvas c(size, size);
    for (std::size_t k = 0; k < lp.size(); ++k)
        c.set(int(k % std::size_t(size)), int(k / std::size_t(size)), colormap(std::exp(double(lp(k)) - hi)));
    return c;
}

}  // namespace example
