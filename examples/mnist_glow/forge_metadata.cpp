// mnist_glow_forge_metadata IN OUT KEY=VALUE… — copies the safetensors file IN to OUT with the given
// __metadata__ fields set (added or replaced), the tensors untouched. A test tool (built with the
// tests): bad_resume_check.cmake forges checkpoints whose training state is out of range and checks
// that mnist_glow refuses them with a message rather than reading out of bounds.
// safetensors: an 8-byte little-endian header length n, n bytes of JSON, then the data, whose offsets
// in the header are relative to the data's start, so a longer or shorter header moves nothing else.
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s IN OUT [KEY=VALUE]...\n", argv[0]);
        return 2;
    }
    std::ifstream in(argv[1], std::ios::binary);
    // (istreambuf_iterator reads the buffer directly and leaves the stream's state bits alone.)
    const std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.is_open() || bytes.size() < 8) {
        std::fprintf(stderr, "%s: cannot read %s (or it is shorter than 8 bytes)\n", argv[0], argv[1]);
        return 1;
    }
    std::uint64_t n = 0;
    for (int i = 7; i >= 0; --i) n = n << 8 | bytes[std::size_t(i)];
    if (n > bytes.size() - 8) {
        std::fprintf(stderr, "%s: %s: header length %llu exceeds the file\n", argv[0], argv[1], (unsigned long long)n);
        return 1;
    }
    auto header = nlohmann::ordered_json::parse(bytes.begin() + 8, bytes.begin() + 8 + std::ptrdiff_t(n));
    for (int a = 3; a < argc; ++a) {
        const std::string kv = argv[a];
        const auto eq = kv.find('=');
        if (eq == std::string::npos) {
            std::fprintf(stderr, "%s: '%s' is not KEY=VALUE\n", argv[0], argv[a]);
            return 2;
        }
        header["__metadata__"][kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    std::string text = header.dump();
    text.append((8 - text.size() % 8) % 8, ' ');  // keep the data 8-byte aligned, as writers do
    std::ofstream out(argv[2], std::ios::binary | std::ios::trunc);
    for (int i = 0; i < 8; ++i) out.put(char(std::uint64_t(text.size()) >> (8 * i) & 0xff));
    out.write(text.data(), std::streamsize(text.size()));
    out.write(reinterpret_cast<const char*>(bytes.data()) + 8 + n, std::streamsize(bytes.size() - 8 - n));
    out.close();
    if (!out) {
        std::fprintf(stderr, "%s: cannot write %s\n", argv[0], argv[2]);
        return 1;
    }
    return 0;
}
