// bijou/core/eigen.hpp — Eigen's core, as bijou's headers include it: with this translation unit's heap
// allocator recorded for detail::check_simd_abi() (core/simd_abi.hpp says why).
#pragma once

#include <Eigen/Core>

#include "bijou/core/simd_abi.hpp"

namespace bijou::detail {
namespace {  // one per translation unit
[[maybe_unused]] const int simd_abi_of_this_file =
    record_simd_abi(EIGEN_DEFAULT_ALIGN_BYTES, EIGEN_DEFAULT_ALIGN_BYTES == 0 || EIGEN_MALLOC_ALREADY_ALIGNED);
}  // namespace
}  // namespace bijou::detail
