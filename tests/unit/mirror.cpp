// core/mirror.hpp and core/arena.hpp: on CudaHost (memory of its own, guarded) data makes the round
// trip between the backend and the host; on Cpu (one memory) they are the identity: no copy, no
// storage, the very pointers given.
#include <doctest/doctest.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <type_traits>
#include <vector>

#include <bijou/core/arena.hpp>
#include <bijou/core/mirror.hpp>
#include <bijou/kernels/cpu/totals.hpp>
#include <bijou/kernels/cuda/exec.hpp>
#include <bijou/kernels/cuda/totals.hpp>

namespace unit_mirror {  // the file's own namespace (unity build: tests/CMakeLists.txt)

using namespace bijou;

namespace {

/// Backend memory read back to the host.
template <class B, class U>
std::vector<U> back(const U* p, std::size_t n) {
    std::vector<U> h(n);
    download(B{}, h.data(), p, n);
    return h;
}

/// Two tensors as a component declares them: a trainable "w" (3) and a buffer "b" (2).
struct Tensors {
    TensorRef<float> w, b;
    void declare(ParamSet<float>& ps) {
        ps.add("w", {3}, &w);
        ps.add_buffer("b", {2}, &b);
    }
};

/// A model's parameter set with values w = (1, 2, 3), b = (7, 8), mirrored on backend B.
template <class B>
struct Model {
    Tensors t;
    ParamSet<float> ps;
    Mirror<B, float> mirror;
    Model() {
        t.declare(ps);
        ps.allocate();
        for (int k = 0; k < 3; ++k) t.w[std::size_t(k)] = float(k + 1);
        t.b[0] = 7.0f;
        t.b[1] = 8.0f;
        mirror.bind(ps, [&](ParamSet<float>& view) { t.declare(view); });
    }
};

// Clears the gradients where the kernels keep them, as Flow::zero_grad does.
template <class B>
void zero_grads(Model<B>& m) {
    const std::span<float> g = m.mirror.grads(m.ps);
    kernels::zero(B{}, g.data(), g.size());
}

}  // namespace

TEST_CASE("mirror: on Cpu it is the identity: no storage, no copy, the handles stay where they are") {
    static_assert(std::is_empty_v<Mirror<Cpu, float>> && std::is_empty_v<Mirror<Reference, double>>);
    static_assert(std::is_empty_v<BackendStage<Cpu, float>> && std::is_empty_v<HostStage<Cpu, double>>);
    Model<Cpu> m;
    CHECK(m.t.w.value == m.ps.values().data());  // bind left the handles on the host copy
    CHECK(m.mirror.values(m.ps).data() == m.ps.values().data());
    CHECK(m.mirror.grads(m.ps).data() == m.ps.grads().data());
    m.ps.values()[0] = 5.0f;
    m.mirror.to_device(m.ps);
    m.mirror.to_host(m.ps);
    CHECK(m.t.w[0] == 5.0f);

    float* value = m.t.w.value;
    float* grad = m.t.w.grad;
    m.t.w.grad[1] = 1.0f;
    {
        auto host = m.mirror.on_host(HostCopy::both, m.t.w);
        CHECK(m.t.w.value == value);
        CHECK(m.t.w.grad == grad);
        m.t.w.grad[1] += 2.0f;  // gradients accumulate where they live
        host.send_grads();
    }
    CHECK(m.t.w.grad[1] == 3.0f);
    zero_grads(m);
    CHECK(m.t.w.grad[1] == 0.0f);

    float h[4] = {1, 2, 3, 4};
    BackendStage<Cpu, float> to_kernels;
    HostStage<Cpu, float> to_host;
    CHECK(to_kernels.in(h, 4) == h);
    CHECK(to_kernels.out(h, 4) == h);
    CHECK(to_host.in(h, 4) == h);
    CHECK(to_host.out(h, 4) == h);
}

TEST_CASE("mirror: on CudaHost the parameters make the to_device / to_host round trip") {
    Model<CudaHost> m;
    // bind copied the values and buffers to backend memory and pointed the handles there
    CHECK(m.t.w.value != m.ps.values().data());
    CHECK(m.t.w.value == m.mirror.values(m.ps).data());
    CHECK(m.t.w.grad == m.mirror.grads(m.ps).data());
    CHECK(back<CudaHost>(m.t.w.value, 3) == std::vector<float>{1, 2, 3});
    CHECK(back<CudaHost>(m.t.b.value, 2) == std::vector<float>{7, 8});

    // host edits reach the kernels' copy only through to_device ...
    m.ps.values()[2] = 30.0f;
    m.ps.buffers()[0] = 70.0f;
    CHECK(back<CudaHost>(m.t.w.value, 3)[2] == 3.0f);
    m.mirror.to_device(m.ps);
    CHECK(back<CudaHost>(m.t.w.value, 3) == std::vector<float>{1, 2, 30});
    CHECK(back<CudaHost>(m.t.b.value, 2) == std::vector<float>{70, 8});

    // ... and the kernels' changes reach the host copy through to_host (values and buffers)
    fill(CudaHost{}, m.t.w.value, 3, -1.0f);
    fill(CudaHost{}, m.t.b.value, 2, -2.0f);
    CHECK(m.ps.values()[0] == 1.0f);
    m.mirror.to_host(m.ps);
    CHECK(std::vector<float>(m.ps.values().begin(), m.ps.values().end()) == std::vector<float>{-1, -1, -1});
    CHECK(std::vector<float>(m.ps.buffers().begin(), m.ps.buffers().end()) == std::vector<float>{-2, -2});

    fill(CudaHost{}, m.t.w.grad, 3, 4.0f);
    zero_grads(m);
    CHECK(back<CudaHost>(m.t.w.grad, 3) == std::vector<float>{0, 0, 0});
}

TEST_CASE("mirror: on CudaHost on_host gives host copies for a scope, and sends gradients back with +=") {
    Model<CudaHost> m;
    const TensorRef<float> bound = m.t.w, bound_b = m.t.b;
    fill(CudaHost{}, m.t.w.grad, 3, 1.0f);
    {
        auto host = m.mirror.on_host(HostCopy::both, m.t.w, m.t.b);
        // the handles point at host memory (a host read of backend memory would crash: guarded pages)
        CHECK(m.t.w.value != bound.value);
        CHECK(m.t.w[2] == 3.0f);
        CHECK(m.t.b[1] == 8.0f);
        CHECK(m.t.w.grad[0] == 0.0f);  // host gradients start at zero
        m.t.w.grad[0] += 0.5f;
        m.t.w.grad[2] += 2.0f;
        host.send_grads();
    }
    // restored, and the increments were added to the backend's gradients
    CHECK(m.t.w.value == bound.value);
    CHECK(m.t.w.grad == bound.grad);
    CHECK(m.t.b.value == bound_b.value);
    CHECK(back<CudaHost>(m.t.w.grad, 3) == std::vector<float>{1.5f, 1.0f, 3.0f});
    {
        const auto host = m.mirror.on_host(HostCopy::grads, m.t.w);  // gradients only: the values stay put
        CHECK(m.t.w.value == bound.value);
        CHECK(m.t.w.grad != bound.grad);
    }
    {
        const auto host = m.mirror.on_host(HostCopy::values, m.t.w);  // values only: the gradients stay put
        CHECK(m.t.w.grad == bound.grad);
    }
    // an exception inside the scope restores the handles too
    try {
        const auto host = m.mirror.on_host(HostCopy::values, m.t.w);
        throw error("host code failed");
    } catch (const error&) {
    }
    CHECK(m.t.w.value == bound.value);
    // a host code's edit of a values copy stays on the host
    {
        const auto host = m.mirror.on_host(HostCopy::values, m.t.w);
        m.t.w[0] = 100.0f;
    }
    CHECK(back<CudaHost>(m.t.w.value, 3) == std::vector<float>{1, 2, 3});
}

TEST_CASE("mirror: on CudaHost the stages copy both ways, and grow to the largest count seen") {
    BackendStage<CudaHost, double> to_kernels;
    const double h[3] = {1.5, -2.5, 4.0};
    const double* p = to_kernels.in(h, 3);
    CHECK(p != h);
    CHECK(back<CudaHost>(p, 3) == std::vector<double>{1.5, -2.5, 4.0});
    double out[2] = {0, 0};
    fill(CudaHost{}, to_kernels.out(out, 2), 2, 9.0);
    CHECK(out[0] == 0.0);
    to_kernels.finish(out, 2);
    CHECK((out[0] == 9.0 && out[1] == 9.0));
    CHECK(to_kernels.in(h, 1) == p);  // a smaller count reuses the memory

    Buffer<CudaHost, float> dev(4);
    fill(CudaHost{}, dev.data(), 4, 3.0f);
    HostStage<CudaHost, float> to_host;
    const float* q = to_host.in(dev.data(), 4);
    CHECK(std::vector<float>(q, q + 4) == std::vector<float>{3, 3, 3, 3});
    float* w = to_host.out(dev.data(), 4);
    for (int k = 0; k < 4; ++k) w[k] = float(k);
    to_host.finish(dev.data(), 4);
    CHECK(back<CudaHost>(dev.data(), 4) == std::vector<float>{0, 1, 2, 3});
}

TEST_CASE_TEMPLATE("arena: per-sample buffers grow to the largest batch seen, the arena is regrown only when short", B,
                   Cpu, CudaHost) {
    Arena<B, float> a(3, 5);  // data_size 3, latent_size 5
    a.prepare(8, 100, false);
    CHECK(a.capacity() == 8);
    float* ws = a.ws();
    float* z = a.z();
    CHECK(ws != nullptr);
    CHECK(a.xrec() == nullptr);  // no memory-saving buffers unless asked
    a.prepare(4, 60, false);  // smaller: nothing moves
    CHECK(a.capacity() == 8);
    CHECK(a.ws() == ws);
    CHECK(a.z() == z);
    a.prepare(8, 100, true);  // the rebuild buffers, for 8 samples
    CHECK(a.xrec() != nullptr);
    CHECK(a.ldtmp() != nullptr);
    CHECK(back<B>(a.xrec(), 24).size() == 24);
    a.prepare(16, 100, false);  // a larger batch: the per-sample buffers grow, the arena stays
    CHECK(a.capacity() == 16);
    CHECK(a.ws() == ws);
    CHECK(back<B>(a.z(), 16 * 5).size() == 80);
    CHECK(back<B>(a.dx(), 16 * 3).size() == 48);
    CHECK(back<B>(a.ld(), 16).size() == 16);
    a.prepare(2, 400, false);  // a larger arena
    CHECK(back<B>(a.ws(), 400).size() == 400);
}

TEST_CASE("arena: staging is the identity on Cpu and a round trip through backend memory on CudaHost") {
    std::vector<float> x{1, 2, 3, 4, 5, 6}, y(6, 0.0f);
    {
        Arena<Cpu, float> a(3, 3);
        a.prepare(2, 0, false);
        CHECK(a.stage_in(x.data(), 6) == x.data());
        CHECK(a.stage_out(y.data(), 6) == y.data());
        a.ld()[1] = 2.5;
        CHECK(a.host_log_det(2) == a.ld());
        CHECK(a.host_log_prob(2) == a.lp());
    }
    Arena<CudaHost, float> a(3, 3);
    a.prepare(2, 0, false);
    const float* in = a.stage_in(x.data(), 6);
    CHECK(in != x.data());
    float* out = a.stage_out(y.data(), 6);
    copy_rows(CudaHost{}, out, 6, in, 6, 1, 6);  // a "kernel": out = in
    a.finish_out(y.data(), 6);
    CHECK(y == x);
    fill(CudaHost{}, a.ld(), 2, 1.25);
    fill(CudaHost{}, a.lp(), 2, -3.0);
    const double* ld = a.host_log_det(2);
    const double* lp = a.host_log_prob(2);
    CHECK((ld[0] == 1.25 && ld[1] == 1.25 && lp[0] == -3.0 && lp[1] == -3.0));
}

TEST_CASE("host allocator: arrays of 2 MiB or more start on a 2 MiB boundary, smaller ones on 64 bytes") {
    HostAllocator<float> a;
    const std::size_t big = (std::size_t(2) << 20) / sizeof(float) + 5, small = 1000;
    float* p = a.allocate(big);
    float* q = a.allocate(small);
    CHECK(reinterpret_cast<std::uintptr_t>(p) % (std::size_t(2) << 20) == 0);
    CHECK(reinterpret_cast<std::uintptr_t>(q) % 64 == 0);
    p[0] = 1.f;
    p[big - 1] = 2.f;  // both ends of each array are writable
    q[small - 1] = 3.f;
    CHECK(p[0] + p[big - 1] + q[small - 1] == 6.f);
    a.deallocate(q, small);
    a.deallocate(p, big);

    // a Cpu Buffer holds zeros in such memory, and regrows without keeping the old array
    Buffer<Cpu, double> buf(big);
    CHECK(reinterpret_cast<std::uintptr_t>(buf.data()) % (std::size_t(2) << 20) == 0);
    CHECK(buf.size() == big);
    CHECK(buf.data()[big - 1] == 0.0);
    buf.data()[3] = 7.0;
    buf.assign_zeros(small);
    CHECK(buf.size() == small);
    CHECK(buf.data()[3] == 0.0);
}

}  // namespace unit_mirror
