#!/usr/bin/env python3
"""PyTorch side of the bijou-vs-PyTorch benchmarks: the models of bijou_torch.py, which mirror bijou's
exactly, timed on the workloads of benchmarks/bench_image.cpp and bench_vector.cpp.

    bench_torch.py --model glow --config a|c|d --item train|log_prob|sample --threads N --seconds S
    bench_torch.py --model two_moons --batch B --threads N --seconds S
    bench_torch.py --model spline|maf|maf_spline --batch B --threads N --seconds S
    (add --device cuda to run on a GPU: model and data on the device; the JSON line adds
     gpu_peak_mb, torch.cuda.max_memory_allocated)

Glow configs (bijou::Glow<Shape<C, H, W>, L> with K steps per level, sigmoid couplings, float32):
    a  1x32x32, L = 3, K = 8,  hidden 128, batch 64
    c  1x32x32, L = 3, K = 32, hidden 512, batch 16
    d  3x32x32, L = 3, K = 8,  hidden 256, batch 32
Items: train = forward, loss (mean NLL in nats), backward, gradient-norm clipping at --clip (50, as
bijou's train_step in bench_image / bench_vector; 0 turns it off) and an Adam step (lr 1e-3; for Glow
warmed up linearly over 500 steps, lr·min(1, (step + 1)/500), as bench_models: without it config c
turned NaN at its third step);
log_prob = log p(x) under no_grad; sample = model.sample(batch, temperature 0.7) under no_grad.
two_moons: RealNVP<Shape<2>> as examples/two_moons (8 couplings, 2->256->256->2 separate MLPs, tanh),
one training step (as train) on a fixed batch of two-moons points. spline, maf, maf_spline:
examples/toy_density's flows at its defaults (bijou_torch.SplineFlow(2, 4, 128), MAF(2, 8, 128),
MAF(2, 4, 128, transform="spline"); 8 bins on [-5, 5]), one training step on a fixed batch 2*N(0, I).
Data are synthetic and fixed (not part of the timing): uniformly dequantised random 8-bit images
((k + u)/256 - 1/2), and for two moons points drawn like bijou::two_moons (noise 0.05). The Glow model
is data-initialised (ActNorm) on that batch first, as bench_image does.

Runs --warmup untimed iterations, then iterations until --seconds have passed (at least one), and prints
ONE JSON line: impl, model, config, item, threads, batch, images_per_s (Glow) or steps_per_s (the vector models),
iterations, torch (version), blas (the BLAS library the process mapped after a matmul, from
/proc/self/maps), peak_rss_mb (getrusage ru_maxrss / 1024).
"""

import argparse
import json
import math
import os
import resource
import sys
import time

import torch

CONFIGS = {
    "a": dict(shape=(1, 32, 32), levels=3, steps=8, hidden=128, batch=64),
    "c": dict(shape=(1, 32, 32), levels=3, steps=32, hidden=512, batch=16),
    "d": dict(shape=(3, 32, 32), levels=3, steps=8, hidden=256, batch=32),
}


def loaded_blas() -> str:
    """The BLAS libraries mapped into this process (after a matmul, so that a lazily loaded one shows)."""
    a = torch.randn(64, 64)
    (a @ a).sum().item()
    found = []
    try:
        with open("/proc/self/maps") as f:
            for line in f:
                parts = line.split()
                if len(parts) < 6:
                    continue
                path = parts[-1]
                base = os.path.basename(path)
                if any(k in base for k in ("libopenblas", "libblas", "libmkl", "libblis")):
                    short = os.path.join(os.path.basename(os.path.dirname(path)), base)
                    if short not in found:
                        found.append(short)
    except OSError:
        return "unknown"
    return ",".join(found) if found else "none"


def two_moons(n: int, noise: float, generator: torch.Generator) -> torch.Tensor:
    """Points distributed as bijou::two_moons (io/two_moons.hpp): n//2 on the upper moon, the rest on
    the lower, evenly spaced in angle, shuffled, plus N(0, noise^2) noise."""
    n_out, n_in = n // 2, n - n // 2
    t_out = torch.linspace(0, math.pi, n_out, dtype=torch.float64) if n_out > 1 else torch.zeros(n_out, dtype=torch.float64)
    t_in = torch.linspace(0, math.pi, n_in, dtype=torch.float64) if n_in > 1 else torch.zeros(n_in, dtype=torch.float64)
    pts = torch.cat([torch.stack([torch.cos(t_out), torch.sin(t_out)], 1),
                     torch.stack([1 - torch.cos(t_in), 0.5 - torch.sin(t_in)], 1)])
    pts = pts[torch.randperm(n, generator=generator)]
    return (pts + noise * torch.randn(n, 2, generator=generator, dtype=torch.float64)).float()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", choices=["glow", "two_moons", "spline", "maf", "maf_spline"], required=True)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="a")
    ap.add_argument("--item", choices=["train", "log_prob", "sample"], default="train")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: the config's; two moons: 512)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--warmup", type=int, default=3, help="untimed iterations first")
    ap.add_argument("--clip", type=float, default=50.0, help="gradient-norm clipping in train (0: off)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--device", default="cpu", help="cpu or cuda")
    args = ap.parse_args()

    # Before any parallel work: the inter-op pool cannot be resized once used.
    torch.set_num_interop_threads(1)
    torch.set_num_threads(args.threads)
    # Denormals as zero, as bijou's Cpu optimizer flushes them (kernels/cpu/optim.hpp): weights into
    # dead ReLU units have Adam moments decaying through the denormal range, where x86 arithmetic
    # takes microcode assists; the longer a run trains, the more that costs. Both sides flush.
    torch.set_flush_denormal(True)
    torch.manual_seed(args.seed)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bijou_torch as bt

    gen = torch.Generator().manual_seed(args.seed)
    if args.model == "glow":
        cfg = CONFIGS[args.config]
        batch = args.batch or cfg["batch"]
        model = bt.Glow(cfg["shape"], cfg["levels"], cfg["steps"], cfg["hidden"])
        k = torch.randint(0, 256, (batch, *cfg["shape"]), generator=gen)
        x = bt.Glow.dequantize(k, 8, gen)
        model.to(args.device)
        x = x.to(args.device)
        model.initialize(x)
        item, config = args.item, args.config
    elif args.model == "two_moons":
        batch = args.batch or 512
        model = bt.RealNVP(2, 8, 256).to(args.device)
        x = two_moons(batch, 0.05, gen).to(args.device)
        item, config = "train", None
    else:  # the toy flows of examples/toy_density at its defaults (bench_models.hpp: toy_flow_steps)
        batch = args.batch or 512
        if args.model == "spline":
            model = bt.SplineFlow(2, 4, 128, 2, 8, 5.0)
        elif args.model == "maf":
            model = bt.MAF(2, 8, 128, 2, "affine")
        else:
            model = bt.MAF(2, 4, 128, 2, "spline", 8, 5.0)
        model.to(args.device)
        x = (2.0 * torch.randn(batch, 2, generator=gen)).to(args.device)
        item, config = "train", None

    params = [p for p in model.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    # bijou's LinearWarmup (train/schedule.hpp) for Glow, as bench_models: the first update at lr/500
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: min(1.0, (s + 1) / 500)) if args.model == "glow" else None

    def train_step():
        opt.zero_grad(set_to_none=True)
        loss = model.nll(x)
        loss.backward()
        if args.clip > 0:
            torch.nn.utils.clip_grad_norm_(params, args.clip)
        opt.step()
        if sched is not None:
            sched.step()
        return loss.item()

    def log_prob():
        with torch.no_grad():
            return model.log_prob(x)[0].item()

    def sample():
        with torch.no_grad():
            return model.sample(batch, 0.7)[0, 0, 0, 0].item()

    run = {"train": train_step, "log_prob": log_prob, "sample": sample}[item]
    for _ in range(max(args.warmup, 0)):
        run()
    iterations = 0
    t0 = time.perf_counter()
    while True:
        run()
        iterations += 1
        elapsed = time.perf_counter() - t0
        if elapsed >= args.seconds:
            break

    result = {
        "impl": "pytorch",
        "model": args.model,
        "config": config,
        "item": item,
        "threads": args.threads,
        "batch": batch,
        "device": args.device,
    }
    if args.model == "glow":
        result["images_per_s"] = iterations * batch / elapsed
    else:
        result["steps_per_s"] = iterations / elapsed
    result.update({
        "iterations": iterations,
        "torch": torch.__version__,
        "blas": loaded_blas(),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    })
    if args.device.startswith("cuda"):
        result["gpu_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        result["gpu"] = torch.cuda.get_device_name()
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
