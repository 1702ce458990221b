// mnist_glow_make_test_data OUT — small data sets in the formats mnist_glow reads beside MNIST, for
// its smoke tests (CIFAR-10 cannot be downloaded here, so the tests build files in its format):
//
//   OUT/cifar10/      data_batch_1.bin … data_batch_5.bin (40 records each), test_batch.bin (40):
//                     CIFAR-10's binary format, 32×32 RGB, labels 0..9
//   OUT/rgb_folder/   50 RGB PNGs of 24×24, no subfolders (mnist_glow holds out the last 5 for testing)
//   OUT/gray_folder/  train/ (40) and test/ (10) grayscale PNGs of 28×28
//   OUT/big_folder/   2 RGB PNGs of 40×40 (larger than the models' 32×32: refused)
//
// Image i of label k: a background whose colour depends on k, a lighter square at a place that
// depends on i, and a little noise, so a model has something to learn. Deterministic (fixed seed).
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "common/png.hpp"

namespace fs = std::filesystem;

namespace {

/// Image i of label k, w × h, as an RGB canvas.
example::Canvas picture(int i, int k, int w, int h, std::mt19937& rng) {
    std::uniform_int_distribution<int> noise(0, 15);
    const example::Rgb bg{std::uint8_t(20 * k + 10), std::uint8_t(200 - 15 * k), std::uint8_t(60 + 9 * k)};
    example::Canvas c(w, h, bg);
    const int s = w / 3, x0 = (i * 7) % (w - s), y0 = (i * 5) % (h - s);
    for (int y = 0; y < h; ++y)
        for (int x = 0; x < w; ++x) {
            example::Rgb& p = c.at(x, y);
            const bool in = x >= x0 && x < x0 + s && y >= y0 && y < y0 + s;
            auto v = [&](std::uint8_t base) { return std::uint8_t(std::min(255, (in ? 230 : base) + noise(rng))); };
            p = {v(p.r), v(p.g), v(p.b)};
        }
    return c;
}

void write_cifar(const fs::path& file, int first, int n, std::mt19937& rng) {
    std::vector<char> bytes;
    for (int i = first; i < first + n; ++i) {
        const int k = i % 10;
        const example::Canvas c = picture(i, k, 32, 32, rng);
        bytes.push_back(char(k));
        for (int ch = 0; ch < 3; ++ch)  // the red plane, the green, the blue
            for (const example::Rgb& p : c.pixels()) bytes.push_back(char(ch == 0 ? p.r : ch == 1 ? p.g : p.b));
    }
    std::ofstream(file, std::ios::binary).write(bytes.data(), std::streamsize(bytes.size()));
}

void write_folder(const fs::path& dir, int first, int n, int side, bool gray, std::mt19937& rng) {
    fs::create_directories(dir);
    for (int i = first; i < first + n; ++i) {
        char name[32];
        std::snprintf(name, sizeof name, "img%03d.png", i);
        example::write_png(dir / name, picture(i, i % 10, side, side, rng), gray);
    }
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: mnist_glow_make_test_data OUT\n");
        return 2;
    }
    const fs::path out = argv[1];
    std::mt19937 rng(2026);
    fs::create_directories(out / "cifar10");
    for (int b = 1; b <= 5; ++b) write_cifar(out / "cifar10" / ("data_batch_" + std::to_string(b) + ".bin"), 40 * (b - 1), 40, rng);
    write_cifar(out / "cifar10" / "test_batch.bin", 1000, 40, rng);
    write_folder(out / "rgb_folder", 0, 50, 24, false, rng);
    write_folder(out / "gray_folder" / "train", 0, 40, 28, true, rng);
    write_folder(out / "gray_folder" / "test", 100, 10, 28, true, rng);
    write_folder(out / "big_folder", 0, 2, 40, false, rng);
    std::printf("wrote %s: cifar10/ (5 x 40 + 40 records), rgb_folder/ (50 RGB 24x24), gray_folder/{train,test} "
                "(40 + 10 gray 28x28), big_folder/ (2 RGB 40x40)\n",
                out.c_str());
    return 0;
}
