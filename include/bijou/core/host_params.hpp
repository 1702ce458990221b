// bijou/core/host_params.hpp — running a small host-side computation for a device-backend component.
//
// Some components are cheap enough that their device path is their host code: a vector base
// distribution reads n×D values and K×D parameters. HostParams<B, T, N> copies N tensors' values from
// backend memory to host mirrors and points the handles at them (and, for a backward, at zeroed host
// gradient arrays); send_grads() adds those host gradients to the backend's; the destructor points the
// handles back. The data arrays are copied with to_host / to_device. Each use allocates its mirrors
// (host) and one backend scratch: use it only where a call is small next to a training step.
#pragma once

#include <array>
#include <cstddef>
#include <vector>

#include "bijou/core/memory.hpp"
#include "bijou/core/params.hpp"
#include "bijou/core/random.hpp"

namespace bijou::detail {

template <Backend B, class T, std::size_t N>
class HostParams {
public:
    HostParams(std::array<TensorRef<T>*, N> refs, bool with_grads) : refs_(refs) {
        for (std::size_t i = 0; i < N; ++i) {
            saved_[i] = *refs_[i];
            values_[i].resize(saved_[i].size);
            download(B{}, values_[i].data(), saved_[i].value, saved_[i].size);
            refs_[i]->value = values_[i].data();
            if (with_grads) {
                grads_[i].assign(saved_[i].size, T(0));
                refs_[i]->grad = grads_[i].data();
            }
        }
    }
    HostParams(const HostParams&) = delete;
    HostParams& operator=(const HostParams&) = delete;
    ~HostParams() {
        for (std::size_t i = 0; i < N; ++i) *refs_[i] = saved_[i];
    }

    /// Adds the host gradients to the tensors' gradients in backend memory.
    void send_grads() {
        for (std::size_t i = 0; i < N; ++i) {
            Buffer<B, T> inc(grads_[i].size());
            upload(B{}, inc.data(), grads_[i].data(), grads_[i].size());
            accumulate(B{}, saved_[i].grad, inc.data(), grads_[i].size());
        }
    }

private:
    std::array<TensorRef<T>*, N> refs_;
    std::array<TensorRef<T>, N> saved_{};
    std::array<std::vector<T>, N> values_, grads_;
};

/// n scalars of backend memory copied to a host vector.
template <Backend B, class U>
std::vector<U> to_host(const U* p, std::size_t n) {
    std::vector<U> h(n);
    download(B{}, h.data(), p, n);
    return h;
}

/// A small base distribution's log_prob / backward / sample on a device backend, by its host code
/// (d.log_prob_host, d.backward_host, d.sample_host) on copies of the data and of its N tensors.
template <Backend B, class T, std::size_t N, class Dist>
void log_prob_on_host(const Dist& d, std::array<TensorRef<T>*, N> refs, const T* z, double* lp, int n, int D) {
    const HostParams<B, T, N> host(refs, false);
    const std::vector<T> hz = to_host<B>(z, std::size_t(n) * D);
    std::vector<double> hlp(static_cast<std::size_t>(n));
    d.log_prob_host(hz.data(), hlp.data(), n);
    upload(B{}, lp, hlp.data(), hlp.size());
}

template <Backend B, class T, std::size_t N, class Dist>
void backward_on_host(Dist& d, std::array<TensorRef<T>*, N> refs, const T* z, const T* dlp, T* dz, int n, int D) {
    HostParams<B, T, N> host(refs, true);
    const std::vector<T> hz = to_host<B>(z, std::size_t(n) * D), hdlp = to_host<B>(dlp, std::size_t(n));
    std::vector<T> hdz(hz.size());
    d.backward_host(hz.data(), hdlp.data(), hdz.data(), n);
    upload(B{}, dz, hdz.data(), hdz.size());
    host.send_grads();
}

template <Backend B, class T, std::size_t N, class Dist>
void sample_on_host(const Dist& d, std::array<TensorRef<T>*, N> refs, T* z, int n, int D, double temperature,
                    Rng& rng) {
    const HostParams<B, T, N> host(refs, false);
    std::vector<T> hz(std::size_t(n) * D);
    d.sample_host(hz.data(), n, temperature, rng);
    upload(B{}, z, hz.data(), hz.size());
}

}  // namespace bijou::detail
