"""The paper's Table 2 at a CPU budget: sprite sequences, CapCorr per factor.

Sequences are drawn with ``sktvae.datasets.make_sprite_sequences`` (no download): 64 x
64 binary sprites, S = 15 frames, in each one of x, y, orientation and scale moving one
step per frame through a whole cycle. Six models train with the same budget, all
15 capsules x 15 units with K = 1 (``capsule_window=1``, the reference run
``tvae_Lpartial_dsprites``) and mu_0 = 30: VAE, TVAE L=0, BubbleVAE, and TVAEs with a
short (L = 2), a partial (``(5, 4)``: the reference's 10 frames) and a whole-cycle
(L = 7) window.

Per factor, on held-out sequences of that factor alone: CapCorr
(``capsule_roll_correlation``), centred E_eq as a ratio to the VAE's, roll-prediction
accuracy of a frame encoded alone, log-likelihood per frame (importance-sampled,
nats). Targets, for the partial-window TVAE: CapCorr >= 0.9 on each factor while the
VAE, TVAE L=0 and BubbleVAE stay <= 0.3; roll accuracy >= 0.6 on each factor; centred
E_eq <= 1/5 of the VAE's; likelihood within 2% of the VAE's or better. (A whole-cycle
window rolls W * u^2 with the frame by construction, so its CapCorr says little: it
is reported, not counted.)

Run: ``python benchmarks/sprites_table.py [--out sprites.json]`` (default budget 2 000
training sequences x 20 epochs, 0.6 M frames per model; see benchmarks/README.md for
the time on 2 cores).
"""

import numpy as np

from _common import fit_and_measure, model_table_parser, report, training_params
from sktvae import VAE, TopographicVAE
from sktvae.datasets import make_sprite_sequences
from sktvae.metrics import (
    capsule_roll_correlation,
    equivariance_error,
    roll_prediction_accuracy,
)

S, C = 15, 15
FACTORS = ("x", "y", "orientation", "scale")
PARTIAL = "TVAE partial"


def models(common, mu_init=30.0):
    tvae = dict(n_capsules=C, capsule_dim=C, sequence_length=S, capsule_window=1,
                mu_init=mu_init, **common)
    return {
        "VAE": VAE(n_components=C * C, sequence_length=S, **common),
        "TVAE L=0": TopographicVAE(temporal_window=0, **tvae),
        "BubbleVAE": TopographicVAE(temporal_window=(5, 4), coherence="stationary", **tvae),
        "TVAE L=2": TopographicVAE(temporal_window=2, **tvae),
        PARTIAL: TopographicVAE(temporal_window=(5, 4), **tvae),
        "TVAE L=7": TopographicVAE(temporal_window=7, **tvae),
    }


def measure(est, X):
    shape = (C, C)
    return {"ll/frame": est.score(X) / S,
            "E_eq centred": equivariance_error(est, X, center=True, capsule_shape=shape),
            "roll acc": roll_prediction_accuracy(est, X, capsule_shape=shape),
            "CapCorr": capsule_roll_correlation(est, X, capsule_shape=shape)}


def targets(results):
    """(name, value, target) rows: the partial-window TVAE against the issue's targets."""
    rows = []
    tvae, vae = results[PARTIAL], results["VAE"]
    for f in FACTORS:
        baselines = max(results[m][f]["CapCorr"] for m in ("VAE", "TVAE L=0", "BubbleVAE")
                        if m in results)
        rows += [
            (f"{f}: CapCorr {PARTIAL}", tvae[f]["CapCorr"], ">= 0.9"),
            (f"{f}: CapCorr, best of VAE / L=0 / BubbleVAE", baselines, "<= 0.3"),
            (f"{f}: roll accuracy {PARTIAL}", tvae[f]["roll acc"], ">= 0.6"),
            (f"{f}: centred E_eq / VAE's", tvae[f]["E_eq centred"] / vae[f]["E_eq centred"],
             "<= 0.2"),
            (f"{f}: likelihood behind the VAE's (%)",
             (tvae[f]["ll/frame"] / vae[f]["ll/frame"] - 1) * 100, "<= 2"),
        ]
    return rows


def parse_args(argv=None):
    parser = model_table_parser(__doc__.split("\n")[0], train=2000, test=100, epochs=20)
    parser.add_argument("--image-size", type=int, default=64)
    return parser.parse_args(argv)


def describe(r):
    return (f"ll/frame {r['ll/frame']:.1f}, E_eq centred {r['E_eq centred']:.3g}, roll acc "
            f"{r['roll acc']:.3f}, CapCorr {r['CapCorr']:.3f}")


def run(args):
    X_train, _ = make_sprite_sequences(args.train, S, image_size=args.image_size,
                                       random_state=0)
    X_train = X_train.astype(np.float16)  # 0/1 pixels, exact; half the memory
    tests = {f: make_sprite_sequences(args.test, S, factors=(f,), image_size=args.image_size,
                                      random_state=1 + i)[0]
             for i, f in enumerate(FACTORS)}
    print(f"{args.train} training sequences x {S} frames of {args.image_size}^2 pixels "
          f"(one factor moving each), {args.epochs} epochs "
          f"({args.train * S * args.epochs / 1e6:.2f} M frames per model); {args.test} "
          "test sequences per factor", flush=True)
    results = fit_and_measure(models(training_params(args)), X_train, tests, measure,
                              describe, args)
    if {"VAE", PARTIAL} <= set(results):
        report("Table 2 at a CPU budget (partial-window TVAE)", targets(results))
    return results


if __name__ == "__main__":
    run(parse_args())
