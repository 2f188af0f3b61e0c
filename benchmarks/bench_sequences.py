"""Bench 3: SequenceTransformer frames/s vs training frames/s and vs a scipy loop.

Builds rotation + colour sequences of MNIST-sized digits (S = 18, coloured to 3
channels) and compares, in one run: the transformer's frames/s, the training frames/s of
the paper-sized TopographicVAE (target: sequences at least 10x faster, so building them
never holds training back), and a per-image ``scipy.ndimage.rotate`` loop.

Run: ``python benchmarks/bench_sequences.py``.
"""

import argparse
import time

import numpy as np
import scipy.ndimage as ndi

from _common import C, D, HIDDEN, MNIST, N_FEATURES, S, report
from sktvae import SequenceTransformer, TopographicVAE
from sktvae.datasets import fetch_mnist


def images(n):
    if MNIST.exists():
        return fetch_mnist(path=MNIST).x_train[:n].reshape(n, -1) / np.float32(255)
    return np.random.default_rng(0).random((n, 28 * 28), np.float32)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=2000)
    args = parser.parse_args()
    X = images(args.images).astype(np.float32)
    seq = SequenceTransformer(["rotation", "hue"], sequence_length=S, color="red",
                              random_state=0).fit(X)
    seq.transform(X[:50])  # warm-up
    # The first full call also pays the page faults of its fresh output array (0.34 GB
    # here); repeated calls reuse freed memory. Both are reported.
    fps = []
    for _ in range(3):
        start = time.perf_counter()
        X_seq = seq.transform(X)
        fps.append(X_seq.shape[0] * S / (time.perf_counter() - start))
    seq_fps, warm_fps = fps[0], max(fps[1:])

    grey = SequenceTransformer("rotation", sequence_length=S, random_state=0).fit(X)
    grey.transform(X[:50])
    start = time.perf_counter()
    grey.transform(X)
    grey_fps = len(X) * S / (time.perf_counter() - start)

    n_scipy = min(100, len(X))
    start = time.perf_counter()
    for img in X[:n_scipy].reshape(-1, 28, 28):
        for k in range(S):
            ndi.rotate(img, 360 * k / S, reshape=False, order=1)
    scipy_fps = n_scipy * S / (time.perf_counter() - start)

    est = TopographicVAE(C, D, S, hidden_layer_sizes=HIDDEN, max_epochs=2, random_state=0)
    est.fit(X_seq[:96])
    train_fps = 96 * S / est.history_[-1, "dur"]
    report("bench_sequences: building sequences", [
        ("SequenceTransformer frames/s (rotation + hue, 3x28x28), first call", seq_fps, ""),
        ("  repeated calls (output memory already mapped)", warm_fps, ""),
        ("TopographicVAE.fit frames/s (paper-sized model)", train_fps, ""),
        ("sequences / training, first call", seq_fps / train_fps, ">= 10"),
        ("sequences / training, repeated calls", warm_fps / train_fps, ">= 10"),
        ("per-image scipy.ndimage.rotate loop frames/s (rotation only, 1 channel)",
         scipy_fps, ""),
        ("SequenceTransformer frames/s (rotation only, 1 channel)", grey_fps, ""),
        ("SequenceTransformer / scipy loop, same task", grey_fps / scipy_fps, ""),
    ])
    assert X_seq.shape[1] == S * N_FEATURES


if __name__ == "__main__":
    main()
