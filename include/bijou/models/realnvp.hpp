// bijou/models/realnvp.hpp — RealNVP for vectors (Dinh, Sohl-Dickstein & Bengio 2017).
//
// RealNVP<Shape<D>, Base = StandardNormal, T = float, Backend = Cpu> is
//     Flow<Shape<D>, Stack<AffineCoupling>, Base, T, Backend>
// i.e. Options::steps_per_level affine couplings (default 8) whose masks alternate, each with its own
// conditioner (Options::net: separate shift and tanh log-scale MLPs by default, hidden width
// Options::hidden, Options::hidden_layers layers). It is composition only: every piece is a
// public recipe, so a variant is one `using` away (e.g. Stack<Chain<ActNorm, AffineCoupling>>).
#pragma once

#include "bijou/bijectors/coupling.hpp"
#include "bijou/core/stack.hpp"
#include "bijou/models/flow.hpp"

namespace bijou {

template <VectorShape S, class Base = StandardNormal, Scalar T = float, Backend B = Cpu>
using RealNVP = Flow<S, Stack<AffineCoupling>, Base, T, B>;

}  // namespace bijou
