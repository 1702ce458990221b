// safetensors checkpoints (io/checkpoint.hpp): round trip of a trained Glow with its Adam state, the
// file layout, bit-identical resume, a corpus of corrupt files (one per validation rule), atomic saves
// (failing writes, a process killed mid-save), and Rng::state().
#include <doctest/doctest.h>

#include <bijou/bijou.hpp>
#include <bijou/io/checkpoint.hpp>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace unit_checkpoint {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;
namespace fs = std::filesystem;

namespace {

using Model = Glow<Shape<1, 8, 8>, 2>;
constexpr int n_bits = 5;

Options small_options(std::uint64_t seed = 3, int hidden = 8) {
    Options o;
    o.steps_per_level = 2;
    o.hidden = hidden;
    o.seed = seed;
    return o;
}

/// A fresh directory under the system temp dir, removed with everything in it.
struct TempDir {
    fs::path dir;
    TempDir() {
        static int counter = 0;
        dir = fs::temp_directory_path() /
              ("bijou_ckpt_test_" + std::to_string(::getpid()) + "_" + std::to_string(counter++));
        fs::remove_all(dir);
        fs::create_directories(dir);
    }
    ~TempDir() {
        std::error_code ec;
        fs::remove_all(dir, ec);
    }
    fs::path operator/(const std::string& name) const { return dir / name; }
    /// Names of leftover temporary files of saves.
    std::vector<std::string> temp_files() const {
        std::vector<std::string> r;
        for (const auto& e : fs::directory_iterator(dir))
            if (e.path().filename().string().find(".tmp.") != std::string::npos) r.push_back(e.path().filename().string());
        return r;
    }
};

std::string read_bytes(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::ostringstream s;
    s << f.rdbuf();
    return s.str();
}

void write_bytes(const fs::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
}

/// n integer images with values in [0, 2^n_bits).
Model::data_tensor integer_images(int n, std::uint64_t seed) {
    Rng rng(seed);
    auto x = make_batch<float, Shape<1, 8, 8>>(n);
    for (auto& v : x) v = float(rng.below(1u << n_bits));
    return x;
}

/// A batch of b images drawn (with replacement) by rng, as a data loader with a seeded order would.
Model::data_tensor pick(const Model::data_tensor& data, Rng& rng, int b) {
    const int n = int(data.shape()[0]);
    auto x = make_batch<float, Shape<1, 8, 8>>(b);
    for (int i = 0; i < b; ++i) {
        const std::size_t k = std::size_t(rng.below(std::uint64_t(n)));
        std::copy_n(data.data() + k * 64, 64, x.data() + std::size_t(i) * 64);
    }
    return x;
}

/// Steps [from, to) of a training run whose data order and dequantisation noise come from rng.
void train(Model& m, Adam<float>& opt, const Model::data_tensor& data, Rng& rng, long from, long to) {
    const TrainConfig cfg{.lr = 2e-3, .warmup = 2, .clip = 50};
    for (long step = from; step < to; ++step) {
        const auto x = m.dequantize(pick(data, rng, 8), n_bits, rng);
        const auto r = train_step(m, opt, x, cfg, step, [](const std::string&) {});
        REQUIRE_FALSE(r.skipped);
    }
}

void initialize(Model& m, const Model::data_tensor& data, Rng& rng) {
    m.initialize(m.dequantize(pick(data, rng, 16), n_bits, rng));
}

/// Bitwise equality of two spans; prints the first difference.
template <class A, class B>
bool same_bits(const A& a, const B& b, const char* what) {
    if (a.size() != b.size()) {
        MESSAGE(what << ": sizes " << a.size() << " vs " << b.size());
        return false;
    }
    for (std::size_t i = 0; i < a.size(); ++i)
        if (std::memcmp(&a[i], &b[i], sizeof(a[i])) != 0) {
            MESSAGE(what << ": first difference at " << i << ": " << a[i] << " vs " << b[i]);
            return false;
        }
    return true;
}

bool same_model(const Model& a, const Model& b) {
    return same_bits(a.parameters(), b.parameters(), "parameters") &&
           same_bits(a.params().buffers(), b.params().buffers(), "buffers");
}

bool contains(const std::string& s, const std::string& part) { return s.find(part) != std::string::npos; }

/// The message of the bijou::io_error f throws ("no exception" or "wrong type: …" otherwise).
template <class F>
std::string io_error_of(F&& f) {
    try {
        f();
    } catch (const io_error& e) {
        return e.what();
    } catch (const std::exception& e) {
        return std::string("wrong exception type: ") + e.what();
    }
    return "no exception";
}

/// A checkpoint split into its JSON header and data section, to forge corrupt variants.
struct Parts {
    nlohmann::ordered_json header;
    std::string data;

    explicit Parts(const std::string& file) {
        std::uint64_t n = 0;
        for (int b = 0; b < 8; ++b) n |= std::uint64_t(static_cast<unsigned char>(file[std::size_t(b)])) << (8 * b);
        header = nlohmann::ordered_json::parse(file.substr(8, std::size_t(n)));
        data = file.substr(8 + std::size_t(n));
    }
    static std::string with_header_text(const std::string& text, const std::string& data) {
        std::string r(8, '\0');
        for (int b = 0; b < 8; ++b) r[std::size_t(b)] = char((std::uint64_t(text.size()) >> (8 * b)) & 0xFF);
        return r + text + data;
    }
    std::string bytes() const { return with_header_text(header.dump(), data); }
    std::uint64_t begin(const std::string& name) const { return header.at(name).at("data_offsets")[0].get<std::uint64_t>(); }
};

}  // namespace

TEST_CASE("Rng::state: set_state resumes the stream exactly, Box-Muller spare included") {
    Rng a(42);
    for (int i = 0; i < 7; ++i) (void)a.normal();  // odd count: a spare value is pending
    Rng b(0);
    b.set_state(a.state());
    for (int i = 0; i < 20; ++i) {
        CHECK(a.normal() == b.normal());
        CHECK(a.next_u64() == b.next_u64());
    }
    CHECK_THROWS_AS(b.set_state("1 2 3"), invalid_argument);
    CHECK_THROWS_AS(b.set_state(a.state() + " 7"), invalid_argument);
    const std::string before = b.state();
    CHECK_THROWS_AS(b.set_state(""), invalid_argument);
    CHECK(b.state() == before);
}

TEST_CASE("checkpoint: a trained Glow and its Adam state round-trip bit for bit") {
    TempDir tmp;
    const fs::path path = tmp / "glow.safetensors";
    const auto data = integer_images(32, 1);
    Rng rng(7);
    Model m(small_options());
    Adam<float> opt(m.parameter_count());
    initialize(m, data, rng);
    train(m, opt, data, rng, 0, 3);
    save_checkpoint(path, m, opt, {{"step", "3"}, {"rng", rng.state()}});
    CHECK(tmp.temp_files().empty());

    Model m2(small_options(99));  // another seed: every tensor differs until loaded
    Adam<float> opt2(m2.parameter_count());
    REQUIRE_FALSE(std::equal(m.parameters().begin(), m.parameters().end(), m2.parameters().begin()));
    const CheckpointMetadata meta = load_checkpoint(path, m2, opt2);

    CHECK(same_model(m, m2));
    CHECK(same_bits(opt.m(), opt2.m(), "exp_avg"));
    CHECK(same_bits(opt.v(), opt2.v(), "exp_avg_sq"));
    CHECK(opt2.step_count() == 3);
    CHECK(meta.at("step") == "3");
    CHECK(meta.at("rng") == rng.state());
    CHECK(meta.at("model") == "Glow");
    CHECK(meta.at("shape") == "1,8,8");
    CHECK(meta.at("scalar") == "float32");
    CHECK(meta.at("levels") == "2");
    CHECK(meta.at("steps_per_level") == "2");
    CHECK(meta.at("hidden") == "8");
    CHECK(meta.at("setting.levels.0.steps.0.coupling.scale") == "sigmoid");  // each coupling records its own
    CHECK(meta.at("setting.levels.1.steps.1.coupling.hidden") == "8");
    CHECK(meta.at("setting.levels.1.steps.1.coupling.kind") == "affine");
    CHECK(meta.count("scale") == 0);  // no central list of the couplings' options
    CHECK(meta.at("seed") == "3");  // recorded, not checked: m2 was built with seed 99
    CHECK(meta.at("optimizer.state") == "exp_avg,exp_avg_sq");
    CHECK(meta.at("optimizer.beta2") == "0.999");
    CHECK(read_checkpoint_metadata(path) == meta);

    // Buffers came back: ActNorm is initialised (callers need not, and must not, initialise again),
    // and the LU permutation and signs are the saved ones.
    int initialized = 0, perms = 0;
    for (const auto& t : m2.params().tensors()) {
        if (t.name.ends_with(".initialized")) {
            CHECK(m2.params().data(t)[0] == 1.0f);
            ++initialized;
        }
        if (t.name.ends_with(".perm")) ++perms;
    }
    CHECK(initialized == 4);
    CHECK(perms == 4);

    Rng eval(5);
    const auto x = m.dequantize(pick(data, eval, 6), n_bits, eval);
    CHECK(same_bits(m.log_prob(x), m2.log_prob(x), "log_prob"));

    // A checkpoint with an optimizer loads into a model alone (e.g. for evaluation).
    Model m3(small_options(5));
    load_checkpoint(path, m3);
    CHECK(same_model(m, m3));
}

TEST_CASE("checkpoint: the file is safetensors with state_dict names") {
    TempDir tmp;
    const fs::path path = tmp / "glow.safetensors";
    Model m(small_options());
    Adam<float> opt(m.parameter_count());
    save_checkpoint(path, m, opt);
    const std::string bytes = read_bytes(path);
    const Parts parts(bytes);
    const std::uint64_t n = bytes.size() - parts.data.size() - 8;
    CHECK((8 + n) % 8 == 0);  // data section aligned, header padded with spaces
    const auto& h = parts.header;
    REQUIRE(h.contains("levels.0.steps.1.actnorm.loc"));
    CHECK(h["levels.0.steps.1.actnorm.loc"]["dtype"] == "F32");
    CHECK(h["levels.0.steps.1.actnorm.loc"]["shape"].dump() == "[4]");
    CHECK(h.contains("levels.0.steps.1.actnorm.initialized"));
    CHECK(h.contains("optimizer.exp_avg.levels.0.steps.1.actnorm.loc"));
    CHECK(h.contains("optimizer.exp_avg_sq.levels.1.prior.mean"));
    CHECK_FALSE(h.contains("optimizer.exp_avg.levels.0.steps.1.actnorm.initialized"));  // buffers have no state
    CHECK(h["__metadata__"]["format"] == "bijou");
    CHECK(h["__metadata__"]["format_version"] == "2");
    // every tensor of the model, then the optimizer's: 1 + tensors + 2 × trainable entries
    std::size_t trainable = 0;
    for (const auto& t : m.params().tensors()) trainable += t.trainable;
    CHECK(h.size() == 1 + m.params().tensors().size() + 2 * trainable);
    // the bytes are the little-endian values
    const auto* t = m.params().find("levels.0.steps.1.actnorm.log_scale");
    float v0 = 0;
    std::memcpy(&v0, parts.data.data() + parts.begin("levels.0.steps.1.actnorm.log_scale"), 4);
    CHECK(v0 == m.params().data(*t)[0]);

    CHECK_THROWS_AS(save_checkpoint(path, m, opt, {{"hidden", "9"}}), invalid_argument);
    CHECK_THROWS_AS(save_checkpoint(path, m, {{"optimizer.step", "9"}}), invalid_argument);
}

TEST_CASE("checkpoint: N steps in one run equal N/2, save, load into fresh objects, N/2 more (bit for bit)") {
    TempDir tmp;
    const fs::path path = tmp / "resume.safetensors";
    const auto data = integer_images(32, 2);
    constexpr long N = 6;

    Model a(small_options());
    Adam<float> oa(a.parameter_count());
    Rng ra(11);
    initialize(a, data, ra);
    train(a, oa, data, ra, 0, N);

    {
        Model b(small_options());
        Adam<float> ob(b.parameter_count());
        Rng rb(11);
        initialize(b, data, rb);
        train(b, ob, data, rb, 0, N / 2);
        save_checkpoint(path, b, ob, {{"step", std::to_string(N / 2)}, {"rng", rb.state()}});
    }
    Model c(small_options());
    Adam<float> oc(c.parameter_count());
    const auto meta = load_checkpoint(path, c, oc);
    Rng rc;
    rc.set_state(meta.at("rng"));
    train(c, oc, data, rc, std::stol(meta.at("step")), N);

    CHECK(same_model(a, c));
    CHECK(same_bits(oa.m(), oc.m(), "exp_avg"));
    CHECK(same_bits(oa.v(), oc.v(), "exp_avg_sq"));
    CHECK(oa.step_count() == oc.step_count());
    CHECK(ra.state() == rc.state());
}

TEST_CASE("checkpoint: every corrupt file is a bijou::io_error naming the file and the tensor or field") {
    TempDir tmp;
    const fs::path good_path = tmp / "good.safetensors";
    Model m(small_options());
    Adam<float> opt(m.parameter_count());
    {
        const auto data = integer_images(16, 3);
        Rng rng(1);
        initialize(m, data, rng);
        train(m, opt, data, rng, 0, 1);
    }
    save_checkpoint(good_path, m, opt);
    const fs::path model_only_path = tmp / "model_only.safetensors";
    save_checkpoint(model_only_path, m);
    const std::string good = read_bytes(good_path);

    const std::string A = "levels.0.steps.1.actnorm.loc", B = "levels.0.steps.1.actnorm.log_scale";
    const std::string OA = "optimizer.exp_avg_sq." + A;
    const std::string P = "levels.0.steps.1.invconv.perm", S = "levels.0.steps.1.invconv.sign";
    const Parts base(good);
    const std::uint64_t D = base.data.size();
    auto header_text = [](const std::string& text) { return Parts::with_header_text(text, ""); };
    auto edit = [&](const std::function<void(Parts&)>& f) {
        Parts p(good);
        f(p);
        return p.bytes();
    };
    auto set_value = [&](const std::string& name, std::size_t index, float v) {
        return edit([&, name, index, v](Parts& p) {
            std::memcpy(p.data.data() + p.begin(name) + 4 * index, &v, 4);
        });
    };
    std::string length_bytes(8, '\0');
    length_bytes[5] = 1;  // 2^40

    struct Case {
        const char* what;
        std::string bytes;
        std::vector<std::string> expect;  // substrings of the message besides the file name
        bool with_optimizer = true;
    };
    const std::vector<Case> cases{
        {"empty file", "", {"too short (0 bytes)"}},
        {"shorter than the length field", good.substr(0, 5), {"too short (5 bytes)"}},
        {"truncated header", good.substr(0, 40), {"header length", "truncated"}},
        {"truncated data", good.substr(0, good.size() - 10), {"tensor '", "truncated"}},
        {"header length beyond the limit", length_bytes + good.substr(8), {"header length 1099511627776 exceeds the limit"}},
        {"bad JSON", header_text("{\"__metadata__\": {\"format\": "), {"not valid JSON"}},
        {"JSON not an object", header_text("[1, 2, 3]"), {"not a JSON object"}},
        {"JSON nested too deep", header_text(std::string(100000, '[') + std::string(100000, ']')), {"nested deeper than"}},
        {"entry not an object", edit([&](Parts& p) { p.header[A] = 5; }), {"tensor '" + A + "': entry is not a JSON object"}},
        {"missing dtype", edit([&](Parts& p) { p.header[A].erase("dtype"); }), {"tensor '" + A + "': missing 'dtype'"}},
        {"dtype not a string", edit([&](Parts& p) { p.header[A]["dtype"] = 32; }), {"tensor '" + A + "': 'dtype' is not a string"}},
        {"unknown dtype", edit([&](Parts& p) { p.header[A]["dtype"] = "Q4"; }), {"tensor '" + A + "': unknown dtype 'Q4'"}},
        {"wrong dtype", edit([&](Parts& p) { p.header[A]["dtype"] = "F64"; }),
         {"tensor '" + A + "': dtype F64 but the model's scalar is float32 (F32)"}},
        {"missing shape", edit([&](Parts& p) { p.header[A].erase("shape"); }), {"tensor '" + A + "': missing 'shape'"}},
        {"negative extent", edit([&](Parts& p) { p.header[A]["shape"] = {-4}; }), {"tensor '" + A + "': 'shape' holds -4"}},
        {"wrong shape", edit([&](Parts& p) { p.header[A]["shape"] = {2}; }),
         {"tensor '" + A + "': shape [2] but the model has [4]"}},
        {"unexpected entry field", edit([&](Parts& p) { p.header[A]["zeros"] = true; }),
         {"tensor '" + A + "': unexpected field 'zeros'"}},
        {"missing data_offsets", edit([&](Parts& p) { p.header[A].erase("data_offsets"); }),
         {"tensor '" + A + "': missing 'data_offsets'"}},
        {"data_offsets not two integers", edit([&](Parts& p) { p.header[A]["data_offsets"] = {-1, 15}; }),
         {"tensor '" + A + "': 'data_offsets' is [-1,15]"}},
        {"data_offsets out of range", edit([&](Parts& p) { p.header[A]["data_offsets"] = {D + 64, D + 80}; }),
         {"tensor '" + A + "'", "go past the end of the data section"}},
        {"data_offsets reversed", edit([&](Parts& p) { p.header[A]["data_offsets"] = {16, 0}; }),
         {"tensor '" + A + "'", "begin is after end"}},
        {"data_offsets size mismatch",
         edit([&](Parts& p) { p.header[A]["data_offsets"] = {p.begin(A), p.begin(A) + 12}; }),
         {"tensor '" + A + "'", "span 12 bytes but shape [4] of F32 needs 16"}},
        {"overlapping data_offsets", edit([&](Parts& p) { p.header[B]["data_offsets"] = p.header[A]["data_offsets"]; }),
         {"tensor 'levels.0.steps.1.actnorm.", "overlap tensor 'levels.0.steps.1.actnorm."}},
        {"trailing bytes", edit([&](Parts& p) { p.data += std::string(8, '\0'); }), {"8 trailing bytes"}},
        {"missing tensor", edit([&](Parts& p) { p.header.erase(A); }), {"missing tensor '" + A + "'"}},
        {"extra tensor", edit([&](Parts& p) {
             p.header["levels.9.extra"] = {{"dtype", "F32"}, {"shape", {1}}, {"data_offsets", {D, D + 4}}};
             p.data += std::string(4, '\0');
         }),
         {"unexpected tensor 'levels.9.extra'"}},
        {"no __metadata__", edit([&](Parts& p) { p.header.erase("__metadata__"); }), {"no __metadata__"}},
        {"__metadata__ value not a string", edit([&](Parts& p) { p.header["__metadata__"]["hidden"] = 8; }),
         {"__metadata__ field 'hidden' is not a string"}},
        {"setting mismatch: a coupling's width",
         edit([&](Parts& p) { p.header["__metadata__"]["setting.levels.0.steps.1.coupling.hidden"] = "16"; }),
         {"setting 'levels.0.steps.1.coupling.hidden': the file has '16' but the model has '8'"}},
        {"setting missing", edit([&](Parts& p) { p.header["__metadata__"].erase("setting.levels.1.steps.0.coupling.scale"); }),
         {"setting 'levels.1.steps.0.coupling.scale' is missing from __metadata__"}},
        {"setting the model does not have",
         edit([&](Parts& p) { p.header["__metadata__"]["setting.levels.0.steps.0.coupling.alpha"] = "1"; }),
         {"setting 'levels.0.steps.0.coupling.alpha' = '1' is in the file but the model has no such setting"}},
        {"format version unknown", edit([&](Parts& p) { p.header["__metadata__"]["format_version"] = "3"; }),
         {"format_version '3' is not one this bijou reads (it reads 1 and 2)"}},
        {"format version missing", edit([&](Parts& p) { p.header["__metadata__"].erase("format_version"); }),
         {"config field 'format_version' is missing"}},
        {"config mismatch: shape", edit([&](Parts& p) { p.header["__metadata__"]["shape"] = "1,16,16"; }),
         {"config field 'shape': the file has '1,16,16' but the model has '1,8,8'"}},
        {"config mismatch: model", edit([&](Parts& p) { p.header["__metadata__"]["model"] = "MultiScaleRealNVP"; }),
         {"config field 'model': the file has 'MultiScaleRealNVP' but the model has 'Glow'"}},
        {"config field missing", edit([&](Parts& p) { p.header["__metadata__"].erase("steps_per_level"); }),
         {"config field 'steps_per_level' is missing"}},
        {"optimizer kind mismatch", edit([&](Parts& p) { p.header["__metadata__"]["optimizer.state"] = "exp_avg,exp_inf"; }),
         {"config field 'optimizer.state': the file has 'exp_avg,exp_inf'"}},
        {"optimizer step not a number", edit([&](Parts& p) { p.header["__metadata__"]["optimizer.step"] = "x1"; }),
         {"config field 'optimizer.step': 'x1'"}},
        {"NaN parameter", set_value(A, 2, std::numeric_limits<float>::quiet_NaN()),
         {"tensor '" + A + "': value nan at index 2 is not finite"}},
        {"infinite optimizer state", set_value(OA, 1, std::numeric_limits<float>::infinity()),
         {"tensor '" + OA + "': value inf at index 1 is not finite"}},
        {"no optimizer state", read_bytes(model_only_path), {"no optimizer state"}},
        {"NaN parameter (model only)", set_value(A, 3, -std::numeric_limits<float>::quiet_NaN()),
         {"tensor '" + A + "': value -nan at index 3 is not finite"}, false},
        // The optimizer's options are restored, so they are checked like the rest of the file.
        {"optimizer option out of range", edit([&](Parts& p) { p.header["__metadata__"]["optimizer.beta1"] = "1.5"; }),
         {"config field 'optimizer.beta1': 1.5 must be in [0, 1)"}},
        {"optimizer option NaN", edit([&](Parts& p) { p.header["__metadata__"]["optimizer.beta2"] = "nan"; }),
         {"config field 'optimizer.beta2': nan must be in [0, 1)"}},
        {"optimizer option not a number", edit([&](Parts& p) { p.header["__metadata__"]["optimizer.eps"] = "tiny"; }),
         {"config field 'optimizer.eps': 'tiny' is not a number"}},
        {"optimizer option missing", edit([&](Parts& p) { p.header["__metadata__"].erase("optimizer.weight_decay"); }),
         {"config field 'optimizer.weight_decay' is missing"}},
        // Buffers with invariants are checked by their bijector before anything is committed.
        {"LU permutation with a repeated entry", set_value(P, 1, 0.0f), {"'" + P + "' is not a permutation", "repeated"}},
        {"LU sign that is not +1 or -1", set_value(S, 2, 0.5f), {"'" + S + "'[2] = 0.5 (must be +1 or -1)"}},
        {"LU permutation (model only)", set_value(P, 0, 9.0f), {"'" + P + "' is not a permutation"}, false},
        // Without an optimizer the file's optimizer state is still checked whole.
        {"NaN optimizer state (model only)", set_value(OA, 1, std::numeric_limits<float>::quiet_NaN()),
         {"tensor '" + OA + "': value nan at index 1 is not finite"}, false},
        {"optimizer state dtype (model only)", edit([&](Parts& p) { p.header[OA]["dtype"] = "F64"; }),
         {"tensor '" + OA + "': dtype F64 but the model's scalar is float32"}, false},
        {"optimizer state shape (model only)", edit([&](Parts& p) { p.header[OA]["shape"] = {2, 2}; }),
         {"tensor '" + OA + "': shape [2, 2] but the model has [4]"}, false},
        {"optimizer state missing (model only)", edit([&](Parts& p) { p.header.erase(OA); }),
         {"missing tensor '" + OA + "'"}, false},
        {"optimizer state not listed (model only)",
         edit([&](Parts& p) { p.header["__metadata__"]["optimizer.state"] = "exp_avg"; }),
         {"unexpected tensor 'optimizer.exp_avg_sq."}, false},
        {"optimizer state names malformed (model only)",
         edit([&](Parts& p) { p.header["__metadata__"]["optimizer.state"] = "exp_avg,,exp_avg_sq"; }),
         {"config field 'optimizer.state': 'exp_avg,,exp_avg_sq'"}, false},
        {"optimizer step (model only)", edit([&](Parts& p) { p.header["__metadata__"]["optimizer.step"] = "-3"; }),
         {"config field 'optimizer.step': '-3' is not a non-negative integer"}, false},
        {"optimizer option (model only)", edit([&](Parts& p) { p.header["__metadata__"]["optimizer.eps"] = "-1"; }),
         {"config field 'optimizer.eps': -1 must be finite and >= 0"}, false},
    };

    // The victim: loads must fail without touching it (its optimizer has other options than the file's).
    Model victim(small_options(77));
    Adam<float> victim_opt(victim.parameter_count(), {.beta1 = 0.5, .eps = 1e-6});
    victim_opt.set_step_count(5);
    std::fill(victim_opt.v().begin(), victim_opt.v().end(), 0.25f);
    const std::vector<float> p0(victim.parameters().begin(), victim.parameters().end());
    const std::vector<float> b0(victim.params().buffers().begin(), victim.params().buffers().end());
    const std::vector<float> m0(victim_opt.m().begin(), victim_opt.m().end());
    const std::vector<float> v0(victim_opt.v().begin(), victim_opt.v().end());
    const auto check_untouched = [&] {
        return same_bits(victim.parameters(), p0, "parameters") && same_bits(victim.params().buffers(), b0, "buffers") &&
               same_bits(victim_opt.m(), m0, "exp_avg") && same_bits(victim_opt.v(), v0, "exp_avg_sq") &&
               victim_opt.step_count() == 5 && victim_opt.options().beta1 == 0.5 && victim_opt.options().eps == 1e-6;
    };

    for (std::size_t k = 0; k < cases.size(); ++k) {
        const Case& c = cases[k];
        CAPTURE(c.what);
        const fs::path path = tmp / ("corrupt_" + std::to_string(k) + ".safetensors");
        write_bytes(path, c.bytes);
        const std::string msg = io_error_of([&] {
            if (c.with_optimizer) load_checkpoint(path, victim, victim_opt);
            else load_checkpoint(path, victim);
        });
        CAPTURE(msg);
        CHECK(msg.starts_with("bijou: " + path.string() + ": "));
        for (const auto& e : c.expect) CHECK(contains(msg, e));
        CHECK(check_untouched());
    }

    // Files that are not there or not files.
    const fs::path missing = tmp / "missing.safetensors";
    std::string msg = io_error_of([&] { load_checkpoint(missing, victim); });
    CHECK(contains(msg, missing.string() + ": cannot open: No such file or directory"));
    msg = io_error_of([&] { load_checkpoint(tmp.dir, victim); });
    CHECK(contains(msg, tmp.dir.string() + ": not a regular file"));
    msg = io_error_of([&] { read_checkpoint_metadata(missing); });
    CHECK(contains(msg, "cannot open"));
    CHECK(check_untouched());

    // The good file itself loads.
    load_checkpoint(good_path, victim, victim_opt);
    CHECK(same_model(m, victim));
    CHECK(victim_opt.options().beta1 == 0.9);
}

TEST_CASE("checkpoint: a resumed optimizer continues with the file's options, not the ones it was built with") {
    TempDir tmp;
    const fs::path path = tmp / "options.safetensors";
    const auto data = integer_images(32, 4);
    const AdamOptions saved{.beta1 = 0.8, .beta2 = 0.99, .eps = 1e-6, .weight_decay = 1e-4};
    auto same_options = [](const AdamOptions& a, const AdamOptions& b) {
        return a.beta1 == b.beta1 && a.beta2 == b.beta2 && a.eps == b.eps && a.weight_decay == b.weight_decay;
    };

    Model a(small_options());
    Adam<float> oa(a.parameter_count(), saved);
    Rng ra(21);
    initialize(a, data, ra);
    train(a, oa, data, ra, 0, 2);
    save_checkpoint(path, a, oa, {{"rng", ra.state()}});
    CHECK(read_checkpoint_metadata(path).at("optimizer.eps") == "1e-06");

    Model b(small_options());
    Adam<float> ob(b.parameter_count());  // default options
    const auto meta = load_checkpoint(path, b, ob);
    CHECK(same_options(ob.options(), saved));
    Rng rb;
    rb.set_state(meta.at("rng"));
    train(a, oa, data, ra, 2, 4);
    train(b, ob, data, rb, 2, 4);
    CHECK(same_model(a, b));  // the same updates, so the same options
    CHECK(same_bits(oa.v(), ob.v(), "exp_avg_sq"));

    // Adamax likewise.
    Adamax<float> xa(a.parameter_count(), {.beta1 = 0.7, .beta2 = 0.95});
    save_checkpoint(path, a, xa);
    Adamax<float> xb(b.parameter_count());
    load_checkpoint(path, b, xb);
    CHECK(same_options(xb.options(), xa.options()));
}

TEST_CASE("checkpoint: a Permute buffer that is not a permutation fails the load and leaves the model as it was") {
    using Vec = Transform<Chain<AffineCoupling, Permute, AffineCoupling>, Shape<4>>;
    TempDir tmp;
    const fs::path good = tmp / "permute.safetensors", bad = tmp / "bad.safetensors";
    const Options o = Options{.hidden = 4}.with(PermuteOptions{.kind = PermuteKind::shuffle});
    Vec f(o);
    save_checkpoint(good, f);
    const TensorInfo* perm = nullptr;
    for (const auto& t : f.params().tensors())
        if (t.name.ends_with(".perm")) perm = &t;
    REQUIRE(perm != nullptr);
    Parts p(read_bytes(good));
    const float dup = 1.0f;
    std::memcpy(p.data.data() + p.begin(perm->name), &dup, 4);
    std::memcpy(p.data.data() + p.begin(perm->name) + 4, &dup, 4);
    write_bytes(bad, p.bytes());

    Vec g(o);
    const std::vector<float> b0(g.params().buffers().begin(), g.params().buffers().end());
    const std::string msg = io_error_of([&] { load_checkpoint(bad, g); });
    CAPTURE(msg);
    CHECK(msg.starts_with("bijou: " + bad.string() + ": Permute buffer '" + perm->name + "' is not a permutation"));
    CHECK(same_bits(g.params().buffers(), b0, "buffers"));
    load_checkpoint(good, g);
}

namespace {
/// The test's log-densities a format-version-1 file recorded ("a,b").
std::vector<double> recorded_log_prob(const CheckpointMetadata& meta) {
    const std::string& v = meta.at("test.log_prob");
    const std::size_t comma = v.find(',');
    return {std::stod(v.substr(0, comma)), std::stod(v.substr(comma + 1))};
}
const fs::path v1_dir = fs::path(BIJOU_SOURCE_DIR) / "tests" / "data" / "checkpoint_v1";
}  // namespace

TEST_CASE("checkpoint: format-version-1 files still load, with version 1's config checks") {
    REQUIRE(fs::exists(v1_dir / "flow_vector.safetensors"));
    // tests/data/checkpoint_v1/README.md: the models, options and inputs they were written with
    {
        using F = Flow<Shape<4>, Stack<Chain<ActNorm, Permute, AffineCoupling>>>;
        Options o{.steps_per_level = 2, .hidden = 8, .hidden_layers = 1, .seed = 3};
        o = o.with(CouplingOptions{.net = CouplingNet::shared, .scale = CouplingScale::sigmoid, .mask = MaskKind::half})
                .with(PermuteOptions{.kind = PermuteKind::shuffle});
        F f(o);
        const CheckpointMetadata meta = load_checkpoint(v1_dir / "flow_vector.safetensors", f);
        CHECK(meta.at("format_version") == "1");
        const auto p = f.parameters();
        for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i] == float(0.1 * std::sin(double(i) + 1.0)));
        xt::xtensor<float, 2> x = xt::zeros<float>({2, 4});
        for (std::size_t i = 0; i < 8; ++i) x.data()[i] = float(0.3 * std::cos(double(i)));
        const auto lp = f.log_prob(x);
        const auto want = recorded_log_prob(meta);
        CHECK(lp(0) == doctest::Approx(want[0]).epsilon(1e-5));
        CHECK(lp(1) == doctest::Approx(want[1]).epsilon(1e-5));

        // version 1's central fields are checked against the model's options, as version 1 did
        F tanh(o.with(CouplingOptions{.net = CouplingNet::shared, .scale = CouplingScale::tanh, .mask = MaskKind::half}));
        CHECK(contains(io_error_of([&] { load_checkpoint(v1_dir / "flow_vector.safetensors", tanh); }),
                       "config field 'scale': the file has 'sigmoid' but the model has 'tanh'"));
        F reversed(o.with(PermuteOptions{.kind = PermuteKind::reverse}));
        CHECK(contains(io_error_of([&] { load_checkpoint(v1_dir / "flow_vector.safetensors", reversed); }),
                       "config field 'permute': the file has 'shuffle' but the model has 'reverse'"));
    }
    {
        using G = Glow<Shape<1, 4, 4>, 1>;
        G g(Options{.steps_per_level = 1, .hidden = 4, .seed = 9});
        const CheckpointMetadata meta = load_checkpoint(v1_dir / "glow_tiny.safetensors", g);
        const auto p = g.parameters();
        for (std::size_t i = 0; i < p.size(); ++i) CHECK(p[i] == float(0.05 * std::sin(double(i) + 1.0)));
        xt::xtensor<float, 4> x = xt::zeros<float>({2, 1, 4, 4});
        for (std::size_t i = 0; i < 32; ++i) x.data()[i] = float(0.4 * std::sin(0.7 * double(i)));
        const auto lp = g.log_prob(x);
        const auto want = recorded_log_prob(meta);
        CHECK(lp(0) == doctest::Approx(want[0]).epsilon(1e-5));
        CHECK(lp(1) == doctest::Approx(want[1]).epsilon(1e-5));
        G wide(Options{.steps_per_level = 1, .hidden = 8});
        CHECK(contains(io_error_of([&] { load_checkpoint(v1_dir / "glow_tiny.safetensors", wide); }),
                       "config field 'hidden': the file has '4' but the model has '8'"));
    }
}

namespace {
/// A bijector defined outside the library with a setting of its own: z = x + shift (log-det 0).
struct ShiftOptions {
    double shift = 0.0;
};
template <class S, class T, class B>
struct ShiftBijector {
    using in_shape = S;
    using out_shape = S;
    using scalar = T;
    using backend = B;
    explicit ShiftBijector(BuildContext& ctx) : shift(T(ctx.options().get<ShiftOptions>().shift)) {}
    void declare(ParamSet<T>& ps, const std::string& prefix) {
        ps.add_setting(join_name(prefix, "shift"), std::to_string(double(shift)));
    }
    void reset_parameters(Rng&) {}
    std::size_t workspace_size(int) const { return 0; }
    void forward(const T* x, T* z, double*, int n, T*) const {
        for (std::size_t k = 0; k < std::size_t(n) * S::size; ++k) z[k] = x[k] + shift;
    }
    void inverse(const T* z, T* x, double*, int n, T*) const {
        for (std::size_t k = 0; k < std::size_t(n) * S::size; ++k) x[k] = z[k] - shift;
    }
    void backward(const T*, const T*, const T* dz, const T*, T* dx, int n, T*) {
        std::copy(dz, dz + std::size_t(n) * S::size, dx);
    }
    T shift;
};
struct Shift {
    using options = ShiftOptions;
    static constexpr std::string_view name = "shift";
    template <class S, class T, class B>
    using bind = ShiftBijector<S, T, B>;
};
}  // namespace

TEST_CASE("checkpoint: a user bijector's setting is written and checked like the library's") {
    TempDir tmp;
    const fs::path path = tmp / "shift.safetensors";
    using F = Flow<Shape<2>, Chain<Shift, AffineCoupling>, StandardNormal, double, Reference>;
    const Options base{.hidden = 4};
    F a(base.with(ShiftOptions{.shift = 0.5}));
    save_checkpoint(path, a);
    CHECK(read_checkpoint_metadata(path).at("setting.shift.shift") == "0.500000");
    CHECK(read_checkpoint_metadata(path).at("setting.coupling.scale") == "tanh");

    F same(base.with(ShiftOptions{.shift = 0.5}));
    load_checkpoint(path, same);
    F other(base.with(ShiftOptions{.shift = 0.25}));
    CHECK(contains(io_error_of([&] { load_checkpoint(path, other); }),
                   "setting 'shift.shift': the file has '0.500000' but the model has '0.250000'"));
    F sigmoid(base.with(ShiftOptions{.shift = 0.5}).with(CouplingOptions{.scale = CouplingScale::sigmoid}));
    CHECK(contains(io_error_of([&] { load_checkpoint(path, sigmoid); }),
                   "setting 'coupling.scale': the file has 'tanh' but the model has 'sigmoid'"));
}

TEST_CASE("checkpoint: a failed save leaves the old file intact and no temporary file") {
    TempDir tmp;
    const fs::path path = tmp / "ckpt.safetensors";
    Model old_model(small_options(1)), new_model(small_options(2));
    Adam<float> opt(new_model.parameter_count());
    save_checkpoint(path, old_model);
    const std::string old_bytes = read_bytes(path);

    SUBCASE("directory does not exist") {
        const fs::path bad = tmp / "no" / "such" / "dir" / "ckpt.safetensors";
        const std::string msg = io_error_of([&] { save_checkpoint(bad, new_model); });
        CHECK(msg.starts_with("bijou: " + bad.string() + ": cannot create "));
        CHECK_FALSE(fs::exists(tmp / "no"));
    }
    SUBCASE("the target is a directory: rename fails") {
        const fs::path dir = tmp / "occupied";
        fs::create_directories(dir / "x");
        const std::string msg = io_error_of([&] { save_checkpoint(dir, new_model); });
        CHECK(msg.starts_with("bijou: " + dir.string() + ": cannot rename "));
        CHECK(fs::is_directory(dir / "x"));
    }
    SUBCASE("a write fails half-way (file size limit in a child process)") {
        const pid_t pid = ::fork();
        REQUIRE(pid >= 0);
        if (pid == 0) {
            std::signal(SIGXFSZ, SIG_IGN);  // write() then fails with EFBIG instead of killing us
            rlimit lim{};
            ::getrlimit(RLIMIT_FSIZE, &lim);
            lim.rlim_cur = 4096;
            ::setrlimit(RLIMIT_FSIZE, &lim);
            try {
                save_checkpoint(path, new_model, opt);
            } catch (const io_error& e) {
                const std::string msg = e.what();
                ::_exit(contains(msg, path.string() + ": cannot write ") && contains(msg, "File too large") ? 0 : 2);
            } catch (...) {
                ::_exit(3);
            }
            ::_exit(1);  // no exception
        }
        int status = 0;
        REQUIRE(::waitpid(pid, &status, 0) == pid);
        REQUIRE(WIFEXITED(status));
        CHECK(WEXITSTATUS(status) == 0);
    }
    CHECK(tmp.temp_files().empty());
    CHECK(read_bytes(path) == old_bytes);
    Model loaded(small_options(9));
    load_checkpoint(path, loaded);
    CHECK(same_model(old_model, loaded));
}

TEST_CASE("checkpoint: a process killed (SIGKILL) while saving leaves the previous file loadable") {
    TempDir tmp;
    const fs::path path = tmp / "ckpt.safetensors";
    // ~10 MB of parameters, so the save is caught mid-write.
    Model old_model(small_options(1, 768)), new_model(small_options(2, 768));
    save_checkpoint(path, old_model);
    const std::string prefix = path.filename().string() + ".tmp.";

    int ready[2];
    REQUIRE(::pipe(ready) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(ready[0]);
        const char c = 1;
        if (::write(ready[1], &c, 1) != 1) ::_exit(4);
        try {
            save_checkpoint(path, new_model);
        } catch (...) {
            ::_exit(3);
        }
        ::_exit(0);
    }
    ::close(ready[1]);
    char c = 0;
    REQUIRE(::read(ready[0], &c, 1) == 1);
    ::close(ready[0]);
    // Kill the child as soon as its temporary file holds data (or let it be if it finished first).
    int status = 0;
    bool exited = false;
    for (;;) {
        bool writing = false;
        std::error_code ec;
        for (const auto& e : fs::directory_iterator(tmp.dir, ec))
            if (e.path().filename().string().starts_with(prefix) && fs::file_size(e.path(), ec) > 0) writing = true;
        if (writing) break;
        if (::waitpid(pid, &status, WNOHANG) == pid) {
            exited = true;
            break;
        }
    }
    if (!exited) {
        ::kill(pid, SIGKILL);
        REQUIRE(::waitpid(pid, &status, 0) == pid);
    }
    const bool killed_mid_save = WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL && !tmp.temp_files().empty();
    INFO(std::string(killed_mid_save ? "the child was killed mid-save" : "the child finished (or was killed after its rename)"));

    // Whatever the timing, path holds a complete checkpoint: the old one while the temporary file
    // still exists (the rename never happened), the new one otherwise.
    Model loaded(small_options(5, 768));
    load_checkpoint(path, loaded);
    if (killed_mid_save) CHECK(same_model(old_model, loaded));
    else CHECK(same_model(new_model, loaded));
    for (const auto& name : tmp.temp_files()) fs::remove(tmp / name);
}

}  // namespace unit_checkpoint
