// bijou/core/memory.hpp — memory where a backend's kernels read and write, and moving data to it.
//
// Reference and Cpu kernels work on host memory; an ExecutorBackend's (Cuda: device memory; CudaHost:
// host memory owned by its executor) on memory its executor allocates. Models keep their arena,
// parameters and per-sample buffers in Buffer<B, U> and cross the API edge with upload/download, so
// the same model code serves every backend.
//   Buffer<B, U>            n scalars of backend memory: assign_zeros(n) releases, then holds n zeros
//                           (host backends: large ones on transparent huge pages, core/host_allocator.hpp)
//   upload(B, dst, host, n) backend memory ← host memory      download(B, host, src, n) the reverse
//   fill(B, p, n, v)        p[0..n) = v in backend memory
//   fill_normal_from_host(B, p, n, scale, rng)  p[k] = U(scale·rng.normal()) for k = 0, 1, …, n − 1,
//                           drawn on the host in that order (the same draws on every backend), through
//                           Rng::normals (its transforms across the threads); a backend with memory of
//                           its own stages the n values in a host vector (one allocation) and uploads
//   add_into(B, a, b, n)    a[i] += b[i] (double, backend memory)
//   sum(B, a, b, n)         Σ a[i] + b[i] (double; b may be null) returned to the host (one
//                           synchronisation on a device)
//   copy_rows(B, dst, ds, src, ss, rows, len)  dst[r·ds + j] = src[r·ss + j] for r < rows, j < len
//   add_constant(B, a, n, v)  a[i] += v (double)
//   accumulate(B, dst, src, n)  dst[i] += src[i] (both backend memory)
//   add_total_times(B, dst, v, m, src, n)  dst[j] += T(v[j]·Σ_i src[i]) (no host round trip)
// For host backends upload/download are copies and fill/add_into/sum plain loops; a pointer of backend
// memory must not be dereferenced on the host unless the backend is a host one. Totals that are math
// rather than moving data (Σ g², scaling a span, a total added to every entry) are kernels, one
// overload per backend: kernels/{reference,cpu,cuda}/totals.hpp.
#pragma once

#include <algorithm>
#include <cstddef>
#include <utility>
#include <vector>

#include "bijou/core/backend.hpp"
#include "bijou/core/hd.hpp"
#include "bijou/core/host_allocator.hpp"
#include "bijou/core/random.hpp"

namespace bijou {

namespace detail {
template <class B, class U>
struct buffer_storage {
    using type = std::vector<U, HostAllocator<U>>;  // large arrays on huge pages (core/host_allocator.hpp)
};
template <ExecutorBackend B, class U>
struct buffer_storage<B, U> {
    using type = decltype(B::executor::template make_buffer<U>(0));
};
}  // namespace detail

/// Memory of n scalars where backend B's kernels can read and write them.
template <Backend B, class U>
class Buffer {
public:
    Buffer() = default;
    explicit Buffer(std::size_t n) { assign_zeros(n); }

    /// Releases what it holds, then holds n zeros (so peak memory is one allocation, not two).
    void assign_zeros(std::size_t n) {
        storage_ = storage();
        if constexpr (ExecutorBackend<B>) storage_ = B::executor::template make_buffer<U>(n);
        else storage_.assign(n, U(0));
    }

    U* data() { return storage_.data(); }
    const U* data() const { return storage_.data(); }
    std::size_t size() const { return storage_.size(); }

private:
    using storage = typename detail::buffer_storage<B, U>::type;
    storage storage_;
};

template <Backend B, class U>
void upload(B, U* dst, const U* host, std::size_t n) {
    if constexpr (ExecutorBackend<B>) B::executor::copy_to_device(dst, host, n);
    else if (dst != host) std::copy_n(host, n, dst);
}

template <Backend B, class U>
void download(B, U* host, const U* src, std::size_t n) {
    if constexpr (ExecutorBackend<B>) B::executor::copy_to_host(host, src, n);
    else if (host != src) std::copy_n(src, n, host);
}

template <Backend B, class U>
void fill(B, U* p, std::size_t n, U v) {
    if constexpr (ExecutorBackend<B>) B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t k) { p[k] = v; });
    else std::fill(p, p + n, v);
}

template <Backend B, class U>
void fill_normal_from_host(B, U* p, std::size_t n, double scale, Rng& rng) {
    auto fill = [&](U* dst) { rng.normals(n, [&](std::size_t k, double v) { dst[k] = U(scale * v); }); };
    if constexpr (ExecutorBackend<B>) {
        std::vector<U> host(n);
        fill(host.data());
        B::executor::copy_to_device(p, host.data(), n);
    } else {
        fill(p);
    }
}

template <Backend B>
void add_into(B, double* a, const double* b, std::size_t n) {
    if constexpr (ExecutorBackend<B>) B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t k) { a[k] += b[k]; });
    else
        for (std::size_t k = 0; k < n; ++k) a[k] += b[k];
}

namespace detail {
/// *slot = Σ_{k < n} term(k) in double on the executor (one block, fixed order); returns slot.
template <class X, class Term>
double* total_into(double* slot, std::size_t n, Term term) {
    X::segment_reduce(
        1,
        [=] BIJOU_HD_LAMBDA(int, std::size_t part, std::size_t parts, double& s, double&) {
            for (std::size_t k = part; k < n; k += parts) s += term(k);
        },
        [=] BIJOU_HD_LAMBDA(int, double s, double) { *slot = s; });
    return slot;
}

template <class X>
double slot_to_host(const double* slot) {
    double host = 0.0;
    X::copy_to_host(&host, slot, 1);
    return host;
}
}  // namespace detail

/// Σ a[i] + Σ b[i] over n entries (b may be null), in double, returned to the host.
template <Backend B, class U>
double sum(B, const U* a, const U* b, std::size_t n) {
    auto term = [=] BIJOU_HD_LAMBDA(std::size_t k) { return b != nullptr ? double(a[k]) + double(b[k]) : double(a[k]); };
    if constexpr (ExecutorBackend<B>) {
        using X = typename B::executor;
        return detail::slot_to_host<X>(detail::total_into<X>(X::scalar_slot(), n, term));
    } else {
        double s = 0.0;
        for (std::size_t k = 0; k < n; ++k) s += term(k);
        return s;
    }
}

/// dst[j] += D(v[j]·Σ_i src[i]) for j < m, for an ExecutorBackend (the sum in double).
template <ExecutorBackend B, class D, class S>
void add_total_times(B, D* dst, const D* v, std::size_t m, const S* src, std::size_t n) {
    using X = typename B::executor;
    const double* total =
        detail::total_into<X>(X::scalar_slot() + 1, n, [=] BIJOU_HD_LAMBDA(std::size_t k) { return double(src[k]); });
    X::for_each(m, [=] BIJOU_HD_LAMBDA(std::size_t j) { dst[j] += D(double(v[j]) * *total); });
}

/// a[i] += v for i < n.
template <Backend B>
void add_constant(B, double* a, std::size_t n, double v) {
    if constexpr (ExecutorBackend<B>) B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t k) { a[k] += v; });
    else
        for (std::size_t k = 0; k < n; ++k) a[k] += v;
}

/// dst[i] += src[i] for i < n (backend memory).
template <Backend B, class U>
void accumulate(B, U* dst, const U* src, std::size_t n) {
    if constexpr (ExecutorBackend<B>) B::executor::for_each(n, [=] BIJOU_HD_LAMBDA(std::size_t k) { dst[k] += src[k]; });
    else
        for (std::size_t k = 0; k < n; ++k) dst[k] += src[k];
}

/// Strided row copy: dst[r·dst_stride + j] = src[r·src_stride + j], r < rows, j < len (backend memory).
template <Backend B, class U>
void copy_rows(B, U* dst, std::size_t dst_stride, const U* src, std::size_t src_stride, std::size_t rows,
               std::size_t len) {
    if constexpr (ExecutorBackend<B>) {
        B::executor::for_each(rows * len, [=] BIJOU_HD_LAMBDA(std::size_t k) {
            const std::size_t r = k / len, j = k % len;
            dst[r * dst_stride + j] = src[r * src_stride + j];
        });
    } else {
        for (std::size_t r = 0; r < rows; ++r) std::copy_n(src + r * src_stride, len, dst + r * dst_stride);
    }
}

}  // namespace bijou
