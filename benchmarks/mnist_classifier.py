#!/usr/bin/python3
"""A small MNIST digit classifier, to score the digits that a class-conditional Glow draws.

    mnist_classifier.py train [--data DIR] [--weights FILE] [--threads N] [--epochs E] [--seed S]
    mnist_classifier.py classify DIR [DIR ...] [--weights FILE] [--expect D] [--threads N]
                                 [--min-accuracy F]

train: trains a small CNN (two 5x5 conv + pool blocks, 16 and 32 channels, then 1568 -> 128 -> 10;
215,370 parameters) on the MNIST IDX files shipped in examples/data/mnist (read with gzip + numpy;
raw or .gz), with Adam and a one-cycle learning rate, seeded (Python, NumPy, torch) so that a rerun on the same machine and thread count
gives the same weights. Prints the test accuracy on the 10,000 test images and the training time,
and saves the weights (default benchmarks/out/mnist_classifier.pt; a generated file: do not commit
it). Exits 1 when the test accuracy is below --min-accuracy (default 0.985).

classify: loads the weights and classifies every *.png in each DIR (28x28 8-bit grey or RGB,
non-interlaced, as bijou's examples write them; 32x32 images, mnist_glow's padded size, are centre-
cropped to 28x28). Pixels are read as 0..255 grey, white digit on black like MNIST, and scaled
exactly as the training images are. For each DIR it prints the count and the histogram of the
predicted classes and, when the requested digit is known (--expect D, or else a directory name
containing "digit_D", as `mnist_glow sample --digit D --each` writes OUT/digit_D_t0.70/), the
fraction classified as D. The last line is one JSON object:
    {"dirs": {DIR: {"n": N, "expected": D|null, "accuracy": F|null, "histogram": [10 counts]}},
     "overall_accuracy": F|null}
overall_accuracy pools every image of the directories whose digit is known. With --min-accuracy F it
exits 1 when overall_accuracy is below F.

Needs PyTorch (Debian's python3-torch, CPU) and NumPy only: no torchvision, PIL or network. PNGs are
decoded with zlib + struct. Run with /usr/bin/python3 (Debian's torch); started by another python3
without torch, the script re-executes itself under /usr/bin/python3.
"""

import argparse
import gzip
import json
import os
import random
import re
import struct
import sys
import time
import zlib

try:
    import numpy as np
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError:  # e.g. a pyenv python3 first in PATH: Debian's torch lives under /usr/bin/python3
    if os.path.realpath(sys.executable) != os.path.realpath("/usr/bin/python3") and os.path.exists("/usr/bin/python3"):
        os.execv("/usr/bin/python3", ["/usr/bin/python3", os.path.abspath(__file__)] + sys.argv[1:])
    sys.exit("mnist_classifier.py needs PyTorch and NumPy (apt-get install python3-torch python3-numpy)")

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DATA = os.path.join(REPO, "examples", "data", "mnist")
DEFAULT_WEIGHTS = os.path.join(HERE, "out", "mnist_classifier.pt")

# The standard MNIST mean / standard deviation of x / 255 over the training set; used for training
# images and PNGs alike.
MEAN, STD = 0.1307, 0.3081
SIDE = 28


# ---- data -------------------------------------------------------------------------------------------

def read_idx(path):
    """An IDX file (raw, or path + '.gz' / a .gz path) as a NumPy array of its dtype and shape."""
    if not os.path.exists(path) and os.path.exists(path + ".gz"):
        path = path + ".gz"
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file")
    kinds = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in kinds:
        raise ValueError(f"{path}: unknown IDX element type 0x{data[2]:02x}")
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    arr = np.frombuffer(data, dtype=kinds[data[2]], offset=4 + 4 * ndim)
    if arr.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {arr.size} values, header says {dims}")
    return arr.reshape(dims)


def load_mnist(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    x = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte"))
    y = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte"))
    if x.ndim != 3 or x.shape[1:] != (SIDE, SIDE) or y.shape != (x.shape[0],):
        raise ValueError(f"{data_dir}: unexpected MNIST shapes {x.shape} / {y.shape}")
    return x, y


def to_input(images_u8):
    """uint8 images (N, 28, 28), 0..255, to the network's input: (N, 1, 28, 28) float32, normalised."""
    x = torch.from_numpy(np.array(images_u8, dtype=np.uint8)).float().div_(255.0)  # a copy: writable
    return x.sub_(MEAN).div_(STD).unsqueeze(1)


# ---- PNG (8-bit, non-interlaced) --------------------------------------------------------------------

def _paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def read_png_grey(path):
    """A PNG as a (height, width) uint8 grey array. Bit depth 8, non-interlaced; colour types 0 (grey),
    2 (RGB), 4 (grey + alpha) and 6 (RGBA); colour is converted with the ITU-R 601 luma weights and
    alpha is ignored (bijou writes opaque images with R = G = B)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path}: not a PNG file")
    pos, ihdr, idat = 8, None, []
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if len(body) != length or pos + 12 + length > len(data):
            raise ValueError(f"{path}: truncated PNG chunk {kind!r}")
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        if zlib.crc32(kind + body) & 0xFFFFFFFF != crc:
            raise ValueError(f"{path}: bad CRC in PNG chunk {kind!r}")
        if kind == b"IHDR":
            ihdr = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
        pos += 12 + length
    if ihdr is None or not idat:
        raise ValueError(f"{path}: PNG without IHDR or IDAT")
    width, height, depth, colour, _compression, _filter, interlace = ihdr
    channels = {0: 1, 2: 3, 4: 2, 6: 4}.get(colour)
    if depth != 8 or channels is None or interlace != 0:
        raise ValueError(f"{path}: unsupported PNG (bit depth {depth}, colour type {colour}, interlace "
                         f"{interlace}); only 8-bit non-interlaced grey / RGB (+ alpha) is read")
    raw = zlib.decompress(b"".join(idat))
    stride = width * channels
    if len(raw) < height * (stride + 1):
        raise ValueError(f"{path}: PNG image data too short")
    out = bytearray(height * stride)
    prev = bytearray(stride)
    bpp = channels
    for r in range(height):
        ftype = raw[r * (stride + 1)]
        line = bytearray(raw[r * (stride + 1) + 1:(r + 1) * (stride + 1)])
        if ftype == 1:  # Sub
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 0xFF
        elif ftype == 2:  # Up
            for i in range(stride):
                line[i] = (line[i] + prev[i]) & 0xFF
        elif ftype == 3:  # Average
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 0xFF
        elif ftype == 4:  # Paeth
            for i in range(stride):
                left = line[i - bpp] if i >= bpp else 0
                upleft = prev[i - bpp] if i >= bpp else 0
                line[i] = (line[i] + _paeth(left, prev[i], upleft)) & 0xFF
        elif ftype != 0:
            raise ValueError(f"{path}: bad PNG filter type {ftype} in row {r}")
        out[r * stride:(r + 1) * stride] = line
        prev = line
    img = np.frombuffer(bytes(out), dtype=np.uint8).reshape(height, width, channels)
    if channels >= 3:
        rgb = img[:, :, :3].astype(np.float64)
        return np.clip(np.rint(rgb @ np.array([0.299, 0.587, 0.114])), 0, 255).astype(np.uint8)
    return img[:, :, 0].copy()


def to_28(img, path):
    """28x28 as is; 32x32 (mnist_glow's zero-padded size) centre-cropped; anything else an error."""
    h, w = img.shape
    if (h, w) == (SIDE, SIDE):
        return img
    if (h, w) == (32, 32):
        return img[2:30, 2:30]
    raise ValueError(f"{path}: {w}x{h} image; expected 28x28 (or 32x32, centre-cropped)")


# ---- model ------------------------------------------------------------------------------------------

class Net(nn.Module):
    """conv5x5(1->c1) ReLU maxpool2 | conv5x5(c1->c2) ReLU maxpool2 | dropout | fc 49*c2->hidden ReLU | dropout |
    fc hidden->10 (defaults c1 = 16, c2 = 32, hidden = 128)."""

    def __init__(self, c1=16, c2=32, hidden=128, dropout=0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 5, padding=2)
        self.conv2 = nn.Conv2d(c1, c2, 5, padding=2)
        self.fc1 = nn.Linear(c2 * 7 * 7, hidden)
        self.fc2 = nn.Linear(hidden, 10)
        self.drop = nn.Dropout(dropout)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.drop(torch.flatten(x, 1))
        x = self.drop(F.relu(self.fc1(x)))
        return self.fc2(x)


def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    try:
        torch.use_deterministic_algorithms(True)
    except Exception:  # older torch: best effort
        pass


@torch.no_grad()
def predict(model, images_u8, batch=1000):
    model.eval()
    out = []
    for i in range(0, len(images_u8), batch):
        out.append(model(to_input(images_u8[i:i + batch])).argmax(1))
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


# ---- commands ---------------------------------------------------------------------------------------

def cmd_train(args):
    torch.set_num_threads(args.threads)
    seed_everything(args.seed)
    x_train, y_train = load_mnist(args.data, "train")
    x_test, y_test = load_mnist(args.data, "test")
    print(f"MNIST from {args.data}: {len(x_train)} training, {len(x_test)} test images; "
          f"torch {torch.__version__}, {args.threads} thread(s)", flush=True)

    model = Net(c1=args.c1, c2=args.c2, hidden=args.hidden)
    n_params = sum(p.numel() for p in model.parameters())
    xt = to_input(x_train)
    yt = torch.from_numpy(y_train.astype(np.int64))
    steps_per_epoch = (len(xt) + args.batch - 1) // args.batch
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, epochs=args.epochs,
                                                steps_per_epoch=steps_per_epoch)
    gen = torch.Generator().manual_seed(args.seed)
    print(f"model: {n_params} parameters; {args.epochs} epoch(s), batch {args.batch}, Adam, one-cycle lr max "
          f"{args.lr}, seed {args.seed}", flush=True)

    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        perm = torch.randperm(len(xt), generator=gen)
        total, correct, loss_sum = 0, 0, 0.0
        for s in range(steps_per_epoch):
            idx = perm[s * args.batch:(s + 1) * args.batch]
            xb, yb = xt[idx], yt[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            total += len(yb)
            correct += int((logits.argmax(1) == yb).sum())
            loss_sum += float(loss) * len(yb)
        acc = float((predict(model, x_test) == y_test).mean())
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / total:.4f}, train accuracy "
              f"{correct / total:.4f}, test accuracy {acc:.4f}, {time.perf_counter() - t0:.1f} s", flush=True)
    train_s = time.perf_counter() - t0

    pred = predict(model, x_test)
    acc = float((pred == y_test).mean())
    per_digit = [float((pred[y_test == d] == d).mean()) for d in range(10)]
    os.makedirs(os.path.dirname(os.path.abspath(args.weights)), exist_ok=True)
    tmp = args.weights + ".tmp"
    torch.save({"state_dict": model.state_dict(),
                "arch": {"c1": args.c1, "c2": args.c2, "hidden": args.hidden},
                "normalisation": {"scale": 255.0, "mean": MEAN, "std": STD},
                "test_accuracy": acc, "seed": args.seed, "epochs": args.epochs}, tmp)
    os.replace(tmp, args.weights)
    print(f"test accuracy: {acc:.4f} ({int((pred == y_test).sum())}/{len(y_test)} correct)")
    print("per-digit test accuracy: " + " ".join(f"{d}:{a:.4f}" for d, a in enumerate(per_digit)))
    print(f"training time: {train_s:.1f} s ({args.epochs} epochs, {args.threads} thread(s))")
    print(f"weights saved to {args.weights} (a generated file: do not add it to git)")
    print(json.dumps({"test_accuracy": acc, "train_seconds": round(train_s, 2), "epochs": args.epochs,
                      "threads": args.threads, "parameters": n_params, "weights": args.weights}))
    if acc < args.min_accuracy:
        print(f"FAIL: test accuracy {acc:.4f} below --min-accuracy {args.min_accuracy}", file=sys.stderr)
        return 1
    return 0


def expected_digit(directory, expect):
    if expect is not None:
        return expect
    m = re.search(r"digit_(\d)(?!\d)", os.path.basename(os.path.normpath(directory)))
    return int(m.group(1)) if m else None


def cmd_classify(args):
    torch.set_num_threads(args.threads)
    if not os.path.exists(args.weights):
        print(f"no weights at {args.weights}: run `mnist_classifier.py train` first", file=sys.stderr)
        return 2
    ckpt = torch.load(args.weights, map_location="cpu")
    model = Net(**ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()

    result, pooled_n, pooled_ok = {}, 0, 0
    for d in args.dirs:
        if not os.path.isdir(d):
            print(f"{d}: not a directory", file=sys.stderr)
            return 2
        files = sorted(f for f in os.listdir(d) if f.lower().endswith(".png"))
        imgs = [to_28(read_png_grey(os.path.join(d, f)), os.path.join(d, f)) for f in files]
        pred = predict(model, np.stack(imgs) if imgs else np.zeros((0, SIDE, SIDE), np.uint8))
        hist = [int((pred == k).sum()) for k in range(10)]
        exp = expected_digit(d, args.expect)
        acc = None
        if exp is not None and len(pred):
            ok = int((pred == exp).sum())
            acc = ok / len(pred)
            pooled_n, pooled_ok = pooled_n + len(pred), pooled_ok + ok
        print(f"{d}: {len(pred)} images; predicted classes " + " ".join(f"{k}:{c}" for k, c in enumerate(hist)))
        if acc is not None:
            print(f"{d}: {acc:.4f} classified as the requested digit {exp} ({int(round(acc * len(pred)))}/{len(pred)})")
        result[d] = {"n": len(pred), "expected": exp, "accuracy": acc, "histogram": hist}
    overall = pooled_ok / pooled_n if pooled_n else None
    print(json.dumps({"dirs": result, "overall_accuracy": overall}))
    if args.min_accuracy is not None and (overall is None or overall < args.min_accuracy):
        print(f"FAIL: overall accuracy {overall} below --min-accuracy {args.min_accuracy}", file=sys.stderr)
        return 1
    return 0


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    tr = sub.add_parser("train", help="train on MNIST and save the weights")
    tr.add_argument("--data", default=DEFAULT_DATA, help="directory of the MNIST IDX files (raw or .gz)")
    tr.add_argument("--weights", default=DEFAULT_WEIGHTS, help="where to save the weights")
    tr.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    tr.add_argument("--epochs", type=int, default=3)
    tr.add_argument("--batch", type=int, default=128)
    tr.add_argument("--lr", type=float, default=3e-3, help="peak learning rate of the one-cycle schedule")
    tr.add_argument("--c1", type=int, default=16, help="channels of the first conv layer")
    tr.add_argument("--c2", type=int, default=32, help="channels of the second conv layer")
    tr.add_argument("--hidden", type=int, default=128, help="width of the hidden fully connected layer")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--min-accuracy", type=float, default=0.985,
                    help="exit 1 when the test accuracy is below this (the weights are saved anyway)")
    cl = sub.add_parser("classify", help="classify the PNGs in each directory")
    cl.add_argument("dirs", nargs="+", metavar="DIR")
    cl.add_argument("--weights", default=DEFAULT_WEIGHTS)
    cl.add_argument("--expect", type=int, choices=range(10), metavar="D",
                    help="the requested digit for every DIR (default: from a 'digit_D' in the directory name)")
    cl.add_argument("--threads", type=int, default=2)
    cl.add_argument("--min-accuracy", type=float, default=None,
                    help="exit 1 when overall_accuracy is below this (e.g. 0.9)")
    args = ap.parse_args(argv)
    return cmd_train(args) if args.cmd == "train" else cmd_classify(args)


if __name__ == "__main__":
    sys.exit(main())
