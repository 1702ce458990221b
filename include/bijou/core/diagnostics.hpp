// bijou/core/diagnostics.hpp — compile-time errors that read well.
//
// Each diagnostic is a deliberately undefined class template whose name says what is wrong and
// whose arguments are the position and the shapes involved. Taking its sizeof fails with, e.g.,
//   invalid application of 'sizeof' to incomplete type
//   'bijou::chain_shape_mismatch_at<1, bijou::Shape<3>, bijou::Shape<2> >'
// right after a static_assert that says the same in a sentence, and the offending element is
// replaced by an inert placeholder so that no cascade of follow-up errors buries the first one:
// a violation costs exactly two errors, with GCC and with Clang.
//
// How the cascade is avoided. Whether an element is valid is computed by a pure function that
// never fails (chain_element_status); the failing static_assert and sizeof live in the body of a
// separate function (`emit`), which the failing check odr-uses by naming it in a template
// argument. A function body is instantiated on its own (at the end of the translation unit), so
// its errors poison nothing: neither a consteval call (GCC: "called in a constant expression",
// once per use) nor the enclosing class (Clang marks a class whose static_assert fails as invalid,
// and every type computed from it becomes `int`).
#pragma once

#include <cstddef>
#include <string>
#include <type_traits>

#include "bijou/core/concepts.hpp"
#include "bijou/core/emits.hpp"

namespace bijou {

/// Element `Position` of a Chain only takes `Expected` but the previous element produces `Got`.
template <int Position, class Expected, class Got>
struct chain_shape_mismatch_at;

/// Element `Position` of a Chain (recipe `Recipe`) cannot be bound to the shape `Got` it receives.
template <int Position, class Recipe, class Got>
struct chain_recipe_rejects_shape_at;

/// Element `Position` of a Chain is not a bijector recipe (no `name` / `bind<Shape, T, Backend>`).
template <int Position, class NotARecipe>
struct chain_element_is_not_a_bijector_recipe_at;

/// The Step of a Stack/Repeat must map a shape to itself; this one maps `In` to `Out`.
template <class Step, class In, class Out>
struct stack_step_changes_shape;

namespace detail {

/// Stand-in for an element that failed its compile-time check: identity, no parameters.
template <class S, class T, class B>
struct invalid_bijector {
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    explicit invalid_bijector(BuildContext&) {}
    void declare(ParamSet<T>&, const std::string&) {}
    void reset_parameters(Rng&) {}
    std::size_t workspace_size(int) const { return 0; }
    void forward(const T*, T*, double*, int, T*) const {}
    void inverse(const T*, T*, double*, int, T*) const {}
    void backward(const T*, const T*, const T*, const T*, T*, int, T*) {}
};

template <class R, class In>
consteval bool input_shape_matches() {
    if constexpr (has_input_shape<R>) return std::is_same_v<typename R::input_shape, In>;
    else return true;
}
template <class R, class In>
consteval bool recipe_accepts() {
    if constexpr (has_accepts<R>) return R::template accepts<In>;
    else return true;
}

/// What is wrong with a Chain element, if anything. Pure: evaluating it never fails.
enum class element_status { ok, not_a_recipe, shape_mismatch, rejects_shape };

template <class R, class In>
consteval element_status chain_element_status() {
    if constexpr (!BijectorRecipe<R>) return element_status::not_a_recipe;
    else if constexpr (!input_shape_matches<R, In>()) return element_status::shape_mismatch;
    else if constexpr (!recipe_accepts<R, In>()) return element_status::rejects_shape;
    else return element_status::ok;
}

/// emit() states one violation: a sentence, then the named undefined template (two errors).
template <int I, class R, class In, element_status>
struct chain_element_diagnostic;
template <int I, class R, class In>
struct chain_element_diagnostic<I, R, In, element_status::not_a_recipe> {
    static void emit() {
        static_assert(BijectorRecipe<R>,
                      "bijou: a Chain element is not a bijector recipe; see "
                      "chain_element_is_not_a_bijector_recipe_at<position, type> below");
        (void)sizeof(chain_element_is_not_a_bijector_recipe_at<I, R>);
    }
};
template <int I, class R, class In>
struct chain_element_diagnostic<I, R, In, element_status::shape_mismatch> {
    static void emit() {
        static_assert(std::is_same_v<typename R::input_shape, In>,
                      "bijou: a Chain element receives a shape other than the one it takes; see "
                      "chain_shape_mismatch_at<position, expected, got> below");
        (void)sizeof(chain_shape_mismatch_at<I, typename R::input_shape, In>);
    }
};
template <int I, class R, class In>
struct chain_element_diagnostic<I, R, In, element_status::rejects_shape> {
    static void emit() {
        static_assert(R::template accepts<In>,
                      "bijou: a Chain element cannot be bound to the shape it receives; see "
                      "chain_recipe_rejects_shape_at<position, recipe, shape> below");
        (void)sizeof(chain_recipe_rejects_shape_at<I, R, In>);
    }
};

/// ok: element I (recipe R, receiving shape In) is valid. Instantiating a failing check reports
/// the violation once; `ok` stays a usable constant either way.
template <int I, class R, class In, element_status Status = chain_element_status<R, In>()>
struct chain_element_check {
    static constexpr bool ok = true;
};
template <int I, class R, class In, element_status Status>
    requires(Status != element_status::ok)
struct chain_element_check<I, R, In, Status> {
    static constexpr bool ok = false;
    using reported = emits<&chain_element_diagnostic<I, R, In, Status>::emit>;
};

/// True when element I (recipe R, receiving In) is valid; reports the violation once otherwise.
template <int I, class R, class In>
consteval bool check_chain_element() {
    return chain_element_check<I, R, In>::ok;
}

/// ok: the Step of a Stack/Repeat maps In to itself (Out is its bound out_shape). Reports
/// stack_step_changes_shape<Step, In, Out> once otherwise, like chain_element_check.
template <class Step, class In, class Out>
struct stack_step_check {
    static constexpr bool ok = true;
};
template <class Step, class In, class Out>
struct stack_step_diagnostic {
    static void emit() {
        static_assert(std::is_same_v<In, Out>,
                      "bijou: the Step of a Stack/Repeat must keep its shape; see "
                      "stack_step_changes_shape<step, in, out> below");
        (void)sizeof(stack_step_changes_shape<Step, In, Out>);
    }
};
template <class Step, class In, class Out>
    requires(!std::is_same_v<In, Out>)
struct stack_step_check<Step, In, Out> {
    static constexpr bool ok = false;
    using reported = emits<&stack_step_diagnostic<Step, In, Out>::emit>;
};

template <class R, class In, class T, class B>
struct lazy_bind {
    using type = typename R::template bind<In, T, B>;
};
template <class In, class T, class B>
struct lazy_invalid {
    using type = invalid_bijector<In, T, B>;
};

/// The checked bound type of the element at position I.
template <int I, class R, class In, class T, class B>
using checked_bind_t = typename std::conditional_t<chain_element_check<I, R, In>::ok, lazy_bind<R, In, T, B>,
                                                   lazy_invalid<In, T, B>>::type;

}  // namespace detail
}  // namespace bijou
