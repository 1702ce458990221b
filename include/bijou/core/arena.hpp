// bijou/core/arena.hpp — a model's working memory: the workspace arena, the per-sample buffers, and
// the staging of host data at the API edge.
//
// Arena<B, T>(data_size, latent_size), all in backend memory (core/memory.hpp):
//   ws()                       the workspace arena: activations and scratch of the bijectors
//   z(), dz()                  (n, latent_size) latents and their gradients
//   dx()                       (n, data_size) input gradients
//   ld(), lp(), dld()          (n) log-dets and log-probs (double), the log-det gradient (T)
//   xrec(), ldtmp()            (n, data_size) and (n): where a memory-saving backward rebuilds its input
//   prepare(n, workspace, rebuild)  makes them hold a batch of n >= 0. The per-sample buffers only
//                              grow (capacity(): the largest batch seen); the arena grows to at least
//                              `workspace` scalars, released before it is regrown so that peak memory
//                              is one arena; `rebuild` adds xrec and ldtmp. A call at sizes prepared
//                              before allocates nothing.
//   stage_in(h, count)         host input where kernels read it
//   stage_out(h, count)        where kernels write output meant for host memory h;
//   finish_out(h, count)       then copies it to h
//   host_log_det(n), host_log_prob(n)  ld() and lp() readable on the host
// A conditional model's arena (context_size K > 0) also has
//   stage_context(h, count)    the host context rows where kernels read them
//   dc()                       (n, K) the context gradient, host_dc(n) readable on the host
// On a host backend (Reference, Cpu) the staging is the identity (core/mirror.hpp): stage_in and
// stage_out return h, host_log_det returns ld(); no copy, no memory. A pointer from the staging is
// valid until the next call that stages the same way or prepares a larger batch.
#pragma once

#include <algorithm>
#include <cassert>
#include <cstddef>

#include "bijou/core/backend.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/mirror.hpp"

namespace bijou {

template <Backend B, class T>
class Arena {
public:
    Arena(int data_size, int latent_size, int context_size = 0)
        : data_size_(data_size), latent_size_(latent_size), context_size_(context_size) {}

    void prepare(int n, std::size_t workspace, bool rebuild) {
        assert(n >= 0);
        const std::size_t nn = std::size_t(n), io = nn * std::size_t(std::max(data_size_, latent_size_));
        if (n > capacity_) {
            ld_.assign_zeros(nn);
            lp_.assign_zeros(nn);
            z_.assign_zeros(nn * std::size_t(latent_size_));
            dz_.assign_zeros(nn * std::size_t(latent_size_));
            dx_.assign_zeros(nn * std::size_t(data_size_));
            dld_.assign_zeros(nn);
            in_.reserve(io);
            out_.reserve(io);
            ld_host_.reserve(nn);
            lp_host_.reserve(nn);
            if (context_size_ > 0) {
                dc_.assign_zeros(nn * std::size_t(context_size_));
                c_in_.reserve(nn * std::size_t(context_size_));
                dc_host_.reserve(nn * std::size_t(context_size_));
            }
            capacity_ = n;
        }
        if (ws_.size() < workspace) ws_.assign_zeros(workspace);
        if (rebuild && xrec_.size() < nn * std::size_t(data_size_)) {
            xrec_.assign_zeros(nn * std::size_t(data_size_));
            ldtmp_.assign_zeros(nn);
        }
    }
    int capacity() const { return capacity_; }

    T* ws() { return ws_.data(); }
    T* z() { return z_.data(); }
    T* dz() { return dz_.data(); }
    T* dx() { return dx_.data(); }
    T* dld() { return dld_.data(); }
    T* xrec() { return xrec_.data(); }
    double* ld() { return ld_.data(); }
    double* lp() { return lp_.data(); }
    double* ldtmp() { return ldtmp_.data(); }

    const T* stage_in(const T* host, std::size_t count) { return in_.in(host, count); }
    T* stage_out(T* host, std::size_t count) { return out_.out(host, count); }
    void finish_out(T* host, std::size_t count) const { out_.finish(host, count); }
    const double* host_log_det(int n) { return ld_host_.in(ld_.data(), std::size_t(n)); }
    const double* host_log_prob(int n) { return lp_host_.in(lp_.data(), std::size_t(n)); }
    const T* stage_context(const T* host, std::size_t count) { return c_in_.in(host, count); }
    T* dc() { return dc_.data(); }
    const T* host_dc(int n) { return dc_host_.in(dc_.data(), std::size_t(n) * std::size_t(context_size_)); }

private:
    int data_size_, latent_size_, context_size_;
    int capacity_ = 0;
    Buffer<B, T> ws_, z_, dz_, dx_, dld_, xrec_, dc_;
    Buffer<B, double> ld_, lp_, ldtmp_;
    BackendStage<B, T> in_, out_, c_in_;
    HostStage<B, double> ld_host_, lp_host_;
    HostStage<B, T> dc_host_;
};

}  // namespace bijou
