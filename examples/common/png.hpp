// examples/common/png.hpp — a tiny RGB canvas and an atomic PNG writer (libpng).
//
// write_png writes "<path>.tmp" and renames it over <path>, so an interrupted run never leaves a
// truncated picture. Errors are bijou::io_error naming the file.
#pragma once

#include <png.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <bijou/core/error.hpp>

namespace example {

struct Rgb {
    std::uint8_t r = 255, g = 255, b = 255;
};

class Canvas {
public:
    Canvas(int w, int h, Rgb bg = {}) : w_(w), h_(h), px_(std::size_t(w) * h, bg) {}
    int width() const { return w_; }
    int height() const { return h_; }
    Rgb& at(int x, int y) { return px_[std::size_t(y) * w_ + x]; }
    void set(int x, int y, Rgb c) {
        if (x >= 0 && y >= 0 && x < w_ && y < h_) at(x, y) = c;
    }
    /// Alpha-blends c over the pixel.
    void blend(int x, int y, Rgb c, double a) {
        if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
        Rgb& p = at(x, y);
        p.r = std::uint8_t(std::lround(p.r * (1 - a) + c.r * a));
        p.g = std::uint8_t(std::lround(p.g * (1 - a) + c.g * a));
        p.b = std::uint8_t(std::lround(p.b * (1 - a) + c.b * a));
    }
    /// Copies another canvas in at (x0, y0).
    void paste(const Canvas& c, int x0, int y0) {
        for (int y = 0; y < c.h_; ++y)
            for (int x = 0; x < c.w_; ++x) set(x0 + x, y0 + y, c.px_[std::size_t(y) * c.w_ + x]);
    }
    const std::vector<Rgb>& pixels() const { return px_; }

private:
    int w_, h_;
    std::vector<Rgb> px_;
};

/// Viridis-like colour map for t in [0, 1] (piecewise linear through 5 anchors).
inline Rgb colormap(double t) {
    static constexpr std::array<std::array<double, 3>, 5> a{{{68, 1, 84}, {59, 82, 139}, {33, 145, 140},
                                                            {94, 201, 98}, {253, 231, 37}}};
    t = std::clamp(std::isfinite(t) ? t : 0.0, 0.0, 1.0) * 4.0;
    const int i = std::min(3, int(t));
    const double f = t - i;
    auto mix = [&](int k) { return std::uint8_t(std::lround(a[i][k] * (1 - f) + a[i + 1][k] * f)); };
    return {mix(0), mix(1), mix(2)};
}

/// Writes `c` as an 8-bit RGB PNG, or with gray = true as an 8-bit grayscale one (of the red channel).
inline void write_png(const std::filesystem::path& path, const Canvas& c, bool gray = false) {
    const std::string tmp = path.string() + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "wb");
    if (!f) throw bijou::io_error("cannot open '" + tmp + "' for writing");
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        std::fclose(f);
        std::remove(tmp.c_str());
        throw bijou::io_error("libpng failed writing '" + path.string() + "'");
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, png_uint_32(c.width()), png_uint_32(c.height()), 8, gray ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB,
                 PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    const std::size_t samples = gray ? 1 : 3;
    std::vector<png_byte> row(std::size_t(c.width()) * samples);
    for (int y = 0; y < c.height(); ++y) {
        for (int x = 0; x < c.width(); ++x) {
            const Rgb& p = c.pixels()[std::size_t(y) * c.width() + x];
            png_byte* o = row.data() + std::size_t(x) * samples;
            o[0] = p.r;
            if (!gray) o[1] = p.g, o[2] = p.b;
        }
        png_write_row(png, row.data());
    }
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    const bool ok = std::fflush(f) == 0;
    if (std::fclose(f) != 0 || !ok) {
        std::remove(tmp.c_str());
        throw bijou::io_error("cannot finish writing '" + tmp + "'");
    }
    std::error_code ec;
    std::filesystem::rename(tmp, path, ec);
    if (ec) {
        std::remove(tmp.c_str());
        throw bijou::io_error("cannot rename '" + tmp + "' to '" + path.string() + "': " + ec.message());
    }
}

}  // namespace example
