// mnist_glow's data sources (data.hpp): parsing --data, and loading MNIST, CIFAR-10 or a PNG folder
// as centred, zero-padded C×32×32 n-bit images.
#include "mnist_glow/data.hpp"

#include <algorithm>
#include <filesystem>

#include <bijou/core/error.hpp>
#include <bijou/io/cifar10.hpp>
#include <bijou/io/idx.hpp>
#include <bijou/io/image_folder.hpp>

namespace mnist_glow {

namespace fs = std::filesystem;

DataSource parse_data_source(const std::string& arg) {
    DataSource s;
    const auto colon = arg.find(':');
    const std::string kind = colon == std::string::npos ? "" : arg.substr(0, colon);
    if (kind == "mnist" || kind == "cifar10" || kind == "folder") {
        s.kind = kind;
        s.dir = arg.substr(colon + 1);
    } else if (colon != std::string::npos && colon > 0 && arg.find('/') > colon) {
        // "foo:DIR": a kind nobody knows (a directory whose name holds ':' is written ./a:b or mnist:a:b)
        throw bijou::invalid_argument("--data " + arg + ": unknown kind '" + kind +
                                      "' (mnist:DIR, cifar10:DIR or folder:DIR; a bare DIR is mnist:DIR)");
    } else {
        s.dir = arg;
    }
    if (s.dir.empty()) throw bijou::invalid_argument("--data " + arg + ": no directory after the kind");
    return s;
}

namespace {

/// Refuses images larger than the models' 32×32.
void check_size(int rows, int cols, const std::string& name) {
    if (rows > side || cols > side)
        throw bijou::invalid_argument(name + ": the images are " + std::to_string(cols) + "x" + std::to_string(rows) +
                                      "; mnist_glow's models are 32x32 and pad smaller images, so resize them to at most "
                                      "32x32 first");
}

/// Centres `count` images of channels × rows × cols (channel-major, `at(i, c, r, q)`) in C×32×32
/// and reduces them to n bits.
template <class At>
xt::xtensor<std::uint8_t, 4> pad(int count, int channels, int rows, int cols, int n_bits, const std::string& name, At at) {
    check_size(rows, cols, name);
    const int top = (side - rows) / 2, left = (side - cols) / 2, shift = 8 - n_bits;
    auto x = xt::xtensor<std::uint8_t, 4>::from_shape(
        {std::size_t(count), std::size_t(channels), std::size_t(side), std::size_t(side)});
    std::fill(x.begin(), x.end(), std::uint8_t(0));
    for (int i = 0; i < count; ++i)
        for (int c = 0; c < channels; ++c) {
            std::uint8_t* dst = x.data() + (std::size_t(i) * std::size_t(channels) + std::size_t(c)) * plane;
            for (int r = 0; r < rows; ++r)
                for (int q = 0; q < cols; ++q)
                    dst[std::size_t(r + top) * side + std::size_t(q + left)] = std::uint8_t(at(i, c, r, q) >> shift);
        }
    return x;
}

/// The folder a folder source's part is read from: DIR/train or DIR/test when DIR has both, else DIR.
fs::path folder_of(const DataSource& src, Part part, bool& split) {
    const fs::path dir(src.dir);
    std::error_code ec;
    split = fs::is_directory(dir / "train", ec) && fs::is_directory(dir / "test", ec);
    return split ? dir / (part == Part::train ? "train" : "test") : dir;
}

/// The images of a folder source's part: DIR/train and DIR/test, or DIR split 9:1 in name order.
ImageSet load_folder(const DataSource& src, Part part, int n_bits, int limit, const std::string& name) {
    bool split = false;
    const fs::path from = folder_of(src, part, split);
    const bijou::ImageFolderShape shape = bijou::image_folder_shape(from);
    check_size(shape.height, shape.width, name);  // before any image is decoded
    const int channels = shape.channels;
    const bijou::ImageFolder f = bijou::read_image_folder(from, channels);
    int first = 0, n = f.count;
    if (!split) {  // the last tenth (at least one image) is the test set
        if (f.count < 2)
            throw bijou::invalid_argument(name + ": one PNG cannot be split into training and test images (add more, "
                                          "or make " + src.dir + "/train and " + src.dir + "/test)");
        const int test = std::max(1, f.count / 10);
        first = part == Part::train ? 0 : f.count - test;
        n = part == Part::train ? f.count - test : test;
    }
    if (limit > 0) n = std::min(n, limit);
    ImageSet s;
    s.x = pad(n, channels, f.height, f.width, n_bits, name,
              [&](int i, int c, int r, int q) { return f.at(first + i, c, r, q); });
    s.channels = channels, s.rows = f.height, s.cols = f.width;
    return s;
}

}  // namespace

ImageSet load_images(const DataSource& src, Part part, int n_bits, int limit) {
    const bool train = part == Part::train;
    const std::string name = src.spec() + (train ? " (training images)" : " (test images)");
    ImageSet s;
    if (src.kind == "mnist") {
        const bijou::IdxDataset d = bijou::load_idx_dataset(src.dir, train ? "train" : "t10k");
        const auto& im = d.images;
        const int n = limit > 0 ? std::min(limit, im.count) : im.count;
        s.x = pad(n, 1, im.rows, im.cols, n_bits, name, [&](int i, int, int r, int q) { return im.at(i, r, q); });
        s.labels.assign(d.labels.begin(), d.labels.begin() + n);
        s.channels = 1, s.rows = im.rows, s.cols = im.cols;
    } else if (src.kind == "cifar10") {
        const bijou::Cifar10Data d = bijou::load_cifar10(src.dir, train);
        const int n = limit > 0 ? std::min(limit, d.count) : d.count;
        s.x = pad(n, bijou::cifar10_channels, bijou::cifar10_size, bijou::cifar10_size, n_bits, name,
                  [&](int i, int c, int r, int q) { return d.at(i, c, r, q); });
        s.labels.assign(d.labels.begin(), d.labels.begin() + n);
        s.channels = bijou::cifar10_channels, s.rows = s.cols = bijou::cifar10_size;
    } else if (src.kind == "folder") {
        s = load_folder(src, part, n_bits, limit, name);
    } else {
        throw bijou::invalid_argument("unknown data kind '" + src.kind + "'");
    }
    if (s.count() == 0) throw bijou::invalid_argument(name + ": no images");
    s.name = name;
    return s;
}

int source_channels(const DataSource& src) {
    if (src.kind == "mnist") return 1;
    if (src.kind == "cifar10") return bijou::cifar10_channels;
    if (src.kind == "folder") {
        bool split = false;
        return bijou::image_folder_shape(folder_of(src, Part::train, split)).channels;
    }
    throw bijou::invalid_argument("unknown data kind '" + src.kind + "'");
}

}  // namespace mnist_glow
