// bijou/io/idx.hpp — a validating reader for IDX files (the MNIST format), raw or gzip-compressed.
//
// Needs zlib (Debian `zlib1g-dev`). This header is optional: <bijou/bijou.hpp> does not include it
// and the core library does not need zlib; a target that includes it does `find_package(ZLIB)` and
// links `ZLIB::ZLIB`.
//
// Format (LeCun et al., http://yann.lecun.com/exdb/mnist/): a big-endian header, the magic number
// 0x00 0x00 <dtype> <rank>, then `rank` uint32 dimensions, then the values in row-major order.
// bijou reads dtype 0x08 (unsigned byte) only. A file is gunzipped iff it starts with the gzip magic
// 0x1F 0x8B (its name does not matter). Concatenated gzip members read as one stream, and zlib
// checks each member's CRC-32 and length.
//
// Contract: the header is validated before any data buffer is allocated: magic, dtype, the rank the
// caller expects, every dimension ≥ 1, the item count ≤ idx_max_count (10,000,000), every other
// dimension ≤ idx_max_dim (4096), the data size ≤ idx_max_bytes (2 GiB) and, for a raw file, the
// file size against the header (truncated data, trailing bytes). The length of a gzip stream's
// decompressed data, or of anything that is not a regular file (a pipe, a device), is only known
// once it has been read, so the buffer grows with the bytes actually read: a forged header cannot
// make the reader allocate more than the stream really holds. After the data, the stream must
// end: trailing bytes, a truncated or corrupt gzip stream (zlib errors, premature end, bad CRC)
// and label values above `max_label` are all rejected. Every failure is a
// bijou::io_error ("bijou: <file>: <what is wrong>"), or bijou::invalid_argument for a bad argument.
// Cost: one pass over the file; memory = the data size (plus 64 KiB of input buffer).
#pragma once

#include <algorithm>
#include <array>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <zlib.h>

#include "bijou/core/error.hpp"

namespace bijou {

/// Caps on what a header may ask for, so that a forged header cannot request terabytes.
inline constexpr std::uint64_t idx_max_count = 10'000'000;           ///< first dimension (items)
inline constexpr std::uint64_t idx_max_dim = 4096;                   ///< every other dimension
inline constexpr std::uint64_t idx_max_bytes = std::uint64_t(1) << 31;  ///< data size (2 GiB)

/// Any unsigned-byte IDX array: its shape (dims[0] = number of items) and its row-major values.
struct IdxArray {
    std::vector<std::uint32_t> dims;
    std::vector<std::uint8_t> data;
};

/// `count` images of rows × cols pixels, row-major (count, rows, cols); MNIST: 0 = background.
struct IdxImages {
    int count = 0, rows = 0, cols = 0;
    std::vector<std::uint8_t> pixels;

    std::uint8_t at(int image, int row, int col) const {
        return pixels[(std::size_t(image) * std::size_t(rows) + std::size_t(row)) * std::size_t(cols) +
                      std::size_t(col)];
    }
};

/// An image file and its label file, with as many labels as images.
struct IdxDataset {
    IdxImages images;
    std::vector<std::uint8_t> labels;
};

namespace detail {

[[noreturn]] inline void idx_fail(const std::filesystem::path& file, const std::string& what) {
    throw io_error(file.string() + ": " + what);
}

/// The bytes of a file in order, gunzipped on the fly when the file starts with the gzip magic.
class IdxByteSource {
public:
    explicit IdxByteSource(std::filesystem::path file) : file_(std::move(file)) {
        namespace fs = std::filesystem;
        std::error_code ec;
        const fs::file_status st = fs::status(file_, ec);
        if (!fs::exists(st)) idx_fail(file_, "no such file");
        if (fs::is_directory(st)) idx_fail(file_, "is a directory, not an IDX file");
        in_.open(file_, std::ios::binary);
        if (!in_) idx_fail(file_, "cannot open the file for reading");
        if (fs::is_regular_file(st))  // a pipe or a device has no size to check the header against
            if (const std::uintmax_t size = fs::file_size(file_, ec); !ec) file_size_ = size;
        if (!refill()) idx_fail(file_, "the file is empty");
        gzip_ = len_ >= 2 && buf_[0] == 0x1F && buf_[1] == 0x8B;
        if (gzip_) {
            // 15 + 16: the largest window, gzip wrapper only (a zlib or raw deflate stream is an error).
            if (inflateInit2(&z_, 15 + 16) != Z_OK) idx_fail(file_, "cannot initialise zlib");
            z_.next_in = buf_.data();
            z_.avail_in = static_cast<uInt>(len_);
            pos_ = len_;
        }
    }
    ~IdxByteSource() {
        if (gzip_) inflateEnd(&z_);
    }
    IdxByteSource(const IdxByteSource&) = delete;
    IdxByteSource& operator=(const IdxByteSource&) = delete;

    bool gzip() const { return gzip_; }
    /// Bytes not yet read, where that is known without reading them (a raw regular file; not a
    /// gzip stream, a pipe or a device).
    std::optional<std::uint64_t> remaining() const {
        if (gzip_ || !file_size_ || *file_size_ < consumed_) return std::nullopt;
        return *file_size_ - consumed_;
    }
    /// Reads up to n bytes into dst; fewer only at the end of the data.
    std::size_t read(std::uint8_t* dst, std::size_t n) { return gzip_ ? read_gzip(dst, n) : read_raw(dst, n); }

private:
    bool refill() {
        in_.read(reinterpret_cast<char*>(buf_.data()), std::streamsize(buf_.size()));
        if (in_.bad()) idx_fail(file_, "read error");
        pos_ = 0;
        len_ = static_cast<std::size_t>(in_.gcount());
        return len_ > 0;
    }

    std::size_t read_raw(std::uint8_t* dst, std::size_t n) {
        std::size_t got = std::min(n, len_ - pos_);
        std::copy_n(buf_.data() + pos_, got, dst);
        pos_ += got;
        if (got < n && in_) {
            in_.read(reinterpret_cast<char*>(dst + got), std::streamsize(n - got));
            if (in_.bad()) idx_fail(file_, "read error");
            got += static_cast<std::size_t>(in_.gcount());
        }
        consumed_ += got;
        return got;
    }

    std::size_t read_gzip(std::uint8_t* dst, std::size_t n) {
        std::size_t got = 0;
        while (got < n) {
            if (z_.avail_in == 0) {
                if (!refill()) {
                    if (in_member_)
                        idx_fail(file_, "the gzip stream ends prematurely after " + std::to_string(out_) +
                                            " decompressed bytes (truncated .gz file?)");
                    break;  // the end of the file, after a complete member
                }
                z_.next_in = buf_.data();
                z_.avail_in = static_cast<uInt>(len_);
            }
            if (!in_member_) {  // more bytes after a complete member: they must be another member
                inflateReset(&z_);
                in_member_ = true;
                member_start_ = out_;
                ++members_;
            }
            const std::size_t want = std::min<std::size_t>(n - got, std::size_t(1) << 30);
            z_.next_out = dst + got;
            z_.avail_out = static_cast<uInt>(want);
            const int rc = inflate(&z_, Z_NO_FLUSH);
            const std::size_t produced = want - z_.avail_out;
            got += produced;
            out_ += produced;
            if (rc == Z_STREAM_END) {
                in_member_ = false;
            } else if (rc != Z_OK && !(rc == Z_BUF_ERROR && z_.avail_in == 0)) {
                const std::string why = z_.msg ? z_.msg : zError(rc);
                if (members_ > 1 && out_ == member_start_)
                    idx_fail(file_, "unexpected bytes after the end of the gzip stream (zlib: " + why + ")");
                idx_fail(file_, "corrupt gzip data after " + std::to_string(out_) +
                                    " decompressed bytes (zlib: " + why + ")");
            }
        }
        return got;
    }

    std::filesystem::path file_;
    std::ifstream in_;
    std::optional<std::uint64_t> file_size_;
    std::uint64_t consumed_ = 0;           // raw: bytes handed out by read()
    std::array<std::uint8_t, 1 << 16> buf_{};
    std::size_t pos_ = 0, len_ = 0;        // raw: unread bytes of buf_ are [pos_, len_)
    bool gzip_ = false;
    z_stream z_{};
    bool in_member_ = true;                // gzip: inside a member, whose end zlib has not yet seen
    std::uint64_t out_ = 0, member_start_ = 0;
    int members_ = 1;
};

inline std::string idx_shape(const std::vector<std::uint32_t>& dims, const std::string& noun) {
    std::string s = std::to_string(dims[0]) + " " + noun;
    for (std::size_t i = 1; i < dims.size(); ++i) s += (i == 1 ? " of " : "x") + std::to_string(dims[i]);
    return s;
}

inline std::string idx_hex(unsigned v, int digits) {
    char s[16];
    std::snprintf(s, sizeof s, "0x%0*X", digits, v);
    return s;
}

/// Reads an IDX file of the given rank; `noun` names its items in messages ("images", "labels");
/// `check_header` (if set) may throw after the header was validated, before the data is read.
inline IdxArray read_idx(const std::filesystem::path& file, int rank, const std::string& noun,
                         const std::function<void(const std::vector<std::uint32_t>&)>& check_header = {}) {
    if (rank < 1 || rank > 255) throw invalid_argument("read_idx: rank must be in 1..255 (got " + std::to_string(rank) + ")");
    IdxByteSource src(file);
    const std::string holder = src.gzip() ? "the decompressed stream" : "the file";

    std::array<std::uint8_t, 4> m{};
    if (const std::size_t got = src.read(m.data(), 4); got < 4)
        idx_fail(file, got == 0 ? (src.gzip() ? "the gzip stream decompresses to nothing (no IDX header)" : "the file is empty")
                                : holder + " ends inside the IDX magic number (" + std::to_string(got) + " of 4 bytes)");
    const unsigned magic = unsigned(m[0]) << 24 | unsigned(m[1]) << 16 | unsigned(m[2]) << 8 | m[3];
    if (m[0] != 0 || m[1] != 0)
        idx_fail(file, "not an IDX file: the magic number " + idx_hex(magic, 8) + " does not start with 0x0000");
    if (m[2] != 0x08) {
        const char* name = m[2] == 0x09 ? "signed byte" : m[2] == 0x0B ? "int16" : m[2] == 0x0C ? "int32"
                         : m[2] == 0x0D ? "float32" : m[2] == 0x0E ? "float64" : nullptr;
        idx_fail(file, (name ? "dtype " + idx_hex(m[2], 2) + " (" + name + ") is not supported"
                             : "unknown IDX dtype " + idx_hex(m[2], 2)) +
                           " in magic number " + idx_hex(magic, 8) + "; bijou reads only 0x08 (unsigned byte)");
    }
    if (m[3] != rank)
        idx_fail(file, "the header has rank " + std::to_string(m[3]) + " (magic number " + idx_hex(magic, 8) +
                           ") but rank " + std::to_string(rank) + " was expected for " + noun);

    std::vector<std::uint8_t> h(4 * std::size_t(rank));
    if (const std::size_t got = src.read(h.data(), h.size()); got < h.size())
        idx_fail(file, holder + " ends inside the IDX header (" + std::to_string(4 + got) + " of " +
                           std::to_string(4 + h.size()) + " bytes)");
    IdxArray out;
    std::uint64_t total = 1;  // saturates just above the cap, so it cannot overflow
    for (std::size_t i = 0; i < std::size_t(rank); ++i) {
        const std::uint32_t d = std::uint32_t(h[4 * i]) << 24 | std::uint32_t(h[4 * i + 1]) << 16 |
                                std::uint32_t(h[4 * i + 2]) << 8 | h[4 * i + 3];
        const std::uint64_t cap = i == 0 ? idx_max_count : idx_max_dim;
        const std::string which = i == 0 ? "the number of " + noun : "dimension " + std::to_string(i);
        if (d == 0) idx_fail(file, "the header says " + which + " is 0");
        if (d > cap)
            idx_fail(file, "the header says " + which + " is " + std::to_string(d) + ", above the limit of " +
                               std::to_string(cap) + " (corrupt or forged header?)");
        out.dims.push_back(d);
        total = std::min(total * d, idx_max_bytes + 1);
    }
    const std::string shape = idx_shape(out.dims, noun);
    if (total > idx_max_bytes)
        idx_fail(file, "the header says " + shape + ", more than the limit of " + std::to_string(idx_max_bytes) +
                           " bytes (corrupt or forged header?)");
    const std::string says = "header says " + shape + " (" + std::to_string(total) + " bytes)";
    if (const auto left = src.remaining(); left && *left != total)
        idx_fail(file, *left < total ? "truncated: " + says + " but the file holds " + std::to_string(*left)
                                     : says + " but the file holds " + std::to_string(*left) + ": " +
                                           std::to_string(*left - total) + " trailing bytes after the data");
    if (check_header) check_header(out.dims);

    // A raw regular file was checked against its size, so it gets its buffer at once. Any other
    // stream (gzip, a pipe, a device) says nothing about its length until it is read: its buffer
    // doubles (from 1 MiB) as bytes arrive, never past the header's size.
    const bool size_checked = src.remaining().has_value();
    std::size_t have = 0;
    while (have < total) {
        const std::size_t next = size_checked ? std::size_t(total)
                                              : std::size_t(std::min<std::uint64_t>(total, std::max<std::uint64_t>(2 * have, 1 << 20)));
        out.data.reserve(next);
        out.data.resize(next);
        have += src.read(out.data.data() + have, next - have);
        if (have < next) break;
    }
    if (have < total) idx_fail(file, "truncated: " + says + " but " + holder + " holds " + std::to_string(have));

    // The stream must end here. Reading on also makes zlib check the gzip trailer (CRC-32, length).
    std::array<std::uint8_t, 4096> probe{};
    std::uint64_t extra = 0;
    while (extra < (1u << 20)) {
        const std::size_t n = src.read(probe.data(), probe.size());
        if (n == 0) break;
        extra += n;
    }
    if (extra > 0)
        idx_fail(file, says + " but " + holder + " has " + (extra >= (1u << 20) ? "at least " : "") +
                           std::to_string(extra) + " trailing bytes after the data");
    return out;
}

}  // namespace detail

/// Any unsigned-byte IDX file of the given rank (1..255), validated as described at the top.
inline IdxArray read_idx(const std::filesystem::path& file, int rank) { return detail::read_idx(file, rank, "items"); }

/// An IDX image file: rank 3, (count, rows, cols).
inline IdxImages read_idx_images(const std::filesystem::path& file) {
    IdxArray a = detail::read_idx(file, 3, "images");
    return {int(a.dims[0]), int(a.dims[1]), int(a.dims[2]), std::move(a.data)};
}

/// An IDX label file: rank 1, every label in 0..max_label (9 for MNIST).
inline std::vector<std::uint8_t> read_idx_labels(const std::filesystem::path& file, int max_label = 9) {
    if (max_label < 0 || max_label > 255)
        throw invalid_argument("read_idx_labels: max_label must be in 0..255 (got " + std::to_string(max_label) + ")");
    IdxArray a = detail::read_idx(file, 1, "labels");
    for (std::size_t i = 0; i < a.data.size(); ++i)
        if (a.data[i] > max_label)
            detail::idx_fail(file, "label " + std::to_string(a.data[i]) + " at index " + std::to_string(i) +
                                       " is outside 0.." + std::to_string(max_label));
    return std::move(a.data);
}

/// Loads `<dir>/<prefix>-images-idx3-ubyte` and `<dir>/<prefix>-labels-idx1-ubyte` (prefix "train" or
/// "t10k" for MNIST and Fashion-MNIST), each raw or with a ".gz" suffix (raw preferred if both exist).
/// The labels are read first, and the image count is checked against theirs before the images are.
inline IdxDataset load_idx_dataset(const std::filesystem::path& dir, const std::string& prefix, int max_label = 9) {
    namespace fs = std::filesystem;
    if (prefix.empty()) throw invalid_argument("load_idx_dataset: empty file prefix");
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw io_error(dir.string() + ": no such directory");
    auto find = [&](const std::string& base) {
        for (const std::string& name : {base, base + ".gz"})
            if (fs::exists(dir / name, ec)) return dir / name;
        throw io_error(dir.string() + ": neither " + base + " nor " + base + ".gz is there");
    };
    const fs::path images_file = find(prefix + "-images-idx3-ubyte");
    const fs::path labels_file = find(prefix + "-labels-idx1-ubyte");
    IdxDataset d;
    d.labels = read_idx_labels(labels_file, max_label);
    IdxArray a = detail::read_idx(images_file, 3, "images", [&](const std::vector<std::uint32_t>& dims) {
        if (dims[0] != d.labels.size())
            detail::idx_fail(images_file, "the header says " + std::to_string(dims[0]) + " images but " +
                                              labels_file.string() + " holds " + std::to_string(d.labels.size()) +
                                              " labels");
    });
    d.images = {int(a.dims[0]), int(a.dims[1]), int(a.dims[2]), std::move(a.data)};
    return d;
}

}  // namespace bijou
