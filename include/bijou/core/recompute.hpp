// bijou/core/recompute.hpp — backward from the output alone (memory-saving training).
//
// Every bijector is invertible, so backward does not need its input stored: it can be rebuilt from
// the output (openai/glow's memory-saving gradients). With Options::memory_saving, composites
// (Chain, Stack, multi-scale levels) keep no intermediate activations in forward and run backward
// element by element from the last, each element first rebuilding its input from its output:
//
//   backward_from_output(e, z, dz, dld, x_rec, dx, n, ws, ld_tmp)
//       x_rec = f⁻¹(z) (assigned, n × in_size), dx = ∂L/∂x (assigned), parameter gradients +=,
//       for ∂L/∂z = dz and ∂L/∂log_det[i] = dld[i]. ld_tmp: n doubles of scratch (clobbered).
//
// A leaf bijector needs nothing new: its `inverse` leaves the workspace exactly as `forward` would
// (part of the Bijector contract), so inverse followed by backward is the rebuild. A composite
// provides a member backward_from_output that walks its elements; in memory-saving mode its
// elements then share one workspace region, so activation memory does not grow with depth.
// Cost: one extra inverse per element (about one extra forward pass in all).
#pragma once

#include <cstddef>
#include <vector>

#include "bijou/core/memory.hpp"
#include "bijou/core/workspace.hpp"

namespace bijou::detail {

template <class E, class T>
void backward_from_output(E& e, const T* z, const T* dz, const T* dld, T* x_rec, T* dx, int n, T* ws,
                          double* ld_tmp) {
    if constexpr (requires { e.backward_from_output(z, dz, dld, x_rec, dx, n, ws, ld_tmp); }) {
        e.backward_from_output(z, dz, dld, x_rec, dx, n, ws, ld_tmp);
    } else {
        e.inverse(z, x_rec, ld_tmp, n, ws);
        e.backward(x_rec, z, dz, dld, dx, n, ws);
    }
}

/// Backward of one element of a composite: from its stored input (store mode; the element's scratch
/// at `scratch`, core/workspace.hpp), or rebuilding the input into `in` from `out` first
/// (memory-saving mode, where the element's whole workspace is at ws; `in` is then written).
template <class E, class T>
void element_backward(E& e, bool recompute, T* in, const T* out, const T* gout, const T* dld, T* gin, int n, T* ws,
                      T* scratch, double* ld_tmp) {
    if (recompute) backward_from_output(e, out, gout, dld, in, gin, n, ws, ld_tmp);
    else detail::backward(e, in, out, gout, dld, gin, n, ws, scratch);
}

/// A composite's plain backward in memory-saving mode: rebuild into temporary buffers (this
/// allocates; Flow calls backward_from_output with its own buffers instead).
template <class E, class T>
void backward_with_temporaries(E& e, const T* z, const T* dz, const T* dld, T* dx, int n, T* ws) {
    Buffer<typename E::backend, T> x_rec(std::size_t(n) * E::in_shape::size);
    Buffer<typename E::backend, double> ld_tmp(static_cast<std::size_t>(n));
    e.backward_from_output(z, dz, dld, x_rec.data(), dx, n, ws, ld_tmp.data());
}

/// Switches a composite, and every composite inside it, to the memory-saving workspace layout (on)
/// or the stored-activations one (off). Flow evaluates (forward, inverse, log_prob, sample,
/// initialize) in the memory-saving layout, whose forward and inverse cost the same and need far
/// less arena, and trains in the one its Options chose. Workspace contents never outlive one call,
/// so the layout is not observable state (hence a const operation on a mutable flag).
template <class E>
void set_memory_saving(const E& e, bool on) {
    if constexpr (requires { e.set_memory_saving(on); }) e.set_memory_saving(on);
}

/// Does this bound bijector run in memory-saving mode? (Only composites have the switch.)
template <class E>
bool memory_saving(const E& e) {
    if constexpr (requires { e.memory_saving(); }) return e.memory_saving();
    else return false;
}

}  // namespace bijou::detail
