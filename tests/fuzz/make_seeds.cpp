// Writes the seed corpora of bijou's fuzz targets, so that no binary test files live in git:
//   bijou_fuzz_seeds idx DIR         small valid IDX files (raw, gzip, two gzip members, several
//                                    ranks) and a label+image pair in fuzz_idx.cpp's dataset layout
//   bijou_fuzz_seeds checkpoint DIR  valid checkpoints of the fuzzed model, with and without Adam state
//   bijou_fuzz_seeds cifar10 DIR     CIFAR-10 binary files of 1 and 2 records
//   bijou_fuzz_seeds image_folder DIR  small PNGs: RGB, palette, 1-bit gray, 16-bit gray interlaced
// DIR is emptied first. A second argument WORKDIR (optional) is emptied too: the fuzzer's working
// corpus, so that every bounded CTest run starts from the same seeds.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include <png.h>
#include <zlib.h>

#include "fuzz_common.hpp"
#include "fuzz_model.hpp"

namespace fs = std::filesystem;
using Bytes = std::string;

namespace {

void put_u32(Bytes& b, std::uint32_t v) {
    for (int shift = 24; shift >= 0; shift -= 8) b.push_back(char(std::uint8_t(v >> shift)));
}

/// An unsigned-byte IDX file with the given dims and values (i * step) mod (mod).
Bytes idx(const std::vector<std::uint32_t>& dims, unsigned step = 37, unsigned mod = 256) {
    Bytes b{'\0', '\0', '\x08', char(dims.size())};
    for (const auto d : dims) put_u32(b, d);
    std::size_t n = 1;
    for (const auto d : dims) n *= d;
    for (std::size_t i = 0; i < n; ++i) b.push_back(char(std::uint8_t((i * step) % mod)));
    return b;
}

/// One gzip member (zlib's gzip wrapper: windowBits 15 + 16).
Bytes gzip(const Bytes& raw) {
    z_stream z{};
    if (deflateInit2(&z, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::exit(1);
    Bytes out(deflateBound(&z, uLong(raw.size())) + 64, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(raw.data()));
    z.avail_in = uInt(raw.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = uInt(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::exit(1);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

/// fuzz_idx.cpp's dataset layout: a 2-byte big-endian length L, L bytes of label file, the image file.
Bytes pair(const Bytes& labels, const Bytes& images) {
    Bytes b{char(std::uint8_t(labels.size() >> 8)), char(std::uint8_t(labels.size()))};
    return b + labels + images;
}

void fresh_dir(const fs::path& d) {
    fs::remove_all(d);
    fs::create_directories(d);
}

void idx_seeds(const fs::path& dir) {
    const Bytes images = idx({3, 4, 5});
    const Bytes labels = idx({10}, 1, 10);  // 0..9
    bijou_fuzz::write_file(dir / "images-raw", images);
    bijou_fuzz::write_file(dir / "images-gz", gzip(images));
    bijou_fuzz::write_file(dir / "images-gz-two-members", gzip(images.substr(0, 20)) + gzip(images.substr(20)));
    bijou_fuzz::write_file(dir / "labels-raw", labels);
    bijou_fuzz::write_file(dir / "labels-gz", gzip(labels));
    bijou_fuzz::write_file(dir / "rank2-raw", idx({2, 6}));
    bijou_fuzz::write_file(dir / "rank4-gz", gzip(idx({2, 2, 2, 3})));
    const Bytes labels3 = idx({3}, 4, 10);
    bijou_fuzz::write_file(dir / "dataset-raw", pair(labels3, images));
    bijou_fuzz::write_file(dir / "dataset-gz", pair(gzip(labels3), gzip(images)));
}

void checkpoint_seeds(const fs::path& dir) {
    bijou_fuzz::Model m(bijou_fuzz::model_options());
    bijou_fuzz::perturb(m);
    bijou::save_checkpoint(dir / "model", m, {{"step", "7"}});
    bijou::Adam<float> opt(m.parameter_count());
    for (auto [name, span] : opt.state_tensors())
        for (std::size_t i = 0; i < span.size(); ++i) span[i] = 0.001f * float(i % 5);
    opt.set_step_count(3);
    bijou::save_checkpoint(dir / "model-and-adam", m, opt);
}

/// n CIFAR-10 records: a label byte (0..9) and 3,072 pixel bytes each.
Bytes cifar10(int n) {
    Bytes b;
    for (int r = 0; r < n; ++r) {
        b.push_back(char(r % 10));
        for (int k = 0; k < 3072; ++k) b.push_back(char((r * 7 + k) % 251));
    }
    return b;
}

/// A w×h PNG of the given colour type and depth (palette index i → (i, 2i, 3i)).
void png_seed(const fs::path& p, int w, int h, int color_type, int depth, bool interlace) {
    FILE* f = std::fopen(p.c_str(), "wb");
    png_structp png = f ? png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr) : nullptr;
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!info || setjmp(png_jmpbuf(png))) {
        std::fprintf(stderr, "bijou fuzz: cannot write %s\n", p.c_str());
        std::exit(1);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, png_uint_32(w), png_uint_32(h), depth, color_type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_color palette[16];
    for (int i = 0; i < 16; ++i) palette[i] = {png_byte(i), png_byte(2 * i), png_byte(3 * i)};
    if (color_type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette, 16);
    png_write_info(png, info);
    const int samples = color_type == PNG_COLOR_TYPE_RGB ? 3 : 1;
    std::vector<png_byte> row(std::size_t(w) * samples * 2);  // every row the same; values < 16 (palette)
    for (std::size_t k = 0; k < row.size(); ++k) row[k] = png_byte((k * 37) % 16);
    std::vector<png_bytep> rows(static_cast<std::size_t>(h), row.data());
    png_write_image(png, rows.data());
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    std::fclose(f);
}

void image_folder_seeds(const fs::path& dir) {
    png_seed(dir / "rgb.png", 4, 3, PNG_COLOR_TYPE_RGB, 8, false);
    png_seed(dir / "palette.png", 5, 2, PNG_COLOR_TYPE_PALETTE, 8, false);
    png_seed(dir / "gray1.png", 9, 3, PNG_COLOR_TYPE_GRAY, 1, false);
    png_seed(dir / "gray16-interlaced.png", 6, 6, PNG_COLOR_TYPE_GRAY, 16, true);
}

void cifar10_seeds(const fs::path& dir) {
    bijou_fuzz::write_file(dir / "one-record", cifar10(1));
    bijou_fuzz::write_file(dir / "two-records", cifar10(2));
}

}  // namespace

int main(int argc, char** argv) {
    const std::string kind = argc >= 2 ? argv[1] : "";
    if (argc < 3 || argc > 4 ||
        (kind != "idx" && kind != "checkpoint" && kind != "cifar10" && kind != "image_folder")) {
        std::fprintf(stderr, "usage: %s idx|checkpoint|cifar10|image_folder SEED_DIR [WORK_DIR]\n", argv[0]);
        return 2;
    }
    const fs::path dir = argv[2];
    fresh_dir(dir);
    if (argc == 4) fresh_dir(argv[3]);
    if (kind == "idx") idx_seeds(dir);
    else if (kind == "cifar10") cifar10_seeds(dir);
    else if (kind == "image_folder") image_folder_seeds(dir);
    else checkpoint_seeds(dir);
    std::size_t n = 0;
    for ([[maybe_unused]] const auto& e : fs::directory_iterator(dir)) ++n;
    std::printf("bijou fuzz: wrote %zu %s seeds to %s\n", n, argv[1], dir.c_str());
    return 0;
}
