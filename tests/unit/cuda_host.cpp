// The Cuda backend's kernels run on the host: CudaHost (kernels/cuda/exec.hpp) executes the very code
// the device runs, serially, so every kernel's indexing, per-sample and per-channel reductions and
// im2col chunking are checked against Reference in every build, with or without nvcc or a GPU
// (tests/cuda/kernel_checks.hpp). Only the launches and cuBLAS itself are device-only; the row-major
// to column-major call mapping is checked here against a column-major product written out.
#include <doctest/doctest.h>

#include <vector>

#include <bijou/kernels/cuda/actnorm.hpp>
#include <bijou/kernels/cuda/conv2d.hpp>
#include <bijou/kernels/cuda/coupling.hpp>
#include <bijou/kernels/cuda/linear1x1.hpp>
#include <bijou/kernels/cuda/mlp.hpp>
#include <bijou/kernels/cuda/squeeze.hpp>

#include "cuda/kernel_checks.hpp"

namespace unit_cuda_host {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
using namespace bijou::test_cuda;
namespace cb = bijou::kernels::cuda_body;

namespace {
struct OnHost {
    using backend = CudaHost;
    template <class T>
    using vec = std::vector<T>;
    static void sync() {}
};
}  // namespace

TEST_CASE_TEMPLATE("cuda host: ActNorm kernels equal Reference", T, float, double) { check_actnorm<OnHost, T>(); }
TEST_CASE_TEMPLATE("cuda host: vector coupling kernels equal Reference", T, float, double) {
    check_vector_coupling<OnHost, T>();
}
TEST_CASE_TEMPLATE("cuda host: image coupling kernels equal Reference", T, float, double) {
    check_image_coupling<OnHost, T>();
}
TEST_CASE_TEMPLATE("cuda host: rational-quadratic spline kernels equal Reference", T, float, double) {
    check_spline<OnHost, T>();
}
TEST_CASE_TEMPLATE("cuda host: masked-MLP and autoregressive kernels equal Reference", T, float, double) {
    check_autoregressive_kernels<OnHost, T>();
}
TEST_CASE_TEMPLATE("cuda host: convolution (im2col, chunks, bias, ReLU) equals Reference", T, float, double) {
    check_conv2d<OnHost, T>();
}
TEST_CASE_TEMPLATE("cuda host: layout, 1x1 maps, permutations, MLP parts and Squeeze equal Reference", T, float,
                   double) {
    check_layers<OnHost, T>();
}

TEST_CASE("cuda host: the column-major call of a row-major product computes that product") {
    // cuBLAS's sgemm semantics, written out: C (m×n, column-major, ldc) = op(P)·op(Q).
    auto colmajor = [](bool tp, bool tq, int m, int n, int k, const double* P, int ldp, const double* Q, int ldq,
                       double* Cm, int ldc) {
        for (int j = 0; j < n; ++j)
            for (int i = 0; i < m; ++i) {
                double acc = 0.0;
                for (int l = 0; l < k; ++l) {
                    const double p = tp ? P[l + std::size_t(i) * ldp] : P[i + std::size_t(l) * ldp];
                    const double q = tq ? Q[j + std::size_t(l) * ldq] : Q[l + std::size_t(j) * ldq];
                    acc += p * q;
                }
                Cm[i + std::size_t(j) * ldc] = acc;
            }
    };
    Rng rng(6);
    const int M = 4, N = 5, K = 3, pad = 2;
    for (const bool ta : {false, true})
        for (const bool tb : {false, true}) {
            const int lda = (ta ? M : K) + pad, ldb = (tb ? K : N) + pad, ldc = N + pad;
            const auto A = randv<std::vector<double>>(std::size_t(ta ? K : M) * lda, rng);
            const auto B = randv<std::vector<double>>(std::size_t(tb ? N : K) * ldb, rng);
            std::vector<double> C0(std::size_t(M) * ldc, 0.0), C1(C0.size(), 0.0);
            kernels::gemm(Reference{}, ta, tb, M, N, K, 1.0, A.data(), lda, B.data(), ldb, 0.0, C0.data(), ldc);
            const auto g = cb::as_column_major(ta, tb, M, N, K, lda, ldb);
            colmajor(g.trans_first, g.trans_second, g.m, g.n, g.k, B.data(), g.ld_first, A.data(), g.ld_second,
                     C1.data(), ldc);
            CHECK(rel_diff(C1, C0) <= 1e-14);
        }
}

}  // namespace unit_cuda_host
