// bijou/core/params.hpp — named parameters in one flat buffer.
//
// A model's trainable parameters live in one contiguous array and their gradients in another of
// the same layout, so optimizers walk them as spans (ensmallen style). Non-trainable state that a
// checkpoint must keep (ActNorm's "initialised" flag, LU permutations, fixed permutations) lives
// in a third flat array of "buffers". Every tensor has a PyTorch state_dict-style name
// ("0.coupling.shift_net.1.weight") and a shape, recorded for checkpoints and tests.
//
// Two phases: bijectors declare(...) their tensors with a handle (TensorRef); allocate() lays out
// the arrays (tensors packed in declaration order) and points every handle at its storage. Handles hold
// raw pointers into the heap arrays, so a ParamSet may be moved but not copied.
// The gradient array comes zeroed from calloc, so its pages are committed only when a backward (or
// zero_grad) first writes them: a model that only evaluates holds no gradient memory.
// Settings: a bijector also records, by name, the run-time choices that change what its tensors mean
// (a coupling's scale function, a conditioner's width) with add_setting(name, value); checkpoints
// write them and a load checks that the file's equal the model's (io/checkpoint.hpp), as they do
// for tensor names and shapes.
// bind_external() is the other second phase: the same layout in arrays someone else owns (a device
// model's copy of its parameters; core/mirror.hpp).
// Checks: a bijector whose tensors have invariants beyond finiteness (a permutation buffer, ±1
// signs) registers a check with add_check() in declare(); values that come from outside (a checkpoint)
// are staged and check_staged() runs every check on them before they replace the current ones.
#pragma once

#include <cassert>
#include <charconv>
#include <cstddef>
#include <cstdlib>
#include <functional>
#include <new>
#include <type_traits>
#include <utility>
#include <span>
#include <string>
#include <vector>

#include "bijou/core/error.hpp"

namespace bijou {

/// A handle to one named tensor: its values and (for trainable tensors) its gradient.
template <class T>
struct TensorRef {
    T* value = nullptr;
    T* grad = nullptr;  ///< nullptr for buffers
    std::size_t size = 0;

    T& operator[](std::size_t i) const { return value[i]; }
};

/// A named setting of a bound bijector, as text (see add_setting).
struct SettingInfo {
    std::string name;
    std::string value;
};

/// A number as a setting's text: the shortest form that reads back as the same double.
inline std::string number_setting(double v) {
    char buf[64];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

struct TensorInfo {
    std::string name;
    std::vector<std::size_t> shape;
    std::size_t offset = 0;  ///< into parameters() or buffers()
    std::size_t size = 0;
    bool trainable = true;
};

namespace detail {
/// A zero-filled array from calloc: large ones are fresh zero pages that the process pays for (RSS)
/// only once written.
template <class T>
class ZeroedArray {
    static_assert(std::is_trivially_copyable_v<T>);

public:
    ZeroedArray() = default;
    explicit ZeroedArray(std::size_t n) : n_(n) {
        if (n == 0) return;
        p_ = static_cast<T*>(std::calloc(n, sizeof(T)));
        if (p_ == nullptr) throw std::bad_alloc();
    }
    ZeroedArray(ZeroedArray&& o) noexcept : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)) {}
    ZeroedArray& operator=(ZeroedArray&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
        return *this;
    }
    ZeroedArray(const ZeroedArray&) = delete;
    ZeroedArray& operator=(const ZeroedArray&) = delete;
    ~ZeroedArray() { std::free(p_); }

    T* data() { return p_; }
    const T* data() const { return p_; }
    std::size_t size() const { return n_; }
    T* begin() { return p_; }
    T* end() { return p_ + n_; }

private:
    T* p_ = nullptr;
    std::size_t n_ = 0;
};
}  // namespace detail

template <class T>
class StagedParams;

template <class T>
class ParamSet {
public:
    ParamSet() = default;
    ParamSet(const ParamSet&) = delete;
    ParamSet& operator=(const ParamSet&) = delete;
    ParamSet(ParamSet&&) noexcept = default;
    ParamSet& operator=(ParamSet&&) noexcept = default;

    /// Declares a trainable tensor; `ref` is filled in by allocate().
    void add(std::string name, std::vector<std::size_t> shape, TensorRef<T>* ref) {
        declare(std::move(name), std::move(shape), ref, true);
    }
    /// Declares a non-trainable tensor that checkpoints keep.
    void add_buffer(std::string name, std::vector<std::size_t> shape, TensorRef<T>* ref) {
        declare(std::move(name), std::move(shape), ref, false);
    }

    /// Records a setting ("<prefix>.scale" = "sigmoid"): checkpoints keep it and loading checks it.
    void add_setting(std::string name, std::string value) {
        for (const auto& s : settings_)
            if (s.name == name) throw error("duplicate setting name '" + name + "'");
        settings_.push_back({std::move(name), std::move(value)});
    }
    const std::vector<SettingInfo>& settings() const { return settings_; }

    /// Lays out the flat arrays (zero-filled, tensors packed back to back in declaration order, so
    /// parameters().size() == count()) and binds every declared handle.
    void allocate() {
        const auto [np, nb] = lay_out();
        values_.assign(np, T(0));
        grads_ = detail::ZeroedArray<T>(np);
        buffers_.assign(nb, T(0));
        bind_pending(values_.data(), grads_.data(), buffers_.data());
    }

    /// Instead of allocate(): the same layout, but the handles point into external arrays of
    /// count() values, count() gradients and buffer_count() buffer scalars, and this set owns no
    /// storage. A device model binds its bijectors' handles to its device copy this way
    /// (declaring them again into a fresh ParamSet).
    void bind_external(T* values, T* grads, T* buffers) {
        lay_out();
        bind_pending(values, grads, buffers);
    }

    bool allocated() const { return allocated_; }
    const std::vector<TensorInfo>& tensors() const { return tensors_; }

    /// Number of trainable scalars (== values().size()).
    std::size_t count() const {
        std::size_t n = 0;
        for (const auto& t : tensors_)
            if (t.trainable) n += t.size;
        return n;
    }

    /// Number of non-trainable scalars (== buffers().size() once allocated).
    std::size_t buffer_count() const {
        std::size_t n = 0;
        for (const auto& t : tensors_)
            if (!t.trainable) n += t.size;
        return n;
    }

    std::span<T> values() { return values_; }
    std::span<const T> values() const { return values_; }
    std::span<T> grads() { return {grads_.data(), grads_.size()}; }
    std::span<const T> grads() const { return {grads_.data(), grads_.size()}; }
    std::span<T> buffers() { return buffers_; }
    std::span<const T> buffers() const { return buffers_; }

    void zero_grad() { std::fill(grads_.begin(), grads_.end(), T(0)); }

    /// Pointer to a tensor's storage (values or buffers) by its info.
    T* data(const TensorInfo& t) { return (t.trainable ? values_.data() : buffers_.data()) + t.offset; }
    const T* data(const TensorInfo& t) const {
        return (t.trainable ? values_.data() : buffers_.data()) + t.offset;
    }
    T* grad(const TensorInfo& t) { return t.trainable ? grads_.data() + t.offset : nullptr; }

    const TensorInfo* find(const std::string& name) const {
        for (const auto& t : tensors_)
            if (t.name == name) return &t;
        return nullptr;
    }

    /// Registers an invariant of some of this set's tensors (by name) that values from outside must
    /// satisfy before they replace the current ones; `check` throws a bijou::error naming the tensor
    /// and the value. load_checkpoint runs every check on the file's staged values and commits
    /// nothing if one throws. Checks capture names, not pointers: they survive moves of the set.
    void add_check(std::function<void(const StagedParams<T>&)> check) { checks_.push_back(std::move(check)); }

    /// Runs every registered check on staged values laid out like values() and buffers().
    void check_staged(const T* values, const T* buffers) const {
        const StagedParams<T> staged(*this, values, buffers);
        for (const auto& check : checks_) check(staged);
    }

private:
    // Offsets in declaration order; returns the sizes of the value and buffer arrays.
    std::pair<std::size_t, std::size_t> lay_out() {
        std::size_t np = 0, nb = 0;
        for (auto& t : tensors_) {
            std::size_t& cursor = t.trainable ? np : nb;
            t.offset = cursor;
            cursor += t.size;
        }
        return {np, nb};
    }

    void bind_pending(T* values, T* grads, T* buffers) {
        for (std::size_t i = 0; i < tensors_.size(); ++i) {
            const auto& t = tensors_[i];
            TensorRef<T>* r = pending_[i];
            r->size = t.size;
            if (t.trainable) {
                r->value = values + t.offset;
                r->grad = grads + t.offset;
            } else {
                r->value = buffers + t.offset;
                r->grad = nullptr;
            }
        }
        pending_.clear();
        pending_.shrink_to_fit();
        allocated_ = true;
    }

    void declare(std::string name, std::vector<std::size_t> shape, TensorRef<T>* ref, bool trainable) {
        assert(!allocated_ && "bijou: ParamSet::declare after allocate");
        for (const auto& t : tensors_)
            if (t.name == name) throw error("duplicate parameter name '" + name + "'");
        std::size_t size = 1;
        for (auto d : shape) size *= d;
        tensors_.push_back({std::move(name), std::move(shape), 0, size, trainable});
        pending_.push_back(ref);
    }

    std::vector<TensorInfo> tensors_;
    std::vector<SettingInfo> settings_;
    std::vector<TensorRef<T>*> pending_;
    std::vector<std::function<void(const StagedParams<T>&)>> checks_;
    std::vector<T> values_, buffers_;
    detail::ZeroedArray<T> grads_;
    bool allocated_ = false;
};

/// Values staged for a ParamSet outside it (a checkpoint being loaded), laid out like its values()
/// and buffers(): what the checks registered with ParamSet::add_check read.
template <class T>
class StagedParams {
public:
    StagedParams(const ParamSet<T>& set, const T* values, const T* buffers)
        : set_(set), values_(values), buffers_(buffers) {}

    /// The staged values of the tensor declared as `name`, with its declared size.
    const T* operator()(const std::string& name) const {
        const TensorInfo* t = set_.find(name);
        assert(t && "bijou: StagedParams: a check names a tensor that was not declared");
        return (t->trainable ? values_ : buffers_) + t->offset;
    }

private:
    const ParamSet<T>& set_;
    const T* values_;
    const T* buffers_;
};

/// Joins state_dict name parts with '.', skipping empty parts.
inline std::string join_name(const std::string& prefix, const std::string& name) {
    if (prefix.empty()) return name;
    if (name.empty()) return prefix;
    return prefix + "." + name;
}

}  // namespace bijou
