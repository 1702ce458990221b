#!/usr/bin/env python3
"""bijou on a GPU against PyTorch eager on the same GPU, side by side (issue 8).

    benchmarks/compare_gpu.py [--bijou build/bench/benchmarks/bench_models_cuda] [--python python3]
                              [--configs a,c] [--items train,sample] [--rounds 3] [--seconds 6] [--out F.json]

For each cell (Glow config x item) it runs, in fresh processes, `bench_models_cuda --device cuda` and
`pytorch/bench_torch.py --device cuda` (the same models, batches and workloads as the CPU comparison,
benchmarks/compare.py), alternating which side goes first from round to round, and prints medians
[min-max] of images/s, their ratio, and the device memory each side used (bijou: cudaMemGetInfo
before/after, so it includes what cuBLAS keeps; PyTorch: torch.cuda.max_memory_allocated, which does
not include its caching allocator's slack or the CUDA context). The target of issue 8 is
bijou >= PyTorch eager. `--python` is the interpreter with a CUDA PyTorch (not Debian's CPU build).
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"compare_gpu: {' '.join(cmd)} failed ({r.returncode}):\n{r.stderr}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def fmt(v):
    return f"{statistics.median(v):.1f} [{min(v):.1f}-{max(v):.1f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bijou", default=os.path.join(ROOT, "build", "bench", "benchmarks", "bench_models_cuda"))
    ap.add_argument("--python", default="python3")
    ap.add_argument("--configs", default="a,c")
    ap.add_argument("--items", default="train,sample")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--out", default=None)
    a = ap.parse_args()

    torch_script = os.path.join(ROOT, "benchmarks", "pytorch", "bench_torch.py")
    cells = [(c, it) for c in a.configs.split(",") if c for it in a.items.split(",") if it]
    res = {cell: {"bijou": [], "pytorch": []} for cell in cells}
    t0 = time.time()
    for r in range(a.rounds):
        for cell in cells:
            c, it = cell
            sides = ["bijou", "pytorch"] if r % 2 == 0 else ["pytorch", "bijou"]
            for side in sides:
                if side == "bijou":
                    cmd = [a.bijou, "--device", "cuda", "--model", "glow", "--config", c, "--item", it,
                           "--threads", "1", "--seconds", str(a.seconds)]
                else:
                    cmd = [a.python, torch_script, "--device", "cuda", "--model", "glow", "--config", c, "--item",
                           it, "--threads", "1", "--seconds", str(a.seconds)]
                out = run_json(cmd)
                res[cell][side].append(out)
                print(f"round {r + 1}/{a.rounds} {side:7s} {c} {it}: {out['images_per_s']:.1f} img/s "
                      f"({time.time() - t0:.0f} s)", file=sys.stderr, flush=True)

    gpu = next((o.get("gpu") for v in res.values() for o in v["pytorch"] if o.get("gpu")), "unknown GPU")
    torch_version = next((o.get("torch") for v in res.values() for o in v["pytorch"]), "?")
    print(f"# bijou vs PyTorch {torch_version} eager on {gpu}, {time.strftime('%Y-%m-%d')}; {a.rounds} interleaved "
          f"round(s), {a.seconds:g} s per measurement; medians [min-max]\n")
    print("| config | item | bijou img/s | PyTorch img/s | bijou / PyTorch | bijou device MB | PyTorch peak MB |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for cell in cells:
        b = [o["images_per_s"] for o in res[cell]["bijou"]]
        p = [o["images_per_s"] for o in res[cell]["pytorch"]]
        bm = statistics.median(o.get("device_mb", -1) for o in res[cell]["bijou"])
        pm = statistics.median(o.get("gpu_peak_mb", -1) for o in res[cell]["pytorch"])
        print(f"| {cell[0]} | {cell[1]} | {fmt(b)} | {fmt(p)} | {statistics.median(b) / statistics.median(p):.2f}x "
              f"| {bm:.0f} | {pm:.0f} |")
    if a.out:
        with open(a.out + ".tmp", "w") as f:
            json.dump({f"{c}/{i}": v for (c, i), v in res.items()}, f, indent=1)
        os.replace(a.out + ".tmp", a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
