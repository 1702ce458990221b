// libFuzzer target for the IDX reader (bijou/io/idx.hpp). Each input is written to a scratch file
// and read as
//   1. an image file (read_idx_images), a label file (read_idx_labels, labels 0..9), a rank-2 array,
//      and an array of the rank its own header claims (read_idx, any rank 1..255);
//   2. a data set (load_idx_dataset): the first two bytes are a big-endian length L, the next L bytes
//      the label file, the rest the image file (this exercises the image/label count check).
// A bijou::error is the expected outcome of a bad input. Anything else is a finding: a crash, another
// exception (uncaught, so libFuzzer reports it), a sanitizer report, an allocation above
// -malloc_limit_mb, a hang (-timeout), or a successful read whose result disagrees with its header.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <bijou/io/idx.hpp>

#include "fuzz_common.hpp"

namespace {

void check(bool ok, const char* what) { bijou_fuzz::check(ok, "fuzz_idx", what); }

std::size_t product(const std::vector<std::uint32_t>& dims) {
    std::size_t n = 1;
    for (const auto d : dims) n *= d;
    return n;
}

const bijou_fuzz::ScratchDir& scratch() {
    static const bijou_fuzz::ScratchDir dir("idx");
    return dir;
}

void read_single(const std::filesystem::path& file, const std::uint8_t* data, std::size_t size) {
    try {
        const bijou::IdxImages im = bijou::read_idx_images(file);
        check(im.count >= 1 && im.rows >= 1 && im.cols >= 1, "images: a dimension is < 1");
        check(im.pixels.size() == std::size_t(im.count) * std::size_t(im.rows) * std::size_t(im.cols),
              "images: pixel count != count * rows * cols");
    } catch (const bijou::error&) {
    }
    try {
        const std::vector<std::uint8_t> labels = bijou::read_idx_labels(file);
        check(!labels.empty(), "labels: empty");
        for (const auto l : labels) check(l <= 9, "labels: a label above max_label");
    } catch (const bijou::error&) {
    }
    std::vector<int> ranks{2};
    if (size >= 4 && data[3] != 0 && data[3] != 1 && data[3] != 2 && data[3] != 3) ranks.push_back(data[3]);
    for (const int rank : ranks) {
        try {
            const bijou::IdxArray a = bijou::read_idx(file, rank);
            check(a.dims.size() == std::size_t(rank), "read_idx: dims.size() != rank");
            check(a.data.size() == product(a.dims), "read_idx: data size != product of dims");
        } catch (const bijou::error&) {
        }
    }
}

void read_dataset(const std::uint8_t* data, std::size_t size) {
    if (size < 2) return;
    const std::size_t len = std::min<std::size_t>(std::size_t(data[0]) << 8 | data[1], size - 2);
    scratch().write("t10k-labels-idx1-ubyte", data + 2, len);
    scratch().write("t10k-images-idx3-ubyte", data + 2 + len, size - 2 - len);
    try {
        const bijou::IdxDataset d = bijou::load_idx_dataset(scratch().path(), "t10k");
        check(d.labels.size() == std::size_t(d.images.count), "dataset: label count != image count");
        check(d.images.pixels.size() ==
                  std::size_t(d.images.count) * std::size_t(d.images.rows) * std::size_t(d.images.cols),
              "dataset: pixel count != count * rows * cols");
    } catch (const bijou::error&) {
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    read_single(scratch().write("input", data, size), data, size);
    read_dataset(data, size);
    return 0;
}
