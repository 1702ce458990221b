"""PyTorch reference implementation of exactly bijou's models, for side-by-side benchmarks and parity.

Mirrors (see the bijou headers named below; the Reference kernels in include/bijou/kernels/reference/
are the ground truth):

* ``Glow(shape=(C, H, W), levels=L, steps_per_level=K, hidden=h)`` is
  ``bijou::Glow<Shape<C, H, W>, L, Chain<ActNorm, InvConv1x1LU, AffineCoupling>>`` with bijou's defaults
  (models/glow.hpp, models/multiscale.hpp, models/image_flow.hpp). Level l: Squeeze, K steps of
  (ActNorm, InvConv1x1LU, affine coupling with sigmoid(h + 2) scale), then a Split (l < L-1) or the
  learned TopPrior (l = L-1).
* ``RealNVP(dim=2, couplings=8, hidden=256)`` is ``bijou::RealNVP<Shape<2>>`` as examples/two_moons
  builds it (models/realnvp.hpp, bijectors/coupling.hpp, nn/mlp.hpp): alternating masks, separate
  shift and log-scale ReLU MLPs (2 hidden layers), tanh log-scales, standard normal base.
* ``SplineFlow(dim=2, couplings=4, hidden=128, bins=8, bound=5)`` is
  ``Flow<Shape<D>, Stack<RationalQuadraticCoupling>>`` (bijectors/spline_coupling.hpp,
  kernels/spline_formula.hpp) and ``MAF(dim=2, layers=8, hidden=128, transform="affine" | "spline")`` is
  ``Flow<Shape<D>, Stack<MaskedAutoregressive<AffineTransform | RationalQuadraticTransform>>>``
  (bijectors/autoregressive.hpp, nn/made.hpp), as examples/toy_density builds them.
* ``load_bijou_checkpoint(model, path)`` reads a bijou safetensors checkpoint (io/checkpoint.hpp,
  docs/checkpoints.md) with the standard library and torch only.

Conventions shared with bijou (design.md section 2): ``forward`` maps data -> latent and returns the
per-sample ``log|det dz/dx|``; ``log_prob`` is in nats per sample; per-sample log-dets and the base
log-density are accumulated in float64 whatever the parameter dtype (bijou does the same); the 1x1
convolution's weight is assembled in float64 and cast to the working dtype. Module and parameter
names equal bijou's state_dict names, so ``model.state_dict()`` has exactly a checkpoint's tensors.
"""

from __future__ import annotations

import json
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    "ActNorm",
    "InvConv1x1LU",
    "ConvNet",
    "ChannelAffineCoupling",
    "Split",
    "TopPrior",
    "StandardNormalFlow",
    "Glow",
    "Mlp",
    "VectorCoupling",
    "RealNVP",
    "rq_spline",
    "SplineCoupling",
    "SplineFlow",
    "MaskedLinear",
    "MADE",
    "MaskedAutoregressiveLayer",
    "MAF",
    "read_safetensors",
    "load_bijou_checkpoint",
    "model_from_config",
    "standard_normal_log_prob",
]

LOG_2PI = math.log(2.0 * math.pi)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """log N(z; 0, I) per sample, in float64 (distributions/standard_normal.hpp)."""
    zf = z.reshape(z.shape[0], -1)
    return -0.5 * zf.shape[1] * LOG_2PI - 0.5 * zf.pow(2).sum(1, dtype=torch.float64)


def _sum_per_sample(t: torch.Tensor) -> torch.Tensor:
    """Sum of everything but the batch dimension, accumulated in float64."""
    return t.reshape(t.shape[0], -1).sum(1, dtype=torch.float64)


def _uniform_(t: torch.Tensor, bound: float) -> None:
    with torch.no_grad():
        t.uniform_(-bound, bound)


# ------------------------------------------------------------------------------------------------
# Image bijectors. Each module's forward(x) returns (z, log_det) and inverse(z) returns (x, log_det
# of the inverse); log_det is a float64 tensor of shape (n,).


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(n, C, H, W) -> (n, 4C, H/2, W/2) with z[:, 4c + 2a + b, y, x] = x[:, c, 2y + a, 2x + b]
    (bijectors/squeeze.hpp; openai/glow's squeeze2d)."""
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4).reshape(n, 4 * c, h // 2, w // 2)


def unsqueeze(z: torch.Tensor) -> torch.Tensor:
    """The inverse of squeeze."""
    n, c4, h2, w2 = z.shape
    c = c4 // 4
    return z.reshape(n, c, 2, 2, h2, w2).permute(0, 1, 4, 2, 5, 3).reshape(n, c, 2 * h2, 2 * w2)


class ActNorm(nn.Module):
    """bijectors/actnorm.hpp: z = (x + loc) * exp(log_scale) per channel (per feature for vectors),
    log|det| = H*W*sum(log_scale). Parameters "loc", "log_scale" (C); buffer "initialized" (1).
    Starts as the identity; data-dependent init (Glow's) sets loc = -mean, log_scale = -log(sd + 1e-6)
    with the population standard deviation over (n, H, W), computed in float64."""

    def __init__(self, channels: int):
        super().__init__()
        self.loc = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))
        self.register_buffer("initialized", torch.zeros(1))
        self.init_pending = False  # set by the model's initialize(): the next forward initialises

    def _view(self, p: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return p.view(1, -1, *([1] * (x.dim() - 2)))

    def _spatial(self, x: torch.Tensor) -> int:
        return int(math.prod(x.shape[2:])) if x.dim() > 2 else 1

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        if x.shape[0] < 1:
            raise ValueError("ActNorm.initialize needs a non-empty batch")
        xd = x.double().transpose(0, 1).reshape(x.shape[1], -1)  # (C, n*HW)
        mean = xd.mean(1)
        var = (xd.pow(2).mean(1) - mean * mean).clamp_min(0.0)  # E[x^2] - m^2, as channel_moments
        sd = var.sqrt()
        if not (torch.isfinite(mean).all() and torch.isfinite(sd).all()):
            raise FloatingPointError("ActNorm.initialize: the initialisation batch is not finite")
        self.loc.copy_(-mean)
        self.log_scale.copy_(-torch.log(sd + 1e-6))
        self.initialized.fill_(1.0)

    def forward(self, x):
        if self.init_pending:
            self.initialize(x)
            self.init_pending = False
        z = (x + self._view(self.loc, x)) * torch.exp(self._view(self.log_scale, x))
        ld = self._spatial(x) * self.log_scale.sum(dtype=torch.float64)
        return z, ld.expand(x.shape[0])

    def inverse(self, z):
        x = z * torch.exp(-self._view(self.log_scale, z)) - self._view(self.loc, z)
        ld = -self._spatial(z) * self.log_scale.sum(dtype=torch.float64)
        return x, ld.expand(z.shape[0])


def random_rotation(c: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """A Haar-random orthogonal c x c matrix in float64: Q of the QR of a standard normal matrix, column j
    multiplied by sign(R_jj) (Mezzadri 2007), as bijou's detail::random_rotation. (bijou draws from its
    own mt19937_64 stream, so the values differ; the distribution is the same.)"""
    a = torch.randn(c, c, dtype=torch.float64, generator=generator)
    q, r = torch.linalg.qr(a)
    d = torch.diagonal(r)
    return q * torch.where(d < 0, -torch.ones_like(d), torch.ones_like(d))


class InvConv1x1LU(nn.Module):
    """bijectors/invconv1x1.hpp, InvConv1x1LU: z[:, :, p] = W x[:, :, p] at every position, with
    W = P L (U + diag(sign * exp(log_s))), P[c, perm[c]] = 1 (row c of W is row perm[c] of L U').
    Trainable "lower" (C x C, strictly lower part used, unit diagonal), "upper" (C x C, strictly upper
    part used), "log_s" (C); buffers "perm" (indices stored as floats) and "sign" (+-1).
    log|det| = H*W*sum(log_s). W and W^-1 (triangular solves) are formed in float64 and cast, as bijou."""

    def __init__(self, channels: int, generator: torch.Generator | None = None):
        super().__init__()
        c = channels
        self.channels = c
        self.lower = nn.Parameter(torch.zeros(c, c))
        self.upper = nn.Parameter(torch.zeros(c, c))
        self.log_s = nn.Parameter(torch.zeros(c))
        self.register_buffer("perm", torch.zeros(c))
        self.register_buffer("sign", torch.ones(c))
        self.reset_parameters(generator)

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """W0 = a random rotation, factorised W0 = P L U by partial pivoting (torch.linalg.lu gives
        A = P L U with P a permutation matrix; P[i, perm[i]] = 1)."""
        w0 = random_rotation(self.channels, generator)
        p, l, u = torch.linalg.lu(w0)
        d = torch.diagonal(u)
        self.perm.copy_(p.argmax(1).to(self.perm.dtype))
        self.sign.copy_(torch.where(d < 0, -torch.ones_like(d), torch.ones_like(d)))
        self.log_s.copy_(torch.log(d.abs()))
        self.lower.copy_(torch.tril(l, -1))
        self.upper.copy_(torch.triu(u, 1))

    def _factors(self):
        c = self.channels
        eye = torch.eye(c, dtype=torch.float64, device=self.lower.device)
        l = torch.tril(self.lower.double(), -1) + eye
        s = self.sign.double() * torch.exp(self.log_s.double())
        u = torch.triu(self.upper.double(), 1) + torch.diag(s)
        perm = self.perm.long()
        return l, u, perm

    def weight(self) -> torch.Tensor:
        """W in float64."""
        l, u, perm = self._factors()
        return (l @ u)[perm]

    def inverse_weight(self) -> torch.Tensor:
        """W^-1 = U'^-1 L^-1 P^T in float64, by forward then back substitution (as bijou)."""
        l, u, perm = self._factors()
        c = self.channels
        pt = torch.zeros(c, c, dtype=torch.float64, device=l.device)
        pt[perm, torch.arange(c, device=l.device)] = 1.0  # P^T[perm[i], i] = 1
        y = torch.linalg.solve_triangular(l, pt, upper=False, unitriangular=True)
        return torch.linalg.solve_triangular(u, y, upper=True)

    def _mix(self, m: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        # bijou stores W as a row-major (C_out, C_in) matrix; a 1x1 nn.Conv2d weight is (C_out, C_in, 1, 1).
        m = m.to(x.dtype)
        if x.dim() == 2:
            return x @ m.t()
        return F.conv2d(x, m.view(m.shape[0], m.shape[1], 1, 1))

    def _spatial(self, x):
        return int(math.prod(x.shape[2:])) if x.dim() > 2 else 1

    def forward(self, x):
        z = self._mix(self.weight(), x)
        ld = self._spatial(x) * self.log_s.sum(dtype=torch.float64)
        return z, ld.expand(x.shape[0])

    def inverse(self, z):
        x = self._mix(self.inverse_weight(), z)
        ld = -self._spatial(z) * self.log_s.sum(dtype=torch.float64)
        return x, ld.expand(z.shape[0])


def _conv(cin: int, cout: int, k: int, zero: bool) -> nn.Conv2d:
    """nn/conv2d.hpp: stride 1, 'same' zero padding, bias; weight (out, in, k, k) = PyTorch's OIHW layout.
    Init: weight then bias ~ U(-1/sqrt(in*k*k), +) (PyTorch's own default bound, drawn explicitly here),
    or all zeros."""
    conv = nn.Conv2d(cin, cout, k, padding=k // 2)
    bound = 1.0 / math.sqrt(cin * k * k)
    with torch.no_grad():
        if zero:
            conv.weight.zero_()
            conv.bias.zero_()
        else:
            _uniform_(conv.weight, bound)
            _uniform_(conv.bias, bound)
    return conv


class ConvNet(nn.Sequential):
    """nn/convnet.hpp, Glow's NN(): 3x3 conv (in -> hidden) -> ReLU -> 1x1 conv (hidden -> hidden) -> ReLU
    -> 3x3 conv (hidden -> out); no ActNorm inside and no output scale factor (unlike openai/glow).
    State_dict "0.weight", "0.bias", "2.…", "4.…" (nn.Sequential numbering, as bijou). The last conv
    starts at zero when zero_last."""

    def __init__(self, cin: int, hidden: int, cout: int, zero_last: bool = True):
        super().__init__(
            _conv(cin, hidden, 3, False), nn.ReLU(), _conv(hidden, hidden, 1, False), nn.ReLU(),
            _conv(hidden, cout, 3, zero_last))


class ChannelAffineCoupling(nn.Module):
    """bijectors/coupling_image.hpp with ChannelMask (Glow): the FIRST C/2 channels x_a are kept and
    condition the last C/2 x_b; the net's output channels are [t | h] (t first, block order, not
    openai/glow's interleaving).
      sigmoid (Glow's default):  z_b = (x_b + t) * s, s = sigmoid(h + 2), log|det| = sum log s
      tanh:                      z_b = x_b * exp(tanh h) + t,            log|det| = sum tanh h
    State_dict "net.<i>.weight|bias"."""

    def __init__(self, channels: int, hidden: int, scale: str = "sigmoid", zero_init_output: bool = True):
        super().__init__()
        if channels % 2:
            raise ValueError("a channel-wise coupling needs an even channel count")
        if scale not in ("sigmoid", "tanh"):
            raise ValueError(f"unknown coupling scale {scale!r}")
        self.half = channels // 2
        self.scale = scale
        self.net = ConvNet(self.half, hidden, channels, zero_init_output)

    def _condition(self, keep):
        out = self.net(keep)
        return out[:, : self.half], out[:, self.half:]

    def forward(self, x):
        xa, xb = x[:, : self.half], x[:, self.half:]
        t, h = self._condition(xa)
        if self.scale == "sigmoid":
            u = h + 2.0
            zb = (xb + t) * torch.sigmoid(u)  # bijou: (x + t) / (1 + exp(-u)), the same value
            ld = _sum_per_sample(F.logsigmoid(u))  # bijou: -softplus(-u)
        else:
            log_s = torch.tanh(h)
            zb = xb * torch.exp(log_s) + t
            ld = _sum_per_sample(log_s)
        return torch.cat([xa, zb], 1), ld

    def inverse(self, z):
        za, zb = z[:, : self.half], z[:, self.half:]
        t, h = self._condition(za)
        if self.scale == "sigmoid":
            u = h + 2.0
            xb = zb * (1.0 + torch.exp(-u)) - t
            ld = -_sum_per_sample(F.logsigmoid(u))
        else:
            log_s = torch.tanh(h)
            xb = (zb - t) * torch.exp(-log_s)
            ld = -_sum_per_sample(log_s)
        return torch.cat([za, xb], 1), ld


class GlowStep(nn.Module):
    """Chain<ActNorm, InvConv1x1LU, AffineCoupling>: state_dict "actnorm.…", "invconv.…", "coupling.…"."""

    def __init__(self, channels: int, hidden: int, scale: str = "sigmoid", zero_init_output: bool = True,
                 generator: torch.Generator | None = None):
        super().__init__()
        self.actnorm = ActNorm(channels)
        self.invconv = InvConv1x1LU(channels, generator)
        self.coupling = ChannelAffineCoupling(channels, hidden, scale, zero_init_output)

    def forward(self, x):
        x, a = self.actnorm(x)
        x, b = self.invconv(x)
        x, c = self.coupling(x)
        return x, a + b + c

    def inverse(self, z):
        z, c = self.coupling.inverse(z)
        z, b = self.invconv.inverse(z)
        z, a = self.actnorm.inverse(z)
        return z, a + b + c


class Split(nn.Module):
    """bijectors/split.hpp: x = [z1 | z2] (z1 the first C/2 channels); [mu | log_sigma] = conv3x3(z1)
    (C/2 -> C channels, zero-initialised, mu first); eps = (z2 - mu) * exp(-log_sigma),
    log|det| = -sum log_sigma. z1 goes on to the next level, eps leaves as this level's latent."""

    def __init__(self, channels: int):
        super().__init__()
        self.half = channels // 2
        self.conv = _conv(self.half, channels, 3, True)

    def forward(self, x):
        z1, z2 = x[:, : self.half], x[:, self.half:]
        stats = self.conv(z1)
        mu, log_sigma = stats[:, : self.half], stats[:, self.half:]
        eps = (z2 - mu) * torch.exp(-log_sigma)
        return z1, eps, -_sum_per_sample(log_sigma)

    def inverse(self, z1, eps):
        stats = self.conv(z1)
        mu, log_sigma = stats[:, : self.half], stats[:, self.half:]
        z2 = mu + eps * torch.exp(log_sigma)
        return torch.cat([z1, z2], 1), _sum_per_sample(log_sigma)


class TopPrior(nn.Module):
    """bijectors/top_prior.hpp: eps = (z - mean) * exp(-log_scale) per channel, log|det| =
    -H*W*sum(log_scale). Parameters "mean", "log_scale" (C), zero at start (openai/glow's learn_top)."""

    def __init__(self, channels: int):
        super().__init__()
        self.mean = nn.Parameter(torch.zeros(channels))
        self.log_scale = nn.Parameter(torch.zeros(channels))

    def forward(self, z):
        eps = (z - self.mean.view(1, -1, 1, 1)) * torch.exp(-self.log_scale.view(1, -1, 1, 1))
        hw = z.shape[2] * z.shape[3]
        return eps, (-hw * self.log_scale.sum(dtype=torch.float64)).expand(z.shape[0])

    def inverse(self, eps):
        z = self.mean.view(1, -1, 1, 1) + eps * torch.exp(self.log_scale.view(1, -1, 1, 1))
        hw = z.shape[2] * z.shape[3]
        return z, (hw * self.log_scale.sum(dtype=torch.float64)).expand(z.shape[0])


class GlowLevel(nn.Module):
    """One level of models/multiscale.hpp: (Squeeze, K steps) then "split" or, at the top, "prior"."""

    def __init__(self, channels: int, steps: int, hidden: int, last: bool, scale: str,
                 zero_init_output: bool, generator):
        super().__init__()
        self.steps = nn.ModuleList(GlowStep(channels, hidden, scale, zero_init_output, generator)
                                   for _ in range(steps))
        if last:
            self.prior = TopPrior(channels)
        else:
            self.split = Split(channels)
        self.last = last


class StandardNormalFlow(nn.Module):
    """What bijou's Flow<S, Recipe, StandardNormal> adds to its bijector (models/flow.hpp): log p(x),
    the training loss and sampling. Subclasses define forward (x -> z, log-det), inverse (z -> x,
    log-det) and data_size (values per sample)."""

    def log_prob(self, x):
        """log p(x) in nats per sample (float64)."""
        z, ld = self.forward(x)
        return standard_normal_log_prob(z) + ld

    def nll(self, x):
        """Mean negative log-likelihood of the batch in nats per sample: bijou's training loss."""
        return -self.log_prob(x).mean()

    @torch.no_grad()
    def sample(self, n: int, temperature: float = 1.0, generator: torch.Generator | None = None):
        p = next(self.parameters())
        z = temperature * torch.randn(n, self.data_size, generator=generator, dtype=p.dtype, device=p.device)
        return self.inverse(z)[0]


class Glow(StandardNormalFlow):
    """bijou::Glow<Shape<C, H, W>, L> (default Step = Chain<ActNorm, InvConv1x1LU, AffineCoupling>,
    sigmoid scales). Level l sees (C*2^l, H/2^l, W/2^l), squeezes it to (4C*2^l, H/2^(l+1), W/2^(l+1)),
    runs K steps, then splits (keeping the first half) or, at the top, applies the learned prior.
    The flat latent z of one image is [eps_0 | eps_1 | ... | eps_top], each eps_l flattened in its
    (c, h, w) order (multiscale.hpp); the base is N(0, I) over all of z."""

    def __init__(self, shape=(1, 32, 32), levels: int = 3, steps_per_level: int = 8, hidden: int = 256,
                 scale: str = "sigmoid", zero_init_output: bool = True, seed: int | None = None):
        super().__init__()
        c, h, w = shape
        if levels < 1:
            raise ValueError("Glow needs at least one level")
        if h % (1 << levels) or w % (1 << levels):
            raise ValueError(f"Glow: H and W must be divisible by 2^levels = {1 << levels}")
        self.shape = (c, h, w)
        self.data_size = c * h * w
        if seed is not None:
            torch.manual_seed(seed)
        generator = None
        self.levels = nn.ModuleList()
        self.latent_shapes = []
        ch, hh, ww = c, h, w
        for l in range(levels):
            ch, hh, ww = 4 * ch, hh // 2, ww // 2
            last = l == levels - 1
            self.levels.append(GlowLevel(ch, steps_per_level, hidden, last, scale, zero_init_output, generator))
            if last:
                self.latent_shapes.append((ch, hh, ww))
            else:
                ch //= 2
                self.latent_shapes.append((ch, hh, ww))

    # ---- mapping ----
    def forward(self, x):
        """z (n, C*H*W) flat latent and log|det dz/dx| (float64, (n,))."""
        n = x.shape[0]
        ld = torch.zeros(n, dtype=torch.float64, device=x.device)
        eps = []
        h = x
        for level in self.levels:
            h = squeeze(h)
            for step in level.steps:
                h, d = step(h)
                ld = ld + d
            if level.last:
                e, d = level.prior(h)
            else:
                h, e, d = level.split(h)
            ld = ld + d
            eps.append(e.reshape(n, -1))
        return torch.cat(eps, 1), ld

    def inverse(self, z):
        """x (n, C, H, W) and log|det dx/dz| (float64)."""
        n = z.shape[0]
        parts, off = [], 0
        for (c, hh, ww) in self.latent_shapes:
            size = c * hh * ww
            parts.append(z[:, off: off + size].reshape(n, c, hh, ww))
            off += size
        ld = torch.zeros(n, dtype=torch.float64, device=z.device)
        h = None
        for l in reversed(range(len(self.levels))):
            level = self.levels[l]
            if level.last:
                h, d = level.prior.inverse(parts[l])
            else:
                h, d = level.split.inverse(h, parts[l])
            ld = ld + d
            for step in reversed(level.steps):
                h, d = step.inverse(h)
                ld = ld + d
            h = unsqueeze(h)
        return h, ld

    # ---- data ----
    @torch.no_grad()
    def initialize(self, x) -> None:
        """Data-dependent ActNorm initialisation (bijou's Flow::initialize): each ActNorm is set from the
        input it sees when x goes forward through the already-initialised layers before it."""
        if x.shape[0] < 2:
            raise ValueError("initialize: needs a batch of at least 2 samples")
        for m in self.modules():
            if isinstance(m, ActNorm):
                m.init_pending = True
        try:
            self.forward(x)
        finally:
            for m in self.modules():
                if isinstance(m, ActNorm):
                    m.init_pending = False

    @staticmethod
    def dequantize(x, n_bits: int = 8, generator: torch.Generator | None = None):
        """x~ = (x + u)/2^n - 1/2, u ~ U[0, 1), for integer images x in {0 .. 2^n - 1} (image_flow.hpp)."""
        levels = 2.0 ** n_bits
        u = torch.rand(x.shape, generator=generator, dtype=torch.float64).to(x.device)
        return ((x.double() + u) / levels - 0.5).float()

    def nats_to_bits_per_dim(self, nll_nats, n_bits: int = 8):
        """(-log p(x~) + D*n*ln 2) / (D*ln 2)."""
        d = self.data_size
        return (nll_nats + d * n_bits * math.log(2.0)) / (d * math.log(2.0))

    def bits_per_dim(self, x, n_bits: int = 8, generator: torch.Generator | None = None):
        p = next(self.parameters())
        xt = self.dequantize(x, n_bits, generator).to(p.dtype)
        return self.nats_to_bits_per_dim(-self.log_prob(xt), n_bits)


# ------------------------------------------------------------------------------------------------
# Vector RealNVP (two moons).


class Mlp(nn.Sequential):
    """nn/mlp.hpp: Linear -> ReLU -> ... -> Linear with hidden_layers hidden layers of width hidden;
    weights (out, in) as nn.Linear; init U(-1/sqrt(in), +) for weight and bias, the last layer zero
    when zero_last. State_dict "0.weight", "0.bias", "2.…", ..., "<2*hidden_layers>.…"."""

    def __init__(self, cin: int, hidden: int, hidden_layers: int, cout: int, zero_last: bool = True):
        layers = []
        for l in range(hidden_layers + 1):
            i = cin if l == 0 else hidden
            o = cout if l == hidden_layers else hidden
            lin = nn.Linear(i, o)
            with torch.no_grad():
                if zero_last and l == hidden_layers:
                    lin.weight.zero_()
                    lin.bias.zero_()
                else:
                    _uniform_(lin.weight, 1.0 / math.sqrt(i))
                    _uniform_(lin.bias, 1.0 / math.sqrt(i))
            layers.append(lin)
            if l < hidden_layers:
                layers.append(nn.ReLU())
        super().__init__(*layers)


def coupling_mask(kind: str, k: int, d: int) -> torch.Tensor:
    """bijectors/coupling.hpp detail::coupling_mask: 1 = kept. alternating: keep i iff (i + k) even;
    half: the first floor(D/2) on even k, the others on odd k."""
    if kind == "alternating":
        return torch.tensor([float((i + k) % 2 == 0) for i in range(d)])
    if kind == "half":
        return torch.tensor([float((k % 2 == 0) == (i < d // 2)) for i in range(d)])
    raise ValueError(f"mask kind {kind!r} is not mirrored here (custom masks are not supported)")


class VectorCoupling(nn.Module):
    """bijectors/coupling.hpp on Shape<D>, affine: the conditioner sees x * m (all D inputs, transformed
    ones zeroed).
      net "separate" (RealNVP): "shift_net" gives t, "log_scale_net" gives h, both D -> ... -> D
      net "shared" (Glow):      "net" D -> ... -> 2D, each row [t | h]
    tanh:    z = m x + (1 - m)(x exp(tanh h) + t),  log|det| = sum (1 - m) tanh h
    sigmoid: z = m x + (1 - m)(x + t) s, s = sigmoid(h + 2), log|det| = sum (1 - m) log s
    Buffer "mask" (D), 1 = kept."""

    def __init__(self, dim: int, index: int, hidden: int = 256, hidden_layers: int = 2, net: str = "separate",
                 scale: str = "tanh", mask: str = "alternating", zero_init_output: bool = True):
        super().__init__()
        self.dim, self.scale, self.shared = dim, scale, net == "shared"
        if net not in ("separate", "shared") or scale not in ("tanh", "sigmoid"):
            raise ValueError(f"unknown coupling options net={net!r} scale={scale!r}")
        if self.shared:
            self.net = Mlp(dim, hidden, hidden_layers, 2 * dim, zero_init_output)
        else:
            self.shift_net = Mlp(dim, hidden, hidden_layers, dim, zero_init_output)
            self.log_scale_net = Mlp(dim, hidden, hidden_layers, dim, zero_init_output)
        self.register_buffer("mask", coupling_mask(mask, index, dim))

    def _condition(self, v):
        m = self.mask.to(v.dtype)
        xm = v * m
        if self.shared:
            out = self.net(xm)
            return m, out[:, : self.dim], out[:, self.dim:]
        return m, self.shift_net(xm), self.log_scale_net(xm)

    def forward(self, x):
        m, t, h = self._condition(x)
        if self.scale == "tanh":
            log_s = torch.tanh(h)
            y = x * torch.exp(log_s) + t
        else:
            log_s = F.logsigmoid(h + 2.0)
            y = (x + t) * torch.sigmoid(h + 2.0)
        z = torch.where(m > 0, x, y)
        return z, _sum_per_sample((1 - m) * log_s)

    def inverse(self, z):
        m, t, h = self._condition(z)
        if self.scale == "tanh":
            log_s = torch.tanh(h)
            y = (z - t) * torch.exp(-log_s)
        else:
            log_s = F.logsigmoid(h + 2.0)
            y = z * (1.0 + torch.exp(-(h + 2.0))) - t
        x = torch.where(m > 0, z, y)
        return x, -_sum_per_sample((1 - m) * log_s)


class _VectorStack(StandardNormalFlow):
    """A Stack of vector bijectors "steps.<k>", applied in order by forward."""

    def forward(self, x):
        ld = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
        for s in self.steps:
            x, d = s(x)
            ld = ld + d
        return x, ld

    def inverse(self, z):
        ld = torch.zeros(z.shape[0], dtype=torch.float64, device=z.device)
        for s in reversed(self.steps):
            z, d = s.inverse(z)
            ld = ld + d
        return z, ld

    def initialize(self, x) -> None:
        """No data-dependent layers (as bijou: a no-op)."""


class RealNVP(_VectorStack):
    """bijou::RealNVP<Shape<D>> = Flow<Shape<D>, Stack<AffineCoupling>, StandardNormal>: "steps.<k>.…",
    coupling k applied k-th in forward. examples/two_moons: D = 2, 8 couplings, hidden 256,
    hidden_layers 2, separate nets, tanh, alternating masks."""

    def __init__(self, dim: int = 2, couplings: int = 8, hidden: int = 256, hidden_layers: int = 2,
                 net: str = "separate", scale: str = "tanh", mask: str = "alternating",
                 zero_init_output: bool = True, seed: int | None = None):
        super().__init__()
        if seed is not None:
            torch.manual_seed(seed)
        self.data_size = dim
        self.steps = nn.ModuleList(
            VectorCoupling(dim, k, hidden, hidden_layers, net, scale, mask, zero_init_output) for k in range(couplings))


# ------------------------------------------------------------------------------------------------
# Rational-quadratic splines and autoregressive flows (toy_density).


def rq_spline(x, p, bins: int, bound: float, min_w: float = 1e-3, min_h: float = 1e-3, min_d: float = 1e-3,
              inverse: bool = False):
    """kernels/spline_formula.hpp: the monotonic rational-quadratic spline of every element of x with its
    3K - 1 raw parameters p[..., :] = [u_w (K) | u_h (K) | u_d (K - 1)], identity outside [-B, B].
    Returns (out, log dz/dx per element) where z = spline(x) (inverse=False) or x = spline^-1(x)
    (inverse=True; the log-det is then the forward's at the result, as bijou returns it)."""
    K, B = bins, bound
    uw, uh, ud = p[..., :K], p[..., K:2 * K], p[..., 2 * K:]
    w = 2 * B * (min_w + (1 - K * min_w) * torch.softmax(uw, -1))
    h = 2 * B * (min_h + (1 - K * min_h) * torch.softmax(uh, -1))
    shift = math.log(math.expm1(1.0 - min_d))
    one = torch.ones_like(uw[..., :1])
    d = torch.cat([one, min_d + F.softplus(ud + shift), one], -1)  # K + 1 knots' derivatives
    xk = torch.cat([-B * one, -B + torch.cumsum(w, -1)[..., :-1], B * one], -1)
    yk = torch.cat([-B * one, -B + torch.cumsum(h, -1)[..., :-1], B * one], -1)
    inside = (x >= -B) & (x <= B)
    knots = yk if inverse else xk
    idx = (x.unsqueeze(-1) >= knots[..., 1:K]).sum(-1, keepdim=True)  # bin: interior knots <= v
    g = lambda t: t.gather(-1, idx).squeeze(-1)  # noqa: E731
    x0, wk = g(xk), g(xk[..., 1:]) - g(xk)
    y0, hk = g(yk), g(yk[..., 1:]) - g(yk)
    d0, d1 = g(d), g(d[..., 1:])
    s = hk / wk
    if inverse:
        e, dy = d1 + d0 - 2 * s, x - y0
        a, b, c = hk * (s - d0) + dy * e, hk * d0 - dy * e, -s * dy
        root = torch.sqrt((b * b - 4 * a * c).clamp_min(0))
        xi = torch.where(b >= 0, 2 * c / (-b - root), (-b + root) / (2 * a)).clamp(0, 1)
        out = x0 + xi * wk
    else:
        xi = ((x - x0) / wk).clamp(0, 1)
        q = xi * (1 - xi)
        out = y0 + hk * (s * xi * xi + d0 * q) / (s + (d1 + d0 - 2 * s) * q)
    q = xi * (1 - xi)
    den = s + (d1 + d0 - 2 * s) * q
    ld = torch.log(s * s * (d1 * xi * xi + 2 * s * q + d0 * (1 - xi) * (1 - xi)) / (den * den))
    return torch.where(inside, out, x), torch.where(inside, ld, torch.zeros_like(ld))


class SplineCoupling(nn.Module):
    """bijectors/spline_coupling.hpp on Shape<D>: "net" D -> ... -> D*(3K-1) sees x * m; feature j's
    parameters are output columns j*(3K-1) ...; transformed features (m = 0) go through their spline.
    Buffer "mask" (D), 1 = kept."""

    def __init__(self, dim: int, index: int, hidden: int = 128, hidden_layers: int = 2, bins: int = 8,
                 bound: float = 5.0, zero_init_output: bool = True):
        super().__init__()
        self.dim, self.bins, self.bound = dim, bins, bound
        self.net = Mlp(dim, hidden, hidden_layers, dim * (3 * bins - 1), zero_init_output)
        self.register_buffer("mask", coupling_mask("alternating", index, dim))

    def _map(self, v, inverse: bool):
        m = self.mask.to(v.dtype)
        p = self.net(v * m).reshape(v.shape[0], self.dim, 3 * self.bins - 1)
        y, ld = rq_spline(v, p, self.bins, self.bound, inverse=inverse)
        out = torch.where(m > 0, v, y)
        ld = _sum_per_sample((1 - m) * ld)
        return out, (-ld if inverse else ld)

    def forward(self, x):
        return self._map(x, False)

    def inverse(self, z):
        return self._map(z, True)


class SplineFlow(_VectorStack):
    """Flow<Shape<D>, Stack<RationalQuadraticCoupling>> with SplineOptions{bins, bound}."""

    def __init__(self, dim: int = 2, couplings: int = 4, hidden: int = 128, hidden_layers: int = 2, bins: int = 8,
                 bound: float = 5.0, zero_init_output: bool = True):
        super().__init__()
        self.data_size = dim
        self.steps = nn.ModuleList(SplineCoupling(dim, k, hidden, hidden_layers, bins, bound, zero_init_output)
                                   for k in range(couplings))


class MaskedLinear(nn.Linear):
    """nflows' MaskedLinear as nn/mlp.hpp's masked layers: y = x (W * M)^T + b, buffer "mask" (out, in)."""

    def __init__(self, cin: int, cout: int, mask: torch.Tensor):
        super().__init__(cin, cout)
        self.register_buffer("mask", mask.float())

    def forward(self, x):
        return F.linear(x, self.weight * self.mask.to(x.dtype), self.bias)


class MADE(nn.Sequential):
    """nn/made.hpp: masked MLP D -> hidden (x hidden_layers) -> D*P, cyclic hidden degrees, output unit u of
    feature u // P (feature_major) or u % D (parameter_major); buffer "degrees" (D). The masks are
    buffers and a loaded checkpoint's replace the ones built here."""

    def __init__(self, degrees, hidden: int, hidden_layers: int, P: int, layout: str, zero_last: bool = True):
        D = len(degrees)
        deg = torch.tensor(degrees)
        lo = min(D - 1, 1)
        hid = [torch.arange(hidden) % max(D - 1, 1) + lo for _ in range(hidden_layers)]
        feature = (torch.arange(D * P) // P) if layout == "feature_major" else (torch.arange(D * P) % D)
        layers, prev_deg, prev = [], deg, D
        for l in range(hidden_layers + 1):
            last = l == hidden_layers
            cout = D * P if last else hidden
            if last:
                mask = deg[feature].unsqueeze(1) > prev_deg.unsqueeze(0)
            else:
                mask = hid[l].unsqueeze(1) >= prev_deg.unsqueeze(0)
            lin = MaskedLinear(prev, cout, mask)
            with torch.no_grad():
                if zero_last and last:
                    lin.weight.zero_()
                    lin.bias.zero_()
                else:
                    _uniform_(lin.weight, 1.0 / math.sqrt(prev))
                    _uniform_(lin.bias, 1.0 / math.sqrt(prev))
            layers.append(lin)
            if not last:
                layers.append(nn.ReLU())
                prev_deg, prev = hid[l], hidden
        super().__init__(*layers)
        self.register_buffer("degrees", deg.float())


class MaskedAutoregressiveLayer(nn.Module):
    """bijectors/autoregressive.hpp, MAF: z_j = tau(x_j; theta_j(x_<j)), "made" a MADE. affine: tanh scale,
    theta row [t (D) | h (D)]; spline: feature j's 3K-1 parameters contiguous."""

    def __init__(self, dim: int, index: int, hidden: int = 128, hidden_layers: int = 2, transform: str = "affine",
                 bins: int = 8, bound: float = 5.0, zero_init_output: bool = True):
        super().__init__()
        self.dim, self.transform, self.bins, self.bound = dim, transform, bins, bound
        degrees = list(range(1, dim + 1)) if index % 2 == 0 else list(range(dim, 0, -1))  # alternating
        P = 2 if transform == "affine" else 3 * bins - 1
        layout = "parameter_major" if transform == "affine" else "feature_major"
        self.made = MADE(degrees, hidden, hidden_layers, P, layout, zero_init_output)

    def _tau(self, v, theta, inverse: bool):
        if self.transform == "affine":
            t, h = theta[:, : self.dim], theta[:, self.dim:]
            log_s = torch.tanh(h)
            out = (v - t) * torch.exp(-log_s) if inverse else v * torch.exp(log_s) + t
            return out, log_s
        p = theta.reshape(v.shape[0], self.dim, 3 * self.bins - 1)
        return rq_spline(v, p, self.bins, self.bound, inverse=inverse)

    def forward(self, x):
        z, ld = self._tau(x, self.made(x), False)
        return z, _sum_per_sample(ld)

    def inverse(self, z):
        x = z
        for _ in range(self.dim):  # pass p fixes the feature of degree p + 1
            x, ld = self._tau(z, self.made(x), True)
        return x, -_sum_per_sample(ld)


class MAF(_VectorStack):
    """Flow<Shape<D>, Stack<MaskedAutoregressive<AffineTransform | RationalQuadraticTransform>>>, orders
    alternating natural / reversed."""

    def __init__(self, dim: int = 2, layers: int = 8, hidden: int = 128, hidden_layers: int = 2,
                 transform: str = "affine", bins: int = 8, bound: float = 5.0, zero_init_output: bool = True):
        super().__init__()
        self.data_size = dim
        self.steps = nn.ModuleList(MaskedAutoregressiveLayer(dim, k, hidden, hidden_layers, transform, bins, bound,
                                                             zero_init_output) for k in range(layers))


# ------------------------------------------------------------------------------------------------
# safetensors and bijou checkpoints.

_DTYPES = {"F32": (torch.float32, 4), "F64": (torch.float64, 8)}


def read_safetensors(path):
    """(tensors: name -> torch tensor, metadata: dict) of a safetensors file with F32/F64 tensors, read
    with the standard library and torch: an 8-byte little-endian header length N, N bytes of JSON, then
    the raw little-endian data section (offsets relative to its start)."""
    if sys.byteorder != "little":
        raise RuntimeError("read_safetensors: little-endian hosts only")
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        raise ValueError(f"{path}: too short for a safetensors file")
    (n,) = struct.unpack("<Q", blob[:8])
    if n > len(blob) - 8:
        raise ValueError(f"{path}: header length {n} exceeds the file")
    header = json.loads(blob[8: 8 + n].decode("utf-8"))
    if not isinstance(header, dict):
        raise ValueError(f"{path}: the header is not a JSON object")
    data = bytearray(blob[8 + n:])  # writable, so torch.frombuffer does not warn
    meta = header.pop("__metadata__", {}) or {}
    tensors = {}
    for name, e in header.items():
        if e.get("dtype") not in _DTYPES:
            raise ValueError(f"{path}: tensor '{name}' has dtype {e.get('dtype')!r} (F32 or F64 expected)")
        dtype, size = _DTYPES[e["dtype"]]
        shape = [int(s) for s in e["shape"]]
        b, end = (int(v) for v in e["data_offsets"])
        count = math.prod(shape)
        if not (0 <= b <= end <= len(data)) or end - b != count * size:
            raise ValueError(f"{path}: tensor '{name}' has bad data_offsets {e['data_offsets']}")
        t = torch.frombuffer(data, dtype=dtype, count=count, offset=b) if count else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(shape).clone()
    return tensors, meta


def load_bijou_checkpoint(model: nn.Module, path) -> dict:
    """Copies every tensor of a bijou checkpoint into model by its bijou state_dict name and returns
    the file's __metadata__. Raises ValueError (model untouched) on a missing, unexpected or mis-shaped
    tensor. Optimizer state ("optimizer.<state>.<name>", written by save_checkpoint with an optimizer)
    is not model state and is skipped.

    Layouts: bijou keeps parameters in one flat buffer, but each named tensor is a row-major block with
    the declared shape, and every shape bijou declares is already PyTorch's: conv weights are
    (out, in, kH, kW) = OIHW as nn.Conv2d, linear weights (out, in) as nn.Linear, the 1x1 convolution's
    lower/upper (C, C) row-major with P as the index buffer "perm". So no transposition is needed; we
    check shapes exactly instead of reshaping (a conv weight arriving as (in, out, k, k) would fail)."""
    tensors, meta = read_safetensors(path)
    if meta.get("format") != "bijou":
        raise ValueError(f"{path}: not a bijou checkpoint (__metadata__ format = {meta.get('format')!r})")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("optimizer.")}
    state = model.state_dict()
    missing = sorted(set(state) - set(tensors))
    extra = sorted(set(tensors) - set(state))
    if missing or extra:
        raise ValueError(f"{path}: tensors do not match the model: missing {missing[:8]}"
                         f"{' …' if len(missing) > 8 else ''}, unexpected {extra[:8]}{' …' if len(extra) > 8 else ''}")
    for name, dst in state.items():
        src = tensors[name]
        if tuple(src.shape) != tuple(dst.shape):
            raise ValueError(f"{path}: tensor '{name}' has shape {list(src.shape)}, the model's is {list(dst.shape)}")
        if not torch.isfinite(src).all():
            raise ValueError(f"{path}: tensor '{name}' holds non-finite values")
    with torch.no_grad():
        for name, dst in state.items():
            dst.copy_(tensors[name].to(dst.dtype))
    return meta


def model_from_config(meta: dict) -> nn.Module:
    """Builds the model a bijou config (checkpoint __metadata__ or parity batch-file metadata) describes:
    "Glow" (shape "C,H,W", levels, steps_per_level, hidden, scale) or a RealNVP on vectors ("RealNVP",
    or bijou's generic "Flow" with a one-dimensional shape)."""
    shape = tuple(int(s) for s in meta["shape"].split(","))
    kind = meta["model"]
    zero = meta.get("zero_init_output", "true") == "true"
    if kind == "Glow":
        scale = meta.get("scale", "sigmoid")
        return Glow(shape, int(meta["levels"]), int(meta["steps_per_level"]), int(meta["hidden"]),
                    "sigmoid" if scale == "model_default" else scale, zero)
    if kind in ("RealNVP", "Flow") and len(shape) == 1:
        scale = meta.get("scale", "tanh")
        return RealNVP(shape[0], int(meta["steps_per_level"]), int(meta["hidden"]), int(meta.get("hidden_layers", 2)),
                       meta.get("net", "separate"), "tanh" if scale == "model_default" else scale,
                       meta.get("mask", "alternating"), zero)
    if kind == "SplineFlow" and len(shape) == 1:
        return SplineFlow(shape[0], int(meta["steps_per_level"]), int(meta["hidden"]), int(meta.get("hidden_layers", 2)),
                          int(meta["bins"]), float(meta["bound"]), zero)
    if kind == "MAF" and len(shape) == 1:
        return MAF(shape[0], int(meta["steps_per_level"]), int(meta["hidden"]), int(meta.get("hidden_layers", 2)),
                   meta["transform"], int(meta.get("bins", 8)), float(meta.get("bound", 5.0)), zero)
    raise ValueError(f"no PyTorch mirror for model {kind!r} with shape {shape}")
