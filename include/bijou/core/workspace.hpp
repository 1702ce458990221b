// bijou/core/workspace.hpp — a bijector's workspace in two parts: what forward keeps for backward, and
// scratch that several bijectors may share.
//
// workspace_size(n) is all the scratch a bound bijector needs for one forward + backward
// (core/concepts.hpp). A bijector may declare that the last scratch_size(n) scalars of it are
// *scratch*: space that no call reads from an earlier call (im2col buffers, backward's gradient
// buffers), so that any other code may overwrite it between calls. It then takes that part as a
// separate pointer too:
//     forward(x, z, ld, n, ws, scratch)             inverse(z, x, ld, n, ws, scratch)
//     backward(x, z, dz, dld, dx, n, ws, scratch)   initialize(x, n, ws, scratch)  (if DataInitialized)
// with ws holding kept_size(n) = workspace_size(n) − scratch_size(n) scalars (the activations forward
// leaves for backward), scratch scratch_size(n); its plain forms use scratch = ws + kept_size(n).
// Composites (Chain, Stack, MultiScale) in the stored-activation layout place their elements' kept
// parts side by side and give all of them ONE scratch region, the largest any element needs: a
// Glow's couplings then share one set of backward buffers instead of holding one each (config a:
// arena 731 → 235 MB). In the memory-saving layout a composite's elements already share their whole
// workspace, and the composite declares no scratch.
// The helpers below call either form (scratch null: the plain one), so composites treat every
// element alike. The conformance suite checks the promise: backward is unchanged when the scratch is
// overwritten with NaN between forward and backward.
#pragma once

#include <cstddef>

namespace bijou::detail {

/// Does this bound bijector split its workspace (and take the scratch as a separate pointer)?
template <class E>
concept SplitWorkspace = requires(const E& e, int n) {
    { e.scratch_size(n) };
};

template <class E>
std::size_t scratch_size(const E& e, int n) {
    if constexpr (SplitWorkspace<E>) return e.scratch_size(n);
    else return 0;
}
template <class E>
std::size_t kept_size(const E& e, int n) {
    return e.workspace_size(n) - scratch_size(e, n);
}

// Calls on an element whose kept part is at ws and whose scratch is at `scratch` (null: the element's
// whole workspace is at ws).
template <class E, class T>
void forward(const E& e, const T* x, T* z, double* ld, int n, T* ws, T* scratch) {
    if constexpr (SplitWorkspace<E>)
        if (scratch != nullptr) return e.forward(x, z, ld, n, ws, scratch);
    e.forward(x, z, ld, n, ws);
}
template <class E, class T>
void inverse(const E& e, const T* z, T* x, double* ld, int n, T* ws, T* scratch) {
    if constexpr (SplitWorkspace<E>)
        if (scratch != nullptr) return e.inverse(z, x, ld, n, ws, scratch);
    e.inverse(z, x, ld, n, ws);
}
template <class E, class T>
void backward(E& e, const T* x, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws, T* scratch) {
    if constexpr (SplitWorkspace<E>)
        if (scratch != nullptr) return e.backward(x, z, dz, dld, dx, n, ws, scratch);
    e.backward(x, z, dz, dld, dx, n, ws);
}
template <class E, class T>
void initialize(E& e, const T* x, int n, T* ws, T* scratch) {
    if constexpr (SplitWorkspace<E>)
        if (scratch != nullptr) return e.initialize(x, n, ws, scratch);
    e.initialize(x, n, ws);
}

}  // namespace bijou::detail
