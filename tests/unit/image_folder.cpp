// Tests of the PNG folder reader (io/image_folder.hpp): PNGs written here with libpng (RGB, palette,
// gray of 1, 8 and 16 bits, interlaced), read back to the byte in channel-major order, and every
// malformed folder (mixed sizes, wrong channel count, alpha, truncated or corrupt files, no PNGs)
// raising a bijou::io_error that names the file and the problem.
#include <doctest/doctest.h>

#include <png.h>

#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <utility>
#include <vector>

#include <bijou/io/image_folder.hpp>

#include "unit/temp_dir.hpp"

namespace unit_image_folder {  // the file's own namespace (unity build: tests/CMakeLists.txt)

namespace fs = std::filesystem;
using Bytes = std::vector<std::uint8_t>;

namespace {

struct TempDir : bijou_test::TempDir {
    TempDir() : bijou_test::TempDir("bijou-png") {}
};

/// Writes a PNG of the given colour type and bit depth; `value(x, y, s)` gives sample s of pixel
/// (x, y) (a palette index for palette images, whose palette maps index i to (i, 2i, 3i)).
template <class F>
void write_png(const fs::path& p, int w, int h, int color_type, int bit_depth, F value, bool interlace = false,
               bool trns = false) {
    FILE* f = std::fopen(p.c_str(), "wb");
    REQUIRE(f != nullptr);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(png);
    REQUIRE(setjmp(png_jmpbuf(png)) == 0);
    png_init_io(png, f);
    png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), bit_depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_color palette[256];
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        for (int i = 0; i < 256; ++i) palette[i] = {png_byte(i), png_byte(2 * i), png_byte(3 * i)};
        png_set_PLTE(png, info, palette, 256);
    }
    png_byte alpha[1] = {0};
    png_color_16 trans{};
    if (trns) {
        if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_tRNS(png, info, alpha, 1, nullptr);
        else png_set_tRNS(png, info, nullptr, 0, &trans);
    }
    png_write_info(png, info);
    const int samples = color_type == PNG_COLOR_TYPE_RGB ? 3 : color_type == PNG_COLOR_TYPE_RGB_ALPHA ? 4
                        : color_type == PNG_COLOR_TYPE_GRAY_ALPHA                               ? 2
                                                                                                : 1;
    std::vector<png_byte> rows(std::size_t(h) * std::size_t(w) * samples * 2);
    std::vector<png_bytep> ptr(static_cast<std::size_t>(h));
    for (int y = 0; y < h; ++y) {
        png_bytep r = rows.data() + std::size_t(y) * w * samples * 2;
        ptr[std::size_t(y)] = r;
        std::fill(r, r + std::size_t(w) * samples * 2, png_byte(0));
        for (int x = 0; x < w; ++x)
            for (int s = 0; s < samples; ++s) {
                const unsigned v = value(x, y, s);
                if (bit_depth == 16) {
                    r[(x * samples + s) * 2] = png_byte(v >> 8);
                    r[(x * samples + s) * 2 + 1] = png_byte(v);
                } else if (bit_depth == 8) {
                    r[x * samples + s] = png_byte(v);
                } else {  // 1, 2, 4 bits, one sample: packed, most significant bits first
                    const int per = 8 / bit_depth, bit = (per - 1 - x % per) * bit_depth;
                    r[x / per] = png_byte(r[x / per] | (v << bit));
                }
            }
    }
    png_write_image(png, ptr.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
}

std::string error_of(const fs::path& dir, int channels) {
    try {
        (void)bijou::read_image_folder(dir, channels);
    } catch (const bijou::io_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("image_folder: RGB and palette PNGs are read channel-major in name order") {
    TempDir dir;
    write_png(dir / "b.png", 5, 4, PNG_COLOR_TYPE_RGB, 8, [](int x, int y, int s) { return unsigned(10 * x + y + 100 * s); });
    write_png(dir / "a.PNG", 5, 4, PNG_COLOR_TYPE_PALETTE, 8, [](int x, int y, int) { return unsigned(x + 5 * y); });
    write_png(dir / "c.png", 5, 4, PNG_COLOR_TYPE_RGB, 16, [](int x, int, int s) { return unsigned(x * 1000 + s * 7); },
              true);
    std::ofstream(dir / "notes.txt") << "not an image";
    const auto d = bijou::read_image_folder(dir.path, 3);
    REQUIRE(d.count == 3);
    CHECK(d.names == std::vector<std::string>{"a.PNG", "b.png", "c.png"});
    CHECK(d.width == 5);
    CHECK(d.height == 4);
    CHECK(d.pixels.size() == 3u * 3 * 4 * 5);
    CHECK(d.at(0, 0, 2, 3) == 3 + 10);        // palette index 13 → (13, 26, 39)
    CHECK(d.at(0, 2, 2, 3) == 3 * 13);
    CHECK(d.at(1, 1, 3, 4) == 10 * 4 + 3 + 100);
    CHECK(d.at(1, 2, 0, 0) == 200);
    CHECK(d.at(2, 0, 1, 4) == (4000 >> 8));  // 16-bit samples keep their high byte; interlaced
    CHECK(d.at(2, 2, 3, 2) == ((2000 + 14) >> 8));
}

TEST_CASE("image_folder: grayscale of 1, 8 and 16 bits") {
    TempDir dir;
    write_png(dir / "g1.png", 9, 3, PNG_COLOR_TYPE_GRAY, 1, [](int x, int y, int) { return unsigned((x + y) % 2); });
    write_png(dir / "g8.png", 9, 3, PNG_COLOR_TYPE_GRAY, 8, [](int x, int y, int) { return unsigned(x * 20 + y); });
    write_png(dir / "g16.png", 9, 3, PNG_COLOR_TYPE_GRAY, 16, [](int x, int, int) { return unsigned(x * 7000); });
    const auto d = bijou::read_image_folder(dir.path, 1);
    REQUIRE(d.count == 3);
    CHECK(d.names == std::vector<std::string>{"g1.png", "g16.png", "g8.png"});
    CHECK(d.at(0, 0, 0, 1) == 255);  // 1-bit white expands to 255
    CHECK(d.at(0, 0, 0, 0) == 0);
    CHECK(d.at(1, 0, 2, 8) == (56000 >> 8));
    CHECK(d.at(2, 0, 2, 8) == 162);
}

TEST_CASE("image_folder: image_folder_shape reads the first file's header") {
    TempDir gray, rgb, alpha;
    write_png(gray / "b.png", 3, 2, PNG_COLOR_TYPE_GRAY, 8, [](int x, int, int) { return unsigned(x); });
    write_png(gray / "a.png", 3, 2, PNG_COLOR_TYPE_GRAY, 16, [](int x, int, int) { return unsigned(x); });
    write_png(rgb / "a.png", 3, 2, PNG_COLOR_TYPE_PALETTE, 8, [](int x, int, int) { return unsigned(x); });
    write_png(rgb / "b.png", 3, 2, PNG_COLOR_TYPE_GRAY, 8, [](int x, int, int) { return unsigned(x); });
    write_png(alpha / "a.png", 3, 2, PNG_COLOR_TYPE_GRAY_ALPHA, 8, [](int x, int, int) { return unsigned(x); });
    const auto g = bijou::image_folder_shape(gray.path);
    CHECK(g.channels == 1);
    CHECK(g.height == 2);
    CHECK(g.width == 3);
    CHECK(bijou::image_folder_shape(rgb.path).channels == 3);  // a.png decides; read_image_folder then rejects b.png
    CHECK_THROWS_WITH_AS(bijou::image_folder_shape(alpha.path), doctest::Contains("a.png: has an alpha channel"),
                         bijou::io_error);
    CHECK_THROWS_WITH_AS(bijou::image_folder_shape(gray / "missing"), doctest::Contains("not a directory"),
                         bijou::io_error);
}

TEST_CASE("image_folder: every malformed folder raises a bijou::io_error naming the file and the problem") {
    auto rgb = [](int x, int y, int s) { return unsigned(x + y + s); };
    SUBCASE("mixed sizes") {
        TempDir dir;
        write_png(dir / "a.png", 4, 4, PNG_COLOR_TYPE_RGB, 8, rgb);
        write_png(dir / "b.png", 4, 5, PNG_COLOR_TYPE_RGB, 8, rgb);
        const std::string e = error_of(dir.path, 3);
        CHECK(e.find((dir / "b.png").string() + ": is 4x5, but a.png is 4x4") != std::string::npos);
    }
    SUBCASE("wrong channel count, both ways") {
        TempDir dir;
        write_png(dir / "a.png", 4, 4, PNG_COLOR_TYPE_GRAY, 8, rgb);
        CHECK(error_of(dir.path, 3).find("a.png: is grayscale (1 channel), expected 3") != std::string::npos);
        TempDir dir2;
        write_png(dir2 / "c.png", 4, 4, PNG_COLOR_TYPE_RGB, 8, rgb);
        CHECK(error_of(dir2.path, 1).find("c.png: is RGB (3 channels), expected 1") != std::string::npos);
    }
    SUBCASE("alpha, as a channel or as tRNS") {
        TempDir dir;
        write_png(dir / "a.png", 4, 4, PNG_COLOR_TYPE_RGB_ALPHA, 8, rgb);
        CHECK(error_of(dir.path, 3).find("a.png: has an alpha channel (RGBA)") != std::string::npos);
        TempDir dir2;
        write_png(dir2 / "p.png", 4, 4, PNG_COLOR_TYPE_PALETTE, 8, rgb, false, true);
        CHECK(error_of(dir2.path, 3).find("p.png: has an alpha channel (palette with tRNS)") != std::string::npos);
    }
    SUBCASE("truncated, corrupt, not a PNG, empty") {
        TempDir dir;
        write_png(dir / "a.png", 16, 16, PNG_COLOR_TYPE_RGB, 8, rgb);
        std::ifstream in(dir / "a.png", std::ios::binary);
        const Bytes good((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
        auto put = [](const std::string& name, const Bytes& b) {  // a folder holding just this file
            TempDir d;
            std::ofstream(d / name, std::ios::binary).write(reinterpret_cast<const char*>(b.data()), std::streamsize(b.size()));
            return std::make_pair((d / name).string(), error_of(d.path, 3));
        };
        const auto [t_file, t_err] = put("t.png", Bytes(good.begin(), good.begin() + std::ptrdiff_t(good.size() / 2)));
        CHECK(t_err.find(t_file + ": corrupt or truncated PNG (libpng: ") != std::string::npos);
        Bytes flipped = good;
        flipped[flipped.size() / 2] ^= 0x55;  // inside IDAT: a CRC error
        const auto [c_file, c_err] = put("c.png", flipped);
        CHECK(c_err.find(c_file + ": corrupt or truncated PNG") != std::string::npos);
        const auto [n_file, n_err] = put("n.png", Bytes{'G', 'I', 'F', '8', '9', 'a', 0, 0, 0, 0});
        CHECK(n_err.find(n_file + ": not a PNG file (bad signature)") != std::string::npos);
        const auto [e_file, e_err] = put("e.png", Bytes{});
        CHECK(e_err.find(e_file + ": the file is empty") != std::string::npos);
    }
    SUBCASE("a side over 4096 pixels names the limit") {
        TempDir dir;
        write_png(dir / "wide.png", 4097, 1, PNG_COLOR_TYPE_GRAY, 1, [](int, int, int) { return 0u; });
        const std::string e = error_of(dir.path, 1);
        INFO(e);
        CHECK(e.find("wide.png: is 4097x1; read_image_folder reads images of at most 4096 pixels a side") != std::string::npos);
        CHECK(e.find("corrupt") == std::string::npos);
    }
    SUBCASE("no PNGs, no folder, bad channels") {
        TempDir dir;
        std::ofstream(dir / "x.txt") << "x";
        CHECK(error_of(dir.path, 3).find(": no .png files") != std::string::npos);
        CHECK(error_of(dir / "missing", 3).find(": not a directory") != std::string::npos);
        CHECK_THROWS_AS((void)bijou::read_image_folder(dir.path, 2), bijou::invalid_argument);
    }
}

}  // namespace unit_image_folder
