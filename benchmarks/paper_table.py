"""The paper's Table 1 at a CPU-sized scale: VAE, TVAE L=0, BubbleVAE, TVAE L=2 and
TVAE L=S/2, trained with the same budget on MNIST sequences, then measured.

Training sequences are built the paper's way: each is one full cycle (S = 18) of one
transformation chosen at random per sequence (rotation, hue or scale), the others held
at a random value, digits coloured. Each model is then measured on held-out test
sequences of each transformation alone: log-likelihood per frame (importance-sampled,
nats), E_eq uncentred and centred, roll-prediction accuracy and CapCorr.

Run: ``python benchmarks/paper_table.py`` (default budget: see ``--help``; about 20
minutes on 2 CPU cores), or ``--full`` for the paper's setting (48 000 training
sequences, 100 epochs, SGD lr 1e-4 with momentum 0.9: for a GPU, ``--device cuda``).
Results go to stdout and, as JSON, to ``--out``.
"""

import argparse
import json
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from _common import MNIST, S, report
from sktvae import VAE, SequenceTransformer, TopographicVAE
from sktvae.datasets import fetch_mnist
from sktvae.metrics import (
    capsule_roll_correlation,
    equivariance_error,
    roll_prediction_accuracy,
)

FAMILIES = ("rotation", "hue", "scale")


def models(common, mu_init, center_decoder_input=True):
    """The paper's Table 1 models, all 18 x 18 capsules (the VAE: 324 dimensions)."""
    tvae = dict(n_capsules=18, capsule_dim=18, sequence_length=S, mu_init=mu_init,
                center_decoder_input=center_decoder_input, **common)
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


class HeldOutELBO(Callback):
    """Records the one-sample ELBO per frame of held-out sequences after every epoch,
    so the likelihood trend of each model is visible (the IS estimate is costlier)."""

    def __init__(self, X):
        self.X = X

    def on_epoch_end(self, net, **kwargs):
        net.module_.eval()
        elbo = elbo_per_frame(net.module_, self.X, net.device)
        net.module_.train()
        net.history.record("test_elbo_per_frame", elbo)


def elbo_per_frame(module, X, device="cpu", rows=64):
    """One-sample ELBO per frame of sequences ``X``, ``rows`` sequences a pass (noise
    seeded, so epochs are compared on the same draws)."""
    x = torch.from_numpy(X).view(len(X), S, -1)
    # Seeded on a forked RNG: reseeding the global one here, between epochs, would
    # replay the same shuffling and training noise in every epoch.
    with torch.random.fork_rng(devices=[] if str(device) == "cpu" else None), \
            torch.inference_mode():
        torch.manual_seed(0)
        elbo = sum(float((lp - kl).sum()) for lp, kl in
                   (module(x[i:i + rows].to(device)) for i in range(0, len(x), rows)))
    return elbo / (len(x) * S)


def measure(est, X):
    shape = (18, 18)
    return {"ll/frame": est.score(X) / S,
            "E_eq": equivariance_error(est, X, capsule_shape=shape),
            "E_eq centred": equivariance_error(est, X, center=True, capsule_shape=shape),
            "roll acc": roll_prediction_accuracy(est, X, capsule_shape=shape),
            "CapCorr": capsule_roll_correlation(est, X, capsule_shape=shape)}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=8000, help="training sequences")
    parser.add_argument("--test", type=int, default=300, help="test sequences per family")
    parser.add_argument("--epochs", type=int, default=13)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--optimizer", default="adam")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--mu-init", type=float, default=30.0)
    parser.add_argument("--hidden", default="512,512",
                        help="MLP sizes; the paper's are 972,648 (1.7x slower here)")
    parser.add_argument("--no-centring", action="store_true",
                        help="the reference decoder (center_decoder_input=False)")
    parser.add_argument("--models", default=None, help="comma-separated subset")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--full", action="store_true",
                        help="the paper's setting: 48000 sequences, 100 epochs, SGD")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
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
    X_train = sequences(train_images, FAMILIES, "random", seed=0)
    tests = {f: sequences(test_images, [f], "compose", seed=1) for f in FAMILIES}
    held_out = np.concatenate([X[:100] for X in tests.values()])
    common = dict(hidden_layer_sizes=tuple(int(h) for h in args.hidden.split(",")),
                  max_epochs=args.epochs, lr=args.lr, optimizer=args.optimizer,
                  batch_size=args.batch_size, device=args.device, random_state=0,
                  callbacks=[HeldOutELBO(held_out)])
    chosen = models(common, args.mu_init, center_decoder_input=not args.no_centring)
    if args.models:
        chosen = {k: v for k, v in chosen.items() if k in args.models.split(",")}
    print(f"{len(X_train)} training sequences x {S} frames, {args.epochs} epochs "
          f"({len(X_train) * S * args.epochs / 1e6:.2f} M frames per model), "
          f"{args.test} test sequences per family", flush=True)
    results = {}
    for name, est in chosen.items():
        start = time.perf_counter()
        est.fit(X_train)
        fit_s = time.perf_counter() - start
        results[name] = {"fit seconds": fit_s,
                         "train loss per epoch": list(est.history_[:, "train_loss"]),
                         "held-out ELBO per frame per epoch":
                             list(est.history_[:, "test_elbo_per_frame"]),
                         **{f: measure(est, X) for f, X in tests.items()}}
        print(f"{name}: {fit_s:.0f} s; held-out ELBO/frame by epoch "
              + " ".join(f"{v:.1f}" for v in results[name]["held-out ELBO per frame per epoch"])
              + "; " + "; ".join(
            f"{f}: " + ", ".join(f"{k} {v:.3g}" for k, v in results[name][f].items())
            for f in FAMILIES), flush=True)
    for f in FAMILIES:
        rows = []
        vae = results.get("VAE", {}).get(f)
        for name, r in results.items():
            m = r[f]
            ratio = f" ({m['E_eq centred'] / vae['E_eq centred']:.3f} of VAE)" if vae else ""
            rows.append((name, f"{m['ll/frame']:8.1f} {m['E_eq']:8.0f} "
                         f"{m['E_eq centred']:8.0f} {m['roll acc']:6.3f} "
                         f"{m['CapCorr']:6.3f}", ratio))
        report(f"{f}: ll/frame  E_eq  E_eq-centred  roll-acc  CapCorr "
               f"(chance roll acc {3 / S:.3f})", rows)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=1)
    return results


if __name__ == "__main__":
    main()
