// bijou/core/stack.hpp — K copies of one Step, K chosen at run time (Stack) or compile time (Repeat).
//
// Stack<Step> builds Options::steps_per_level copies; Repeat<Step, K> builds exactly K. Each copy is its own
// bound Step with its own parameters (copy k is built k-th, so alternating masks alternate across
// copies). forward applies copy 0 first. The Step must map its shape to itself (compile error
// `stack_step_changes_shape<Step, In, Out>` otherwise). State_dict keys: "steps.<k>.…".
// Workspace: K intermediate outputs and the K steps' kept parts, then the scratch (core/workspace.hpp):
// two gradient buffers and one region the steps share for their own scratch; with
// Options::memory_saving two ping-pong buffers and one step workspace shared by all K steps, so
// activation memory does not grow with K (backward rebuilds each step's input through its
// inverse, core/recompute.hpp). A conditional Step makes the stack conditional (core/context.hpp).
#pragma once

#include <algorithm>
#include <cstddef>
#include <string>
#include <vector>

#include "bijou/core/memory.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/diagnostics.hpp"
#include "bijou/core/recompute.hpp"
#include "bijou/core/workspace.hpp"

namespace bijou {
namespace detail {

template <class Step, class S, class T, class B>
consteval bool check_stack_step() {
    return stack_step_check<Step, S, typename checked_bind_t<0, Step, S, T, B>::out_shape>::ok;
}

template <class Step, int FixedK, class S, class T, class B>
class StackBijector : public conditional_on<context_shape_t<checked_bind_t<0, Step, S, T, B>>> {
    static constexpr bool ok = check_stack_step<Step, S, T, B>();
    using step_type = std::conditional_t<ok, checked_bind_t<0, Step, S, T, B>, invalid_bijector<S, T, B>>;

public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;

    explicit StackBijector(BuildContext& ctx) : recompute_(ctx.options().memory_saving) {
        const int k = FixedK > 0 ? FixedK : ctx.options().steps_per_level;
        if (k < 1) throw invalid_argument("Options::steps_per_level must be at least 1 (got " + std::to_string(k) + ")");
        steps_.reserve(std::size_t(k));
        for (int i = 0; i < k; ++i) steps_.emplace_back(ctx);
    }

    int size() const { return int(steps_.size()); }
    /// True when built with Options::memory_saving (backward rebuilds activations).
    bool memory_saving() const { return recompute_; }
    /// Selects the workspace layout, for this stack and its steps (core/recompute.hpp).
    void set_memory_saving(bool on) const {
        recompute_ = on;
        for (const auto& s : steps_) detail::set_memory_saving(s, on);
    }
    step_type& operator[](int k) { return steps_[std::size_t(k)]; }
    const step_type& operator[](int k) const { return steps_[std::size_t(k)]; }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        for (std::size_t k = 0; k < steps_.size(); ++k) steps_[k].declare(ps, join_name(prefix, std::to_string(k)));
    }
    void reset_parameters(Rng& rng) {
        for (auto& s : steps_) s.reset_parameters(rng);
    }

    std::size_t workspace_size(int n) const {
        const std::size_t act = std::size_t(n) * S::size;
        if (recompute_) {
            std::size_t shared = 0;
            for (const auto& s : steps_) shared = std::max(shared, s.workspace_size(n));
            return 4 * act + shared;
        }
        std::size_t total = (steps_.size() - 1) * act;
        for (const auto& s : steps_) total += detail::kept_size(s, n);
        return total + scratch_size(n);
    }
    /// The part of the workspace no call reads from an earlier one (core/workspace.hpp): the gradient
    /// buffers and the steps' shared scratch; none in the memory-saving layout.
    std::size_t scratch_size(int n) const {
        if (recompute_) return 0;
        std::size_t shared = 0;
        for (const auto& s : steps_) shared = std::max(shared, detail::scratch_size(s, n));
        return 2 * std::size_t(n) * S::size + shared;
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const { forward(x, z, ld, n, ws, scratch_at(ws, n)); }
    void forward(const T* x, T* z, double* ld, int n, T* ws, T* scratch) const {
        walk_forward(x, z, ld, n, ws, scratch, [](const T*, int) {});
    }

    template <class F>
    void forward_stages(const T* x, T* z, double* ld, int n, T* ws, F&& emit) const {
        walk_forward(x, z, ld, n, ws, scratch_at(ws, n), emit);
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const { inverse(z, x, ld, n, ws, scratch_at(ws, n)); }
    void inverse(const T* z, T* x, double* ld, int n, T* ws, T* scratch) const {
        const std::size_t K = steps_.size();
        T* w = steps_ws_end(ws, n);
        T* s = steps_scratch(scratch, n);
        for (std::size_t k = K; k-- > 0;) {
            const T* in = k + 1 == K ? z : act(ws, n, k);
            T* out = k == 0 ? x : act(ws, n, k - 1);
            w = prev_ws(w, k, n);
            detail::inverse(steps_[k], in, out, ld, n, w, s);
        }
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        backward(x, z, dz, dld, dx, n, ws, scratch_at(ws, n));
    }
    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch) {
        if (recompute_) return backward_with_temporaries(*this, z, dz, dld, dx, n, ws);  // standalone use
        walk_backward(const_cast<T*>(x), z, dz, dld, dx, n, ws, scratch, nullptr);
    }

    /// x_rec = f⁻¹(z), then backward (core/recompute.hpp): in memory-saving mode each step rebuilds
    /// its own input on the way down; otherwise inverse refills the stored activations first.
    void backward_from_output(const T* z, const T* dz, const T* dld, T* x_rec, T* dx, int n, T* ws,
                              double* ld_tmp) {
        T* scratch = scratch_at(ws, n);
        if (!recompute_) inverse(z, x_rec, ld_tmp, n, ws, scratch);
        walk_backward(x_rec, z, dz, dld, dx, n, ws, scratch, ld_tmp);
    }

    void initialize(const T* x, int n, T* ws) { initialize(x, n, ws, scratch_at(ws, n)); }
    void initialize(const T* x, int n, T* ws, T* scratch) {
        Buffer<B, double> ld{std::size_t(n)};
        const std::size_t K = steps_.size();
        T* w = steps_ws(ws, n);
        T* s = steps_scratch(scratch, n);
        for (std::size_t k = 0; k < K; ++k) {
            const T* in = k == 0 ? x : act(ws, n, k - 1);
            if constexpr (DataInitialized<step_type>) detail::initialize(steps_[k], in, n, w, s);
            if (k + 1 < K) detail::forward(steps_[k], in, act(ws, n, k), ld.data(), n, w, s);
            w = next_ws(w, k, n);
        }
    }

private:
    template <class F>
    void walk_forward(const T* x, T* z, double* ld, int n, T* ws, T* scratch, F&& emit) const {
        const std::size_t K = steps_.size();
        T* w = steps_ws(ws, n);
        T* s = steps_scratch(scratch, n);
        for (std::size_t k = 0; k < K; ++k) {
            const T* in = k == 0 ? x : act(ws, n, k - 1);
            T* out = k + 1 == K ? z : act(ws, n, k);
            detail::forward(steps_[k], in, out, ld, n, w, s);
            w = next_ws(w, k, n);
            emit(const_cast<const T*>(out), S::size);
        }
    }

    void walk_backward(T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch,
                       double* ld_tmp) {
        const std::size_t K = steps_.size();
        T* g[2] = {grad(ws, scratch, n, 0), grad(ws, scratch, n, 1)};
        T* w = steps_ws_end(ws, n);
        T* s = steps_scratch(scratch, n);
        for (std::size_t k = K; k-- > 0;) {
            T* in = k == 0 ? x : act(ws, n, k - 1);
            const T* out = k + 1 == K ? z : act(ws, n, k);
            const T* gout = k + 1 == K ? dz : g[(k + 1) % 2];
            T* gin = k == 0 ? dx : g[k % 2];
            w = prev_ws(w, k, n);
            element_backward(steps_[k], recompute_, in, out, gout, dld, gin, n, w, s, ld_tmp);
        }
    }

    // Store mode: [act 0..K-2][kept 0..K-1], and the scratch (elsewhere) [grad0][grad1][the steps'
    // shared scratch]. Memory-saving: [grad0][grad1][act0][act1][ws], step k's output in act[k % 2]
    // and one workspace for every step.
    T* scratch_at(T* ws, int n) const { return recompute_ ? nullptr : ws + detail::kept_size(*this, n); }
    T* grad(T* ws, T* scratch, int n, std::size_t i) const {
        return (recompute_ ? ws : scratch) + i * std::size_t(n) * S::size;
    }
    T* steps_scratch(T* scratch, int n) const {
        return recompute_ ? nullptr : scratch + 2 * std::size_t(n) * S::size;
    }
    T* act(T* ws, int n, std::size_t k) const {
        return ws + (recompute_ ? 2 + k % 2 : k) * std::size_t(n) * S::size;
    }
    std::size_t acts() const { return recompute_ ? 2 : steps_.size() - 1; }
    // The steps' kept parts follow each other; loops walk them with a running pointer (forward from
    // steps_ws, backward from steps_ws_end) instead of summing the sizes before step k every time.
    T* steps_ws(T* ws, int n) const { return ws + ((recompute_ ? 2 : 0) + acts()) * std::size_t(n) * S::size; }
    T* steps_ws_end(T* ws, int n) const {
        T* p = steps_ws(ws, n);
        if (recompute_) return p;
        for (const auto& s : steps_) p += detail::kept_size(s, n);
        return p;
    }
    T* next_ws(T* w, std::size_t k, int n) const { return recompute_ ? w : w + detail::kept_size(steps_[k], n); }
    T* prev_ws(T* w, std::size_t k, int n) const { return recompute_ ? w : w - detail::kept_size(steps_[k], n); }

    std::vector<step_type> steps_;
    mutable bool recompute_ = false;
};

}  // namespace detail

/// K = Options::steps_per_level copies of Step, chosen at run time.
template <class Step>
struct Stack {
    static constexpr std::string_view name = "steps";
    template <class S, class T, class B>
    using bind = detail::StackBijector<Step, 0, S, T, B>;
};

/// Exactly K copies of Step.
template <class Step, int K>
struct Repeat {
    static_assert(K >= 1, "bijou: Repeat<Step, K> needs K >= 1");
    static constexpr std::string_view name = "steps";
    template <class S, class T, class B>
    using bind = detail::StackBijector<Step, K, S, T, B>;
};

}  // namespace bijou
