"""Framework overhead of a fit: skorch's loop against a bare torch loop, on a model so
small that arithmetic is cheap (as one step is on a GPU).

The model: a TVAE of 4 capsules x 8 units, hidden (64,), frames of 64 values, S = 8,
batch 32. ``fit``'s step time (the median epoch's duration over its batches) is
compared with a bare loop over the same module and the same batches, drawn by index
from one tensor: forward, backward, the same fused Adam. Target: fit <= 1.1x the bare
loop. Also the paper's model in float32 and bfloat16 (``precision=``), each against
the same-shape GEMM rate in that precision.

Run: ``python benchmarks/bench_overhead.py`` (about two minutes on 2 cores; run it on
a quiet machine, as the ratio grows with the load).
"""

import argparse

import numpy as np
import torch

from _common import C, D, HIDDEN, N_FEATURES, S, flops_per_frame, gemms, layer_shapes, \
    report, timeit
from sktvae import TopographicVAE
from sktvae._base import bfloat16_is_native

SMALL = dict(n_capsules=4, capsule_dim=8, sequence_length=8, hidden_layer_sizes=(64,))


def step_seconds(est):
    """Median seconds per training step of a fitted estimator, from skorch's history
    (epochs after the first, which warms up)."""
    history = est.history_
    per_step = [row["dur"] / row["train_batch_count"] for row in history[1:]]
    return float(np.median(per_step))


def bare_step_seconds(module, X, batch_size, n_steps=200):
    """Seconds per step of a bare loop: batches drawn by index from one tensor."""
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)
    X = torch.from_numpy(X).view(len(X), module.topography.sequence_length, -1)
    order = torch.randperm(len(X))

    def run():
        for i in range(n_steps):
            rows = order[(i * batch_size) % (len(X) - batch_size):][:batch_size]
            opt.zero_grad()
            log_px, kl = module(X[rows])
            (kl - log_px).mean().backward()
            opt.step()
    return timeit(run, repeat=3, warmup=1) / n_steps


def gemm_rate(shapes, n_rows, dtype):
    mats = [(torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype))
            for m, k, n in gemms(shapes, n_rows)]
    seconds = timeit(lambda: [a @ b for a, b in mats], repeat=3)
    return sum(2 * m * k * n for m, k, n in gemms(shapes, n_rows)) / seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-paper", action="store_true",
                        help="only the small model")
    args = parser.parse_args()
    torch.manual_seed(0)
    rows = []
    X = np.random.default_rng(0).random((2048, 8 * 64), np.float32)
    est = TopographicVAE(**SMALL, max_epochs=6, random_state=0).fit(X)
    fit_s = step_seconds(est)
    bare_s = bare_step_seconds(est.net_.module_, X, est.batch_size)
    rows += [("small model: fit step (ms)", fit_s * 1e3, ""),
             ("small model: bare loop step (ms)", bare_s * 1e3, ""),
             ("small model: fit / bare loop", fit_s / bare_s, "<= 1.1")]
    if not args.skip_paper:
        Xp = np.random.default_rng(0).random((128, S * N_FEATURES), np.float32)
        shapes, n_rows = layer_shapes(), 32 * S
        flops = flops_per_frame(shapes)
        fps = {}
        for precision in ("float32", "bfloat16"):
            est = TopographicVAE(C, D, S, hidden_layer_sizes=HIDDEN, max_epochs=3,
                                 precision=precision, random_state=0).fit(Xp)
            fps[precision] = n_rows / step_seconds(est)
            dtype = torch.float32 if precision == "float32" else torch.bfloat16
            roof = gemm_rate(shapes, n_rows, dtype) / flops
            rows += [(f"paper model {precision}: fit frames/s", fps[precision], ""),
                     (f"paper model {precision}: fit / its GEMM roofline",
                      fps[precision] / roof, ">= 0.8")]
        rows += [("paper model: bfloat16 / float32 fit speed",
                  fps["bfloat16"] / fps["float32"],
                  ">= 1.8 on AMX" + ("" if bfloat16_is_native("cpu")
                                     else " (this CPU emulates bfloat16)"))]
    report("bench_overhead: framework overhead and precision", rows)


if __name__ == "__main__":
    main()
