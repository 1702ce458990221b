// bijou/io/cifar10.hpp — a validating reader for the CIFAR-10 binary format.
//
// Format (Krizhevsky 2009, https://www.cs.toronto.edu/~kriz/cifar.html, "binary version"): no header;
// the file is a sequence of 3,073-byte records, each 1 label byte (0..9) and 3,072 pixel bytes, the
// 32×32 red plane, then green, then blue, each row-major (channel-major, as a (3, 32, 32) tensor).
// The training set is data_batch_1.bin … data_batch_5.bin (10,000 records each), the test set
// test_batch.bin. The archive (cifar-10-binary.tar.gz) must be extracted first: this header reads the
// .bin files, not the tarball.
//
// Contract: before any image buffer is allocated, the file must be a regular file whose size is a
// positive multiple of 3,073 bytes and at most cifar10_max_records records (a truncated or padded
// file is rejected with its size and the remainder); the bytes read must equal that size; every
// label must be ≤ 9. Every failure is a bijou::io_error ("bijou: <file>: <what is wrong>", record
// index included for a bad label). No zlib, no other dependency.
// On failure nothing of the file is kept in the data set being filled (read_cifar10_into).
// Cost: one pass over the file, read straight into the result; memory = 3,073 bytes per image.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <vector>

#include "bijou/core/error.hpp"

namespace bijou {

inline constexpr int cifar10_channels = 3, cifar10_size = 32;
inline constexpr std::size_t cifar10_image_bytes = std::size_t(cifar10_channels) * cifar10_size * cifar10_size;  ///< 3,072
inline constexpr std::size_t cifar10_record_bytes = cifar10_image_bytes + 1;  ///< 3,073
inline constexpr std::size_t cifar10_max_records = 1'000'000;               ///< per file: ~3 GB

/// `count` CIFAR-10 images, each (3, 32, 32) channel-major bytes, and their labels (0..9).
struct Cifar10Data {
    int count = 0;
    std::vector<std::uint8_t> pixels;  // count × 3,072
    std::vector<std::uint8_t> labels;  // count

    std::uint8_t at(int image, int channel, int row, int col) const {
        return pixels[std::size_t(image) * cifar10_image_bytes +
                      (std::size_t(channel) * cifar10_size + std::size_t(row)) * cifar10_size + std::size_t(col)];
    }
};

namespace detail {
[[noreturn]] inline void cifar10_fail(const std::filesystem::path& file, const std::string& what) {
    throw io_error(file.string() + ": " + what);
}
}  // namespace detail

/// Appends the records of one CIFAR-10 binary file to `out` (validated as described at the top).
inline void read_cifar10_into(const std::filesystem::path& file, Cifar10Data& out) {
    namespace fs = std::filesystem;
    std::error_code ec;
    const fs::file_status st = fs::status(file, ec);
    if (!fs::exists(st)) detail::cifar10_fail(file, "no such file");
    if (!fs::is_regular_file(st)) detail::cifar10_fail(file, "not a regular file (a CIFAR-10 .bin file is needed)");
    const std::uintmax_t size = fs::file_size(file, ec);
    if (ec) detail::cifar10_fail(file, "cannot read the file size (" + ec.message() + ")");
    if (size == 0) detail::cifar10_fail(file, "the file is empty");
    if (size % cifar10_record_bytes != 0)
        detail::cifar10_fail(file, "size " + std::to_string(size) + " bytes is not a whole number of 3073-byte records (" +
                                       std::to_string(size / cifar10_record_bytes) + " records and " +
                                       std::to_string(size % cifar10_record_bytes) +
                                       " bytes left over: truncated, or not a CIFAR-10 binary file?)");
    const std::uintmax_t records = size / cifar10_record_bytes;
    if (records > cifar10_max_records)
        detail::cifar10_fail(file, std::to_string(records) + " records, more than the " +
                                       std::to_string(cifar10_max_records) + " a file may hold");
    if (std::uintmax_t(out.count) + records > std::uintmax_t(cifar10_max_records) * 8)
        detail::cifar10_fail(file, "too many images in total");
    std::ifstream in(file, std::ios::binary);
    if (!in) detail::cifar10_fail(file, "cannot open the file for reading");
    const std::size_t n = static_cast<std::size_t>(records), first = out.labels.size();
    out.labels.resize(first + n);
    out.pixels.resize((first + n) * cifar10_image_bytes);
    auto undo_and_fail = [&](const std::string& what) {  // nothing of this file stays in `out`
        out.labels.resize(first);
        out.pixels.resize(first * cifar10_image_bytes);
        detail::cifar10_fail(file, what);
    };
    for (std::size_t r = 0; r < n; ++r) {  // straight into `out`: no second copy of the file
        std::uint8_t& label = out.labels[first + r];
        in.read(reinterpret_cast<char*>(&label), 1);
        in.read(reinterpret_cast<char*>(out.pixels.data() + (first + r) * cifar10_image_bytes),
                std::streamsize(cifar10_image_bytes));
        if (!in) undo_and_fail("read error in record " + std::to_string(r) + " (the file changed while being read?)");
        if (label > 9)
            undo_and_fail("record " + std::to_string(r) + " has label " + std::to_string(label) +
                          " (CIFAR-10 labels are 0..9)");
    }
    if (in.peek() != std::ifstream::traits_type::eof())
        undo_and_fail("bytes after the last record (the file grew while being read?)");
    out.count = int(first + n);
}

/// One CIFAR-10 binary file.
inline Cifar10Data read_cifar10(const std::filesystem::path& file) {
    Cifar10Data d;
    read_cifar10_into(file, d);
    return d;
}

/// The CIFAR-10 training set (`train` true: data_batch_1.bin … data_batch_5.bin, in that order) or
/// test set (test_batch.bin) from the extracted `cifar-10-batches-bin` directory `dir`. All files must
/// be there: a missing one is an error naming it.
inline Cifar10Data load_cifar10(const std::filesystem::path& dir, bool train) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec))
        throw io_error(dir.string() + ": not a directory (expected the extracted cifar-10-batches-bin folder)");
    Cifar10Data d;
    if (train)
        for (int b = 1; b <= 5; ++b) read_cifar10_into(dir / ("data_batch_" + std::to_string(b) + ".bin"), d);
    else
        read_cifar10_into(dir / "test_batch.bin", d);
    return d;
}

}  // namespace bijou
