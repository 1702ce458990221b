// bijou/kernels/cpu/pass_help.hpp — a conditioner pass's idle threads help with the others' products.
//
// for_net_chunks (kernels/cpu/conv2d.hpp) runs each thread's chunks on that thread. A thread that has
// finished its chunks while another is still in its last ones would wait at the end of the pass (the
// threads' speeds differ from run to run: 2–3% of config c's and d's training on 2 threads went to
// that wait). Instead it helps: while a pass has an idle thread, every product a working thread
// starts (detail::split_c, kernels/cpu/gemm.hpp) is offered in column or row blocks (help_offer),
// which the working thread and the idle ones take one at a time. The packed GEMM computes each
// element of C in one fixed order whoever multiplies its block (kernels/cpu/sgemm.hpp), so a helped
// pass gives the same bits as an unhelped one, on every run.
//
// Protocol, per thread of the pass: a slot holds the product it offers and one 64-bit ticket
// (generation, tasks, next task); a task is claimed by a compare-and-swap of the ticket, so a
// stale reader never claims a task of another product; the owner waits until every claimed task is
// done before its product's stack frame goes away. No allocation, no locks.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace bijou::kernels::detail {

inline void help_pause() {
#if defined(__SSE2__)
    _mm_pause();
#endif
}

/// A wait that spins briefly, then yields the core at each step: on a machine with more threads
/// than free cores (ctest's two test processes, another program) the thread waited for may need it.
struct HelpBackoff {
    int spins = 0;
    void wait() {
        if (++spins < 2048) help_pause();
        else std::this_thread::yield();
    }
};

/// One thread's offered product: its tasks, run(ctx, k) for task k; the ticket packs generation
/// (24 bits), task count and next task (20 bits each).
struct alignas(64) HelpSlot {
    std::atomic<std::uint64_t> ticket{0};
    std::atomic<int> done{0};
    std::atomic<void (*)(const void*, int)> run{nullptr};
    std::atomic<const void*> ctx{nullptr};
};

/// The pass's threads: how many still run chunks, how many are idle, and their slots.
template <int Slots>
struct HelpBoard {
    std::atomic<int> working{0}, idle{0};
    HelpSlot slot[Slots];
};

/// What a thread of a pass sees: its board (null outside a pass's chunks) and its index there.
struct HelpContext {
    std::atomic<int>* idle = nullptr;
    HelpSlot* slots = nullptr;
    int self = 0;
};
inline thread_local HelpContext help_context;

/// Tasks that helping threads have taken since the program started (what tests check).
inline std::atomic<long> help_tasks_taken{0};

namespace help {
inline constexpr std::uint64_t field = (std::uint64_t(1) << 20) - 1;
inline std::uint64_t pack(std::uint64_t gen, int tasks, int next) {
    return (gen << 40) | (std::uint64_t(tasks) << 20) | std::uint64_t(next);
}
/// Claims the next task of the slot's product: its index, or -1 when none is left.
inline int claim(HelpSlot& s) {
    std::uint64_t t = s.ticket.load(std::memory_order_acquire);
    for (;;) {
        const int next = int(t & field), tasks = int((t >> 20) & field);
        if (next >= tasks) return -1;
        if (s.ticket.compare_exchange_weak(t, t + 1, std::memory_order_acq_rel, std::memory_order_acquire))
            return next;
    }
}
template <class Task>
void trampoline(const void* ctx, int k) {
    (*static_cast<const Task*>(ctx))(k);
}
}  // namespace help

/// Whether a product started now should be offered: inside a pass's chunks, with an idle thread.
inline bool help_wanted() {
    const HelpContext& c = help_context;
    return c.idle != nullptr && c.idle->load(std::memory_order_relaxed) > 0;
}

/// Runs task(0 … tasks−1) (tasks ≤ 2^20) with the pass's idle threads taking some; returns when
/// all are done. Only inside a pass's chunks (help_wanted).
template <class Task>
void help_offer(int tasks, const Task& task) {
    HelpSlot& s = help_context.slots[help_context.self];
    const std::uint64_t gen = (s.ticket.load(std::memory_order_relaxed) >> 40) + 1;
    s.run.store(&help::trampoline<Task>, std::memory_order_relaxed);
    s.ctx.store(&task, std::memory_order_relaxed);
    s.done.store(0, std::memory_order_relaxed);
    s.ticket.store(help::pack(gen & ((std::uint64_t(1) << 24) - 1), tasks, 0), std::memory_order_release);
    for (int k; (k = help::claim(s)) >= 0;) {
        task(k);
        s.done.fetch_add(1, std::memory_order_release);
    }
    for (HelpBackoff backoff; s.done.load(std::memory_order_acquire) < tasks;) backoff.wait();
}

/// A thread done with its chunks: takes the others' offered tasks until no thread runs chunks.
template <int Slots>
void help_until_done(HelpBoard<Slots>& b, int self, int threads) {
    b.idle.fetch_add(1, std::memory_order_relaxed);
    HelpBackoff backoff;
    while (b.working.load(std::memory_order_acquire) > 0) {
        bool took = false;
        for (int u = 0; u < threads; ++u) {
            if (u == self) continue;
            HelpSlot& s = b.slot[u];
            for (int k; (k = help::claim(s)) >= 0;) {
                s.run.load(std::memory_order_relaxed)(s.ctx.load(std::memory_order_relaxed), k);
                s.done.fetch_add(1, std::memory_order_release);
                help_tasks_taken.fetch_add(1, std::memory_order_relaxed);
                took = true;
            }
        }
        if (took) backoff = {};
        else backoff.wait();
    }
}

}  // namespace bijou::kernels::detail
