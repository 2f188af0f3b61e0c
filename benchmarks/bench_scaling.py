"""Bench 5: time per epoch as the data grows, and the topographic share as windows grow.

* Epoch time at 1x, 2x, 4x, 8x the sequences: time per sequence should stay flat (no
  hidden quadratic step).
* One training step at several ``sequence_length``, ``temporal_window`` and
  ``capsule_window``: the share of the topographic part (W * u^2, mu, KL) in the step
  stays <= 10%.

Run: ``python benchmarks/bench_scaling.py``.
"""

import argparse

import numpy as np
import torch

from _common import C, D, HIDDEN, N_FEATURES, report, timeit
from sktvae import TopographicVAE
from sktvae._model import gaussian_kl


def epoch_seconds(n_sequences, S=18, hidden=(512, 512), n_features=N_FEATURES):
    X = np.random.default_rng(0).random((n_sequences, S * n_features), np.float32)
    est = TopographicVAE(C, D, S, hidden_layer_sizes=hidden, max_epochs=2,
                         random_state=0).fit(X)
    return est.history_[-1, "dur"]


def topographic_share(S, L, K, batch_size=16):
    est = TopographicVAE(C, D, S, temporal_window=L, capsule_window=K,
                         hidden_layer_sizes=HIDDEN, max_epochs=0, random_state=0)
    X = np.random.default_rng(0).random((batch_size, S * N_FEATURES), np.float32)
    module = est.fit(X).net_.module_
    x = torch.from_numpy(X).view(batch_size, S, -1)
    opt = torch.optim.Adam(module.parameters())

    def step():
        opt.zero_grad()
        log_px, kl = module(x)
        (kl - log_px).mean().backward()
        opt.step()
    z = torch.randn(batch_size, S, C * D, requires_grad=True)
    u = torch.randn(batch_size, S, C * D, requires_grad=True)
    logvar = torch.zeros_like(z, requires_grad=True)

    def topo_step():
        t = module.topography(z, u)
        (t.sum() + gaussian_kl(z, logvar).sum() + gaussian_kl(u, logvar).sum()).backward()
    return timeit(topo_step) / timeit(step)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--base", type=int, default=32, help="sequences at 1x")
    args = parser.parse_args()
    rows = []
    base = None
    for factor in (1, 2, 4, 8):
        seconds = epoch_seconds(args.base * factor)
        base = base or seconds
        rows.append((f"epoch time at {factor}x ({args.base * factor} sequences), "
                     "relative to 1x per sequence", seconds / (base * factor), "~1.0"))
    for S, L, K in [(18, 0, 3), (18, 2, 3), (18, 9, 3), (18, 9, 9), (36, 18, 3),
                    (8, 4, 3)]:
        rows.append((f"topographic share of a step, S={S} L={L} K={K}",
                     topographic_share(S, L, K), "<= 0.10"))
    report("bench_scaling", rows)


if __name__ == "__main__":
    main()
