// Tests of the CIFAR-10 binary reader (io/cifar10.hpp). CIFAR-10 itself cannot be downloaded here, so
// the files are built in its format: records of 1 label byte and 3,072 channel-major pixel bytes.
// Checks the layout (label, channel, row, column of known bytes), the training set's file order, and
// that every malformed input raises a bijou::io_error naming the file and the problem, leaving the
// data set being filled unchanged.
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <bijou/io/cifar10.hpp>

#include "unit/temp_dir.hpp"

namespace unit_cifar10 {  // the file's own namespace (unity build: tests/CMakeLists.txt)

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

struct TempDir : bijou_test::TempDir {
    TempDir() : bijou_test::TempDir("bijou-cifar") {}
};

/// n records; record r has label (r + seed) % 10 and pixel k = (r·7 + k + seed) % 251.
Bytes records(int n, int seed = 0) {
    Bytes b;
    for (int r = 0; r < n; ++r) {
        b.push_back(std::uint8_t((r + seed) % 10));
        for (int k = 0; k < 3072; ++k) b.push_back(std::uint8_t((r * 7 + k + seed) % 251));
    }
    return b;
}

fs::path write(const fs::path& p, const Bytes& b) {
    std::ofstream(p, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
    return p;
}

std::string error_of(const fs::path& p) {
    try {
        (void)bijou::read_cifar10(p);
    } catch (const bijou::io_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("cifar10: records are read as a label and channel-major 3x32x32 pixels") {
    TempDir dir;
    const auto d = bijou::read_cifar10(write(dir / "test_batch.bin", records(3)));
    REQUIRE(d.count == 3);
    REQUIRE(d.labels == Bytes{0, 1, 2});
    REQUIRE(d.pixels.size() == 3u * 3072u);
    // record 2, green plane (channel 1), row 5, column 9 is pixel byte k = 1024 + 5·32 + 9
    CHECK(d.at(2, 1, 5, 9) == std::uint8_t((2 * 7 + 1024 + 5 * 32 + 9) % 251));
    CHECK(d.at(0, 0, 0, 0) == 0);
    CHECK(d.at(1, 2, 31, 31) == std::uint8_t((7 + 3071) % 251));
}

TEST_CASE("cifar10: the training set is data_batch_1..5 in order and the test set test_batch") {
    TempDir dir;
    for (int b = 1; b <= 5; ++b) write(dir / ("data_batch_" + std::to_string(b) + ".bin"), records(2, b));
    write(dir / "test_batch.bin", records(4, 9));
    const auto train = bijou::load_cifar10(dir.path, true);
    REQUIRE(train.count == 10);
    for (int b = 1; b <= 5; ++b) {
        CAPTURE(b);
        CHECK(train.labels[std::size_t(2 * (b - 1))] == b % 10);
        CHECK(train.at(2 * (b - 1) + 1, 0, 0, 3) == std::uint8_t((7 + 3 + b) % 251));
    }
    const auto test = bijou::load_cifar10(dir.path, false);
    CHECK(test.count == 4);
    CHECK(test.labels[0] == 9);

    fs::remove(dir / "data_batch_4.bin");
    try {
        (void)bijou::load_cifar10(dir.path, true);
        FAIL("a missing batch file was accepted");
    } catch (const bijou::io_error& e) {
        CHECK(std::string(e.what()).find("data_batch_4.bin: no such file") != std::string::npos);
    }
    CHECK_THROWS_AS((void)bijou::load_cifar10(dir / "nowhere", true), bijou::io_error);
}

TEST_CASE("cifar10: every malformed file raises a bijou::io_error naming the file and the problem") {
    TempDir dir;
    struct Case {
        std::string name;
        Bytes bytes;
        std::string expect;
    };
    Bytes bad_label = records(3);
    bad_label[2 * 3073] = 10;
    Bytes padded = records(2);
    padded.push_back(0);
    Bytes truncated = records(2);
    truncated.pop_back();
    std::vector<Case> cases = {
        {"empty.bin", {}, "the file is empty"},
        {"truncated.bin", truncated, "not a whole number of 3073-byte records"},
        {"padded.bin", padded, "2 records and 1 bytes left over"},
        {"label.bin", bad_label, "record 2 has label 10"},
        {"tiny.bin", Bytes{1, 2, 3}, "0 records and 3 bytes left over"},
    };
    for (const auto& c : cases) {
        CAPTURE(c.name);
        const std::string what = error_of(write(dir / c.name, c.bytes));
        CHECK(what.find((dir / c.name).string()) != std::string::npos);
        CHECK(what.find(c.expect) != std::string::npos);
    }
    CHECK(error_of(dir / "missing.bin").find("no such file") != std::string::npos);
    CHECK(error_of(dir.path).find("not a regular file") != std::string::npos);

    // a failing file leaves what was read before it untouched
    bijou::Cifar10Data d;
    bijou::read_cifar10_into(write(dir / "good.bin", records(2)), d);
    CHECK_THROWS_AS(bijou::read_cifar10_into(dir / "label.bin", d), bijou::io_error);
    CHECK(d.count == 2);
    CHECK(d.labels.size() == 2);
    CHECK(d.pixels.size() == 2u * 3072u);
}

}  // namespace unit_cifar10
