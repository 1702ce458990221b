// bijou/models/image_flow.hpp — what every multi-scale image model offers on top of Flow.
//
// ImageFlow<Shape<C, H, W>, Recipe, T, Backend> is a Flow over images whose bijector is a
// MultiScale (models/multiscale.hpp) and whose base is the standard normal over all latents:
//   log_prob(x)                     nats per image (Flow)
//   bits_per_dim(x, n_bits, rng)    for n-bit integer images x ∈ {0 … 2ⁿ−1} (any integer or float
//                                   tensor holding such values): x̃ = (x + u)/2ⁿ − ½, u ~ U[0, 1)
//                                   from rng, bpd = (−log p(x̃) + D·n·ln 2)/(D·ln 2), D = C·H·W
//   dequantize(x, n_bits, rng)      that x̃ (rng: Rng, CounterRng, anything with uniform())
//   dequantize_keyed(x, n_bits, key, first_row)  that x̃ with row i's u from CounterRng(key(key,
//                                   first_row + i)): a row's noise depends on its index in the whole
//                                   batch only, so the shards of a batch (data-parallel training)
//                                   get the noise the whole batch gets
//   sample(n, temperature, rng)     x = f⁻¹(ε), ε ~ N(0, t²I) (Flow)
//   encode(x) / decode(eps)         every level's ε as a (n, c_l, h_l, w_l) tensor, top level last
//   interpolate(a, b, points)       decode of points evenly spaced latents from encode(a) to encode(b)
// Everything else (initialize, nll_and_gradient, parameters, gradients, memory modes) is Flow's.
// A conditional model (a Step conditioned on a context Shape<K>; core/context.hpp) takes the batch's
// contexts c (n, K) beside x everywhere: log_prob(x, c), bits_per_dim(x, c, n_bits, rng) (of
// log p(x | c)), sample(n, c, t, rng), encode(x, c), decode(eps, c), interpolate(a, b, c, points)
// (c: one row, the context of the whole path); the calls without c do not compile on it.
#pragma once

#include <cmath>
#include <concepts>
#include <cstddef>
#include <cstdint>
#include <numbers>
#include <string>
#include <vector>

#include "bijou/core/random.hpp"
#include "bijou/models/flow.hpp"
#include "bijou/models/multiscale.hpp"

namespace bijou {

template <EventShape S, class Recipe, Scalar T = float, Backend B = Cpu>
class ImageFlow : public Flow<S, Recipe, StandardNormal, T, B> {
    using base_flow = Flow<S, Recipe, StandardNormal, T, B>;

public:
    using typename base_flow::data_tensor;
    using typename base_flow::latent_tensor;
    using typename base_flow::context_tensor;
    using base_flow::data_size;
    using base_flow::conditional;
    using image_tensor = xt::xtensor<T, 4>;
    static constexpr int D = S::size;

    explicit ImageFlow(const Options& options = {}) : base_flow(options) {}

    /// Number of latent groups encode() returns: one per level.
    static constexpr int levels() { return count_levels<typename base_flow::bijector_type>(); }

    /// Shapes (c, h, w) of each level's ε, top level last.
    static std::vector<std::array<int, 3>> latent_shapes() {
        std::vector<std::array<int, 3>> r;
        collect_shapes<typename base_flow::bijector_type>(r);
        return r;
    }

    /// x̃ = (x + u)/2ⁿ − ½ with u ~ U[0, 1): uniform dequantisation of n-bit integer images.
    template <class Tensor, class G>
        requires requires(G& g) { { g.uniform() } -> std::convertible_to<double>; }
    data_tensor dequantize(const Tensor& x, int n_bits, G& rng) const {
        return dequantize_by(x, n_bits, "dequantize", [&](std::size_t) { return rng.uniform(); });
    }

    /// The same with row i's u drawn from CounterRng(CounterRng::key(key, first_row + i, 0)): the noise
    /// of an image depends on (key, its row in the whole batch) only, so a process that dequantises
    /// rows [b, e) of a batch (first_row = b) gives them the noise the whole batch would.
    template <class Tensor>
    data_tensor dequantize_keyed(const Tensor& x, int n_bits, std::uint64_t key, std::size_t first_row = 0) const {
        CounterRng g(0);
        return dequantize_by(x, n_bits, "dequantize_keyed", [&](std::size_t k) {
            if (k % std::size_t(D) == 0) g = CounterRng(CounterRng::key(key, first_row + k / std::size_t(D), 0));
            return g.uniform();
        });
    }

    /// Bits per dimension of n-bit integer images (dequantised with rng; seed it for evaluation).
    template <class Tensor>
    xt::xtensor<double, 1> bits_per_dim(const Tensor& x, int n_bits, Rng& rng) const
        requires(!conditional)
    {
        return to_bits(this->log_prob(dequantize(x, n_bits, rng)), n_bits);
    }
    /// Bits per dimension of log p(x | c) for n-bit integer images x and their contexts c (n, K).
    template <class Tensor>
    xt::xtensor<double, 1> bits_per_dim(const Tensor& x, const context_tensor& c, int n_bits, Rng& rng) const
        requires conditional
    {
        return to_bits(this->log_prob(dequantize(x, n_bits, rng), c), n_bits);
    }

    /// (−log p(x̃) + D·n·ln 2)/(D·ln 2): nats of a dequantised image → bits per dimension.
    static double nats_to_bits_per_dim(double nll_nats, int n_bits) {
        return (nll_nats + D * n_bits * std::numbers::ln2) / (D * std::numbers::ln2);
    }

    /// Every level's ε, (n, c_l, h_l, w_l) each, top level last.
    std::vector<image_tensor> encode(const data_tensor& x) const
        requires(!conditional)
    {
        return split_levels(this->forward(x).z);
    }
    std::vector<image_tensor> encode(const data_tensor& x, const context_tensor& c) const
        requires conditional
    {
        return split_levels(this->forward(x, c).z);
    }

    /// The images whose latents are eps (as encode returns them; all with the same n).
    data_tensor decode(const std::vector<image_tensor>& eps) const
        requires(!conditional)
    {
        return this->inverse(join_levels(eps)).x;
    }
    data_tensor decode(const std::vector<image_tensor>& eps, const context_tensor& c) const
        requires conditional
    {
        return this->inverse(join_levels(eps), c).x;
    }

    /// `points` images along the straight line in latent space from a to b (each a batch of one
    /// image); the first is decode(encode(a)) and the last decode(encode(b)).
    data_tensor interpolate(const data_tensor& a, const data_tensor& b, int points) const
        requires(!conditional)
    {
        check_interpolation(a, b, points);
        return this->inverse(line(this->forward(a).z, this->forward(b).z, points)).x;
    }
    /// The same under one context c (a single row) for the whole path.
    data_tensor interpolate(const data_tensor& a, const data_tensor& b, const context_tensor& c, int points) const
        requires conditional
    {
        check_interpolation(a, b, points);
        if (c.shape(0) != 1) throw shape_error("interpolate: the context must be a single row (got " + std::to_string(c.shape(0)) + ")");
        context_tensor all = context_tensor::from_shape({std::size_t(points), c.shape(1)});
        for (int j = 0; j < points; ++j) std::copy_n(c.data(), c.shape(1), all.data() + std::size_t(j) * c.shape(1));
        return this->inverse(line(this->forward(a, c).z, this->forward(b, c).z, points), all).x;
    }

private:
    /// x̃[k] = (x[k] + u(k))/2ⁿ − ½, k the flat index, after checking x[k] is an n-bit integer.
    template <class Tensor, class U>
    data_tensor dequantize_by(const Tensor& x, int n_bits, const char* what, U&& u) const {
        const int n = check_batch<S>(x, what);
        check_bits(n_bits, what);
        const double levels = std::ldexp(1.0, n_bits);
        data_tensor r = make_batch<T, S>(n);
        auto src = x.begin();
        for (std::size_t k = 0; k < r.size(); ++k, ++src) {
            const double v = double(*src);
            if (!(v >= 0.0 && v < levels && v == std::floor(v)))
                throw invalid_argument(std::string(what) + ": value " + std::to_string(v) + " at flat index " +
                                       std::to_string(k) + " is not an integer in [0, " +
                                       std::to_string(int(levels) - 1) + "] (n_bits = " + std::to_string(n_bits) + ")");
            r.data()[k] = T((v + u(k)) / levels - 0.5);
        }
        return r;
    }

    static xt::xtensor<double, 1> to_bits(const xt::xtensor<T, 1>& lp, int n_bits) {
        xt::xtensor<double, 1> r = xt::xtensor<double, 1>::from_shape({lp.size()});
        for (std::size_t i = 0; i < lp.size(); ++i) r(i) = nats_to_bits_per_dim(-double(lp(i)), n_bits);
        return r;
    }

    std::vector<image_tensor> split_levels(const latent_tensor& z) const {
        const int n = int(z.shape()[0]);
        std::vector<image_tensor> r;
        std::size_t off = 0;
        for (const auto& s : latent_shapes()) {
            const std::size_t sz = std::size_t(s[0]) * s[1] * s[2];
            image_tensor e = image_tensor::from_shape({std::size_t(n), std::size_t(s[0]), std::size_t(s[1]), std::size_t(s[2])});
            for (int i = 0; i < n; ++i)
                std::copy_n(z.data() + std::size_t(i) * D + off, sz, e.data() + std::size_t(i) * sz);
            r.push_back(std::move(e));
            off += sz;
        }
        return r;
    }

    latent_tensor join_levels(const std::vector<image_tensor>& eps) const {
        const auto shapes = latent_shapes();
        if (eps.size() != shapes.size())
            throw shape_error("decode: expected " + std::to_string(shapes.size()) + " latent tensors (one per level), got " +
                              std::to_string(eps.size()));
        const std::size_t n = eps.empty() ? 0 : eps[0].shape()[0];
        latent_tensor z = make_batch<T, Shape<D>>(int(n));
        std::size_t off = 0;
        for (std::size_t l = 0; l < eps.size(); ++l) {
            const auto& s = shapes[l];
            const auto& e = eps[l];
            if (e.shape()[0] != n || e.shape()[1] != std::size_t(s[0]) || e.shape()[2] != std::size_t(s[1]) ||
                e.shape()[3] != std::size_t(s[2]))
                throw shape_error("decode: latent " + std::to_string(l) + " has shape (" + std::to_string(e.shape()[0]) +
                                  ", " + std::to_string(e.shape()[1]) + ", " + std::to_string(e.shape()[2]) + ", " +
                                  std::to_string(e.shape()[3]) + "), expected (" + std::to_string(n) + ", " +
                                  std::to_string(s[0]) + ", " + std::to_string(s[1]) + ", " + std::to_string(s[2]) + ")");
            const std::size_t sz = std::size_t(s[0]) * s[1] * s[2];
            for (std::size_t i = 0; i < n; ++i) std::copy_n(e.data() + i * sz, sz, z.data() + i * D + off);
            off += sz;
        }
        return z;
    }

    static void check_interpolation(const data_tensor& a, const data_tensor& b, int points) {
        if (check_batch<S>(a, "interpolate") != 1 || check_batch<S>(b, "interpolate") != 1)
            throw shape_error("interpolate: a and b must each be a batch of one image");
        if (points < 2) throw invalid_argument("interpolate: needs at least 2 points (got " + std::to_string(points) + ")");
    }
    static latent_tensor line(const latent_tensor& za, const latent_tensor& zb, int points) {
        latent_tensor z = make_batch<T, Shape<D>>(points);
        for (int j = 0; j < points; ++j) {
            const double t = double(j) / (points - 1);
            for (int k = 0; k < D; ++k)
                z.data()[std::size_t(j) * D + k] = T((1.0 - t) * za.data()[k] + t * zb.data()[k]);
        }
        return z;
    }

    static void check_bits(int n_bits, const char* what) {
        if (n_bits < 1 || n_bits > 16)
            throw invalid_argument(std::string(what) + ": n_bits must be in [1, 16] (got " + std::to_string(n_bits) + ")");
    }

    template <class Level>
    static constexpr int count_levels() {
        if constexpr (requires { Level::last; }) {
            if constexpr (Level::last) return 1;
            else return 1 + count_levels<typename Level::next_type>();
        } else {
            return 1;
        }
    }
    template <class Level>
    static void collect_shapes(std::vector<std::array<int, 3>>& r) {
        if constexpr (requires { Level::last; }) {
            using E = typename Level::eps_shape;
            r.push_back({E::dims[0], E::dims[1], E::dims[2]});
            if constexpr (!Level::last) collect_shapes<typename Level::next_type>(r);
        } else {
            r.push_back({S::dims[0], S::dims[1], S::dims[2]});  // not multi-scale: one latent, the image shape
        }
    }
};

}  // namespace bijou
