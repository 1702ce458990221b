// bijou/models/flow.hpp — a normalizing flow: a bijector (data → latent) plus a base distribution.
//
// Flow<Shape, Recipe, Base = StandardNormal, T = float, Backend = Cpu>
//   Recipe is bound to Shape (the data side); Base is bound to the recipe's output shape.
//   log_prob(x) = base.log_prob(f(x)) + log|det ∂f/∂x|        (nats, per sample)
//   sample(n, t) = f⁻¹(z), z ~ base at temperature t
//   nll_and_gradient(x): mean −log_prob over the batch, gradients of it in gradients().
// Transform<Recipe, Shape, T, Backend> is the same without a base: a standalone bijector with its
// own parameters (what the conformance suite tests).
// Options::memory_saving: composites keep no activations and backward rebuilds them from z
// (core/recompute.hpp); workspace_bytes(n) shows the difference.
// Memory: one workspace arena, grown to the largest need seen (reserve(n) sizes it for training up
// front), so repeated calls at a batch size allocate nothing but their returned tensors;
// nll_and_gradient allocates nothing at all after the first call at a given batch size. Evaluation
// (forward, inverse, log_prob, sample, forward_stages, initialize) always runs in the memory-saving
// layout, which needs no stored activations: a model that only evaluates keeps the lean arena
// (eval_workspace_bytes) even when Options keep activations for training.
// Backends: the arena, the per-sample buffers (core/arena.hpp) and the parameters (core/mirror.hpp)
// live where B's kernels work. The model is built and reset on the host; on a backend with memory of
// its own (Cuda: a GPU) its parameters are then copied there and every handle points there. Data
// crosses at the API edge: the xtensor calls, log_prob_raw and nll_and_gradient_raw take and return
// host memory; forward_raw, inverse_raw and backward_raw take backend memory. parameters() and
// gradients() are spans of backend memory, and params() is the host copy, refreshed by to_host() and
// sent back by to_device() (checkpoints do both). On a host backend (Reference, Cpu) backend memory is
// host memory: params() is what the kernels use, and staging, to_host and to_device do nothing.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bijou/core/arena.hpp"
#include "bijou/core/chain.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/mirror.hpp"
#include "bijou/core/recompute.hpp"
#include "bijou/core/tensor.hpp"
#include "bijou/distributions/standard_normal.hpp"

namespace bijou {

template <EventShape S, class Recipe, class BaseRecipe = StandardNormal, Scalar T = float, Backend B = Cpu>
class Flow {
public:
    using bijector_type = detail::checked_bind_t<0, Recipe, S, T, B>;
    using in_shape = S;
    using out_shape = typename bijector_type::out_shape;
    using scalar = T;
    using backend = B;
    static constexpr bool has_base = !std::is_void_v<BaseRecipe>;
    using base_type = typename std::conditional_t<has_base, detail::lazy_bind<BaseRecipe, out_shape, T, B>,
                                                  std::type_identity<void>>::type;
    using data_tensor = batch_t<T, S>;
    using latent_tensor = batch_t<T, out_shape>;
    static constexpr int data_size = S::size;
    static constexpr int latent_size = out_shape::size;

    struct Mapped {
        latent_tensor z;
        xt::xtensor<T, 1> log_det;
    };
    struct Unmapped {
        data_tensor x;
        xt::xtensor<T, 1> log_det;
    };

    explicit Flow(const Options& options = {}) : Flow(BuildContext(options)) {}

    Flow(const Flow&) = delete;
    Flow& operator=(const Flow&) = delete;
    Flow(Flow&&) noexcept = default;
    Flow& operator=(Flow&&) noexcept = default;

    // ---- mapping -------------------------------------------------------------------------------

    /// z = f(x) and log|det ∂z/∂x| per sample. Large batches are processed in chunks of
    /// max_chunk() samples, so memory stays bounded whatever n is.
    Mapped forward(const data_tensor& x) const {
        const int n = check_batch<S>(x, "forward");
        const EvalLayout eval(*this);
        Mapped r{make_batch<T, out_shape>(n), xt::xtensor<T, 1>::from_shape({std::size_t(n)})};
        map_chunks(x.data(), data_size, r.z.data(), latent_size, r.log_det, n,
                   [&](const T* in, T* out, int m) { forward_raw(in, out, m); });
        return r;
    }

    /// x = f⁻¹(z) and log|det ∂x/∂z| per sample (chunked like forward).
    Unmapped inverse(const latent_tensor& z) const {
        const int n = check_batch<out_shape>(z, "inverse");
        const EvalLayout eval(*this);
        Unmapped r{make_batch<T, S>(n), xt::xtensor<T, 1>::from_shape({std::size_t(n)})};
        map_chunks(z.data(), latent_size, r.x.data(), data_size, r.log_det, n,
                   [&](const T* in, T* out, int m) { inverse_raw(in, out, m); });
        return r;
    }

    /// Largest batch the xtensor API evaluates at once (forward, inverse, log_prob, sample,
    /// forward_stages); training calls are never split. The chunk actually used is also capped so
    /// that the workspace arena stays within chunk_budget_bytes() (an image model's training arena
    /// is large per sample), unless the arena is already larger (e.g. sized by training).
    int max_chunk() const { return max_chunk_; }
    /// Memory the xtensor API may grow the arena to (default 256 MiB).
    std::size_t chunk_budget_bytes() const { return chunk_budget_; }
    void set_chunk_budget_bytes(std::size_t b) { chunk_budget_ = b; }
    void set_max_chunk(int m) {
        if (m < 1) throw invalid_argument("set_max_chunk: needs at least 1 (got " + std::to_string(m) + ")");
        max_chunk_ = m;
    }

    /// Raw forward: z (n × latent_size); log-dets available through last_log_det(). Runs in the
    /// training layout (so that backward_raw can follow), unless called from an evaluation.
    /// x and z are backend memory (host memory for Reference and Cpu).
    void forward_raw(const T* x, T* z, int n) const {
        prepare(n, false);
        fill(B{}, arena_.ld(), std::size_t(n), 0.0);
        bij_.forward(x, z, arena_.ld(), n, arena_.ws());
    }
    void inverse_raw(const T* z, T* x, int n) const {
        prepare(n, false);
        fill(B{}, arena_.ld(), std::size_t(n), 0.0);
        bij_.inverse(z, x, arena_.ld(), n, arena_.ws());
    }
    /// Raw backward after forward_raw(x, z, n) at the same n: dx = ∂L/∂x (assigned) and parameter
    /// gradients += ∂L/∂θ, for ∂L/∂z = dz and ∂L/∂log_det[i] = dld[i].
    /// With Options::memory_saving, x is not read: the input is rebuilt from z (core/recompute.hpp).
    void backward_raw(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n) {
        prepare(n);
        if (detail::memory_saving(bij_))
            detail::backward_from_output(bij_, z, dz, dld, arena_.xrec(), dx, n, arena_.ws(), arena_.ldtmp());
        else
            bij_.backward(x, z, dz, dld, dx, n, arena_.ws());
    }

    /// Per-sample log-dets (double, host memory) of the last forward_raw / inverse_raw.
    std::span<const double> last_log_det(int n) const { return {arena_.host_log_det(n), std::size_t(n)}; }

    /// The data pushed through each top-level stage of a Chain or Stack (the input first).
    std::vector<data_tensor> forward_stages(const data_tensor& x) const
        requires(std::is_same_v<out_shape, S>)
    {
        const int n = check_batch<S>(x, "forward_stages");
        const EvalLayout eval(*this);
        std::vector<data_tensor> out{x};
        for_chunks(n, [&](int i0, int m) {
            std::size_t stage = 1;
            auto emit = [&](const T* p, int) {
                if (out.size() <= stage) out.push_back(make_batch<T, S>(n));
                download(B{}, out[stage].data() + std::size_t(i0) * S::size, p, std::size_t(m) * S::size);
                ++stage;
            };
            prepare(m, false);  // before arena_.z() is taken
            const T* xi = arena_.stage_in(x.data() + std::size_t(i0) * S::size, std::size_t(m) * S::size);
            T* z = arena_.z();
            if constexpr (requires { bij_.forward_stages(xi, z, arena_.ld(), m, arena_.ws(), emit); })
                bij_.forward_stages(xi, z, arena_.ld(), m, arena_.ws(), emit);
            else {
                bij_.forward(xi, z, arena_.ld(), m, arena_.ws());
                emit(z, S::size);
            }
        });
        return out;
    }

    // ---- density -------------------------------------------------------------------------------

    /// log p(x) in nats per sample (chunked like forward).
    xt::xtensor<T, 1> log_prob(const data_tensor& x) const
        requires has_base
    {
        const int n = check_batch<S>(x, "log_prob");
        const EvalLayout eval(*this);
        xt::xtensor<T, 1> r = xt::xtensor<T, 1>::from_shape({std::size_t(n)});
        for_chunks(n, [&](int i0, int m) {
            const double* lp = log_prob_raw(x.data() + std::size_t(i0) * data_size, m);
            for (int i = 0; i < m; ++i) r(std::size_t(i0 + i)) = T(lp[i]);
        });
        return r;
    }

    /// log p(x) per sample (double) for x in host memory; returns a host pointer to the n values
    /// (valid until the next call).
    const double* log_prob_raw(const T* x, int n) const
        requires has_base
    {
        const EvalLayout eval(*this);
        prepare(n, false);  // before arena_.z() is taken
        forward_raw(arena_.stage_in(x, std::size_t(n) * data_size), arena_.z(), n);
        base_.log_prob(arena_.z(), arena_.lp(), n);
        add_into(B{}, arena_.lp(), arena_.ld(), std::size_t(n));
        return arena_.host_log_prob(n);
    }

    /// n samples x = f⁻¹(z), z from the base at the given temperature (1 = the model's density).
    data_tensor sample(int n, double temperature, Rng& rng) const
        requires has_base
    {
        if (n < 0) throw invalid_argument("sample: n must be non-negative (got " + std::to_string(n) + ")");
        if (!(temperature >= 0.0) || !std::isfinite(temperature))
            throw invalid_argument("sample: temperature must be finite and >= 0 (got " + std::to_string(temperature) +
                                   ")");
        data_tensor x = make_batch<T, S>(n);
        const EvalLayout eval(*this);
        for_chunks(n, [&](int i0, int m) {
            prepare(m, false);
            base_.sample(arena_.z(), m, temperature, rng);
            fill(B{}, arena_.ld(), std::size_t(m), 0.0);
            T* xi = x.data() + std::size_t(i0) * data_size;
            const std::size_t count = std::size_t(m) * data_size;
            bij_.inverse(arena_.z(), arena_.stage_out(xi, count), arena_.ld(), m, arena_.ws());
            arena_.finish_out(xi, count);
        });
        return x;
    }

    // ---- training ------------------------------------------------------------------------------

    /// Data-dependent initialisation (ActNorm) on a batch: each element sees its own input.
    void initialize(const data_tensor& x) {
        const int n = check_batch<S>(x, "initialize");
        if (n < 2) throw invalid_argument("initialize: needs a batch of at least 2 samples");
        const EvalLayout eval(*this);
        prepare(n, false);
        if constexpr (DataInitialized<bijector_type>)
            bij_.initialize(arena_.stage_in(x.data(), std::size_t(n) * data_size), n, arena_.ws());
    }

    /// Mean negative log-likelihood (nats) of the batch; sets gradients() to its gradient.
    double nll_and_gradient(const data_tensor& x)
        requires has_base
    {
        const int n = check_batch<S>(x, "nll_and_gradient");
        return nll_and_gradient_raw(x.data(), n);
    }

    /// The same for x (n × data_size) in host memory.
    double nll_and_gradient_raw(const T* x, int n)
        requires has_base
    {
        if (n < 1) throw invalid_argument("nll_and_gradient: empty batch");
        prepare(n);
        zero_grad();
        fill(B{}, arena_.ld(), std::size_t(n), 0.0);
        const T* xb = arena_.stage_in(x, std::size_t(n) * data_size);
        bij_.forward(xb, arena_.z(), arena_.ld(), n, arena_.ws());
        base_.log_prob(arena_.z(), arena_.lp(), n);
        const double total = sum(B{}, arena_.lp(), arena_.ld(), std::size_t(n));
        fill(B{}, arena_.dld(), std::size_t(n), T(-1.0 / n));
        base_.backward(arena_.z(), arena_.dld(), arena_.dz(), n);
        backward_raw(xb, arena_.z(), arena_.dz(), arena_.dld(), arena_.dx(), n);
        return -total / n;
    }

    /// Sizes the arena for batches up to n (optional; done on first use otherwise).
    void reserve(int n) const { prepare(n); }

    // ---- parameters ----------------------------------------------------------------------------

    /// The parameter values and gradients the kernels use (backend memory: on a device model, device
    /// pointers; an optimizer for the same backend updates them there).
    std::span<T> parameters() { return mirror_.values(params_); }
    std::span<const T> parameters() const { return mirror_.values(params_); }
    std::span<T> gradients() { return mirror_.grads(params_); }
    std::size_t parameter_count() const { return params_.count(); }
    /// The named parameters and buffers in host memory (checkpoints, inspection). On a device model
    /// this is a copy: to_host() refreshes it from the device, to_device() sends edits back.
    ParamSet<T>& params() { return params_; }
    const ParamSet<T>& params() const { return params_; }

    /// Device models: copies the parameter values and buffers from the device into params() (the
    /// gradients stay on the device). Host backends: nothing to do.
    void to_host() const { mirror_.to_host(params_); }
    /// Device models: copies params()' values and buffers to the device. Host backends: nothing to do.
    void to_device() { mirror_.to_device(params_); }

    /// Sets the gradients to zero (where the kernels keep them).
    void zero_grad() { mirror_.zero_grad(params_); }

    bijector_type& bijector() { return bij_; }
    const bijector_type& bijector() const { return bij_; }
    const Options& options() const { return options_; }

    /// Bytes of the workspace arena (activations and scratch) a training step at batch n needs.
    std::size_t workspace_bytes(int n) const { return bij_.workspace_size(n) * sizeof(T); }
    /// Bytes of the arena evaluation (forward, inverse, log_prob, sample) needs at batch n: the
    /// memory-saving layout's, whatever Options chose for training.
    std::size_t eval_workspace_bytes(int n) const {
        const EvalLayout eval(*this);
        return bij_.workspace_size(n) * sizeof(T);
    }

private:
    struct NoBase {};

    // Selects the memory-saving workspace layout for the life of an evaluation call, then restores
    // the training layout Options chose (core/recompute.hpp). Nests: an inner guard restores the
    // layout the outer one set.
    struct EvalLayout {
        const Flow& f;
        bool was;
        explicit EvalLayout(const Flow& flow) : f(flow), was(detail::memory_saving(flow.bij_)) {
            detail::set_memory_saving(f.bij_, true);
        }
        ~EvalLayout() { detail::set_memory_saving(f.bij_, was); }
        EvalLayout(const EvalLayout&) = delete;
        EvalLayout& operator=(const EvalLayout&) = delete;
    };
    using base_storage = std::conditional_t<has_base, base_type, NoBase>;

    explicit Flow(BuildContext ctx) : options_(ctx.options()), bij_(ctx), base_(make_base(ctx)) {
        declare(params_);
        params_.allocate();
        Rng rng(options_.seed);
        bij_.reset_parameters(rng);
        if constexpr (has_base) base_.reset_parameters(rng);
        mirror_.bind(params_, [this](ParamSet<T>& view) { declare(view); });
    }

    void declare(ParamSet<T>& ps) {
        bij_.declare(ps, std::string(detail::recipe_name<Recipe>()));
        if constexpr (has_base) base_.declare(ps, "base");
    }

    static base_storage make_base(BuildContext& ctx) {
        if constexpr (has_base) return base_storage(ctx);
        else return NoBase{};
    }

    template <class F>
    void for_chunks(int n, F&& f) const {
        const int chunk = eval_chunk();
        for (int i0 = 0; i0 < n; i0 += chunk) f(i0, std::min(chunk, n - i0));
    }

    // The xtensor forward / inverse: `in` (n × in_size, host) through raw(in, out, m) chunk by chunk into
    // `out` (n × out_size, host), staged through backend memory, with the per-sample log-dets.
    template <class Raw>
    void map_chunks(const T* in, int in_size, T* out, int out_size, xt::xtensor<T, 1>& log_det, int n, Raw raw) const {
        for_chunks(n, [&](int i0, int m) {
            prepare(m, false);  // before the staging buffers are used
            T* o = out + std::size_t(i0) * out_size;
            const std::size_t count = std::size_t(m) * out_size;
            const T* src = arena_.stage_in(in + std::size_t(i0) * in_size, std::size_t(m) * in_size);
            raw(src, arena_.stage_out(o, count), m);
            arena_.finish_out(o, count);
            const double* ld = arena_.host_log_det(m);
            for (int i = 0; i < m; ++i) log_det(std::size_t(i0 + i)) = T(ld[i]);
        });
    }

    // max_chunk_, lowered to what fits the budget (or the arena already there), at least 1.
    int eval_chunk() const {
        const std::size_t per_sample = std::max<std::size_t>(1, bij_.workspace_size(64) * sizeof(T) / 64);
        const std::size_t fit = std::max(chunk_budget_ / per_sample, std::size_t(std::max(arena_.capacity(), 1)));
        return int(std::min<std::size_t>(std::size_t(max_chunk_), fit));
    }

    // The arena for batch n in the layout selected now (`training`: also the buffers a memory-saving
    // backward rebuilds its input into); core/arena.hpp.
    void prepare(int n, bool training = true) const {
        if (n < 0) throw invalid_argument("negative batch size");
        arena_.prepare(n, bij_.workspace_size(n), training && detail::memory_saving(bij_));
    }

    Options options_;
    bijector_type bij_;
    [[no_unique_address]] base_storage base_;
    mutable ParamSet<T> params_;  // the host copy of the parameters (mutable: to_host() refreshes it)
    Mirror<B, T> mirror_;         // their backend copy, which the kernels use
    mutable Arena<B, T> arena_{data_size, latent_size};
    int max_chunk_ = 4096;
    std::size_t chunk_budget_ = std::size_t(256) << 20;
};

/// A standalone bound bijector with its own parameters (no base distribution).
template <class Recipe, EventShape S, Scalar T = float, Backend B = Cpu>
using Transform = Flow<S, Recipe, void, T, B>;

}  // namespace bijou
