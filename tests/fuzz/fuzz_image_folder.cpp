// libFuzzer target for the PNG folder reader (bijou/io/image_folder.hpp). Each input is written as the
// only file, input.png, of a scratch folder, which is read as RGB and as grayscale. A bijou::error is
// the expected outcome of a bad input. Anything else is a finding: a crash, another exception, a
// sanitizer report, an allocation above -malloc_limit_mb, a hang, or a successful read whose sizes
// disagree with each other.
#include <cstdint>

#include <bijou/io/image_folder.hpp>

#include "fuzz_common.hpp"

namespace {

void check(bool ok, const char* what) { bijou_fuzz::check(ok, "fuzz_image_folder", what); }

const bijou_fuzz::ScratchDir& scratch() {
    static const bijou_fuzz::ScratchDir dir("image_folder");
    return dir;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    scratch().write("input.png", data, size);
    for (const int channels : {3, 1}) {
        try {
            const bijou::ImageFolder f = bijou::read_image_folder(scratch().path(), channels);
            check(f.count == 1 && f.names.size() == 1, "one file, one image");
            check(f.channels == channels, "channels");
            check(f.width >= 1 && f.height >= 1 && f.width <= 4096 && f.height <= 4096, "size out of range");
            check(f.pixels.size() == std::size_t(channels) * std::size_t(f.width) * std::size_t(f.height),
                  "pixels.size() != C * H * W");
        } catch (const bijou::error&) {
        }
    }
    return 0;
}
