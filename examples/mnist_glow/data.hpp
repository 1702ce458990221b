// examples/mnist_glow/data.hpp — the image data mnist_glow trains on, whatever its source (--data):
//
//   mnist:DIR    an IDX data set (train-images-idx3-ubyte, train-labels-idx1-ubyte, t10k-…; raw or
//                .gz): 1 channel, up to 32×32 (MNIST's 28×28), with labels. A bare DIR means mnist:DIR.
//   cifar10:DIR  CIFAR-10's binary version (data_batch_1.bin … data_batch_5.bin, test_batch.bin):
//                3 channels, 32×32, labels 0..9.
//   folder:DIR   PNG images of one size, up to 32×32, gray (1 channel) or RGB (3), as the first file
//                is; no labels. DIR/train and DIR/test when DIR has both subfolders, else every PNG
//                of DIR, the last tenth in name order (at least one image) held out as the test set.
//
// Every image is centred and zero-padded to C×32×32, then reduced to n bits (x >> (8 − n)). The
// readers (bijou/io: idx.hpp, cifar10.hpp, image_folder.hpp) validate the files; a bad source or a
// larger image throws a bijou::error naming it. Compiled once, in data.cpp, not per model type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include <xtensor/xtensor.hpp>

#include "mnist_glow/app.hpp"

namespace mnist_glow {

inline constexpr int side = 32;              // every model is C×32×32
inline constexpr int plane = side * side;    // pixels per channel

/// A part of a data set as the models see it: (count, C, 32, 32) n-bit values and the labels.
struct ImageSet {
    xt::xtensor<std::uint8_t, 4> x;
    std::vector<std::uint8_t> labels;  // one per image; empty for a source without labels (folder)
    int channels = 1, rows = 0, cols = 0;  // the images before padding
    std::string name;                     // "cifar10:DIR (test)": for messages

    int count() const { return int(x.shape()[0]); }
    bool has_labels() const { return !labels.empty(); }
    std::size_t image_values() const { return std::size_t(channels) * plane; }  // C·32·32 = the model's D
    int real_values() const { return channels * rows * cols; }                  // C·rows·cols before padding
};

enum class Part { train, test };

/// Part `part` of `src`: its first `limit` images (0: all), n-bit. Throws bijou::error naming the
/// source and what is wrong (a reader's error, an image larger than 32×32, an empty part).
ImageSet load_images(const DataSource& src, Part part, int n_bits, int limit = 0);

}  // namespace mnist_glow
