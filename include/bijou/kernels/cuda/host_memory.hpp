// bijou/kernels/cuda/host_memory.hpp — CudaHost's "device" memory: host pages that only kernels may touch.
//
// HostExec (kernels/cuda/exec.hpp) carves every Buffer<CudaHost, U> out of one reserved range of pages
// (mmap, 64 GiB of address space, MAP_NORESERVE) and keeps the range inaccessible (PROT_NONE) except
// while one of its primitives runs (for_each, segment_reduce, gemm, the copies), which open it for the
// call: two mprotect calls per kernel, whatever the number of buffers. Host code that reads or writes backend
// memory outside a kernel, which would crash or read garbage on a real GPU, therefore crashes the
// CudaHost test run instead (SIGSEGV at the offending line) rather than passing by luck. This makes
// CudaHost a faithful stand-in for Cuda in the test suite. CudaHost is for tests: one thread at a
// time may run its kernels. Without POSIX mmap the pages are plain, unguarded heap memory.
#pragma once

#include <algorithm>
#include <cstddef>
#include <map>
#include <mutex>
#include <new>
#include <utility>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <sys/mman.h>
#include <unistd.h>
#define BIJOU_GUARDED_PAGES 1
#endif

namespace bijou::kernels::cuda_body {

/// One reserved range of address space that every guarded buffer is carved from, inaccessible
/// (PROT_NONE) except while a kernel runs: opening and closing it is one mprotect call over the
/// used part, whatever the number of buffers.
class GuardedPages {
public:
    static GuardedPages& instance() {
        static GuardedPages g;
        return g;
    }

    /// `bytes` (a multiple of the page size) of zeros; accessible now only if a kernel is running.
    void* allocate(std::size_t bytes) {
        const std::lock_guard<std::mutex> lock(mutex_);
        std::size_t offset = 0;
        bool found = false;
        for (auto it = free_.begin(); it != free_.end(); ++it)
            if (it->second >= bytes) {  // first fit; the rest of the block stays free
                offset = it->first;
                if (it->second > bytes) free_[offset + bytes] = it->second - bytes;
                free_.erase(it);
                found = true;
                break;
            }
        if (!found) {
            if (bytes > capacity_ - used_) throw std::bad_alloc();
            offset = used_;
            used_ += bytes;
        }
        char* p = base_ + offset;
        protect(p, bytes, depth_ > 0);
        return p;
    }

    /// Gives the pages back (their contents are dropped: they read as zeros when reused).
    void release(void* ptr, std::size_t bytes) {
        const std::lock_guard<std::mutex> lock(mutex_);
        char* p = static_cast<char*>(ptr);
#if defined(BIJOU_GUARDED_PAGES)
        (void)madvise(p, bytes, MADV_DONTNEED);
#else
        std::fill_n(p, bytes, char(0));
#endif
        std::size_t offset = std::size_t(p - base_), size = bytes;
        auto next = free_.find(offset + size);  // coalesce with the following free block
        if (next != free_.end()) size += next->second, free_.erase(next);
        auto prev = free_.lower_bound(offset);  // and with the preceding one
        if (prev != free_.begin()) {
            --prev;
            if (prev->first + prev->second == offset) {
                offset = prev->first, size += prev->second;
                free_.erase(prev);
            }
        }
        if (offset + size == used_) used_ = offset;  // the top block: lower the mark
        else free_[offset] = size;
    }

    void open() {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (depth_++ == 0 && used_ > 0) protect(base_, used_, true);
    }
    void close() {
        const std::lock_guard<std::mutex> lock(mutex_);
        if (--depth_ == 0 && used_ > 0) protect(base_, used_, false);
    }

    static std::size_t round_up(std::size_t bytes) {
#if defined(BIJOU_GUARDED_PAGES)
        const std::size_t page = std::size_t(sysconf(_SC_PAGESIZE));
        return (bytes + page - 1) / page * page;
#else
        return (bytes + 63) / 64 * 64;
#endif
    }

private:
    GuardedPages() {
#if defined(BIJOU_GUARDED_PAGES)
        void* p = mmap(nullptr, capacity_, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) throw std::bad_alloc();
        base_ = static_cast<char*>(p);
#else
        capacity_ = std::size_t(1) << 30;
        base_ = static_cast<char*>(::operator new(capacity_));
        std::fill_n(base_, capacity_, char(0));
#endif
    }

    static void protect(void* p, std::size_t bytes, bool accessible) {
#if defined(BIJOU_GUARDED_PAGES)
        (void)mprotect(p, bytes, accessible ? PROT_READ | PROT_WRITE : PROT_NONE);
#else
        (void)p, (void)bytes, (void)accessible;
#endif
    }

    std::mutex mutex_;
    char* base_ = nullptr;
    std::size_t capacity_ = std::size_t(64) << 30;  // address space only (MAP_NORESERVE)
    std::size_t used_ = 0;                           // [base_, base_ + used_) has been handed out
    std::map<std::size_t, std::size_t> free_;        // offset → size of free blocks below used_
    int depth_ = 0;
};

/// Opens the guarded pages for the life of one executor primitive.
struct KernelScope {
    KernelScope() { GuardedPages::instance().open(); }
    ~KernelScope() { GuardedPages::instance().close(); }
    KernelScope(const KernelScope&) = delete;
    KernelScope& operator=(const KernelScope&) = delete;
};

/// n zero-initialised scalars on their own guarded pages (move-only).
template <class U>
class GuardedBuffer {
public:
    GuardedBuffer() = default;
    explicit GuardedBuffer(std::size_t n) : n_(n) {
        if (n == 0) return;
        bytes_ = GuardedPages::round_up(n * sizeof(U));
        p_ = static_cast<U*>(GuardedPages::instance().allocate(bytes_));
    }
    GuardedBuffer(GuardedBuffer&& o) noexcept
        : p_(std::exchange(o.p_, nullptr)), n_(std::exchange(o.n_, 0)), bytes_(std::exchange(o.bytes_, 0)) {}
    GuardedBuffer& operator=(GuardedBuffer&& o) noexcept {
        std::swap(p_, o.p_);
        std::swap(n_, o.n_);
        std::swap(bytes_, o.bytes_);
        return *this;
    }
    GuardedBuffer(const GuardedBuffer&) = delete;
    GuardedBuffer& operator=(const GuardedBuffer&) = delete;
    ~GuardedBuffer() {
        if (p_ != nullptr) GuardedPages::instance().release(p_, bytes_);
    }

    U* data() { return p_; }
    const U* data() const { return p_; }
    std::size_t size() const { return n_; }

private:
    U* p_ = nullptr;
    std::size_t n_ = 0, bytes_ = 0;
};

}  // namespace bijou::kernels::cuda_body
