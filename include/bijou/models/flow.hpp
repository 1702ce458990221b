// bijou/models/flow.hpp — a normalizing flow: a bijector (data → latent) plus a base distribution.
//
// Flow<Shape, Recipe, Base = StandardNormal, T = float, Backend = Cpu>
//   Recipe is bound to Shape (the data side); Base is bound to the recipe's output shape.
//   log_prob(x) = base.log_prob(f(x)) + log|det ∂f/∂x|        (nats, per sample)
//   sample(n, t) = f⁻¹(z), z ~ base at temperature t
//   nll_and_gradient(x): mean −log_prob over the batch, gradients of it in gradients().
// Conditional flows p(x | c) (core/context.hpp, docs/conditional.md): when the recipe or the base is
// conditional on a context Shape<K>, every call takes a context batch c (n, K) beside x, row i
// conditioning sample i: forward(x, c), inverse(z, c), log_prob(x, c), sample(n, c, t, rng) (c with n
// rows, or one row for all n), initialize(x, c), nll_and_gradient(x, c), and context_gradient() gives
// ∂(mean NLL)/∂c of the last nll_and_gradient (amortised inference trains an encoder of c with it).
// The raw calls take c (and dc) in backend memory. Calls without c do not compile on a conditional
// model, calls with c not on an unconditional one; a context of the wrong shape throws shape_error.
// The model's settings record the context shape ("context_shape"), so checkpoints check it.
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
#include <memory>
#include <span>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "bijou/core/arena.hpp"
#include "bijou/core/chain.hpp"
#include "bijou/core/concepts.hpp"
#include "bijou/core/context.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/mirror.hpp"
#include "bijou/core/recompute.hpp"
#include "bijou/core/tensor.hpp"
#include "bijou/distributions/standard_normal.hpp"
#include "bijou/kernels/cpu/totals.hpp"
#include "bijou/kernels/cuda/totals.hpp"
#include "bijou/kernels/reference/totals.hpp"

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
    /// The context shape Shape<K> of a conditional model (void when unconditional).
    using context_shape = common_context_t<bijector_type, base_type>;
    static constexpr bool conditional = !std::is_void_v<context_shape>;
    static constexpr int context_size = conditional_on<context_shape>::context_size;
    /// A batch of contexts (n, K); (n, 1) stands in on an unconditional model, whose calls take none.
    using context_tensor = batch_t<T, std::conditional_t<conditional, context_shape, Shape<1>>>;

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
    Mapped forward(const data_tensor& x) const
        requires(!conditional)
    {
        return forward_impl(x, nullptr);
    }
    /// The same given contexts c (n, K), for a conditional model.
    Mapped forward(const data_tensor& x, const context_tensor& c) const
        requires conditional
    {
        return forward_impl(x, checked_context(c, x.shape(0), "forward"));
    }

    /// x = f⁻¹(z) and log|det ∂x/∂z| per sample (chunked like forward).
    Unmapped inverse(const latent_tensor& z) const
        requires(!conditional)
    {
        return inverse_impl(z, nullptr);
    }
    /// The same given contexts c (n, K), for a conditional model.
    Unmapped inverse(const latent_tensor& z, const context_tensor& c) const
        requires conditional
    {
        return inverse_impl(z, checked_context(c, z.shape(0), "inverse"));
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
    void forward_raw(const T* x, T* z, int n) const
        requires(!conditional)
    {
        forward_now(x, z, n);
    }
    void inverse_raw(const T* z, T* x, int n) const
        requires(!conditional)
    {
        inverse_now(z, x, n);
    }
    /// Raw backward after forward_raw(x, z, n) at the same n: dx = ∂L/∂x (assigned) and parameter
    /// gradients += ∂L/∂θ, for ∂L/∂z = dz and ∂L/∂log_det[i] = dld[i].
    /// With Options::memory_saving, x is not read: the input is rebuilt from z (core/recompute.hpp).
    void backward_raw(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n)
        requires(!conditional)
    {
        backward_now(x, z, dz, dld, dx, n);
    }

    /// The raw calls of a conditional model: c (n × K) in backend memory; backward_raw adds ∂L/∂c into
    /// dc (n × K, backend memory) unless dc is null.
    void forward_raw(const T* x, const T* c, T* z, int n) const
        requires conditional
    {
        const ContextScope scope(*slot_, c, nullptr, n);
        forward_now(x, z, n);
    }
    void inverse_raw(const T* z, const T* c, T* x, int n) const
        requires conditional
    {
        const ContextScope scope(*slot_, c, nullptr, n);
        inverse_now(z, x, n);
    }
    void backward_raw(const T* x, const T* c, const T* z, const T* dz, const T* dld, T* dx, T* dc, int n)
        requires conditional
    {
        const ContextScope scope(*slot_, c, dc, n);
        backward_now(x, z, dz, dld, dx, n);
    }

    /// Per-sample log-dets (double, host memory) of the last forward_raw / inverse_raw.
    std::span<const double> last_log_det(int n) const { return {arena_.host_log_det(n), std::size_t(n)}; }

    /// The data pushed through each top-level stage of a Chain or Stack (the input first).
    std::vector<data_tensor> forward_stages(const data_tensor& x) const
        requires(std::is_same_v<out_shape, S> && !conditional)
    {
        return forward_stages_impl(x, nullptr);
    }
    std::vector<data_tensor> forward_stages(const data_tensor& x, const context_tensor& c) const
        requires(std::is_same_v<out_shape, S> && conditional)
    {
        return forward_stages_impl(x, checked_context(c, x.shape(0), "forward_stages"));
    }

    // ---- density -------------------------------------------------------------------------------

    /// log p(x) in nats per sample (chunked like forward).
    xt::xtensor<T, 1> log_prob(const data_tensor& x) const
        requires(has_base && !conditional)
    {
        return log_prob_impl(x, nullptr);
    }
    /// log p(x | c) in nats per sample, for contexts c (n, K).
    xt::xtensor<T, 1> log_prob(const data_tensor& x, const context_tensor& c) const
        requires(has_base && conditional)
    {
        return log_prob_impl(x, checked_context(c, x.shape(0), "log_prob"));
    }

    /// log p(x) per sample (double) for x in host memory; returns a host pointer to the n values
    /// (valid until the next call).
    const double* log_prob_raw(const T* x, int n) const
        requires(has_base && !conditional)
    {
        return log_prob_chunk(x, nullptr, n);
    }
    /// log p(x | c) per sample for x (n × data_size) and c (n × K) in host memory.
    const double* log_prob_raw(const T* x, const T* c, int n) const
        requires(has_base && conditional)
    {
        return log_prob_chunk(x, c, n);
    }

    /// n samples x = f⁻¹(z), z from the base at the given temperature (1 = the model's density).
    data_tensor sample(int n, double temperature, Rng& rng) const
        requires(has_base && !conditional)
    {
        return sample_impl(n, nullptr, temperature, rng);
    }
    /// n samples of p(x | c): c has n rows (row i conditions sample i) or one row (for all n).
    data_tensor sample(int n, const context_tensor& c, double temperature, Rng& rng) const
        requires(has_base && conditional)
    {
        if (n >= 0 && c.dimension() == 2 && c.shape(0) == 1 && n != 1) {
            context_tensor all = make_batch<T, context_shape>(n);
            for (int i = 0; i < n; ++i)
                std::copy_n(c.data(), context_size, all.data() + std::size_t(i) * context_size);
            return sample_impl(n, checked_context(all, std::size_t(n), "sample"), temperature, rng);
        }
        return sample_impl(n, checked_context(c, std::size_t(std::max(n, 0)), "sample"), temperature, rng);
    }

    // ---- training ------------------------------------------------------------------------------

    /// Data-dependent initialisation (ActNorm) on a batch: each element sees its own input.
    void initialize(const data_tensor& x)
        requires(!conditional)
    {
        initialize_impl(x, nullptr);
    }
    void initialize(const data_tensor& x, const context_tensor& c)
        requires conditional
    {
        initialize_impl(x, checked_context(c, x.shape(0), "initialize"));
    }

    /// Mean negative log-likelihood (nats) of the batch; sets gradients() to its gradient.
    double nll_and_gradient(const data_tensor& x)
        requires(has_base && !conditional)
    {
        const int n = check_batch<S>(x, "nll_and_gradient");
        return nll_and_gradient_raw(x.data(), n);
    }
    /// Mean −log p(x | c) of the batch; sets gradients() and context_gradient().
    double nll_and_gradient(const data_tensor& x, const context_tensor& c)
        requires(has_base && conditional)
    {
        const int n = check_batch<S>(x, "nll_and_gradient");
        return nll_and_gradient_raw(x.data(), checked_context(c, std::size_t(n), "nll_and_gradient"), n);
    }

    /// The same for x (n × data_size) in host memory.
    double nll_and_gradient_raw(const T* x, int n)
        requires(has_base && !conditional)
    {
        return nll_and_gradient_now(x, nullptr, n);
    }
    /// The same for x (n × data_size) and c (n × K) in host memory.
    double nll_and_gradient_raw(const T* x, const T* c, int n)
        requires(has_base && conditional)
    {
        return nll_and_gradient_now(x, c, n);
    }

    /// ∂(mean NLL)/∂c (n, K) of the last nll_and_gradient call (host copy).
    context_tensor context_gradient() const
        requires(has_base && conditional)
    {
        context_tensor g = make_batch<T, context_shape>(last_n_);
        if (last_n_ > 0) std::copy_n(arena_.host_dc(last_n_), std::size_t(last_n_) * context_size, g.data());
        return g;
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

    /// Sets the gradients to zero (where the kernels keep them; across the threads on Cpu).
    void zero_grad() {
        const std::span<T> g = mirror_.grads(params_);
        kernels::zero(B{}, g.data(), g.size());
    }

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

    explicit Flow(BuildContext ctx)
        : options_(ctx.options()), bij_(ctx), base_(make_base(ctx)), slot_(ctx.context_slot()) {
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
        if constexpr (conditional) ps.add_setting("context_shape", context_shape::str());
    }

    // ---- the implementations behind the public calls; c: host context (n × K), null when unconditional

    /// c's data after checking that it is a batch of `rows` contexts of context_shape.
    static const T* checked_context(const context_tensor& c, std::size_t rows, const char* what) {
        // (the message is built only on failure: a training step allocates nothing)
        if (c.shape(1) != std::size_t(context_size)) check_batch<context_shape>(c, (std::string(what) + " (context)").c_str());
        const std::size_t got = c.shape(0);
        if (got != rows)
            throw shape_error(std::string(what) + ": the context batch has " + std::to_string(got) +
                              " rows but the data batch has " + std::to_string(rows));
        return c.data();
    }

    /// Stages host context rows [i0, i0 + m) where the kernels read them and points the slot there
    /// for the life of the returned scope (an unconditional model's scope points at nothing).
    ContextScope use_context(const T* c, int i0, int m, T* dc = nullptr) const {
        if (c == nullptr) return ContextScope(*slot_, nullptr, nullptr, 0);
        const std::size_t k = std::size_t(context_size);
        return ContextScope(*slot_, arena_.stage_context(c + std::size_t(i0) * k, std::size_t(m) * k), dc, m);
    }

    void forward_now(const T* x, T* z, int n) const {
        prepare(n, false);
        fill(B{}, arena_.ld(), std::size_t(n), 0.0);
        bij_.forward(x, z, arena_.ld(), n, arena_.ws());
    }
    void inverse_now(const T* z, T* x, int n) const {
        prepare(n, false);
        fill(B{}, arena_.ld(), std::size_t(n), 0.0);
        bij_.inverse(z, x, arena_.ld(), n, arena_.ws());
    }
    void backward_now(const T* x, const T* z, const T* dz, const T* dld, T* dx, int n) {
        prepare(n);
        if (detail::memory_saving(bij_))
            detail::backward_from_output(bij_, z, dz, dld, arena_.xrec(), dx, n, arena_.ws(), arena_.ldtmp());
        else
            bij_.backward(x, z, dz, dld, dx, n, arena_.ws());
    }

    Mapped forward_impl(const data_tensor& x, const T* c) const {
        const int n = check_batch<S>(x, "forward");
        const EvalLayout eval(*this);
        Mapped r{make_batch<T, out_shape>(n), xt::xtensor<T, 1>::from_shape({std::size_t(n)})};
        map_chunks(x.data(), data_size, r.z.data(), latent_size, r.log_det, n, [&](const T* in, T* out, int i0, int m) {
            const ContextScope scope = use_context(c, i0, m);
            forward_now(in, out, m);
        });
        return r;
    }

    Unmapped inverse_impl(const latent_tensor& z, const T* c) const {
        const int n = check_batch<out_shape>(z, "inverse");
        const EvalLayout eval(*this);
        Unmapped r{make_batch<T, S>(n), xt::xtensor<T, 1>::from_shape({std::size_t(n)})};
        map_chunks(z.data(), latent_size, r.x.data(), data_size, r.log_det, n, [&](const T* in, T* out, int i0, int m) {
            const ContextScope scope = use_context(c, i0, m);
            inverse_now(in, out, m);
        });
        return r;
    }

    std::vector<data_tensor> forward_stages_impl(const data_tensor& x, const T* c) const {
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
            const ContextScope scope = use_context(c, i0, m);
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

    xt::xtensor<T, 1> log_prob_impl(const data_tensor& x, const T* c) const {
        const int n = check_batch<S>(x, "log_prob");
        const EvalLayout eval(*this);
        xt::xtensor<T, 1> r = xt::xtensor<T, 1>::from_shape({std::size_t(n)});
        for_chunks(n, [&](int i0, int m) {
            const double* lp = log_prob_chunk(x.data() + std::size_t(i0) * data_size,
                                              c ? c + std::size_t(i0) * context_size : nullptr, m);
            for (int i = 0; i < m; ++i) r(std::size_t(i0 + i)) = T(lp[i]);
        });
        return r;
    }

    const double* log_prob_chunk(const T* x, const T* c, int n) const {
        const EvalLayout eval(*this);
        prepare(n, false);  // before arena_.z() is taken
        const ContextScope scope = use_context(c, 0, n);
        forward_now(arena_.stage_in(x, std::size_t(n) * data_size), arena_.z(), n);
        base_.log_prob(arena_.z(), arena_.lp(), n);
        add_into(B{}, arena_.lp(), arena_.ld(), std::size_t(n));
        return arena_.host_log_prob(n);
    }

    data_tensor sample_impl(int n, const T* c, double temperature, Rng& rng) const {
        if (n < 0) throw invalid_argument("sample: n must be non-negative (got " + std::to_string(n) + ")");
        if (!(temperature >= 0.0) || !std::isfinite(temperature))
            throw invalid_argument("sample: temperature must be finite and >= 0 (got " + std::to_string(temperature) +
                                   ")");
        data_tensor x = make_batch<T, S>(n);
        const EvalLayout eval(*this);
        for_chunks(n, [&](int i0, int m) {
            prepare(m, false);
            const ContextScope scope = use_context(c, i0, m);
            base_.sample(arena_.z(), m, temperature, rng);
            fill(B{}, arena_.ld(), std::size_t(m), 0.0);
            T* xi = x.data() + std::size_t(i0) * data_size;
            const std::size_t count = std::size_t(m) * data_size;
            bij_.inverse(arena_.z(), arena_.stage_out(xi, count), arena_.ld(), m, arena_.ws());
            arena_.finish_out(xi, count);
        });
        return x;
    }

    void initialize_impl(const data_tensor& x, const T* c) {
        const int n = check_batch<S>(x, "initialize");
        if (n < 2) throw invalid_argument("initialize: needs a batch of at least 2 samples");
        const EvalLayout eval(*this);
        prepare(n, false);
        const ContextScope scope = use_context(c, 0, n);
        if constexpr (DataInitialized<bijector_type>)
            bij_.initialize(arena_.stage_in(x.data(), std::size_t(n) * data_size), n, arena_.ws());
    }

    double nll_and_gradient_now(const T* x, const T* c, int n) {
        if (n < 1) throw invalid_argument("nll_and_gradient: empty batch");
        prepare(n);
        zero_grad();
        T* dc = nullptr;
        if constexpr (conditional) {
            dc = arena_.dc();
            fill(B{}, dc, std::size_t(n) * context_size, T(0));
            last_n_ = n;
        }
        const ContextScope scope = use_context(c, 0, n, dc);
        fill(B{}, arena_.ld(), std::size_t(n), 0.0);
        const T* xb = arena_.stage_in(x, std::size_t(n) * data_size);
        bij_.forward(xb, arena_.z(), arena_.ld(), n, arena_.ws());
        base_.log_prob(arena_.z(), arena_.lp(), n);
        const double total = sum(B{}, arena_.lp(), arena_.ld(), std::size_t(n));
        fill(B{}, arena_.dld(), std::size_t(n), T(-1.0 / n));
        base_.backward(arena_.z(), arena_.dld(), arena_.dz(), n);
        backward_now(xb, arena_.z(), arena_.dz(), arena_.dld(), arena_.dx(), n);
        return -total / n;
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

    // The xtensor forward / inverse: `in` (n × in_size, host) through raw(in, out, i0, m) chunk by chunk into
    // `out` (n × out_size, host), staged through backend memory, with the per-sample log-dets.
    template <class Raw>
    void map_chunks(const T* in, int in_size, T* out, int out_size, xt::xtensor<T, 1>& log_det, int n, Raw raw) const {
        for_chunks(n, [&](int i0, int m) {
            prepare(m, false);  // before the staging buffers are used
            T* o = out + std::size_t(i0) * out_size;
            const std::size_t count = std::size_t(m) * out_size;
            const T* src = arena_.stage_in(in + std::size_t(i0) * in_size, std::size_t(m) * in_size);
            raw(src, arena_.stage_out(o, count), i0, m);
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
    std::shared_ptr<ContextSlot> slot_;  // where conditional elements read the context (core/context.hpp)
    mutable Arena<B, T> arena_{data_size, latent_size, context_size};
    int last_n_ = 0;  // batch of the last nll_and_gradient (context_gradient's rows)
    int max_chunk_ = 4096;
    std::size_t chunk_budget_ = std::size_t(256) << 20;
};

/// A standalone bound bijector with its own parameters (no base distribution).
template <class Recipe, EventShape S, Scalar T = float, Backend B = Cpu>
using Transform = Flow<S, Recipe, void, T, B>;

}  // namespace bijou
