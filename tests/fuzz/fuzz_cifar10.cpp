// libFuzzer target for the CIFAR-10 reader (bijou/io/cifar10.hpp). Each input is written to a scratch
// file and read (read_cifar10), then appended to a data set that already holds one valid record
// (read_cifar10_into). A bijou::error is the expected outcome of a bad input. Anything else is a
// finding: a crash, another exception, a sanitizer report, an allocation above -malloc_limit_mb, a
// hang, a successful read whose sizes or labels disagree with the format, or a failed append that
// changed the data set.
#include <cstdint>
#include <string>

#include <bijou/io/cifar10.hpp>

#include "fuzz_common.hpp"

namespace {

void check(bool ok, const char* what) { bijou_fuzz::check(ok, "fuzz_cifar10", what); }

const bijou_fuzz::ScratchDir& scratch() {
    static const bijou_fuzz::ScratchDir dir("cifar10");
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const auto file = scratch().write("input", data, size);
    try {
        const bijou::Cifar10Data d = bijou::read_cifar10(file);
        check(size % bijou::cifar10_record_bytes == 0 && size > 0, "accepted a size that is not whole records");
        check(std::size_t(d.count) == size / bijou::cifar10_record_bytes, "count != size / 3073");
        check(d.labels.size() == std::size_t(d.count), "labels.size() != count");
        check(d.pixels.size() == std::size_t(d.count) * bijou::cifar10_image_bytes, "pixels.size() != count * 3072");
        for (const auto l : d.labels) check(l <= 9, "a label above 9");
    } catch (const bijou::error&) {
    }
    bijou::Cifar10Data acc;
    acc.count = 1;
    acc.labels.assign(1, 3);
    acc.pixels.assign(bijou::cifar10_image_bytes, 7);
    try {
        bijou::read_cifar10_into(file, acc);
        check(acc.labels.size() == std::size_t(acc.count) && acc.count >= 2, "append: inconsistent count");
    } catch (const bijou::error&) {
        check(acc.count == 1 && acc.labels.size() == 1 && acc.pixels.size() == bijou::cifar10_image_bytes,
              "a failed append changed the data set");
    }
    return 0;
}
