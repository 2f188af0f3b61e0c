"""Bench 2: score_samples with 10 importance samples vs one ELBO forward pass; peak RSS.

The encoders run once per frame and the 10 samples are decoded in one batch, so the
estimate should cost at most about 4 forward passes (the decoder is a third of the
model). Peak RSS for 10 000 paper-sized sequences is measured in a child process, with
the data held as float16 (the sequences alone are 0.85 GB); chunking keeps the rest
bounded whatever the number of sequences.

Run: ``python benchmarks/bench_score.py [--device cuda]``.
"""

import argparse
import subprocess
import sys

import numpy as np
import torch

from _common import C, D, HIDDEN, N_FEATURES, S, peak_rss_gib, report, sync, timeit
from sktvae import TopographicVAE


def fitted(device, n=16):
    X = np.random.default_rng(0).random((n, S * N_FEATURES), np.float32)
    return TopographicVAE(C, D, S, hidden_layer_sizes=HIDDEN, max_epochs=1,
                          device=device, random_state=0).fit(X)


def rss_child(n_sequences):
    """Peak RSS of a fresh process that scores ``n_sequences`` sequences."""
    code = f"""
import numpy as np, sys
sys.path.insert(0, {str(__import__('pathlib').Path(__file__).parent)!r})
from _common import peak_rss_gib
from bench_score import fitted
est = fitted('cpu')
before = peak_rss_gib()
rng = np.random.default_rng(1)
X = np.empty(({n_sequences}, {S * N_FEATURES}), np.float16)
for i in range(0, len(X), 500):  # fill in chunks: no float32 copy of the whole set
    X[i:i + 500] = rng.random((len(X[i:i + 500]), X.shape[1]), np.float32)
data = peak_rss_gib()
est.score_samples(X)
print(before, data, peak_rss_gib())
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.split()
    return [float(v) for v in out]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--sequences", type=int, default=64)
    parser.add_argument("--rss-sequences", type=int, default=10_000)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    est = fitted(args.device)
    X = np.random.default_rng(1).random((args.sequences, S * N_FEATURES), np.float32)
    module = est.net_.module_.eval()
    x = torch.from_numpy(X).view(len(X), S, -1).to(args.device)

    def elbo_pass():
        with torch.inference_mode():
            for i in range(0, len(x), 16):
                module(x[i:i + 16])
        sync(args.device)
    elbo = timeit(elbo_pass, repeat=3, warmup=1)
    score = timeit(lambda: est.score_samples(X), repeat=3, warmup=1)
    # Where the time goes, per 16 sequences: the floor set by the FLOPs is about
    # (2 encoders + 10 decoders) / (2 encoders + 1 decoder) = 3.9x for this model.
    xb, eps = x[:16], torch.randn(10, S, C * D, device=args.device)
    with torch.inference_mode():
        post = module.encode(xb)
        t = module.latent(*[module._reparameterise(m, lv, eps)[0]
                            for m, lv in ((post[0], post[1]), (post[2], post[3]))])
        logits = module.decode(t)
        parts = {"encoders (once)": timeit(lambda: module.encode(xb)),
                 "reparameterise + t (10 samples)": timeit(lambda: module.latent(*[
                     module._reparameterise(m, lv, eps)[0]
                     for m, lv in ((post[0], post[1]), (post[2], post[3]))])),
                 "decoder (10 samples)": timeit(lambda: module.decode(t)),
                 "Bernoulli log-likelihood (10 samples)":
                     timeit(lambda: module.log_likelihood(xb, logits)),
                 "one ELBO forward pass": timeit(lambda: module(xb))}
    rows = [("sequences scored", args.sequences, ""),
            ("one ELBO forward pass (s)", elbo, ""),
            ("score_samples, 10 importance samples (s)", score, ""),
            ("score_samples / ELBO pass", score / elbo, "<= 4")]
    rows += [(f"  profile, 16 sequences: {k} (ms)", v * 1e3, "") for k, v in parts.items()]
    if args.device == "cpu" and args.rss_sequences:
        before, data, peak = rss_child(args.rss_sequences)
        rows += [(f"peak RSS scoring {args.rss_sequences} sequences (GiB)", peak, ""),
                 ("  of which the model and torch (GiB)", before, ""),
                 ("  of which the float16 data (GiB)", data - before, ""),
                 ("  working memory of score_samples (GiB)", peak - data, "bounded")]
    report("bench_score: importance-sampled log-likelihood", rows)


if __name__ == "__main__":
    main()
