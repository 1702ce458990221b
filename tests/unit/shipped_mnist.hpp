// The MNIST files that ship with bijou (examples/data/mnist, see its README.md). Tests that read
// them fail, never skip, when they are missing: a checkout without them is broken.
#pragma once

#include <filesystem>

#include <doctest/doctest.h>

namespace bijou::test {

/// examples/data/mnist of the source tree; REQUIREs its four files.
inline std::filesystem::path shipped_mnist() {
    const std::filesystem::path dir(BIJOU_MNIST_DIR);
    for (const char* f : {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                          "t10k-labels-idx1-ubyte.gz"})
        REQUIRE_MESSAGE(std::filesystem::is_regular_file(dir / f),
                        "the MNIST shipped with bijou is missing: no " << (dir / f).string());
    return dir;
}

}  // namespace bijou::test
