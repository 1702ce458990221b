// bijou/io/image_folder.hpp — a validating reader for a folder of same-size PNG images.
//
// Needs libpng (Debian `libpng-dev`). Optional like io/idx.hpp: <bijou/bijou.hpp> does not include
// it; a target that does links `PNG::PNG` (`find_package(PNG)`).
//
// read_image_folder(dir, channels) reads every regular file in `dir` whose name ends in ".png" (any
// case; nothing recursive), in byte order of their names, as 8-bit images of `channels` channels:
// 1 (grayscale; gray PNGs of 1, 2, 4, 8 or 16 bits) or 3 (RGB; RGB and palette PNGs). 16-bit
// samples keep their high byte. Pixels are stored channel-major per image, (count, C, H, W), as
// bijou's Shape<C, H, W> lays out an image. image_folder_shape(dir) reads the first file's header
// only: its channels (for a caller that takes either kind of folder) and its size.
//
// Contract: every file's header (signature, IHDR) is read and checked before the pixel buffer is
// allocated: all images must have the first image's width and height, each ≤ image_folder_max_side
// (4096), their colour type must give `channels` channels, an alpha channel (gray+alpha, RGBA or a
// tRNS chunk) is rejected rather than dropped silently, and the whole set must fit
// image_folder_max_bytes (2 GiB). Then the images are decoded; a truncated or corrupt image (a CRC
// error, a short IDAT stream, …) fails with libpng's message. Every failure is a bijou::io_error
// naming the file ("bijou: <file>: <what is wrong>"); a bad argument is bijou::invalid_argument.
// Cost: two passes over the headers and one decode per file; memory = the pixels plus one image.
#pragma once

#include <png.h>

#include <algorithm>
#include <cctype>
#include <csetjmp>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "bijou/core/error.hpp"

namespace bijou {

inline constexpr std::uint32_t image_folder_max_side = 4096;
inline constexpr std::uint64_t image_folder_max_bytes = std::uint64_t(1) << 31;

/// `count` images of channels × height × width bytes, channel-major, and their file names.
struct ImageFolder {
    int count = 0, channels = 0, height = 0, width = 0;
    std::vector<std::string> names;    // file names (not paths), in the order of the images
    std::vector<std::uint8_t> pixels;  // count × channels × height × width

    std::uint8_t at(int image, int channel, int row, int col) const {
        return pixels[((std::size_t(image) * std::size_t(channels) + std::size_t(channel)) * std::size_t(height) +
                       std::size_t(row)) *
                          std::size_t(width) +
                      std::size_t(col)];
    }
};

namespace detail {

struct PngHeader {
    std::uint32_t width = 0, height = 0;
    int channels = 0;   // after the transforms below: 1 or 3, or 0 when the image has alpha
    int color_type = 0, bit_depth = 0;
};

/// libpng's error message, copied out before its longjmp.
struct PngError {
    char message[256] = "";
};

inline void png_error_to_buffer(png_structp png, png_const_charp msg) {
    auto* e = static_cast<PngError*>(png_get_error_ptr(png));
    std::snprintf(e->message, sizeof e->message, "%s", msg ? msg : "libpng error");
    png_longjmp(png, 1);
}
inline void png_ignore_warning(png_structp, png_const_charp) {}

/// One libpng read of the open PNG `f`: the header, and with `out` (height·width·channels bytes,
/// row-interleaved; rows: height pointers of scratch) the pixels. Returns null on success, else what
/// went wrong. Nothing with a destructor lives in this frame across libpng calls, so libpng's
/// longjmp on an error is safe.
inline const char* png_decode(FILE* f, PngHeader& h, std::uint8_t* out, png_bytep* rows, PngError& err) {
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &err, png_error_to_buffer, png_ignore_warning);
    if (!png) return "cannot initialise libpng";
    png_infop info = png_create_info_struct(png);
    if (!info) {
        png_destroy_read_struct(&png, nullptr, nullptr);
        return "cannot initialise libpng";
    }
    if (setjmp(png_jmpbuf(png))) {
        png_destroy_read_struct(&png, &info, nullptr);
        return err.message;
    }
    png_set_user_limits(png, image_folder_max_side, image_folder_max_side);
    png_init_io(png, f);
    png_read_info(png, info);
    h.width = png_get_image_width(png, info);
    h.height = png_get_image_height(png, info);
    h.color_type = png_get_color_type(png, info);
    h.bit_depth = png_get_bit_depth(png, info);
    const bool alpha = (h.color_type & PNG_COLOR_MASK_ALPHA) != 0 || png_get_valid(png, info, PNG_INFO_tRNS) != 0;
    h.channels = alpha ? 0 : (h.color_type == PNG_COLOR_TYPE_GRAY ? 1 : 3);
    if (out != nullptr && h.channels > 0) {
        if (h.bit_depth == 16) png_set_strip_16(png);
        if (h.color_type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
        if (h.color_type == PNG_COLOR_TYPE_GRAY && h.bit_depth < 8) png_set_expand_gray_1_2_4_to_8(png);
        png_set_interlace_handling(png);
        png_read_update_info(png, info);
        if (png_get_rowbytes(png, info) != std::size_t(h.width) * std::size_t(h.channels))
            png_error(png, "unexpected row size after conversion to 8-bit samples");
        for (std::uint32_t y = 0; y < h.height; ++y) rows[y] = out + std::size_t(y) * h.width * h.channels;
        png_read_image(png, rows);
        png_read_end(png, nullptr);
    }
    png_destroy_read_struct(&png, &info, nullptr);
    return nullptr;
}

[[noreturn]] inline void folder_fail(const std::filesystem::path& file, const std::string& what) {
    throw io_error(file.string() + ": " + what);
}

/// Reads one file's header (out null) or pixels; throws io_error naming the file on any failure.
inline PngHeader png_read_file(const std::filesystem::path& file, std::uint8_t* out, png_bytep* rows) {
    FILE* f = std::fopen(file.c_str(), "rb");
    if (!f) folder_fail(file, "cannot open the file for reading");
    unsigned char sig[8] = {};
    const std::size_t got = std::fread(sig, 1, 8, f);
    if (got < 8 || png_sig_cmp(sig, 0, 8) != 0) {
        std::fclose(f);
        folder_fail(file, got == 0 ? "the file is empty" : "not a PNG file (bad signature)");
    }
    // IHDR comes first (length, "IHDR", width, height, big-endian): a side over the limit is named as
    // such here (libpng, past its user limit, reports only "Invalid IHDR data").
    unsigned char ihdr[16] = {};
    if (std::fread(ihdr, 1, 16, f) == 16 && std::memcmp(ihdr + 4, "IHDR", 4) == 0) {
        auto be32 = [&](int at) {
            return std::uint32_t(ihdr[at]) << 24 | std::uint32_t(ihdr[at + 1]) << 16 | std::uint32_t(ihdr[at + 2]) << 8 |
                   std::uint32_t(ihdr[at + 3]);
        };
        if (be32(8) > image_folder_max_side || be32(12) > image_folder_max_side) {
            std::fclose(f);
            folder_fail(file, "is " + std::to_string(be32(8)) + "x" + std::to_string(be32(12)) + "; read_image_folder reads " +
                                  "images of at most " + std::to_string(image_folder_max_side) + " pixels a side");
        }
    }
    std::rewind(f);
    PngHeader h;
    PngError err;
    const char* why = png_decode(f, h, out, rows, err);
    std::fclose(f);
    if (why) folder_fail(file, std::string("corrupt or truncated PNG (libpng: ") + why + ")");
    return h;
}

inline bool has_png_extension(const std::filesystem::path& p) {
    std::string e = p.extension().string();
    std::transform(e.begin(), e.end(), e.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return e == ".png";
}

inline const char* color_type_name(int t) {
    switch (t) {
        case PNG_COLOR_TYPE_GRAY: return "grayscale";
        case PNG_COLOR_TYPE_GRAY_ALPHA: return "grayscale + alpha";
        case PNG_COLOR_TYPE_RGB: return "RGB";
        case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
        case PNG_COLOR_TYPE_PALETTE: return "palette";
        default: return "unknown colour type";
    }
}

}  // namespace detail

namespace detail {
/// The .png files of `dir` in byte order of their names; io_error if there are none.
inline std::vector<std::filesystem::path> list_pngs(const std::filesystem::path& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw io_error(dir.string() + ": not a directory");
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(dir, ec))
        if (has_png_extension(e.path()) && e.is_regular_file(ec)) files.push_back(e.path());
    if (ec) throw io_error(dir.string() + ": cannot list the directory (" + ec.message() + ")");
    if (files.empty()) throw io_error(dir.string() + ": no .png files");
    std::sort(files.begin(), files.end());
    return files;
}
}  // namespace detail

/// The channels (1 or 3) read_image_folder gives the first .png of `dir` (name order), and its size.
struct ImageFolderShape {
    int channels = 0, height = 0, width = 0;
};

/// The shape of the first .png of `dir` (name order), from its header only: for a caller that takes
/// either kind of folder, or must refuse a size before any image is decoded. io_error as above (an
/// alpha channel included).
inline ImageFolderShape image_folder_shape(const std::filesystem::path& dir) {
    const std::filesystem::path first = detail::list_pngs(dir).front();
    const detail::PngHeader h = detail::png_read_file(first, nullptr, nullptr);
    if (h.channels == 0)
        detail::folder_fail(first, std::string("has an alpha channel (") + detail::color_type_name(h.color_type) +
                                       "); remove it first, bijou does not drop it silently");
    return {h.channels, int(h.height), int(h.width)};
}

/// Every .png in `dir` as `channels`-channel 8-bit images (validated as described at the top).
inline ImageFolder read_image_folder(const std::filesystem::path& dir, int channels) {
    if (channels != 1 && channels != 3)
        throw invalid_argument("read_image_folder: channels must be 1 (grayscale) or 3 (RGB), got " +
                               std::to_string(channels));
    const std::vector<std::filesystem::path> files = detail::list_pngs(dir);

    ImageFolder out;
    out.channels = channels;
    for (const auto& file : files) {  // every header first: nothing large is allocated before this
        const detail::PngHeader h = detail::png_read_file(file, nullptr, nullptr);
        if (h.channels == 0)
            detail::folder_fail(file, std::string("has an alpha channel (") + detail::color_type_name(h.color_type) +
                                          (h.color_type & PNG_COLOR_MASK_ALPHA ? "" : " with tRNS") +
                                          "); remove it first, bijou does not drop it silently");
        if (h.channels != channels)
            detail::folder_fail(file, std::string("is ") + detail::color_type_name(h.color_type) + " (" +
                                          std::to_string(h.channels) + " channel" + (h.channels == 1 ? "" : "s") +
                                          "), expected " + std::to_string(channels));
        if (out.names.empty()) {
            out.width = int(h.width);
            out.height = int(h.height);
        } else if (int(h.width) != out.width || int(h.height) != out.height) {
            detail::folder_fail(file, "is " + std::to_string(h.width) + "x" + std::to_string(h.height) + ", but " +
                                          out.names.front() + " is " + std::to_string(out.width) + "x" +
                                          std::to_string(out.height) + " (all images must have one size)");
        }
        out.names.push_back(file.filename().string());
    }
    const std::size_t image = std::size_t(channels) * std::size_t(out.height) * std::size_t(out.width);
    if (std::uint64_t(image) * files.size() > image_folder_max_bytes)
        throw io_error(dir.string() + ": " + std::to_string(files.size()) + " images of " + std::to_string(image) +
                       " bytes exceed the 2 GiB a folder may hold");
    out.pixels.resize(image * files.size());
    std::vector<std::uint8_t> interleaved(image);
    std::vector<png_bytep> rows(std::size_t(out.height));
    for (std::size_t i = 0; i < files.size(); ++i) {
        const detail::PngHeader h = detail::png_read_file(files[i], interleaved.data(), rows.data());
        if (int(h.width) != out.width || int(h.height) != out.height || h.channels != channels)
            detail::folder_fail(files[i], "changed while being read");
        std::uint8_t* dst = out.pixels.data() + i * image;
        const std::size_t plane = std::size_t(out.height) * std::size_t(out.width);
        for (std::size_t p = 0; p < plane; ++p)
            for (int c = 0; c < channels; ++c) dst[std::size_t(c) * plane + p] = interleaved[p * std::size_t(channels) + std::size_t(c)];
    }
    out.count = int(files.size());
    return out;
}

}  // namespace bijou
