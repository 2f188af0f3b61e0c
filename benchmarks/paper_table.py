"""The paper's Table 1 at a CPU-sized scale: VAE, TVAE L=0, BubbleVAE, TVAE L=2 and
TVAE L=S/2, trained with the same budget on MNIST sequences, then measured.

Training sequences are built the paper's way: each is one full cycle (S = 18) of one
transformation chosen at random per sequence (rotation, hue or scale), the others held
at a random value, digits coloured. Each model is then measured on held-out test
sequences of each transformation alone: log-likelihood per frame (importance-sampled,
nats), E_eq uncentred and centred, roll-prediction accuracy and CapCorr.

Then VAE and TVAE L=S/2 (``--single-models``) are trained again on sequences of one
transformation at a time (``--single-train`` x ``--single-epochs``) and measured on it:
trained on the mixed set, the TVAE's capsules split between the transformations and a
frame encoded alone rolls poorly although its encoded sequence rolls well
(docs/learned.rst, "Why one frame alone does not roll on the paper's mixed set").

Run: ``python benchmarks/paper_table.py`` (default budget: see ``--help``; on 2 CPU
cores with AMX, bfloat16 training, 24 minutes for the mixed table and about 5 for the
one-transformation runs; on a CPU without bfloat16 units training runs in float32,
about 10 minutes a model on 2 AVX2 cores, so pick ``--models`` or a smaller budget
there; ``--single-epochs 0`` skips the one-transformation runs), or ``--full`` for the
paper's setting (48 000 training sequences, 100 epochs, SGD lr 1e-4 with momentum 0.9:
for a GPU, ``--device cuda``). Results go to stdout and, as JSON, to ``--out``.
"""

import argparse
import json
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from _common import MNIST, S, report
from sktvae import VAE, SequenceTransformer, TopographicVAE
from sktvae._runtime import bfloat16_is_native
from sktvae.datasets import fetch_mnist
from sktvae.metrics import (
    capsule_roll_correlation,
    equivariance_error,
    roll_prediction_accuracy,
)

FAMILIES = ("rotation", "hue", "scale")
ONE_FAMILY_SEED = 0  # training_sequences' seed for its one-family share
SINGLE_FAMILIES = ("rotation", "hue")  # trained on one transformation: those the roll
                                        # target names


def models(common, mu_init, center_decoder_input=True, u_mean_init=1.0):
    """The paper's Table 1 models, all 18 x 18 capsules (the VAE: 324 dimensions)."""
    tvae = dict(n_capsules=18, capsule_dim=18, sequence_length=S, mu_init=mu_init,
                center_decoder_input=center_decoder_input, u_mean_init=u_mean_init,
                **common)
    return {
        "VAE": VAE(n_components=18 * 18, sequence_length=S, **common),
        "TVAE L=0": TopographicVAE(temporal_window=0, **tvae),
        "BubbleVAE": TopographicVAE(temporal_window=S // 2, coherence="stationary", **tvae),
        "TVAE L=2": TopographicVAE(temporal_window=2, **tvae),
        "TVAE L=S/2": TopographicVAE(temporal_window=S // 2, **tvae),
    }


def sequences(images, families, combine, seed):
    """float16 sequences (half the memory; the estimators convert batch by batch)."""
    seq = SequenceTransformer(list(families), sequence_length=S, combine=combine,
                              color="red", dtype=np.float16, random_state=seed)
    return seq.fit_transform(images.reshape(len(images), -1))


def training_sequences(images, families, combine, compose_fraction=0.0,
                       composed_families=None):
    """Training sequences of ``images``, one per image: each with one of ``families``
    (``combine="random"``, the paper's set) or all of them at once (``"compose"``), and
    the last ``compose_fraction`` of them composed whatever ``combine`` is, of
    ``composed_families`` (default: all of ``families``). Returns the sequences and how
    many are composed that way."""
    if not 0 <= compose_fraction <= 1:
        raise ValueError(f"compose_fraction must be in [0, 1], got {compose_fraction}.")
    composed_families = families if composed_families is None else composed_families
    if not composed_families or not set(composed_families) <= set(families):
        raise ValueError(f"composed_families must be some of families={list(families)}, "
                         f"got {composed_families}.")
    n = len(images)
    n_composed = round(n * compose_fraction)
    parts = []
    if n_composed < n:
        parts.append(sequences(images[:n - n_composed], families, combine,
                               seed=ONE_FAMILY_SEED))
    if n_composed:
        parts.append(sequences(images[n - n_composed:], composed_families, "compose",
                               seed=3))
    return np.concatenate(parts), n_composed


def training_families(n, families, combine, compose_fraction=0.0, composed_families=None):
    """What moves in each of the ``n`` sequences that ``training_sequences`` builds with
    these arguments: a family's name, or ``"composed"`` where several move at once (an
    ``(n,)`` object array). The one-family choice is ``SequenceTransformer``'s own draw,
    replayed: the starting phases of its random state first, then the choice."""
    composed_families = families if composed_families is None else composed_families
    n_composed = round(n * compose_fraction)
    n_one = n - n_composed
    labels = np.full(n, "composed", dtype=object)
    if len(composed_families) == 1:
        labels[n_one:] = composed_families[0]
    if len(families) == 1:
        labels[:n_one] = families[0]
    elif combine == "random":
        rng = np.random.RandomState(ONE_FAMILY_SEED)
        rng.random_sample((n_one, len(families)))  # the starting phases
        labels[:n_one] = np.asarray(families, dtype=object)[
            rng.randint(len(families), size=n_one)]
    return labels


def held_out_sequences(images):
    """The held-out sequences of ``images``: one set per family in ``FAMILIES``, each
    sequence one whole cycle of that transformation alone (the same digits in each)."""
    return {f: sequences(images, [f], "compose", seed=1) for f in FAMILIES}


class HeldOutELBO(Callback):
    """Records the one-sample ELBO per frame of held-out sequences after every epoch,
    so the likelihood trend of each model is visible (the IS estimate is costlier)."""

    def __init__(self, X):
        self.X = X

    def on_epoch_end(self, net, **kwargs):
        net.module_.eval()
        elbo = elbo_per_frame(net.module_, self.X)
        net.module_.train()
        net.history.record("test_elbo_per_frame", elbo)


def elbo_per_frame(module, X, rows=64):
    """One-sample ELBO per frame of sequences ``X``, ``rows`` sequences a pass (noise
    seeded, so epochs are compared on the same draws), in float32 where ``module`` lives
    (with accelerate, the net's own ``device`` is None)."""
    device = next(module.parameters()).device
    x = torch.from_numpy(X).view(len(X), S, -1)
    # The class's forward, not the instance's: accelerate wraps a prepared module's own
    # in its (bfloat16) autocast, and this is a measurement, in float32 like the others.
    # Under several processes the prepared module is a DistributedDataParallel around the
    # wrapped one; a measurement needs no gradient sync, so the inner module's is called.
    while isinstance(module, (torch.nn.DataParallel,
                              torch.nn.parallel.DistributedDataParallel)):
        module = module.module
    forward = type(module).forward.__get__(module)
    # Seeded on a forked RNG: reseeding the global one here, between epochs, would
    # replay the same shuffling and training noise in every epoch.
    with torch.random.fork_rng(devices=[] if device.type == "cpu" else [device]), \
            torch.inference_mode():
        torch.manual_seed(0)
        elbo = sum(float((lp - kl).sum()) for lp, kl in
                   (forward(x[i:i + rows].to(device)) for i in range(0, len(x), rows)))
    return elbo / (len(x) * S)


def measure(est, X):
    shape = (18, 18)
    by_shift = roll_prediction_accuracy(est, X, capsule_shape=shape, by_shift=True)
    return {"ll/frame": est.score(X) / S,
            "E_eq": equivariance_error(est, X, capsule_shape=shape),
            "E_eq centred": equivariance_error(est, X, center=True, capsule_shape=shape),
            "roll acc": float(by_shift.mean()),  # each shift tried on every sequence
            "roll acc by shift": [round(float(a), 3) for a in by_shift],
            "CapCorr": capsule_roll_correlation(est, X, capsule_shape=shape)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=8000, help="training sequences")
    parser.add_argument("--test", type=int, default=300, help="test sequences per family")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--mu-init", type=float, default=30.0)
    parser.add_argument("--hidden", default="512,512",
                        help="MLP sizes; the paper's are 972,648 (1.7x slower here)")
    parser.add_argument("--no-centring", action="store_true",
                        help="the reference decoder (center_decoder_input=False)")
    parser.add_argument("--u-mean-init", type=float, default=1.0,
                        help="TopographicVAE's u_mean_init; 0 is the reference's start")
    parser.add_argument("--compose-fraction", type=float, default=0.0,
                        help="share of the training sequences that apply rotation, hue "
                             "and scale at once (not the paper's set, which has none); "
                             "the rest have one each")
    parser.add_argument("--models", default=None, help="comma-separated subset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", choices=("auto", "bf16", "fp32"), default="auto",
                        help="training arithmetic: bfloat16 autocast of the networks "
                             "(precision='bfloat16': 2x faster on a CPU with AMX; several "
                             "times slower on one without bfloat16 units) or float32; "
                             "auto: bf16 where the hardware has it. Every measurement is "
                             "in float32")
    parser.add_argument("--single-train", type=int, default=2000,
                        help="training sequences of each one-transformation run")
    parser.add_argument("--single-epochs", type=int, default=20,
                        help="epochs of each one-transformation run (0: skip them)")
    parser.add_argument("--single-models", default="VAE,TVAE L=S/2",
                        help="comma-separated models of the one-transformation runs")
    parser.add_argument("--full", action="store_true",
                        help="the paper's setting: 48000 sequences, 100 epochs, SGD")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    if args.precision == "auto":  # resolved here, so the JSON records what ran
        args.precision = "bf16" if has_fast_bf16(args.device) else "fp32"
    if args.full:
        args.train, args.epochs, args.optimizer, args.lr = 48000, 100, "sgd", 1e-4
        args.batch_size, args.hidden, args.test = 8, "972,648", 1000
    return args


def main(argv=None):
    args = parse_args(argv)
    mnist = fetch_mnist(path=MNIST)
    return run(mnist.x_train[:args.train], mnist.x_test[:args.test], args)


def run(train_images, test_images, args):
    """Train every model on sequences of ``train_images`` (28x28 grey, uint8 or [0, 1])
    and measure it on sequences of ``test_images``; returns the results dict."""
    X_train, n_composed = training_sequences(train_images, FAMILIES, "random",
                                             args.compose_fraction)
    tests = held_out_sequences(test_images)
    held_out = np.concatenate([X[:100] for X in tests.values()])
    common = dict(hidden_layer_sizes=tuple(int(h) for h in args.hidden.split(",")),
                  lr=args.lr, optimizer=args.optimizer, batch_size=args.batch_size,
                  device=args.device, random_state=0)
    centred = not args.no_centring
    chosen = models(dict(common, max_epochs=args.epochs, callbacks=[HeldOutELBO(held_out)]),
                    args.mu_init, centred, args.u_mean_init)
    if args.models:
        chosen = {k: v for k, v in chosen.items() if k in args.models.split(",")}
    print(f"{len(X_train)} training sequences x {S} frames ({n_composed} composed), "
          f"{args.epochs} epochs "
          f"({len(X_train) * S * args.epochs / 1e6:.2f} M frames per model), "
          f"{args.precision} training, {args.test} test sequences per family", flush=True)
    results = fit_and_measure(chosen, X_train, tests, args)
    for f in FAMILIES:
        print_table(f"{f}: ll/frame  E_eq  E_eq-centred  roll-acc  CapCorr "
                    f"(chance roll acc {3 / S:.3f})", {k: r[f] for k, r in results.items()})

    # The same models trained on one transformation alone: from one frame, a roll of
    # every capsule can only mean one transformation when the data hold one.
    n_single = min(args.single_train, len(train_images))
    results["single"] = {}
    for f in SINGLE_FAMILIES if args.single_epochs else ():
        single = models(dict(common, max_epochs=args.single_epochs), args.mu_init, centred,
                        args.u_mean_init)
        single = {k: single[k] for k in args.single_models.split(",")}
        print(f"\n{f} only: {n_single} training sequences x {args.single_epochs} epochs "
              f"({n_single * S * args.single_epochs / 1e6:.2f} M frames per model)", flush=True)
        X_f = sequences(train_images[:n_single], [f], "compose", seed=2)
        r = fit_and_measure(single, X_f, {f: tests[f]}, args)
        results["single"][f] = r
        print_table(f"trained on {f} only: ll/frame  E_eq  E_eq-centred  roll-acc  CapCorr",
                    {k: v[f] for k, v in r.items()})
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=1)
    return results


def has_fast_bf16(device="cpu"):
    """Whether bfloat16 arithmetic runs in hardware (the estimators' own test)."""
    return bfloat16_is_native(device)


def training_precision(precision):
    """The estimators' ``precision`` for this script's ``--precision`` (bf16 / fp32)."""
    return {"bf16": "bfloat16", "fp32": "float32"}[precision]


def fit_and_measure(chosen, X_train, tests, args):
    """Fit each estimator of ``chosen`` on ``X_train``; measure it on each of ``tests``."""
    results = {}
    for name, est in chosen.items():
        est.set_params(precision=training_precision(args.precision))
        start = time.perf_counter()
        est.fit(X_train)
        fit_s = time.perf_counter() - start
        history = est.history_
        results[name] = {"fit seconds": fit_s,
                         "train loss per epoch": list(history[:, "train_loss"]),
                         **{f: measure(est, X) for f, X in tests.items()}}
        line = f"{name}: {fit_s:.0f} s"
        if "test_elbo_per_frame" in history[-1]:
            elbo = list(history[:, "test_elbo_per_frame"])
            results[name]["held-out ELBO per frame per epoch"] = elbo
            line += "; held-out ELBO/frame by epoch " + " ".join(f"{v:.1f}" for v in elbo)
        print(line + "; " + "; ".join(
            f"{f}: " + ", ".join(f"{k} {v:.3g}" for k, v in results[name][f].items()
                                 if not isinstance(v, list))
            for f in tests), flush=True)
    return results


def print_table(title, rows):
    """``rows``: model name -> measure() dict; centred E_eq also as a fraction of the VAE's."""
    vae = rows.get("VAE")
    lines = []
    for name, m in rows.items():
        ratio = f" ({m['E_eq centred'] / vae['E_eq centred']:.3f} of VAE)" if vae else ""
        lines.append((name, f"{m['ll/frame']:8.1f} {m['E_eq']:8.0f} "
                      f"{m['E_eq centred']:8.0f} {m['roll acc']:6.3f} "
                      f"{m['CapCorr']:6.3f}", ratio))
    report(title, lines)


if __name__ == "__main__":
    main()
