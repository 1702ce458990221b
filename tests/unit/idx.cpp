// Tests of the IDX reader (io/idx.hpp): the MNIST files shipped in examples/data/mnist (a failure
// when they are missing) against values computed independently with Python's gzip module, small files
// written here (raw, gzip, concatenated gzip members, names that lie about the compression), and a
// corpus of corrupt files, one per failure class, each of which must raise a bijou::io_error whose
// message names the file and the problem.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <bijou/io/idx.hpp>

#include "unit/shipped_mnist.hpp"
#include "unit/temp_dir.hpp"

namespace unit_idx {  // the file's own namespace (unity build: tests/CMakeLists.txt)

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

struct TempDir : bijou_test::TempDir {
    TempDir() : bijou_test::TempDir("bijou-idx") {}
};

void put_u32(Bytes& b, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(std::uint8_t(v >> shift));
}

/// An IDX header: 0x00 0x00 dtype rank, then the dimensions (big-endian).
Bytes header(std::vector<std::uint32_t> dims, std::uint8_t dtype = 0x08) {
    Bytes b = {0x00, 0x00, dtype, std::uint8_t(dims.size())};
    for (std::uint32_t d : dims) put_u32(b, d);
    return b;
}

/// A complete unsigned-byte IDX file with values 0, 1, 2, ... (mod 256), plus `extra` bytes.
Bytes idx_file(std::vector<std::uint32_t> dims, long extra = 0) {
    Bytes b = header(dims);
    std::size_t n = 1;
    for (std::uint32_t d : dims) n *= d;
    for (std::size_t i = 0; i < n + std::size_t(extra); ++i) b.push_back(std::uint8_t(i));
    return b;
}

Bytes labels_file(const Bytes& labels) {
    Bytes b = header({std::uint32_t(labels.size())});
    b.insert(b.end(), labels.begin(), labels.end());
    return b;
}

/// One gzip member holding `data` (zlib's deflate with the gzip wrapper).
Bytes gzip(const Bytes& data) {
    z_stream z{};
    REQUIRE(deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    Bytes out(deflateBound(&z, uLong(data.size())) + 64);
    z.next_in = const_cast<Bytes::value_type*>(data.data());
    z.avail_in = uInt(data.size());
    z.next_out = out.data();
    z.avail_out = uInt(out.size());
    REQUIRE(deflate(&z, Z_FINISH) == Z_STREAM_END);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

fs::path write(const fs::path& file, const Bytes& b) {
    std::ofstream(file, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    return file;
}

Bytes cat(Bytes a, const Bytes& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

/// `f` must throw a bijou::io_error whose message starts with "bijou: ", names `file` and contains
/// every one of `parts`.
template <class F>
void check_io_error(F&& f, const fs::path& file, std::initializer_list<std::string> parts) {
    try {
        f();
        FAIL("no exception for " << file.string());
    } catch (const bijou::io_error& e) {
        const std::string msg = e.what();
        INFO("message: " << msg);
        CHECK(msg.rfind("bijou: ", 0) == 0);
        CHECK(msg.find(file.string()) != std::string::npos);
        for (const std::string& p : parts) CHECK_MESSAGE(msg.find(p) != std::string::npos, "missing: " << p);
    }
}

}  // namespace

TEST_CASE("idx: the shipped MNIST test set (t10k)") {
    const bijou::IdxDataset d = bijou::load_idx_dataset(bijou::test::shipped_mnist(), "t10k");
    REQUIRE(d.images.count == 10000);
    REQUIRE(d.images.rows == 28);
    REQUIRE(d.images.cols == 28);
    REQUIRE(d.images.pixels.size() == 7840000);
    REQUIRE(d.labels.size() == 10000);

    CHECK(Bytes(d.labels.begin(), d.labels.begin() + 10) == Bytes{7, 2, 1, 0, 4, 1, 4, 9, 5, 9});
    std::array<int, 10> counts{};
    for (std::uint8_t l : d.labels) ++counts[l];
    CHECK(counts == std::array<int, 10>{980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009});

    // Oracles computed once with Python's gzip module over the decompressed pixels.
    std::uint64_t sum = 0, fnv = 0xcbf29ce484222325u;  // FNV-1a 64
    for (std::uint8_t p : d.images.pixels) sum += p, fnv = (fnv ^ p) * 0x100000001b3u;
    CHECK(sum == 264923200u);
    CHECK(double(sum) / 7840000.0 == doctest::Approx(33.791).epsilon(1e-4));
    CHECK(fnv == 0x8614c3e55764d65fu);
    std::uint64_t first = 0;
    for (int r = 0; r < 28; ++r)
        for (int c = 0; c < 28; ++c) first += d.images.at(0, r, c);
    CHECK(first == 18454u);
}

TEST_CASE("idx: the MNIST training set, and a raw (gunzipped) copy of its labels") {
    const bijou::IdxDataset d = bijou::load_idx_dataset(bijou::test::shipped_mnist(), "train");
    REQUIRE(d.images.count == 60000);
    REQUIRE(d.labels.size() == 60000);
    CHECK(Bytes(d.labels.begin(), d.labels.begin() + 10) == Bytes{5, 0, 4, 1, 9, 2, 1, 3, 1, 4});
    std::array<int, 10> counts{};
    for (std::uint8_t l : d.labels) ++counts[l];
    CHECK(counts == std::array<int, 10>{5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949});
    std::uint64_t sum = 0;
    for (std::uint8_t p : d.images.pixels) sum += p;
    CHECK(sum == 1567298545u);
    CHECK(d.images.at(0, 14, 14) == 240);

    TempDir tmp;
    const fs::path raw = write(tmp / "train-labels-idx1-ubyte", labels_file(d.labels));
    CHECK(bijou::read_idx_labels(raw) == d.labels);
}

TEST_CASE("idx: small files, raw and gzip, detected by content and not by name") {
    TempDir tmp;
    const Bytes file = idx_file({3, 2, 5});
    const fs::path raw = write(tmp / "a.idx", file);
    const fs::path gz = write(tmp / "b.idx", gzip(file));              // gzip without .gz
    const fs::path liar = write(tmp / "c.idx.gz", file);               // raw with .gz
    const fs::path members = write(tmp / "d.gz", cat(gzip(Bytes(file.begin(), file.begin() + 20)),
                                                     gzip(Bytes(file.begin() + 20, file.end()))));
    for (const fs::path& p : {raw, gz, liar, members}) {
        CAPTURE(p.string());
        const bijou::IdxImages im = bijou::read_idx_images(p);
        CHECK(im.count == 3);
        CHECK(im.rows == 2);
        CHECK(im.cols == 5);
        REQUIRE(im.pixels.size() == 30);
        CHECK(im.pixels.front() == 0);
        CHECK(im.at(2, 1, 4) == 29);
    }
    const bijou::IdxArray a = bijou::read_idx(write(tmp / "e", gzip(idx_file({4, 3}))), 2);
    CHECK(a.dims == std::vector<std::uint32_t>{4, 3});
    CHECK(a.data.size() == 12);

    // Labels up to a caller-given maximum.
    const fs::path labels = write(tmp / "l", labels_file({0, 3, 10, 7}));
    CHECK(bijou::read_idx_labels(labels, 10) == Bytes{0, 3, 10, 7});
    CHECK_THROWS_AS(bijou::read_idx_labels(labels, -1), bijou::invalid_argument);
    CHECK_THROWS_AS(bijou::read_idx_labels(labels, 256), bijou::invalid_argument);
    CHECK_THROWS_AS(bijou::read_idx(labels, 0), bijou::invalid_argument);

    // A data set directory with one raw and one gzip file.
    write(tmp / "mini-images-idx3-ubyte", idx_file({4, 2, 2}));
    write(tmp / "mini-labels-idx1-ubyte.gz", gzip(labels_file({1, 2, 3, 4})));
    const bijou::IdxDataset d = bijou::load_idx_dataset(tmp.path, "mini", 4);
    CHECK(d.images.count == 4);
    CHECK(d.labels == Bytes{1, 2, 3, 4});
}

TEST_CASE("idx: every corrupt file raises a bijou::io_error naming the file and the problem") {
    TempDir tmp;
    auto images = [](const fs::path& p) { return [p] { (void)bijou::read_idx_images(p); }; };
    auto labels = [](const fs::path& p) { return [p] { (void)bijou::read_idx_labels(p); }; };
    const Bytes good = idx_file({10, 28, 28});

    SUBCASE("missing file, empty file, a directory") {
        const fs::path missing = tmp / "missing-idx3-ubyte";
        check_io_error(images(missing), missing, {"no such file"});
        const fs::path empty = write(tmp / "empty", {});
        check_io_error(images(empty), empty, {"the file is empty"});
        const fs::path dir = tmp / "dir";
        fs::create_directory(dir);
        check_io_error(images(dir), dir, {"is a directory"});
        const fs::path empty_gz = write(tmp / "empty.gz", gzip({}));
        check_io_error(images(empty_gz), empty_gz, {"decompresses to nothing"});
    }
    SUBCASE("bad magic") {
        const fs::path p = write(tmp / "png", {0x89, 'P', 'N', 'G', 0, 0, 0, 1});
        check_io_error(images(p), p, {"not an IDX file", "0x89504E47"});
        const fs::path short_magic = write(tmp / "short", {0x00, 0x00});
        check_io_error(images(short_magic), short_magic, {"ends inside the IDX magic number (2 of 4 bytes)"});
    }
    SUBCASE("wrong dtype") {
        Bytes f = good;
        f[2] = 0x0D;
        const fs::path p = write(tmp / "float", f);
        check_io_error(images(p), p, {"dtype 0x0D (float32) is not supported", "0x08 (unsigned byte)"});
        f[2] = 0x42;
        const fs::path q = write(tmp / "unknown", f);
        check_io_error(images(q), q, {"unknown IDX dtype 0x42"});
    }
    SUBCASE("wrong rank") {
        const fs::path p = write(tmp / "labels-as-images", labels_file({1, 2, 3}));
        check_io_error(images(p), p, {"rank 1", "rank 3 was expected for images"});
        const fs::path q = write(tmp / "images-as-labels", good);
        check_io_error(labels(q), q, {"rank 3", "rank 1 was expected for labels"});
    }
    SUBCASE("huge or zero dimensions in a forged header") {
        const fs::path count = write(tmp / "count", header({0xFFFFFFFF, 28, 28}));
        check_io_error(images(count), count, {"number of images is 4294967295", "limit of 10000000"});
        const fs::path rows = write(tmp / "rows", header({10, 5000, 28}));
        check_io_error(images(rows), rows, {"dimension 1 is 5000", "limit of 4096"});
        const fs::path bytes = write(tmp / "bytes", header({10000000, 4096, 4096}));
        check_io_error(images(bytes), bytes, {"10000000 images of 4096x4096", "limit of 2147483648 bytes"});
        const fs::path zero = write(tmp / "zero", header({10, 28, 0}));
        check_io_error(images(zero), zero, {"dimension 2 is 0"});
        // Within the caps (2 GB of pixels) but the data is missing: no 2 GB buffer may be allocated.
        const fs::path raw = write(tmp / "forged", cat(header({2000000, 32, 32}), Bytes(100)));
        check_io_error(images(raw), raw, {"truncated", "2000000 images of 32x32 (2048000000 bytes)", "holds 100"});
        const fs::path gz = write(tmp / "forged.gz", gzip(cat(header({2000000, 32, 32}), Bytes(100))));
        check_io_error(images(gz), gz, {"truncated", "decompressed stream holds 100"});
    }
    SUBCASE("truncated raw data or header") {
        const fs::path p = write(tmp / "t10k-images-idx3-ubyte", Bytes(good.begin(), good.end() - 10));
        check_io_error(images(p), p, {"truncated: header says 10 images of 28x28 (7840 bytes) but the file holds 7830"});
        const fs::path h = write(tmp / "half-header", Bytes(good.begin(), good.begin() + 10));
        check_io_error(images(h), h, {"ends inside the IDX header (10 of 16 bytes)"});
    }
    SUBCASE("truncated gzip") {
        const Bytes z = gzip(good);
        const fs::path cut = write(tmp / "cut.gz", Bytes(z.begin(), z.begin() + long(z.size() / 2)));
        check_io_error(images(cut), cut, {"gzip stream ends prematurely"});
        const fs::path no_trailer = write(tmp / "no-trailer.gz", Bytes(z.begin(), z.end() - 4));
        check_io_error(images(no_trailer), no_trailer, {"gzip stream ends prematurely after 7856 decompressed bytes"});
        // A complete gzip stream whose IDX data is short.
        const fs::path short_idx = write(tmp / "short.gz", gzip(Bytes(good.begin(), good.end() - 10)));
        check_io_error(images(short_idx), short_idx, {"truncated", "(7840 bytes)", "decompressed stream holds 7830"});
    }
    SUBCASE("corrupt gzip bytes") {
        Bytes crc = gzip(good);
        crc[crc.size() - 8] ^= 0xFF;  // the CRC-32 of the trailer
        const fs::path p = write(tmp / "crc.gz", crc);
        check_io_error(images(p), p, {"corrupt gzip data", "incorrect data check"});
        Bytes block = gzip(good);
        block[10] |= 0x06;  // BTYPE = 11, reserved, in the first deflate block (no FNAME field)
        const fs::path q = write(tmp / "block.gz", block);
        check_io_error(images(q), q, {"corrupt gzip data", "invalid block type"});
    }
    SUBCASE("trailing bytes") {
        const fs::path raw = write(tmp / "trailing", idx_file({10, 28, 28}, 7));
        check_io_error(images(raw), raw, {"(7840 bytes) but the file holds 7847: 7 trailing bytes after the data"});
        const fs::path gz = write(tmp / "trailing.gz", gzip(idx_file({10, 28, 28}, 7)));
        check_io_error(images(gz), gz, {"decompressed stream has 7 trailing bytes after the data"});
        const fs::path garbage = write(tmp / "garbage.gz", cat(gzip(good), {0, 0, 0, 0}));
        check_io_error(images(garbage), garbage, {"unexpected bytes after the end of the gzip stream"});
    }
    SUBCASE("label out of range") {
        const fs::path p = write(tmp / "labels", labels_file({7, 2, 1, 10, 4}));
        check_io_error(labels(p), p, {"label 10 at index 3 is outside 0..9"});
    }
    SUBCASE("image and label counts differ, or a file is missing from the data set") {
        const fs::path im = write(tmp / "x-images-idx3-ubyte.gz", gzip(idx_file({5, 2, 2})));
        const fs::path lb = write(tmp / "x-labels-idx1-ubyte", labels_file({1, 2, 3, 4}));
        check_io_error([&] { (void)bijou::load_idx_dataset(tmp.path, "x"); }, im,
                       {"the header says 5 images but", lb.string() + " holds 4 labels"});
        check_io_error([&] { (void)bijou::load_idx_dataset(tmp.path, "y"); }, tmp.path,
                       {"neither y-images-idx3-ubyte nor y-images-idx3-ubyte.gz"});
        check_io_error([&] { (void)bijou::load_idx_dataset(tmp / "nope", "x"); }, tmp / "nope", {"no such directory"});
    }
}

namespace {

/// Writes `bytes` into the named pipe `fifo` from its own thread (whose open() waits for a reader),
/// then closes it; joined at scope exit.
class PipeWriter {
public:
    PipeWriter(const fs::path& fifo, Bytes bytes)
        : thread_([fifo, bytes = std::move(bytes)] {
              const int fd = ::open(fifo.c_str(), O_WRONLY);
              if (fd < 0) return;
              for (std::size_t done = 0; done < bytes.size();) {
                  const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
                  if (w <= 0) break;
                  done += std::size_t(w);
              }
              ::close(fd);
          }) {}
    ~PipeWriter() { thread_.join(); }

private:
    std::thread thread_;
};

/// The process's peak resident memory so far, in KiB.
long peak_rss_kib() {
    rusage u{};
    ::getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

}  // namespace

TEST_CASE("idx: a named pipe is read as its bytes arrive, so a forged header cannot size an allocation") {
    TempDir tmp;
    const fs::path fifo = tmp / "pipe";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    {
        const PipeWriter writer(fifo, idx_file({3, 2, 5}));
        const bijou::IdxImages im = bijou::read_idx_images(fifo);
        CHECK(im.count == 3);
        REQUIRE(im.pixels.size() == 30);
        CHECK(im.at(2, 1, 4) == 29);
    }
    {
        // The header announces 2,000,000 images of 32x32 (2.048 GB, under idx_max_bytes); 100 bytes follow.
        const PipeWriter writer(fifo, cat(header({2000000, 32, 32}), Bytes(100, 7)));
        const long before = peak_rss_kib();
        check_io_error([&] { (void)bijou::read_idx_images(fifo); }, fifo,
                       {"truncated: header says 2000000 images of 32x32 (2048000000 bytes) but the file holds 100"});
        CHECK(peak_rss_kib() - before < 64 * 1024);  // the reader's first 1 MiB chunk, not the header's 2 GB
    }
}

}  // namespace unit_idx
