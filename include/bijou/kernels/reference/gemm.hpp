// bijou/kernels/reference/gemm.hpp — plain-loop matrix products (the ground truth).
//
// Row-major. C (M×N) = beta·C + alpha·op(A)·op(B), op(A) is M×K, op(B) is K×N;
// op(X) = Xᵀ when the flag is set. Accumulates in double. O(M·N·K), serial.
#pragma once

#include <cstddef>

#include "bijou/core/backend.hpp"

namespace bijou::kernels {

template <class T>
void gemm(Reference, bool trans_a, bool trans_b, int M, int N, int K, T alpha, const T* A, int lda, const T* B,
          int ldb, T beta, T* C, int ldc) {
    for (int i = 0; i < M; ++i)
        for (int j = 0; j < N; ++j) {
            double acc = 0.0;
            for (int k = 0; k < K; ++k) {
                const T a = trans_a ? A[std::size_t(k) * lda + i] : A[std::size_t(i) * lda + k];
                const T b = trans_b ? B[std::size_t(j) * ldb + k] : B[std::size_t(k) * ldb + j];
                acc += double(a) * double(b);
            }
            T& c = C[std::size_t(i) * ldc + j];
            c = (beta == T(0) ? T(0) : beta * c) + T(alpha * acc);
        }
}

}  // namespace bijou::kernels
