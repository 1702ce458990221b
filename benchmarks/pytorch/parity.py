#!/usr/bin/env python3
"""Parity check of bijou against its PyTorch mirror (bijou_torch.py).

    parity.py --checkpoint MODEL.ckpt.safetensors --batch-file MODEL.batch.safetensors [--tolerance 1e-4]

The batch file (written by benchmarks/parity_dump.cpp) holds "x" (the batch, (n, C, H, W) or (n, D)),
"log_prob" (bijou's log p(x), nats, (n,)) and optionally "z" (bijou's flat latent of x), "z_sample"
and "x_sample" (a latent and bijou's inverse of it); its __metadata__ gives the model ("Glow" or
"RealNVP") and its options. This builds the PyTorch model, loads the bijou checkpoint into it, and
compares, in float64 and in float32:
  log_prob   max |torch - bijou| / max(|bijou|, 1)            must be <= tolerance (default 1e-4)
  z, x       max |torch - bijou| / max(max |bijou|, 1)         (latent layout and inverse), same bound
Relative differences are taken against max(|value|, 1) so that values near zero (two-moons densities
can be) are compared absolutely. Prints one line per comparison; exit 0 if all pass, 1 if any fails,
77 (ctest's skip) if torch cannot be imported.
"""

import argparse
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--batch-file", required=True)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    args = ap.parse_args()
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install (missing BLAS, …)
        print(f"parity: skipped, torch is not importable ({type(e).__name__}: {e})")
        return 77
    torch.set_num_threads(1)
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import bijou_torch as bt

    batch, meta = bt.read_safetensors(args.batch_file)
    for key in ("x", "log_prob"):
        if key not in batch:
            print(f"parity: {args.batch_file} has no tensor '{key}'")
            return 1
    ok = True
    print(f"parity: {meta.get('model')} shape {meta.get('shape')}, n = {batch['x'].shape[0]}, "
          f"checkpoint {os.path.basename(args.checkpoint)}")
    for dtype in (torch.float64, torch.float32):
        model = bt.model_from_config(meta)
        bt.load_bijou_checkpoint(model, args.checkpoint)
        model = model.to(dtype).eval()
        name = str(dtype).replace("torch.", "")
        with torch.no_grad():
            x = batch["x"].to(dtype)
            lp = model.log_prob(x).double()
            ref = batch["log_prob"].double()
            rel = ((lp - ref).abs() / ref.abs().clamp_min(1.0)).max().item()
            absd = (lp - ref).abs().max().item()
            good = rel <= args.tolerance
            ok &= good
            print(f"  {name:7s} log_prob  max rel diff {rel:.3e}  (max abs {absd:.3e} nats)  "
                  f"{'ok' if good else 'FAIL'}")
            checks = []
            if "z" in batch:
                checks.append(("z", model.forward(x)[0], batch["z"]))
            if "z_sample" in batch and "x_sample" in batch:
                checks.append(("x_sample", model.inverse(batch["z_sample"].to(dtype))[0], batch["x_sample"]))
            for label, got, want in checks:
                want = want.double()
                got = got.double().reshape(want.shape)
                rel = ((got - want).abs().max() / want.abs().max().clamp_min(1.0)).item()
                good = rel <= args.tolerance
                ok &= good
                print(f"  {name:7s} {label:9s} max rel diff {rel:.3e}  {'ok' if good else 'FAIL'}")
    print("parity: " + ("PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
