"""What makes orientation and scale capsules on the authors' sprites (issue 44, part 5).

Each arm trains the protocol's partial-window TVAE (``sprites_protocol.py``: the
authors' grid drawn afresh, 15 x 15 capsules, hidden (675, 450), Adam 1e-3, batch 32,
bfloat16) with one thing changed, to the same number of training frames, and is
measured after every epoch on the protocol's held-out sequences, per factor and per
shape (orientation and scale: the shapes' symmetries differ):

* ``base``: K = 1, mu_0 = 30, every grid point a sequence each epoch (50 625).
* ``K3``: capsule_window 3 instead of 1 (what the authors' TVAE L=0 uses).
* ``mu10``: mu_0 = 10 instead of 30.
* ``epochs``: a quarter of the grid points (12 656, a fixed random subset), the same
  sequences every epoch (no fresh draw), four times the epochs: more epochs against
  more sequences at equal frames.
* ``sgd``: the authors' optimizer: SGD with momentum 0.9, batch 8, lr 1e-4 on their loss
  per frame (1e-4 / 15 on ours per sequence: 1e-4 itself diverges in the first 256
  batches, in bfloat16 and float32 alike).

Run: ``OMP_NUM_THREADS=1 python benchmarks/studies/sprite_capsules.py --arm base
--frames 3e6`` (one arm a process, about 6 minutes a million frames on one core of a
2-core AMD EPYC with AVX-512 BF16); ``--table`` prints the arms' last points,
``--figure PNG`` draws them, ``--per-shape JOBLIB`` measures a saved model (a
checkpoint of ``sprites_protocol.py``) per shape. The curves go to
``benchmarks/results/sprite_study/<arm>.json``; checkpoints, as for the other curves,
let the same command go on.
"""

import argparse
import json
import sys
from pathlib import Path

import joblib
import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from _common import add_curve_arguments, curve_main, learning_curve  # noqa: E402
from sprites_protocol import (  # noqa: E402
    FACTORS,
    C,
    S,
    authors_capcorr,
    evaluate,
    held_out,
    make_model,
)

from sktvae import FreshSequences  # noqa: E402
from sktvae.datasets import make_sprite_sequences, sprite_grid_sequences  # noqa: E402
from sktvae.metrics import capsule_roll_correlation  # noqa: E402

SHAPES = ("square", "ellipse", "heart")
ARMS = {
    "base": {},
    "K3": {"capsule_window": 3},
    "mu10": {"mu_init": 10.0},
    "epochs": {},
    # theirs is 1e-4 on a loss per frame; ours is per sequence of S = 15 frames
    "sgd": {"optimizer": "sgd", "lr": 1e-4 / S, "batch_size": 8},
}


def per_shape_tests(n, image_size):
    """Held-out orientation and scale sequences of each shape alone."""
    return {(shape, f): make_sprite_sequences(n, S, factors=(f,), path="grid",
                                              shapes=(shape,), image_size=image_size,
                                              random_state=300 + 10 * i + j)
            for i, shape in enumerate(SHAPES) for j, f in enumerate(("orientation", "scale"))}


def study_evaluate(est, tests, shape_tests):
    row = evaluate(est, tests)
    for (shape, f), (X, factors) in shape_tests.items():
        row.setdefault(shape, {})[f] = authors_capcorr(est, X, factors, f)[0]
    return row


def shape_report(est, n, image_size):
    """A trained model per shape and factor: CapCorr the authors' way (its floor), ours,
    and the likelihood per frame, as Markdown rows."""
    rows = ["| shape | factor | CapCorr, authors' (floor) | CapCorr, all frames | "
            "log p(x) per frame |", "| --- " * 5 + "|"]
    for i, shape in enumerate(SHAPES):
        for f in ("x", "orientation", "scale"):
            X, factors = make_sprite_sequences(n, S, factors=(f,), path="grid",
                                               shapes=(shape,), image_size=image_size,
                                               random_state=500 + 10 * i)
            authors, floor = authors_capcorr(est, X, factors, f)
            ours = capsule_roll_correlation(est, X, capsule_shape=(C, C))
            rows.append(f"| {shape} | {f} | {authors:.2f} ({floor:.2f}) | {ours:.2f} | "
                        f"{est.score(X) / S:.1f} |")
    return "\n".join(rows)


def training_data(arm, image_size, max_sequences=None):
    """The grid's sequences drawn afresh (``max_sequences``: a random subset of the grid
    points); for the ``epochs`` arm a quarter of them, the same draw every epoch."""
    X = sprite_grid_sequences(S, image_size=image_size, random_state=0)
    n = len(X) if max_sequences is None else min(max_sequences, len(X))
    n_rows, fresh = (n // 4, False) if arm == "epochs" else (n, True)
    if n_rows == len(X):
        return X
    rows = np.random.RandomState(1).choice(len(X), n_rows, replace=False)
    return FreshSequences(lambda r, seed: X.draw(rows[r], seed if fresh else X.seed),
                          n_rows, S, X.frame_shape, seed=X.seed)


def last_points(folder):
    """The last point of every arm's curve in ``folder``, base first, then the changes."""
    order = list(ARMS)
    paths = sorted(Path(folder).glob("*.json"), key=lambda p: (
        order.index(p.stem) if p.stem in order else len(order), p.stem))
    return {p.stem: json.loads(p.read_text())["points"][-1] for p in paths}


def table(folder):
    rows = ["| arm | frames | " + " | ".join(FACTORS) + " | orientation by shape (s/e/h) "
            "| scale by shape (s/e/h) | log p(x) per frame |",
            "| --- " * 9 + "|"]
    for arm, last in last_points(folder).items():
        cells = [f"{last[f]['capcorr_authors']:.2f}" for f in FACTORS]
        cells += ["/".join(f"{last[s][f]:.2f}" for s in SHAPES) for f in ("orientation",
                                                                         "scale")]
        cells.append(f"{np.mean([last[f]['ll_per_frame'] for f in FACTORS]):.1f}")
        rows.append(f"| {arm} | {last['frames'] / 1e6:.2f} M | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def plot_arms(folder, path):
    """Each arm's last point as bars: CapCorr the authors' way per factor, orientation
    and scale per shape, and the likelihood."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = last_points(folder)
    labels = [f"{a}\n{last['frames'] / 1e6:.1f} M" for a, last in arms.items()]
    panels = [("CapCorr, authors' way", FACTORS, lambda last, k: last[k]["capcorr_authors"]),
              ("orientation by shape", SHAPES, lambda last, k: last[k]["orientation"]),
              ("scale by shape", SHAPES, lambda last, k: last[k]["scale"])]
    fig, axes = plt.subplots(1, 4, figsize=(14, 4))
    x = np.arange(len(arms))
    for ax, (title, keys, value) in zip(axes, panels):
        width = 0.8 / len(keys)
        for i, k in enumerate(keys):
            ax.bar(x + (i - (len(keys) - 1) / 2) * width,
                   [value(last, k) for last in arms.values()], width, label=k)
        if keys == SHAPES:  # the factor's random-roll floor (about the same per shape)
            factor = title.split()[0]
            ax.axhline(next(iter(arms.values()))[factor]["authors_floor"], linestyle="--",
                       color="0.6", label="random-roll floor")
        ax.set_title(title, fontsize=9)
        ax.set_ylim(-0.2, 1.05)
        ax.legend(fontsize=6, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=4)
    axes[3].plot(x, [np.mean([last[f]["ll_per_frame"] for f in FACTORS])
                     for last in arms.values()], "o", color="0.3")
    axes[3].set_xlim(-0.5, len(arms) - 0.5)
    axes[3].set_title("log p(x) per frame (nats)", fontsize=9)
    for ax in axes:
        ax.set_xticks(x, labels, fontsize=7)
    fig.suptitle("What makes orientation and scale capsules: one change an arm", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--arm", default="base", choices=sorted(ARMS))
    add_curve_arguments(parser, HERE.parent / "results" / "sprite_study")
    parser.add_argument("--test", type=int, default=100, help="sequences per factor")
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--max-sequences", type=int, default=None,
                        help="train on this many grid start points (default all)")
    parser.add_argument("--per-shape", default=None, metavar="JOBLIB",
                        help="measure this saved model per shape and factor, and train "
                             "nothing")
    return parser.parse_args(argv)


def run(args):
    X = training_data(args.arm, args.image_size, args.max_sequences)
    tests, shape_tests = held_out(args.test, args.image_size), per_shape_tests(
        args.test, args.image_size)

    def model():
        return make_model("tvae_partial").set_params(**ARMS[args.arm])

    return learning_curve(args.arm, args.out, model, X,
                          lambda est: study_evaluate(est, tests, shape_tests), args.frames,
                          args.eval_every, args.checkpoints, args.restart)


def main(argv=None):
    arguments = parse_args(argv)
    if arguments.per_shape:
        print(shape_report(joblib.load(arguments.per_shape), arguments.test,
                           arguments.image_size))
    else:
        curve_main(arguments, table, plot_arms, run)


if __name__ == "__main__":
    main()
