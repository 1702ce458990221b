// bijou/core/shape.hpp — event shapes as types.
//
// Shape<D> is a vector event of D values; Shape<C, H, W> an image event (channels, height, width).
// The batch dimension is never part of a Shape: it is a runtime value.
// Shapes of any other rank, or with a non-positive extent, are rejected at compile time.
#pragma once

#include <array>
#include <cstddef>
#include <string>

namespace bijou {

template <int... Dims>
struct Shape {
    static_assert(sizeof...(Dims) == 1 || sizeof...(Dims) == 3,
                  "bijou: Shape takes one extent (Shape<D>, a vector) or three (Shape<C, H, W>, an image)");
    static_assert(((Dims > 0) && ...), "bijou: every extent of a Shape must be positive");

    static constexpr int rank = int(sizeof...(Dims));
    static constexpr int size = (Dims * ...);  // values per sample
    static constexpr std::array<int, sizeof...(Dims)> dims{Dims...};

    static std::string str() {
        std::string s = "Shape<";
        bool first = true;
        for (int d : dims) {
            s += (first ? "" : ", ") + std::to_string(d);
            first = false;
        }
        return s + ">";
    }
};

namespace detail {
template <class S>
struct is_shape : std::false_type {};
template <int... D>
struct is_shape<Shape<D...>> : std::true_type {};
}  // namespace detail

/// Satisfied by Shape<D> and Shape<C, H, W>.
template <class S>
concept EventShape = detail::is_shape<S>::value;

/// Satisfied by vector shapes Shape<D>.
template <class S>
concept VectorShape = EventShape<S> && S::rank == 1;

/// Satisfied by image shapes Shape<C, H, W>.
template <class S>
concept ImageShape = EventShape<S> && S::rank == 3;

/// Number of "features" a per-feature bijector acts on: D for vectors, C for images.
template <EventShape S>
inline constexpr int channels_of = S::dims[0];

/// Number of positions each feature is repeated over: 1 for vectors, H*W for images.
template <EventShape S>
inline constexpr int spatial_of = S::size / S::dims[0];

}  // namespace bijou
