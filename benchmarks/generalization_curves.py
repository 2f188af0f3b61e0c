"""The paper's Figures 1 and 6 as the authors ran them: learning curves on MNIST
sequences drawn afresh every epoch, tested on a combination never seen.

Training (issue 44, part 6): ``--train`` MNIST digits (the authors': 48 000), each
one's sequence drawn afresh every epoch (``SequenceTransformer(fresh_each_epoch=True)``)
as one of rotation, hue and scale, chosen per sequence, from a random phase on the
20-degree grid (``random_start="grid"``, S = 18), coloured red. Test: held-out digits
with rotation and hue moving together. Models: the TVAE of the paper's figures (18 x 18
capsules, L = 6) and the VAE, hidden (972, 648), Adam 1e-3, batch 32, bfloat16.

Every ``--eval-every`` frames: the roll accuracy of frame 0's capsules taken from the
whole encoded sequence (what the paper's figures roll) and from frame 0 encoded alone,
the forecast error per horizon from half a sequence against repeating the last seen
frame (the worst ratio over horizons), and the held-out log-likelihood per frame. The
curve goes to ``--out/<model>.json``, the model is checkpointed every epoch; the same
command goes on from the checkpoint.

Targets: whole-sequence roll >= 0.9 on the unseen combination, frame-alone roll >=
0.6, forecast error <= 0.5 of repeating the last frame at every horizon.

Run: ``OMP_NUM_THREADS=1 python benchmarks/generalization_curves.py --model tvae
--frames 20e6`` and ``--model vae``; ``--table`` prints the curves in ``--out``,
``--figure PNG`` draws them.
"""

import argparse
from pathlib import Path

import numpy as np

from _common import MNIST, add_curve_arguments, curve_main, learning_curve
from sktvae import VAE, SequenceTransformer, TopographicVAE
from sktvae.datasets import fetch_mnist
from sktvae.metrics import forecast_error, roll_prediction_accuracy

S = 18
HERE = Path(__file__).resolve().parent


def make_model(name, hidden=(972, 648), seed=0):
    common = dict(hidden_layer_sizes=hidden, batch_size=32, lr=1e-3, precision="bfloat16",
                  random_state=seed, max_epochs=1)
    if name == "vae":
        return VAE(n_components=18 * 18, **common)
    return TopographicVAE(18, 18, temporal_window=6, **common)


def transformer(families, combine, fresh, seed):
    return SequenceTransformer(list(families), sequence_length=S, combine=combine,
                               color="red", random_start="grid", random_state=seed,
                               fresh_each_epoch=fresh)


def evaluate(est, X_test):
    shape = (18, 18)
    forecast = forecast_error(est, X_test, S // 2)
    return {"rotation+hue": {
        "roll_sequence": roll_prediction_accuracy(est, X_test, capsule_shape=shape,
                                                  encode="sequence"),
        "roll_alone": roll_prediction_accuracy(est, X_test, capsule_shape=shape),
        "forecast_to_repeat_last": float((forecast.mse / forecast.mse_repeat_last).max()),
        "ll_per_frame": est.score(X_test) / S}}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tvae", choices=["tvae", "vae"])
    add_curve_arguments(parser, HERE / "results" / "generalization")
    parser.add_argument("--train", type=int, default=48000, help="training digits")
    parser.add_argument("--test", type=int, default=300, help="test digits")
    parser.add_argument("--hidden", default="972,648")
    return parser.parse_args(argv)


def run(args, images=None):
    """``images``: ``(train, test)`` uint8 digits (default MNIST's)."""
    if images is None:
        x_train, _, x_test, _ = fetch_mnist(path=MNIST, return_X_y=True)
        images = x_train[:args.train], x_test[:args.test]
    x_train, x_test = (np.asarray(x).reshape(len(x), -1) for x in images)
    X = transformer(("rotation", "hue", "scale"), "random", True, 0).fit_transform(x_train)
    X_test = transformer(("rotation", "hue"), "compose", False, 1).fit_transform(x_test)
    hidden = tuple(int(h) for h in args.hidden.split(","))
    return learning_curve(args.model, args.out, lambda: make_model(args.model, hidden), X,
                          lambda est: evaluate(est, X_test), args.frames, args.eval_every,
                          args.checkpoints, args.restart)


MEASURES = [("roll_sequence", "roll, frame 0 from the whole sequence", 0.9),
            ("roll_alone", "roll, frame 0 encoded alone", 0.6),
            ("forecast_to_repeat_last", "forecast MSE / repeat-last (worst horizon)", 0.5),
            ("ll_per_frame", "log p(x) per frame (nats)", None)]


def table(folder):
    """Every point of every model in ``folder`` as a Markdown table."""
    import json

    rows = ["| model | frames | roll, whole sequence | roll, frame alone | forecast / "
            "repeat-last (worst horizon) | log p(x) per frame |", "| --- " * 6 + "|"]
    for p in sorted(Path(folder).glob("*.json")):
        for point in json.loads(p.read_text())["points"]:
            r = point["rotation+hue"]
            rows.append(f"| {p.stem} | {point['frames'] / 1e6:.2f} M | "
                        f"{r['roll_sequence']:.3f} | {r['roll_alone']:.3f} | "
                        f"{r['forecast_to_repeat_last']:.2f} | {r['ll_per_frame']:.1f} |")
    return "\n".join(rows)


def plot_curves(folder, path):
    """The learning curves of every model in ``folder`` (their JSON), one panel a
    measure on the unseen combination, the target dashed."""
    import json

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves = {p.stem: json.loads(p.read_text()) for p in sorted(Path(folder).glob("*.json"))}
    fig, axes = plt.subplots(1, len(MEASURES), figsize=(13, 3.2))
    for ax, (key, label, target) in zip(axes, MEASURES):
        for name, curve in curves.items():
            ax.plot([p["frames"] / 1e6 for p in curve["points"]],
                    [p["rotation+hue"][key] for p in curve["points"]], marker="o",
                    markersize=3, label=name)
        if target is not None:
            ax.axhline(target, linestyle="--", color="0.6", label="target")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("training frames (M)")
    axes[0].legend(fontsize=7)
    fig.suptitle("Figures 1 and 6 the authors' way: rotation and hue together, never "
                 "seen in training", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    arguments = parse_args()
    curve_main(arguments, table, plot_curves, run)
