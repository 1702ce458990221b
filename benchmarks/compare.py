#!/usr/bin/env python3
"""bijou against PyTorch, side by side on this machine: the same models (benchmarks/pytorch/bijou_torch.py
mirrors bijou's, and the parity test checks they compute the same log_prob), the same batches and the
same thread counts, each measurement in a fresh process, bijou and PyTorch interleaved, several rounds.

    benchmarks/compare.py            # the full table: Glow configs a, c, d x train/log_prob/sample x 1, 2
                                     # threads, bijou's memory-saving training, two moons; 3 rounds
    benchmarks/compare.py --quick    # config a only, 2 threads, one round: a check while optimising
    benchmarks/compare.py --configs "" --no-two-moons --toy   # only the toy flows (spline couplings, MAF)

It prints Markdown tables of medians with [min-max] ranges and the ratio bijou / PyTorch of the medians,
the training step's GFLOP/s against the FP32 FMA peak, and each process's peak RSS; --out FILE also
writes every raw measurement as JSON.

bijou's side is bench_models (benchmarks/bench_models.cpp) from the `bench` preset (-march=native):
it is built first if missing. PyTorch's side is pytorch/bench_torch.py under Debian's /usr/bin/python3
(python3-torch), tuned as a fair reference needs: Debian's OpenBLAS (libopenblas0-pthread; with only
the reference libblas3, PyTorch's linear algebra is ~10x slower), started without OPENBLAS_CORETYPE
(unless OpenBLAS would pick a core without this CPU's SIMD kernels: see --torch-coretype)
and with GLIBC_TUNABLES=glibc.malloc.mmap_threshold=...:trim_threshold=... (without them PyTorch is
2-7x slower here), and an explicit thread count (torch.set_num_threads, OMP_NUM_THREADS and
OPENBLAS_NUM_THREADS). Missing packages are installed with apt-get when running as root. Every PyTorch
process reports the BLAS it mapped; if one is not OpenBLAS, no ratio is printed and the exit status is 1.

FLOPs (issue 7's convention): 2 x the multiply-adds of the convolutions and the 1x1 invertible
convolutions; forward per image a 0.138, c 6.431, d 0.653 GFLOP; training = 3 x forward; log_prob and
sample = 1 x forward. Peak: 220 GFLOP/s per core, issue 17's figure; the targets are judged against it.
Beside it the table gives the share of the machine's own peak, measured in the same rounds
(`bench_models --model fma_peak`, every thread at once; --no-measured-peak skips it): 164-187 GFLOP/s
per core on the 2-core AVX-512 Xeon VMs, varying from day to day, 102.6 on the AVX2 EPYC VM.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
PYTHON = "/usr/bin/python3"
TORCH_ENV = {"GLIBC_TUNABLES": "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=4294967296"}
GFLOP_FORWARD = {"a": 0.138, "c": 6.431, "d": 0.653}
PEAK_PER_CORE = 220.0
ITEM_PASSES = {"train": 3, "log_prob": 1, "sample": 1}


def fail(msg: str) -> None:
    print(f"compare.py: {msg}", file=sys.stderr)
    sys.exit(2)


def have_package(name: str) -> bool:
    r = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
    return r.returncode == 0 and "install ok installed" in r.stdout


def ensure_pytorch(install: bool) -> None:
    """python3-torch with Debian's OpenBLAS, installed with apt-get when missing (as root)."""
    missing = [p for p in ("python3-torch", "libopenblas0-pthread") if not have_package(p)]
    if missing:
        if not install or os.geteuid() != 0:
            fail("missing Debian packages " + " ".join(missing) + ": install them with apt-get (as root), "
                 "or run this script as root without --no-install")
        print("compare.py: installing " + " ".join(missing), file=sys.stderr)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", *missing], check=True, env=env, stdout=subprocess.DEVNULL)


# OpenBLAS cores with AVX2 or AVX-512 SGEMM kernels (OpenBLAS 0.3.21's names)
OPENBLAS_FAST_CORES = {"Haswell", "Zen", "SkylakeX", "Cooperlake", "SapphireRapids"}


def openblas_core(env: dict) -> str:
    """The core OpenBLAS picks in a process started with env (openblas_get_corename), or '' if unknown."""
    code = ("import ctypes; l = ctypes.CDLL('libopenblas.so.0'); l.openblas_get_corename.restype = ctypes.c_char_p; "
            "print(l.openblas_get_corename().decode())")
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=env)
    return r.stdout.strip() if r.returncode == 0 else ""


def cpuinfo(key: str) -> str:
    """The value of the first /proc/cpuinfo line named key ('model name', 'flags'), or ''."""
    try:
        with open("/proc/cpuinfo") as f:
            return next((l.split(":", 1)[1].strip() for l in f if l.startswith(key) and ":" in l), "")
    except OSError:
        return ""


def choose_coretype(requested: str, env: dict) -> tuple:
    """(OPENBLAS_CORETYPE to set or '', a line for the table's header)."""
    if requested not in ("auto", "unset", ""):
        return requested, f"OPENBLAS_CORETYPE={requested} (as asked)"
    detected = openblas_core({k: v for k, v in env.items() if k != "OPENBLAS_CORETYPE"})
    if requested == "unset" or not detected or detected in OPENBLAS_FAST_CORES:
        return "", f"OPENBLAS_CORETYPE unset (OpenBLAS's core: {detected or 'unknown'})"
    flags = cpuinfo("flags").split()
    best = "SkylakeX" if "avx512f" in flags else "Haswell" if "avx2" in flags and "fma" in flags else ""
    if not best:
        return "", f"OPENBLAS_CORETYPE unset (OpenBLAS's core: {detected})"
    return best, (f"OPENBLAS_CORETYPE={best} (OpenBLAS alone takes this CPU for '{detected}', without the "
                  f"kernels this CPU runs)")


def ensure_bijou(binary: str, build: bool) -> str:
    if os.path.exists(binary):
        return binary
    if not build:
        fail(f"{binary} does not exist: build it with `cmake --preset bench && cmake --build --preset bench "
             f"--target bench_models`")
    print("compare.py: building bench_models (bench preset)", file=sys.stderr)
    subprocess.run(["cmake", "--preset", "bench"], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["cmake", "--build", "--preset", "bench", "--target", "bench_models"], cwd=ROOT, check=True,
                   stdout=subprocess.DEVNULL)
    return binary


def run_json(cmd, env=None) -> dict:
    """Runs one measurement in a fresh process; its last stdout line is one JSON object."""
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if r.returncode != 0:
        fail("command failed (" + str(r.returncode) + "): " + " ".join(cmd) + "\n" + r.stderr[-2000:])
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if not lines:
        fail("no JSON line from: " + " ".join(cmd) + "\n" + r.stdout[-2000:])
    return json.loads(lines[-1])


class Runner:
    def __init__(self, binary: str, seconds: float, coretype: str = ""):
        self.binary, self.seconds = binary, seconds
        env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
        env.update(TORCH_ENV)
        if coretype:
            env["OPENBLAS_CORETYPE"] = coretype
        self.torch_env = env

    def bijou(self, cell: dict) -> dict:
        cmd = [self.binary, "--model", cell["model"], "--threads", str(cell["threads"]), "--seconds", str(self.seconds)]
        if cell["model"] == "glow":
            cmd += ["--config", cell["config"], "--item", cell["item"]]
        elif "batch" in cell:
            cmd += ["--batch", str(cell["batch"])]
        if cell.get("memory_saving"):
            cmd.append("--memory-saving")
        return run_json(cmd)

    def torch(self, cell: dict) -> dict:
        env = dict(self.torch_env, OMP_NUM_THREADS=str(cell["threads"]), OPENBLAS_NUM_THREADS=str(cell["threads"]))
        cmd = [PYTHON, os.path.join(HERE, "pytorch", "bench_torch.py"), "--model", cell["model"], "--threads",
               str(cell["threads"]), "--seconds", str(self.seconds)]
        if cell["model"] == "glow":
            cmd += ["--config", cell["config"], "--item", cell["item"]]
        else:
            cmd += ["--batch", str(cell["batch"])]
        return run_json(cmd, env)


def speed(r: dict) -> float:
    for k in ("images_per_s", "steps_per_s", "gflops_per_core"):
        if k in r:
            return r[k]
    raise KeyError("no speed in " + json.dumps(r))


def summary(values):
    return statistics.median(values), min(values), max(values)


def fmt(values, digits=1) -> str:
    m, lo, hi = summary(values)
    return f"{m:.{digits}f} [{lo:.{digits}f}-{hi:.{digits}f}]"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="config a, 2 threads, one round, no two moons")
    ap.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 3; --quick: 1)")
    ap.add_argument("--seconds", type=float, default=None, help="timed seconds per measurement (default 6; --quick: 3)")
    ap.add_argument("--configs", default=None, help="comma-separated Glow configs (default a,c,d; --quick: a)")
    ap.add_argument("--items", default="train,log_prob,sample")
    ap.add_argument("--threads", default=None, help="comma-separated thread counts (default 1,2; --quick: 2)")
    ap.add_argument("--no-two-moons", action="store_true")
    ap.add_argument("--toy", action="store_true",
                    help="also the toy flows of examples/toy_density (spline, maf, maf_spline) at batch 512 and 128")
    ap.add_argument("--no-memory-saving", action="store_true", help="skip bijou's memory-saving training cells")
    ap.add_argument("--no-measured-peak", action="store_true",
                    help="skip measuring this machine's FMA peak (bench_models --model fma_peak) beside the Glow cells")
    ap.add_argument("--bijou", default=os.path.join(ROOT, "build", "bench", "benchmarks", "bench_models"),
                    help="bench_models binary (default: the bench preset's; built if missing)")
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--torch-coretype", default="auto",
                    help="OPENBLAS_CORETYPE for the PyTorch processes: a core name, 'unset' (OpenBLAS detects the "
                         "CPU), or 'auto' (default): unset, unless OpenBLAS takes this CPU for a core without the "
                         "AVX2 / AVX-512 kernels it could run (0.3.21 calls CPUs it does not know 'Prescott', SSE3: "
                         "its SGEMM then runs 3-5x slower), in which case SkylakeX (AVX-512F) or Haswell (AVX2)")
    ap.add_argument("--no-install", action="store_true", help="never run apt-get")
    ap.add_argument("--out", default=None, help="write all raw measurements to this JSON file")
    a = ap.parse_args()

    rounds = a.rounds or (1 if a.quick else 3)
    seconds = a.seconds or (3.0 if a.quick else 6.0)
    configs = [c for c in (a.configs if a.configs is not None else ("a" if a.quick else "a,c,d")).split(",") if c]
    threads = [int(t) for t in (a.threads or ("2" if a.quick else "1,2")).split(",")]
    items = a.items.split(",")
    two_moons = not (a.quick or a.no_two_moons)
    memory_saving = not (a.quick or a.no_memory_saving)

    ensure_pytorch(not a.no_install)
    coretype, coretype_note = choose_coretype(a.torch_coretype, dict(os.environ, **TORCH_ENV))
    runner = Runner(ensure_bijou(a.bijou, not a.no_build), seconds, coretype)

    # Cells: what both sides measure, bijou-only memory-saving training, and this machine's FMA peak at
    # each thread count (the yardstick of the GFLOP/s column, in the same rounds as the cells it judges).
    cells = []
    if configs and not a.no_measured_peak:
        for t in threads:
            cells.append(dict(model="fma_peak", threads=t, both=False))
    for c in configs:
        for it in items:
            for t in threads:
                cells.append(dict(model="glow", config=c, item=it, threads=t, both=True))
                if it == "train" and memory_saving:
                    cells.append(dict(model="glow", config=c, item=it, threads=t, memory_saving=True, both=False))
    if two_moons:
        for b in (512, 128):
            for t in threads:
                cells.append(dict(model="two_moons", batch=b, threads=t, both=True))
    if a.toy:
        for m in ("spline", "maf", "maf_spline"):
            for b in (512, 128):
                for t in threads:
                    cells.append(dict(model=m, batch=b, threads=t, both=True))

    results = {i: {"bijou": [], "pytorch": []} for i in range(len(cells))}
    t0 = time.time()
    for r in range(rounds):
        for i, cell in enumerate(cells):
            sides = ["bijou", "pytorch"] if cell["both"] else ["bijou"]
            if r % 2 == 1:
                sides.reverse()  # alternate which side runs first
            for side in sides:
                res = runner.bijou(cell) if side == "bijou" else runner.torch(cell)
                results[i][side].append(res)
                label = cell.get("config", "") or (f"b{cell['batch']}" if "batch" in cell else "")
                item = cell.get("item", "train" if cell["model"] != "fma_peak" else "GFLOP/s per core")
                print(f"round {r + 1}/{rounds} {side:7s} {cell['model']} {label} {item} "
                      f"{cell['threads']}T{' memory-saving' if cell.get('memory_saving') else ''}: "
                      f"{speed(res):.1f}/s, peak RSS {res['peak_rss_mb']:.0f} MB  ({time.time() - t0:.0f} s)",
                      file=sys.stderr, flush=True)

    torch_runs = [res for v in results.values() for res in v["pytorch"]]
    blas_ok = all("openblas" in res.get("blas", "") for res in torch_runs)
    torch_version = torch_runs[0]["torch"] if torch_runs else "?"
    blas = torch_runs[0]["blas"] if torch_runs else "?"

    cpu = cpuinfo("model name") or "unknown CPU"
    print(f"# bijou vs PyTorch {torch_version} ({blas}), {time.strftime('%Y-%m-%d')}, {cpu}, "
          f"{os.cpu_count()} CPUs; {rounds} interleaved round(s), {seconds:g} s per measurement; "
          f"medians [min-max]; PyTorch's {coretype_note}\n")
    if not blas_ok:
        print("**PyTorch did not load OpenBLAS** (blas: " + ", ".join(sorted({r['blas'] for r in torch_runs})) +
              "): no ratios; install libopenblas0-pthread.\n")

    measured = {c["threads"]: [speed(r) for r in results[i]["bijou"]]
                for i, c in enumerate(cells) if c["model"] == "fma_peak"}
    if measured:
        print("This machine's FP32 FMA peak, measured in the same rounds (bench_models --model fma_peak, every "
              "thread at once; GFLOP/s per core): " +
              ", ".join(f"{t} thread{'s' if t > 1 else ''} {fmt(v)}" for t, v in sorted(measured.items())) +
              f". The targets are judged against issue 17's {PEAK_PER_CORE:.0f}.\n")
    glow = [(i, c) for i, c in enumerate(cells) if c["model"] == "glow"]
    if glow:
        share = "% of 220 / of measured peak" if measured else "% of peak"
        print(f"| config | item | threads | bijou img/s | PyTorch img/s | bijou / PyTorch | bijou GFLOP/s ({share}) "
              "| target |")
        print("|---|---|---:|---:|---:|---:|---:|---|")
        for i, c in glow:
            if not c["both"]:
                continue
            b = [speed(r) for r in results[i]["bijou"]]
            p = [speed(r) for r in results[i]["pytorch"]]
            ratio = statistics.median(b) / statistics.median(p)
            peak = PEAK_PER_CORE * c["threads"]
            gflops = statistics.median(b) * GFLOP_FORWARD[c["config"]] * ITEM_PASSES[c["item"]]
            # issue 17: config a needs 2x PyTorch; configs c and d 60% of the peak or 2x PyTorch
            if c["config"] == "a":
                target = f"2x: {'met' if ratio >= 2.0 else 'not met'}"
            else:
                met = gflops >= 0.6 * peak or ratio >= 2.0
                target = f"60% of peak or 2x: {'met' if met else 'not met'}"
            pct = f"{100 * gflops / peak:.0f}%"
            if c["threads"] in measured:
                pct += f" / {100 * gflops / (statistics.median(measured[c['threads']]) * c['threads']):.0f}%"
            print(f"| {c['config']} | {c['item']} | {c['threads']} | {fmt(b)} | {fmt(p)} | "
                  f"{ratio:.2f}x | {gflops:.1f} ({pct}) | {target if blas_ok else 'n/a'} |")

        print("\nPeak RSS of the process (MB); bijou's training in both memory modes. bijou's parameters + "
              "gradients + Adam moments and its activation arena are listed separately.\n")
        print("| config | item | threads | bijou, stored activations | bijou, memory-saving | PyTorch | "
              "best bijou / PyTorch | bijou params+grads+Adam MB | bijou arena MB (stored / memory-saving) |")
        print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
        for i, c in glow:
            if not c["both"]:
                continue
            ms = next((j for j, d in glow if not d["both"] and d["config"] == c["config"] and
                       d["item"] == c["item"] and d["threads"] == c["threads"]), None)
            b = [r["peak_rss_mb"] for r in results[i]["bijou"]]
            p = [r["peak_rss_mb"] for r in results[i]["pytorch"]]
            m = [r["peak_rss_mb"] for r in results[ms]["bijou"]] if ms is not None else None
            best = min(statistics.median(b), statistics.median(m) if m else float("inf"))
            arena = f"{results[i]['bijou'][0]['workspace_mb']:.0f}"
            if ms is not None:
                arena += f" / {results[ms]['bijou'][0]['workspace_mb']:.0f}"
            m_txt = f"{statistics.median(m):.0f}" if m else "-"
            print(f"| {c['config']} | {c['item']} | {c['threads']} | {statistics.median(b):.0f} | {m_txt} | "
                  f"{statistics.median(p):.0f} | {best / statistics.median(p):.2f} | "
                  f"{results[i]['bijou'][0]['params_mb']:.1f} | {arena} |")

        ms_cells = [(i, c) for i, c in glow if not c["both"]]
        if ms_cells:
            print("\nbijou's memory-saving training (recomputes activations in backward):\n")
            print("| config | threads | bijou img/s | vs PyTorch's training |")
            print("|---|---:|---:|---:|")
            for i, c in ms_cells:
                b = [speed(r) for r in results[i]["bijou"]]
                j = next(j for j, d in glow if d["both"] and d["config"] == c["config"] and d["item"] == "train"
                         and d["threads"] == c["threads"])
                p = [speed(r) for r in results[j]["pytorch"]]
                print(f"| {c['config']} | {c['threads']} | {fmt(b)} | {statistics.median(b) / statistics.median(p):.2f}x |")

    toy = [(i, c) for i, c in enumerate(cells) if c["model"] in ("spline", "maf", "maf_spline")]
    if toy:
        print("\nToy flows (examples/toy_density's defaults: spline = 4 rational-quadratic couplings, maf = 8 "
              "affine MAF layers, maf_spline = 4 spline MAF layers; hidden 128 x 2), training steps/s; the ratio "
              "is against PyTorch's best thread count for that model and batch.\n")
        print("| model | batch | threads | bijou steps/s | PyTorch steps/s | bijou / PyTorch's best | target 2x |")
        print("|---|---:|---:|---:|---:|---:|---|")
        for i, c in toy:
            best_p = max(statistics.median([speed(r) for r in results[j]["pytorch"]])
                         for j, d in toy if d["batch"] == c["batch"] and d["model"] == c["model"])
            b = [speed(r) for r in results[i]["bijou"]]
            p = [speed(r) for r in results[i]["pytorch"]]
            ratio = statistics.median(b) / best_p
            print(f"| {c['model']} | {c['batch']} | {c['threads']} | {fmt(b)} | {fmt(p)} | {ratio:.2f}x | "
                  f"{('met' if ratio >= 2 else 'not met') if blas_ok else 'n/a'} |")

    tm = [(i, c) for i, c in enumerate(cells) if c["model"] == "two_moons"]
    if tm:
        print("\nTwo moons (RealNVP, 8 couplings, hidden 256), training steps/s; the ratio is against PyTorch's "
              "best thread count at that batch.\n")
        print("| batch | threads | bijou steps/s | PyTorch steps/s | bijou / PyTorch's best | target 3x |")
        print("|---:|---:|---:|---:|---:|---|")
        for i, c in tm:
            best_p = max(statistics.median([speed(r) for r in results[j]["pytorch"]])
                         for j, d in tm if d["batch"] == c["batch"])
            b = [speed(r) for r in results[i]["bijou"]]
            p = [speed(r) for r in results[i]["pytorch"]]
            ratio = statistics.median(b) / best_p
            print(f"| {c['batch']} | {c['threads']} | {fmt(b)} | {fmt(p)} | {ratio:.2f}x | "
                  f"{('met' if ratio >= 3 else 'not met') if blas_ok else 'n/a'} |")

    if a.out:
        tmp = a.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"cells": cells, "results": results, "rounds": rounds, "seconds": seconds}, f, indent=1)
        os.replace(tmp, a.out)
    return 0 if blas_ok else 1


if __name__ == "__main__":
    sys.exit(main())
