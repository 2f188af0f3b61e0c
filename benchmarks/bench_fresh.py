"""Sequences drawn afresh every epoch against precomputed ones: memory and speed.

The paper's colour MNIST setting: every training digit becomes a sequence of S = 18
coloured frames (rotation and hue together). Precomputed, the sequences of all 60 000
digits take ``60 000 x 18 x 3 x 784`` values (5.1 GB in float16);
``SequenceTransformer(fresh_each_epoch=True)`` holds the grey digits (188 MB in
float32) and renders each batch as it trains, new sequences every epoch. Printed: the
bytes each holds (the precomputed array is built, in float16, and measured), and the
training frames/s of the paper's TVAE on the same ``--train`` digits both ways (one
epoch each, bfloat16 where the CPU has it), as a ratio measured in one run.

Run: ``python benchmarks/bench_fresh.py`` (``--digits 60000 --train 2000``; about
three minutes and 6 GB of memory on 2 cores).
"""

import argparse
import time

import numpy as np
import torch

from _common import MNIST, report
from sktvae import SequenceTransformer, TopographicVAE

S = 18


def transformer(fresh, dtype=np.float32):
    return SequenceTransformer(["rotation", "hue"], sequence_length=S, color="red",
                               dtype=dtype, random_state=0, fresh_each_epoch=fresh)


def frames_per_second(X, n_rows):
    est = TopographicVAE(18, 18, S, hidden_layer_sizes=(972, 648), max_epochs=1,
                         precision="auto", random_state=0)
    start = time.perf_counter()
    est.fit(X)
    return n_rows * S / (time.perf_counter() - start)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--digits", type=int, default=60000)
    parser.add_argument("--train", type=int, default=2000)
    return parser.parse_args(argv)


def run(args, images=None):
    """``images``: uint8 rows of 784 pixels (default the MNIST training digits)."""
    if images is None:
        with np.load(MNIST) as data:
            images = data["x_train"][:args.digits].reshape(-1, 784)
    fresh = transformer(True).fit_transform(images)
    fresh_bytes = 4 * images.size  # the float32 digits it holds
    precomputed = transformer(False, np.float16).fit_transform(images)
    precomputed_bytes = precomputed.nbytes
    del precomputed
    train = images[:args.train]
    fps_fresh = frames_per_second(transformer(True).fit_transform(train), len(train))
    fps_pre = frames_per_second(
        transformer(False, np.float16).fit_transform(train), len(train))
    print(f"{args.digits} digits, S = {S}, colour; training speed on {args.train} digits "
          f"[{torch.get_num_threads()} torch threads]")
    report("fresh sequences against precomputed", [
        ("precomputed float16 (GB)", precomputed_bytes / 1e9, ""),
        ("fresh: the digits it holds (GB)", fresh_bytes / 1e9, ""),
        ("memory, precomputed / fresh", precomputed_bytes / fresh_bytes, ""),
        ("training frames/s, precomputed", fps_pre, ""),
        ("training frames/s, fresh", fps_fresh, ""),
        ("speed, fresh / precomputed", fps_fresh / fps_pre, ""),
    ])
    del fresh
    return {"memory ratio": precomputed_bytes / fresh_bytes, "speed ratio": fps_fresh / fps_pre}


if __name__ == "__main__":
    run(parse_args())
