// bijou/testing/conformance.hpp — the conformance suite every bijector must pass (public).
//
// conformance<Recipe, Shape, T, Backend>(cfg) builds the recipe with small options, runs its
// data-dependent initialisation if it has one, adds noise to every parameter (so that zero-initialised
// nets and identity ActNorms cannot pass trivially) and checks:
//   round_trip         inverse(forward(x)) == x                        (rtol: float 1e-4, double 1e-10)
//   inverse_log_det    log|det| of inverse(z) == −log|det| of forward(x)
//   jacobian_log_det   log|det| == log|det J| of a central-difference Jacobian, in double
//   input_gradient     backward's dx == central differences of L = Σ⟨r, z⟩ + Σ c·log|det|, in double
//   param_gradient     backward's parameter gradients == central differences (≤ max_coords per tensor)
//   backward_after_inverse  backward run right after inverse gives the same gradients as after
//                      forward (the workspace contract memory-saving training relies on), in double
//   scratch_not_kept   a bijector that declares scratch (core/workspace.hpp): the same gradients when
//                      its scratch is overwritten with NaN between forward and backward (host backends)
//   backend_*          this backend equals Reference (forward, log-det, inverse, dx, parameter grads)
// A conditional recipe (core/context.hpp) runs every check above with a random context batch held
// fixed, and also:
//   context_gradient   backward's ∂L/∂c == central differences in c, in double
//   context_changes_output   another context gives another z or log-det
//   rows_independent   changing row 0's context leaves every other row's z and log-det bit-identical
//   backend_context_gradient  this backend's ∂L/∂c equals Reference's
// The double checks run on a double twin of the instance with the same parameters (cast).
// Any backend: for one whose memory is not the host's (Cuda, CudaHost), data go through the raw API
// in backend buffers and parameters through params() with to_host()/to_device().
// Comparison: ‖a − b‖∞ ≤ rtol · max(‖b‖∞, 1). It is test-framework agnostic: it returns a Report
// whose str() lists each check, and for failures the first differing values and the max difference.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "bijou/models/flow.hpp"

namespace bijou::testing {

/// Named tolerances per scalar type.
template <class T>
struct Tolerance;
template <>
struct Tolerance<float> {
    static constexpr double round_trip = 1e-4;
    static constexpr double backend = 1e-5;
};
template <>
struct Tolerance<double> {
    static constexpr double round_trip = 1e-10;
    static constexpr double backend = 1e-10;
    static constexpr double jacobian = 1e-6;
    static constexpr double gradient = 1e-6;
};

struct Check {
    std::string name;
    bool passed = true;
    double max_diff = 0.0;
    double tolerance = 0.0;
    std::string detail;
};

struct Report {
    std::string subject;
    std::vector<Check> checks;

    bool ok() const {
        return !checks.empty() && std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.passed; });
    }
    const Check* find(const std::string& name) const {
        for (const auto& c : checks)
            if (c.name == name) return &c;
        return nullptr;
    }
    std::string str() const {
        std::ostringstream os;
        os << subject << ": " << (ok() ? "ok" : "FAILED") << "\n";
        for (const auto& c : checks) {
            os << "  " << (c.passed ? "pass " : "FAIL ") << c.name << "  max|diff| " << c.max_diff << " (allowed "
               << c.tolerance << ")";
            if (!c.detail.empty()) os << "\n" << c.detail;
            os << "\n";
        }
        return os.str();
    }
};

struct Config {
    Options options = small_options();
    int batch = 3;
    std::uint64_t seed = 1;
    double param_noise = 0.2;  ///< std-dev of the noise added to every parameter
    int max_coords = 64;       ///< finite-difference coordinates checked per tensor
    double fd_step = 1e-5;     ///< central-difference step (double)

    static Options small_options() {
        Options o;
        o.hidden = 8;
        o.hidden_layers = 2;
        o.steps_per_level = 2;
        o.seed = 7;
        return o;
    }
};

/// ‖a − b‖∞ ≤ rtol · max(‖b‖∞, 1), reporting the first differing values.
inline Check compare(std::string name, const std::vector<double>& a, const std::vector<double>& b, double rtol) {
    Check c;
    c.name = std::move(name);
    c.tolerance = rtol;
    if (a.size() != b.size()) {
        c.passed = false;
        c.detail = "    sizes differ: " + std::to_string(a.size()) + " vs " + std::to_string(b.size());
        return c;
    }
    double scale = 1.0;
    for (double v : b) scale = std::max(scale, std::abs(v));
    const double allowed = rtol * scale;
    c.tolerance = allowed;
    std::ostringstream os;
    int shown = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        const double d = std::abs(a[i] - b[i]);
        const bool bad = !(d <= allowed);  // NaN fails
        if (std::isnan(d)) c.max_diff = d;
        else if (!std::isnan(c.max_diff)) c.max_diff = std::max(c.max_diff, d);
        if (bad) {
            c.passed = false;
            if (shown++ < 5) os << "    [" << i << "] got " << a[i] << ", expected " << b[i] << "\n";
        }
    }
    c.detail = os.str();
    if (!c.detail.empty() && c.detail.back() == '\n') c.detail.pop_back();
    return c;
}

namespace detail {

template <class T>
std::vector<double> to_double(const T* p, std::size_t n) {
    return std::vector<double>(p, p + n);
}

/// Copies every tensor (parameters and buffers), matched by position and name, with a cast.
template <class Dst, class Src>
void copy_params(Dst& dst, const Src& src) {
    src.to_host();
    const auto& ts = src.params().tensors();
    const auto& td = dst.params().tensors();
    if (ts.size() != td.size()) throw error("conformance: twin instances declare different tensors");
    for (std::size_t k = 0; k < ts.size(); ++k) {
        if (ts[k].name != td[k].name || ts[k].size != td[k].size)
            throw error("conformance: twin tensors differ at '" + ts[k].name + "'");
        const auto* s = src.params().data(ts[k]);
        auto* d = dst.params().data(td[k]);
        for (std::size_t i = 0; i < ts[k].size; ++i) d[i] = static_cast<std::remove_pointer_t<decltype(d)>>(s[i]);
    }
    dst.to_device();
}

// The raw API on backend pointers; c (n × K) is the context of a conditional flow (ignored otherwise).
template <class F, class U>
void raw_map(const F& f, const U* in, const U* c, U* out, int n, bool inverse) {
    if constexpr (F::conditional) {
        if (inverse) f.inverse_raw(in, c, out, n);
        else f.forward_raw(in, c, out, n);
    } else if (inverse) {
        f.inverse_raw(in, out, n);
    } else {
        f.forward_raw(in, out, n);
    }
}
template <class F, class U>
void raw_backward(F& f, const U* x, const U* c, const U* z, const U* dz, const U* dld, U* dx, U* dc, int n) {
    if constexpr (F::conditional) f.backward_raw(x, c, z, dz, dld, dx, dc, n);
    else f.backward_raw(x, z, dz, dld, dx, n);
}

// The raw API on host vectors, staged through backend memory when the backend's is not the host's.
template <class F, class U>
void run_forward(const F& f, const U* x, U* z, int n, bool inverse = false, const U* c = nullptr) {
    using B = typename F::backend;
    const std::size_t nin = std::size_t(n) * (inverse ? F::latent_size : F::data_size);
    const std::size_t nout = std::size_t(n) * (inverse ? F::data_size : F::latent_size);
    const std::size_t nc = std::size_t(n) * F::context_size;
    if constexpr (ExecutorBackend<B>) {
        Buffer<B, U> in(nin), out(nout), bc(nc);
        upload(B{}, in.data(), x, nin);
        if (nc > 0) upload(B{}, bc.data(), c, nc);
        raw_map(f, in.data(), bc.data(), out.data(), n, inverse);
        download(B{}, z, out.data(), nout);
    } else {
        raw_map(f, x, c, z, n, inverse);
    }
}

template <class F, class U>
void run_inverse(const F& f, const U* z, U* x, int n, const U* c = nullptr) {
    run_forward(f, z, x, n, true, c);
}

/// backward on host vectors; dc (host, n × K) receives ∂L/∂c (assigned) for a conditional flow.
template <class F, class U>
void run_backward(F& f, const U* x, const U* z, const U* dz, const U* dld, U* dx, int n, const U* c = nullptr,
                  U* dc = nullptr) {
    using B = typename F::backend;
    const std::size_t nc = std::size_t(n) * F::context_size;
    if (dc != nullptr) std::fill_n(dc, nc, U(0));
    if constexpr (ExecutorBackend<B>) {
        const std::size_t nx = std::size_t(n) * F::data_size, nz = std::size_t(n) * F::latent_size;
        Buffer<B, U> bx{nx}, bz{nz}, bdz{nz}, bdld{std::size_t(n)}, bdx{nx}, bc{nc}, bdc{nc};
        upload(B{}, bx.data(), x, nx);
        upload(B{}, bz.data(), z, nz);
        upload(B{}, bdz.data(), dz, nz);
        upload(B{}, bdld.data(), dld, std::size_t(n));
        if (nc > 0) upload(B{}, bc.data(), c, nc);
        raw_backward(f, bx.data(), bc.data(), bz.data(), bdz.data(), bdld.data(), bdx.data(), bdc.data(), n);
        download(B{}, dx, bdx.data(), nx);
        if (dc != nullptr && nc > 0) download(B{}, dc, bdc.data(), nc);
    } else {
        std::vector<U> scratch;
        if (dc == nullptr && nc > 0) scratch.assign(nc, U(0));
        raw_backward(f, x, c, z, dz, dld, dx, dc ? dc : scratch.data(), n);
    }
}

/// The gradients, in host memory.
template <class F>
auto host_grads(F& f) {
    using U = typename F::scalar;
    const auto g = f.gradients();
    std::vector<U> h(g.size());
    download(typename F::backend{}, h.data(), g.data(), g.size());
    return h;
}

template <class F>
double scalar_loss(F& f, const std::vector<double>& x, const std::vector<double>& r, const std::vector<double>& c,
                   int n, const double* ctx = nullptr) {
    using Out = typename F::out_shape;
    std::vector<double> z(std::size_t(n) * Out::size);
    run_forward(f, x.data(), z.data(), n, false, ctx);
    auto ld = f.last_log_det(n);
    double L = 0.0;
    for (std::size_t k = 0; k < z.size(); ++k) L += r[k] * z[k];
    for (int i = 0; i < n; ++i) L += c[std::size_t(i)] * ld[std::size_t(i)];
    return L;
}

inline std::vector<std::size_t> pick_coords(std::size_t size, int max_coords, Rng& rng) {
    std::vector<std::size_t> idx(size);
    for (std::size_t i = 0; i < size; ++i) idx[i] = i;
    if (size <= std::size_t(max_coords)) return idx;
    for (std::size_t i = 0; i < std::size_t(max_coords); ++i) std::swap(idx[i], idx[i + rng.below(size - i)]);
    idx.resize(std::size_t(max_coords));
    std::sort(idx.begin(), idx.end());
    return idx;
}

}  // namespace detail

/// Runs the conformance checks on one (recipe, shape, scalar, backend).
template <class Recipe, EventShape S, Scalar T, Backend B>
Report conformance(const Config& cfg = {}) {
    using F = Transform<Recipe, S, T, B>;
    using Fd = Transform<Recipe, S, double, B>;
    using Fr = Transform<Recipe, S, T, Reference>;
    using Out = typename F::out_shape;
    constexpr int Din = S::size, Dout = Out::size, K = F::context_size;
    const int n = cfg.batch;

    Report rep;
    rep.subject = std::string(bijou::detail::recipe_name<Recipe>().empty() ? "chain" : bijou::detail::recipe_name<Recipe>()) + " " +
                  S::str() + " " + (std::is_same_v<T, float> ? "float" : "double") + " " + std::string(B::name);

    Rng rng(cfg.seed);
    F f(cfg.options);

    // Data-dependent initialisation on a shifted, scaled batch, then noise on every parameter.
    std::vector<T> x(std::size_t(n) * Din);
    if constexpr (DataInitialized<typename F::bijector_type>) {
        auto xi = make_batch<T, S>(4 * n);
        for (auto& v : xi) v = T(0.3 + 1.7 * rng.normal());
        if constexpr (F::conditional) {
            auto ci = make_batch<T, typename F::context_shape>(4 * n);
            for (auto& v : ci) v = T(rng.normal());
            f.initialize(xi, ci);
        } else {
            f.initialize(xi);
        }
    }
    f.to_host();
    for (const auto& t : f.params().tensors()) {
        if (!t.trainable) continue;
        T* p = f.params().data(t);
        for (std::size_t i = 0; i < t.size; ++i) p[i] += T(cfg.param_noise * rng.normal());
    }
    f.to_device();
    for (auto& v : x) v = T(rng.normal());
    // A conditional recipe's context batch (n × K), held fixed by every check but the context ones.
    std::vector<T> ctx(std::size_t(n) * K);
    for (auto& v : ctx) v = T(rng.normal());
    const T* cx = K > 0 ? ctx.data() : nullptr;

    // Round trip and inverse log-det.
    std::vector<T> z(std::size_t(n) * Dout), xr(x.size());
    detail::run_forward(f, x.data(), z.data(), n, false, cx);
    const std::vector<double> ld_fwd(f.last_log_det(n).begin(), f.last_log_det(n).end());
    detail::run_inverse(f, z.data(), xr.data(), n, cx);
    std::vector<double> ld_inv_neg;
    for (double v : f.last_log_det(n)) ld_inv_neg.push_back(-v);
    rep.checks.push_back(compare("round_trip", detail::to_double(xr.data(), xr.size()),
                                 detail::to_double(x.data(), x.size()), Tolerance<T>::round_trip));
    rep.checks.push_back(compare("inverse_log_det", ld_inv_neg, ld_fwd, Tolerance<T>::round_trip));

    // Double twin: Jacobian and gradients by central differences.
    {
        Fd g(cfg.options);
        detail::copy_params(g, f);
        const std::vector<double> xd(x.begin(), x.end());
        std::vector<double> ctxd(ctx.begin(), ctx.end());
        const double* cd = K > 0 ? ctxd.data() : nullptr;
        const double h = cfg.fd_step;
        if constexpr (Din == Dout) {
            std::vector<double> got, want;
            std::vector<double> zz(std::size_t(n) * Dout);
            detail::run_forward(g, xd.data(), zz.data(), n, false, cd);
            got.assign(g.last_log_det(n).begin(), g.last_log_det(n).end());
            std::vector<double> batch(std::size_t(2 * Din) * Din), out(std::size_t(2 * Din) * Dout);
            std::vector<double> cbatch(std::size_t(2 * Din) * K);  // row i's context on every perturbed row
            for (int i = 0; i < n; ++i) {
                for (int r = 0; r < 2 * Din; ++r)
                    std::copy_n(ctxd.begin() + std::ptrdiff_t(i) * K, K, cbatch.begin() + std::ptrdiff_t(r) * K);
                for (int j = 0; j < Din; ++j)
                    for (int s = 0; s < 2; ++s) {
                        double* row = batch.data() + std::size_t(2 * j + s) * Din;
                        std::copy(xd.begin() + std::ptrdiff_t(i) * Din, xd.begin() + std::ptrdiff_t(i + 1) * Din, row);
                        row[j] += s == 0 ? h : -h;
                    }
                detail::run_forward(g, batch.data(), out.data(), 2 * Din, false, K > 0 ? cbatch.data() : nullptr);
                Eigen::MatrixXd J(Dout, Din);
                for (int j = 0; j < Din; ++j)
                    for (int o = 0; o < Dout; ++o)
                        J(o, j) = (out[std::size_t(2 * j) * Dout + o] - out[std::size_t(2 * j + 1) * Dout + o]) / (2 * h);
                Eigen::PartialPivLU<Eigen::MatrixXd> lu(J);
                double logdet = 0.0;
                for (int k = 0; k < Din; ++k) logdet += std::log(std::abs(lu.matrixLU()(k, k)));
                want.push_back(logdet);
            }
            rep.checks.push_back(compare("jacobian_log_det", got, want, Tolerance<double>::jacobian));
        }

        std::vector<double> r(std::size_t(n) * Dout), c(static_cast<std::size_t>(n));
        for (auto& v : r) v = rng.normal();
        for (auto& v : c) v = rng.normal();
        std::vector<double> zz(std::size_t(n) * Dout), dx(xd.size()), dcd(ctxd.size());
        g.zero_grad();
        detail::run_forward(g, xd.data(), zz.data(), n, false, cd);
        detail::run_backward(g, xd.data(), zz.data(), r.data(), c.data(), dx.data(), n, cd, dcd.data());

        std::vector<double> got, want, xp = xd;
        for (std::size_t k : detail::pick_coords(xd.size(), cfg.max_coords, rng)) {
            xp[k] = xd[k] + h;
            const double lp = detail::scalar_loss(g, xp, r, c, n, cd);
            xp[k] = xd[k] - h;
            const double lm = detail::scalar_loss(g, xp, r, c, n, cd);
            xp[k] = xd[k];
            got.push_back(dx[k]);
            want.push_back((lp - lm) / (2 * h));
        }
        rep.checks.push_back(compare("input_gradient", got, want, Tolerance<double>::gradient));

        if constexpr (K > 0) {
            got.clear(), want.clear();
            for (std::size_t k = 0; k < ctxd.size(); ++k) {
                const double saved = ctxd[k];
                ctxd[k] = saved + h;
                const double lp = detail::scalar_loss(g, xd, r, c, n, cd);
                ctxd[k] = saved - h;
                const double lm = detail::scalar_loss(g, xd, r, c, n, cd);
                ctxd[k] = saved;
                got.push_back(dcd[k]);
                want.push_back((lp - lm) / (2 * h));
            }
            rep.checks.push_back(compare("context_gradient", got, want, Tolerance<double>::gradient));
        }

        got.clear(), want.clear();
        const std::vector<double> g_all = detail::host_grads(g);
        g.to_host();
        for (const auto& t : g.params().tensors()) {
            if (!t.trainable) continue;
            double* p = g.params().data(t);
            const double* gr = g_all.data() + t.offset;
            for (std::size_t k : detail::pick_coords(t.size, cfg.max_coords, rng)) {
                const double saved = p[k];
                got.push_back(gr[k]);
                p[k] = saved + h;
                g.to_device();
                const double lp = detail::scalar_loss(g, xd, r, c, n, cd);
                p[k] = saved - h;
                g.to_device();
                const double lm = detail::scalar_loss(g, xd, r, c, n, cd);
                p[k] = saved;
                g.to_device();
                want.push_back((lp - lm) / (2 * h));
            }
        }
        if (!want.empty()) rep.checks.push_back(compare("param_gradient", got, want, Tolerance<double>::gradient));

        // backward must also work right after inverse (the workspace contract memory-saving
        // training relies on): same input and parameter gradients as after forward.
        {
            std::vector<double> xr2(xd.size()), dx2(xd.size()), zz2(zz.size());
            g.zero_grad();
            // forward, then inverse (the workspace now holds what inverse left), then backward
            if constexpr (ExecutorBackend<B>) {
                using Bd = Buffer<B, double>;
                Bd bx(xd.size()), bz(zz.size()), bxr(xd.size()), br(r.size()), bc(c.size()), bdx(xd.size());
                Bd bctx(ctxd.size()), bdc(ctxd.size());
                upload(B{}, bx.data(), xd.data(), xd.size());
                upload(B{}, br.data(), r.data(), r.size());
                upload(B{}, bc.data(), c.data(), c.size());
                if (K > 0) upload(B{}, bctx.data(), ctxd.data(), ctxd.size());
                detail::raw_map(g, bx.data(), bctx.data(), bz.data(), n, false);
                detail::raw_map(g, bz.data(), bctx.data(), bxr.data(), n, true);
                detail::raw_backward(g, bxr.data(), bctx.data(), bz.data(), br.data(), bc.data(), bdx.data(), bdc.data(), n);
                download(B{}, dx2.data(), bdx.data(), dx2.size());
            } else {
                std::vector<double> dc2(ctxd.size());
                detail::raw_map(g, xd.data(), cd, zz2.data(), n, false);
                detail::raw_map(g, zz2.data(), cd, xr2.data(), n, true);
                detail::raw_backward(g, xr2.data(), cd, zz2.data(), r.data(), c.data(), dx2.data(), dc2.data(), n);
            }
            std::vector<double> a = dx2, b = dx;
            const std::vector<double> g_inv = detail::host_grads(g);
            a.insert(a.end(), g_inv.begin(), g_inv.end());
            b.insert(b.end(), g_all.begin(), g_all.end());
            rep.checks.push_back(compare("backward_after_inverse", a, b, Tolerance<double>::round_trip));
        }

        // A bijector that declares scratch (core/workspace.hpp) must not read it across calls: the same
        // gradients when its scratch, a separate buffer here, is overwritten with NaN between forward
        // and backward. (Host backends; the conditional forms share the code of the plain ones.)
        using Bd = typename Fd::bijector_type;
        if constexpr (!ExecutorBackend<B> && K == 0 && bijou::detail::SplitWorkspace<Bd>) {
            Bd& e = g.bijector();
            const std::size_t kept = bijou::detail::kept_size(e, n), ss = bijou::detail::scratch_size(e, n);
            if (ss > 0) {
                std::vector<double> ws(kept + 1), scratch(ss), z3(zz.size()), dx3(xd.size()), ld3(static_cast<std::size_t>(n));
                g.zero_grad();
                e.forward(xd.data(), z3.data(), ld3.data(), n, ws.data(), scratch.data());
                std::fill(scratch.begin(), scratch.end(), std::numeric_limits<double>::quiet_NaN());
                e.backward(xd.data(), z3.data(), r.data(), c.data(), dx3.data(), n, ws.data(), scratch.data());
                std::vector<double> a = dx3, b = dx;
                const std::vector<double> g3 = detail::host_grads(g);
                a.insert(a.end(), g3.begin(), g3.end());
                b.insert(b.end(), g_all.begin(), g_all.end());
                rep.checks.push_back(compare("scratch_not_kept", a, b, Tolerance<double>::round_trip));
            }
        }
    }

    // This backend against Reference, same scalar, same parameters.
    if constexpr (!std::is_same_v<B, Reference>) {
        Fr ref(cfg.options);
        detail::copy_params(ref, f);
        const double tol = Tolerance<T>::backend;
        std::vector<T> z2(z.size()), x2(x.size()), x1(x.size());
        detail::raw_map(ref, x.data(), cx, z2.data(), n, false);
        std::vector<double> ld2(ref.last_log_det(n).begin(), ref.last_log_det(n).end());
        rep.checks.push_back(compare("backend_forward", detail::to_double(z.data(), z.size()),
                                     detail::to_double(z2.data(), z2.size()), tol));
        rep.checks.push_back(compare("backend_log_det", ld_fwd, ld2, tol));
        detail::run_inverse(f, z2.data(), x1.data(), n, cx);
        detail::raw_map(ref, z2.data(), cx, x2.data(), n, true);
        rep.checks.push_back(compare("backend_inverse", detail::to_double(x1.data(), x1.size()),
                                     detail::to_double(x2.data(), x2.size()), tol));

        std::vector<T> r(z.size()), c(static_cast<std::size_t>(n)), dx1(x.size()), dx2(x.size());
        for (auto& v : r) v = T(rng.normal());
        for (auto& v : c) v = T(rng.normal());
        std::vector<T> dc1(ctx.size()), dc2(ctx.size());
        f.zero_grad();
        ref.zero_grad();
        detail::run_forward(f, x.data(), z.data(), n, false, cx);
        detail::run_backward(f, x.data(), z.data(), r.data(), c.data(), dx1.data(), n, cx, dc1.data());
        detail::raw_map(ref, x.data(), cx, z2.data(), n, false);
        detail::raw_backward(ref, x.data(), cx, z2.data(), r.data(), c.data(), dx2.data(), dc2.data(), n);
        rep.checks.push_back(compare("backend_input_gradient", detail::to_double(dx1.data(), dx1.size()),
                                     detail::to_double(dx2.data(), dx2.size()), tol));
        const auto g1 = detail::host_grads(f);
        const auto g2 = detail::host_grads(ref);
        rep.checks.push_back(compare("backend_param_gradient", detail::to_double(g1.data(), g1.size()),
                                     detail::to_double(g2.data(), g2.size()), tol));
        if constexpr (K > 0)
            rep.checks.push_back(compare("backend_context_gradient", detail::to_double(dc1.data(), dc1.size()),
                                         detail::to_double(dc2.data(), dc2.size()), tol));
    }

    // The context matters, and only to its own row.
    if constexpr (K > 0) {
        auto outputs = [&](const std::vector<T>& cc) {
            std::vector<T> zc(std::size_t(n) * Dout);
            detail::run_forward(f, x.data(), zc.data(), n, false, cc.data());
            std::vector<double> o = detail::to_double(zc.data(), zc.size());
            for (double v : f.last_log_det(n)) o.push_back(v);
            return o;
        };
        const std::vector<double> base = outputs(ctx);
        std::vector<T> other = ctx;
        for (auto& v : other) v = T(v + 0.5);
        const std::vector<double> moved = outputs(other);
        Check changes = compare("context_changes_output", moved, base, 0.0);
        changes.passed = !changes.passed;  // some value must differ
        changes.detail = changes.passed ? "" : "    z and log|det| do not depend on the context";
        rep.checks.push_back(changes);
        if (n >= 2) {
            std::vector<T> row0 = ctx;
            for (int k = 0; k < K; ++k) row0[std::size_t(k)] = T(row0[std::size_t(k)] + 0.5);
            const std::vector<double> after = outputs(row0);
            std::vector<double> a, b;
            for (int i = 1; i < n; ++i)
                for (int j = 0; j < Dout; ++j) {
                    a.push_back(after[std::size_t(i) * Dout + std::size_t(j)]);
                    b.push_back(base[std::size_t(i) * Dout + std::size_t(j)]);
                }
            for (int i = 1; i < n; ++i) {
                a.push_back(after[std::size_t(n) * Dout + std::size_t(i)]);
                b.push_back(base[std::size_t(n) * Dout + std::size_t(i)]);
            }
            rep.checks.push_back(compare("rows_independent", a, b, 0.0));
        }
    }
    return rep;
}

}  // namespace bijou::testing
