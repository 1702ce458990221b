// bijou/core/mirror.hpp — data in two places: where a backend's kernels work, and on the host.
//
// A backend whose kernels work on memory of their own (an ExecutorBackend: Cuda's device memory,
// CudaHost's guarded pages; core/memory.hpp) keeps a model's tensors and activations there, while
// host code reads host memory: checkpoints and inspection, the C×C factor algebra of the 1×1
// convolutions, permutation checks, the vector base distributions, the xtensor API edge. Every copy
// between the two goes through this header:
//
//   Mirror<B, T>  a set of tensors in two copies: the backend copy, which kernels read and write, and
//   the host copy, which host code reads. Two uses:
//     A model's parameters (models/flow.hpp); the host copy is the model's ParamSet `ps`:
//       bind(ps, declare)  makes the backend copy (values, gradients, buffers: one allocation each),
//                          copies values and buffers there, and binds to it every handle that
//                          declare(view) declares into a fresh ParamSet
//       values(ps), grads(ps)  the flat arrays that kernels and optimizers use (kernels::zero clears grads)
//       to_host(ps)        values and buffers, backend → ps (gradients stay); to_device(ps) the reverse
//     A component's own tensors, whose handles its model bound to backend memory (host code in a
//     bijector or a base):
//       on_host(what, t...)  for the life of the returned scope the handles t... point at host
//                          copies: HostCopy::values copies their values there; HostCopy::grads gives the
//                          trainable ones gradients that start at zero, which scope.send_grads()
//                          adds (+=) to the backend's; HostCopy::both does both. The handles are
//                          restored when the scope ends (also by an exception). One scope at a time
//                          per mirror, and no kernel may be given these handles meanwhile. The host
//                          copies are the mirror's own storage, grown to the largest set seen, so a
//                          warm call allocates nothing.
//   BackendStage<B, U>  backend memory standing in for host arrays: in(h, n) copies n host values
//                       where kernels read them; out(h, n) is where kernels write n results meant
//                       for h, and finish(h, n) copies them to h.
//   HostStage<B, U>     host memory standing in for backend arrays: in(p, n) copies n backend values
//                       where host code reads them; out(p, n) is where host code writes results meant
//                       for p, and finish(p, n) copies them to p.
//   Both grow to the largest n seen; reserve(n) sizes them up front.
//
// Host backends (Reference, Cpu) have one memory, so both copies are the same: every class here is
// then empty and every call the identity. bind, to_host, to_device, send_grads, reserve and finish
// do nothing, values(ps) is ps.values(), on_host leaves the handles alone (gradients accumulate where
// they live), in and out return the pointer they are given. A host model pays no copy and no memory.
#pragma once

#include <algorithm>
#include <array>
#include <cassert>
#include <concepts>
#include <cstddef>
#include <span>
#include <vector>

#include "bijou/core/backend.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/params.hpp"

namespace bijou {

/// What Mirror::on_host brings to the host: the tensors' values, gradients to accumulate, or both.
enum class HostCopy { values, grads, both };

template <Backend B, class U>
class BackendStage;
template <Backend B, class U>
class HostStage;
template <Backend B, class T>
class Mirror;

// ---- a backend with memory of its own ----------------------------------------------------------

template <ExecutorBackend B, class U>
class BackendStage<B, U> {
public:
    void reserve(std::size_t n) {
        if (buf_.size() < n) buf_.assign_zeros(n);
    }
    const U* in(const U* host, std::size_t n) {
        reserve(n);
        upload(B{}, buf_.data(), host, n);
        return buf_.data();
    }
    U* out(U*, std::size_t n) {
        reserve(n);
        return buf_.data();
    }
    void finish(U* host, std::size_t n) const { download(B{}, host, buf_.data(), n); }

private:
    Buffer<B, U> buf_;
};

template <ExecutorBackend B, class U>
class HostStage<B, U> {
public:
    void reserve(std::size_t n) {
        if (buf_.size() < n) buf_.resize(n);
    }
    const U* in(const U* p, std::size_t n) {
        reserve(n);
        download(B{}, buf_.data(), p, n);
        return buf_.data();
    }
    U* out(U*, std::size_t n) {
        reserve(n);
        return buf_.data();
    }
    void finish(U* p, std::size_t n) const { upload(B{}, p, buf_.data(), n); }

private:
    std::vector<U> buf_;
};

template <ExecutorBackend B, class T>
class Mirror<B, T> {
public:
    template <class Declare>
    void bind(ParamSet<T>& ps, Declare&& declare) {
        values_.assign_zeros(ps.count());
        grads_.assign_zeros(ps.count());
        buffers_.assign_zeros(ps.buffer_count());
        to_device(ps);
        ParamSet<T> view;  // the same declarations, bound to the backend copy
        declare(view);
        view.bind_external(values_.data(), grads_.data(), buffers_.data());
    }
    std::span<T> values(ParamSet<T>&) { return {values_.data(), values_.size()}; }
    std::span<const T> values(const ParamSet<T>&) const { return {values_.data(), values_.size()}; }
    std::span<T> grads(ParamSet<T>&) { return {grads_.data(), grads_.size()}; }
    void to_host(ParamSet<T>& ps) const {
        download(B{}, ps.values().data(), values_.data(), values_.size());
        download(B{}, ps.buffers().data(), buffers_.data(), buffers_.size());
    }
    void to_device(const ParamSet<T>& ps) {
        upload(B{}, values_.data(), ps.values().data(), values_.size());
        upload(B{}, buffers_.data(), ps.buffers().data(), buffers_.size());
    }

    template <std::size_t N>
    class Scope {
    public:
        Scope(Mirror& m, HostCopy what, std::array<TensorRef<T>*, N> ts) : m_(m), what_(what), ts_(ts) {
            assert(!m_.open_ && "bijou: one Mirror::on_host scope at a time");
            m_.open_ = true;
            const bool values = what != HostCopy::grads, grads = what != HostCopy::values;
            std::size_t need = 0;
            for (const TensorRef<T>* t : ts_)
                need += (std::size_t(values) + std::size_t(grads && t->grad != nullptr)) * t->size;
            if (m_.host_.size() < need) m_.host_.resize(need);
            T* p = m_.host_.data();
            for (std::size_t i = 0; i < N; ++i) {
                TensorRef<T>& t = *ts_[i];
                saved_[i] = t;
                if (values) {
                    download(B{}, p, t.value, t.size);
                    t.value = p;
                    p += t.size;
                }
                if (grads && t.grad != nullptr) {
                    std::fill_n(p, t.size, T(0));
                    t.grad = p;
                    p += t.size;
                }
            }
        }
        Scope(const Scope&) = delete;
        Scope& operator=(const Scope&) = delete;
        ~Scope() {
            for (std::size_t i = 0; i < N; ++i) *ts_[i] = saved_[i];
            m_.open_ = false;
        }

        /// Adds the host gradients to the backend's (+=).
        void send_grads() {
            assert(what_ != HostCopy::values);
            for (std::size_t i = 0; i < N; ++i)
                if (saved_[i].grad != nullptr)
                    accumulate(B{}, saved_[i].grad, m_.send_.in(ts_[i]->grad, ts_[i]->size), ts_[i]->size);
        }

    private:
        Mirror& m_;
        HostCopy what_;
        std::array<TensorRef<T>*, N> ts_;
        std::array<TensorRef<T>, N> saved_{};
    };

    template <class... Ts>
        requires(std::same_as<Ts, TensorRef<T>> && ...)
    [[nodiscard]] Scope<sizeof...(Ts)> on_host(HostCopy what, Ts&... ts) {
        return Scope<sizeof...(Ts)>(*this, what, {&ts...});
    }

private:
    // a model's parameters
    Buffer<B, T> values_, grads_, buffers_;
    // a component's tensors: host copies, and gradients on their way back
    std::vector<T> host_;
    BackendStage<B, T> send_;
    bool open_ = false;
};

// ---- a host backend: one memory, so the identity -----------------------------------------------

template <Backend B, class U>
    requires(!ExecutorBackend<B>)
class BackendStage<B, U> {
public:
    void reserve(std::size_t) {}
    const U* in(const U* host, std::size_t) { return host; }
    U* out(U* host, std::size_t) { return host; }
    void finish(U*, std::size_t) const {}
};

template <Backend B, class U>
    requires(!ExecutorBackend<B>)
class HostStage<B, U> {
public:
    void reserve(std::size_t) {}
    const U* in(const U* p, std::size_t) { return p; }
    U* out(U* p, std::size_t) { return p; }
    void finish(U*, std::size_t) const {}
};

template <Backend B, class T>
    requires(!ExecutorBackend<B>)
class Mirror<B, T> {
public:
    template <class Declare>
    void bind(ParamSet<T>&, Declare&&) {}
    std::span<T> values(ParamSet<T>& ps) { return ps.values(); }
    std::span<const T> values(const ParamSet<T>& ps) const { return ps.values(); }
    std::span<T> grads(ParamSet<T>& ps) { return ps.grads(); }
    void to_host(ParamSet<T>&) const {}
    void to_device(const ParamSet<T>&) {}

    struct Scope {
        ~Scope() {}  // user-provided, so that an unused scope variable draws no warning
        void send_grads() {}
    };
    template <class... Ts>
        requires(std::same_as<Ts, TensorRef<T>> && ...)
    [[nodiscard]] Scope on_host(HostCopy, Ts&...) {
        return {};
    }
};

}  // namespace bijou
