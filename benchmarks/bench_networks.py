"""Convolutional against MLP networks: throughput against their own layers, and what
each learns in the same wall-clock time.

1. Throughput on 3x32x32 frames (S = 18) and 1x64x64 frames (S = 15), for
   ``encoder="mlp"`` (hidden (512, 512)) and ``encoder="conv"`` (channels (32, 64,
   128), kernel 4, stride 2), TVAEs of S capsules x S units: ``fit`` frames/s beside a
   bare forward + backward + Adam step over the same two encoders and decoder alone
   (the rate torch reaches on exactly these layer shapes, convolutions included: the
   roofline of each network's own layers), their FLOPs (torch's FlopCounterMode) and
   parameter counts.
2. The same wall-clock budget per model (``--budget`` seconds, stopped after the
   batch that crosses it) on the paper's colour rotation sequences (3x28x28 MNIST,
   S = 18) and on 64x64 sprite sequences (S = 15): held-out log-likelihood per frame,
   centred E_eq as a ratio to a VAE of the same network family, roll-prediction
   accuracy of a frame encoded alone. Target: the conv TVAE matches or beats the MLP
   TVAE on likelihood with no more parameters.

Run: ``python benchmarks/bench_networks.py [--budget 120] [--out networks.json]`` (the
default takes about 20 minutes on 2 cores).
"""

import argparse
import json
import time

import numpy as np
import torch
from skorch.callbacks import Callback
from torch.utils.flop_counter import FlopCounterMode

from _common import MNIST, report, timeit
from paper_table import sequences
from sktvae import VAE, TopographicVAE
from sktvae.datasets import fetch_mnist, make_sprite_sequences
from sktvae.metrics import equivariance_error, roll_prediction_accuracy

THROUGHPUT = {"3x32x32, S=18": ((3, 32, 32), 18), "1x64x64, S=15": ((1, 64, 64), 15)}
KINDS = ("mlp", "conv")


class TimeBudget(Callback):
    """Stops training after the batch that crosses ``seconds`` of training (skorch's
    way: a callback raises ``KeyboardInterrupt``, and fit ends normally)."""

    def __init__(self, seconds):
        self.seconds = seconds

    def on_train_begin(self, net, **kwargs):
        self.start_ = time.perf_counter()

    def on_batch_end(self, net, training=True, **kwargs):
        if training and time.perf_counter() - self.start_ > self.seconds:
            raise KeyboardInterrupt


def n_parameters(est):
    return sum(p.numel() for p in est.net_.module_.parameters())


def layers_alone(module, n_rows, n_features, n_latent):
    """Seconds and FLOPs of one forward + backward + Adam step over the two encoders
    and the decoder alone, on ``n_rows`` frames."""
    nets = torch.nn.ModuleList([module.encoder_z.net, module.encoder_u.net, module.decoder])
    opt = torch.optim.Adam(nets.parameters(), lr=1e-4, fused=True)
    x, t = torch.rand(n_rows, n_features), torch.randn(n_rows, n_latent)

    def step():
        opt.zero_grad()
        (nets[0](x).sum() + nets[1](x).sum() + nets[2](t).sum()).backward()
        opt.step()

    with FlopCounterMode(display=False) as counter:
        opt.zero_grad()
        (nets[0](x).sum() + nets[1](x).sum() + nets[2](t).sum()).backward()
    return timeit(step), counter.get_total_flops()


def throughput(n_sequences=64, epochs=3):
    rows = []
    for name, (frame_shape, S) in THROUGHPUT.items():
        F = int(np.prod(frame_shape))
        X = np.random.default_rng(0).random((n_sequences, S * F), np.float32)
        for kind in KINDS:
            est = TopographicVAE(S, S, S, frame_shape=frame_shape, encoder=kind,
                                 max_epochs=epochs, random_state=0).fit(X)
            dur = est.history_[:, "dur"]
            fit_fps = n_sequences * S / np.median(dur[1:])
            n_rows = est.batch_size * S
            seconds, flops = layers_alone(est.net_.module_, n_rows, F, S * S)
            alone_fps = n_rows / seconds
            rows += [(f"{name} {kind}: fit frames/s", fit_fps, ""),
                     (f"{name} {kind}: its layers alone, frames/s", alone_fps, ""),
                     (f"{name} {kind}: fit / layers alone", fit_fps / alone_fps, ">= 0.8"),
                     (f"{name} {kind}: layers' GFLOP/s (FLOPs {flops / n_rows / 1e6:.1f} "
                      "M/frame)", flops / seconds / 1e9, ""),
                     (f"{name} {kind}: parameters (M)", n_parameters(est) / 1e6, "")]
            print(f"  {name} {kind}: fit {fit_fps:.0f} frames/s, layers alone "
                  f"{alone_fps:.0f}", flush=True)
    return rows


def budget_models(S, frame_shape, budget, common):
    tvae = dict(n_capsules=S, capsule_dim=S, sequence_length=S, frame_shape=frame_shape,
                **common)
    vae = dict(n_components=S * S, sequence_length=S, frame_shape=frame_shape, **common)
    out = {}
    for kind in KINDS:
        out[f"TVAE {kind}"] = TopographicVAE(encoder=kind, callbacks=[TimeBudget(budget)],
                                             **tvae)
        out[f"VAE {kind}"] = VAE(encoder=kind, callbacks=[TimeBudget(budget)], **vae)
    return out


def same_budget(data, budget, common):
    results = {}
    for name, (X_train, X_test, S, frame_shape) in data.items():
        results[name] = {}
        for label, est in budget_models(S, frame_shape, budget, common).items():
            est.fit(X_train)
            shape = (S, S)
            results[name][label] = {
                "epochs": len(est.history_), "parameters": n_parameters(est),
                "ll/frame": est.score(X_test) / S,
                "E_eq centred": equivariance_error(est, X_test, center=True,
                                                   capsule_shape=shape),
                "roll acc": roll_prediction_accuracy(est, X_test, capsule_shape=shape)}
            r = results[name][label]
            print(f"  {name} {label}: {r['epochs']} epochs, ll/frame {r['ll/frame']:.1f}, "
                  f"E_eq centred {r['E_eq centred']:.3g}, roll acc {r['roll acc']:.3f}, "
                  f"{r['parameters'] / 1e6:.2f} M parameters", flush=True)
    rows = []
    for name, r in results.items():
        for kind in KINDS:
            t, v = r[f"TVAE {kind}"], r[f"VAE {kind}"]
            rows += [(f"{name} TVAE {kind}: ll/frame", t["ll/frame"], ""),
                     (f"{name} TVAE {kind}: centred E_eq / VAE {kind}'s",
                      t["E_eq centred"] / v["E_eq centred"], ""),
                     (f"{name} TVAE {kind}: roll accuracy", t["roll acc"], "")]
        conv, mlp = r["TVAE conv"], r["TVAE mlp"]
        rows += [(f"{name}: conv ll - MLP ll (nats/frame)",
                  conv["ll/frame"] - mlp["ll/frame"], ">= 0"),
                 (f"{name}: conv parameters / MLP's", conv["parameters"] / mlp["parameters"],
                  "<= 1")]
    return rows, results


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--budget", type=float, default=120.0,
                        help="training seconds per model")
    parser.add_argument("--train", type=int, default=2000, help="training sequences")
    parser.add_argument("--test", type=int, default=200, help="test sequences")
    parser.add_argument("--precision", default="auto",
                        choices=("auto", "bfloat16", "float32"))
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--skip-budget", action="store_true",
                        help="only the throughput part")
    parser.add_argument("--out", default=None)
    return parser.parse_args(argv)


def run(args, images=None):
    rows = [] if args.skip_throughput else throughput()
    if args.skip_budget:
        report("Networks: throughput", rows)
        return {}
    if images is None:
        x_train, _, x_test, _ = fetch_mnist(path=MNIST, return_X_y=True)
    else:
        x_train, x_test = images
    rotation = [sequences(x[:n], ["rotation"], "compose", seed) for x, n, seed in
                ((x_train, args.train, 0), (x_test, args.test, 1))]
    sprites = [make_sprite_sequences(n, 15, random_state=seed)[0].astype(np.float16)
               for n, seed in ((args.train, 0), (args.test, 1))]
    data = {"colour rotation 3x28x28": (*rotation, 18, (3, 28, 28)),
            "sprites 1x64x64": (*sprites, 15, (1, 64, 64))}
    common = dict(precision=args.precision, random_state=0, max_epochs=10 ** 6)
    budget_rows, results = same_budget(data, args.budget, common)
    report(f"Networks: throughput, and {args.budget:g} s of training each", rows + budget_rows)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "rows": [r[:2] for r in rows + budget_rows],
                       "results": results}, fh, indent=1, default=float)
    return results


if __name__ == "__main__":
    run(parse_args())
