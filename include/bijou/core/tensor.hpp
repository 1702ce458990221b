// bijou/core/tensor.hpp — xtensor at the API edge.
//
// Public inputs/outputs: xt::xtensor<T, 2> (n, D) for Shape<D>, xt::xtensor<T, 4> (n, C, H, W) for
// Shape<C, H, W> (PyTorch's layout). Both are contiguous row-major, which is also bijou's internal
// sample-major layout, so crossing the edge is a pointer, not a copy.
#pragma once

#include <array>
#include <cstddef>
#include <string>

#include <xtensor/xtensor.hpp>

#include "bijou/core/error.hpp"
#include "bijou/core/shape.hpp"

namespace bijou {

/// A batch of events of shape S: xt::xtensor<T, rank(S) + 1>.
template <class T, EventShape S>
using batch_t = xt::xtensor<T, std::size_t(S::rank) + 1>;

/// An empty batch of n events of shape S.
template <class T, EventShape S>
batch_t<T, S> make_batch(int n) {
    std::array<std::size_t, std::size_t(S::rank) + 1> shape{};
    shape[0] = std::size_t(n);
    for (int d = 0; d < S::rank; ++d) shape[std::size_t(d) + 1] = std::size_t(S::dims[std::size_t(d)]);
    return batch_t<T, S>(shape);
}

/// Throws shape_error unless x is (n, dims of S...); returns n.
template <EventShape S, class Tensor>
int check_batch(const Tensor& x, const char* what) {
    const auto& sh = x.shape();
    bool ok = sh.size() == std::size_t(S::rank) + 1;
    for (int d = 0; ok && d < S::rank; ++d) ok = sh[std::size_t(d) + 1] == std::size_t(S::dims[std::size_t(d)]);
    if (!ok) {
        std::string got = "(";
        for (std::size_t d = 0; d < sh.size(); ++d) got += (d ? ", " : "") + std::to_string(sh[d]);
        got += ")";
        throw shape_error(std::string(what) + ": expected a batch (n, ...) of " + S::str() + ", got a tensor of shape " +
                          got);
    }
    if (sh[0] > std::size_t(1) << 30) throw shape_error(std::string(what) + ": batch too large");
    return int(sh[0]);
}

}  // namespace bijou
