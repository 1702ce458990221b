// tests/unit/temp_dir.hpp — a fresh directory under the system temp dir for the file-reader tests,
// removed with everything in it at scope exit.
#pragma once

#include <filesystem>
#include <random>
#include <string>
#include <system_error>

namespace bijou_test {

struct TempDir {
    std::filesystem::path path;
    explicit TempDir(const std::string& tag = "bijou-test") {
        std::random_device rd;
        do path = std::filesystem::temp_directory_path() / (tag + "-" + std::to_string(rd()) + std::to_string(rd()));
        while (!std::filesystem::create_directory(path));
    }
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
    TempDir(const TempDir&) = delete;
    TempDir& operator=(const TempDir&) = delete;
    std::filesystem::path operator/(const std::string& name) const { return path / name; }
};

}  // namespace bijou_test
