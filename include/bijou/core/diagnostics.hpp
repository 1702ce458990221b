// bijou/core/diagnostics.hpp — compile-time errors that read well.
//
// Each diagnostic is a deliberately undefined class template whose name says what is wrong and
// whose arguments are the position and the shapes involved. Taking its sizeof fails with, e.g.,
//   invalid application of 'sizeof' to incomplete type
//   'bijou::chain_shape_mismatch_at<1, bijou::Shape<2>, bijou::Shape<3> >'
// and the offending element is then replaced by an inert placeholder so that no cascade of
// follow-up errors buries the first one.
#pragma once

#include <cstddef>
#include <type_traits>

#include "bijou/core/concepts.hpp"

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

template <int I, class R, class In>
consteval bool check_chain_element() {
    if constexpr (!BijectorRecipe<R>) {
        static_assert(BijectorRecipe<R>,
                      "bijou: a Chain element is not a bijector recipe; see "
                      "chain_element_is_not_a_bijector_recipe_at<position, type> below");
        (void)sizeof(chain_element_is_not_a_bijector_recipe_at<I, R>);
        return false;
    } else if constexpr (!input_shape_matches<R, In>()) {
        static_assert(input_shape_matches<R, In>(),
                      "bijou: a Chain element receives a shape other than the one it takes; see "
                      "chain_shape_mismatch_at<position, expected, got> below");
        (void)sizeof(chain_shape_mismatch_at<I, typename R::input_shape, In>);
        return false;
    } else if constexpr (!recipe_accepts<R, In>()) {
        static_assert(recipe_accepts<R, In>(),
                      "bijou: a Chain element cannot be bound to the shape it receives; see "
                      "chain_recipe_rejects_shape_at<position, recipe, shape> below");
        (void)sizeof(chain_recipe_rejects_shape_at<I, R, In>);
        return false;
    } else {
        return true;
    }
}

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
using checked_bind_t = typename std::conditional_t<check_chain_element<I, R, In>(), lazy_bind<R, In, T, B>,
                                                   lazy_invalid<In, T, B>>::type;

}  // namespace detail
}  // namespace bijou
