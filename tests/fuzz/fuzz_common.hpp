// Shared by bijou's libFuzzer targets and their seed generator: the fuzzed model, a scratch file
// that each input is written to (the readers under test take a path), and file helpers.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>

#include <unistd.h>

namespace bijou_fuzz {

namespace fs = std::filesystem;

/// A directory under the system temp directory ($TMPDIR), unique to this process, removed (with
/// its files) when the process exits normally.
class ScratchDir {
public:
    explicit ScratchDir(const std::string& tag) {
        dir_ = fs::temp_directory_path() / ("bijou_fuzz_" + tag + "_" + std::to_string(::getpid()));
        std::error_code ec;
        fs::remove_all(dir_, ec);
        fs::create_directories(dir_);
    }
    ~ScratchDir() {
        std::error_code ec;
        fs::remove_all(dir_, ec);
    }
    ScratchDir(const ScratchDir&) = delete;
    ScratchDir& operator=(const ScratchDir&) = delete;

    /// Replaces the contents of the file `name` in the directory with [data, data + size) and returns
    /// its path; aborts if it cannot (an environment problem, reported as such).
    fs::path write(const std::string& name, const std::uint8_t* data, std::size_t size) const {
        const fs::path p = dir_ / name;
        std::FILE* f = std::fopen(p.c_str(), "wb");
        if (!f || (size > 0 && std::fwrite(data, 1, size, f) != size) || std::fclose(f) != 0) {
            std::perror(("bijou fuzz: cannot write " + p.string()).c_str());
            std::abort();
        }
        return p;
    }
    const fs::path& path() const { return dir_; }

private:
    fs::path dir_;
};

/// For a reader's successful result that disagrees with itself (a finding): reports `what` for
/// `target` and aborts, so libFuzzer saves the input.
inline void check(bool ok, const char* target, const char* what) {
    if (!ok) {
        std::fprintf(stderr, "bijou %s: inconsistent result: %s\n", target, what);
        std::abort();
    }
}

inline void write_file(const fs::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), std::streamsize(bytes.size()));
    if (!f) {
        std::fprintf(stderr, "bijou fuzz: cannot write %s\n", p.c_str());
        std::exit(1);
    }
}

}  // namespace bijou_fuzz
