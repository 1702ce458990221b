// bijou/core/chain.hpp — composition in data-flow order.
//
// Chain<A, B, C>::forward applies A, then B, then C (x → z, the way data moves; nflows / Glow
// convention; TFP's Chain lists bijectors the other way round). inverse applies C⁻¹, B⁻¹, A⁻¹.
// log|det| adds up. Each element is bound to the shape the previous one produces; a mismatch is a
// compile error naming the position and both shapes (core/diagnostics.hpp).
// State_dict names: an element's key is its recipe name when that name is unique in the chain,
// else "<position>.<name>" (Chain itself has an empty name and adds no key of its own).
// Workspace (Options::memory_saving = false): every intermediate output and every element's kept part,
// so backward can run after forward without recomputation; then the scratch (core/workspace.hpp): two
// gradient buffers and one region that all elements share for their own scratch.
// With Options::memory_saving: two ping-pong activation buffers, two gradient buffers and ONE
// workspace region shared by all elements; backward rebuilds each element's input from its output
// (core/recompute.hpp), one extra inverse per element. Cost: the sum of the elements' costs.
// Either way `inverse` leaves the workspace as `forward` would, like every bijector.
// Context: the chain is conditional when any element is (core/context.hpp); all conditional elements
// must expect the same context shape (a compile error naming the position and both shapes otherwise).
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "bijou/core/memory.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/diagnostics.hpp"
#include "bijou/core/recompute.hpp"
#include "bijou/core/workspace.hpp"

namespace bijou {

template <class... Rs>
struct Chain;

namespace detail {

template <int I, class In, class T, class B, class... Rs>
struct bind_all {
    using type = std::tuple<>;
    using out_shape = In;
};
template <int I, class In, class T, class B, class R, class... Rs>
struct bind_all<I, In, T, B, R, Rs...> {
    using head = checked_bind_t<I, R, In, T, B>;
    using rest = bind_all<I + 1, typename head::out_shape, T, B, Rs...>;
    using type = decltype(std::tuple_cat(std::declval<std::tuple<head>>(), std::declval<typename rest::type>()));
    using out_shape = typename rest::out_shape;
};

template <class R>
constexpr std::string_view recipe_name() {
    if constexpr (requires { R::name; }) return R::name;
    else return "";
}

template <class S, class T, class B, class... Rs>
class ChainBijector : public conditional_on<tuple_context_t<typename bind_all<0, S, T, B, Rs...>::type>> {
    static_assert(sizeof...(Rs) > 0, "bijou: Chain<> needs at least one element");
    using bound = bind_all<0, S, T, B, Rs...>;
    using elements = typename bound::type;
    static constexpr std::size_t M = sizeof...(Rs);

public:
    using in_shape = S;
    using out_shape = typename bound::out_shape;
    using scalar = T;
    using backend = B;

    explicit ChainBijector(BuildContext& ctx)
        : elems_(make(ctx, std::make_index_sequence<M>{})), recompute_(ctx.options().memory_saving) {}

    /// True when built with Options::memory_saving (backward rebuilds activations).
    bool memory_saving() const { return recompute_; }
    /// Selects the workspace layout, for this chain and the composites in it (core/recompute.hpp).
    void set_memory_saving(bool on) const {
        recompute_ = on;
        for_each_c([&]<std::size_t I>(const auto& e) { detail::set_memory_saving(e, on); });
    }

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        constexpr std::array<std::string_view, M> names{recipe_name<Rs>()...};
        for_each([&]<std::size_t I>(auto& e) {
            const std::string_view nm = names[I];
            const bool unique = std::count(names.begin(), names.end(), nm) == 1;
            std::string key = unique ? std::string(nm) : join_name(std::to_string(I), std::string(nm));
            e.declare(ps, join_name(prefix, key));
        });
    }

    void reset_parameters(Rng& rng) {
        for_each([&]<std::size_t I>(auto& e) { e.reset_parameters(rng); });
    }

    std::size_t workspace_size(int n) const {
        if (recompute_) {  // two gradient and two ping-pong activation buffers, one shared workspace
            std::size_t shared = 0;
            for_each_c([&]<std::size_t I>(const auto& e) { shared = std::max(shared, e.workspace_size(n)); });
            return 4 * std::size_t(n) * max_size() + shared;
        }
        std::size_t kept = 0;
        for_each_c([&]<std::size_t I>(const auto& e) {
            kept += detail::kept_size(e, n);
            if (I + 1 < M) kept += std::size_t(n) * size_at<I>();
        });
        return kept + scratch_size(n);
    }
    /// The part of the workspace no call reads from an earlier one (core/workspace.hpp): the gradient
    /// buffers and the elements' shared scratch; none in the memory-saving layout.
    std::size_t scratch_size(int n) const {
        if (recompute_) return 0;
        std::size_t shared = 0;
        for_each_c([&]<std::size_t I>(const auto& e) { shared = std::max(shared, detail::scratch_size(e, n)); });
        return 2 * std::size_t(n) * max_size() + shared;
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const { forward(x, z, ld, n, ws, scratch_at(ws, n)); }
    void forward(const T* x, T* z, double* ld, int n, T* ws, T* scratch) const {
        Layout L = layout(n, ws, scratch);
        for_each_c([&]<std::size_t I>(const auto& e) {
            const T* in = I == 0 ? x : L.act[I - 1];
            T* out = I + 1 == M ? z : L.act[I];
            detail::forward(e, in, out, ld, n, L.ws[I], L.scratch);
        });
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const { inverse(z, x, ld, n, ws, scratch_at(ws, n)); }
    void inverse(const T* z, T* x, double* ld, int n, T* ws, T* scratch) const {
        Layout L = layout(n, ws, scratch);
        for_each_rc([&]<std::size_t I>(const auto& e) {
            const T* in = I + 1 == M ? z : L.act[I];
            T* out = I == 0 ? x : L.act[I - 1];
            detail::inverse(e, in, out, ld, n, L.ws[I], L.scratch);
        });
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        backward(x, z, dz, dld, dx, n, ws, scratch_at(ws, n));
    }
    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch) {
        if (recompute_) return backward_with_temporaries(*this, z, dz, dld, dx, n, ws);  // standalone use
        walk_backward(const_cast<T*>(x), z, dz, dld, dx, n, ws, scratch, nullptr);
    }

    /// x_rec = f⁻¹(z), then backward (core/recompute.hpp). In memory-saving mode each element
    /// rebuilds its own input on the way down; otherwise inverse refills the stored activations.
    void backward_from_output(const T* z, const T* dz, const T* dld, T* x_rec, T* dx, int n, T* ws,
                              double* ld_tmp) {
        T* scratch = scratch_at(ws, n);
        if (!recompute_) inverse(z, x_rec, ld_tmp, n, ws, scratch);
        walk_backward(x_rec, z, dz, dld, dx, n, ws, scratch, ld_tmp);
    }

    void initialize(const T* x, int n, T* ws) { initialize(x, n, ws, scratch_at(ws, n)); }
    void initialize(const T* x, int n, T* ws, T* scratch) {
        Layout L = layout(n, ws, scratch);
        Buffer<B, double> ld{std::size_t(n)};  // initialisation is not a training step
        for_each([&]<std::size_t I>(auto& e) {
            const T* in = I == 0 ? x : L.act[I - 1];
            if constexpr (DataInitialized<std::remove_cvref_t<decltype(e)>>) detail::initialize(e, in, n, L.ws[I], L.scratch);
            if (I + 1 < M) detail::forward(e, in, L.act[I], ld.data(), n, L.ws[I], L.scratch);
        });
    }

    /// Calls emit(const T* out) after each element's forward (for plots of intermediate stages).
    template <class F>
    void forward_stages(const T* x, T* z, double* ld, int n, T* ws, F&& emit) const {
        Layout L = layout(n, ws, scratch_at(ws, n));
        for_each_c([&]<std::size_t I>(const auto& e) {
            const T* in = I == 0 ? x : L.act[I - 1];
            T* out = I + 1 == M ? z : L.act[I];
            detail::forward(e, in, out, ld, n, L.ws[I], L.scratch);
            emit(const_cast<const T*>(out), int(std::remove_cvref_t<decltype(e)>::out_shape::size));
        });
    }

    template <std::size_t I>
    auto& element() { return std::get<I>(elems_); }
    template <std::size_t I>
    const auto& element() const { return std::get<I>(elems_); }
    static constexpr std::size_t length = M;

private:
    // Elements from the last: in memory-saving mode element I first rebuilds its input (written
    // into the activation buffer, or into x for I = 0) from its output.
    void walk_backward(T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch,
                       double* ld_tmp) {
        Layout L = layout(n, ws, scratch);
        T* g[2] = {L.grad[0], L.grad[1]};
        for_each_r([&]<std::size_t I>(auto& e) {
            T* in = I == 0 ? x : L.act[I - 1];
            const T* out = I + 1 == M ? z : L.act[I];
            const T* gout = I + 1 == M ? dz : g[(I + 1) % 2];
            T* gin = I == 0 ? dx : g[I % 2];
            element_backward(e, recompute_, in, out, gout, dld, gin, n, L.ws[I], L.scratch, ld_tmp);
        });
    }

    template <std::size_t... I>
    static elements make(BuildContext& ctx, std::index_sequence<I...>) {
        return elements{std::tuple_element_t<I, elements>(ctx)...};
    }

    template <std::size_t I>
    static constexpr int size_at() {
        return std::tuple_element_t<I, elements>::out_shape::size;
    }
    static constexpr std::size_t max_size() {
        std::size_t m = std::size_t(S::size);
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            ((m = std::max(m, std::size_t(size_at<I>()))), ...);
        }(std::make_index_sequence<M>{});
        return m;
    }

    struct Layout {
        std::array<T*, M> act{};  // outputs of elements 0..M-2
        std::array<T*, M> ws{};   // the elements' kept parts (memory-saving: all the same region)
        T* grad[2]{};
        T* scratch = nullptr;     // the elements' shared scratch (memory-saving: none)
    };
    // The scratch of the plain forms: right after the kept part; none in the memory-saving layout.
    T* scratch_at(T* ws, int n) const { return recompute_ ? nullptr : ws + detail::kept_size(*this, n); }
    // Store mode: per element [its output (not the last's)][its kept part]; the scratch (elsewhere)
    // [grad0][grad1][shared scratch of the elements].
    // Memory-saving: [grad0][grad1][act0][act1][shared workspace]; output I goes to act[I % 2].
    Layout layout(int n, T* ws, T* scratch) const {
        Layout L;
        const std::size_t nn = std::size_t(n);
        if (recompute_) {
            T* p = ws;
            L.grad[0] = p, L.grad[1] = p + nn * max_size();
            T* pp[2] = {p + 2 * nn * max_size(), p + 3 * nn * max_size()};
            T* shared = p + 4 * nn * max_size();
            for (std::size_t I = 0; I < M; ++I) L.act[I] = pp[I % 2], L.ws[I] = shared;
            return L;
        }
        L.grad[0] = scratch, L.grad[1] = scratch + nn * max_size();
        L.scratch = scratch + 2 * nn * max_size();
        T* p = ws;
        for_each_c([&]<std::size_t I>(const auto& e) {
            if (I + 1 < M) L.act[I] = p, p += nn * size_at<I>();
            L.ws[I] = p, p += detail::kept_size(e, n);
        });
        return L;
    }

    template <class F>
    void for_each(F&& f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (f.template operator()<I>(std::get<I>(elems_)), ...);
        }(std::make_index_sequence<M>{});
    }
    template <class F>
    void for_each_c(F&& f) const {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (f.template operator()<I>(std::get<I>(elems_)), ...);
        }(std::make_index_sequence<M>{});
    }
    template <class F>
    void for_each_r(F&& f) {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (f.template operator()<M - 1 - I>(std::get<M - 1 - I>(elems_)), ...);
        }(std::make_index_sequence<M>{});
    }
    template <class F>
    void for_each_rc(F&& f) const {
        [&]<std::size_t... I>(std::index_sequence<I...>) {
            (f.template operator()<M - 1 - I>(std::get<M - 1 - I>(elems_)), ...);
        }(std::make_index_sequence<M>{});
    }

    elements elems_;
    mutable bool recompute_ = false;
};

}  // namespace detail

/// Composition of recipes in data-flow order (forward applies the first element first).
template <class... Rs>
struct Chain {
    static constexpr std::string_view name = "";
    template <class S, class T, class B>
    using bind = detail::ChainBijector<S, T, B, Rs...>;
};

}  // namespace bijou
