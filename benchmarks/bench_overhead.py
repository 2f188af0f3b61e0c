"""Framework overhead of a fit: skorch's loop against a bare torch loop, on a model so
small that arithmetic is cheap (as one step is on a GPU); and the paper's model in
float32 and bfloat16 against the GEMM rate of its layers.

The small model: a TVAE of 4 capsules x 8 units, hidden (64,), frames of 64 values,
S = 8, batch 32. ``fit``'s step time (the median epoch's duration over its batches) is
compared with a bare loop over the same module and the same batches, drawn by index
from one tensor: forward, backward, the same fused Adam, no non-finite check. Target:
fit <= 1.1x the bare loop. The paper's model (``precision=``) at each batch size of
``--batch-sizes``: fit frames/s against the same-shape GEMM rate in that precision
(targets: bfloat16 >= 1.8x float32 on AMX and >= 0.8 of its own GEMM rate). Last, the
quick start's TVAE trained the same epochs from one seed in each precision: the
held-out likelihood each reaches (both scored in float32).

With ``--device cuda`` everything runs on the GPU (float32 matmuls in TF32, as
``torch.backends.cuda.matmul.allow_tf32`` allows; the GEMM rates likewise): pass the
batch sizes to search for the fastest, e.g. ``--batch-sizes 32,128,512,2048``.

Run: ``python benchmarks/bench_overhead.py`` (about two minutes on 2 cores; run it on a
quiet machine, as the ratio grows with the load).
"""

import argparse

import numpy as np
import torch

from _common import C, D, HIDDEN, N_FEATURES, S, flops_per_frame, gemms, layer_shapes, \
    report, sync, timeit
from sktvae import TopographicVAE
from sktvae._runtime import bfloat16_is_native

SMALL = dict(n_capsules=4, capsule_dim=8, sequence_length=8, hidden_layer_sizes=(64,))


def step_seconds(est):
    """Median seconds per training step of a fitted estimator, from skorch's history
    (epochs after the first, which warms up). An epoch ends with one copy of its
    losses to the host, so on a GPU its duration includes all its steps."""
    history = est.history_
    per_step = [row["dur"] / row["train_batch_count"] for row in history[1:]]
    return float(np.median(per_step))


def bare_step_seconds(module, X, batch_size, device="cpu", n_steps=200, repeat=3):
    """Seconds per step of a bare loop: batches drawn by index from one tensor."""
    opt = torch.optim.Adam(module.parameters(), lr=1e-3, fused=True)
    X = torch.from_numpy(X).view(len(X), module.topography.sequence_length, -1).to(device)
    order = torch.randperm(len(X), device=device)

    def run():
        for i in range(n_steps):
            rows = order[(i * batch_size) % (len(X) - batch_size):][:batch_size]
            opt.zero_grad()
            log_px, kl = module(X[rows])
            (kl - log_px).mean().backward()
            opt.step()
        sync(device)
    return timeit(run, repeat=repeat, warmup=1) / n_steps


def gemm_rate(shapes, n_rows, dtype, device="cpu"):
    """FLOP/s of the GEMMs of a training step of ``n_rows`` frames, in ``dtype``."""
    mats = [(torch.randn(m, k, dtype=dtype, device=device),
             torch.randn(k, n, dtype=dtype, device=device))
            for m, k, n in gemms(shapes, n_rows)]

    def run():
        for a, b in mats:
            a @ b
        sync(device)
    seconds = timeit(run, repeat=3)
    return sum(2 * m * k * n for m, k, n in gemms(shapes, n_rows)) / seconds


def paper_rows(batch_sizes, device):
    """fit frames/s of the paper's model per precision and batch size, each against
    the GEMM rate of its layers in that precision."""
    rows, shapes = [], layer_shapes()
    flops = flops_per_frame(shapes)
    for batch_size in batch_sizes:
        X = np.random.default_rng(0).random((8 * batch_size, S * N_FEATURES), np.float32)
        n_rows, fps = batch_size * S, {}
        for precision in ("float32", "bfloat16"):
            est = TopographicVAE(C, D, S, hidden_layer_sizes=HIDDEN, max_epochs=3,
                                 batch_size=batch_size, precision=precision,
                                 device=device, random_state=0).fit(X)
            fps[precision] = n_rows / step_seconds(est)
            dtype = torch.float32 if precision == "float32" else torch.bfloat16
            roof = gemm_rate(shapes, n_rows, dtype, device) / flops
            rows += [(f"paper model, batch {batch_size}, {precision}: fit frames/s",
                      fps[precision], ""),
                     (f"paper model, batch {batch_size}, {precision}: fit / GEMM roofline",
                      fps[precision] / roof, ">= 0.8" if precision == "bfloat16" else "")]
        native = bfloat16_is_native(device)
        rows.append((f"paper model, batch {batch_size}: bfloat16 / float32 fit speed",
                     fps["bfloat16"] / fps["float32"],
                     ">= 1.8 on AMX" + ("" if native else " (bfloat16 emulated here)")))
    return rows


def likelihood_rows(epochs, device="cpu"):
    """The quick start's TVAE (rotating digits) trained for ``epochs`` in float32 and in
    bfloat16 from one seed: held-out log p(x) per frame (scored in float32 for both),
    roll accuracy and fit time."""
    import time

    from sktvae.demo import SEQUENCE_LENGTH, _build_data, _make_models
    from sktvae.metrics import roll_prediction_accuracy

    X_train, X_test = _build_data()
    rows, scores = [], {}
    for precision in ("float32", "bfloat16"):
        est = _make_models(epochs, device=device)["TVAE"].set_params(precision=precision)
        start = time.perf_counter()
        est.fit(X_train)
        seconds = time.perf_counter() - start
        scores[precision] = est.score(X_test) / SEQUENCE_LENGTH
        rolls = roll_prediction_accuracy(est, X_test,
                                         capsule_shape=(SEQUENCE_LENGTH, SEQUENCE_LENGTH))
        rows += [(f"quick start, {epochs} epochs, {precision}: log p(x) per frame",
                  scores[precision], "held out"),
                 (f"quick start, {precision}: roll accuracy; fit seconds",
                  f"{rolls:.3f}; {seconds:.1f}", "")]
    rows.append(("quick start: log p(x) bfloat16 - float32 per frame",
                 scores["bfloat16"] - scores["float32"], "nats"))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--skip-paper", action="store_true",
                        help="only the small model")
    parser.add_argument("--batch-sizes", default="32,128",
                        help="comma-separated batch sizes of the paper's model")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=9,
                        help="interleaved fit / bare-loop epoch pairs of the small model")
    parser.add_argument("--likelihood-epochs", type=int, default=15,
                        help="epochs of the float32 / bfloat16 likelihood comparison "
                             "(the quick start's TVAE; 0 skips it)")
    args = parser.parse_args()
    if torch.device(args.device).type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 rows: TF32 matmuls
    torch.manual_seed(0)
    X = np.random.default_rng(0).random((2048, 8 * 64), np.float32)
    # fit's epochs and bare-loop epochs of as many steps, interleaved, so that the
    # machine's drift (other tenants, clocks) meets both alike: the median of the pairs
    est = TopographicVAE(**SMALL, max_epochs=2, device=args.device, random_state=0).fit(X)
    fits, bares = [], []
    for _ in range(args.repeats):
        est.partial_fit(X)
        fits.append(est.history_[-1, "dur"] / est.history_[-1, "train_batch_count"])
        bares.append(bare_step_seconds(est.net_.module_, X, est.batch_size, args.device,
                                       n_steps=est.history_[-1, "train_batch_count"],
                                       repeat=1))
    ratios = np.asarray(fits) / np.asarray(bares)
    rows = [("small model: fit step (ms), median", float(np.median(fits)) * 1e3, ""),
            ("small model: bare loop step (ms), median", float(np.median(bares)) * 1e3, ""),
            (f"small model: fit / bare loop, median of {args.repeats} pairs",
             float(np.median(ratios)), "<= 1.1"),
            ("small model: fit / bare loop, range",
             f"{ratios.min():.2f} - {ratios.max():.2f}", "")]
    if not args.skip_paper:
        rows += paper_rows([int(b) for b in args.batch_sizes.split(",")], args.device)
    if args.likelihood_epochs and not args.skip_paper:
        rows += likelihood_rows(args.likelihood_epochs, args.device)
    report("bench_overhead: framework overhead and precision", rows)


if __name__ == "__main__":
    main()
