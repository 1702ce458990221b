// Unit tests of the convolution layer (nn/conv2d.hpp), Glow's conditioner net (nn/convnet.hpp) and
// the channel-major layout helpers: values computed by hand, Cpu against Reference over kernel
// sizes, odd image sizes and im2col chunk sizes, gradients against central differences in double.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include <bijou/bijou.hpp>
#include <bijou/nn/conv2d.hpp>
#include <bijou/nn/convnet.hpp>

namespace unit_conv2d {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

template <class T>
struct Tol;
template <>
struct Tol<float> {
    static constexpr double backend = 2e-5;
};
template <>
struct Tol<double> {
    static constexpr double backend = 1e-12;
    static constexpr double fd = 1e-7;  // central differences, step 1e-5
};

/// max |a − b| / max(max |b|, 1), with the first differing value in the failure message.
template <class A, class B>
double rel_diff(const A& a, const B& b) {
    REQUIRE(a.size() == b.size());
    double d = 0.0, s = 1.0;
    std::size_t at = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double e = std::abs(double(a[i]) - double(b[i]));
        if (e > d || std::isnan(e)) d = e, at = i;
        s = std::max(s, std::abs(double(b[i])));
    }
    INFO("largest difference at [" << at << "]: " << (a.empty() ? 0.0 : double(a[at])) << " vs "
                                   << (b.empty() ? 0.0 : double(b[at])));
    CHECK(!std::isnan(d));
    return d / s;
}

template <class T>
std::vector<T> random_vector(std::size_t n, Rng& rng, double sd = 1.0) {
    std::vector<T> v(n);
    for (auto& x : v) x = T(sd * rng.normal());
    return v;
}

/// A layer (Conv2d or ConvNet) with its own ParamSet, random parameters.
template <class Layer, class T>
struct Owned {
    Layer layer;
    ParamSet<T> ps;
    template <class... A>
    explicit Owned(std::uint64_t seed, bool zero_last, A... args) : layer(args...) {
        layer.declare(ps, "net");
        ps.allocate();
        Rng rng(seed);
        layer.reset_parameters(rng, zero_last);
    }
    template <class Other>
    void copy_from(const Other& o) {
        REQUIRE(o.ps.values().size() == ps.values().size());
        for (std::size_t k = 0; k < ps.values().size(); ++k) ps.values()[k] = T(o.ps.values()[k]);
    }
};

}  // namespace

// ---- Conv2d -----------------------------------------------------------------------------------------------

TEST_CASE("conv2d: constructor checks its arguments") {
    CHECK_THROWS_WITH_AS((Conv2d<float, Cpu>{2, 3, 5, 4, 4}), doctest::Contains("Conv2d: the kernel size must be 1 or 3 (got 5)"),
                         invalid_argument);
    CHECK_THROWS_WITH_AS((Conv2d<float, Cpu>{0, 3, 3, 4, 4}), doctest::Contains("number of input channels must be at least 1"),
                         invalid_argument);
    CHECK_THROWS_WITH_AS((Conv2d<float, Cpu>{1, 3, 3, 4, 0}), doctest::Contains("bijou: Conv2d: the width must be at least 1 (got 0)"),
                         error);
    CHECK_THROWS_WITH_AS((ConvNet<float, Cpu>{2, 0, 4, 4, 4}), doctest::Contains("ConvNet: the hidden width must be at least 1"),
                         invalid_argument);
    Conv2d<double, Cpu> c(2, 5, 3, 4, 6);
    CHECK(c.in() == 2);
    CHECK(c.out() == 5);
    CHECK(c.kernel() == 3);
}

TEST_CASE_TEMPLATE("conv2d: a 3x3 convolution computed by hand (cross-correlation, zero padding, channel-major)", B,
                   Reference, Cpu) {
    // 1 input channel, 2 output channels, two 3×3 images: x and 10·x.
    Owned<Conv2d<double, B>, double> c(1, true, 1, 2, 3, 3, 3);
    // output channel 0: w = [[1, 2, 0], [0, 0, 0], [0, 0, −1]], b = 0.5
    //   y(r, s) = x(r−1, s−1) + 2·x(r−1, s) − x(r+1, s+1) + 0.5
    // output channel 1: w = 0, b = −1
    const std::vector<double> w = {1, 2, 0, 0, 0, 0, 0, 0, -1, 0, 0, 0, 0, 0, 0, 0, 0, 0};
    std::copy(w.begin(), w.end(), c.layer.weight().value);
    c.layer.bias().value[0] = 0.5;
    c.layer.bias().value[1] = -1.0;
    REQUIRE(c.ps.find("net.weight")->shape == std::vector<std::size_t>{2, 1, 3, 3});
    REQUIRE(c.ps.find("net.bias")->shape == std::vector<std::size_t>{2});
    std::vector<double> x = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 20, 30, 40, 50, 60, 70, 80, 90};  // (1, 2·9)
    std::vector<double> y(2 * 18), scratch(c.layer.scratch_size(2));
    c.layer.forward(x.data(), y.data(), 2, scratch.data());
    // sample 0 (x = 1…9 row-major), before the bias 0.5:
    //   (0,0) −x(1,1) = −5     (0,1) −x(1,2) = −6            (0,2) −x(1,3) = 0 (padding)
    //   (1,0) 2·1 − 8 = −6     (1,1) 1 + 2·2 − 9 = −4         (1,2) 2 + 2·3 − 0 = 8
    //   (2,0) 0 + 2·4 = 8      (2,1) 4 + 2·5 = 14             (2,2) 5 + 2·6 = 17
    const std::vector<double> y0 = {-4.5, -5.5, 0.5, -5.5, -3.5, 8.5, 8.5, 14.5, 17.5};
    for (int p = 0; p < 9; ++p) {
        CAPTURE(p);
        CHECK(y[std::size_t(p)] == doctest::Approx(y0[std::size_t(p)]).epsilon(1e-14));
        CHECK(y[std::size_t(9 + p)] == doctest::Approx(10.0 * (y0[std::size_t(p)] - 0.5) + 0.5).epsilon(1e-14));
        CHECK(y[std::size_t(18 + p)] == -1.0);
        CHECK(y[std::size_t(27 + p)] == -1.0);
    }
    c.layer.forward(x.data(), y.data(), 2, scratch.data(), /*relu=*/true);  // max(·, 0) after the bias
    for (int p = 0; p < 9; ++p) {
        CAPTURE(p);
        CHECK(y[std::size_t(p)] == doctest::Approx(std::max(y0[std::size_t(p)], 0.0)).epsilon(1e-14));
        CHECK(y[std::size_t(18 + p)] == 0.0);
    }
}

namespace {

template <class T, class B>
void conv_against_reference(int in, int out, int k, int H, int W, int n, int max_chunk) {
    CAPTURE(in); CAPTURE(out); CAPTURE(k); CAPTURE(H); CAPTURE(W); CAPTURE(n); CAPTURE(max_chunk);
    Owned<Conv2d<T, Reference>, T> ref(3, false, in, out, k, H, W);
    Owned<Conv2d<T, B>, T> fast(99, false, in, out, k, H, W);
    fast.layer.set_max_chunk(max_chunk);
    Rng rng(5);
    for (auto& v : ref.ps.values()) v += T(0.2 * rng.normal());
    fast.copy_from(ref);
    const std::size_t nx = std::size_t(in) * n * H * W, ny = std::size_t(out) * n * H * W;
    const auto x = random_vector<T>(nx, rng), dy = random_vector<T>(ny, rng);
    std::vector<T> y1(ny), y2(ny), dx1(nx), dx2(nx);
    // sentinels after the scratch: neither pass may write past scratch_size
    const std::size_t ss = fast.layer.scratch_size(n);
    if (k == 1) CHECK(ss == 0);
    else CHECK(ss == 2 * std::size_t(in) * 9 * std::size_t(fast.layer.chunk(n)) * H * W);
    std::vector<T> s1(ref.layer.scratch_size(n) + 16, T(-7)), s2(ss + 16, T(-7));
    ref.layer.forward(x.data(), y1.data(), n, s1.data());
    fast.layer.forward(x.data(), y2.data(), n, s2.data());
    CHECK(rel_diff(y2, y1) <= Tol<T>::backend);
    ref.ps.zero_grad(), fast.ps.zero_grad();
    ref.layer.backward(x.data(), dy.data(), dx1.data(), n, s1.data());
    fast.layer.backward(x.data(), dy.data(), dx2.data(), n, s2.data());
    CHECK(rel_diff(dx2, dx1) <= Tol<T>::backend);
    CHECK(rel_diff(fast.ps.grads(), ref.ps.grads()) <= Tol<T>::backend);
    // dx == nullptr skips dx but gives the same parameter gradients (accumulated: now twice)
    fast.layer.backward(x.data(), dy.data(), nullptr, n, s2.data());
    std::vector<double> twice(ref.ps.grads().begin(), ref.ps.grads().end());
    for (auto& v : twice) v *= 2;
    CHECK(rel_diff(fast.ps.grads(), twice) <= Tol<T>::backend);
    // the fused ReLU after the bias, and the ReLU mask on dx (x itself as the mask: ~half positive)
    ref.layer.forward(x.data(), y1.data(), n, s1.data(), true);
    fast.layer.forward(x.data(), y2.data(), n, s2.data(), true);
    CHECK(rel_diff(y2, y1) <= Tol<T>::backend);
    const auto zeros = std::count(y1.begin(), y1.end(), T(0));
    CHECK(zeros > 0);
    CHECK(std::size_t(zeros) < ny);
    CHECK(std::count(y2.begin(), y2.end(), T(0)) == zeros);
    ref.layer.backward(x.data(), dy.data(), dx1.data(), n, s1.data(), x.data());
    fast.layer.backward(x.data(), dy.data(), dx2.data(), n, s2.data(), x.data());
    CHECK(rel_diff(dx2, dx1) <= Tol<T>::backend);
    for (std::size_t j = 0; j < nx; ++j)
        if (!(x[j] > T(0))) CHECK((dx1[j] == T(0) && dx2[j] == T(0)));
    for (std::size_t j = ss; j < s2.size(); ++j) CHECK(s2[j] == T(-7));
}

}  // namespace

TEST_CASE_TEMPLATE("conv2d: Cpu equals Reference for kernels 1 and 3, odd sizes, several chunk sizes", T, float,
                   double) {
    for (int k : {1, 3})
        for (int chunk : {1, 2, 3, 0}) conv_against_reference<T, Cpu>(3, 4, k, 5, 3, 5, chunk);
    conv_against_reference<T, Cpu>(2, 3, 3, 1, 1, 2, 0);  // 1×1 images: only the centre tap
    conv_against_reference<T, Cpu>(1, 2, 3, 2, 7, 3, 2);
    // a narrow output layer on a batch large enough for the column-split GEMM and parallel loops
    conv_against_reference<T, Cpu>(16, 2, 3, 8, 8, 8, 0);
    conv_against_reference<T, Cpu>(4, 24, 3, 8, 8, 8, 3);
    conv_against_reference<T, Cpu>(24, 4, 1, 8, 8, 8, 0);
    // one-pixel-wide columns, and planes past the flattened loops' limit (4096 pixels: row by row),
    // through both the im2col and the narrow path
    conv_against_reference<T, Cpu>(2, 3, 3, 6, 1, 2, 0);
    conv_against_reference<T, Cpu>(1, 2, 3, 65, 64, 1, 0);
    conv_against_reference<T, Cpu>(3, 2, 3, 64, 65, 1, 0);
}

TEST_CASE("conv2d: col2im sums each pixel's taps in order, exactly") {
    // kernels/cpu/conv2d.hpp's col2im: pixel (y, x) of channel c = Σ over (ky, kx) in order, from 0, of
    // dcol's row (c, ky, kx) at the source pixel (y − ky + pad, x − kx + pad) where it exists.
    for (const auto [k, H, W] : {std::array{3, 16, 16}, std::array{3, 4, 4}, std::array{3, 3, 5}, std::array{3, 2, 2},
                                 std::array{3, 1, 7}, std::array{3, 6, 1}, std::array{3, 8, 3}, std::array{5, 7, 6}}) {
        CAPTURE(k); CAPTURE(H); CAPTURE(W);
        const int C = 2, n = 3, i0 = 1, m = 2, HW = H * W, pad = k / 2;
        const kernels::ConvDims d{C, C, k, H, W};
        std::vector<float> dcol(std::size_t(C) * k * k * m * HW), dx(std::size_t(C) * n * HW, 7.0f);
        for (std::size_t i = 0; i < dcol.size(); ++i) dcol[i] = float(std::sin(0.77 * double(i) + 0.2));
        const std::vector<float> before = dx;
        kernels::detail::col2im(dcol.data(), dx.data(), n, i0, m, d);
        for (int c = 0; c < C; ++c)
            for (int i = 0; i < n; ++i)
                for (int y = 0; y < H; ++y)
                    for (int x = 0; x < W; ++x) {
                        const std::size_t at = (std::size_t(c) * n + i) * HW + std::size_t(y) * W + x;
                        if (i < i0 || i >= i0 + m) {  // other samples untouched
                            REQUIRE(dx[at] == before[at]);
                            continue;
                        }
                        float want = 0.0f;
                        for (int ky = 0; ky < k; ++ky)
                            for (int kx = 0; kx < k; ++kx) {
                                const int sy = y - ky + pad, sx = x - kx + pad;
                                if (sy < 0 || sy >= H || sx < 0 || sx >= W) continue;
                                want += dcol[(std::size_t((c * k + ky) * k + kx) * m + (i - i0)) * HW +
                                             std::size_t(sy) * W + sx];
                            }
                        CAPTURE(c); CAPTURE(i); CAPTURE(y); CAPTURE(x);
                        REQUIRE(dx[at] == want);
                    }
    }
}

TEST_CASE("conv2d: chunks stay within 8 MiB of im2col and cover the batch") {
    Conv2d<float, Cpu> c(512, 512, 3, 16, 16);
    // per sample 512·9·256·4 B = 4.5 MiB → one sample per chunk
    CHECK(c.chunk(64) == 1);
    Conv2d<float, Cpu> d(8, 16, 3, 8, 8);  // 8·9·64·4 B = 18 KiB per sample
    CHECK(d.chunk(64) == 64);
    CHECK(d.chunk(1000) == int((std::size_t(8) << 20) / (8 * 9 * 64 * 4)));
    d.set_max_chunk(5);
    CHECK(d.chunk(64) == 5);
    CHECK(d.scratch_size(64) == std::size_t(2 * 8 * 9 * 5 * 64));
    CHECK(Conv2d<float, Reference>(8, 16, 3, 8, 8).scratch_size(64) == 0);
}

namespace {

/// L = Σ r ⊙ layer(x); checks dx and every parameter gradient against central differences.
template <class Layer, class Fwd, class Bwd>
void check_fd(Layer& net, ParamSet<double>& ps, std::size_t nx, std::size_t ny, Fwd fwd, Bwd bwd) {
    Rng rng(17);
    const auto x0 = random_vector<double>(nx, rng), r = random_vector<double>(ny, rng);
    std::vector<double> y(ny), dx(nx);
    auto loss = [&](const std::vector<double>& x) {
        fwd(net, x.data(), y.data());
        double L = 0.0;
        for (std::size_t k = 0; k < ny; ++k) L += r[k] * y[k];
        return L;
    };
    ps.zero_grad();
    fwd(net, x0.data(), y.data());
    bwd(net, x0.data(), r.data(), dx.data());
    const double h = 1e-5;
    std::vector<double> got, want, x = x0;
    for (std::size_t k = 0; k < nx; ++k) {
        x[k] = x0[k] + h;
        const double lp = loss(x);
        x[k] = x0[k] - h;
        const double lm = loss(x);
        x[k] = x0[k];
        got.push_back(dx[k]);
        want.push_back((lp - lm) / (2 * h));
    }
    CHECK(rel_diff(got, want) <= Tol<double>::fd);
    double gmax = 0.0;
    for (double v : got) gmax = std::max(gmax, std::abs(v));
    CHECK(gmax > 1e-2);  // a real gradient, not zeros
    got.clear(), want.clear();
    const std::vector<double> grads(ps.grads().begin(), ps.grads().end());
    for (std::size_t k = 0; k < ps.values().size(); ++k) {
        double& p = ps.values()[k];
        const double saved = p;
        p = saved + h;
        const double lp = loss(x0);
        p = saved - h;
        const double lm = loss(x0);
        p = saved;
        got.push_back(grads[k]);
        want.push_back((lp - lm) / (2 * h));
    }
    CHECK(rel_diff(got, want) <= Tol<double>::fd);
}

}  // namespace

TEST_CASE_TEMPLATE("conv2d: gradients match central differences (double)", B, Reference, Cpu) {
    for (int k : {1, 3}) {
        CAPTURE(k);
        const int in = 2, out = 3, H = 5, W = 3, n = 3;
        Owned<Conv2d<double, B>, double> c(8, false, in, out, k, H, W);
        c.layer.set_max_chunk(2);
        std::vector<double> scratch(c.layer.scratch_size(n));
        check_fd(
            c.layer, c.ps, std::size_t(in) * n * H * W, std::size_t(out) * n * H * W,
            [&](auto& l, const double* x, double* y) { l.forward(x, y, n, scratch.data()); },
            [&](auto& l, const double* x, const double* dy, double* dx) { l.backward(x, dy, dx, n, scratch.data()); });
    }
}

// ---- ConvNet ----------------------------------------------------------------------------------------------

TEST_CASE("convnet: nn.Sequential names, PyTorch shapes, zero-initialised output layer") {
    Owned<ConvNet<float, Cpu>, float> net(1, true, 3, 8, 6, 4, 5);
    std::vector<std::string> names;
    for (const auto& t : net.ps.tensors()) names.push_back(t.name);
    CHECK(names == std::vector<std::string>{"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias", "net.4.weight",
                                            "net.4.bias"});
    CHECK(net.ps.find("net.0.weight")->shape == std::vector<std::size_t>{8, 3, 3, 3});
    CHECK(net.ps.find("net.2.weight")->shape == std::vector<std::size_t>{8, 8, 1, 1});
    CHECK(net.ps.find("net.4.weight")->shape == std::vector<std::size_t>{6, 8, 3, 3});
    CHECK(net.ps.find("net.4.bias")->shape == std::vector<std::size_t>{6});
    CHECK(net.ps.count() == std::size_t(8 * 27 + 8 + 64 + 8 + 6 * 72 + 6));
    CHECK(net.layer.stored_size(3) == std::size_t(2 * 8 * 3 * 20));

    // PyTorch's default bounds on the hidden layers, zeros on the output layer
    for (int l : {0, 2, 4}) {
        const auto& w = net.layer.layer(l).weight();
        const double bound = 1.0 / std::sqrt(l == 0 ? 27.0 : l == 2 ? 8.0 : 72.0);
        double lo = 1e9, hi = -1e9;
        for (std::size_t k = 0; k < w.size; ++k) lo = std::min(lo, double(w[k])), hi = std::max(hi, double(w[k]));
        CAPTURE(l);
        if (l == 4) {
            CHECK(lo == 0.0);
            CHECK(hi == 0.0);
        } else {
            CHECK(lo >= -bound);
            CHECK(hi <= bound);
            CHECK(hi - lo > bound);
        }
    }
    Rng rng(2);
    const int n = 3;
    const auto x = random_vector<float>(std::size_t(3) * n * 20, rng);
    std::vector<float> y(std::size_t(6) * n * 20, 1.0f), stored(net.layer.stored_size(n)),
        scratch(net.layer.scratch_size(n));
    net.layer.forward(x.data(), y.data(), n, stored.data(), scratch.data());
    for (float v : y) CHECK(v == 0.0f);
}

namespace {
template <class T>
void convnet_against_reference(int in, int hidden, int out, int H, int W, int n, int chunk) {
    CAPTURE(in); CAPTURE(hidden); CAPTURE(out); CAPTURE(H); CAPTURE(W); CAPTURE(n); CAPTURE(chunk);
    Owned<ConvNet<T, Reference>, T> ref(4, false, in, hidden, out, H, W);
    Owned<ConvNet<T, Cpu>, T> fast(4, false, in, hidden, out, H, W);
    fast.layer.set_max_chunk(chunk);
    const std::size_t nx = std::size_t(in) * n * H * W, ny = std::size_t(out) * n * H * W;
    Rng rng(6);
    const auto x = random_vector<T>(nx, rng), dy = random_vector<T>(ny, rng);
    std::vector<T> y1(ny), y2(ny), dx1(nx), dx2(nx);
    std::vector<T> st1(ref.layer.stored_size(n)), st2(fast.layer.stored_size(n));
    std::vector<T> sc1(ref.layer.scratch_size(n)), sc2(fast.layer.scratch_size(n));
    ref.layer.forward(x.data(), y1.data(), n, st1.data(), sc1.data());
    fast.layer.forward(x.data(), y2.data(), n, st2.data(), sc2.data());
    CHECK(rel_diff(y2, y1) <= Tol<T>::backend);
    ref.ps.zero_grad(), fast.ps.zero_grad();
    ref.layer.backward(x.data(), dy.data(), dx1.data(), n, st1.data(), sc1.data());
    fast.layer.backward(x.data(), dy.data(), dx2.data(), n, st2.data(), sc2.data());
    CHECK(rel_diff(dx2, dx1) <= Tol<T>::backend);
    CHECK(rel_diff(fast.ps.grads(), ref.ps.grads()) <= Tol<T>::backend);
}
}  // namespace

TEST_CASE_TEMPLATE("convnet: Cpu equals Reference", T, float, double) {
    convnet_against_reference<T>(2, 6, 4, 5, 3, 4, 0);
    convnet_against_reference<T>(2, 6, 4, 5, 3, 4, 3);
    convnet_against_reference<T>(3, 5, 6, 4, 4, 7, 2);
    // 400 hidden channels: the 1×1 layer's Wᵀ packed once per backward pass in several row and depth
    // blocks (float), chunks of one sample across the threads
    convnet_against_reference<T>(2, 400, 4, 3, 3, 3, 1);
}

TEST_CASE("for_net_chunks: every chunk once, in a slot the pass may use (fixed runs in order, balanced in any slot)") {
    const int n = 23, chunk = 2, chunks = 12;
    const int saved = num_threads();
    for (int threads : {1, 2, 3}) {
        set_num_threads(threads);
        const int slots = kernels::net_slots(Cpu{}, n, chunk);
        for (auto order : {kernels::NetChunks::fixed, kernels::NetChunks::balanced}) {
            CAPTURE(threads);
            CAPTURE(int(order));
            std::vector<int> seen(chunks, 0), slot_of(chunks, -1), size_of(chunks, 0);
            std::vector<std::vector<int>> by_slot(64);
            kernels::for_net_chunks(Cpu{}, n, chunk, [&](int slot, int i0, int m) {
                REQUIRE(i0 % chunk == 0);
                const int c = i0 / chunk;
                ++seen[c];  // each chunk is called once: no two threads write the same entry
                slot_of[c] = slot, size_of[c] = m;
                by_slot[slot].push_back(c);  // one thread per slot
            }, order);
            for (int c = 0; c < chunks; ++c) {
                CHECK(seen[c] == 1);
                CHECK(size_of[c] == (c + 1 < chunks ? chunk : n - c * chunk));
                CHECK(slot_of[c] >= 0);
                CHECK(slot_of[c] < slots);
            }
            if (order == kernels::NetChunks::fixed)  // slot s: a contiguous run, after slot s − 1's
                for (int c = 1; c < chunks; ++c) CHECK(slot_of[c] - slot_of[c - 1] >= 0);
            for (const auto& v : by_slot)  // a thread takes its chunks in order either way
                CHECK(std::is_sorted(v.begin(), v.end()));
        }
    }
    set_num_threads(saved);
    // an exception in one chunk reaches the caller, the other chunks' threads stop
    set_num_threads(2);
    CHECK_THROWS_AS(kernels::for_net_chunks(Cpu{}, n, chunk, [&](int, int i0, int) {
        if (i0 == 4) throw bijou::invalid_argument("chunk 2");
    }, kernels::NetChunks::balanced), bijou::invalid_argument);
    set_num_threads(saved);
}

TEST_CASE("for_net_chunks: before and after run on the pass's threads, each its share, around all the chunks") {
    const int n = 9, chunk = 2, chunks = 5, items = 37;
    const int saved = num_threads();
    for (int threads : {1, 2}) {
        CAPTURE(threads);
        set_num_threads(threads);
        std::vector<int> before_of(items, 0), after_of(items, 0);
        std::atomic<int> chunks_done{0}, befores{0}, afters{0}, early{0}, late{0};
        kernels::for_net_chunks(Cpu{}, n, chunk, [&](int, int, int) {
            if (befores.load() != kernels::net_slots(Cpu{}, n, chunk)) ++early;  // every before finished first
            ++chunks_done;
        }, kernels::NetChunks::balanced,
            [&](const kernels::NetTeam& team) {
                const auto r = team.share(items);
                for (int i = r.first; i < r.last; ++i) ++before_of[i];  // contiguous runs, no overlap
                ++befores;
            },
            [&](const kernels::NetTeam& team) {
                if (chunks_done.load() != chunks) ++late;  // after every chunk
                team.sync();
                const auto r = team.share(items);
                for (int i = r.first; i < r.last; ++i) ++after_of[i];
                ++afters;
            });
        CHECK(early.load() == 0);
        CHECK(late.load() == 0);
        CHECK(befores.load() == kernels::net_slots(Cpu{}, n, chunk));
        CHECK(afters.load() == befores.load());
        CHECK(std::count(before_of.begin(), before_of.end(), 1) == items);
        CHECK(std::count(after_of.begin(), after_of.end(), 1) == items);
        // a chunk that throws: the exception reaches the caller, `after` does not run
        afters = 0;
        CHECK_THROWS_AS(kernels::for_net_chunks(Cpu{}, n, chunk, [&](int, int i0, int) {
            if (i0 == 6) throw bijou::invalid_argument("chunk 3");
        }, kernels::NetChunks::fixed, kernels::NoTeamWork{}, [&](const kernels::NetTeam&) { ++afters; }),
                        bijou::invalid_argument);
        CHECK(afters.load() == 0);
    }
    set_num_threads(saved);
}

#if defined(BIJOU_SGEMM_SIMD)
TEST_CASE("for_net_chunks: a thread done with its chunks takes blocks of another's products, the same bits") {
    // 3 chunks on 2 threads (fixed runs: 1 and 2): the thread with one chunk finishes first; the other
    // waits for it to be idle in its last chunk, then runs products that it offers in blocks
    // (kernels/cpu/pass_help.hpp). Each must equal the product computed alone, bit for bit.
    if (kernels::detail::net_cores() < 2 || !kernels::detail::sgemm_simd_available()) {
        MESSAGE("skipped: needs 2 cores and the packed GEMM");
        return;
    }
    const int M = 200, N = 256, K = 192, n = 3, products = 6;
    Rng rng(21);
    const auto A = random_vector<float>(std::size_t(M) * K, rng);
    std::vector<std::vector<float>> B, want(products), got(products, std::vector<float>(std::size_t(M) * N, 0.25f));
    for (int p = 0; p < products; ++p) B.push_back(random_vector<float>(std::size_t(K) * N, rng));
    const int saved = num_threads();
    set_num_threads(1);
    for (int p = 0; p < products; ++p) {
        want[p].assign(std::size_t(M) * N, 0.25f);
        const bool accumulate = p % 2 == 1;  // beta 1 for odd products, 0 for even ones
        kernels::gemm(Cpu{}, p % 3 == 2, false, M, N, K, 1.0f, A.data(), p % 3 == 2 ? M : K, B[p].data(), N,
                      accumulate ? 1.0f : 0.0f, want[p].data(), N);
    }
    set_num_threads(2);
    const long taken = kernels::detail::help_tasks_taken.load();
    bool idle_seen = false;
    int rounds = 0, wrong = 0;
    kernels::for_net_chunks(Cpu{}, n, 1, [&](int, int i0, int) {
        if (i0 != 2) return;  // the second thread's last chunk
        for (int spin = 0; spin < 50000000 && !kernels::detail::help_wanted(); ++spin) kernels::detail::help_pause();
        idle_seen = kernels::detail::help_wanted();
        // the products again until the idle thread has taken blocks of them (it may be off its core
        // for a while: ctest runs two test processes at once), each time the same bits
        for (; rounds < 500 && (rounds == 0 || kernels::detail::help_tasks_taken.load() == taken); ++rounds)
            for (int p = 0; p < products; ++p) {
                std::vector<float>& c = got[p];
                std::fill(c.begin(), c.end(), 0.25f);
                kernels::gemm(Cpu{}, p % 3 == 2, false, M, N, K, 1.0f, A.data(), p % 3 == 2 ? M : K, B[p].data(), N,
                              p % 2 == 1 ? 1.0f : 0.0f, c.data(), N);
                if (std::memcmp(want[p].data(), c.data(), sizeof(float) * c.size()) != 0) ++wrong;
            }
    });
    set_num_threads(saved);
    INFO("rounds of products: " << rounds);
    CHECK(idle_seen);
    CHECK(kernels::detail::help_tasks_taken.load() > taken);  // the idle thread did take blocks
    CHECK(wrong == 0);
}
#endif

TEST_CASE("convnet: uneven chunks on 2 threads (the idle thread helping): Reference's values, the same bits each run") {
    // 3 chunks of one sample on 2 threads: one thread runs 1, the other 2, and the first helps with
    // the second's products (192 hidden channels: large enough to be offered).
    const int in = 3, hidden = 192, out = 6, H = 8, W = 8, n = 3;
    Owned<ConvNet<float, Reference>, float> ref(7, false, in, hidden, out, H, W);
    Owned<ConvNet<float, Cpu>, float> fast(7, false, in, hidden, out, H, W);
    fast.layer.set_max_chunk(1);
    const std::size_t nx = std::size_t(in) * n * H * W, ny = std::size_t(out) * n * H * W;
    Rng rng(12);
    const auto x = random_vector<float>(nx, rng), dy = random_vector<float>(ny, rng);
    struct Run {
        std::vector<float> y, dx, grads;
    };
    auto run = [&](auto& net, int threads) {
        const int saved = num_threads();
        set_num_threads(threads);
        Run r{std::vector<float>(ny), std::vector<float>(nx), {}};
        std::vector<float> stored(net.layer.stored_size(n)), scratch(net.layer.scratch_size(n));
        net.ps.zero_grad();
        net.layer.forward(x.data(), r.y.data(), n, stored.data(), scratch.data());
        net.layer.backward(x.data(), dy.data(), r.dx.data(), n, stored.data(), scratch.data());
        r.grads.assign(net.ps.grads().begin(), net.ps.grads().end());
        set_num_threads(saved);
        return r;
    };
    const Run want = run(ref, 1), first = run(fast, 2);
    CHECK(rel_diff(first.y, want.y) <= Tol<float>::backend);
    CHECK(rel_diff(first.dx, want.dx) <= Tol<float>::backend);
    CHECK(rel_diff(first.grads, want.grads) <= Tol<float>::backend);
    for (int again = 0; again < 4; ++again) {
        const Run r = run(fast, 2);
        CHECK(r.y == first.y);
        CHECK(r.dx == first.dx);
        CHECK(r.grads == first.grads);
    }
}

TEST_CASE("convnet: chunks of samples across threads, with a context: Reference's values, the same bits on every run") {
    // Cpu: chunks of 2 samples (the last one short) in slots of their own, two threads at once when
    // the machine has two cores or more; each slot adds its own parameter gradients, summed after.
    // (Chunks hold at most ⌈n / cores⌉ samples: n grows with the cores so that they hold 2.)
    const int in = 2, hidden = 6, out = 4, H = 4, W = 3, K = 3, n = 2 * kernels::detail::net_cores() + 1;
    const std::size_t nx = std::size_t(in) * n * H * W, ny = std::size_t(out) * n * H * W;
    Owned<ConvNet<float, Reference>, float> ref(5, false, in, hidden, out, H, W, K);
    Owned<ConvNet<float, Cpu>, float> fast(5, false, in, hidden, out, H, W, K);
    fast.layer.set_max_chunk(2);
    REQUIRE(fast.layer.chunk(n) == 2);
    Rng rng(9);
    const auto x = random_vector<float>(nx, rng), dy = random_vector<float>(ny, rng),
               c = random_vector<float>(std::size_t(n) * K, rng);
    struct Run {
        std::vector<float> y, dx, dc, grads;
    };
    auto run = [&](auto& net, int threads) {
        const int saved = num_threads();
        set_num_threads(threads);
        Run r{std::vector<float>(ny), std::vector<float>(nx), std::vector<float>(std::size_t(n) * K, 0.5f), {}};
        std::vector<float> stored(net.layer.stored_size(n)), scratch(net.layer.scratch_size(n));
        net.ps.zero_grad();
        net.layer.forward(x.data(), c.data(), r.y.data(), n, stored.data(), scratch.data());
        net.layer.backward(x.data(), c.data(), dy.data(), r.dx.data(), r.dc.data(), n, stored.data(), scratch.data());
        r.grads.assign(net.ps.grads().begin(), net.ps.grads().end());
        set_num_threads(saved);
        return r;
    };
    const Run want = run(ref, 1), two = run(fast, 2), again = run(fast, 2), one = run(fast, 1);
    CHECK(rel_diff(two.y, want.y) <= Tol<float>::backend);
    CHECK(rel_diff(two.dx, want.dx) <= Tol<float>::backend);
    CHECK(rel_diff(two.dc, want.dc) <= Tol<float>::backend);
    CHECK(rel_diff(two.grads, want.grads) <= Tol<float>::backend);
    CHECK(rel_diff(one.grads, want.grads) <= Tol<float>::backend);
    CHECK(rel_diff(one.dx, want.dx) <= Tol<float>::backend);
    CHECK(two.y == again.y);
    CHECK(two.dx == again.dx);
    CHECK(two.dc == again.dc);
    CHECK(two.grads == again.grads);
    CHECK(two.y == one.y);  // the forward pass does not depend on the thread count
}

#if defined(BIJOU_SGEMM_SIMD)
namespace {
/// A (rows, N) row-major plane in the Cpu GEMM's 32-column panels (kernels::detail::panel_column), and back.
std::vector<float> to_panels(const std::vector<float>& a, int rows, int N) {
    using kernels::detail::panel_column, kernels::detail::panel_width;
    const std::size_t stride = std::size_t(panel_width) * rows;
    std::vector<float> p(stride * std::size_t((N + panel_width - 1) / panel_width), -9.0f);
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < N; ++j) p[panel_column(j, stride) + std::size_t(r) * panel_width] = a[std::size_t(r) * N + j];
    return p;
}
std::vector<float> from_panels(const std::vector<float>& p, int rows, int N) {
    using kernels::detail::panel_column, kernels::detail::panel_width;
    const std::size_t stride = std::size_t(panel_width) * rows;
    std::vector<float> a(std::size_t(rows) * N);
    for (int r = 0; r < rows; ++r)
        for (int j = 0; j < N; ++j) a[std::size_t(r) * N + j] = p[panel_column(j, stride) + std::size_t(r) * panel_width];
    return a;
}
bool same_bits(std::span<const float> a, std::span<const float> b) {
    return a.size() == b.size() && std::memcmp(a.data(), b.data(), sizeof(float) * a.size()) == 0;
}
}  // namespace

TEST_CASE("conv2d: passes with the weights prepared (W, Wᵀ, Wf, Wfᵀ packed) give the bits of ones without") {
    // The forward products then run from W / Wf packed once instead of read in place (the 1×1 and
    // the narrow layer) or packed per call (the im2col layer 6 → 200: depth 54), the data gradients
    // from Wᵀ / Wfᵀ packed once instead of read in place (a 1×1 layer of 200 channels: columns of W;
    // the narrow layer: columns of Wf) or packed per call (the im2col layer: Wᵀ of 54 rows), and the
    // narrow path adds its weight gradient to dWf, folded into dw after the chunks: y, dx, dw and db
    // must not change by a bit. On 1×1 planes the narrow layer's scratch holds no narrow block: it
    // takes the im2col path, which must not read its prepared Wf, or Wf packed, as a packed W or Wᵀ.
    if (!kernels::detail::sgemm_simd_available()) return;
    const int n = 3;
    Rng rng(12);
    for (const auto& [in, out, k, H] : {std::array{200, 200, 1, 4}, std::array{200, 4, 3, 4}, std::array{160, 16, 3, 4},
                                       std::array{6, 200, 3, 4}, std::array{200, 4, 3, 1}}) {
        CAPTURE(in); CAPTURE(out); CAPTURE(k); CAPTURE(H);
        const int W = H, N = n * H * W;
        Owned<Conv2d<float, Cpu>, float> a(4, false, in, out, k, H, W), b(4, false, in, out, k, H, W);
        REQUIRE(a.layer.prepared_size() > a.layer.prepared_grad_size());  // Wᵀ or Wfᵀ packed behind Wf
        auto x = random_vector<float>(std::size_t(in) * N, rng);
        for (float& v : x) v = std::max(v, 0.0f);  // post-ReLU: x serves as the ReLU mask
        const auto dy = random_vector<float>(std::size_t(out) * N, rng);
        std::vector<float> scratch(a.layer.scratch_size(n)), prepared(a.layer.prepared_size());
        std::vector<float> y(std::size_t(out) * N), yp(y.size(), -1.0f);
        b.layer.prepare(prepared.data(), /*backward=*/false);
        a.layer.forward(x.data(), y.data(), n, scratch.data(), /*relu=*/true);
        for (const int threads : {1, 2}) {  // 2: fewer than 32 columns per thread, A read in place
            const int saved = num_threads();
            set_num_threads(threads);
            b.layer.forward(x.data(), yp.data(), n, scratch.data(), /*relu=*/true, prepared.data());
            set_num_threads(saved);
            CHECK(same_bits(y, yp));
        }
        CHECK(std::any_of(y.begin(), y.end(), [](float v) { return v > 0.0f; }));
        std::vector<float> dprepared(std::max<std::size_t>(b.layer.prepared_grad_size(), 1), 0.0f);
        b.layer.prepare(prepared.data(), /*backward=*/true);
        std::vector<float> dx(x.size()), dxp(x.size(), -1.0f);
        a.layer.backward(x.data(), dy.data(), dx.data(), n, scratch.data(), x.data());
        b.layer.backward(x.data(), dy.data(), dxp.data(), n, scratch.data(), x.data(), b.layer.weight().grad,
                         b.layer.bias().grad, prepared.data(), k > 1 ? dprepared.data() : nullptr);
        if (k > 1) b.layer.fold_prepared_grad(dprepared.data(), b.layer.weight().grad);
        CHECK(same_bits(dx, dxp));
        CHECK(same_bits(a.ps.grads(), b.ps.grads()));
        CHECK(std::any_of(dx.begin(), dx.end(), [](float v) { return v != 0.0f; }));
    }
}

TEST_CASE("conv2d: passes over planes in the Cpu GEMM's panels give the bits of the row-major passes") {
    // A conditioner's three layers as nn/convnet.hpp runs them where kernels::net_panels allows: the
    // first layer stores y in panels, the 1×1 layer reads and stores them, the narrow last layer (36
    // and 144 product rows) reads them; backward reads x and the ReLU mask (x itself here: post-ReLU
    // values) in panels and writes dx in them where x is, and reads dy in panels where y is (the 1×1
    // and the first layer: their weight gradients read dy's rows from the panels in place, and its
    // ragged last row panel packed; the bias gradient sums them). Forward outputs, dx and the weight
    // and bias gradients must not change by a bit.
    if (!kernels::detail::sgemm_simd_available()) return;
    const int hidden = 64, H = 8, W = 8, n = 4, N = n * H * W;
    const std::size_t ps = std::size_t(kernels::detail::panel_width) * hidden;
    Rng rng(8);
    for (const auto& [in, out, k] : {std::array{2, hidden, 3}, std::array{hidden, hidden, 1}, std::array{hidden, 4, 3},
                                    std::array{hidden, 16, 3}}) {
        CAPTURE(in); CAPTURE(out); CAPTURE(k);
        Owned<Conv2d<float, Cpu>, float> a(3, false, in, out, k, H, W), b(3, false, in, out, k, H, W);
        auto x = random_vector<float>(std::size_t(in) * N, rng);
        for (float& v : x) v = std::max(v, 0.0f);  // post-ReLU, so that x serves as the ReLU mask
        const auto dy = random_vector<float>(std::size_t(out) * N, rng);
        const bool x_in_panels = in == hidden, y_in_panels = out == hidden;
        const std::vector<float> xp = x_in_panels ? to_panels(x, in, N) : x;
        std::vector<float> scratch(a.layer.scratch_size(n)), wf(std::max<std::size_t>(a.layer.prepared_size(), 1));
        if (a.layer.prepared_size() > 0) a.layer.prepare(wf.data(), /*backward=*/false);
        const float* prepared = a.layer.prepared_size() > 0 ? wf.data() : nullptr;
        std::vector<float> y(std::size_t(out) * N), yp(y_in_panels ? to_panels(y, out, N).size() : y.size());
        a.layer.forward(x.data(), y.data(), n, scratch.data(), /*relu=*/true);
        for (const float* w : {static_cast<const float*>(nullptr), prepared}) {  // weights read in place, and packed
            b.layer.forward(xp.data(), yp.data(), n, scratch.data(), /*relu=*/true, w,
                            {x_in_panels ? ps : 0, y_in_panels ? ps : 0});
            CHECK(same_bits(y, y_in_panels ? from_panels(yp, out, N) : yp));
        }
        const std::vector<float> dyp = y_in_panels ? to_panels(dy, out, N) : dy;
        std::vector<float> dx(x.size()), dxp(xp.size());
        a.layer.backward(x.data(), dy.data(), dx.data(), n, scratch.data(), x.data());
        b.layer.backward(xp.data(), dyp.data(), dxp.data(), n, scratch.data(), xp.data(), b.layer.weight().grad,
                         b.layer.bias().grad, nullptr, nullptr, {x_in_panels ? ps : 0, y_in_panels ? ps : 0});
        CHECK(same_bits(dx, x_in_panels ? from_panels(dxp, in, N) : dxp));
        CHECK(same_bits(a.ps.grads(), b.ps.grads()));
        CHECK(std::any_of(dx.begin(), dx.end(), [](float v) { return v != 0.0f; }));
    }
}
#endif

TEST_CASE("convnet: Cpu chunks whose hidden planes take the GEMM's panels equal Reference") {
    // kernels::net_panels: a chunk's m·HW columns whole panels, a narrow last layer. 16×16 planes in
    // chunks of 2 across the threads; 4×4 planes (16 pixels) in chunks of 4, and of 2 (7 samples: the
    // last chunk, of 1 sample, keeps the row-major layout); 8×8 planes; 36- and 144-row last layers.
    struct Case {
        int in, hidden, out, H, W, n, chunk;
    };
    for (const Case& c : {Case{2, 64, 4, 16, 16, 5, 2}, Case{8, 32, 16, 4, 4, 8, 4}, Case{8, 16, 8, 4, 4, 7, 2},
                          Case{4, 32, 8, 8, 8, 3, 0}}) {
        Owned<ConvNet<float, Cpu>, float> net(1, false, c.in, c.hidden, c.out, c.H, c.W);
        net.layer.set_max_chunk(c.chunk);
        const int m = net.layer.chunk(c.n);
        const std::size_t panels = kernels::net_panels<float>(Cpu{}, net.layer.layer(0).dims(), net.layer.layer(0).chunk(m),
                                                              net.layer.layer(4).dims(), net.layer.layer(4).chunk(m), m);
        CAPTURE(c.hidden); CAPTURE(c.H); CAPTURE(m);
        if (kernels::detail::sgemm_simd_available()) CHECK(panels == std::size_t(32) * c.hidden);
        convnet_against_reference<float>(c.in, c.hidden, c.out, c.H, c.W, c.n, c.chunk);
    }
}

TEST_CASE_TEMPLATE("convnet: scratch sized for a batch serves every smaller batch", B, Reference, Cpu) {
    // A workspace reserved for n must fit any batch up to n (Flow::reserve): scratch_size never
    // shrinks as n grows, though the Cpu chunks and slots change with n (a 4×4 plane with a 32-wide
    // net: each slot's gradient copy is larger than its activations).
    Owned<ConvNet<float, B>, float> net(1, false, 4, 32, 8, 4, 4);
    for (int n = 2; n <= 70; ++n) {
        CAPTURE(n);
        CHECK(net.layer.scratch_size(n) >= net.layer.scratch_size(n - 1));
    }
}

TEST_CASE_TEMPLATE("convnet: gradients match central differences (double)", B, Reference, Cpu) {
    const int in = 2, hidden = 4, out = 3, H = 3, W = 4, n = 2;
    Owned<ConvNet<double, B>, double> net(12, false, in, hidden, out, H, W);
    Rng rng(3);
    for (auto& v : net.ps.values()) v += 0.2 * rng.normal();  // biases off zero: few ReLU kinks at 0
    std::vector<double> stored(net.layer.stored_size(n)), scratch(net.layer.scratch_size(n));
    check_fd(
        net.layer, net.ps, std::size_t(in) * n * H * W, std::size_t(out) * n * H * W,
        [&](auto& l, const double* x, double* y) { l.forward(x, y, n, stored.data(), scratch.data()); },
        [&](auto& l, const double* x, const double* dy, double* dx) {
            l.backward(x, dy, dx, n, stored.data(), scratch.data());
        });
}

// ---- layout helpers ---------------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("conv2d layout: NCHW channels to channel-major and back", B, Reference, Cpu) {
    const int n = 3, C = 4, HW = 5, c0 = 1, cn = 2;
    std::vector<double> x(std::size_t(n) * C * HW);
    for (std::size_t k = 0; k < x.size(); ++k) x[k] = double(k);
    std::vector<double> cm(std::size_t(cn) * n * HW, -1.0);
    kernels::nchw_to_channel_major(B{}, x.data(), cm.data(), n, C, HW, c0, cn);
    // cm(c, i, p) = x(i, c0 + c, p) = (i·C + c0 + c)·HW + p
    for (int c = 0; c < cn; ++c)
        for (int i = 0; i < n; ++i)
            for (int p = 0; p < HW; ++p)
                CHECK(cm[(std::size_t(c) * n + i) * HW + p] == double((i * C + c0 + c) * HW + p));
    std::vector<double> back(x.size(), 0.5);
    kernels::channel_major_to_nchw(B{}, cm.data(), back.data(), n, C, HW, c0, cn);
    kernels::channel_major_add_to_nchw(B{}, cm.data(), back.data(), n, C, HW, c0, cn);
    for (int i = 0; i < n; ++i)
        for (int c = 0; c < C; ++c)
            for (int p = 0; p < HW; ++p) {
                const std::size_t k = (std::size_t(i) * C + c) * HW + p;
                CHECK(back[k] == (c >= c0 && c < c0 + cn ? 2.0 * x[k] : 0.5));
            }
}

}  // namespace unit_conv2d
