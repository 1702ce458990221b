// bijou/kernels/cpu/conv2d.hpp — 2-D convolution and the channel-major layout for the Cpu backend.
//
// Same contracts as kernels/reference/conv2d.hpp. A k×k convolution is im2col + kernels::gemm:
// the batch is processed in blocks of `chunk` whole samples; for each block im2col writes the
// (in·k², chunk·HW) patch matrix `col` into scratch and
//   forward   y[:, block] = W·col                      (W viewed as out × in·k², + bias afterwards)
//   backward  dW += dY[:, block]·colᵀ,  dcol = Wᵀ·dY[:, block],  dx[:, block] = col2im(dcol)
// The block's columns of the channel-major x, y, dy are addressed in place through gemm's leading
// dimensions (ld = n·HW), so nothing is copied besides col. A 1×1 convolution is one GEMM over the
// whole batch and needs no scratch. Scratch (scalars): conv2d_scratch_size(d, chunk) =
// 2·in·k²·chunk·HW for k > 1 (col and dcol), 0 for k = 1; forward uses only the first half.
// col2im gathers per input channel, so it assigns dx without atomics and without a zeroed buffer.
// A k×k convolution with out < in (the conditioner's narrow last layer) takes the narrow path
// instead (detail::narrow_block): it expands the out·k² product rows rather than the in·k² input
// rows, inside the same scratch, which is ~10× less memory traffic at out = 4, in = 128.
// A caller that runs many chunks of one pass (nn/convnet.hpp) may prepare the flipped weights, and
// the weights the forward products or the transposes the data gradients read packed, once
// (conv2d_prepare into conv2d_prepared_size scalars) and pass them in, and have backward add the
// narrow product's weight gradient to a dWf buffer (conv2d_prepared_grad_size scalars, zeroed by
// the caller) that conv2d_fold_prepared_grad adds to dw once at the end, instead of both per call
// (4% of config d's training on 1 thread went to rearranging them per chunk).
// A conditioner (nn/convnet.hpp) may keep a chunk's hidden planes in the GEMM's 32-column panels
// instead of row-major (net_panels, below; conv2d_forward's and conv2d_backward's last argument).
// GEMMs split C across threads along its longer side (kernels/cpu/gemm.hpp); elementwise passes run over
// (channel, sample) blocks with parallel_for and SIMD inner loops. No allocation.
#pragma once

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <numeric>
#include <stdexcept>
#include <type_traits>

#if defined(_OPENMP)
#include <omp.h>
#endif

#include "bijou/core/backend.hpp"
#include "bijou/core/parallel.hpp"
#include "bijou/kernels/cpu/gemm.hpp"
#include "bijou/kernels/reference/conv2d.hpp"

namespace bijou::kernels {

/// Scratch scalars the Cpu convolution needs for blocks of `chunk` samples.
inline std::size_t conv2d_scratch_size(const ConvDims& d, int chunk) {
    if (d.k == 1) return 0;
    return 2 * std::size_t(d.in) * d.k * d.k * std::size_t(chunk) * d.hw();
}

/// Bytes the im2col buffer may take per chunk of samples: 8 MiB (L2/L3-sized blocks).
constexpr std::size_t conv2d_chunk_bytes(Cpu) { return std::size_t(8) << 20; }

inline std::size_t conv2d_scratch_size(Cpu, const ConvDims& d, int chunk) { return conv2d_scratch_size(d, chunk); }

// A conditioner's passes in chunks of samples (contract: kernels/reference/conv2d.hpp). A chunk's
// hidden activation takes about net_chunk_bytes, so that the chunk's two hidden planes, its im2col
// buffers and the weights stay in a core's L2 while its three layers run (config a, level 1: 2
// samples of 128 × 256 pixels); at most ⌈n / cores⌉ samples, so that every core gets a chunk. 256 KiB
// measured best of 64 KiB–1 MiB (the AVX-512 Xeon, 2 MiB L2; config a training on 1 / 2 threads,
// images/s, medians of 4 interleaved rounds, two runs: 256 KiB 263 / 493 against 512 KiB 246 / 449
// and 1 MiB 232 / 441; 256 KiB 253 / 478 against 128 KiB 248 / 471 and 64 KiB 247 / 460). The
// chunks are split in contiguous runs across up to net_slots threads, one slot per thread, each
// running its chunks' GEMMs on its own (one parallel region per pass instead of one per kernel,
// the pass's before and after work in the same region); a thread done with its chunks takes blocks
// of the others' products until they are done (kernels/cpu/pass_help.hpp: the same bits).
// Scratch holds a slot per core the process may use (omp_get_num_procs when first asked, at most
// 64; read once, so that the chunks, and with them the layout of the activations a forward pass
// stores for its backward, cannot change between calls), which serves any later thread count.
namespace detail {
inline constexpr std::size_t net_chunk_bytes = std::size_t(256) << 10;
inline constexpr int net_slot_limit = max_net_slots;
inline int net_cores() {
#if defined(_OPENMP)
    static const int cores = std::clamp(omp_get_num_procs(), 1, net_slot_limit);
    return cores;
#else
    return 1;
#endif
}
}  // namespace detail

inline int net_chunk(Cpu, std::size_t bytes_per_sample, int n, int max_chunk) {
    const int per_core = (std::max(n, 1) + detail::net_cores() - 1) / detail::net_cores();
    std::size_t m = std::max<std::size_t>(1, detail::net_chunk_bytes / std::max<std::size_t>(bytes_per_sample, 1));
    m = std::min<std::size_t>(m, std::size_t(per_core));
    if (max_chunk > 0) m = std::min<std::size_t>(m, std::size_t(max_chunk));
    return int(std::max<std::size_t>(m, 1));
}

/// Slots a pass over n samples in chunks of `chunk` uses at the current thread count: at most the
/// threads, the cores and the chunks.
inline int net_slots(Cpu, int n, int chunk) {
    return std::max(1, std::min({num_threads(), detail::net_cores(), (n + chunk - 1) / chunk}));
}

/// Slots scratch for batches of up to n samples provides: one per core, at most n (≥ net_slots at
/// any thread count and chunking, and never fewer for a larger n).
inline int net_max_slots(Cpu, int n) { return std::max(1, std::min(detail::net_cores(), n)); }

template <class F, class Before = NoTeamWork, class After = NoTeamWork>
void for_net_chunks(Cpu, int n, int chunk, F&& f, NetChunks order = NetChunks::fixed, Before&& before = {},
                    After&& after = {}) {
    constexpr bool team_after = !std::is_same_v<std::decay_t<After>, NoTeamWork>;
    const int chunks = (n + chunk - 1) / chunk;
    auto run = [&](int slot, int c0, int c1) {
        for (int c = c0; c < c1; ++c) f(slot, c * chunk, std::min(chunk, n - c * chunk));
    };
#if defined(_OPENMP)
    const int threads = net_slots(Cpu{}, n, chunk);
    if (threads > 1 && !omp_in_parallel()) {
        std::exception_ptr error[detail::net_slot_limit];
        std::atomic<int> next{0};  // NetChunks::balanced: the next chunk a thread takes
        std::atomic<bool> failed{false};
        detail::HelpBoard<detail::net_slot_limit> board;  // a thread done with its chunks helps the others
#pragma omp parallel num_threads(threads)
        {
            const NetTeam team{omp_get_thread_num(), omp_get_num_threads()};
            const int t = team.t, nt = team.nt;
            try {  // an exception must not leave the region (before and after do not throw)
                before(team);
                if (t == 0) board.working.store(nt, std::memory_order_relaxed);
                team.sync();  // (published to all by the barrier)
                detail::help_context = {&board.idle, board.slot, t};
                if (order == NetChunks::balanced) {
                    for (int c; (c = next.fetch_add(1, std::memory_order_relaxed)) < chunks;) run(t, c, c + 1);
                } else {
                    run(t, int(std::int64_t(chunks) * t / nt), int(std::int64_t(chunks) * (t + 1) / nt));
                }
            } catch (...) {
                error[t] = std::current_exception();
                failed.store(true);
                next.store(chunks, std::memory_order_relaxed);  // balanced: no thread takes another chunk
            }
            detail::help_context = {};
            board.working.fetch_sub(1, std::memory_order_release);
            detail::help_until_done(board, t, nt);
            if constexpr (team_after) {
                team.sync();  // every chunk done; each thread sees `failed` as the others left it
                if (!failed.load()) after(team);
            }
        }
        for (const std::exception_ptr& e : error)
            if (e) std::rethrow_exception(e);
        return;
    }
#endif
    before(NetTeam{});
    run(0, 0, chunks);
    after(NetTeam{});
}

namespace detail {

/// Below this many elements a parallel region costs more than it saves.
inline constexpr std::size_t conv_parallel_min = 32768;

/// Shifted planes as one flattened loop each (p = y·W + x over the whole H×W plane, the row shift and
/// the column shift together an offset, the columns a shift wraps masked), so that short rows (W = 16,
/// 8, 4 in Glow's levels) still make full SIMD vectors: row by row, every row of 15 or 7 elements
/// ran as scalar code. ok[kx·HW + p] = 1 iff 0 ≤ x + kx − pad < W (x = p mod W). Planes of up to
/// flat_max_hw pixels (the masks, 48 KiB, live on the stack); larger ones go row by row, whose rows
/// are long.
inline constexpr int flat_max_hw = 4096;

struct ColumnMasks {
    std::int32_t ok[3 * flat_max_hw];  // 32-bit, as wide as a float: byte masks made GCC step 64 floats at a time
    /// Masks for k ≤ 3 and H·W ≤ flat_max_hw; `usable` says whether those hold.
    explicit ColumnMasks(const ConvDims& d) : usable(d.k <= 3 && d.hw() <= flat_max_hw) {
        if (!usable) return;
        for (int kx = 0; kx < d.k; ++kx)
            for (int y = 0; y < d.H; ++y) {
                std::int32_t* row = ok + kx * d.hw() + y * d.W;
                for (int x = 0; x < d.W; ++x) row[x] = x + kx - d.pad() >= 0 && x + kx - d.pad() < d.W;
            }
    }
    bool usable;
};

/// col (in·k², m·HW) = the k×k patches of samples [i0, i0 + m) of x (in, n·HW), zero-padded.
/// Row r = (c·k + ky)·k + kx, column il·HW + y·W + x holds x(c, i0 + il, y + ky − pad, x + kx − pad).
template <class T>
void im2col(const T* x, T* col, int n, int i0, int m, const ConvDims& d) {
    const int k = d.k, pad = d.pad(), H = d.H, W = d.W, kk = k * k, HWi = d.hw();
    const std::size_t HW = std::size_t(d.hw()), ld = std::size_t(n) * HW, mhw = std::size_t(m) * HW;
    const ColumnMasks masks(d);
    const int tasks = d.in * kk * m;
    bijou::detail::parallel_for(tasks, std::size_t(tasks) * HW > conv_parallel_min, [&](int task) {
        const int il = task % m, r = task / m, c = r / kk, ky = (r % kk) / k, kx = r % k;
        const int oy = ky - pad, ox = kx - pad;
        const T* src = x + std::size_t(c) * ld + std::size_t(i0 + il) * HW;
        T* dst = col + std::size_t(r) * mhw + std::size_t(il) * HW;
        if (masks.usable) {
            // dst[p] = src[p + off] where the source row and column exist, else 0
            const int off = oy * W + ox;
            const int lo = std::max(std::max(0, -oy) * W, -off), hi = std::min(std::min(H, H - oy) * W, HWi - off);
            const std::int32_t* ok = masks.ok + kx * HWi;
            for (int p = 0; p < lo; ++p) dst[p] = T(0);
#pragma omp simd
            for (int p = lo; p < hi; ++p) {
                const T v = src[p + off];
                dst[p] = ok[p] ? v : T(0);
            }
            for (int p = std::max(hi, lo); p < HWi; ++p) dst[p] = T(0);
            return;
        }
        const int x_lo = std::max(0, -ox), x_hi = std::min(W, W - ox);
        for (int yy = 0; yy < H; ++yy) {
            T* row = dst + std::size_t(yy) * W;
            const int sy = yy + oy;
            if (sy < 0 || sy >= H) {
                std::fill(row, row + W, T(0));
                continue;
            }
            const T* s = src + std::size_t(sy) * W + ox;
            for (int xx = 0; xx < x_lo; ++xx) row[xx] = T(0);
#pragma omp simd
            for (int xx = x_lo; xx < x_hi; ++xx) row[xx] = s[xx];
            for (int xx = std::max(x_hi, x_lo); xx < W; ++xx) row[xx] = T(0);
        }
    });
}

/// dx(c, i0 + il, ·) = Σ_(ky,kx) of dcol's rows of channel c moved back to where im2col took them
/// (the adjoint of im2col), assigned, for samples [i0, i0 + m).
template <class T>
void col2im(const T* dcol, T* dx, int n, int i0, int m, const ConvDims& d) {
    const int k = d.k, pad = d.pad(), H = d.H, W = d.W, kk = k * k, HWi = d.hw();
    const std::size_t HW = std::size_t(d.hw()), ld = std::size_t(n) * HW, mhw = std::size_t(m) * HW;
    const ColumnMasks masks(d);
    const int tasks = d.in * m;
    bijou::detail::parallel_for(tasks, std::size_t(tasks) * HW * kk > conv_parallel_min, [&](int task) {
        const int il = task % m, c = task / m;
        T* dst = dx + std::size_t(c) * ld + std::size_t(i0 + il) * HW;
        std::fill(dst, dst + HW, T(0));
        for (int ky = 0; ky < k; ++ky)
            for (int kx = 0; kx < k; ++kx) {
                const int oy = ky - pad, ox = kx - pad;
                const T* src = dcol + std::size_t((c * k + ky) * k + kx) * mhw + std::size_t(il) * HW;
                if (masks.usable) {
                    // dst[p] += src[p − off] where the source pixel exists: dst column x − ox, i.e.
                    // im2col's mask of the mirrored shift
                    const int off = oy * W + ox;
                    const int lo = std::max(std::max(0, oy) * W, off), hi = std::min(std::min(H, H + oy) * W, HWi + off);
                    const std::int32_t* ok = masks.ok + (k - 1 - kx) * HWi;
#pragma omp simd
                    for (int p = lo; p < hi; ++p) {
                        const T v = src[p - off];
                        dst[p] += ok[p] ? v : T(0);
                    }
                    continue;
                }
                const int x_lo = std::max(0, -ox), x_hi = std::min(W, W - ox);
                for (int yy = std::max(0, -oy); yy < std::min(H, H - oy); ++yy) {
                    T* drow = dst + std::size_t(yy + oy) * W + ox;
                    const T* srow = src + std::size_t(yy) * W;
#pragma omp simd
                    for (int xx = x_lo; xx < x_hi; ++xx) drow[xx] += srow[xx];
                }
            }
    });
}

/// y(o, ·) += b(o) over rows of length len (rows·len ≥ 0), split over (row, sample) blocks.
template <class T>
void add_row_bias(T* y, const T* b, int rows, int n, std::size_t HW) {
    const std::size_t ld = std::size_t(n) * HW;
    bijou::detail::parallel_for(rows * n, std::size_t(rows) * ld > conv_parallel_min, [&](int task) {
        const int o = task / n, i = task % n;
        T* r = y + std::size_t(o) * ld + std::size_t(i) * HW;
        const T v = b[o];
#pragma omp simd
        for (std::size_t j = 0; j < HW; ++j) r[j] += v;
    });
}


/// Narrow-output path for a k×k convolution with out < in (a conditioner's last layer): instead of
/// im2col'ing the input (in·k² rows), multiply the un-expanded input by the k² stacked, flipped
/// weight slices and shift the k²·out product rows back (col2im), so the big buffer has out·k²
/// rows, not in·k². With Wf (out·k² × in), Wf[(o, q), c] = w[o, c, k²−1−q]:
///   forward   Z = Wf·x[:, block],  y[:, block] = col2im(Z)
///   backward  D = im2col(dy[:, block]),  dWf += D·x[:, block]ᵀ,  dx[:, block] = Wfᵀ·D
/// (the flip turns col2im's and im2col's offsets into the correlation's). It runs inside the
/// im2col path's scratch (2·in·k²·chunk·HW): Wf and dWf (out·in·k² each), then Z/D for blocks of
/// samples kept to about 1 MiB. narrow_block returns the block size, 0 when the path is not used.
/// Whether a layer takes the narrow path (when its scratch allows: narrow_block).
inline bool narrow_layer(const ConvDims& d) { return d.k > 1 && d.out < d.in; }
/// Scalars of its Wf, and of its dWf: out·k²·in for a narrow layer, 0 for others.
inline std::size_t narrow_weights_size(const ConvDims& d) {
    return narrow_layer(d) ? std::size_t(d.out) * d.k * d.k * d.in : 0;
}

/// `align`: a block smaller than n is a multiple of align samples (0 where none fits).
template <class T>
int narrow_block(const ConvDims& d, int n, int chunk, int align = 1) {
    if (!narrow_layer(d)) return 0;
    const std::size_t kk = std::size_t(d.k) * d.k, HW = std::size_t(d.hw());
    const std::size_t avail = 2 * std::size_t(d.in) * kk * std::size_t(chunk) * HW;
    const std::size_t fixed = 2 * std::size_t(d.out) * d.in * kk, per = kk * d.out * HW;
    if (avail < fixed + per) return 0;
    const std::size_t fits = (avail - fixed) / per;
    std::size_t m = std::min(fits, std::max<std::size_t>(1, (std::size_t(1) << 20) / (per * sizeof(T))));
    m = std::max<std::size_t>(1, std::min<std::size_t>(m, std::size_t(n)));
    if (m < std::size_t(n) && m % align != 0) {  // up to the next multiple where scratch holds it, else down
        const std::size_t up = std::min<std::size_t>(std::size_t(n), m + align - m % align);
        m = up <= fits ? up : m - m % align;
    }
    return int(m);
}

/// Output channel o's rows of Wf. Each row is written in order (written column by column instead,
/// each store d.in scalars past the previous one, it took 74k TSC cycles per call at config d's
/// level 1 from cold caches; 61k row by row).
template <class T>
void narrow_weights_of(const T* w, T* wf, const ConvDims& d, int o) {
    const int kk = d.k * d.k;
    const T* src = w + std::size_t(o) * d.in * kk;  // in·k² weights, read from L1 after the first row
    T* dst = wf + std::size_t(o) * kk * d.in;       // rows (o, q) of Wf, each written in order
    for (int q = 0; q < kk; ++q) {
        T* row = dst + std::size_t(q) * d.in;
        const T* tap = src + (kk - 1 - q);
        for (int c = 0; c < d.in; ++c) row[c] = tap[std::size_t(c) * kk];
    }
}
/// Across the threads when large (an output channel per task).
template <class T>
void narrow_weights(const T* w, T* wf, const ConvDims& d) {
    bijou::detail::parallel_for(d.out, std::size_t(d.out) * d.k * d.k * d.in > conv_parallel_min,
                                [&](int o) { narrow_weights_of(w, wf, d, o); });
}

/// The prepared Wf, or Wf rearranged into scratch now when none was prepared.
template <class T>
const T* narrow_weights_or(const T* prepared, const T* w, T* scratch, const ConvDims& d) {
    if (prepared != nullptr) return prepared;
    narrow_weights(w, scratch, d);
    return scratch;
}

/// dw += dWf moved back to w's layout (the adjoint of narrow_weights): dw written in order (it comes
/// from L3; dWf, just accumulated, from L2), one add per element.
template <class T>
void narrow_fold_grad(const T* dwf, T* dw, const ConvDims& d) {
    const int kk = d.k * d.k;
    for (int o = 0; o < d.out; ++o)
        for (int c = 0; c < d.in; ++c) {
            T* dst = dw + (std::size_t(o) * d.in + c) * kk;
            const T* src = dwf + std::size_t(o) * kk * d.in + c;
            for (int q = 0; q < kk; ++q) dst[kk - 1 - q] += src[std::size_t(q) * d.in];
        }
}

}  // namespace detail

namespace detail {
/// The weights A of a layer's products, A = W (out × in) for a 1×1 layer, W (out × in·k²) for an
/// im2col layer, Wf (out·k² × in) for a narrow one: forward Y = A·X (M = A's rows, K = its columns),
/// data gradient dX = Aᵀ·dY (M = A's columns, K = its rows).
struct ProductShape {
    int M, K;
};
inline ProductShape forward_shape(const ConvDims& d) {
    if (d.k > 1 && !narrow_layer(d)) return {d.out, d.in * d.k * d.k};
    return {d.out * d.k * d.k, d.in};
}
inline ProductShape data_grad_shape(const ConvDims& d) {
    const ProductShape f = forward_shape(d);
    return {f.K, f.M};
}
}  // namespace detail

/// Scalars of the weights a pass may prepare once for a layer: the narrow path's Wf (out·k² × in);
/// then, for float with the packed kernels, the op(A) of the pass's products packed. A forward pass
/// packs A (the 1×1 layer's W, read in place row by row, ran its forward product at 59–66 flop per
/// cycle in config d's training and 63–66 in c's, 64–70 packed once: per-shape rdtsc counts; the
/// first layer's W, of depth 54, was packed per call). A backward pass packs the data gradient's
/// transpose: Wfᵀ for Wfᵀ·dD, a 1×1 layer's Wᵀ for Wᵀ·dY (config c, 512 channels: 2% of training
/// went to packing it per chunk), an im2col layer's Wᵀ (in·k² × out) for dcol = Wᵀ·dY (the
/// conditioner's first layer: packed per chunk, it was 45% of the packing of op(A) in config d's
/// training). See detail::sgemm_a_packed_size for why packed.
template <class T>
std::size_t conv2d_prepared_size(Cpu, const ConvDims& d) {
    std::size_t packed = 0;  // op(A) = A or Aᵀ, packed: room for either pass
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        const detail::ProductShape f = detail::forward_shape(d), g = detail::data_grad_shape(d);
        packed = std::max(detail::sgemm_a_packed_size(f.M, f.K), detail::sgemm_a_packed_size(g.M, g.K));
    }
#endif
    return detail::narrow_weights_size(d) + packed;
}

/// Scalars of the weight gradient a backward pass given prepared weights accumulates for
/// conv2d_fold_prepared_grad: the narrow path's dWf (out·k² × in); 0 for other layers.
template <class T>
std::size_t conv2d_prepared_grad_size(Cpu, const ConvDims& d) {
    return detail::narrow_weights_size(d);
}

/// The layer's prepared weights (conv2d_prepared_size): the narrow path's flipped, stacked Wf, then
/// for a forward pass A (W or Wf) packed, for a backward pass (`backward`) Aᵀ packed. `team`: the
/// threads of a pass (for_net_chunks' before) that all call this, each doing its share (Wf's output
/// channels, then, after waiting for the others, the packed blocks); by default one thread does all.
template <class T>
void conv2d_prepare(Cpu, const T* w, T* wf, const ConvDims& d, bool backward, const NetTeam& team = {}) {
    const std::size_t flipped = detail::narrow_weights_size(d);
    if (flipped > 0) {
        const NetTeam::Range r = team.share(d.out);
        for (int o = r.first; o < r.last; ++o) detail::narrow_weights_of(w, wf, d, o);
    }
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        if (conv2d_prepared_size<T>(Cpu{}, d) > flipped) {
            if (flipped > 0) team.sync();  // every row of Wf written: the packing reads all of it
            const T* a = flipped > 0 ? wf : w;  // A, row-major, f.K scalars per row
            const detail::ProductShape f = detail::forward_shape(d);
            const int M = backward ? f.K : f.M, K = backward ? f.M : f.K;  // op(A) = Aᵀ for a backward pass
            const NetTeam::Range r = team.share(detail::sg_pack_a_blocks(M, K));
            detail::sgemm_pack_a_blocks(backward, M, K, a, f.K, wf + flipped, r.first, r.last);
        }
    }
#endif
}

namespace detail {
/// Where conv2d_prepare put the layer's packed op(A) (A for a forward pass, Aᵀ for a backward one:
/// behind Wf for a narrow layer) in `prepared`; null where there is none to read.
template <class T>
const T* prepared_packed(const T* prepared, const ConvDims& d) {
    const std::size_t flipped = narrow_weights_size(d);
    return prepared && conv2d_prepared_size<T>(Cpu{}, d) > flipped ? prepared + flipped : nullptr;
}
}  // namespace detail

/// dw += the weight gradient a backward pass accumulated in dwf (the narrow path's; nothing otherwise).
template <class T>
void conv2d_fold_prepared_grad(Cpu, const T* dwf, T* dw, const ConvDims& d) {
    if (detail::narrow_layer(d)) detail::narrow_fold_grad(dwf, dw, d);
}

namespace detail {
inline constexpr std::size_t conv_block = 8192;
}

template <class T>
void conv_relu(Cpu, T* y, std::size_t size) {
    const std::size_t blocks = (size + detail::conv_block - 1) / detail::conv_block;
    bijou::detail::parallel_for(std::int64_t(blocks), size > detail::conv_parallel_min, [&](std::int64_t t) {
        const std::size_t j0 = std::size_t(t) * detail::conv_block, j1 = std::min(size, j0 + detail::conv_block);
#pragma omp simd
        for (std::size_t j = j0; j < j1; ++j) y[j] = y[j] < T(0) ? T(0) : y[j];  // NaN passes through
    });
}

template <class T>
void conv_relu_backward(Cpu, T* g, const T* a, std::size_t size) {
    const std::size_t blocks = (size + detail::conv_block - 1) / detail::conv_block;
    bijou::detail::parallel_for(std::int64_t(blocks), size > detail::conv_parallel_min, [&](std::int64_t t) {
        const std::size_t j0 = std::size_t(t) * detail::conv_block, j1 = std::min(size, j0 + detail::conv_block);
#pragma omp simd
        for (std::size_t j = j0; j < j1; ++j) g[j] = a[j] > T(0) ? g[j] : T(0);
    });
}

namespace detail {
/// db(o) += the sum of row o of dy (rows of ld), accumulated in double in 32 running partial sums
/// added pairwise at the end (not Reference's order bit for bit): one `omp simd` reduction chained its
/// adds through one vector and ended each row in a serial chain (1.1% of config d's training on 2
/// threads, whose rows are 256 long). `panels`: dy in 32-column panels that far apart: the
/// partial sums take the same elements in the same order.
template <class T>
void add_row_sums(const T* dy, T* db, int rows, std::size_t ld, std::size_t panels = 0) {
    bijou::detail::parallel_for(rows, std::size_t(rows) * ld > conv_parallel_min, [&](int o) {
        constexpr int lanes = 32;
        static_assert(lanes == panel_width);
        const T* r = dy + std::size_t(o) * (panels != 0 ? lanes : ld);
        double acc[lanes] = {};
        std::size_t j = 0;
        for (; j + lanes <= ld; j += lanes) {
            const T* q = r + panel_column(int(j), panels);
#pragma omp simd
            for (int l = 0; l < lanes; ++l) acc[l] += double(q[l]);
        }
        auto fold = [&acc]<int w>() {  // acc[0, w) += acc[w, 2w), a constant width
#pragma omp simd
            for (int l = 0; l < w; ++l) acc[l] += acc[l + w];
        };
        fold.template operator()<16>();
        fold.template operator()<8>();
        fold.template operator()<4>();
        fold.template operator()<2>();
        fold.template operator()<1>();
        double sum = acc[0];
        for (; j < ld; ++j) sum += double(r[panel_column(int(j), panels)]);
        db[o] += T(sum);
    });
}
}  // namespace detail

// The conditioner's hidden planes in panels (contract: ConvPanels in kernels/reference/conv2d.hpp).
// The first layer stores its output in 32-column panels, the layout sgemm's micro-kernel reads op(B)
// in: the 1×1 layer reads them in place and stores its own output the same way, and the narrow last
// layer reads those in place. That spares both later layers the packing of op(B) (4.7% of config a's
// 1-thread log_prob, 4% of config d's 2-thread sampling). Backward transposes the planes for the
// weight gradients from contiguous 32 × 32 blocks and reads them as ReLU masks in panels, and keeps
// their gradients in panels too (dx like x, dy like y): the data gradients read dy in place, the
// weight gradients read its rows in place (SgA::panel_rows). The same products, bit for bit.

/// Samples a column offset must be a multiple of for a plane of HW pixels to start a panel.
inline int panel_samples(int HW) { return detail::panel_width / std::gcd(HW, detail::panel_width); }

namespace detail {
/// Where a block of samples from i0 on starts in a plane of HW pixels per sample: its first column,
/// at a panel's start where the plane is in panels `panels` apart (0: row-major).
inline std::size_t sample_column(int i0, std::size_t HW, std::size_t panels) {
    return panel_column(int(std::size_t(i0) * HW), panels);
}
}  // namespace detail

/// The panel stride of a conditioner chunk's hidden planes (32·hidden scalars) where its layers can
/// keep them in panels: float with the packed kernels, m·HW a whole number of panels, a first layer
/// on the im2col path whose chunks (chunk0) start at panels, a narrow last layer whose blocks
/// (after conv2d's chunk4) do too. 0 elsewhere (the row-major layout).
template <class T>
std::size_t net_panels(Cpu, const ConvDims& d0, int chunk0, const ConvDims& d4, int chunk4, int m) {
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        const int HW = d0.hw(), align = panel_samples(HW);
        if (!detail::sgemm_simd_available() || std::size_t(m) * HW % detail::panel_width != 0) return 0;
        if (d0.k == 1 || detail::narrow_layer(d0) || d0.out <= 4 || (chunk0 < m && chunk0 % align != 0)) return 0;
        if (detail::narrow_block<T>(d4, m, chunk4, align) == 0) return 0;
        return std::size_t(detail::panel_width) * d0.out;
    }
#endif
    (void)d0, (void)chunk0, (void)d4, (void)chunk4, (void)m;
    return 0;
}

namespace detail {
/// C (+)= op(A)·op(B), then ep, through the Cpu GEMM: gemm_panels where op(A) (a_panels), op(B)
/// (b_panels), C (c_panels) or ep's mask is in panels (float with the packed kernels, which
/// net_panels requires), else gemm_ep (the same bits where both apply).
template <class T>
void conv_gemm(bool ta, bool tb, int M, int N, int K, const T* A, int lda, const T* B, int ldb, std::size_t b_panels,
               T beta, T* C, int ldc, std::size_t c_panels, const GemmEpilogue<T>& ep = {}, std::size_t a_panels = 0) {
    if (a_panels == 0 && b_panels == 0 && c_panels == 0 && ep.mask_panels == 0) {
        gemm_ep(Cpu{}, ta, tb, M, N, K, T(1), A, lda, B, ldb, beta, C, ldc, ep);
        return;
    }
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        gemm_panels(Cpu{}, ta, tb, M, N, K, A, lda, B, ldb, b_panels, beta, C, ldc, c_panels, ep, a_panels);
        return;
    }
#endif
    throw std::logic_error("conv2d: planes in panels need float and the packed kernels (net_panels)");
}

/// A forward product Y (M × N, ldy; in panels y_panels apart where not 0) = A·X then ep, A (M × K)
/// the layer's weights (or the narrow path's Wf) and X (K × N, ldx; x_panels): from `packed` (A
/// packed by conv2d_prepare for a forward pass) where given, unless the product would run on several
/// threads with less than a panel of columns each (the packed product splits C by columns only; A
/// read in place splits it by rows: a batch of one sample at Glow's 4×4 level). The same bits either way.
template <class T>
void conv_forward_product(const T* packed, const T* a, int M, int N, int K, const T* x, int ldx, std::size_t x_panels,
                          T* y, int ldy, std::size_t y_panels, const GemmEpilogue<T>& ep = {}) {
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        bool by_rows = num_threads() > 1 && N < panel_width * num_threads();  // where A in place splits C by rows
#if defined(_OPENMP)
        by_rows = by_rows && !omp_in_parallel();  // inside a region each product runs on one thread
#endif
        if (packed != nullptr && !by_rows) {
            gemm_ep_a_packed(Cpu{}, packed, false, M, N, K, 1.0f, x, ldx, 0.0f, y, ldy, ep, {x_panels, y_panels});
            return;
        }
    }
#endif
    conv_gemm(false, false, M, N, K, a, K, x, ldx, x_panels, T(0), y, ldy, y_panels, ep);
}

/// A data gradient dx (M × N, ldc; in panels dx_panels apart where not 0) = Wᵀ·dY then ep, W (K × M)
/// the layer's weights (or the narrow path's Wf) and dY (K × N, row stride ldy; dy_panels): from
/// `packed` (Wᵀ packed by conv2d_prepare) where given.
template <class T>
void conv_data_grad(const T* packed, const T* w, int M, int N, int K, const T* dy, int ldy, std::size_t dy_panels,
                    T* dx, int ldc, std::size_t dx_panels, const GemmEpilogue<T>& ep = {}) {
#if defined(BIJOU_SGEMM_SIMD)
    if constexpr (std::is_same_v<T, float>) {
        if (packed != nullptr) {
            gemm_ep_a_packed(Cpu{}, packed, false, M, N, K, 1.0f, dy, ldy, 0.0f, dx, ldc, ep, {dy_panels, dx_panels});
            return;
        }
    }
#endif
    conv_gemm(true, false, M, N, K, w, M, dy, ldy, dy_panels, T(0), dx, ldc, dx_panels, ep);
}
}  // namespace detail

/// `p`: x and/or y in panels (their panel strides; kernels/reference/conv2d.hpp's ConvPanels), for
/// the layers of a chunk net_panels accepted: a 1×1 layer (either), the first layer (y), the narrow
/// last layer (x). `prepared`: conv2d_prepare's weights for a forward pass, or null.
template <class T>
void conv2d_forward(Cpu, const T* x, T* y, const T* w, const T* b, int n, const ConvDims& d, int chunk, T* scratch,
                    bool relu = false, const T* prepared = nullptr, ConvPanels p = {}) {
    const std::size_t HW = std::size_t(d.hw());
    const int ld = int(std::size_t(n) * HW), ldp = detail::panel_width;
    const int ldx = p.x ? ldp : ld, ldy = p.y ? ldp : ld, align = p.any() ? panel_samples(d.hw()) : 1;
    const detail::GemmEpilogue<T> bias_relu{.bias = b, .relu = relu};  // fused into the GEMM's last pass over each tile
    const T* packed = detail::prepared_packed(prepared, d);  // A packed, if prepared
    if (d.k == 1) {
        detail::conv_forward_product(packed, w, d.out, ld, d.in, x, ldx, p.x, y, ldy, p.y, bias_relu);
    } else if (const int mb = detail::narrow_block<T>(d, n, chunk, align); mb > 0 && p.y == 0) {
        const int kk = d.k * d.k, rows = d.out * kk;
        const ConvDims dout{d.out, d.out, d.k, d.H, d.W};
        T* z = scratch + 2 * std::size_t(rows) * d.in;
        const T* wf = detail::narrow_weights_or(prepared, w, scratch, d);
        for (int i0 = 0; i0 < n; i0 += mb) {
            const int m = std::min(mb, n - i0), cols = int(std::size_t(m) * HW);
            const T* xb = x + detail::sample_column(i0, HW, p.x);
            detail::conv_forward_product(packed, wf, rows, cols, d.in, xb, ldx, p.x, z, cols, 0);
            detail::col2im(z, y, n, i0, m, dout);
        }
        detail::add_row_bias(y, b, d.out, n, HW);
        if (relu) conv_relu(Cpu{}, y, std::size_t(d.out) * n * HW);
    } else {
        if (p.x != 0 || (p.y != 0 && chunk < n && chunk % align != 0))
            throw std::logic_error("conv2d_forward: a layer or layout net_panels does not accept");
        const int K = d.in * d.k * d.k;
        T* col = scratch;
        const T* wp = detail::narrow_layer(d) ? nullptr : packed;  // a narrow layer's packs Wf, not W
        for (int i0 = 0; i0 < n; i0 += chunk) {
            const int m = std::min(chunk, n - i0), cols = int(std::size_t(m) * HW);
            detail::im2col(x, col, n, i0, m, d);
            T* yb = y + detail::sample_column(i0, HW, p.y);
            detail::conv_forward_product(wp, w, d.out, cols, K, col, cols, 0, yb, ldy, p.y, bias_relu);
        }
    }
}

/// `p`: x, and with it relu_mask and dx (the same shape), in panels p.x apart, dy in panels p.y apart
/// (as conv2d_forward's x and y; the layers of a chunk net_panels accepted: the 1×1 layer either, the
/// first layer dy, the narrow last layer x and dx). The weight gradients then transpose x from its
/// contiguous 32 × 32 blocks (sg_pack_b_panels) and read dy's rows in place from its panels
/// (SgA::panel_rows); the data gradients read dy in place and store dx in panels.
template <class T>
void conv2d_backward(Cpu, const T* x, const T* dy, T* dx, const T* w, T* dw, T* db, int n, const ConvDims& d,
                     int chunk, T* scratch, const T* relu_mask = nullptr, const T* prepared = nullptr,
                     T* dprepared = nullptr, ConvPanels p = {}) {
    const std::size_t HW = std::size_t(d.hw());
    const std::size_t ld = std::size_t(n) * HW;
    const int ldi = int(ld), ldp = detail::panel_width;
    const int ldx = p.x ? ldp : ldi, ldy = p.y ? ldp : ldi;
    detail::add_row_sums(dy, db, d.out, ld, p.y);
    // dx ⊙= [relu_mask > 0], fused
    const detail::GemmEpilogue<T> mask{.mask = relu_mask, .ldm = ldx, .mask_panels = p.x};
    if (d.k == 1) {
        // The data gradient first: its ReLU mask reads x (the micro-kernel prefetches each tile's),
        // which the weight gradient's transposes then find in L2 rather than memory (config d's
        // training: the weight gradients' GEMM cycles −5%, one run's per-shape rdtsc counts).
        if (dx != nullptr) {
            const T* wt = detail::prepared_packed(prepared, d);
            detail::conv_data_grad(wt, w, d.in, ldi, d.out, dy, ldy, p.y, dx, ldx, p.x, mask);
        }
        detail::conv_gemm(false, true, d.out, d.in, ldi, dy, ldy, x, ldx, p.x, T(1), dw, d.in, 0, {}, p.y);
        return;
    }
    const int align = p.any() ? panel_samples(d.hw()) : 1;
    if (const int mb = detail::narrow_block<T>(d, n, chunk, align); mb > 0) {
        if (p.y != 0)
            throw std::logic_error("conv2d_backward: a narrow layer's dy in panels (net_panels keeps it row-major)");
        const int kk = d.k * d.k, rows = d.out * kk;
        const ConvDims dout{d.out, d.out, d.k, d.H, d.W};
        T* dd = scratch + 2 * std::size_t(rows) * d.in;
        const T* wf = detail::narrow_weights_or(prepared, w, scratch, d);
        const T* wft = detail::prepared_packed(prepared, d);
        // the caller's dWf (zeroed by it, folded by it) or this call's own, folded below
        T* dwf = dprepared != nullptr ? dprepared : scratch + std::size_t(rows) * d.in;
        for (int i0 = 0; i0 < n; i0 += mb) {
            const int m = std::min(mb, n - i0), cols = int(std::size_t(m) * HW), j0 = int(std::size_t(i0) * HW);
            const std::size_t xj = detail::sample_column(i0, HW, p.x);  // the block's first column of x and dx
            detail::im2col(dy, dd, n, i0, m, dout);
            if (dx != nullptr)  // first, as the 1×1 layer's
                detail::conv_data_grad(wft, wf, d.in, cols, rows, dd, cols, 0, dx + xj, ldx, p.x, mask.at(0, j0));
            detail::conv_gemm(false, true, rows, d.in, cols, dd, cols, x + xj, ldx, p.x,
                              i0 == 0 && dprepared == nullptr ? T(0) : T(1), dwf, d.in, 0);
        }
        if (dprepared == nullptr) detail::narrow_fold_grad(dwf, dw, d);
        return;
    }
    if (p.x != 0) throw std::logic_error("conv2d_backward: a layer net_panels does not accept");
    const int K = d.in * d.k * d.k;
    T* col = scratch;
    T* dcol = scratch + std::size_t(K) * chunk * HW;
    // Wᵀ packed where prepared (not a narrow layer's Wfᵀ: one whose scratch held no narrow block is here)
    const T* wt = detail::narrow_layer(d) ? nullptr : detail::prepared_packed(prepared, d);
    for (int i0 = 0; i0 < n; i0 += chunk) {
        const int m = std::min(chunk, n - i0), cols = int(std::size_t(m) * HW);
        const T* dyb = dy + detail::sample_column(i0, HW, p.y);
        detail::im2col(x, col, n, i0, m, d);
        detail::conv_gemm(false, true, d.out, K, cols, dyb, ldy, col, cols, 0, T(1), dw, K, 0, {}, p.y);
        if (dx != nullptr) {
            detail::conv_data_grad(wt, w, K, cols, d.out, dyb, ldy, p.y, dcol, cols, 0);
            detail::col2im(dcol, dx, n, i0, m, d);
        }
    }
    if (dx != nullptr && relu_mask != nullptr) conv_relu_backward(Cpu{}, dx, relu_mask, std::size_t(d.in) * ld);
}

namespace detail {
/// f(channel-major row pointer, NCHW row pointer) for each (channel c < cn, sample i) block of HW.
template <class T, class U, class F>
void for_channel_blocks(T* cm, U* x, int n, int C, int HW, int c0, int cn, F&& f) {
    bijou::detail::parallel_for(cn * n, std::size_t(cn) * n * HW > conv_parallel_min, [&](int task) {
        const int c = task / n, i = task % n;
        f(cm + (std::size_t(c) * n + i) * HW, x + (std::size_t(i) * C + c0 + c) * HW);
    });
}
}  // namespace detail

template <class T>
void nchw_to_channel_major(Cpu, const T* x, T* cm, int n, int C, int HW, int c0, int cn) {
    detail::for_channel_blocks(cm, x, n, C, HW, c0, cn, [HW](T* d, const T* s) {
#pragma omp simd
        for (int p = 0; p < HW; ++p) d[p] = s[p];
    });
}

template <class T>
void channel_major_to_nchw(Cpu, const T* cm, T* x, int n, int C, int HW, int c0, int cn) {
    detail::for_channel_blocks(cm, x, n, C, HW, c0, cn, [HW](const T* s, T* d) {
#pragma omp simd
        for (int p = 0; p < HW; ++p) d[p] = s[p];
    });
}

template <class T>
void channel_major_add_to_nchw(Cpu, const T* cm, T* x, int n, int C, int HW, int c0, int cn) {
    detail::for_channel_blocks(cm, x, n, C, HW, c0, cn, [HW](const T* s, T* d) {
#pragma omp simd
        for (int p = 0; p < HW; ++p) d[p] += s[p];
    });
}

}  // namespace bijou::kernels
