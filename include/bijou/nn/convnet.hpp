// bijou/nn/convnet.hpp — Glow's coupling conditioner NN() with a hand-written backward.
//
// ConvNet<T, Backend>(in, hidden, out, H, W):
//   3×3 conv (in → hidden) → ReLU → 1×1 conv (hidden → hidden) → ReLU → 3×3 conv (hidden → out)
//   (Kingma & Dhariwal 2018, §3.3 and openai/glow's f(); without Glow's ActNorm inside the net and
//   its output log-scale factor). Convolutions are nn/conv2d.hpp's: stride 1, "same" zero padding.
//   Activations are channel-major (C, n·H·W), see nn/conv2d.hpp: x (in, n·HW) → y (out, n·HW).
//   State_dict names as nn.Sequential numbers its modules: "<prefix>.0.weight" (hidden, in, 3, 3),
//   "<prefix>.0.bias", "<prefix>.2.weight" (hidden, hidden, 1, 1), "<prefix>.2.bias",
//   "<prefix>.4.weight" (out, hidden, 3, 3), "<prefix>.4.bias" (odd indices are the ReLUs).
//   reset_parameters(rng, zero_last): PyTorch's nn.Conv2d default per layer (U(±1/√(in_l·k²)),
//   drawn in declaration order); with zero_last the output conv is all zeros and draws nothing, so
//   a coupling starts at its identity (Glow's zero-initialised last layer).
// Chunks: both passes run the three layers chunk by chunk, m = chunk(n) samples at a time (the
//   backend's kernels::net_chunk: on Cpu about 256 KiB of hidden activation per chunk, so that a
//   chunk's planes stay in L2, with the chunks split across the threads, each in a scratch slot of its
//   own and adding its own parameter gradients, summed in slot order after the pass; elsewhere the
//   whole batch). The weights' preparation, the slots' zeroing and their sum run on the pass's
//   threads around its chunks (kernels::for_net_chunks' before and after). Results are the same
//   on every run at a given thread count.
// Workspace (scalars): stored_size(n) = 2·hidden·n·HW holds the two post-ReLU activations that
//   forward leaves for backward (chunk by chunk: a chunk's two planes together, row-major or, where
//   kernels::net_panels allows it, in the backend's GEMM panel layout, which both passes read in
//   place: the same values bit for bit); scratch_size(n) is
//   temporary space for either pass and may be shared, enough for any batch up to n at any thread
//   count: the three layers' weights prepared once per pass (Conv2d::prepared_size: on Cpu the narrow
//   path's rearranged copy, and each layer's W packed for the forward products or its Wᵀ for the
//   data gradients' GEMMs, which would pack or read them in place per chunk) and, per
//   slot (on Cpu one per core, at most n), the backward's two hidden·m·HW gradient buffers, the
//   convs' im2col buffers, the slot's
//   prepared-path weight gradient and, when the batch has several chunks, copies of the chunk's
//   columns of x, y or dy, and dx, and a copy of the parameter gradients.
// backward(x, dy, dx, n, stored, scratch) for ∂L/∂y = dy, after forward(x, …) at the same n:
//   parameter gradients +=, dx = ∂L/∂x (assigned) unless null. It reads the stored activations
//   and leaves them unchanged (backward may run twice).
// Context (conditional couplings, core/context.hpp): ConvNet(in, hidden, out, H, W, context = K) adds a
//   learned projection of the sample's context c_i (K) to the first layer's pre-activation, per
//   channel: a1 = ReLU(conv0(x) + W_c·c_i) over every pixel of sample i, W_c "<prefix>.context.weight"
//   (hidden, K), U(±1/√K) at reset. forward(x, c, y, …) and backward(x, c, dy, dx, dc, …) with
//   dc += ∂L/∂c (accumulated) unless dc is null. (openai/glow enters its label the same way, a
//   projection added per channel; extra constant input channels would cost 9·K·hidden·HW flops per
//   sample instead of K·hidden, and zero padding would make them differ at the border.)
// Cost per pass: 2·n·HW·(9·in·hidden + hidden² + 9·hidden·out) flops; backward about twice that.
// No allocation in forward or backward. The net is movable but not copyable.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>

#include "bijou/core/backend.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/nn/context_projection.hpp"
#include "bijou/kernels/cpu/totals.hpp"
#include "bijou/kernels/cuda/totals.hpp"
#include "bijou/kernels/reference/totals.hpp"
#include "bijou/nn/conv2d.hpp"

namespace bijou {

template <Scalar T, Backend B>
class ConvNet {
public:
    ConvNet() = default;

    ConvNet(int in, int hidden, int out, int H, int W, int context = 0)
        : conv0_(checked(in, "the number of input channels"), checked(hidden, "the hidden width"), 3, H, W),
          conv2_(hidden, hidden, 1, H, W),
          conv4_(hidden, checked(out, "the number of output channels"), 3, H, W),
          proj_(hidden, context), hidden_(hidden), hw_(std::size_t(H) * std::size_t(W)) {}

    ConvNet(const ConvNet&) = delete;
    ConvNet& operator=(const ConvNet&) = delete;
    ConvNet(ConvNet&&) noexcept = default;
    ConvNet& operator=(ConvNet&&) noexcept = default;

    int in() const { return conv0_.in(); }
    int hidden() const { return hidden_; }
    int out() const { return conv4_.out(); }
    int context() const { return proj_.context(); }
    bool empty() const { return hidden_ == 0; }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        conv0_.declare(ps, join_name(prefix, "0"));
        conv2_.declare(ps, join_name(prefix, "2"));
        conv4_.declare(ps, join_name(prefix, "4"));
        proj_.declare(ps, join_name(prefix, "context.weight"));
    }

    void reset_parameters(Rng& rng, bool zero_last) {
        conv0_.reset_parameters(rng, false);
        conv2_.reset_parameters(rng, false);
        conv4_.reset_parameters(rng, zero_last);
        proj_.reset_parameters(rng, /*zero=*/false);
    }

    /// Limits the samples per chunk (the net's own chunks and its convolutions' im2col chunks: see
    /// Conv2d::set_max_chunk); before sizing workspaces.
    void set_max_chunk(int samples) {
        max_chunk_ = samples;
        conv0_.set_max_chunk(samples);
        conv2_.set_max_chunk(samples);
        conv4_.set_max_chunk(samples);
    }

    /// Samples per chunk at batch n (kernels' net_chunk: the whole batch except on the Cpu backend).
    int chunk(int n) const { return kernels::net_chunk(B{}, std::size_t(hidden_) * hw_ * sizeof(T), n, max_chunk_); }

    std::size_t stored_size(int n) const { return 2 * plane(n); }
    std::size_t scratch_size(int n) const {
        if (empty()) return 0;
        const int m = chunk(n);
        return prepared_total() + std::size_t(kernels::net_max_slots(B{}, n)) * slot_size(m, m < n);
    }

    /// y (out, n·HW) = net(x (in, n·HW)); the post-ReLU activations go to `stored`.
    void forward(const T* x, T* y, int n, T* stored, T* scratch) const { forward(x, nullptr, y, n, stored, scratch); }

    /// The same for a net with a context: c (n, K), backend memory (null when context() is 0).
    void forward(const T* x, const T* c, T* y, int n, T* stored, T* scratch) const {
        const int m = chunk(n);
        const Prepared w = prepared(scratch, /*first=*/true);
        auto before = [&](const kernels::NetTeam& team) { prepare(w, /*backward=*/false, team); };
        kernels::for_net_chunks(B{}, n, m, [&](int slot, int i0, int mm) {
            const Slot s = slot_at(scratch, m, m < n, slot);
            T* a1 = stored + 2 * plane(i0);
            T* a2 = a1 + plane(mm);
            const T* xc = columns(x, in(), n, i0, mm, s.x);
            T* yc = mm == n ? y : s.y;
            const std::size_t panels = hidden_panels(mm);
            if (!proj_.empty()) {
                conv0_.forward(xc, a1, mm, s.conv, /*relu=*/false, w.w0);
                proj_.add_per_channel(c + std::size_t(i0) * context(), a1, mm, int(hw_), /*relu=*/true,
                                      /*scratch (mm·hidden, free here)=*/s.g2);
            } else {
                conv0_.forward(xc, a1, mm, s.conv, /*relu=*/true, w.w0, {0, panels});
            }
            conv2_.forward(a1, a2, mm, s.conv, /*relu=*/true, w.w2, {panels, panels});
            conv4_.forward(a2, yc, mm, s.conv, /*relu=*/false, w.w4, {panels, 0});
            if (yc != y) put_columns(yc, y, out(), n, i0, mm);
        }, kernels::NetChunks::balanced,  // a chunk's outputs and stored activations: the same in any slot
           before, kernels::NoTeamWork{});
    }

    /// Parameter gradients += and dx = ∂L/∂x (if dx is not null), for ∂L/∂y = dy.
    void backward(const T* x, const T* dy, T* dx, int n, const T* stored, T* scratch) {
        backward(x, nullptr, dy, dx, nullptr, n, stored, scratch);
    }

    /// The same for a net with a context: also dc += ∂L/∂c (if dc is not null).
    void backward(const T* x, const T* c, const T* dy, T* dx, T* dc, int n, const T* stored, T* scratch) {
        const int m = chunk(n), slots = kernels::net_slots(B{}, n, m);
        // slot 0 adds to the parameters' gradients, the others to their own, summed in slot order after;
        // each slot adds conv4's prepared-path weight gradient to its own dwf, folded in after. conv2's
        // and conv0's prepared weights serve their data gradients only (conv0's: none without dx).
        // Preparing, zeroing, folding and summing run on the pass's threads around its chunks.
        const Prepared w = prepared(scratch, /*first=*/dx != nullptr);
        auto before = [&](const kernels::NetTeam& team) {
            prepare(w, /*backward=*/true, team);
            Span zeroed[2 * kernels::max_net_slots];  // the slots' gradients (but slot 0's) and dwf
            int count = 0;
            for (int slot = 0; slot < slots; ++slot) {
                const Slot s = slot_at(scratch, m, m < n, slot);
                if (slot > 0) zeroed[count++] = {s.grads, grad_size()};
                if (w.w4 != nullptr) zeroed[count++] = {s.dwf, conv4_.prepared_grad_size()};
            }
            zero_share(zeroed, count, team);
        };
        auto after = [&](const kernels::NetTeam& team) {
            if (w.w4 != nullptr) {  // each slot's dwf into its own gradient
                const kernels::NetTeam::Range r = team.share(slots);
                for (int slot = r.first; slot < r.last; ++slot) {
                    const Slot s = slot_at(scratch, m, m < n, slot);
                    conv4_.fold_prepared_grad(s.dwf, slot == 0 ? own_grads().w[2] : slot_grads(s.grads).w[2]);
                }
            }
            if (slots > 1) {
                team.sync();
                sum_slots(scratch, m, n, slots, team);
            }
        };
        kernels::for_net_chunks(B{}, n, m, [&](int slot, int i0, int mm) {
            const Slot s = slot_at(scratch, m, m < n, slot);
            const Grads g = slot == 0 ? own_grads() : slot_grads(s.grads);
            const T* a1 = stored + 2 * plane(i0);
            const T* a2 = a1 + plane(mm);
            const T* xc = columns(x, in(), n, i0, mm, s.x);
            const T* dyc = columns(dy, out(), n, i0, mm, s.y);
            T* dxc = dx == nullptr || mm == n ? dx : s.dx;
            // s.g2 = ∂L/∂(pre-ReLU of layer 2), s.g1 = ∂L/∂(pre-ReLU of layer 0); a1, a2 in the layout
            // forward stored them in, and s.g2, s.g1 in the same one (kernels::ConvPanels: dx like x)
            const std::size_t panels = hidden_panels(mm);
            conv4_.backward(a2, dyc, s.g2, mm, s.conv, /*relu_mask=*/a2, g.w[2], g.b[2], w.w4, w.w4 ? s.dwf : nullptr,
                            {panels, 0});
            conv2_.backward(a1, s.g2, s.g1, mm, s.conv, /*relu_mask=*/a1, g.w[1], g.b[1], w.w2, nullptr,
                            {panels, panels});
            if (!proj_.empty())
                proj_.backward_per_channel(c + std::size_t(i0) * context(), s.g1,
                                           dc == nullptr ? nullptr : dc + std::size_t(i0) * context(), mm, int(hw_),
                                           /*scratch (mm·hidden): g2, consumed=*/s.g2, g.wc);
            conv0_.backward(xc, s.g1, dxc, mm, s.conv, nullptr, g.w[0], g.b[0], w.w0, nullptr, {0, panels});
            if (dxc != dx) put_columns(dxc, dx, in(), n, i0, mm);
        }, kernels::NetChunks::fixed, before, after);
    }

    /// The layers, by nn.Sequential index: 0 (3×3 in → hidden), 2 (1×1), 4 (3×3 hidden → out).
    const Conv2d<T, B>& layer(int index) const { return index == 0 ? conv0_ : index == 2 ? conv2_ : conv4_; }

private:
    static int checked(int v, const char* what) {
        if (v < 1)
            throw invalid_argument(std::string("ConvNet: ") + what + " must be at least 1 (got " + std::to_string(v) +
                                   ")");
        return v;
    }
    std::size_t plane(int n) const { return std::size_t(hidden_) * std::size_t(n) * hw_; }
    /// The panel stride of a chunk of m samples' hidden planes in the backend's panel layout
    /// (kernels::net_panels), 0 for the row-major layout (always with a context: its projection adds
    /// to the planes by rows). Forward and backward ask the same question and get the same answer.
    std::size_t hidden_panels(int m) const {
        if (!proj_.empty()) return 0;
        return kernels::net_panels<T>(B{}, conv0_.dims(), conv0_.chunk(m), conv4_.dims(), conv4_.chunk(m), m);
    }

    const Conv2d<T, B>& conv(int l) const { return l == 0 ? conv0_ : l == 1 ? conv2_ : conv4_; }
    std::size_t weight_size(int l) const {
        const Conv2d<T, B>& c = conv(l);
        return std::size_t(c.out()) * c.in() * c.kernel() * c.kernel();
    }
    std::size_t bias_size(int l) const { return std::size_t(conv(l).out()); }
    std::size_t proj_size() const { return std::size_t(hidden_) * context(); }
    std::size_t grad_size() const {
        std::size_t total = proj_size();
        for (int l = 0; l < 3; ++l) total += weight_size(l) + bias_size(l);
        return total;
    }

    /// Where a pass adds its parameter gradients: the parameters' own, or a slot's.
    struct Grads {
        T* w[3];
        T* b[3];
        T* wc;
    };
    Grads own_grads() const {
        return {{conv0_.weight().grad, conv2_.weight().grad, conv4_.weight().grad},
                {conv0_.bias().grad, conv2_.bias().grad, conv4_.bias().grad},
                proj_.empty() ? nullptr : proj_.weight().grad};
    }
    Grads slot_grads(T* p) const {
        Grads g{};
        for (int l = 0; l < 3; ++l) {
            g.w[l] = p, p += weight_size(l);
            g.b[l] = p, p += bias_size(l);
        }
        g.wc = p;
        return g;
    }

    /// The parameters' gradients += slots 1 … slots−1's, in slot order for every element (the bits of
    /// a serial loop), in blocks of reduce_block elements shared out across the pass's team (a serial
    /// sum left the other threads waiting: config c's 290k gradients per coupling).
    void sum_slots(T* scratch, int m, int n, int slots, const kernels::NetTeam& team) {
        constexpr std::size_t reduce_block = 16384;
        const Grads own = own_grads();
        // the parameters' gradient arrays, in the order a slot's copy lays them out (slot_grads)
        T* dst[7] = {own.w[0], own.b[0], own.w[1], own.b[1], own.w[2], own.b[2], own.wc};
        const std::size_t size[7] = {weight_size(0), bias_size(0), weight_size(1), bias_size(1),
                                     weight_size(2), bias_size(2), proj_size()};
        const std::size_t total = grad_size();
        const kernels::NetTeam::Range r = team.share(int((total + reduce_block - 1) / reduce_block));
        const std::size_t lo = std::size_t(r.first) * reduce_block;
        const std::size_t hi = std::min(total, std::size_t(r.last) * reduce_block);
        std::size_t at = 0;  // where array a starts in a slot's copy
        for (int a = 0; a < 7; at += size[a], ++a) {
            const std::size_t from = std::max(lo, at), to = std::min(hi, at + size[a]);
            if (from >= to) continue;
            for (int slot = 1; slot < slots; ++slot)
                accumulate(B{}, dst[a] + (from - at), slot_at(scratch, m, m < n, slot).grads + from, to - from);
        }
    }

    /// A chunk's scratch slot (chunks of m samples, P = m·HW scalars per row): the backward's hidden
    /// gradients g2 and g1 (hidden·P each; the forward's context projections use g2), the
    /// convolutions' scratch, the slot's share of conv4's prepared-path weight gradient and, when the
    /// batch has several chunks (`chunked`), the chunk's columns of x, of y or dy, and of dx (copies:
    /// in, out and in rows of P) and the gradients of a slot other than 0 (null without `chunked`:
    /// one chunk is the batch itself, in slot 0).
    struct Slot {
        T *g2, *g1, *conv, *dwf, *x, *y, *dx, *grads;
    };
    std::size_t conv_scratch(int m) const {
        return std::max({conv0_.scratch_size(m), conv2_.scratch_size(m), conv4_.scratch_size(m)});
    }
    std::size_t slot_size(int m, bool chunked) const {
        const std::size_t P = std::size_t(m) * hw_;
        const std::size_t copies = chunked ? (2 * std::size_t(in()) + std::size_t(out())) * P + grad_size() : 0;
        return 2 * std::size_t(hidden_) * P + conv_scratch(m) + conv4_.prepared_grad_size() + copies;
    }
    /// The three layers' weights prepared once per pass (see Conv2d::prepared_size), conv4's, conv2's
    /// and conv0's, ahead of the slots.
    std::size_t prepared_total() const {
        return conv4_.prepared_size() + conv2_.prepared_size() + conv0_.prepared_size();
    }
    /// Each layer's prepared weights in scratch, null where the backend prepares none.
    struct Prepared {
        T *w4, *w2, *w0;
    };
    /// Where they go in scratch (conv0's only if `first`).
    Prepared prepared(T* scratch, bool first) const {
        auto at = [](const Conv2d<T, B>& l, T* p) { return l.prepared_size() > 0 ? p : nullptr; };
        return {at(conv4_, scratch), at(conv2_, scratch + conv4_.prepared_size()),
                first ? at(conv0_, scratch + conv4_.prepared_size() + conv2_.prepared_size()) : nullptr};
    }
    /// Prepares them for a forward pass or a backward one (`backward`): this thread's share of a team's.
    void prepare(const Prepared& w, bool backward, const kernels::NetTeam& team) const {
        if (w.w4 != nullptr) conv4_.prepare(w.w4, backward, team);
        if (w.w2 != nullptr) conv2_.prepare(w.w2, backward, team);
        if (w.w0 != nullptr) conv0_.prepare(w.w0, backward, team);
    }
    struct Span {
        T* p;
        std::size_t size;
    };
    /// Zeroes the spans laid end to end: this thread's contiguous share (cut at multiples of 16).
    static void zero_share(const Span* spans, int count, const kernels::NetTeam& team) {
        std::size_t total = 0;
        for (int i = 0; i < count; ++i) total += spans[i].size;
        auto bound = [&](int t) {
            return t == team.nt ? total : total * std::size_t(t) / std::size_t(team.nt) / 16 * 16;
        };
        const std::size_t lo = bound(team.t), hi = bound(team.t + 1);
        std::size_t at = 0;
        for (int i = 0; i < count; at += spans[i].size, ++i) {
            const std::size_t from = std::max(lo, at), to = std::min(hi, at + spans[i].size);
            if (from < to) kernels::zero(B{}, spans[i].p + (from - at), to - from);
        }
    }
    /// Slot `slot` of chunks of m samples (a shorter last chunk uses the start of each part).
    Slot slot_at(T* scratch, int m, bool chunked, int slot) const {
        T* p = scratch + prepared_total() + std::size_t(slot) * slot_size(m, chunked);
        const std::size_t P = std::size_t(m) * hw_;
        Slot s{};
        s.g2 = p, p += hidden_ * P;
        s.g1 = p, p += hidden_ * P;
        s.conv = p, p += conv_scratch(m);
        s.dwf = p, p += conv4_.prepared_grad_size();
        if (!chunked) return s;
        s.x = p, p += std::size_t(in()) * P;
        s.y = p, p += std::size_t(out()) * P;
        s.dx = p, p += std::size_t(in()) * P;
        s.grads = p;
        return s;
    }

    /// The columns of samples [i0, i0 + m) of a (rows, n·HW) batch: in place when they are all of
    /// it, else copied to `copy` as a (rows, m·HW) block.
    const T* columns(const T* a, int rows, int n, int i0, int m, T* copy) const {
        if (m == n) return a;
        const std::size_t P = std::size_t(m) * hw_;
        copy_rows(B{}, copy, P, a + std::size_t(i0) * hw_, std::size_t(n) * hw_, std::size_t(rows), P);
        return copy;
    }
    /// The reverse: a (rows, m·HW) block back into samples [i0, i0 + m) of a (rows, n·HW) batch.
    void put_columns(const T* block, T* a, int rows, int n, int i0, int m) const {
        const std::size_t P = std::size_t(m) * hw_;
        copy_rows(B{}, a + std::size_t(i0) * hw_, std::size_t(n) * hw_, block, P, std::size_t(rows), P);
    }

    Conv2d<T, B> conv0_, conv2_, conv4_;
    ContextProjection<T, B> proj_;  // the context's projection onto the first hidden layer (empty: none)
    int hidden_ = 0;
    std::size_t hw_ = 0;
    int max_chunk_ = 0;
};

}  // namespace bijou
