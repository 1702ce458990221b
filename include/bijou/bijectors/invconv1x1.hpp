// bijou/bijectors/invconv1x1.hpp — invertible 1×1 convolutions (Kingma & Dhariwal 2018, §3.2).
//
// Recipes `InvConv1x1` and `InvConv1x1LU` (both state_dict name "invconv"), bound to any Shape<D>
// (a full D×D linear map) or Shape<C, H, W> (the same C×C map at every pixel). With
// C = channels_of<S> and HW = spatial_of<S> (1 for vectors), x, z: (n, C, HW):
//   forward  z[i, :, p] = W · x[i, :, p]          log|det ∂z/∂x| = +HW · log|det W|
//   inverse  x[i, :, p] = W⁻¹ · z[i, :, p]        log|det ∂x/∂z| = −HW · log|det W|
//   backward dx = Wᵀ·dz per position; parameter gradients as derived below.
//
// InvConv1x1: trainable "weight" (C×C), initialised to a uniformly random orthogonal matrix drawn
//   from the Rng given to reset_parameters (so |det W| = 1 and log|det| = 0 at start).
//   log|det W| and W⁻¹ are computed in double with Eigen's PartialPivLU on every forward/inverse/
//   backward: O(C³) per call, small next to the O(n·C²·HW) products for the C of a flow (C ≲ 100).
// InvConv1x1LU: W = P·L·(U + diag(sign ⊙ exp(log_s))) (Glow's LU-decomposed variant).
//   Trainable "lower" (C×C; only the strictly lower entries are used, L has a unit diagonal),
//   "upper" (C×C; only the strictly upper entries are used), "log_s" (C). Buffers "perm" (C: P as
//   indices, P[c, perm[c]] = 1) and "sign" (C: ±1), fixed by reset_parameters from the partial-pivot
//   LU of a random orthogonal matrix W0, so that W = W0 at start. log|det W| = Σ log_s costs O(C);
//   W is assembled (and W⁻¹ obtained by triangular solves) in double: O(C³) per call, plain loops.
//
// Errors: a weight with a non-finite entry, a numerically singular weight (an LU pivot with
// |u_kk| ≤ C·ε·max|W|, ε = DBL_EPSILON: W cannot be inverted meaningfully even in double), a log_s
// whose exp under/overflows, a sign that is not ±1, or a W⁻¹ that overflows T throw
// bijou::numerical_error naming the bijector, the tensor and the value — never a silent −inf/NaN.
// A "perm" buffer that is not a permutation throws bijou::error. load_checkpoint checks "perm" and
// "sign" the same way before it commits a file's values (ParamSet::add_check).
// Memory: no allocation in forward/inverse/backward; the C×C scratch (double factors, W and W⁻¹ in
// T, the weight-gradient chunks of the Cpu kernel) is sized at construction (on a backend with
// memory of its own, the copies of W, W⁻¹, G and the tensors on the first call). Checked with
// EIGEN_RUNTIME_NO_MALLOC for C ≤ 64; above that, Eigen's blocked LU in InvConv1x1 (and Eigen's
// GEMM behind kernels::gemm for large products) may take heap blocks and OpenMP threads of its
// own unless EIGEN_DONT_PARALLELIZE is defined. forward and inverse are const by the Bijector
// contract, so that scratch is `mutable`: these are caches of values derived from the parameters,
// recomputed on every call. One bound object must therefore not run two calls at once (the owning
// Flow's workspace arena already imposes that).
// Backends: the C×C factor arithmetic is host code in double, on host copies of the tensors
// (core/mirror.hpp); the products over the batch, the log-det additions and the log-det term of the
// weight gradient are kernels (kernels/*/linear1x1.hpp). On a backend with memory of its own (Cuda)
// each call therefore copies the small tensors to the host, and W or W⁻¹ (C×C) and the
// parameter-gradient increments back: a few synchronisations per call, fine for C ≲ 100, a
// candidate for device-side factor kernels if it ever shows in a profile. On a host backend these
// copies are the identity.
#pragma once

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstddef>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/LU>
#include <Eigen/QR>

#include "bijou/bijectors/permute.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/eigen.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/mirror.hpp"
#include "bijou/kernels/cpu/linear1x1.hpp"
#include "bijou/kernels/cuda/linear1x1.hpp"
#include "bijou/kernels/reference/linear1x1.hpp"

namespace bijou {

namespace detail {

using MatrixRd = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// A uniformly random (Haar-distributed) orthogonal C×C matrix: Q of the QR decomposition of a
/// matrix of standard normals, with column j multiplied by sign(R_jj) so that the result does not
/// depend on the QR algorithm's sign choices (Mezzadri 2007). det = ±1 with equal probability.
/// A template only so that Eigen's QR is instantiated where it is used, not in every file that
/// includes this header (it costs several seconds of compile time).
template <class R = Rng>
MatrixRd random_rotation(int C, R& rng) {
    Eigen::MatrixXd a(C, C);
    for (int i = 0; i < C; ++i)
        for (int j = 0; j < C; ++j) a(i, j) = rng.normal();
    const Eigen::HouseholderQR<Eigen::MatrixXd> qr(a);
    MatrixRd q = qr.householderQ();
    for (int j = 0; j < C; ++j)
        if (qr.matrixQR()(j, j) < 0.0) q.col(j) *= -1.0;
    return q;
}

inline std::string fmt_value(double v) {
    std::ostringstream os;
    os.precision(6);
    os << v;
    return os.str();
}

}  // namespace detail

// ------------------------------------------------------------------------------------------------
// InvConv1x1: a free C×C weight.
//
// Gradients. z = W·x at every position, so with dz = ∂L/∂z: dx = Wᵀ·dz and the data term of
// ∂L/∂W is G = Σ_{i,p} dz[i, :, p]·x[i, :, p]ᵀ. The log-det term: ∂ log|det W| / ∂W = W⁻ᵀ (Jacobi's
// formula) and ld_i = HW·log|det W|, so ∂L/∂W += (Σ_i dld_i)·HW·W⁻ᵀ (kernels::linear1x1_log_det_grad).
template <EventShape S, Scalar T, Backend B>
class InvConv1x1Bijector {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int C = channels_of<S>;
    static constexpr int HW = spatial_of<S>;

    explicit InvConv1x1Bijector(BuildContext&)
        : eye_(Eigen::MatrixXd::Identity(C, C)), wd_(C, C), inv_(C, C), lu_(C), winv_(std::size_t(C) * C),
          grad_scratch_(kernels::linear1x1_weight_grad_scratch(B{}, C, HW)) {}

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        key_ = join_name(prefix, "weight");
        ps.add(key_, {std::size_t(C), std::size_t(C)}, &weight_);
    }

    void reset_parameters(Rng& rng) {
        const detail::MatrixRd q = detail::random_rotation(C, rng);
        for (int a = 0; a < C; ++a)
            for (int b = 0; b < C; ++b) weight_[std::size_t(a) * C + b] = T(q(a, b));
    }

    std::size_t workspace_size(int) const { return 0; }

    void forward(const T* x, T* z, double* ld, int n, T*) const {
        const double s = HW * factorize();
        kernels::linear1x1(B{}, weight_.value, false, x, z, n, C, HW);
        add_constant(B{}, ld, std::size_t(n), s);
    }

    void inverse(const T* z, T* x, double* ld, int n, T*) const {
        const double s = HW * factorize();
        invert();
        for (int a = 0; a < C; ++a)
            for (int b = 0; b < C; ++b) winv_[std::size_t(a) * C + b] = T(inv_(a, b));
        check_inverse_fits();
        kernels::linear1x1(B{}, winv_stage_.in(winv_.data(), winv_.size()), false, z, x, n, C, HW);
        add_constant(B{}, ld, std::size_t(n), -s);
    }

    void backward(const T* x, const T*, const T* dz, const T* dld, T* dx, int n, T*) {
        kernels::linear1x1(B{}, weight_.value, true, dz, dx, n, C, HW);
        kernels::linear1x1_weight_grad(B{}, dz, x, weight_.grad, n, C, HW, grad_scratch_.data());
        factorize();
        invert();
        // inv_ is column-major, so its storage read row-major is W⁻ᵀ
        const double* winv_t = inv_stage_.in(inv_.data(), std::size_t(C) * C);
        kernels::linear1x1_log_det_grad(B{}, winv_t, weight_.grad, dld, n, C, HW);
    }

    /// W in double (C×C).
    Eigen::MatrixXd matrix() const {
        const auto host = mirror_.on_host(HostCopy::values, weight_);
        Eigen::MatrixXd w(C, C);
        for (int a = 0; a < C; ++a)
            for (int b = 0; b < C; ++b) w(a, b) = double(weight_[std::size_t(a) * C + b]);
        return w;
    }
    /// log|det W| (per position; forward adds HW times this). Throws like forward.
    double log_abs_det() const { return factorize(); }

    const TensorRef<T>& weight() const { return weight_; }

private:
    // wd_ ← W (double), lu_ ← its partial-pivot LU; returns log|det W|. Throws numerical_error for a
    // non-finite or numerically singular W.
    double factorize() const {
        const auto host = mirror_.on_host(HostCopy::values, weight_);
        double wmax = 0.0;
        for (int a = 0; a < C; ++a)
            for (int b = 0; b < C; ++b) {
                const double v = double(weight_[std::size_t(a) * C + b]);
                if (!std::isfinite(v))
                    throw numerical_error(who() + ": weight[" + std::to_string(a) + ", " + std::to_string(b) +
                                          "] = " + detail::fmt_value(v) + " is not finite");
                wd_(a, b) = v;
                wmax = std::max(wmax, std::abs(v));
            }
        lu_.compute(wd_);
        const double tol = C * DBL_EPSILON * wmax;
        double logdet = 0.0;
        for (int k = 0; k < C; ++k) logdet += std::log(std::abs(lu_.matrixLU()(k, k)));
        for (int k = 0; k < C; ++k) {
            const double u = lu_.matrixLU()(k, k);
            if (!(std::abs(u) > tol))
                throw numerical_error(who() + ": the " + std::to_string(C) + "x" + std::to_string(C) +
                                      " weight is singular (LU pivot " + std::to_string(k) + " = " +
                                      detail::fmt_value(u) + ", max|W| = " + detail::fmt_value(wmax) +
                                      ", log|det W| = " + detail::fmt_value(logdet) + ")");
        }
        return logdet;
    }

    // inv_ ← W⁻¹ from the factorisation. (lu_.solve on a stored identity: lu_.inverse() would copy
    // the decomposition, i.e. allocate.)
    void invert() const { inv_.noalias() = lu_.solve(eye_); }

    void check_inverse_fits() const {
        for (std::size_t k = 0; k < winv_.size(); ++k)
            if (!std::isfinite(winv_[k]))
                throw numerical_error(who() + ": inverse weight entry " + std::to_string(k) + " = " +
                                      detail::fmt_value(inv_(int(k) / C, int(k) % C)) + " does not fit the scalar type");
    }

    std::string who() const { return "InvConv1x1 '" + (key_.empty() ? std::string("weight") : key_) + "'"; }

    // mutable: the host code of const calls reads it through mirror_ (core/mirror.hpp)
    mutable TensorRef<T> weight_;
    mutable Mirror<B, T> mirror_;
    mutable BackendStage<B, T> winv_stage_;  // W⁻¹ where the kernels read it
    BackendStage<B, double> inv_stage_;      // W⁻ᵀ in double, likewise
    std::string key_;
    Eigen::MatrixXd eye_;  // the C×C identity
    mutable Eigen::MatrixXd wd_, inv_;
    mutable Eigen::PartialPivLU<Eigen::MatrixXd> lu_;
    mutable std::vector<T> winv_;
    std::vector<T> grad_scratch_;  // the Cpu weight-gradient kernel's per-chunk partial sums
};

// ------------------------------------------------------------------------------------------------
// InvConv1x1LU: W = P·L·U',  U' = U + diag(s),  s = sign ⊙ exp(log_s).
//
// Gradients (derivation). Let G = Σ_{i,p} dz[i, :, p]·x[i, :, p]ᵀ be the data term of ∂L/∂W, as for
// the plain convolution. P and sign are fixed, so
//   dW = P·dL·U' + P·L·dU'
//   ⟨G, dW⟩ = tr(Gᵀ P dL U') + tr(Gᵀ P L dU') = ⟨Pᵀ·G·U'ᵀ, dL⟩ + ⟨Lᵀ·Pᵀ·G, dU'⟩,
// hence ∂L/∂L = Pᵀ·G·U'ᵀ and ∂L/∂U' = Lᵀ·Pᵀ·G, of which only the free entries count:
//   lower[i, j], i > j:  (Pᵀ G U'ᵀ)[i, j] = Σ_{k ≥ j} (PᵀG)[i, k]·U'[j, k]
//   upper[i, j], i < j:  (Lᵀ Pᵀ G)[i, j]  = Σ_{k ≥ i} L[k, i]·(PᵀG)[k, j]
//   log_s[c]:            (Lᵀ Pᵀ G)[c, c]·∂s_c/∂log_s_c = (Lᵀ Pᵀ G)[c, c]·s_c
// The log-det term: ld_i = HW·Σ_c log_s_c, so log_s[c] += HW·Σ_i dld_i. Entries of lower on or above
// the diagonal and of upper on or below it are never read, so their gradient is exactly zero.
// (PᵀG)[perm[i], :] = G[i, :] since P[i, perm[i]] = 1.
template <EventShape S, Scalar T, Backend B>
class InvConv1x1LUBijector {
public:
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    static constexpr int C = channels_of<S>;
    static constexpr int HW = spatial_of<S>;

    explicit InvConv1x1LUBijector(BuildContext&)
        : perm_idx_(std::size_t(C)), inv_idx_(std::size_t(C)), s_(std::size_t(C)), l_(C, C), u_(C, C), m_(C, C),
          x_(C, C), w_t_(std::size_t(C) * C), winv_t_(std::size_t(C) * C), g_t_(std::size_t(C) * C),
          grad_scratch_(kernels::linear1x1_weight_grad_scratch(B{}, C, HW)) {}

    void declare(ParamSet<T>& ps, const std::string& prefix) {
        prefix_ = prefix;
        perm_label_ = "InvConv1x1LU buffer '" + join_name(prefix, "perm") + "'";
        const auto c = std::size_t(C);
        ps.add(join_name(prefix, "lower"), {c, c}, &lower_);
        ps.add(join_name(prefix, "upper"), {c, c}, &upper_);
        ps.add(join_name(prefix, "log_s"), {c}, &log_s_);
        ps.add_buffer(join_name(prefix, "perm"), {c}, &perm_);
        ps.add_buffer(join_name(prefix, "sign"), {c}, &sign_);
        // The buffers' invariants, for values loaded from a checkpoint before they are committed
        // (forward checks them again on every call, with the same messages).
        ps.add_check([perm = join_name(prefix, "perm"), sign = join_name(prefix, "sign"),
                      label = perm_label_](const StagedParams<T>& staged) {
            std::vector<int> p(static_cast<std::size_t>(C)), inv(p.size());
            detail::load_permutation(staged(perm), C, p.data(), inv.data(), label);
            const T* s = staged(sign);
            for (int k = 0; k < C; ++k)
                if (s[k] != T(1) && s[k] != T(-1))
                    throw numerical_error("InvConv1x1LU '" + sign + "'[" + std::to_string(k) + "] = " +
                                          detail::fmt_value(double(s[k])) + " (must be +1 or -1)");
        });
    }

    /// W0 = a random orthogonal matrix (as InvConv1x1), factorised W0 = P·L·U by partial pivoting.
    void reset_parameters(Rng& rng) {
        const detail::MatrixRd w0 = detail::random_rotation(C, rng);
        const Eigen::PartialPivLU<Eigen::MatrixXd> lu(w0);  // W0 = P_eigen⁻¹·L·U
        const Eigen::MatrixXd& f = lu.matrixLU();
        const Eigen::MatrixXd p = lu.permutationP().transpose().toDenseMatrix().template cast<double>();
        for (int i = 0; i < C; ++i) {
            int col = 0;
            for (int j = 0; j < C; ++j)
                if (p(i, j) == 1.0) col = j;
            perm_[std::size_t(i)] = T(col);  // P[i, perm[i]] = 1
            const double d = f(i, i);
            sign_[std::size_t(i)] = d < 0.0 ? T(-1) : T(1);
            log_s_[std::size_t(i)] = T(std::log(std::abs(d)));
            for (int j = 0; j < C; ++j) {
                lower_[std::size_t(i) * C + j] = i > j ? T(f(i, j)) : T(0);
                upper_[std::size_t(i) * C + j] = i < j ? T(f(i, j)) : T(0);
            }
        }
    }

    std::size_t workspace_size(int) const { return 0; }

    void forward(const T* x, T* z, double* ld, int n, T*) const {
        const double s = HW * assemble();
        build_weight();
        kernels::linear1x1(B{}, mat_stage_.in(w_t_.data(), w_t_.size()), false, x, z, n, C, HW);
        add_constant(B{}, ld, std::size_t(n), s);
    }

    void inverse(const T* z, T* x, double* ld, int n, T*) const {
        const double s = HW * assemble();
        build_inverse();
        kernels::linear1x1(B{}, mat_stage_.in(winv_t_.data(), winv_t_.size()), false, z, x, n, C, HW);
        add_constant(B{}, ld, std::size_t(n), -s);
    }

    void backward(const T* x, const T*, const T* dz, const T* dld, T* dx, int n, T*) {
        assemble();
        build_weight();
        kernels::linear1x1(B{}, mat_stage_.in(w_t_.data(), w_t_.size()), true, dz, dx, n, C, HW);  // dx = Wᵀ·dz
        // G in backend memory, then on the host for the factor algebra
        T* g = g_stage_.out(g_t_.data(), g_t_.size());
        fill(B{}, g, g_t_.size(), T(0));
        kernels::linear1x1_weight_grad(B{}, dz, x, g, n, C, HW, grad_scratch_.data());
        g_stage_.finish(g_t_.data(), g_t_.size());
        double gld = sum(B{}, dld, static_cast<const T*>(nullptr), std::size_t(n));

        detail::MatrixRd& pg = x_;  // PᵀG, in double
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j) pg(perm_idx_[std::size_t(i)], j) = double(g_t_[std::size_t(i) * C + j]);
        gld *= HW;
        // The increments, added to the gradients on the host (sent to the backend's by send_grads).
        auto host = mirror_.on_host(HostCopy::grads, lower_, upper_, log_s_);
        T* gl = lower_.grad;
        T* gu = upper_.grad;
        T* gs = log_s_.grad;
        for (int i = 0; i < C; ++i) {
            for (int j = 0; j < i; ++j) {  // lower[i, j] += Σ_{k ≥ j} (PᵀG)[i, k]·U'[j, k]
                double acc = 0.0;
                for (int k = j; k < C; ++k) acc += pg(i, k) * u_(j, k);
                gl[std::size_t(i) * C + j] += T(acc);
            }
            for (int j = i; j < C; ++j) {  // (LᵀPᵀG)[i, j] = Σ_{k ≥ i} L[k, i]·(PᵀG)[k, j]
                double acc = 0.0;
                for (int k = i; k < C; ++k) acc += l_(k, i) * pg(k, j);
                if (j > i) gu[std::size_t(i) * C + j] += T(acc);
                else gs[std::size_t(i)] += T(acc * s_[std::size_t(i)] + gld);
            }
        }
        host.send_grads();
    }

    /// W = P·L·U' in double (C×C). Throws like forward.
    Eigen::MatrixXd matrix() const {
        assemble();
        Eigen::MatrixXd w(C, C);
        multiply_lu();
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j) w(i, j) = m_(perm_idx_[std::size_t(i)], j);
        return w;
    }
    /// log|det W| = Σ log_s (per position; forward adds HW times this). Throws like forward.
    double log_abs_det() const { return assemble(); }

    const TensorRef<T>& lower() const { return lower_; }
    const TensorRef<T>& upper() const { return upper_; }
    const TensorRef<T>& log_s() const { return log_s_; }
    /// P as indices: P[c, permutation()[c]] = 1. Throws like forward.
    std::vector<int> permutation() const {
        assemble();
        return perm_idx_;
    }

private:
    // Validates every tensor and fills perm_idx_, s_, l_ (unit lower) and u_ (= U'); returns Σ log_s.
    double assemble() const {
        const auto host = mirror_.on_host(HostCopy::values, perm_, sign_, log_s_, lower_, upper_);
        detail::load_permutation(perm_.value, C, perm_idx_.data(), inv_idx_.data(), perm_label_);
        double sum = 0.0;
        for (int c = 0; c < C; ++c) {
            const double sg = double(sign_[std::size_t(c)]), ls = double(log_s_[std::size_t(c)]);
            if (sg != 1.0 && sg != -1.0)
                throw numerical_error(who("sign", c) + " = " + detail::fmt_value(sg) + " (must be +1 or -1)");
            const double s = sg * std::exp(ls);
            if (!std::isfinite(ls) || s == 0.0 || !std::isfinite(s))
                throw numerical_error(who("log_s", c) + " = " + detail::fmt_value(ls) + " makes W " +
                                      (std::isnan(ls) || std::isinf(s) ? "non-finite" : "singular") +
                                      " (s = sign·exp(log_s) = " + detail::fmt_value(s) + ")");
            s_[std::size_t(c)] = s;
            sum += ls;
        }
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j) {
                const std::size_t k = std::size_t(i) * C + j;
                const double lv = i > j ? double(lower_[k]) : (i == j ? 1.0 : 0.0);
                const double uv = i < j ? double(upper_[k]) : (i == j ? s_[std::size_t(i)] : 0.0);
                if (!std::isfinite(lv)) throw numerical_error(who("lower", i, j) + " = " + detail::fmt_value(lv));
                if (!std::isfinite(uv)) throw numerical_error(who("upper", i, j) + " = " + detail::fmt_value(uv));
                l_(i, j) = lv;
                u_(i, j) = uv;
            }
        return sum;
    }

    // m_ ← L·U'  (M[i, j] = Σ_{k ≤ min(i, j)} L[i, k]·U'[k, j], the terms in ascending k). Row i is
    // built as Σ_k L[i, k]·(row k of U' from column k on), whole rows at a time: the same terms in the
    // same order for every element, but vectorised across j rather than one dependent chain of adds
    // per element (at C = 48, Glow's third level, that chain took ~150k cycles per call, twice per
    // step per step of flow: 0.5% of config d's training on 2 threads, the other thread waiting).
    void multiply_lu() const {
        for (int i = 0; i < C; ++i) {
            double* mi = &m_(i, 0);
            for (int j = 0; j < C; ++j) mi[j] = 0.0;
            for (int k = 0; k <= i; ++k) {
                const double a = l_(i, k);
                const double* uk = &u_(k, 0);
                for (int j = k; j < C; ++j) mi[j] += a * uk[j];
            }
        }
    }

    // w_t_ ← W = P·L·U' in T (row i of W is row perm[i] of L·U'). Needs assemble().
    void build_weight() const {
        multiply_lu();
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j) w_t_[std::size_t(i) * C + j] = T(m_(perm_idx_[std::size_t(i)], j));
    }

    // winv_t_ ← W⁻¹ = U'⁻¹·L⁻¹·Pᵀ in T, by forward then back substitution on X = Pᵀ. Needs assemble().
    void build_inverse() const {
        x_.setZero();
        for (int i = 0; i < C; ++i) x_(perm_idx_[std::size_t(i)], i) = 1.0;  // Pᵀ[perm[i], i] = 1
        for (int i = 1; i < C; ++i)                                          // X ← L⁻¹·X
            for (int k = 0; k < i; ++k) x_.row(i) -= l_(i, k) * x_.row(k);
        for (int i = C - 1; i >= 0; --i) {  // X ← U'⁻¹·X
            for (int k = i + 1; k < C; ++k) x_.row(i) -= u_(i, k) * x_.row(k);
            x_.row(i) /= u_(i, i);
        }
        for (int i = 0; i < C; ++i)
            for (int j = 0; j < C; ++j) {
                const T v = T(x_(i, j));
                if (!std::isfinite(v))
                    throw numerical_error("InvConv1x1LU '" + prefix_ + "': inverse W[" + std::to_string(i) + ", " +
                                          std::to_string(j) + "] = " + detail::fmt_value(x_(i, j)) +
                                          " does not fit the scalar type (W is numerically singular)");
                winv_t_[std::size_t(i) * C + j] = v;
            }
    }

    std::string key(const char* tensor) const { return join_name(prefix_, tensor); }
    std::string who(const char* tensor, int i, int j = -1) const {
        return "InvConv1x1LU '" + key(tensor) + "'[" + std::to_string(i) + (j >= 0 ? ", " + std::to_string(j) : "") +
               "]";
    }

    // mutable: the host code of const calls reads them through mirror_ (core/mirror.hpp)
    mutable TensorRef<T> lower_, upper_, log_s_, perm_, sign_;
    mutable Mirror<B, T> mirror_;
    std::string prefix_, perm_label_;
    mutable std::vector<int> perm_idx_, inv_idx_;
    mutable std::vector<double> s_;           // sign ⊙ exp(log_s)
    mutable detail::MatrixRd l_, u_, m_, x_;  // L (unit lower), U', L·U', X (W⁻¹ or PᵀG)
    mutable std::vector<T> w_t_, winv_t_;     // W and W⁻¹ in T for the kernels
    std::vector<T> g_t_;                      // G = Σ dz·xᵀ in T
    std::vector<T> grad_scratch_;             // the Cpu weight-gradient kernel's per-chunk partial sums
    mutable BackendStage<B, T> mat_stage_;    // W or W⁻¹ where the kernels read it
    BackendStage<B, T> g_stage_;              // G where the kernel writes it
};

/// Recipe: invertible 1×1 convolution with a free weight (log|det| and W⁻¹ by LU in double).
struct InvConv1x1 {
    static constexpr std::string_view name = "invconv";
    template <class S, class T, class B>
    using bind = InvConv1x1Bijector<S, T, B>;
};

/// Recipe: LU-parametrised invertible 1×1 convolution, W = P·L·(U + diag(sign ⊙ exp(log_s))).
struct InvConv1x1LU {
    static constexpr std::string_view name = "invconv";
    template <class S, class T, class B>
    using bind = InvConv1x1LUBijector<S, T, B>;
};

}  // namespace bijou
