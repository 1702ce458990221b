// Unit tests of the Cpu GEMM (kernels/cpu/gemm.hpp) against Reference: every transpose combination,
// sizes that are not multiples of any tile (panel edges, several mc/kc/nc blocks), beta 0, 1 and
// other, and, where the build has them, each run-time-dispatched packed micro-kernel on its own.
#include <doctest/doctest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <type_traits>
#include <vector>

#include <bijou/kernels/cpu/gemm.hpp>
#include <bijou/kernels/cpu/mlp.hpp>
#include <bijou/kernels/reference/gemm.hpp>

namespace unit_gemm {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

struct GemmCase {
    bool ta, tb;
    int M, N, K;
};

// Deterministic operand values, the same in every test.
template <class T>
void fill_operands(std::vector<T>& A, std::vector<T>& B) {
    for (std::size_t i = 0; i < A.size(); ++i) A[i] = T(std::sin(0.37 * double(i) + 0.1));
    for (std::size_t i = 0; i < B.size(); ++i) B[i] = T(std::cos(0.71 * double(i) + 0.3));
}

// Runs f(C) against Reference's C = beta·C + alpha·op(A)·op(B) with ld's larger than the widths.
template <class T, class F>
void check_gemm(const GemmCase& g, T alpha, T beta, F&& f) {
    CAPTURE(g.ta); CAPTURE(g.tb); CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K); CAPTURE(beta);
    const int lda = (g.ta ? g.M : g.K) + 3, ldb = (g.tb ? g.K : g.N) + 5, ldc = g.N + 7;
    std::vector<T> A(std::size_t(g.ta ? g.K : g.M) * lda), B(std::size_t(g.tb ? g.N : g.K) * ldb);
    std::vector<T> C(std::size_t(g.M) * ldc);
    fill_operands(A, B);
    for (std::size_t i = 0; i < C.size(); ++i) C[i] = T(std::sin(1.3 * double(i)));
    std::vector<T> R = C;
    kernels::gemm(Reference{}, g.ta, g.tb, g.M, g.N, g.K, alpha, A.data(), lda, B.data(), ldb, beta, R.data(), ldc);
    f(A.data(), lda, B.data(), ldb, C.data(), ldc);
    double worst = 0.0;
    for (int i = 0; i < g.M; ++i)
        for (int j = 0; j < ldc; ++j) {
            const std::size_t at = std::size_t(i) * ldc + j;
            if (j >= g.N) REQUIRE(C[at] == R[at]);  // padding untouched
            else worst = std::max(worst, std::abs(double(C[at]) - double(R[at])));
        }
    CHECK(worst <= 1e-5 * std::sqrt(double(std::max(g.K, 1))) * (sizeof(T) == 4 ? 1.0 : 1e-6));
}

const GemmCase cases[] = {{false, false, 1, 1, 1},     {false, false, 13, 37, 5},   {true, false, 13, 37, 5},
                          {false, true, 13, 37, 5},    {true, true, 13, 37, 5},     {false, false, 100, 131, 300},
                          {true, false, 100, 131, 300}, {false, true, 100, 131, 300}, {true, true, 100, 131, 300},
                          {false, true, 36, 129, 700}, {true, false, 130, 70, 36},  {false, false, 4, 300, 260},
                          {true, false, 160, 70, 300},  // op(A) = Aᵀ read in place (AVX-512, M > mc)
                          {false, false, 20, 50, 70},   {true, false, 44, 40, 90}};  // ragged panels of 8 rows

}  // namespace

// Thin products (kernels/cpu/gemm_thin.hpp: C with at most 4 columns, at most 4 rows, or depth at most
// 4), as the vector flows' input and output layers make them, with ragged vector tails in every
// direction, each kernel with and without transposes, and ones whose stack copy would not fit (the
// general path then runs).
const GemmCase thin_cases[] = {{false, true, 512, 4, 128}, {false, true, 512, 128, 2},  {true, false, 4, 128, 512},
                               {false, false, 512, 128, 4}, {true, false, 128, 2, 512},  {false, false, 512, 2, 128},
                               {true, true, 37, 3, 41},     {false, true, 3, 37, 41},    {true, true, 3, 2, 4},
                               {true, false, 2500, 3, 7},   {false, true, 9, 3, 1500},   {true, false, 5, 4, 1100},
                               {true, true, 2, 2000, 3},    {false, false, 33, 1, 21},   {false, true, 7, 4, 1023},
                               {false, false, 3, 101, 50},  {true, false, 1, 77, 9},     {true, true, 40, 50, 3},
                               {false, true, 45, 1100, 4},  {true, false, 19, 70, 1},    {false, false, 2, 3, 1}};

TEST_CASE_TEMPLATE("gemm: thin products (a side of at most 4) equal Reference", T, float, double) {
    for (const auto& g : thin_cases)
        for (T beta : {T(0), T(1), T(0.5)})
            check_gemm<T>(g, T(0.75), beta, [&](const T* A, int lda, const T* B, int ldb, T* C, int ldc) {
                kernels::gemm(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, T(0.75), A, lda, B, ldb, beta, C, ldc);
            });
}

TEST_CASE_TEMPLATE("gemm: thin and packed products give the same bits on 1 and 2 threads", T, float, double) {
    const GemmCase shapes[] = {{false, true, 517, 4, 130}, {true, false, 515, 3, 200}, {true, false, 4, 300, 515},
                               {false, true, 600, 260, 3}, {false, false, 300, 200, 150}};
    for (const auto& g : shapes) {
        CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
        const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
        std::vector<T> A(std::size_t(g.ta ? g.K : g.M) * lda), B(std::size_t(g.tb ? g.N : g.K) * ldb);
        fill_operands(A, B);
        std::vector<T> C1(std::size_t(g.M) * g.N), C2(C1.size());
        const int saved = num_threads();
        set_num_threads(1);
        kernels::gemm(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, T(1), A.data(), lda, B.data(), ldb, T(0), C1.data(), g.N);
        set_num_threads(2);
        kernels::gemm(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, T(1), A.data(), lda, B.data(), ldb, T(0), C2.data(), g.N);
        set_num_threads(saved);
        CHECK(C1 == C2);
    }
}

TEST_CASE_TEMPLATE("gemm: an epilogue fused into the thin depth kernel equals the product, then the epilogue",
                   T, float, double) {
    // Depth K <= 4 (an MLP's input layer, its output layer's input gradient): row bias, column bias, ReLU
    // and mask alone and together, alpha 1 and 0.75, beta 0 and 1, on 1 and 2 threads; row 0 of A holds a
    // NaN. Built at -O2 (tests/CMakeLists.txt), as users build it: there GCC may contract the two code
    // paths' multiply-adds differently (measured: it does), so values agree to rounding, NaNs exactly.
    using kernels::detail::GemmEpilogue;
    // (515 × 256 splits its rows on 2 threads, 64 × 1024 and 48 × 1024 their columns.)
    for (const GemmCase& g : {GemmCase{false, false, 100, 131, 2}, GemmCase{true, false, 37, 70, 3},
                              GemmCase{false, true, 64, 50, 1}, GemmCase{false, true, 515, 256, 4},
                              GemmCase{false, false, 64, 1024, 4}, GemmCase{false, true, 48, 1024, 4}}) {
        CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
        REQUIRE(kernels::detail::gemm_thin_kind(g.tb, g.M, g.N, g.K) == kernels::detail::ThinKind::depth);
        const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N, ldc = g.N + 3;
        std::vector<T> A(std::size_t(g.ta ? g.K : g.M) * lda), B(std::size_t(g.tb ? g.N : g.K) * ldb);
        fill_operands(A, B);
        A[0] = std::numeric_limits<T>::quiet_NaN();
        std::vector<T> bias(std::size_t(g.M)), col_bias(std::size_t(g.N)), mask(std::size_t(g.M) * ldc);
        for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = T(std::sin(2.1 * double(i)));
        for (std::size_t j = 0; j < col_bias.size(); ++j) col_bias[j] = T(std::cos(1.3 * double(j)));
        for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = T(std::cos(0.9 * double(i)));
        const int saved = num_threads();
        for (int threads : {1, 2})
            for (int parts = 0; parts < 16; ++parts)
                for (const T alpha : {T(1), T(0.75)})
                    for (const T beta : {T(0), T(1)}) {
                        const GemmEpilogue<T> ep{.bias = parts & 1 ? bias.data() : nullptr,
                                                 .col_bias = parts & 8 ? col_bias.data() : nullptr,
                                                 .relu = (parts & 2) != 0,
                                                 .mask = parts & 4 ? mask.data() : nullptr,
                                                 .ldm = ldc};
                        CAPTURE(threads); CAPTURE(parts); CAPTURE(alpha); CAPTURE(beta);
                        std::vector<T> fused(std::size_t(g.M) * ldc, T(0.5)), after = fused;
                        set_num_threads(threads);
                        kernels::gemm_ep(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, alpha, A.data(), lda, B.data(), ldb, beta,
                                         fused.data(), ldc, ep);
                        kernels::gemm(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, alpha, A.data(), lda, B.data(), ldb, beta,
                                      after.data(), ldc);
                        set_num_threads(saved);
                        ep.apply(after.data(), ldc, 0, 0, g.M, g.N);
                        const double tol = std::is_same_v<T, float> ? 1e-5 : 1e-13;
                        std::size_t off = 0;
                        for (std::size_t q = 0; q < fused.size(); ++q) {
                            const double f = double(fused[q]), a = double(after[q]);
                            if (std::isnan(a) ? !std::isnan(f) : !(std::abs(f - a) <= tol * (1.0 + std::abs(a)))) ++off;
                        }
                        CHECK(off == 0);
                    }
    }
}

TEST_CASE_TEMPLATE("gemm: Cpu equals Reference for every transpose, edge sizes and beta", T, float, double) {
    for (const auto& g : cases)
        for (T beta : {T(0), T(1), T(0.5)})
            check_gemm<T>(g, T(0.75), beta, [&](const T* A, int lda, const T* B, int ldb, T* C, int ldc) {
                kernels::gemm(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, T(0.75), A, lda, B, ldb, beta, C, ldc);
            });
}

#if defined(BIJOU_SGEMM_SIMD)
TEST_CASE("gemm: each packed float micro-kernel the CPU supports equals Reference") {
    using namespace bijou::kernels::detail;
    auto each = [](auto kern, const char* name) {
        using Kern = decltype(kern);
        CAPTURE(name);
        for (const auto& g : cases)
            for (bool assign : {true, false})
                check_gemm<float>(g, 0.75f, assign ? 0.0f : 1.0f,
                                  [&](const float* A, int lda, const float* B, int ldb, float* C, int ldc) {
                                      sgemm_packed<Kern>(g.ta, g.tb, g.M, g.N, g.K, 0.75f, A, lda, B, ldb, C, ldc,
                                                         assign);
                                  });
    };
    if (sgemm_simd_level() >= 1) each(SgAvx2{}, "avx2");
    if (sgemm_simd_level() >= 2) each(SgAvx512{}, "avx512");
}

TEST_CASE("gemm: op(B) read in place (few rows of op(A)) gives the bits of packing it") {
    // sgemm_packed<SgAvx512> reads an untransposed op(B)'s full panels in place where op(A) has at
    // most b_direct_rows_max rows (the AVX2 kernel always packs it). C's rows are computed
    // independently, so the first M rows of a product with 100 more rows (op(B) packed) must match
    // bit for bit: ragged column panels, several depth blocks, op(A) in place or packed (Aᵀ), beta 0
    // and 1, an epilogue. (M's ragged row panels have 4 or 8 rows: the kernel's run<…, 4 or 8> then
    // stores as a full panel does; other ragged panels round alpha·sum + C in two steps.)
    using namespace bijou::kernels::detail;
    static_assert(SgAvx2::b_direct_rows_max == 0);
    if (sgemm_simd_level() < 2) return;
    for (const GemmCase& g : {GemmCase{false, false, 44, 300, 260}, GemmCase{false, false, 36, 512, 128},
                              GemmCase{true, false, 20, 100, 70}, GemmCase{false, false, 72, 45, 18},
                              GemmCase{true, false, 4, 64, 300}}) {
        CAPTURE(g.ta); CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
        const int big = g.M + 100, lda = g.ta ? big : g.K + 3, ldb = g.N + 5, ldc = g.N + 2;
        REQUIRE(big > SgAvx512::b_direct_rows_max);
        std::vector<float> A(std::size_t(g.ta ? g.K : big) * lda), B(std::size_t(g.K) * ldb);
        fill_operands(A, B);
        std::vector<float> bias(static_cast<std::size_t>(big));
        for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = float(std::sin(2.1 * double(i)));
        const GemmEpilogue<float> ep{.bias = bias.data(), .relu = true};
        for (bool assign : {true, false}) {
            CAPTURE(assign);
            std::vector<float> few(std::size_t(g.M) * ldc, 0.5f), many(std::size_t(big) * ldc, 0.5f);
            sgemm_packed<SgAvx512>(g.ta, false, g.M, g.N, g.K, 0.75f, A.data(), lda, B.data(), ldb, few.data(), ldc,
                                   assign, ep);
            sgemm_packed<SgAvx512>(g.ta, false, big, g.N, g.K, 0.75f, A.data(), lda, B.data(), ldb, many.data(),
                                   ldc, assign, ep);
            CHECK(std::memcmp(few.data(), many.data(), sizeof(float) * few.size()) == 0);
        }
    }
}

TEST_CASE("gemm: an epilogue fused into a micro-kernel gives the bits of the product, then the epilogue") {
    // Row bias, column bias, ReLU and the ReLU-backward mask, alone and together, on full and edge
    // tiles (the 4- and 8-row ragged panels fuse it too), one and several depth blocks, A's rows, its
    // columns (op(A) = Aᵀ) or a packed panel; row 0 of
    // A holds a NaN, which the ReLU passes and the mask zeroes.
    using namespace bijou::kernels::detail;
    auto each = [](auto kern, const char* name) {
        using Kern = decltype(kern);
        CAPTURE(name);
        for (const GemmCase& g : {GemmCase{false, false, 100, 131, 300}, GemmCase{true, false, 13, 37, 5},
                                  GemmCase{false, true, 36, 129, 18}, GemmCase{false, false, 12, 64, 128},
                                  GemmCase{true, false, 160, 70, 130},   // op(A) = Aᵀ read in place
                                  GemmCase{false, false, 128, 67, 70}}) {  // a ragged 8-row panel, fused
            CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
            const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N, ldc = g.N + 3;
            std::vector<float> A(std::size_t(g.ta ? g.K : g.M) * lda), B(std::size_t(g.tb ? g.N : g.K) * ldb);
            fill_operands(A, B);
            A[0] = std::nanf("");
            std::vector<float> bias(std::size_t(g.M)), col_bias(std::size_t(g.N)), mask(std::size_t(g.M) * ldc);
            for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = float(std::sin(2.1 * double(i)));
            for (std::size_t j = 0; j < col_bias.size(); ++j) col_bias[j] = float(std::cos(1.3 * double(j)));
            for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = float(std::cos(0.9 * double(i)));
            for (int parts = 1; parts < 16; ++parts)
                for (bool assign : {true, false}) {
                    const GemmEpilogue<float> ep{.bias = parts & 1 ? bias.data() : nullptr,
                                                 .col_bias = parts & 8 ? col_bias.data() : nullptr,
                                                 .relu = (parts & 2) != 0,
                                                 .mask = parts & 4 ? mask.data() : nullptr,
                                                 .ldm = ldc};
                    CAPTURE(parts); CAPTURE(assign);
                    std::vector<float> fused(std::size_t(g.M) * ldc, 0.5f), after = fused;
                    sgemm_packed<Kern>(g.ta, g.tb, g.M, g.N, g.K, 0.75f, A.data(), lda, B.data(), ldb, fused.data(),
                                       ldc, assign, ep);
                    sgemm_packed<Kern>(g.ta, g.tb, g.M, g.N, g.K, 0.75f, A.data(), lda, B.data(), ldb, after.data(),
                                       ldc, assign);
                    ep.apply(after.data(), ldc, 0, 0, g.M, g.N);
                    CHECK(std::memcmp(fused.data(), after.data(), sizeof(float) * fused.size()) == 0);
                }
        }
    };
    if (sgemm_simd_level() >= 1) each(SgAvx2{}, "avx2");
    if (sgemm_simd_level() >= 2) each(SgAvx512{}, "avx512");
}

TEST_CASE("gemm: op(A) packed once (sgemm_pack_a) gives the bits of packing it per product, on 1 and 2 threads") {
    // a_packed for each micro-kernel, and gemm_ep_a_packed (the dispatching entry, split by columns):
    // one and several row blocks (144) and depth blocks (256), ragged panels, op(B) transposed or not,
    // beta 0, 1 and 0.5, with an epilogue; shapes where sgemm reads op(A) in place need no packing (size 0).
    using namespace bijou::kernels::detail;
    const GemmCase shapes[] = {{true, false, 40, 70, 24},  {false, false, 20, 50, 40},  {true, true, 400, 90, 300},
                               {true, true, 150, 33, 50},  {true, false, 512, 256, 512}};
    for (const GemmCase& g : shapes) {
        CAPTURE(g.ta); CAPTURE(g.tb); CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
        const int lda = (g.ta ? g.M : g.K) + 1, ldb = (g.tb ? g.K : g.N) + 2, ldc = g.N + 3;
        std::vector<float> A(std::size_t(g.ta ? g.K : g.M) * lda), B(std::size_t(g.tb ? g.N : g.K) * ldb);
        fill_operands(A, B);
        std::vector<float> bias(std::size_t(g.M));
        for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = float(std::sin(2.1 * double(i)));
        const GemmEpilogue<float> ep{.bias = bias.data(), .relu = true};
        auto each = [&](auto kern, const char* name) {
            using Kern = decltype(kern);
            CAPTURE(name);
            std::vector<float> packed(sg_a_packed_size<Kern>(g.M, g.K), -1.0f);
            for (int b = 0; b < sg_pack_a_blocks(g.M, g.K); ++b)
                sg_pack_a_block_of<Kern>(g.ta, g.M, g.K, A.data(), lda, packed.data(), b);
            for (bool assign : {true, false}) {
                std::vector<float> want(std::size_t(g.M) * ldc, 0.5f), got = want;
                sgemm_packed<Kern>(g.ta, g.tb, g.M, g.N, g.K, 0.75f, A.data(), lda, B.data(), ldb, want.data(), ldc,
                                   assign, ep);
                sgemm_packed<Kern>(g.ta, g.tb, g.M, g.N, g.K, 0.75f, nullptr, 0, B.data(), ldb, got.data(), ldc, assign,
                                   ep, packed.data());
                CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
            }
        };
        if (sgemm_simd_level() >= 1) each(SgAvx2{}, "avx2");
        if (sgemm_simd_level() >= 2) each(SgAvx512{}, "avx512");
        // the dispatching entry, against gemm_ep, with the threads the test runs on and with one
        const std::size_t size = sgemm_a_packed_size(g.M, g.K);
        if (sgemm_simd_level() >= 2) CHECK(size > 0);  // the AVX-512 kernel packs each op(A) above
        if (size == 0) continue;
        std::vector<float> packed(size);
        sgemm_pack_a(g.ta, g.M, g.K, A.data(), lda, packed.data());
        for (float beta : {0.0f, 1.0f, 0.5f})
            for (int threads : {1, 2}) {
                CAPTURE(beta); CAPTURE(threads);
                const int saved = num_threads();
                set_num_threads(threads);
                std::vector<float> want(std::size_t(g.M) * ldc, 0.5f), got = want;
                kernels::gemm_ep(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, 0.75f, A.data(), lda, B.data(), ldb, beta,
                                 want.data(), ldc, ep);
                kernels::gemm_ep_a_packed(Cpu{}, packed.data(), g.tb, g.M, g.N, g.K, 0.75f, B.data(), ldb, beta,
                                          got.data(), ldc, ep);
                set_num_threads(saved);
                CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
            }
    }
    // packed whole wherever a SIMD kernel runs, also where it could read op(A) in place: rows padded
    // to the kernel's panels (12 rows for AVX-512, 6 for AVX2)
    if (sgemm_simd_level() >= 2) CHECK(sgemm_a_packed_size(100, 300) == std::size_t(108) * 300);
    if (sgemm_simd_level() == 1) CHECK(sgemm_a_packed_size(100, 300) == std::size_t(102) * 300);
    CHECK(sgemm_a_packed_size(0, 300) == 0);
}
#endif

#if defined(BIJOU_SGEMM_SIMD)
namespace {
/// A (rows × cols, row-major) in 32-column panels (kernels::detail::panel_column), padding columns = pad.
std::vector<float> paneled(const std::vector<float>& a, int rows, int cols, float pad = 0.0f) {
    using bijou::kernels::detail::panel_column, bijou::kernels::detail::panel_width;
    const std::size_t stride = std::size_t(panel_width) * rows;
    std::vector<float> p(stride * std::size_t((cols + panel_width - 1) / panel_width), pad);
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < cols; ++j) p[panel_column(j, stride) + std::size_t(r) * panel_width] = a[std::size_t(r) * cols + j];
    return p;
}
}  // namespace

TEST_CASE("gemm: op(B) and C in 32-column panels (gemm_panels) give the bits of the row-major product") {
    // The Cpu conditioner's hidden-plane layout: op(B) and/or C stored as panels of 32 columns
    // (panel_column), read and written in place, on 1 and 2 threads (split by columns in whole
    // panels, or by rows), with a bias + ReLU epilogue: the 1×1 layer's shape, the narrow last layer's
    // (36 and 144 rows), a first layer's, one row block and several, several depth blocks, ragged row
    // panels, a ragged last column panel (N = 80). op(B)'s padding columns hold NaN: they must reach
    // only C's padding, which stays as it was.
    using namespace bijou::kernels::detail;
    if (!sgemm_simd_available()) return;
    const GemmCase shapes[] = {{false, false, 128, 512, 128}, {false, false, 36, 512, 128}, {false, false, 144, 256, 256},
                               {false, false, 128, 96, 18},   {false, false, 300, 64, 300}, {false, false, 20, 80, 70}};
    for (const GemmCase& g : shapes) {
        CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
        const int lda = g.K + 3, panels = (g.N + panel_width - 1) / panel_width, padded = panels * panel_width;
        std::vector<float> A(std::size_t(g.M) * lda), B(std::size_t(g.K) * g.N);
        fill_operands(A, B);
        std::vector<float> bias(std::size_t(g.M));
        for (std::size_t i = 0; i < bias.size(); ++i) bias[i] = float(std::sin(2.1 * double(i)));
        const GemmEpilogue<float> ep{.bias = bias.data(), .relu = true};
        const std::size_t bps = std::size_t(panel_width) * g.K, cps = std::size_t(panel_width) * g.M;
        const std::vector<float> Bp = paneled(B, g.K, g.N, std::numeric_limits<float>::quiet_NaN());
        for (int threads : {1, 2}) {
            CAPTURE(threads);
            const int saved = num_threads();
            set_num_threads(threads);
            std::vector<float> want(std::size_t(g.M) * g.N);
            kernels::gemm_ep(Cpu{}, false, false, g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), g.N, 0.0f, want.data(),
                             g.N, ep);
            for (int layout = 1; layout <= 3; ++layout) {  // paneled op(B), C, both
                CAPTURE(layout);
                const bool pb = layout & 1, pc = layout & 2;
                std::vector<float> got(pc ? cps * panels : std::size_t(g.M) * g.N, -7.0f);
                kernels::gemm_panels(Cpu{}, false, false, g.M, g.N, g.K, A.data(), lda, pb ? Bp.data() : B.data(),
                                     pb ? panel_width : g.N, pb ? bps : 0, 0.0f, got.data(), pc ? panel_width : g.N,
                                     pc ? cps : 0, ep);
                bool same = true, padding_kept = true;
                for (int i = 0; i < g.M; ++i) {
                    for (int j = 0; j < g.N; ++j) {
                        const float v = got[pc ? panel_column(j, cps) + std::size_t(i) * panel_width : std::size_t(i) * g.N + j];
                        same = same && std::memcmp(&v, &want[std::size_t(i) * g.N + j], sizeof v) == 0;
                    }
                    for (int j = g.N; pc && j < padded; ++j)
                        padding_kept = padding_kept && got[panel_column(j, cps) + std::size_t(i) * panel_width] == -7.0f;
                }
                CHECK(same);
                CHECK(padding_kept);
            }
            set_num_threads(saved);
        }
        // each micro-kernel the CPU runs (the AVX2 kernel's 16-column panels lie two to a 32-column
        // one), op(B) and C in panels at once, beta 0 and 1
        auto each = [&](auto kern, const char* name) {
            using Kern = decltype(kern);
            CAPTURE(name);
            for (bool assign : {true, false}) {
                std::vector<float> want(std::size_t(g.M) * g.N, 0.5f), got(cps * panels, 0.5f);
                sgemm_packed<Kern>(false, false, g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), g.N, want.data(), g.N,
                                   assign, ep);
                sgemm_packed<Kern>(false, false, g.M, g.N, g.K, 1.0f, A.data(), lda, Bp.data(), panel_width, got.data(),
                                   panel_width, assign, ep, nullptr, SgPanels{bps, cps});
                bool same = true;
                for (int i = 0; i < g.M; ++i)
                    for (int j = 0; j < g.N; ++j)
                        same = same && got[panel_column(j, cps) + std::size_t(i) * panel_width] ==
                                           want[std::size_t(i) * g.N + j];
                CHECK(same);
            }
        };
        if (sgemm_simd_level() >= 1) each(SgAvx2{}, "avx2");
        if (sgemm_simd_level() >= 2) each(SgAvx512{}, "avx512");
    }
}

TEST_CASE("gemm: an untransposed op(A) in 32-column panels gives the bits of the row-major product") {
    // A conditioner's weight gradients over hidden gradients in panels: dW += dY·Xᵀ with dY (M × K) in
    // panels along K, its full row panels read in place (SgA::panel_rows, depth blocks from 64 on) and
    // its ragged last one, shallow depth blocks and the AVX2 kernel's panels packed from the panels
    // (sg_pack_a_panels): several depth blocks, a ragged last depth panel (K = 600, 70), ragged row
    // panels, X in panels too or row-major, beta 0 and 1, split by rows and columns on 2 threads.
    using namespace bijou::kernels::detail;
    if (!sgemm_simd_available()) return;
    for (const GemmCase& g : {GemmCase{false, true, 256, 256, 256}, GemmCase{false, true, 256, 54, 256},
                              GemmCase{false, true, 100, 70, 600}, GemmCase{false, false, 44, 96, 70},
                              GemmCase{false, true, 30, 40, 40}}) {
        CAPTURE(g.tb); CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
        const int ldb = g.tb ? g.K : g.N;
        std::vector<float> A(std::size_t(g.M) * g.K), B(std::size_t(g.tb ? g.N : g.K) * ldb);
        fill_operands(A, B);
        const std::size_t aps = std::size_t(panel_width) * g.M, bps = g.tb ? std::size_t(panel_width) * g.N : 0;
        const std::vector<float> Ap = paneled(A, g.M, g.K, -5.0f), Bp = g.tb ? paneled(B, g.N, g.K, -5.0f) : B;
        for (float beta : {0.0f, 1.0f}) {
            CAPTURE(beta);
            for (int threads : {1, 2}) {
                CAPTURE(threads);
                const int saved = num_threads();
                set_num_threads(threads);
                std::vector<float> want(std::size_t(g.M) * g.N, 0.25f), got = want, got_b = want;
                kernels::gemm_ep(Cpu{}, false, g.tb, g.M, g.N, g.K, 1.0f, A.data(), g.K, B.data(), ldb, beta,
                                 want.data(), g.N, {});
                kernels::gemm_panels(Cpu{}, false, g.tb, g.M, g.N, g.K, Ap.data(), panel_width, B.data(), ldb, 0, beta,
                                     got.data(), g.N, 0, {}, aps);
                CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
                if (g.tb) {  // and X in panels too, as ConvNet's 1×1 weight gradient
                    kernels::gemm_panels(Cpu{}, false, true, g.M, g.N, g.K, Ap.data(), panel_width, Bp.data(),
                                         panel_width, bps, beta, got_b.data(), g.N, 0, {}, aps);
                    CHECK(std::memcmp(want.data(), got_b.data(), sizeof(float) * want.size()) == 0);
                }
                set_num_threads(saved);
            }
        }
        auto each = [&](auto kern, const char* name) {  // each micro-kernel the CPU runs
            using Kern = decltype(kern);
            CAPTURE(name);
            std::vector<float> want(std::size_t(g.M) * g.N, 0.5f), got = want;
            sgemm_packed<Kern>(false, g.tb, g.M, g.N, g.K, 1.0f, A.data(), g.K, B.data(), ldb, want.data(), g.N, false);
            sgemm_packed<Kern>(false, g.tb, g.M, g.N, g.K, 1.0f, Ap.data(), panel_width, B.data(), ldb, got.data(), g.N,
                               false, {}, nullptr, SgPanels{0, 0, aps});
            CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
        };
        if (sgemm_simd_level() >= 1) each(SgAvx2{}, "avx2");
        if (sgemm_simd_level() >= 2) each(SgAvx512{}, "avx512");
    }
    std::vector<float> a(64), c(64);
    CHECK_THROWS_AS(kernels::gemm_panels(Cpu{}, true, false, 8, 8, 8, a.data(), 32, a.data(), 8, 0, 0.0f, c.data(), 8, 0,
                                         {}, 256),
                    std::logic_error);
}

TEST_CASE("gemm: op(B) = Bᵀ packed from B in panels, and a ReLU mask in panels, give the bits of the row-major product") {
    // A conditioner's backward over hidden planes in panels: the weight gradient dY·Xᵀ (beta 1) with X
    // (N × K) in panels along K (sg_pack_b_panels: 32 × 32 blocks; several depth blocks, N not a
    // multiple of the kernel's panel), and the data gradient Wᵀ·dY ⊙ [mask > 0] (beta 0) with the mask
    // in panels (rows and columns split across 2 threads, ragged row panels, prepared Wᵀ).
    using namespace bijou::kernels::detail;
    if (!sgemm_simd_available()) return;
    for (const GemmCase& g : {GemmCase{false, true, 256, 256, 512}, GemmCase{false, true, 108, 256, 256},
                              GemmCase{false, true, 20, 70, 96}, GemmCase{true, false, 256, 512, 108},
                              GemmCase{true, false, 130, 64, 40}}) {
        CAPTURE(g.ta); CAPTURE(g.M); CAPTURE(g.N); CAPTURE(g.K);
        const int lda = g.ta ? g.M : g.K, ldb = g.tb ? g.K : g.N;
        std::vector<float> A(std::size_t(g.ta ? g.K : g.M) * lda), B(std::size_t(g.tb ? g.N : g.K) * ldb);
        fill_operands(A, B);
        std::vector<float> mask(std::size_t(g.M) * g.N);
        for (std::size_t i = 0; i < mask.size(); ++i) mask[i] = float(std::sin(0.9 * double(i)));
        const std::vector<float> Bp = g.tb ? paneled(B, g.N, g.K) : B, maskp = paneled(mask, g.M, g.N);
        const std::size_t bps = g.tb ? std::size_t(panel_width) * g.N : 0, mps = std::size_t(panel_width) * g.M;
        const float beta = g.tb ? 1.0f : 0.0f;
        for (int threads : {1, 2}) {
            CAPTURE(threads);
            const int saved = num_threads();
            set_num_threads(threads);
            std::vector<float> want(std::size_t(g.M) * g.N, 0.25f), got = want;
            GemmEpilogue<float> ep, epp;
            if (!g.tb) ep = {.mask = mask.data(), .ldm = g.N}, epp = {.mask = maskp.data(), .ldm = panel_width, .mask_panels = mps};
            kernels::gemm_ep(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), ldb, beta, want.data(), g.N,
                             ep);
            kernels::gemm_panels(Cpu{}, g.ta, g.tb, g.M, g.N, g.K, A.data(), lda, Bp.data(), g.tb ? panel_width : ldb,
                                 bps, beta, got.data(), g.N, 0, epp);
            CHECK(std::memcmp(want.data(), got.data(), sizeof(float) * want.size()) == 0);
            if (threads == 1 && sgemm_simd_level() >= 1) {  // the AVX2 kernel (16-column panels) on its own
                std::vector<float> want2(want.size(), 0.25f), got2(want.size(), 0.25f);
                sgemm_packed<SgAvx2>(g.ta, g.tb, g.M, g.N, g.K, 1.0f, A.data(), lda, B.data(), ldb, want2.data(), g.N,
                                     beta == 0.0f, ep);
                sgemm_packed<SgAvx2>(g.ta, g.tb, g.M, g.N, g.K, 1.0f, A.data(), lda, Bp.data(),
                                     g.tb ? panel_width : ldb, got2.data(), g.N, beta == 0.0f, epp, nullptr,
                                     SgPanels{bps, 0});
                CHECK(std::memcmp(want2.data(), got2.data(), sizeof(float) * want2.size()) == 0);
            }
            if (g.ta && sgemm_a_packed_size(g.M, g.K) > 0) {  // prepared Wᵀ (gemm_ep_a_packed)
                std::vector<float> packed(sgemm_a_packed_size(g.M, g.K)), viap(want.size(), 0.25f);
                sgemm_pack_a(true, g.M, g.K, A.data(), lda, packed.data());
                kernels::gemm_ep_a_packed(Cpu{}, packed.data(), false, g.M, g.N, g.K, 1.0f, B.data(), ldb, 0.0f,
                                          viap.data(), g.N, epp);
                CHECK(std::memcmp(want.data(), viap.data(), sizeof(float) * want.size()) == 0);
            }
            set_num_threads(saved);
        }
    }
}

TEST_CASE("mlp thin layers: the one-pass loops equal the separate kernels, the same on 1 and 2 threads") {
    // kernels/cpu/mlp_thin.hpp against the products and bias sums they replace: thin side 1 to 4, wide side
    // 256 (whole tiles; 512 rows split across 2 threads), 100 and 7 (vector and scalar tails), 3 rows,
    // with and without the bias sums, each SIMD copy the CPU has; a NaN and zeros in the activations.
    // Weight and input-layer bias gradients bit for bit; the output layer's d = (g·W) ⊙ [a > 0] and the
    // sums of d to rounding (GCC may contract a different product of Σ_k g·W: mlp_thin.hpp); built at
    // -O2, as users build it.
    using namespace kernels::detail;
    auto filled = [](std::size_t size, double f) {
        std::vector<float> v(size);
        for (std::size_t i = 0; i < v.size(); ++i) v[i] = float(std::sin(f * double(i) + 0.2));
        return v;
    };
    auto same = [](const std::vector<float>& a, const std::vector<float>& b) {
        return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
    };
    auto close = [](const std::vector<float>& a, const std::vector<float>& b) {  // NaNs nowhere (the mask drops them)
        if (a.size() != b.size()) return false;
        for (std::size_t k = 0; k < a.size(); ++k)
            if (!(std::abs(double(a[k]) - double(b[k])) <= 1e-5 * (1.0 + std::abs(double(b[k]))))) return false;
        return true;
    };
    const int saved = num_threads();
    for (int thin = 1; thin <= 4; ++thin)
        for (int wide : {256, 100, 7})
            for (int n : {512, 3})
                for (bool sums : {true, false}) {
                    CAPTURE(thin); CAPTURE(wide); CAPTURE(n); CAPTURE(sums);
                    // input layer: g (n × wide), x (n × thin, row stride thin + 1), dW (wide × (thin + 2))
                    {
                        const int ldx = thin + 1, ldw = thin + 2;
                        const auto g = filled(std::size_t(n) * wide, 0.37), x = filled(std::size_t(n) * ldx, 0.71);
                        const auto dw0 = filled(std::size_t(wide) * ldw, 0.13), db0 = filled(std::size_t(wide), 0.29);
                        auto dw = dw0, db = db0;
                        kernels::gemm(Cpu{}, true, false, wide, thin, n, 1.f, g.data(), wide, x.data(), ldx, 1.f, dw.data(), ldw);
                        if (sums) kernels::mlp_bias_grad(Cpu{}, g.data(), db.data(), n, wide);
                        auto check = [&](auto&& run) {
                            auto w2 = dw0, b2 = db0;
                            run(w2.data(), sums ? b2.data() : nullptr);
                            CHECK(same(w2, dw));
                            CHECK(same(b2, db));
                        };
                        for (int threads : {1, 2}) {
                            set_num_threads(threads);
                            check([&](float* w, float* b) {
                                kernels::mlp_param_grads(Cpu{}, g.data(), x.data(), ldx, w, ldw, b, n, thin, wide);
                            });
                        }
                        set_num_threads(saved);
                        if (sgemm_simd_level() >= 1)
                            check([&](float* w, float* b) {
                            thin_in_param_grads_avx2(thin, g.data(), wide, x.data(), ldx, w, ldw, b, n, 0, wide);
                        });
                        if (sgemm_simd_level() >= 2)
                            check([&](float* w, float* b) {
                                thin_in_param_grads_avx512(thin, g.data(), wide, x.data(), ldx, w, ldw, b, n, 0, wide);
                            });
                    }
                    // output layer: g (n × thin), a (n × wide), W and dW (thin × (wide + 3)), d (n × wide)
                    {
                        const int ldw = wide + 3;
                        const auto g = filled(std::size_t(n) * thin, 0.53), w = filled(std::size_t(thin) * ldw, 0.61);
                        auto a = filled(std::size_t(n) * wide, 0.83);
                        a[1] = std::nanf("");
                        a[2] = 0.f;
                        const auto dw0 = filled(std::size_t(thin) * ldw, 0.19), db0 = filled(std::size_t(wide), 0.41);
                        auto dw = dw0, db = db0;
                        std::vector<float> d(std::size_t(n) * wide);
                        kernels::gemm(Cpu{}, true, false, thin, wide, n, 1.f, g.data(), thin, a.data(), wide, 1.f, dw.data(), ldw);
                        kernels::mlp_linear_input_grad_relu(Cpu{}, g.data(), w.data(), ldw, a.data(), d.data(), n, wide, thin);
                        if (sums) kernels::mlp_bias_grad(Cpu{}, d.data(), db.data(), n, wide);
                        auto check = [&](auto&& run) {
                            auto w2 = dw0, b2 = db0;
                            std::vector<float> d2(d.size(), -1.f);
                            run(w2.data(), d2.data(), sums ? b2.data() : nullptr);
                            CHECK(same(w2, dw));
                            CHECK(close(d2, d));
                            CHECK(close(b2, db));
                        };
                        for (int threads : {1, 2}) {
                            set_num_threads(threads);
                            check([&](float* v, float* dd, float* b) {
                                kernels::mlp_layer_backward(Cpu{}, g.data(), a.data(), w.data(), ldw, v, static_cast<float*>(nullptr), dd, b,
                                                            n, wide, thin);
                            });
                        }
                        set_num_threads(saved);
                        if (sgemm_simd_level() >= 1)
                            check([&](float* v, float* dd, float* b) {
                            thin_out_backward_avx2(thin, g.data(), a.data(), w.data(), ldw, v, dd, b, n, wide, 0, wide);
                        });
                        if (sgemm_simd_level() >= 2)
                            check([&](float* v, float* dd, float* b) {
                                thin_out_backward_avx512(thin, g.data(), a.data(), w.data(), ldw, v, dd, b, n, wide, 0,
                                                         wide);
                            });
                    }
                }
}
#endif

}  // namespace unit_gemm
