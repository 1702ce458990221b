// bijou/core/evaluation.hpp — whether the running call is an evaluation, which no backward follows.
//
// Flow's evaluation calls (forward, inverse, forward_stages, log_prob, sample, initialize) hold an
// EvaluationScope for their duration. Inside one, a bijector's forward or inverse may leave its
// workspace in a form that backward cannot read (the Cpu conditioner keeps its hidden activations in
// the GEMM's panel layout, nn/convnet.hpp); outside, every forward and inverse leaves what backward
// needs. Per thread (a scope on one thread says nothing about another's calls), nesting; read it on
// the thread that made the call, not inside a parallel region it starts.
#pragma once

namespace bijou::detail {

inline int& evaluation_depth() {
    thread_local int depth = 0;
    return depth;
}

/// Whether this thread is inside an EvaluationScope.
inline bool evaluating() { return evaluation_depth() > 0; }

class EvaluationScope {
public:
    EvaluationScope() { ++evaluation_depth(); }
    ~EvaluationScope() { --evaluation_depth(); }
    EvaluationScope(const EvaluationScope&) = delete;
    EvaluationScope& operator=(const EvaluationScope&) = delete;
};

}  // namespace bijou::detail
