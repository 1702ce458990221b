// bijou/core/cuda.cuh — the Cuda backend's policy type and runtime: errors, device query, device
// memory and the cuBLAS handle.
//
// Include only from translation units compiled by nvcc (with --extended-lambda: the bijou::cuda CMake
// target adds it). The core headers never include this file, so a CPU-only build needs no CUDA.
//   Cuda                 the backend tag: kernels::f(Cuda{}, ...) overloads take DEVICE pointers
//   cuda_error           derives from bijou::error; every failed CUDA or cuBLAS call throws one, naming
//                        the call and CUDA's own message
//   cuda::device_available(), cuda::unavailable_reason(), cuda::require_device(who)
//                        a machine without a GPU or driver is reported, never crashed on
//   cuda::DeviceBuffer<T> one device allocation (RAII, move-only) with upload/download
//   cuda::stream(), cuda::blas(), cuda::synchronize()
// The device executor that runs kernels is in kernels/cuda/exec.cuh.
// All kernels run in order on one stream (the legacy default stream); a host read of their results
// (DeviceBuffer::download) waits for them.
#pragma once

#include <cuda_runtime.h>
#include <cublas_v2.h>

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>

#include "bijou/core/backend.hpp"
#include "bijou/core/error.hpp"

namespace bijou {

namespace cuda {
struct Exec;  // kernels/cuda/exec.cuh
}

/// The CUDA backend: kernels run on the current CUDA device; the pointers they take are device pointers.
struct Cuda {
    static constexpr std::string_view name = "cuda";
    using executor = cuda::Exec;
};

/// A CUDA runtime or cuBLAS call failed (including "no device").
class cuda_error : public error {
public:
    using error::error;
};

namespace cuda {

inline void check(cudaError_t e, const char* what) {
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // clear the sticky-free error state for the next call
        throw cuda_error(std::string("bijou::Cuda: ") + what + " failed: " + cudaGetErrorString(e));
    }
}

inline void check(cublasStatus_t s, const char* what) {
    if (s != CUBLAS_STATUS_SUCCESS)
        throw cuda_error(std::string("bijou::Cuda: ") + what + " failed: cuBLAS status " + std::to_string(int(s)));
}

/// Why no CUDA device can be used here ("" when one can).
inline std::string unavailable_reason() {
    int count = 0;
    const cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return cudaGetErrorString(e);
    }
    return count > 0 ? std::string() : std::string("no CUDA device found");
}

inline bool device_available() { return unavailable_reason().empty(); }

/// Throws cuda_error naming `who` unless a CUDA device can be used.
inline void require_device(const std::string& who) {
    const std::string why = unavailable_reason();
    if (!why.empty()) throw cuda_error(who + " needs a CUDA device, and none can be used: " + why);
}

/// The stream bijou's kernels and cuBLAS calls run on.
inline cudaStream_t stream() { return cudaStream_t(0); }

inline void synchronize() { check(cudaStreamSynchronize(stream()), "cudaStreamSynchronize"); }

/// The calling thread's cuBLAS handle, created on first use, bound to stream().
inline cublasHandle_t blas() {
    struct Handle {
        cublasHandle_t h = nullptr;
        Handle() {
            check(cublasCreate(&h), "cublasCreate");
            check(cublasSetStream(h, stream()), "cublasSetStream");
        }
        ~Handle() {
            if (h != nullptr) (void)cublasDestroy(h);
        }
    };
    thread_local Handle handle;
    return handle.h;
}

/// Copies n scalars from host memory to device memory (after the queued kernels; waits for the copy).
template <class T>
void copy_to_device(T* dst, const T* host, std::size_t n) {
    if (n) check(cudaMemcpy(dst, host, n * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy to the device");
}

/// Copies n scalars from device memory to host memory, after every kernel queued before it.
template <class T>
void copy_to_host(T* host, const T* src, std::size_t n) {
    if (n) check(cudaMemcpy(host, src, n * sizeof(T), cudaMemcpyDeviceToHost), "cudaMemcpy to the host");
}

/// One device allocation of n scalars (uninitialised), freed on destruction.
template <class T>
class DeviceBuffer {
public:
    DeviceBuffer() = default;
    explicit DeviceBuffer(std::size_t n) : n_(n) {
        if (n == 0) return;
        require_device("bijou::cuda::DeviceBuffer");
        check(cudaMalloc(reinterpret_cast<void**>(&p_), n * sizeof(T)),
              ("cudaMalloc of " + std::to_string(n * sizeof(T)) + " bytes").c_str());
    }
    DeviceBuffer(DeviceBuffer&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    DeviceBuffer& operator=(DeviceBuffer&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
        return *this;
    }
    DeviceBuffer(const DeviceBuffer&) = delete;
    DeviceBuffer& operator=(const DeviceBuffer&) = delete;
    ~DeviceBuffer() {
        if (p_ != nullptr) (void)cudaFree(p_);
    }

    T* data() { return p_; }
    const T* data() const { return p_; }
    std::size_t size() const { return n_; }

    /// Copies count ≤ size() scalars from host memory (waits for the copy).
    void upload(const T* host, std::size_t count) {
        if (count > n_) throw invalid_argument("DeviceBuffer::upload: more scalars than the buffer holds");
        copy_to_device(p_, host, count);
    }
    /// Copies count ≤ size() scalars to host memory, after every kernel queued before it.
    void download(T* host, std::size_t count) const {
        if (count > n_) throw invalid_argument("DeviceBuffer::download: more scalars than the buffer holds");
        copy_to_host(host, p_, count);
    }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};

}  // namespace cuda
}  // namespace bijou
