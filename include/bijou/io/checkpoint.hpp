// bijou/io/checkpoint.hpp — safetensors checkpoints of any bijou Flow (Glow included) and its optimizer.
//
// Needs nlohmann-json (Debian `nlohmann-json3-dev`). This header is optional: <bijou/bijou.hpp> does not
// include it and the core library does not need nlohmann-json; a target that includes it does
// `find_package(nlohmann_json)` and links `nlohmann_json::nlohmann_json`. POSIX only (open, fsync, rename).
//
// Format (https://github.com/huggingface/safetensors): an 8-byte little-endian header length N, N bytes of
// a JSON object (padded with spaces so the data starts at a multiple of 8), then the raw little-endian
// tensor bytes. Each tensor is `"name": {"dtype": "F32"|"F64", "shape": [...], "data_offsets": [b, e]}`
// with offsets relative to the data section; `__metadata__` maps strings to strings. docs/checkpoints.md.
//   model tensors     the state_dict names of model.params().tensors(): parameters and buffers
//                     ("levels.0.steps.3.actnorm.loc", "levels.0.steps.3.actnorm.initialized", …)
//   optimizer state   "optimizer.<state>.<parameter name>", the parameter's shape, for each state vector
//                     of Adam / Adamax (state_tensors(): exp_avg, exp_avg_sq | exp_inf), trainable tensors only
//   __metadata__      checkpoint_config(model): format, format_version, model, shape, scalar, levels,
//                     steps_per_level, hidden, hidden_layers, seed, memory_saving, and "setting.<name>" for every setting the
//                     model's bijectors record (ParamSet::add_setting: "setting.levels.0.steps.3.coupling.scale"
//                     = "sigmoid"); the optimizer's state names, step count and options; and the caller's
//                     `extra` entries (training step, Rng::state(), data order, …)
// Format versions: this bijou writes version 2 and reads 1 and 2. Version 1 (bijou before per-recipe
// options) kept the couplings' and Permute's options as central fields (hidden, hidden_layers, net, scale,
// mask, permute): such a file is checked against the model's Options and CouplingOptions/PermuteOptions
// as version 1 did. Any other version is an io_error naming it.
//
// save_checkpoint(path, model[, optimizer], extra = {})
//   Writes `<path>.tmp.<pid>.<n>` in the same directory, fsyncs it, renames it over path, fsyncs the
//   directory. On any failure the temporary file is removed, the old file at path is untouched and
//   bijou::io_error is thrown ("bijou: <path>: …"); an `extra` key that bijou writes itself throws
//   bijou::invalid_argument. A process killed during a save leaves path intact (and the temporary file).
// load_checkpoint(path, model[, optimizer]) -> metadata
//   Validates the whole file before it touches the model or the optimizer: file size, header length
//   (≤ checkpoint_max_header_bytes and ≤ file size − 8), JSON nesting and syntax, a JSON object, every
//   entry's fields and JSON types, the format version, the config against the model's
//   (checked_config_fields) and every setting against the model's (the same names, the same values: a
//   setting of the model missing from the file, or one in the file the model does not have, is an error
//   like a missing or unexpected tensor), dtype against
//   the model's scalar, missing and unexpected tensors, shapes against the model's, offsets (begin ≤ end,
//   end − begin = elements × dtype size, inside the data section, contiguous and non-overlapping, no
//   trailing bytes), non-finite values, and the bijectors' invariants of their tensors
//   (ParamSet::add_check: InvConv1x1LU's perm and sign, Permute's perm) on the staged values. The
//   file's optimizer entries are checked whether or not an optimizer is given: state names, step,
//   options (Adam's ranges) and every optimizer tensor's dtype, shape and values. Each failure throws
//   bijou::io_error naming the file and the tensor or field, and leaves model and optimizer unchanged.
//   With an optimizer the file must hold its state (and, for one with options such as Adam's, its
//   options); the optimizer then continues with the file's state, step count and options (the options
//   it was built with are replaced: CheckpointOptimizerOptions).
// read_checkpoint_metadata(path) -> metadata: the checked header's __metadata__ only, e.g. to choose
//   which model to build before loading.
// Cost: save and load are one pass over the file; load holds the file's data section in memory once,
// plus a staging copy of every tensor in it.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <bit>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <concepts>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "bijou/core/error.hpp"
#include "bijou/core/memory.hpp"
#include "bijou/core/options.hpp"
#include "bijou/core/params.hpp"
#include "bijou/models/glow.hpp"
#include "bijou/models/realnvp.hpp"
#include "bijou/train/adam.hpp"

namespace bijou {

/// String → string, as safetensors' __metadata__ requires.
using CheckpointMetadata = std::map<std::string, std::string>;

/// The largest JSON header load accepts (a forged length cannot make it allocate more).
inline constexpr std::uint64_t checkpoint_max_header_bytes = std::uint64_t(100) << 20;
/// The value of __metadata__ "format_version" this bijou writes (it reads this one and 1).
inline constexpr int checkpoint_format_version = 2;
/// Config fields load compares with the model's, besides the "setting." entries; the others bijou
/// writes (hidden, hidden_layers, seed, memory_saving) are informational: the model's conditioners record
/// their own widths as settings, and seed and memory mode do not change what the tensors mean.
inline constexpr std::array<std::string_view, 7> checked_config_fields{
    "format", "format_version", "model", "shape", "scalar", "levels", "steps_per_level"};
/// The prefix of a setting's key in __metadata__.
inline constexpr std::string_view checkpoint_setting_prefix = "setting.";

/// A model checkpoints can hold: named tensors in a ParamSet, Options, a data shape.
template <class M>
concept CheckpointModel = Scalar<typename M::scalar> && requires(M& m, const M& cm) {
    typename M::in_shape;
    { m.params() } -> std::same_as<ParamSet<typename M::scalar>&>;
    { cm.params() } -> std::same_as<const ParamSet<typename M::scalar>&>;
    { cm.options() } -> std::convertible_to<const Options&>;
};

/// An optimizer whose state checkpoints can hold (Adam, Adamax): named flat state vectors laid out
/// like the model's parameters, and a step count.
template <class O, class T>
concept CheckpointOptimizer = requires(O& o, long t) {
    { o.state_tensors() };
    { o.step_count() } -> std::convertible_to<long>;
    o.set_step_count(t);
    { o.size() } -> std::convertible_to<std::size_t>;
    requires std::same_as<typename std::remove_cvref_t<decltype(o.state_tensors()[0].second)>, std::span<T>>;
};

/// An optimizer whose options checkpoints record and restore (Adam, Adamax).
template <class O>
concept CheckpointOptimizerOptions = requires(O& o, const O& co, const AdamOptions& a) {
    { co.options() } -> std::convertible_to<const AdamOptions&>;
    o.set_options(a);
};

/// The model's name in __metadata__ "model": "Glow", "MultiScaleRealNVP", or "Flow" for any other model
/// (whose structure the tensor names and shapes then pin down). Specialise it for a model of your own.
template <class M>
struct checkpoint_model_name {
    static constexpr std::string_view value = "Flow";
};
template <class S, int L, class Step, class T, class B>
struct checkpoint_model_name<Glow<S, L, Step, T, B>> {
    static constexpr std::string_view value = "Glow";
};
template <class S, int L, class T, class B>
struct checkpoint_model_name<MultiScaleRealNVP<S, L, T, B>> {
    static constexpr std::string_view value = "MultiScaleRealNVP";
};

namespace detail {

[[noreturn]] inline void ckpt_fail(const std::filesystem::path& file, const std::string& what) {
    throw io_error(file.string() + ": " + what);
}

template <class V>
std::string ckpt_shape_str(const std::vector<V>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}


template <class T>
constexpr std::string_view safetensors_dtype() {
    return std::is_same_v<T, float> ? "F32" : "F64";
}
template <class T>
constexpr std::string_view ckpt_scalar_name() {
    return std::is_same_v<T, float> ? "float32" : "float64";
}


/// One tensor to write or to fill: its name, shape, element count and storage.
template <class P>
struct CkptSlot {
    std::string name;
    std::vector<std::size_t> shape;
    std::size_t size = 0;
    P data = nullptr;
};

/// Model tensors then optimizer tensors (trainable parameters only), in declaration order.
template <class T, class P, class Data, class Opt>
std::vector<CkptSlot<P>> ckpt_slots(const ParamSet<T>& ps, Data&& data, const Opt* opt) {
    std::vector<CkptSlot<P>> slots;
    for (const auto& t : ps.tensors()) slots.push_back({t.name, t.shape, t.size, data(t)});
    if constexpr (!std::is_same_v<Opt, void>) {
        if (opt) {
            for (auto [state_name, span] : opt->state_tensors())
                for (const auto& t : ps.tensors())
                    if (t.trainable)
                        slots.push_back({"optimizer." + std::string(state_name) + "." + t.name, t.shape, t.size,
                                         span.data() + t.offset});
        }
    }
    return slots;
}

template <class T>
void ckpt_encode(const T* src, std::size_t n, unsigned char* dst) {
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(dst, src, n * sizeof(T));
    } else {
        using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        for (std::size_t i = 0; i < n; ++i) {
            const U u = std::bit_cast<U>(src[i]);
            for (std::size_t b = 0; b < sizeof(T); ++b) dst[i * sizeof(T) + b] = static_cast<unsigned char>(u >> (8 * b));
        }
    }
}

template <class T>
void ckpt_decode(const unsigned char* src, std::size_t n, T* dst) {
    if constexpr (std::endian::native == std::endian::little) {
        std::memcpy(dst, src, n * sizeof(T));
    } else {
        using U = std::conditional_t<sizeof(T) == 4, std::uint32_t, std::uint64_t>;
        for (std::size_t i = 0; i < n; ++i) {
            U u = 0;
            for (std::size_t b = 0; b < sizeof(T); ++b) u |= U(src[i * sizeof(T) + b]) << (8 * b);
            dst[i] = std::bit_cast<T>(u);
        }
    }
}

inline std::string ckpt_errno(int e) { return std::strerror(e); }

/// A file descriptor closed on scope exit.
class CkptFd {
public:
    explicit CkptFd(int fd = -1) : fd_(fd) {}
    CkptFd(const CkptFd&) = delete;
    CkptFd& operator=(const CkptFd&) = delete;
    ~CkptFd() { reset(); }
    int get() const { return fd_; }
    /// Closes now (and takes `fd` instead); returns close()'s errno, or 0.
    int reset(int fd = -1) {
        int e = 0;
        if (fd_ >= 0 && ::close(fd_) != 0) e = errno;
        fd_ = fd;
        return e;
    }

private:
    int fd_;
};

/// Writes all of [p, p + n) or returns errno.
inline int ckpt_write_all(int fd, const unsigned char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, std::min<std::size_t>(n, std::size_t(1) << 30));
        if (w < 0) {
            if (errno == EINTR) continue;
            return errno;
        }
        p += w;
        n -= std::size_t(w);
    }
    return 0;
}

/// Reads exactly n bytes at offset off, or fails naming the file.
inline void ckpt_read_at(const std::filesystem::path& file, int fd, unsigned char* p, std::size_t n, std::uint64_t off) {
    while (n > 0) {
        const ssize_t r = ::pread(fd, p, std::min<std::size_t>(n, std::size_t(1) << 30), off_t(off));
        if (r < 0) {
            if (errno == EINTR) continue;
            ckpt_fail(file, "read error: " + ckpt_errno(errno));
        }
        if (r == 0) ckpt_fail(file, "the file ended early (truncated while being read?)");
        p += r;
        n -= std::size_t(r);
        off += std::uint64_t(r);
    }
}

/// Distinguishes the temporary files of concurrent saves within one process.
inline unsigned ckpt_next_temp_id() {
    static std::atomic<unsigned> counter{0};
    return counter++;
}

/// Writes `header` and then `body(sink)` to path atomically (see the contract at the top).
template <class Body>
void ckpt_write_atomically(const std::filesystem::path& path, const std::string& header, Body&& body) {
    const std::filesystem::path tmp =
        path.string() + ".tmp." + std::to_string(::getpid()) + "." + std::to_string(ckpt_next_temp_id());
    CkptFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666));
    if (fd.get() < 0) ckpt_fail(path, "cannot create " + tmp.string() + ": " + ckpt_errno(errno));
    bool committed = false;
    struct Cleanup {
        const std::filesystem::path& tmp;
        CkptFd& fd;
        bool& committed;
        ~Cleanup() {
            if (committed) return;
            fd.reset();
            ::unlink(tmp.c_str());
        }
    } cleanup{tmp, fd, committed};
    auto check = [&](int e, const char* what) {
        if (e != 0) ckpt_fail(path, std::string(what) + " " + tmp.string() + ": " + ckpt_errno(e));
    };
    check(ckpt_write_all(fd.get(), reinterpret_cast<const unsigned char*>(header.data()), header.size()), "cannot write");
    body([&](const unsigned char* p, std::size_t n) { check(ckpt_write_all(fd.get(), p, n), "cannot write"); });
    check(::fsync(fd.get()) != 0 ? errno : 0, "cannot flush");
    check(fd.reset(), "cannot close");
    if (::rename(tmp.c_str(), path.c_str()) != 0)
        ckpt_fail(path, "cannot rename " + tmp.string() + " over it: " + ckpt_errno(errno));
    committed = true;
    // Make the rename itself durable; the new file is already complete, so a failure here is not reported.
    const std::filesystem::path dir = path.has_parent_path() ? path.parent_path() : std::filesystem::path(".");
    CkptFd dfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (dfd.get() >= 0) (void)::fsync(dfd.get());
}

/// The header read and checked up to the JSON level, with the file still open.
struct CkptHeader {
    nlohmann::json json;
    CheckpointMetadata metadata;
    bool has_metadata = false;
    std::uint64_t data_begin = 0, data_size = 0;
};

/// Deepest JSON nesting load accepts (a bijou header needs 3); checked before parsing, so a forged
/// header of a million '[' cannot overflow the parser's recursion.
inline constexpr int ckpt_max_json_depth = 16;

inline void ckpt_check_depth(const std::filesystem::path& file, const std::string& text) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (const char c : text) {
        if (in_string) {
            if (escaped) escaped = false;
            else if (c == '\\') escaped = true;
            else if (c == '"') in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > ckpt_max_json_depth)
                ckpt_fail(file, "header JSON is nested deeper than " + std::to_string(ckpt_max_json_depth) + " levels");
        } else if (c == ']' || c == '}') {
            --depth;
        }
    }
}

inline CkptHeader ckpt_read_header(const std::filesystem::path& file, CkptFd& fd) {
    fd.reset(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (fd.get() < 0) ckpt_fail(file, "cannot open: " + ckpt_errno(errno));
    struct stat st {};
    if (::fstat(fd.get(), &st) != 0) ckpt_fail(file, "cannot stat: " + ckpt_errno(errno));
    if (!S_ISREG(st.st_mode)) ckpt_fail(file, "not a regular file");
    const std::uint64_t size = std::uint64_t(st.st_size);
    if (size < 8)
        ckpt_fail(file, "file too short (" + std::to_string(size) +
                            " bytes): a safetensors file starts with an 8-byte header length");
    unsigned char len_bytes[8];
    ckpt_read_at(file, fd.get(), len_bytes, 8, 0);
    std::uint64_t n = 0;
    for (int b = 0; b < 8; ++b) n |= std::uint64_t(len_bytes[b]) << (8 * b);
    if (n > checkpoint_max_header_bytes)
        ckpt_fail(file, "header length " + std::to_string(n) + " exceeds the limit of " +
                            std::to_string(checkpoint_max_header_bytes) + " bytes");
    if (n > size - 8)
        ckpt_fail(file, "header length " + std::to_string(n) + " exceeds the " + std::to_string(size - 8) +
                            " bytes after the length field (truncated file?)");
    std::string text(std::size_t(n), '\0');
    ckpt_read_at(file, fd.get(), reinterpret_cast<unsigned char*>(text.data()), text.size(), 8);
    ckpt_check_depth(file, text);
    CkptHeader h;
    try {
        h.json = nlohmann::json::parse(text);
    } catch (const nlohmann::json::exception& e) {
        ckpt_fail(file, std::string("header is not valid JSON: ") + e.what());
    }
    if (!h.json.is_object()) ckpt_fail(file, "header is not a JSON object");
    h.data_begin = 8 + n;
    h.data_size = size - 8 - n;
    if (const auto it = h.json.find("__metadata__"); it != h.json.end()) {
        if (!it->is_object()) ckpt_fail(file, "__metadata__ is not a JSON object");
        for (const auto& [k, v] : it->items()) {
            if (!v.is_string()) ckpt_fail(file, "__metadata__ field '" + k + "' is not a string");
            h.metadata[k] = v.get<std::string>();
        }
        h.has_metadata = true;
    }
    return h;
}

/// One tensor entry of the header, structurally checked.
struct CkptEntry {
    std::string name, dtype;
    std::vector<std::uint64_t> shape;
    std::uint64_t begin = 0, end = 0;
};

inline std::uint64_t ckpt_dtype_size(std::string_view d) {
    static constexpr std::array<std::pair<std::string_view, std::uint64_t>, 14> sizes{{{"BOOL", 1},
                                                                                      {"U8", 1},
                                                                                      {"I8", 1},
                                                                                      {"F8_E5M2", 1},
                                                                                      {"F8_E4M3", 1},
                                                                                      {"I16", 2},
                                                                                      {"U16", 2},
                                                                                      {"F16", 2},
                                                                                      {"BF16", 2},
                                                                                      {"I32", 4},
                                                                                      {"U32", 4},
                                                                                      {"F32", 4},
                                                                                      {"F64", 8},
                                                                                      {"I64", 8}}};
    for (const auto& [name, s] : sizes)
        if (name == d) return s;
    return d == "U64" ? 8 : 0;
}

inline std::vector<CkptEntry> ckpt_entries(const std::filesystem::path& file, const nlohmann::json& header) {
    std::vector<CkptEntry> entries;
    for (const auto& item : header.items()) {
        const std::string& name = item.key();
        const nlohmann::json& v = item.value();
        if (name == "__metadata__") continue;
        auto fail = [&](const std::string& what) { ckpt_fail(file, "tensor '" + name + "': " + what); };
        if (!v.is_object()) fail("entry is not a JSON object");
        for (const auto& [field, _] : v.items())
            if (field != "dtype" && field != "shape" && field != "data_offsets") fail("unexpected field '" + field + "'");
        CkptEntry e;
        e.name = name;
        const auto dt = v.find("dtype");
        if (dt == v.end()) fail("missing 'dtype'");
        if (!dt->is_string()) fail("'dtype' is not a string");
        e.dtype = dt->get<std::string>();
        if (ckpt_dtype_size(e.dtype) == 0) fail("unknown dtype '" + e.dtype + "'");
        const auto sh = v.find("shape");
        if (sh == v.end()) fail("missing 'shape'");
        if (!sh->is_array()) fail("'shape' is not an array");
        for (const auto& d : *sh) {
            if (!d.is_number_unsigned()) fail("'shape' holds " + d.dump() + ", not a non-negative integer");
            e.shape.push_back(d.get<std::uint64_t>());
        }
        const auto off = v.find("data_offsets");
        if (off == v.end()) fail("missing 'data_offsets'");
        if (!off->is_array() || off->size() != 2 || !(*off)[0].is_number_unsigned() || !(*off)[1].is_number_unsigned())
            fail("'data_offsets' is " + off->dump() + ", not two non-negative integers");
        e.begin = (*off)[0].get<std::uint64_t>();
        e.end = (*off)[1].get<std::uint64_t>();
        entries.push_back(std::move(e));
    }
    return entries;
}

/// safetensors' layout rules: begin ≤ end, end − begin = elements × dtype size, sorted by offset the
/// tensors tile the data section exactly (no overlap, no gap, no trailing bytes).
inline void ckpt_check_layout(const std::filesystem::path& file, std::vector<CkptEntry> entries, std::uint64_t data_size) {
    for (const auto& e : entries) {
        auto fail = [&](const std::string& what) { ckpt_fail(file, "tensor '" + e.name + "': " + what); };
        const std::string offs = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
        if (e.begin > e.end) fail(offs + ": begin is after end");
        std::uint64_t bytes = ckpt_dtype_size(e.dtype);
        for (const auto d : e.shape) {
            if (d != 0 && bytes > UINT64_MAX / d) fail("shape " + ckpt_shape_str(e.shape) + " is too large");
            bytes *= d;
        }
        if (e.end - e.begin != bytes)
            fail(offs + " span " + std::to_string(e.end - e.begin) + " bytes but shape " + ckpt_shape_str(e.shape) +
                 " of " + e.dtype + " needs " + std::to_string(bytes));
        if (e.end > data_size)
            fail(offs + " go past the end of the data section (" + std::to_string(data_size) +
                 " bytes): the file is truncated or the offsets are wrong");
    }
    std::sort(entries.begin(), entries.end(),
              [](const CkptEntry& a, const CkptEntry& b) { return std::pair(a.begin, a.end) < std::pair(b.begin, b.end); });
    std::uint64_t cursor = 0;
    const CkptEntry* prev = nullptr;
    for (const auto& e : entries) {
        const std::string offs = "data_offsets [" + std::to_string(e.begin) + ", " + std::to_string(e.end) + "]";
        if (e.begin < cursor)
            ckpt_fail(file, "tensor '" + e.name + "': " + offs + " overlap tensor '" + prev->name + "' [" +
                                std::to_string(prev->begin) + ", " + std::to_string(prev->end) + "]");
        if (e.begin > cursor)
            ckpt_fail(file, "tensor '" + e.name + "': " + offs + " leave a gap of " + std::to_string(e.begin - cursor) +
                                " bytes before it (safetensors tensors are contiguous)");
        cursor = e.end;
        prev = &e;
    }
    if (cursor != data_size)
        ckpt_fail(file, std::to_string(data_size - cursor) + " trailing bytes after the last tensor (data section " +
                            std::to_string(data_size) + " bytes, tensors end at " + std::to_string(cursor) + ")");
}

}  // namespace detail

/// The config entries bijou writes into __metadata__ for `model` (all strings): format ("bijou"),
/// format_version, model (checkpoint_model_name), shape ("1,32,32"), scalar ("float32"|"float64"),
/// levels (image models), the model-level Options (steps_per_level, hidden, hidden_layers, seed,
/// memory_saving; only steps_per_level is checked: the couplings check their own widths as settings), and
/// "setting.<name>" = value for each setting the model's bijectors declared (model.params().settings()).
template <CheckpointModel Model>
CheckpointMetadata checkpoint_config(const Model& model) {
    using S = typename Model::in_shape;
    const Options& o = model.options();
    CheckpointMetadata m;
    m["format"] = "bijou";
    m["format_version"] = std::to_string(checkpoint_format_version);
    m["model"] = std::string(checkpoint_model_name<Model>::value);
    std::string shape;
    for (std::size_t i = 0; i < S::dims.size(); ++i) shape += (i ? "," : "") + std::to_string(S::dims[i]);
    m["shape"] = shape;
    m["scalar"] = std::string(detail::ckpt_scalar_name<typename Model::scalar>());
    if constexpr (requires { Model::levels(); }) m["levels"] = std::to_string(Model::levels());
    m["steps_per_level"] = std::to_string(o.steps_per_level);
    m["hidden"] = std::to_string(o.hidden);
    m["hidden_layers"] = std::to_string(o.hidden_layers);
    m["seed"] = std::to_string(o.seed);
    m["memory_saving"] = o.memory_saving ? "true" : "false";
    for (const SettingInfo& st : model.params().settings()) m[std::string(checkpoint_setting_prefix) + st.name] = st.value;
    return m;
}

namespace detail {

/// What a format-version-1 file holds in __metadata__ for `model`, for the fields version 1 checked: the
/// model-level ones and the options of couplings and Permutes, which version 1 kept centrally.
template <CheckpointModel Model>
CheckpointMetadata ckpt_v1_config(const Model& model) {
    const Options& o = model.options();
    const CouplingOptions c = o.get<CouplingOptions>();
    CheckpointMetadata m = checkpoint_config(model);
    m["format_version"] = "1";
    m["net"] = std::string(setting_name(c.net));
    m["scale"] = std::string(setting_name(resolve_scale(c.scale)));  // as the model resolved it (tanh outside Glow)
    m["mask"] = std::string(setting_name(c.mask));
    m["permute"] = std::string(setting_name(o.get<PermuteOptions>().kind));
    return m;
}
inline constexpr std::array<std::string_view, 6> ckpt_v1_fields{"hidden", "net", "hidden_layers", "scale", "mask",
                                                                "permute"};

/// Compares the file's entry `key` with the model's (`want`); one the model lacks must be absent. `what`
/// names it in a message ("config field 'shape'", "setting 'steps.0.coupling.scale'").
inline void ckpt_check_entry(const std::filesystem::path& path, const CheckpointMetadata& file,
                             const CheckpointMetadata& want, const std::string& key, const std::string& what) {
    const auto w = want.find(key);
    const auto g = file.find(key);
    if (w == want.end()) {
        if (g != file.end()) ckpt_fail(path, what + ": the file has '" + g->second + "' but the model has none");
        return;
    }
    if (g == file.end()) ckpt_fail(path, what + " is missing from __metadata__");
    if (g->second != w->second)
        ckpt_fail(path, what + ": the file has '" + g->second + "' but the model has '" + w->second + "'");
}

/// The file's config and settings against the model's, by the file's format version (1 or 2).
template <class Model>
void ckpt_check_config(const std::filesystem::path& path, const CheckpointMetadata& file, const Model& model) {
    const auto v = file.find("format_version");
    if (v == file.end()) ckpt_fail(path, "config field 'format_version' is missing from __metadata__");
    const bool v1 = v->second == "1";
    if (!v1 && v->second != std::to_string(checkpoint_format_version))
        ckpt_fail(path, "format_version '" + v->second + "' is not one this bijou reads (it reads 1 and " +
                            std::to_string(checkpoint_format_version) + ")");
    const CheckpointMetadata want = v1 ? ckpt_v1_config(model) : checkpoint_config(model);
    auto field = [&](std::string_view f) { ckpt_check_entry(path, file, want, std::string(f), "config field '" + std::string(f) + "'"); };
    for (const auto f : checked_config_fields) field(f);
    const std::string prefix(checkpoint_setting_prefix);
    {  // the context shape first: a conditional model and an unconditional one differ everywhere
        const std::string key = prefix + "context_shape";
        const auto in_file = file.find(key), in_model = want.find(key);
        auto what = [](const auto& it, const auto& end) {
            return it == end ? std::string("unconditional") : "conditional on the context " + it->second;
        };
        if ((in_file == file.end()) != (in_model == want.end()) ||
            (in_file != file.end() && in_file->second != in_model->second))
            ckpt_fail(path, "setting 'context_shape': the file's model is " + what(in_file, file.end()) +
                                " but this model is " + what(in_model, want.end()));
    }
    if (v1) {
        for (const auto f : ckpt_v1_fields) field(f);
        return;
    }
    for (const auto& [k, value] : want)
        if (k.rfind(prefix, 0) == 0) ckpt_check_entry(path, file, want, k, "setting '" + k.substr(prefix.size()) + "'");
    for (const auto& [k, value] : file)
        if (k.rfind(prefix, 0) == 0 && !want.count(k))
            ckpt_fail(path, "setting '" + k.substr(prefix.size()) + "' = '" + value +
                                "' is in the file but the model has no such setting");
}

/// Keys bijou writes itself; `extra` may not use them.
inline bool ckpt_reserved_key(const std::string& k) {
    static constexpr std::array<std::string_view, 5> more{"hidden", "hidden_layers", "seed", "memory_saving", "optimizer"};
    return std::find(checked_config_fields.begin(), checked_config_fields.end(), k) != checked_config_fields.end() ||
           std::find(more.begin(), more.end(), k) != more.end() || k.rfind("optimizer.", 0) == 0 ||
           k.rfind(checkpoint_setting_prefix, 0) == 0;
}

template <class Model, class Opt>
void ckpt_save(const std::filesystem::path& path, const Model& model, const Opt* opt, const CheckpointMetadata& extra) {
    using T = typename Model::scalar;
    const auto& ps = model.params();
    CheckpointMetadata meta = checkpoint_config(model);
    if constexpr (!std::is_same_v<Opt, void>) {
        if (opt->size() != ps.count())
            throw invalid_argument("save_checkpoint: the optimizer holds state for " + std::to_string(opt->size()) +
                                   " parameters, the model has " + std::to_string(ps.count()));
        std::string names;
        for (auto [state_name, span] : opt->state_tensors()) names += (names.empty() ? "" : ",") + std::string(state_name);
        meta["optimizer.state"] = names;
        meta["optimizer.step"] = std::to_string(opt->step_count());
        if constexpr (CheckpointOptimizerOptions<Opt>) {
            const AdamOptions& oo = opt->options();
            meta["optimizer.beta1"] = number_setting(oo.beta1);
            meta["optimizer.beta2"] = number_setting(oo.beta2);
            meta["optimizer.eps"] = number_setting(oo.eps);
            meta["optimizer.weight_decay"] = number_setting(oo.weight_decay);
        }
    }
    for (const auto& [k, v] : extra) {
        if (ckpt_reserved_key(k))
            throw invalid_argument("save_checkpoint: extra metadata key '" + k + "' is one bijou writes itself");
        meta[k] = v;
    }
    const auto slots = ckpt_slots<T, const T*>(ps, [&](const TensorInfo& t) { return ps.data(t); }, opt);

    nlohmann::ordered_json header = nlohmann::ordered_json::object();
    header["__metadata__"] = meta;
    std::uint64_t offset = 0;
    for (const auto& s : slots) {
        const std::uint64_t bytes = std::uint64_t(s.size) * sizeof(T);
        header[s.name] = {{"dtype", std::string(safetensors_dtype<T>())}, {"shape", s.shape}, {"data_offsets", {offset, offset + bytes}}};
        offset += bytes;
    }
    std::string text;
    try {
        text = header.dump();
    } catch (const nlohmann::json::exception& e) {
        throw invalid_argument(std::string("save_checkpoint: metadata cannot be written as JSON (not UTF-8?): ") + e.what());
    }
    text.append((8 - text.size() % 8) % 8, ' ');  // the data section starts 8-byte aligned
    std::string head(8, '\0');
    for (int b = 0; b < 8; ++b) head[std::size_t(b)] = char((std::uint64_t(text.size()) >> (8 * b)) & 0xFF);
    head += text;

    ckpt_write_atomically(path, head, [&](auto&& sink) {
        constexpr std::size_t chunk = (std::size_t(1) << 20) / sizeof(T);
        std::vector<unsigned char> buf(chunk * sizeof(T));
        for (const auto& s : slots)
            for (std::size_t i = 0; i < s.size; i += chunk) {
                const std::size_t m = std::min(chunk, s.size - i);
                ckpt_encode(s.data + i, m, buf.data());
                sink(buf.data(), m * sizeof(T));
            }
    });
}

/// The optimizer entries of a file's __metadata__, checked.
struct CkptOptimizerMeta {
    bool present = false;            // "optimizer.state" is there
    std::string state;               // its text, e.g. "exp_avg,exp_avg_sq"
    std::vector<std::string> names;  // its state names
    long step = 0;
    std::optional<AdamOptions> options;
};

/// Checks the optimizer entries wherever the file has them, with or without an optimizer to load
/// into: state names (distinct, [A-Za-z0-9_]+), step (an integer >= 0, required with a state) and
/// options (all four or none, numbers in the optimizers' ranges).
inline CkptOptimizerMeta ckpt_optimizer_meta(const std::filesystem::path& file, const CheckpointMetadata& meta) {
    auto find = [&](const std::string& key) -> const std::string* {
        const auto it = meta.find(key);
        return it == meta.end() ? nullptr : &it->second;
    };
    auto missing = [&](const std::string& key) { ckpt_fail(file, "config field '" + key + "' is missing from __metadata__"); };
    CkptOptimizerMeta o;
    if (const std::string* s = find("optimizer.state")) {
        o.present = true;
        o.state = *s;
        for (std::size_t b = 0;;) {
            const std::size_t e = s->find(',', b);
            const std::string name = s->substr(b, e == std::string::npos ? std::string::npos : e - b);
            const bool word = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
                return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
            });
            if (!word || std::find(o.names.begin(), o.names.end(), name) != o.names.end())
                ckpt_fail(file, "config field 'optimizer.state': '" + *s +
                                    "' is not a comma-separated list of distinct state names ([A-Za-z0-9_]+)");
            o.names.push_back(name);
            if (e == std::string::npos) break;
            b = e + 1;
        }
        if (!find("optimizer.step")) missing("optimizer.step");
    }
    if (const std::string* st = find("optimizer.step")) {
        const auto r = std::from_chars(st->data(), st->data() + st->size(), o.step);
        if (r.ec != std::errc() || r.ptr != st->data() + st->size() || o.step < 0)
            ckpt_fail(file, "config field 'optimizer.step': '" + *st + "' is not a non-negative integer");
    }
    AdamOptions a;
    const std::array<std::pair<std::string, double*>, 4> fields{{{"optimizer.beta1", &a.beta1},
                                                                 {"optimizer.beta2", &a.beta2},
                                                                 {"optimizer.eps", &a.eps},
                                                                 {"optimizer.weight_decay", &a.weight_decay}}};
    int found = 0;
    for (const auto& [key, dst] : fields)
        if (const std::string* v = find(key)) {
            const auto r = std::from_chars(v->data(), v->data() + v->size(), *dst);
            if (r.ec != std::errc() || r.ptr != v->data() + v->size())
                ckpt_fail(file, "config field '" + key + "': '" + *v + "' is not a number");
            ++found;
        }
    if (found > 0) {
        for (const auto& [key, dst] : fields)
            if (!find(key)) missing(key);
        if (const auto p = adam_options_problem(a))
            ckpt_fail(file, "config field 'optimizer." + std::string(p->field) + "': " + number_setting(p->value) +
                                " must be " + p->range);
        o.options = a;
    }
    return o;
}

template <class Model, class Opt>
CheckpointMetadata ckpt_load(const std::filesystem::path& path, Model& model, Opt* opt) {
    using T = typename Model::scalar;
    auto& ps = model.params();
    CkptFd fd;
    CkptHeader h = ckpt_read_header(path, fd);

    // 1. config (before tensors: a different width is clearer as "hidden" than as a shape)
    if (!h.has_metadata) ckpt_fail(path, "no __metadata__: not a bijou checkpoint");
    ckpt_check_config(path, h.metadata, model);
    // The optimizer's entries are checked whether or not an optimizer is given: a file is checked whole.
    const CkptOptimizerMeta om = ckpt_optimizer_meta(path, h.metadata);
    if constexpr (!std::is_same_v<Opt, void>) {
        if (opt->size() != ps.count())
            throw invalid_argument("load_checkpoint: the optimizer holds state for " + std::to_string(opt->size()) +
                                   " parameters, the model has " + std::to_string(ps.count()));
        std::string names;
        for (auto [state_name, span] : opt->state_tensors()) names += (names.empty() ? "" : ",") + std::string(state_name);
        if (!om.present) ckpt_fail(path, "no optimizer state (__metadata__ 'optimizer.state' is missing)");
        if (om.state != names)
            ckpt_fail(path, "config field 'optimizer.state': the file has '" + om.state + "' but the optimizer has '" +
                                names + "'");
        if constexpr (CheckpointOptimizerOptions<Opt>)
            if (!om.options) ckpt_fail(path, "config field 'optimizer.beta1' is missing from __metadata__");
    }

    // 2. entries: structure, names, dtypes, shapes, layout
    const std::vector<CkptEntry> entries = ckpt_entries(path, h.json);
    std::map<std::string_view, const CkptEntry*> by_name;
    for (const auto& e : entries) by_name[e.name] = &e;

    // Staging copies of everything the file holds, optimizer state included (without an optimizer it
    // is checked, then dropped).
    std::vector<T> values(ps.values().size()), buffers(ps.buffers().size());
    std::vector<std::vector<T>> states(om.names.size(), std::vector<T>(ps.count()));
    std::vector<CkptSlot<T*>> slots;
    for (const auto& t : ps.tensors())
        slots.push_back({t.name, t.shape, t.size, (t.trainable ? values.data() : buffers.data()) + t.offset});
    for (std::size_t k = 0; k < om.names.size(); ++k)
        for (const auto& t : ps.tensors())
            if (t.trainable)
                slots.push_back({"optimizer." + om.names[k] + "." + t.name, t.shape, t.size, states[k].data() + t.offset});

    std::map<std::string_view, const CkptSlot<T*>*> expected;
    for (const auto& s : slots) expected[s.name] = &s;
    for (const auto& s : slots) {
        const auto it = by_name.find(s.name);
        if (it == by_name.end()) ckpt_fail(path, "missing tensor '" + s.name + "'");
        const CkptEntry& e = *it->second;
        if (e.dtype != safetensors_dtype<T>())
            ckpt_fail(path, "tensor '" + s.name + "': dtype " + e.dtype + " but the model's scalar is " +
                                std::string(ckpt_scalar_name<T>()) + " (" + std::string(safetensors_dtype<T>()) + ")");
        if (!std::equal(e.shape.begin(), e.shape.end(), s.shape.begin(), s.shape.end(),
                        [](std::uint64_t a, std::size_t b) { return a == std::uint64_t(b); }))
            ckpt_fail(path, "tensor '" + s.name + "': shape " + ckpt_shape_str(e.shape) + " but the model has " +
                                ckpt_shape_str(s.shape));
    }
    for (const auto& e : entries)
        if (!expected.count(e.name)) ckpt_fail(path, "unexpected tensor '" + e.name + "' (the model has no tensor of that name)");
    ckpt_check_layout(path, entries, h.data_size);

    // 3. values: read, decode, check finite
    std::vector<unsigned char> data(std::size_t(h.data_size));
    ckpt_read_at(path, fd.get(), data.data(), data.size(), h.data_begin);
    for (const auto& s : slots) {
        const CkptEntry& e = *by_name[s.name];
        ckpt_decode(data.data() + e.begin, s.size, s.data);
        for (std::size_t i = 0; i < s.size; ++i)
            if (!std::isfinite(s.data[i]))
                ckpt_fail(path, "tensor '" + s.name + "': value " + number_setting(double(s.data[i])) + " at index " +
                                    std::to_string(i) + " is not finite");
    }

    // 4. the bijectors' invariants of their tensors (ParamSet::add_check: permutations, signs), on the staged values
    try {
        ps.check_staged(values.data(), buffers.data());
    } catch (const error& e) {
        std::string_view why = e.what();
        if (why.starts_with("bijou: ")) why.remove_prefix(7);
        ckpt_fail(path, std::string(why));
    }

    // 5. commit (nothing below can fail: the options were checked by the same rules set_options applies)
    std::copy(values.begin(), values.end(), ps.values().begin());
    std::copy(buffers.begin(), buffers.end(), ps.buffers().begin());
    if constexpr (!std::is_same_v<Opt, void>) {
        std::size_t k = 0;
        for (auto [state_name, span] : opt->state_tensors()) {
            std::copy(states[k].begin(), states[k].end(), span.begin());
            ++k;
        }
        opt->set_step_count(om.step);
        if constexpr (CheckpointOptimizerOptions<Opt>) opt->set_options(*om.options);
    }
    return h.metadata;
}

}  // namespace detail

namespace detail {

// Device models and optimizers: checkpoints read and write host copies (Flow::to_host/to_device;
// an optimizer's host twin), so a file saved from a Cuda model is byte-identical to one saved from
// the same model on the Cpu, and either loads into either.
template <class Model>
void ckpt_model_to_host(const Model& model) {
    if constexpr (requires { model.to_host(); }) model.to_host();
}
template <class Model>
void ckpt_model_to_device(Model& model) {
    if constexpr (requires { model.to_device(); }) model.to_device();
}
template <class Opt>
constexpr bool ckpt_device_optimizer = requires { typename Opt::backend; } && ExecutorBackend<typename Opt::backend>;

/// The optimizer's host twin (o.host_twin(), or Opt::host_type of its size and options) holding a
/// copy of its state, step count and options.
template <class Opt>
auto ckpt_host_twin(const Opt& o) {
    auto h = [&] {
        if constexpr (requires { o.host_twin(); }) return o.host_twin();
        else return typename Opt::host_type(o.size(), o.options());
    }();
    auto src = o.state_tensors();
    auto dst = h.state_tensors();
    for (std::size_t k = 0; k < src.size(); ++k)
        download(typename Opt::backend{}, dst[k].second.data(), src[k].second.data(), src[k].second.size());
    h.set_step_count(o.step_count());
    if constexpr (CheckpointOptimizerOptions<Opt>) h.set_options(o.options());
    return h;
}
template <class Opt, class Host>
void ckpt_from_host_twin(Opt& o, const Host& h) {
    auto src = h.state_tensors();
    auto dst = o.state_tensors();
    for (std::size_t k = 0; k < src.size(); ++k)
        upload(typename Opt::backend{}, dst[k].second.data(), src[k].second.data(), src[k].second.size());
    o.set_step_count(h.step_count());
    if constexpr (CheckpointOptimizerOptions<Opt>) o.set_options(h.options());
}

}  // namespace detail

/// Saves the model (parameters and buffers) atomically; `extra` goes into __metadata__.
template <CheckpointModel Model>
void save_checkpoint(const std::filesystem::path& path, const Model& model, const CheckpointMetadata& extra = {}) {
    detail::ckpt_model_to_host(model);
    detail::ckpt_save<Model, void>(path, model, nullptr, extra);
}

/// Saves the model and the optimizer's state and step count atomically; `extra` goes into __metadata__.
template <CheckpointModel Model, CheckpointOptimizer<typename Model::scalar> Opt>
void save_checkpoint(const std::filesystem::path& path, const Model& model, const Opt& optimizer,
                     const CheckpointMetadata& extra = {}) {
    detail::ckpt_model_to_host(model);
    if constexpr (detail::ckpt_device_optimizer<Opt>) {
        const auto host = detail::ckpt_host_twin(optimizer);
        detail::ckpt_save(path, model, &host, extra);
    } else {
        detail::ckpt_save(path, model, &optimizer, extra);
    }
}

/// Loads parameters and buffers into a model of the same type and config; returns __metadata__.
/// Throws bijou::io_error (model untouched) on any problem with the file.
template <CheckpointModel Model>
CheckpointMetadata load_checkpoint(const std::filesystem::path& path, Model& model) {
    detail::ckpt_model_to_host(model);  // a failed load leaves the host copy as the model is
    auto meta = detail::ckpt_load<Model, void>(path, model, nullptr);
    detail::ckpt_model_to_device(model);
    return meta;
}

/// Loads the model and the optimizer's state and step count; returns __metadata__.
/// Throws bijou::io_error (model and optimizer untouched) on any problem with the file.
template <CheckpointModel Model, CheckpointOptimizer<typename Model::scalar> Opt>
CheckpointMetadata load_checkpoint(const std::filesystem::path& path, Model& model, Opt& optimizer) {
    detail::ckpt_model_to_host(model);
    if constexpr (detail::ckpt_device_optimizer<Opt>) {
        auto host = detail::ckpt_host_twin(optimizer);
        auto meta = detail::ckpt_load(path, model, &host);
        detail::ckpt_model_to_device(model);
        detail::ckpt_from_host_twin(optimizer, host);
        return meta;
    } else {
        auto meta = detail::ckpt_load(path, model, &optimizer);
        detail::ckpt_model_to_device(model);
        return meta;
    }
}

/// The __metadata__ of a checkpoint, after the header checks (size, header length, JSON); throws
/// bijou::io_error when the file has none.
inline CheckpointMetadata read_checkpoint_metadata(const std::filesystem::path& path) {
    detail::CkptFd fd;
    detail::CkptHeader h = detail::ckpt_read_header(path, fd);
    if (!h.has_metadata) detail::ckpt_fail(path, "no __metadata__: not a bijou checkpoint");
    return h.metadata;
}

}  // namespace bijou
