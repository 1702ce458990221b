// mnist_glow_compare_checkpoints A B TOLERANCE — the largest absolute difference between the float32
// model tensors of two safetensors checkpoints (the optimizer's state left out); exits 1 when it is
// above TOLERANCE or the files do not hold the same tensors. A test tool: runs_check.cmake
// compares a data-parallel run with a one-process run of the same training.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace {

struct File {
    std::vector<unsigned char> bytes;
    nlohmann::json header;
    std::size_t data = 0;  // offset of the data section
};

File read(const char* path) {
    File f;
    std::ifstream in(path, std::ios::binary);
    f.bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    std::uint64_t n = 0;
    if (f.bytes.size() >= 8)
        for (int i = 7; i >= 0; --i) n = n << 8 | f.bytes[std::size_t(i)];
    if (f.bytes.size() < 8 || n > f.bytes.size() - 8) {
        std::fprintf(stderr, "cannot read the safetensors file %s\n", path);
        std::exit(1);
    }
    f.header = nlohmann::json::parse(f.bytes.begin() + 8, f.bytes.begin() + 8 + std::ptrdiff_t(n));
    f.data = 8 + std::size_t(n);
    return f;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s A B TOLERANCE\n", argv[0]);
        return 2;
    }
    const File a = read(argv[1]), b = read(argv[2]);
    const double tolerance = std::atof(argv[3]);
    double largest = 0.0;
    std::string where;
    std::size_t tensors = 0, values = 0;
    for (const auto& [name, t] : a.header.items()) {
        if (name == "__metadata__" || name.rfind("optimizer.", 0) == 0 || t.at("dtype") != "F32") continue;
        if (!b.header.contains(name) || b.header.at(name).at("shape") != t.at("shape")) {
            std::fprintf(stderr, "%s has no tensor %s of the same shape\n", argv[2], name.c_str());
            return 1;
        }
        const auto ra = t.at("data_offsets"), rb = b.header.at(name).at("data_offsets");
        const std::size_t n = (ra[1].get<std::size_t>() - ra[0].get<std::size_t>()) / 4;
        for (std::size_t k = 0; k < n; ++k) {
            float x = 0, y = 0;
            std::memcpy(&x, a.bytes.data() + a.data + ra[0].get<std::size_t>() + 4 * k, 4);
            std::memcpy(&y, b.bytes.data() + b.data + rb[0].get<std::size_t>() + 4 * k, 4);
            const double d = std::abs(double(x) - double(y));
            if (!(d <= largest)) largest = d, where = name;  // NaN counts as the largest
        }
        ++tensors, values += n;
    }
    std::printf("largest parameter difference over %zu tensors (%zu values): %.3g (%s); tolerance %.3g\n", tensors, values,
                largest, where.c_str(), tolerance);
    return largest <= tolerance && tensors > 0 ? 0 : 1;
}
