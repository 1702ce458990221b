// bijou/core/chain.hpp — composition in data-flow order.
//
// Chain<A, B, C>::forward applies A, then B, then C (x → z, the way data moves; nflows / Glow
// convention; TFP's Chain lists bijectors the other way round). inverse applies C⁻¹, B⁻¹, A⁻¹.
// log|det| adds up. Each element is bound to the shape the previous one produces; a mismatch is a
// compile error naming the position and both shapes (core/diagnostics.hpp).
// State_dict names: an element's key is its recipe name when that name is unique in the chain,
// else "<position>.<name>" (Chain itself has an empty name and adds no key of its own).
// Workspace: every intermediate output, every element's workspace and two gradient buffers, so
// backward can run after forward without recomputation. Cost: the sum of the elements' costs.
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <string>
#include <tuple>
#include <utility>

#include "bijou/core/concepts.hpp"
#include "bijou/core/diagnostics.hpp"

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
class ChainBijector {
    static_assert(sizeof...(Rs) > 0, "bijou: Chain<> needs at least one element");
    using bound = bind_all<0, S, T, B, Rs...>;
    using elements = typename bound::type;
    static constexpr std::size_t M = sizeof...(Rs);

public:
    using in_shape = S;
    using out_shape = typename bound::out_shape;
    using scalar = T;
    using backend = B;

    explicit ChainBijector(BuildContext& ctx) : elems_(make(ctx, std::make_index_sequence<M>{})) {}

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
        std::size_t total = 2 * std::size_t(n) * max_size();
        for_each_c([&]<std::size_t I>(const auto& e) {
            total += e.workspace_size(n);
            if (I + 1 < M) total += std::size_t(n) * size_at<I>();
        });
        return total;
    }

    void forward(const T* x, T* z, double* ld, int n, T* ws) const {
        Layout L = layout(n, ws);
        for_each_c([&]<std::size_t I>(const auto& e) {
            const T* in = I == 0 ? x : L.act[I - 1];
            T* out = I + 1 == M ? z : L.act[I];
            e.forward(in, out, ld, n, L.ws[I]);
        });
    }

    void inverse(const T* z, T* x, double* ld, int n, T* ws) const {
        Layout L = layout(n, ws);
        for_each_rc([&]<std::size_t I>(const auto& e) {
            const T* in = I + 1 == M ? z : L.act[I];
            T* out = I == 0 ? x : L.act[I - 1];
            e.inverse(in, out, ld, n, L.ws[I]);
        });
    }

    void backward(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
        Layout L = layout(n, ws);
        T* g[2] = {L.grad[0], L.grad[1]};
        for_each_r([&]<std::size_t I>(auto& e) {
            const T* in = I == 0 ? x : L.act[I - 1];
            const T* out = I + 1 == M ? z : L.act[I];
            const T* gout = I + 1 == M ? dz : g[(I + 1) % 2];
            T* gin = I == 0 ? dx : g[I % 2];
            e.backward(in, out, gout, dld, gin, n, L.ws[I]);
        });
    }

    void initialize(const T* x, int n, T* ws) {
        Layout L = layout(n, ws);
        std::vector<double> ld(std::size_t(n), 0.0);  // initialisation is not a training step
        for_each([&]<std::size_t I>(auto& e) {
            const T* in = I == 0 ? x : L.act[I - 1];
            if constexpr (DataInitialized<std::remove_cvref_t<decltype(e)>>) e.initialize(in, n, L.ws[I]);
            if (I + 1 < M) e.forward(in, L.act[I], ld.data(), n, L.ws[I]);
        });
    }

    /// Calls emit(const T* out) after each element's forward (for plots of intermediate stages).
    template <class F>
    void forward_stages(const T* x, T* z, double* ld, int n, T* ws, F&& emit) const {
        Layout L = layout(n, ws);
        for_each_c([&]<std::size_t I>(const auto& e) {
            const T* in = I == 0 ? x : L.act[I - 1];
            T* out = I + 1 == M ? z : L.act[I];
            e.forward(in, out, ld, n, L.ws[I]);
            emit(const_cast<const T*>(out), int(std::remove_cvref_t<decltype(e)>::out_shape::size));
        });
    }

    template <std::size_t I>
    auto& element() { return std::get<I>(elems_); }
    template <std::size_t I>
    const auto& element() const { return std::get<I>(elems_); }
    static constexpr std::size_t length = M;

private:
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
        std::array<T*, M> ws{};
        T* grad[2]{};
    };
    Layout layout(int n, T* ws) const {
        Layout L;
        T* p = ws;
        const std::size_t nn = std::size_t(n);
        L.grad[0] = p, p += nn * max_size();
        L.grad[1] = p, p += nn * max_size();
        for_each_c([&]<std::size_t I>(const auto& e) {
            if (I + 1 < M) L.act[I] = p, p += nn * size_at<I>();
            L.ws[I] = p, p += e.workspace_size(n);
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
