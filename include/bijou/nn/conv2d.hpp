// bijou/nn/conv2d.hpp — a 2-D convolution layer with a hand-written backward (image conditioners).
//
// Conv2d<T, Backend>(in, out, kernel, H, W): stride 1, zero "same" padding (kernel/2 each side),
// kernel 1 or 3, with bias; computes what PyTorch's nn.Conv2d(in, out, kernel, padding=kernel//2)
// computes (a cross-correlation).
//   Activations are CHANNEL-MAJOR: a batch of n images with C channels of H×W is a (C, n·H·W)
//   row-major matrix, element (c, i, p) at c·(n·HW) + i·HW + p, p = y·W + x. The kernels/*/conv2d.hpp
//   layout helpers convert from and to NCHW batches.
//   State_dict: "<prefix>.weight" (out, in, k, k), PyTorch's layout, and "<prefix>.bias" (out).
//   reset_parameters(rng, zero): weight then bias ~ U(−1/√(in·k²), 1/√(in·k²)), row-major (PyTorch's
//   default bound for nn.Conv2d); with zero both are all zeros and nothing is drawn.
// forward(x, y, n, scratch, relu): y (out, n·HW) assigned from x (in, n·HW); with relu, y = max(y, 0)
//   after the bias (the following ReLU of a conv net, fused into the Cpu GEMM's output pass).
// backward(x, dy, dx, n, scratch, relu_mask), for ∂L/∂y = dy: weight and bias gradients +=
//   (accumulated in double per call for the bias; or into given dw, db: the overload that takes them), dx (in, n·HW) = ∂L/∂x assigned, skipped if dx is
//   null; with relu_mask (the output of a ReLU in front of this layer, (in, n·HW)), dx is the
//   gradient before that ReLU: dx ⊙ [relu_mask > 0]. It needs only x, not y: nothing is stored
//   between the passes.
// scratch_size(n) scalars of temporary space serve either pass and may be shared with others
//   (the Cpu backend's im2col buffers: 2·in·k²·chunk·HW for k = 3, 0 for k = 1; Reference: 0).
//   The Cpu backend processes the batch in chunks of whole samples, as many as keep its im2col
//   buffer (in·k²·chunk·HW scalars) within 8 MiB, at least one; set_max_chunk lowers that. An
//   ExecutorBackend (Cuda) does the same within 256 MiB, with in·k²·chunk·HW scalars of scratch.
// Cost per pass: 2·n·HW·out·in·k² flops in kernels::gemm; backward about twice that. No
//   allocation in forward or backward. Bad constructor arguments throw bijou::invalid_argument.
// The layer is movable but not copyable: its tensor handles are bound to a ParamSet by address.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <limits>
#include <string>

#include "bijou/core/backend.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/kernels/cpu/conv2d.hpp"
#include "bijou/kernels/cuda/conv2d.hpp"
#include "bijou/kernels/reference/conv2d.hpp"

namespace bijou {

template <Scalar T, Backend B>
class Conv2d {
public:
    /// Bytes the im2col buffer may take per chunk of samples: 8 MiB on the Cpu backend (L2/L3-sized
    /// blocks), 256 MiB on an ExecutorBackend (a GPU wants few, large products); kernels/*/conv2d.hpp.
    static constexpr std::size_t chunk_bytes = kernels::conv2d_chunk_bytes(B{});

    Conv2d() = default;

    Conv2d(int in, int out, int kernel, int H, int W) {
        auto check = [](int v, const char* what) {
            if (v < 1)
                throw invalid_argument(std::string("Conv2d: ") + what + " must be at least 1 (got " +
                                       std::to_string(v) + ")");
        };
        check(in, "the number of input channels");
        check(out, "the number of output channels");
        check(H, "the height");
        check(W, "the width");
        if (kernel != 1 && kernel != 3)
            throw invalid_argument("Conv2d: the kernel size must be 1 or 3 (got " + std::to_string(kernel) + ")");
        if (std::size_t(H) * std::size_t(W) > std::size_t(std::numeric_limits<int>::max()))
            throw invalid_argument("Conv2d: H·W = " + std::to_string(std::size_t(H) * W) + " is too large");
        d_ = {in, out, kernel, H, W};
    }

    Conv2d(const Conv2d&) = delete;
    Conv2d& operator=(const Conv2d&) = delete;
    Conv2d(Conv2d&&) noexcept = default;
    Conv2d& operator=(Conv2d&&) noexcept = default;

    int in() const { return d_.in; }
    int out() const { return d_.out; }
    int kernel() const { return d_.k; }
    int height() const { return d_.H; }
    int width() const { return d_.W; }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        ps.add(join_name(prefix, "weight"), {std::size_t(d_.out), std::size_t(d_.in), std::size_t(d_.k), std::size_t(d_.k)},
               &w_);
        ps.add(join_name(prefix, "bias"), {std::size_t(d_.out)}, &b_);
    }

    void reset_parameters(Rng& rng, bool zero) {
        const double bound = 1.0 / std::sqrt(double(d_.in) * d_.k * d_.k);
        auto draw = [&] { return zero ? T(0) : T((2.0 * rng.uniform() - 1.0) * bound); };
        for (std::size_t k = 0; k < w_.size; ++k) w_[k] = draw();
        for (std::size_t k = 0; k < b_.size; ++k) b_[k] = draw();
    }

    /// Limits the Cpu backend's chunks to at most `samples` samples (≤ 0: only the 8 MiB bound).
    /// Call it before sizing workspaces: scratch_size depends on it.
    void set_max_chunk(int samples) { max_chunk_ = samples; }

    /// Samples per im2col chunk at batch n (Cpu backend; 1 ≤ chunk ≤ n).
    int chunk(int n) const {
        const std::size_t per_sample = std::size_t(d_.in) * d_.k * d_.k * std::size_t(d_.hw()) * sizeof(T);
        std::size_t c = std::max<std::size_t>(1, chunk_bytes / std::max<std::size_t>(per_sample, 1));
        if (max_chunk_ > 0) c = std::min(c, std::size_t(max_chunk_));
        return int(std::max<std::size_t>(1, std::min(c, std::size_t(std::max(n, 1)))));
    }

    std::size_t scratch_size(int n) const {
        return kernels::conv2d_scratch_size(B{}, d_, chunk(n));
    }

    /// y (out, n·HW) = conv(x (in, n·HW)), then max(y, 0) if relu. `prepared`: what prepare(…,
    /// /*backward=*/false) wrote since the weights last changed, or null (the kernel then prepares
    /// what it needs itself).
    /// `panels`: x and/or y in the backend's panel layout (kernels::ConvPanels; only where
    /// kernels::net_panels allowed it: a conditioner's hidden planes, nn/convnet.hpp).
    void forward(const T* x, T* y, int n, T* scratch, bool relu = false, const T* prepared = nullptr,
                 kernels::ConvPanels panels = {}) const {
        kernels::conv2d_forward(B{}, x, y, w_.value, b_.value, n, d_, chunk(n), scratch, relu, prepared, panels);
    }

    /// Scalars of weights the backend's kernels rearrange per call unless given them prepared (the Cpu
    /// backend's narrow path: out·k²·in; for float, room for the weights packed for the forward
    /// product or their transpose for the data gradient's; 0 elsewhere). A caller that runs many
    /// chunks of a batch prepares them once per pass (prepare) and passes them to each chunk's
    /// forward and backward; for a k×k layer (k > 1) backward then adds the weight gradient to
    /// `dprepared` (prepared_grad_size scalars, zeroed by the caller), which fold_prepared_grad adds
    /// to dw after the last chunk.
    std::size_t prepared_size() const { return kernels::conv2d_prepared_size<T>(B{}, d_); }
    /// Scalars of backward's `dprepared` (the Cpu narrow path's out·k²·in; none where the prepared
    /// weights serve only the data gradient).
    std::size_t prepared_grad_size() const { return kernels::conv2d_prepared_grad_size<T>(B{}, d_); }
    /// Writes them for a forward pass, or (`backward`) for a backward pass: a pass reads only what
    /// was prepared for its own direction. `team`: called by every thread of a pass's team
    /// (kernels::for_net_chunks' before), each writing its share; by default the caller writes all.
    void prepare(T* prepared, bool backward, const kernels::NetTeam& team = {}) const {
        kernels::conv2d_prepare(B{}, w_.value, prepared, d_, backward, team);
    }
    void fold_prepared_grad(const T* dprepared, T* dw) const {
        kernels::conv2d_fold_prepared_grad(B{}, dprepared, dw, d_);
    }

    /// Weight and bias gradients +=; dx = ∂L/∂x (assigned) unless dx is null, times [relu_mask > 0]
    /// when relu_mask is given.
    void backward(const T* x, const T* dy, T* dx, int n, T* scratch, const T* relu_mask = nullptr) {
        backward(x, dy, dx, n, scratch, relu_mask, w_.grad, b_.grad);
    }

    /// The same with the weight and bias gradients added to dw (out·in·k²) and db (out) instead (a
    /// caller that runs several backward passes at once gives each its own); with `prepared` and
    /// `dprepared` (see prepared_size), the part of the weight gradient that takes the prepared path
    /// goes to dprepared instead.
    /// `panels`: x, relu_mask and dx (panels.x) and dy (panels.y) in the backend's panel layout, as
    /// forward's x and y (only where kernels::net_panels allowed it).
    void backward(const T* x, const T* dy, T* dx, int n, T* scratch, const T* relu_mask, T* dw, T* db,
                  const T* prepared = nullptr, T* dprepared = nullptr, kernels::ConvPanels panels = {}) {
        kernels::conv2d_backward(B{}, x, dy, dx, w_.value, dw, db, n, d_, chunk(n), scratch, relu_mask, prepared,
                                 dprepared, panels);
    }

    const kernels::ConvDims& dims() const { return d_; }
    const TensorRef<T>& weight() const { return w_; }
    const TensorRef<T>& bias() const { return b_; }

private:
    kernels::ConvDims d_{};
    int max_chunk_ = 0;
    TensorRef<T> w_, b_;
};

}  // namespace bijou
