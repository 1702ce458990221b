// libFuzzer target for checkpoint loading (bijou/io/checkpoint.hpp). Each input is written to a
// scratch file and given to
//   1. read_checkpoint_metadata(path);
//   2. load_checkpoint(path, model)            (a small Glow, fuzz_model.hpp, constructed once);
//   3. load_checkpoint(path, model, adam)      (the same model with an Adam optimizer).
// A bijou::error is the expected outcome of a bad input, and after one the model (parameters and
// buffers) and the optimizer (state vectors, step count, options) must be bit-for-bit what they were
// before the call: the target aborts if not. After a successful load the target checks that the
// returned metadata is the file's, then puts the original state back so every input starts from the
// same one.
// Anything else is a finding: a crash, another exception (uncaught, so libFuzzer reports it), a
// sanitizer report, an allocation above -malloc_limit_mb, a hang (-timeout).
//
// A custom mutator keeps most mutants well-formed enough to reach the deeper checks: a quarter of
// the time libFuzzer's byte mutations apply to the whole file; otherwise to the JSON header or the
// data section alone (the 8-byte length is then rewritten to match), or a JSON-aware edit changes
// one field of the header (an offset, a shape entry, a dtype, a name, a metadata value).
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "fuzz_common.hpp"
#include "fuzz_model.hpp"

namespace {

using bijou_fuzz::Model;

[[noreturn]] void finding(const char* what) {
    std::fprintf(stderr, "bijou fuzz_checkpoint: %s\n", what);
    std::abort();
}

/// The model's and the optimizer's whole state, as bytes (NaN-safe comparison).
struct Snapshot {
    std::vector<float> values, buffers;
    std::vector<std::vector<float>> states;
    long step = 0;
    bijou::AdamOptions options;

    static Snapshot of(Model& m, bijou::Adam<float>& opt) {
        Snapshot s;
        const auto v = m.params().values();
        const auto b = m.params().buffers();
        s.values.assign(v.begin(), v.end());
        s.buffers.assign(b.begin(), b.end());
        for (auto [name, span] : opt.state_tensors()) s.states.emplace_back(span.begin(), span.end());
        s.step = opt.step_count();
        s.options = opt.options();
        return s;
    }
    bool same_as(Model& m, bijou::Adam<float>& opt) const {
        auto eq = [](const auto& a, const auto& b) {
            return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
        };
        const bijou::AdamOptions& o = opt.options();
        if (!eq(values, m.params().values()) || !eq(buffers, m.params().buffers()) || step != opt.step_count() ||
            o.beta1 != options.beta1 || o.beta2 != options.beta2 || o.eps != options.eps ||
            o.weight_decay != options.weight_decay)
            return false;
        std::size_t k = 0;
        for (auto [name, span] : opt.state_tensors())
            if (k >= states.size() || !eq(states[k++], span)) return false;
        return k == states.size();
    }
    void restore(Model& m, bijou::Adam<float>& opt) const {
        std::copy(values.begin(), values.end(), m.params().values().begin());
        std::copy(buffers.begin(), buffers.end(), m.params().buffers().begin());
        std::size_t k = 0;
        for (auto [name, span] : opt.state_tensors()) std::copy(states[k].begin(), states[k].end(), span.begin()), ++k;
        opt.set_step_count(step);
        opt.set_options(options);
    }
};

struct State {
    bijou_fuzz::ScratchDir dir{"checkpoint"};
    Model model{bijou_fuzz::model_options()};
    bijou::Adam<float> opt{model.parameter_count(), {.beta1 = 0.5, .eps = 1e-6}};  // the seeds have the defaults
    Snapshot original;
    State() {
        // A state unlike the seeds' (the seeds come from a perturbed model), so that a load that
        // "succeeds" without copying anything, or a partial copy, would be visible.
        for (auto [name, span] : opt.state_tensors())
            for (std::size_t i = 0; i < span.size(); ++i) span[i] = -0.5f;
        opt.set_step_count(41);
        original = Snapshot::of(model, opt);
    }
};

State& state() {
    static State s;
    return s;
}

std::uint64_t get_le64(const std::uint8_t* p) {
    std::uint64_t n = 0;
    for (int b = 0; b < 8; ++b) n |= std::uint64_t(p[b]) << (8 * b);
    return n;
}

/// Writes length + text + data into [out, out + max_size) and returns the size, or 0 if it does not fit.
std::size_t assemble(std::uint8_t* out, std::size_t max_size, const std::string& text,
                     const std::vector<std::uint8_t>& body) {
    const std::size_t size = 8 + text.size() + body.size();
    if (size > max_size) return 0;
    for (int b = 0; b < 8; ++b) out[b] = std::uint8_t(std::uint64_t(text.size()) >> (8 * b));
    std::memcpy(out + 8, text.data(), text.size());
    if (!body.empty()) std::memcpy(out + 8 + text.size(), body.data(), body.size());
    return size;
}

/// One random edit of a parsed header; false if there was nothing to edit.
bool edit_json(nlohmann::json& j, std::minstd_rand& rng) {
    if (!j.is_object() || j.empty()) return false;
    auto it = j.begin();
    std::advance(it, long(rng() % j.size()));
    const std::string key = it.key();
    nlohmann::json& v = it.value();
    static const std::vector<std::string> dtypes{"F32", "F64", "BF16", "U8", "I64", "U64", "F16", "X"};
    static const std::vector<long long> deltas{-8, -4, -1, 1, 4, 8, 1 << 20};
    switch (rng() % 6) {
    case 0:  // remove the entry
        j.erase(key);
        return true;
    case 1: {  // rename it (a near miss of a real name)
        nlohmann::json moved = std::move(v);
        j.erase(key);
        j[rng() % 2 ? key + "x" : key.substr(0, key.size() / 2)] = std::move(moved);
        return true;
    }
    default:
        break;
    }
    if (!v.is_object() || v.empty()) return false;
    if (key == "__metadata__") {  // change or drop one metadata value
        auto f = v.begin();
        std::advance(f, long(rng() % v.size()));
        if (rng() % 3 == 0) v.erase(f.key());
        else *f = rng() % 2 ? std::string("-1") : std::to_string(rng() % 100);
        return true;
    }
    const int which = int(rng() % 3);
    if (which == 0) {
        v["dtype"] = dtypes[rng() % dtypes.size()];
        return true;
    }
    nlohmann::json& arr = v[which == 1 ? "shape" : "data_offsets"];
    if (!arr.is_array()) return false;
    if (arr.empty() || rng() % 5 == 0) {
        arr.push_back(rng() % 16);
        return true;
    }
    nlohmann::json& x = arr[rng() % arr.size()];
    if (!x.is_number_unsigned()) return false;
    const long long d = deltas[rng() % deltas.size()];
    const std::uint64_t u = x.get<std::uint64_t>();
    x = rng() % 8 == 0 ? std::uint64_t(0) : std::uint64_t(u + std::uint64_t(d));
    return true;
}

}  // namespace

extern "C" std::size_t LLVMFuzzerMutate(std::uint8_t* data, std::size_t size, std::size_t max_size);

extern "C" std::size_t LLVMFuzzerCustomMutator(std::uint8_t* data, std::size_t size, std::size_t max_size,
                                               unsigned int seed) {
    std::minstd_rand rng(seed);
    const unsigned mode = rng() % 4;
    if (mode == 0 || size < 8 || get_le64(data) > size - 8) return LLVMFuzzerMutate(data, size, max_size);
    const std::size_t n = std::size_t(get_le64(data));
    std::string text(reinterpret_cast<const char*>(data) + 8, n);
    std::vector<std::uint8_t> body(data + 8 + n, data + size);
    if ((mode == 1 && body.empty()) || (mode == 2 && n == 0)) return LLVMFuzzerMutate(data, size, max_size);
    if (mode == 1) {  // the data section alone
        const std::size_t cap = max_size - 8 - n;
        body.resize(cap);
        body.resize(LLVMFuzzerMutate(body.data(), size - 8 - n, cap));
    } else if (mode == 2) {  // the header text alone, length kept consistent
        const std::size_t cap = max_size - 8 - body.size();
        text.resize(cap);
        text.resize(LLVMFuzzerMutate(reinterpret_cast<std::uint8_t*>(text.data()), n, cap));
    } else {  // a JSON-aware edit
        nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded() || !edit_json(j, rng)) return LLVMFuzzerMutate(data, size, max_size);
        text = j.dump();
        text.append((8 - text.size() % 8) % 8, ' ');
    }
    const std::size_t out = assemble(data, max_size, text, body);
    return out ? out : LLVMFuzzerMutate(data, size, max_size);
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    State& s = state();
    const auto path = s.dir.write("input.safetensors", data, size);

    bijou::CheckpointMetadata header_meta;
    bool header_ok = false;
    try {
        header_meta = bijou::read_checkpoint_metadata(path);
        header_ok = true;
    } catch (const bijou::error&) {
    }

    for (const bool with_optimizer : {false, true}) {
        try {
            const bijou::CheckpointMetadata meta = with_optimizer ? bijou::load_checkpoint(path, s.model, s.opt)
                                                                  : bijou::load_checkpoint(path, s.model);
            if (!header_ok || meta != header_meta)
                finding("load_checkpoint succeeded but its metadata differs from read_checkpoint_metadata's");
            if (!with_optimizer && Snapshot::of(s.model, s.opt).states != s.original.states)
                finding("load_checkpoint without an optimizer changed the optimizer");
            s.original.restore(s.model, s.opt);
        } catch (const bijou::error&) {
            if (!s.original.same_as(s.model, s.opt))
                finding(with_optimizer ? "a failed load_checkpoint(path, model, opt) changed the model or the optimizer"
                                       : "a failed load_checkpoint(path, model) changed the model");
        }
    }
    return 0;
}
