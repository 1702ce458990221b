// bijou/nn/made.hpp — MADE, the masked autoencoder for distribution estimation (Germain et al. 2015):
// an MLP whose weight masks make output group j depend only on the inputs that precede feature j in
// an order — the conditioner of masked and inverse autoregressive flows (bijectors/autoregressive.hpp).
//
// Made<T, B>(D, hidden, hidden_layers, P, layout, degrees, context = K, hidden_degrees, rng):
//   input x (n, D) [and context c (n, K)] → output (n, D·P): P parameters per feature.
//   degrees: feature j's degree d(j) ∈ 1…D, a permutation (its position in the order, counted from 1).
//   Hidden unit k of layer l gets a degree m_l(k) ∈ [min(D − 1, 1), D − 1]:
//     MadeDegrees::cyclic   m_l(k) = k mod max(D − 1, 1) + min(D − 1, 1): every degree equally often
//                           (nflows' default)
//     MadeDegrees::sampled  m_l(k) uniform on [min_k' m_{l−1}(k'), D − 1], the paper's §4 (drawn from rng)
//   Masks (eq. 12–13): hidden unit k of layer 1 sees input j iff m_1(k) ≥ d(j); of layer l, unit k' of
//   layer l − 1 iff m_l(k) ≥ m_{l−1}(k'); output unit u of feature f(u) sees hidden unit k iff
//   d(f(u)) > m_L(k). The context columns are unmasked (every hidden unit of layer 1 sees c). So output
//   group j is a function of c and of the x_i with d(i) < d(j) only: the Jacobian of any transform it
//   conditions is triangular in the order.
//   layout: which output unit belongs to which feature: MadeLayout::feature_major (u = j·P + q, the
//   P parameters of a feature contiguous) or parameter_major (u = q·D + j: P blocks of D).
// State_dict: the masked Mlp's "<prefix>.<2l>.weight", ".bias" and buffer ".mask" (nn/mlp.hpp), and
// the buffer "<prefix>.degrees" (D). load_checkpoint checks a file's masks before it commits them:
// every mask 0/1 and the connectivity autoregressive in the file's degrees (bijou::error otherwise).
// Cost: that of the Mlp (masked weights are multiplied, not skipped), plus the masking of the weights
// and their gradients, O(Σ weights) per pass.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <string>
#include <vector>

#include "bijou/core/error.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"
#include "bijou/nn/mlp.hpp"

namespace bijou {

/// How MADE assigns degrees to hidden units.
enum class MadeDegrees {
    cyclic,   ///< k mod (D − 1) + 1: deterministic, every degree equally often (nflows' default)
    sampled,  ///< uniform on [min of the previous layer, D − 1] (Germain et al. 2015, §4)
};

/// Which output unit of a MADE belongs to which feature.
enum class MadeLayout {
    feature_major,    ///< u = j·P + q: feature j's P parameters contiguous
    parameter_major,  ///< u = q·D + j: parameter q of every feature contiguous
};

constexpr std::string_view setting_name(MadeDegrees v) { return v == MadeDegrees::cyclic ? "cyclic" : "sampled"; }

namespace detail {

/// The masks of a MADE (one per Mlp layer, out_l × ld_l row-major, 0/1) for the given degrees.
inline std::vector<std::vector<int>> made_masks(const std::vector<int>& degrees, const std::vector<std::vector<int>>& hidden,
                                                int P, MadeLayout layout, int context) {
    const int D = int(degrees.size()), L = int(hidden.size());
    std::vector<std::vector<int>> masks;
    // layer 0: (H, D + K)
    {
        const std::vector<int>& m = hidden[0];
        const int H = int(m.size()), ld = D + context;
        std::vector<int> M(std::size_t(H) * ld, 1);
        for (int k = 0; k < H; ++k)
            for (int j = 0; j < D; ++j) M[std::size_t(k) * ld + j] = m[std::size_t(k)] >= degrees[std::size_t(j)];
        masks.push_back(std::move(M));
    }
    for (int l = 1; l < L; ++l) {
        const std::vector<int>&m = hidden[std::size_t(l)], &prev = hidden[std::size_t(l) - 1];
        std::vector<int> M(m.size() * prev.size());
        for (std::size_t k = 0; k < m.size(); ++k)
            for (std::size_t k2 = 0; k2 < prev.size(); ++k2) M[k * prev.size() + k2] = m[k] >= prev[k2];
        masks.push_back(std::move(M));
    }
    const std::vector<int>& last = hidden.back();
    const int U = D * P;
    std::vector<int> M(std::size_t(U) * last.size());
    for (int u = 0; u < U; ++u) {
        const int f = layout == MadeLayout::feature_major ? u / P : u % D;
        for (std::size_t k = 0; k < last.size(); ++k) M[std::size_t(u) * last.size() + k] = degrees[std::size_t(f)] > last[k];
    }
    masks.push_back(std::move(M));
    return masks;
}

/// Throws bijou::error starting with `what` unless `degrees` is a permutation of 1…D and the masks
/// (0/1, sizes as made_masks gives them) only connect output group j to inputs of lower degree.
template <class T>
void check_made(const T* degrees, const std::vector<const T*>& masks, const std::vector<std::vector<int>>& shapes, int D,
                int P, MadeLayout layout, const std::string& what) {
    std::vector<int> deg(static_cast<std::size_t>(D));
    std::vector<bool> seen(std::size_t(D) + 1, false);
    for (int j = 0; j < D; ++j) {
        const T v = degrees[j];
        const bool ok = std::isfinite(double(v)) && v >= T(1) && v <= T(D) && std::floor(v) == v && !seen[std::size_t(v)];
        if (!ok)
            throw error(what + ": degrees is not a permutation of 1.." + std::to_string(D) + " (entry " + std::to_string(j) +
                        " is " + std::to_string(double(v)) + ")");
        seen[std::size_t(v)] = true;
        deg[std::size_t(j)] = int(v);
    }
    // reach[u][j]: output unit u depends on input j through unmasked paths (boolean products).
    std::vector<std::vector<char>> reach;  // rows: units of the current layer, cols: inputs
    for (std::size_t l = 0; l < masks.size(); ++l) {
        const int out = shapes[l][0], in = shapes[l][1];
        for (int k = 0; k < out * in; ++k)
            if (masks[l][k] != T(0) && masks[l][k] != T(1))
                throw error(what + ": mask " + std::to_string(l) + " has the value " + std::to_string(double(masks[l][k])) +
                            " at index " + std::to_string(k) + "; masks are 0 or 1");
        std::vector<std::vector<char>> next(std::size_t(out), std::vector<char>(std::size_t(D), 0));
        for (int u = 0; u < out; ++u)
            for (int k = 0; k < in; ++k) {
                if (masks[l][std::size_t(u) * in + k] == T(0)) continue;
                if (l == 0) {
                    if (k < D) next[std::size_t(u)][std::size_t(k)] = 1;  // context columns carry no input
                } else {
                    for (int j = 0; j < D; ++j) next[std::size_t(u)][std::size_t(j)] |= reach[std::size_t(k)][std::size_t(j)];
                }
            }
        reach = std::move(next);
    }
    for (std::size_t u = 0; u < reach.size(); ++u) {
        const int feature = layout == MadeLayout::feature_major ? int(u) / P : int(u) % D;
        const int own = deg[static_cast<std::size_t>(feature)];
        for (int j = 0; j < D; ++j) {
            const int seen = deg[static_cast<std::size_t>(j)];
            if (reach[u][static_cast<std::size_t>(j)] && seen >= own)
                throw error(what + ": the masks let output " + std::to_string(u) + " (feature " + std::to_string(feature) +
                            ", degree " + std::to_string(own) + ") see input " + std::to_string(j) + " (degree " +
                            std::to_string(seen) + "): not autoregressive");
        }
    }
}

}  // namespace detail

template <Scalar T, Backend B>
class Made {
public:
    Made() = default;

    Made(int D, int hidden, int hidden_layers, int P, MadeLayout layout, std::vector<int> degrees, int context,
         MadeDegrees hidden_degrees, Rng& rng)
        : D_(D), P_(P), layout_(layout), degrees_(std::move(degrees)),
          net_(D, hidden, hidden_layers, D * P, context) {
        if (int(degrees_.size()) != D) throw invalid_argument("Made: degrees has " + std::to_string(degrees_.size()) +
                                                              " entries for " + std::to_string(D) + " features");
        const int lo = std::min(D - 1, 1), hi = D - 1;
        std::vector<std::vector<int>> hd;
        int floor_prev = lo;
        for (int l = 0; l < hidden_layers; ++l) {
            std::vector<int> m(static_cast<std::size_t>(hidden));
            for (int k = 0; k < hidden; ++k)
                m[std::size_t(k)] = hidden_degrees == MadeDegrees::cyclic
                                        ? k % std::max(D - 1, 1) + lo
                                        : floor_prev + int(rng.below(std::uint64_t(hi - floor_prev + 1)));
            floor_prev = *std::min_element(m.begin(), m.end());
            hd.push_back(std::move(m));
        }
        const auto masks = detail::made_masks(degrees_, hd, P, layout, context);
        std::vector<std::vector<T>> tm;
        for (const auto& m : masks) tm.emplace_back(m.begin(), m.end());
        net_.set_masks(std::move(tm));
    }

    Made(const Made&) = delete;
    Made& operator=(const Made&) = delete;
    Made(Made&&) noexcept = default;
    Made& operator=(Made&&) noexcept = default;

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        net_.declare(ps, prefix);
        const std::string key = join_name(prefix, "degrees");
        ps.add_buffer(key, {std::size_t(D_)}, &degrees_buf_);
        std::vector<std::string> names;
        std::vector<std::vector<int>> shapes;
        for (int l = 0; l <= net_.hidden_layers(); ++l) {
            names.push_back(join_name(join_name(prefix, std::to_string(2 * l)), "mask"));
            shapes.push_back({l == net_.hidden_layers() ? D_ * P_ : net_.hidden(),
                              l == 0 ? D_ + net_.context() : net_.hidden()});
        }
        ps.add_check([key, names, shapes, D = D_, P = P_, layout = layout_](const StagedParams<T>& staged) {
            std::vector<const T*> masks;
            for (const auto& n : names) masks.push_back(staged(n));
            detail::check_made(staged(key), masks, shapes, D, P, layout, "MADE '" + key.substr(0, key.size() - 8) + "'");
        });
    }

    void reset_parameters(Rng& rng, bool zero_last) {
        net_.reset_parameters(rng, zero_last);
        for (int j = 0; j < D_; ++j) degrees_buf_[std::size_t(j)] = T(degrees_[std::size_t(j)]);
    }

    std::size_t stored_size(int n) const { return net_.stored_size(n); }
    std::size_t scratch_size(int n) const { return net_.scratch_size(n); }

    /// y (n, D·P) = MADE([x | c]); activations and masked weights go to `stored`.
    void forward(const T* x, const T* c, T* y, int n, T* stored) const { net_.forward(x, c, y, n, stored); }

    /// Parameter gradients += (unless param_grads is false), dx = ∂L/∂x (if not null), dc += ∂L/∂c (if
    /// not null), for ∂L/∂y = dy.
    void backward(const T* x, const T* c, const T* dy, T* dx, T* dc, int n, const T* stored, T* scratch,
                  bool param_grads = true) {
        net_.backward(x, c, dy, dx, dc, n, stored, scratch, param_grads);
    }

    int features() const { return D_; }
    int params_per_feature() const { return P_; }
    /// Feature j's degree (1…D).
    const std::vector<int>& degrees() const { return degrees_; }
    const Mlp<T, B>& net() const { return net_; }

private:
    int D_ = 0, P_ = 0;
    MadeLayout layout_ = MadeLayout::feature_major;
    std::vector<int> degrees_;
    Mlp<T, B> net_;
    TensorRef<T> degrees_buf_;
};

}  // namespace bijou
