// tests/compile_fail/test_recipes.hpp — test-local recipes for the compile-fail pairs.
//
// Only shapes matter to these tests, so the bound bijector does nothing: Bound<In, Out> maps In to
// Out with no parameters. Each pair's _ok.cpp and _ko.cpp differ in one line: the one the
// diagnostic is about.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <bijou/bijou.hpp>

namespace cf {

template <class In, class Out, class T, class B>
struct Bound {
    using in_shape = In;
    using out_shape = Out;
    using scalar = T;
    using backend = B;
    explicit Bound(bijou::BuildContext&) {}
    void declare(bijou::ParamSet<T>&, const std::string&) {}
    void reset_parameters(bijou::Rng&) {}
    std::size_t workspace_size(int) const { return 0; }
    void forward(const T*, T*, double*, int, T*) const {}
    void inverse(const T*, T*, double*, int, T*) const {}
    void backward(const T*, const T*, const T*, const T*, T*, int, T*) {}
};
static_assert(bijou::Bijector<Bound<bijou::Shape<2>, bijou::Shape<2>, float, bijou::Cpu>>);

/// Only takes Shape<3> (declares `input_shape`).
struct Fixed3 {
    static constexpr std::string_view name = "fixed3";
    using input_shape = bijou::Shape<3>;
    template <class S, class T, class B>
    using bind = Bound<S, S, T, B>;
};

/// Takes any shape with an even number of values (declares `accepts`).
struct EvenOnly {
    static constexpr std::string_view name = "even_only";
    template <class S>
    static constexpr bool accepts = S::size % 2 == 0;
    template <class S, class T, class B>
    using bind = Bound<S, S, T, B>;
};

/// Maps any shape to Shape<N>.
template <int N>
struct ToSize {
    static constexpr std::string_view name = "to_size";
    template <class S, class T, class B>
    using bind = Bound<S, bijou::Shape<N>, T, B>;
};

}  // namespace cf
