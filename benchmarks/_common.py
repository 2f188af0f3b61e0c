"""Helpers the benchmarks share: the paper's MNIST model sizes, FLOP counts, timing, RSS."""

import os
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

from sktvae._model import layer_sizes

ROOT = Path(__file__).resolve().parents[1]
MNIST = ROOT.parent / "shared" / "datasets" / "mnist.npz"

# The paper's MNIST setting (issue: 18 capsules x 18 dims, S = 18, 3x28x28 frames).
S, C, D = 18, 18, 18
N_FEATURES = 3 * 28 * 28
HIDDEN = (972, 648)


def layer_shapes(n_features=N_FEATURES, hidden=HIDDEN, n_latent=C * D):
    """(in, out) of every Linear layer: two encoders and the mirrored decoder."""
    encoder, decoder = layer_sizes(n_features, n_latent, hidden)
    enc = list(zip(encoder[:-1], encoder[1:]))
    return enc + enc + list(zip(decoder[:-1], decoder[1:]))


def gemms(shapes, n_rows, executed=True):
    """(m, k, n) of the forward and backward GEMMs: X W^T, dY W and dY^T X per layer.

    With ``executed``, leave out the input gradient of the layers that read the data
    (the encoders' first layers): autograd does not compute it.
    """
    out = []
    for i, o in shapes:
        out += [(n_rows, i, o), (o, n_rows, i)]
        if not (executed and i == shapes[0][0]):
            out.append((n_rows, o, i))
    return out


def flops_per_frame(shapes, executed=True):
    """FLOPs of one forward + backward pass per frame (2 per multiply-add)."""
    return sum(2 * m * k * n for m, k, n in gemms(shapes, 1, executed))


def sync(device):
    """Wait for ``device`` (a GPU) to finish its queue, so that a timing includes it."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def timeit(fn, repeat=5, warmup=2):
    """Median seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def matmul_flops_per_second(shapes, n_rows, repeat=5, preallocated=False):
    """float32 GEMM rate torch reaches here on the GEMMs a training step runs for
    ``shapes`` at ``n_rows`` rows: ``a @ b`` as layers run it (allocating the result),
    or with ``preallocated`` outputs (``torch.mm(out=)``, an upper bound)."""
    sizes = gemms(shapes, n_rows)
    mats = [(torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)) for m, k, n in sizes]
    if preallocated:
        seconds = timeit(lambda: [torch.mm(a, b, out=c) for a, b, c in mats], repeat=repeat)
    else:
        seconds = timeit(lambda: [a @ b for a, b, _ in mats], repeat=repeat)
    return sum(2 * m * k * n for m, k, n in sizes) / seconds


def peak_rss_gib():
    """Peak resident memory of this process so far, GiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20


def device_name():
    return torch.cuda.get_device_name() if torch.cuda.is_available() else \
        f"CPU ({torch.get_num_threads()} torch threads)"


def report(title, rows):
    """Print ``rows`` (name, value, target) as an aligned table."""
    print(f"\n## {title}  [{device_name()}, torch {torch.__version__}]")
    for name, value, target in rows:
        shown = f"{value:,.3f}" if isinstance(value, float) else str(value)
        print(f"  {name:58s} {shown:>14s}   {target}")
    sys.stdout.flush()


def model_table_parser(description, train, test, epochs):
    """The options every model-table benchmark takes (sizes, budget, device, output)."""
    import argparse

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--train", type=int, default=train, help="training sequences")
    parser.add_argument("--test", type=int, default=test, help="test sequences per set")
    parser.add_argument("--epochs", type=int, default=epochs)
    parser.add_argument("--hidden", default="512,512")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--models", default=None,
                        help="comma-separated subset of the model names")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="auto",
                        choices=("auto", "bfloat16", "float32"))
    parser.add_argument("--out", default=None, help="JSON of every figure")
    return parser


def training_params(args):
    """The estimators' shared parameters from ``model_table_parser``'s options."""
    return dict(hidden_layer_sizes=tuple(int(h) for h in args.hidden.split(",")),
                max_epochs=args.epochs, batch_size=args.batch_size, device=args.device,
                precision=args.precision, random_state=0)


def fit_and_measure(models, X_train, tests, measure, describe, args):
    """Fit each of ``models`` (those ``--models`` names) on ``X_train``, ``measure``
    it on each of ``tests``; print a line per model (``describe(results)``) and return
    ``{name: {"fit s", "precision", test name: measures}}``, also written to ``--out``."""
    import json

    if args.models:
        models = {k: v for k, v in models.items() if k in args.models.split(",")}
    results = {}
    for name, est in models.items():
        start = time.perf_counter()
        est.fit(X_train)
        fit_s = time.perf_counter() - start
        results[name] = {"fit s": fit_s, "precision": est.precision_,
                         **{t: measure(est, X) for t, X in tests.items()}}
        print(f"{name}: {fit_s:.0f} s; " + "; ".join(
            f"{t}: {describe(r)}" for t, r in results[name].items()
            if isinstance(r, dict)), flush=True)
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": vars(args), "results": results}, fh, indent=1)
    return results


# Checkpoints of the long runs: outside the work tree (a new checkout does not carry
# them; the machine, handed to the next session, may), 100 MB and more each.
CHECKPOINTS = Path(os.environ.get("SKTVAE_CHECKPOINTS",
                                  Path.home() / ".cache" / "sktvae" / "checkpoints"))


def add_curve_arguments(parser, out):
    """The options of a learning-curve benchmark: budget, evaluation, where to write."""
    parser.add_argument("--frames", type=float, default=20e6, help="training budget")
    parser.add_argument("--eval-every", type=float, default=2e6, help="frames")
    parser.add_argument("--out", default=str(out), help="folder of the curves (JSON)")
    parser.add_argument("--restart", action="store_true",
                        help="train from scratch, replacing a curve whose checkpoint "
                             "is missing")
    parser.add_argument("--checkpoints", default=None,
                        help="folder of the checkpoints (default: under "
                             "~/.cache/sktvae/checkpoints, outside the work tree)")
    parser.add_argument("--table", action="store_true",
                        help="print the curves in --out as a table, and train nothing")
    parser.add_argument("--figure", default=None,
                        help="draw the curves in --out to this PNG, and train nothing")


def curve_main(args, table, plot_curves, run):
    """What a learning-curve benchmark does with its options: print the table of the
    curves in ``--out``, draw them, or train."""
    if args.table:
        print(table(args.out))
    elif args.figure:
        plot_curves(args.out, args.figure)
    else:
        run(args)


def learning_curve(name, folder, make_model, X, evaluate, frames, eval_every,
                   checkpoints=None, restart=False):
    """Train a model one epoch a ``partial_fit`` on ``X`` (sequences drawn afresh each
    epoch) up to ``frames`` training frames, checkpointed after every epoch in
    ``checkpoints/<name>.joblib`` (default ``CHECKPOINTS/<folder's name>``), and
    measured by ``evaluate(est)`` (a dict) after the first epoch and then every
    ``eval_every`` frames; the curve goes to ``folder/<name>.json`` as it grows. Run
    again, it goes on from the checkpoint; a curve without its checkpoint (another
    machine) is not overwritten unless ``restart``."""
    import json

    import joblib

    folder = Path(folder)
    checkpoints = Path(checkpoints) if checkpoints is not None else \
        CHECKPOINTS / folder.resolve().name
    for path in (folder, checkpoints):
        path.mkdir(parents=True, exist_ok=True)
    curve_path, model_path = folder / f"{name}.json", checkpoints / f"{name}.joblib"
    if model_path.exists():
        est = joblib.load(model_path)
        curve = json.loads(curve_path.read_text())
        print(f"resuming {name} at {curve['frames']:.3g} frames", flush=True)
    else:
        if curve_path.exists() and not restart:
            raise FileNotFoundError(
                f"{curve_path} holds a curve, but its checkpoint {model_path} is missing "
                "(another machine?): copy the checkpoint there to go on, or pass "
                "--restart to train from scratch and replace the curve.")
        est = make_model()
        curve = {"model": name, "frames": 0, "seconds": 0.0, "points": [],
                 "params": {k: repr(v) for k, v in est.get_params().items()},
                 "threads": torch.get_num_threads(), "sequences_per_epoch": len(X)}
    per_epoch = len(X) * X.sequence_length  # frames an epoch
    next_eval = curve["points"][-1]["frames"] + eval_every if curve["points"] else 0
    while curve["frames"] < frames:
        start = time.perf_counter()
        est.partial_fit(X)
        curve["seconds"] += time.perf_counter() - start
        curve["frames"] += per_epoch
        joblib.dump(est, model_path.with_suffix(".tmp"))  # aside, then renamed: a run
        os.replace(model_path.with_suffix(".tmp"), model_path)  # killed keeps the last
        if curve["frames"] >= next_eval or curve["frames"] >= frames:
            point = {"frames": curve["frames"], "seconds": curve["seconds"],
                     "train_loss": est.history_[-1, "train_loss"], **evaluate(est)}
            curve["points"].append(point)
            next_eval = curve["frames"] + eval_every

            def rounded(value):
                if isinstance(value, dict):
                    return {k: rounded(v) for k, v in value.items()}
                return round(value, 3) if isinstance(value, float) else value

            print(json.dumps(rounded(point)), flush=True)
        curve_path.write_text(json.dumps(curve, indent=1))
    return curve
