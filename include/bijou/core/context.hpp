// bijou/core/context.hpp — the context c of a conditional flow p(x | c), as bijectors see it.
//
// A conditional flow takes, beside each batch of n events x, a batch of n contexts c of a static
// vector shape Ctx = Shape<K> (a one-hot label, a feature vector, a simulator's parameters): row i of
// c conditions row i of x, and nothing else. A *conditional* bound bijector or base distribution
//   - declares `using context_shape = Ctx;` (unconditional ones declare nothing), and
//   - reads c through a ContextRef<T> it takes from the BuildContext at construction.
// The Flow that owns the model points the shared ContextSlot at the context batch (backend memory,
// n × K, sample-major) for the duration of each call, and at a gradient buffer dc (n × K) during
// training: every conditional element's backward ADDS its ∂L/∂c into dc. So composites (Chain, Stack,
// multi-scale levels) pass no context around and the unconditional contract is unchanged: a model
// without conditional elements never touches the slot and runs exactly as before.
// A conditional element called while no context is set, or with a context of another batch size,
// throws bijou::invalid_argument naming the element (never reads stray memory).
// Composites derive their context shape from their elements (context_shape_t); elements that expect
// different shapes are a compile error naming the position and both shapes (core/diagnostics.hpp).
#pragma once

#include <memory>
#include <string>
#include <tuple>
#include <type_traits>

#include "bijou/core/emits.hpp"
#include "bijou/core/error.hpp"
#include "bijou/core/shape.hpp"

namespace bijou {

/// Where a model's conditional elements find the current context batch (shared by all of them).
struct ContextSlot {
    const void* c = nullptr;  ///< n × K context values (backend memory), or null outside a call
    void* dc = nullptr;       ///< n × K gradient accumulator (backend memory), or null: no ∂L/∂c wanted
    int n = 0;                ///< rows of c (and of dc)
};

/// A conditional element's handle on the slot.
template <class T>
class ContextRef {
public:
    ContextRef() = default;
    explicit ContextRef(std::shared_ptr<ContextSlot> slot) : slot_(std::move(slot)) {}

    /// The n rows of context of the current call; throws if there is none or its batch differs.
    const T* values(int n, const char* who) const {
        if (!slot_ || slot_->c == nullptr)
            throw invalid_argument(std::string(who) + ": this element is conditional and was called without a context");
        if (slot_->n != n)
            throw invalid_argument(std::string(who) + ": the context has " + std::to_string(slot_->n) +
                                   " rows but the batch has " + std::to_string(n));
        return static_cast<const T*>(slot_->c);
    }
    /// Where backward adds ∂L/∂c (n × K), or null when the caller does not want it.
    T* grad() const { return slot_ ? static_cast<T*>(slot_->dc) : nullptr; }

private:
    std::shared_ptr<ContextSlot> slot_;
};

/// Sets the slot for one call and clears it afterwards (also when the call throws).
class ContextScope {
public:
    ContextScope(ContextSlot& slot, const void* c, void* dc, int n) : slot_(slot) {
        slot_.c = c, slot_.dc = dc, slot_.n = n;
    }
    ~ContextScope() { slot_.c = nullptr, slot_.dc = nullptr, slot_.n = 0; }
    ContextScope(const ContextScope&) = delete;
    ContextScope& operator=(const ContextScope&) = delete;

private:
    ContextSlot& slot_;
};

/// Base of an element that may be conditional: declares context_shape = Ctx and context_size = K
/// (Ctx = Shape<K>), or only context_size = 0 for Ctx = void.
template <class Ctx>
struct conditional_on {
    static_assert(VectorShape<Ctx>, "bijou: a context is a vector shape Shape<K> (e.g. Shape<10> for a one-hot label)");
    using context_shape = Ctx;
    static constexpr int context_size = Ctx::size;
};
template <>
struct conditional_on<void> {
    static constexpr int context_size = 0;
};

namespace detail {
template <class E>
struct context_shape_of {
    using type = void;
};
template <class E>
    requires requires { typename E::context_shape; }
struct context_shape_of<E> {
    using type = typename E::context_shape;
};
}  // namespace detail

/// The context shape of a bound bijector or distribution, or void when it is unconditional.
template <class E>
using context_shape_t = typename detail::context_shape_of<E>::type;

/// True for a bound bijector or distribution that reads a context.
template <class E>
inline constexpr bool is_conditional_v = !std::is_void_v<context_shape_t<E>>;

/// Elements `Position` of a composite expects context `Got` but the earlier elements expect `Expected`.
template <int Position, class Expected, class Got>
struct context_shape_mismatch_at;

/// A conditional element's context is not a vector shape Shape<K>.
template <class Ctx>
struct context_must_be_a_vector_shape;

namespace detail {

/// The context shape shared by A (so far) and B (the element at Position); void + void = void.
template <class A, class B>
inline constexpr bool context_compatible = std::is_void_v<A> || std::is_void_v<B> || std::is_same_v<A, B>;
template <class A, class B>
using context_join = std::conditional_t<std::is_void_v<A>, B, A>;

template <int Position, class Expected, class Got>
struct context_diagnostic {
    static void emit() {
        static_assert(std::is_same_v<Expected, Got>,
                      "bijou: the conditional elements of a model expect different context shapes; see "
                      "context_shape_mismatch_at<position, expected, got> below");
        (void)sizeof(context_shape_mismatch_at<Position, Expected, Got>);
    }
};

/// ok: element Position's context Got agrees with the context Expected of the elements before it;
/// reports context_shape_mismatch_at<Position, Expected, Got> once otherwise.
template <int Position, class Expected, class Got>
struct context_check {
    static constexpr bool ok = true;
};
template <int Position, class Expected, class Got>
    requires(!context_compatible<Expected, Got>)
struct context_check<Position, Expected, Got> {
    static constexpr bool ok = false;
    using reported = emits<&context_diagnostic<Position, Expected, Got>::emit>;
};

/// Folds the context shapes of elements Es... (positions 0, 1, …), checking that they agree.
template <int I, class Acc, class... Es>
struct common_context {
    using type = Acc;
};
template <int I, class Acc, class E, class... Es>
struct common_context<I, Acc, E, Es...> {
    static constexpr bool ok = context_check<I, Acc, context_shape_t<E>>::ok;
    using type = typename common_context<I + 1, std::conditional_t<ok, context_join<Acc, context_shape_t<E>>, Acc>,
                                         Es...>::type;
};

}  // namespace detail

/// The one context shape of elements Es... (void if none is conditional); a compile error naming the
/// position and both shapes if two disagree.
template <class... Es>
using common_context_t = typename detail::common_context<0, void, Es...>::type;

namespace detail {
template <class Tuple>
struct tuple_context;
template <class... Es>
struct tuple_context<std::tuple<Es...>> {
    using type = common_context_t<Es...>;
};
}  // namespace detail

/// common_context_t of the element types of a std::tuple.
template <class Tuple>
using tuple_context_t = typename detail::tuple_context<Tuple>::type;

}  // namespace bijou
