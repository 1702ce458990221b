#!/usr/bin/env python3
"""Projected data-parallel scaling of bijou's training (docs/distributed.md), on paper.

A ring all-reduce moves 2(N-1)/N of the gradient bytes in and out of every rank per step and takes
2(N-1) latency-bound hops:  T_allreduce = 2(N-1)/N * S / bandwidth + 2(N-1) * alpha.
Against the measured compute time T_c of one rank's step (its shard of the batch), the step takes
T_c + T_allreduce without overlap (bijou today) and max(T_c, T_allreduce) with perfect overlap of
the all-reduce and the backward pass. Every rank also handles the whole global batch where it
draws it (mnist_glow gathers the batch's bytes on every rank, then keeps its rows): (N-1) * b extra
images of that work, at the measured cost per image.

Weak scaling: every rank keeps its batch b (the global batch grows as N*b). Efficiency = T_c / step.

  scaling_projection.py --params 793108 --step-seconds 0.305 --batch 64 --redundant-seconds 1.09e-7
"""
import argparse


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", default="config")
    p.add_argument("--params", type=int, required=True, help="trainable parameters (float32 gradients)")
    p.add_argument("--step-seconds", type=float, required=True, help="measured compute time of one rank's step")
    p.add_argument("--batch", type=int, required=True, help="images per rank per step")
    p.add_argument("--redundant-seconds", type=float, default=0.0,
                   help="measured time per image of the global batch that every rank spends besides its own rows")
    p.add_argument("--alpha-us", type=float, default=10.0, help="latency per ring hop, microseconds")
    p.add_argument("--ranks", default="8,64,512")
    p.add_argument("--gbps", default="10,25,100")
    a = p.parse_args()
    size = 4.0 * a.params
    print(f"{a.name}: {a.params:,} parameters = {size / 1e6:.2f} MB of gradients; compute {a.step_seconds * 1e3:.0f} ms "
          f"per step of {a.batch} images per rank; latency {a.alpha_us:g} us per hop")
    print()
    print("| ranks | network | all-reduce ms | other ranks' images ms | efficiency, no overlap | with overlap |")
    print("|---|---|---|---|---|---|")
    for n in [int(x) for x in a.ranks.split(",")]:
        for g in [float(x) for x in a.gbps.split(",")]:
            bw = g * 1e9 / 8
            t_ar = 2 * (n - 1) / n * size / bw + 2 * (n - 1) * a.alpha_us * 1e-6
            t_dq = (n - 1) * a.batch * a.redundant_seconds
            tc = a.step_seconds
            eff = tc / (tc + t_dq + t_ar)
            eff_o = tc / (max(tc, t_ar) + t_dq)
            print(f"| {n} | {g:g} Gb/s | {t_ar * 1e3:.1f} | {t_dq * 1e3:.1f} | {100 * eff:.0f}% | {100 * eff_o:.0f}% |")


if __name__ == "__main__":
    main()
