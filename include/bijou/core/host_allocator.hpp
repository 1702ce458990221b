// bijou/core/host_allocator.hpp — the allocator of the host backends' Buffers (core/memory.hpp):
// large arrays on transparent huge pages.
//
// HostAllocator<U> is a standard allocator. An array of 2 MiB or more starts on a 2 MiB boundary,
// is rounded up to whole 2 MiB pages, and on Linux is advised MADV_HUGEPAGE (Debian's default THP
// mode is "madvise": without the advice a process gets 4 KiB pages only). Smaller arrays are plain
// 64-byte-aligned allocations. Why: a training step walks activation planes whose channel rows lie
// 16,384 floats (64 KiB) apart at Glow's first level, so the GEMM's packing and stores touch a new
// 4 KiB page on every row, and the TLB misses cost ~15% of a depth-18 convolution's forward
// (1.87 → 1.58 ms, bench GlowGemm shape 0 in isolation, 2026-12-03). Where THP is off the advice is
// ignored and nothing else changes. The memory is the same (the arena's pages are all touched
// anyway), up to 2 MiB of rounding per large array. Allocation only; no zeroing (std::vector does).
#pragma once

#include <cstddef>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace bijou {

template <class U>
struct HostAllocator {
    using value_type = U;
    static constexpr std::size_t huge_page = std::size_t(2) << 20;
    static constexpr std::size_t small_align = 64;

    HostAllocator() = default;
    template <class V>
    HostAllocator(const HostAllocator<V>&) {}

    U* allocate(std::size_t n) {
        const std::size_t bytes = n * sizeof(U);
        if (bytes < huge_page) return static_cast<U*>(::operator new(bytes, std::align_val_t(small_align)));
        const std::size_t rounded = (bytes + huge_page - 1) / huge_page * huge_page;
        void* p = ::operator new(rounded, std::align_val_t(huge_page));
#if defined(__linux__) && defined(MADV_HUGEPAGE)
        (void)madvise(p, rounded, MADV_HUGEPAGE);  // advice only: a failure changes nothing but speed
#endif
        return static_cast<U*>(p);
    }
    void deallocate(U* p, std::size_t n) {
        const std::size_t bytes = n * sizeof(U);
        ::operator delete(p, std::align_val_t(bytes < huge_page ? small_align : huge_page));
    }

    template <class V>
    bool operator==(const HostAllocator<V>&) const {
        return true;
    }
};

}  // namespace bijou
