"""Bench 4: fitting on all 60 000 MNIST digits as rotation sequences in bounded memory.

As float32 the sequences (60 000 x 18 frames x 3x28x28) would take 10.2 GB. Built with
``SequenceTransformer(dtype=np.float16)`` they take 5.1 GB, and TopographicVAE keeps
float16 input as it is, converting each batch on its way into the model. The fit runs
for ``--batches`` batches (a callback then interrupts it, which skorch handles as a
clean stop), enough to reach the steady-state memory of training. Target: <= 6 GB peak.

Run: ``python benchmarks/bench_memory.py`` (needs ../shared/datasets/mnist.npz; about
two minutes).
"""

import argparse

import numpy as np
from skorch.callbacks import Callback

from _common import C, D, HIDDEN, MNIST, S, peak_rss_gib, report
from sktvae import SequenceTransformer, TopographicVAE
from sktvae.datasets import fetch_mnist


class StopAfter(Callback):
    def __init__(self, n_batches):
        self.n_batches = n_batches

    def on_batch_end(self, net, **kwargs):
        self.n_batches -= 1
        if self.n_batches <= 0:
            raise KeyboardInterrupt  # skorch stops training cleanly


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--images", type=int, default=60_000)
    parser.add_argument("--batches", type=int, default=50)
    args = parser.parse_args()
    images = fetch_mnist(path=MNIST).x_train[:args.images]
    start_rss = peak_rss_gib()
    seq = SequenceTransformer("rotation", sequence_length=S, color="red",
                              dtype=np.float16, random_state=0)
    X = seq.fit_transform(images.reshape(len(images), -1))
    after_seq = peak_rss_gib()
    est = TopographicVAE(C, D, S, hidden_layer_sizes=HIDDEN, max_epochs=1,
                         callbacks=[StopAfter(args.batches)], random_state=0)
    est.fit(X)
    report("bench_memory: 60 000 MNIST rotation sequences", [
        ("sequences x features", f"{X.shape[0]} x {X.shape[1]}", ""),
        ("as float32 would be (GB)", X.shape[0] * X.shape[1] * 4 / 1e9, ""),
        ("float16 sequences (GB)", X.nbytes / 1e9, ""),
        ("peak RSS before building sequences (GiB)", start_rss, ""),
        ("peak RSS after building sequences (GiB)", after_seq, ""),
        (f"peak RSS after {args.batches} training batches (GiB)", peak_rss_gib(),
         "<= 6 GB (5.59 GiB)"),
    ])


if __name__ == "__main__":
    main()
