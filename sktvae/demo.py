"""Quick start: rotating digits, a TVAE and a VAE with the same budget, and capsule rolls.

Run ``python -m sktvae.demo`` (about a minute on 2 CPU cores; ``--help`` lists the
options). It builds rotation
sequences from scikit-learn's embedded digits, fits a ``TopographicVAE`` and a ``VAE``
with the same budget, prints held-out log-likelihood and equivariance measures for both,
and writes a figure of capsule rolls (``--out``, default ``capsule_rolls.png``).
``--fast`` runs a tiny version in seconds (what the tests and docs build use).
"""

import argparse
import time

import numpy as np

from .datasets import load_digits_images
from .metrics import equivariance_error, roll_prediction_accuracy
from ._estimator import VAE, TopographicVAE
from ._runtime import check_device
from ._sequences import SequenceTransformer

SEQUENCE_LENGTH = 12


def _build_data(n_images=None, random_state=0):
    """Rotation sequences of 16x16 digits (12x12 digits with a 2-pixel border)."""
    X, _ = load_digits_images(size=12, padding=2, return_X_y=True)
    X = X[:n_images]
    seq = SequenceTransformer("rotation", sequence_length=SEQUENCE_LENGTH,
                              image_shape=(16, 16), random_state=random_state)
    X_seq = seq.fit_transform(X)
    n_test = max(1, len(X_seq) // 6)
    return X_seq[:-n_test], X_seq[-n_test:]


def _make_models(max_epochs, random_state=0, device="cpu", verbose=0):
    """The demo's TVAE and a VAE with the same encoder, decoder and training budget."""
    S = SEQUENCE_LENGTH
    common = dict(sequence_length=S, max_epochs=max_epochs, random_state=random_state,
                  device=device, verbose=verbose)
    return {"TVAE": TopographicVAE(n_capsules=S, capsule_dim=S, **common),
            "VAE": VAE(n_components=S * S, **common)}


def _evaluate(est, X_test):
    S = SEQUENCE_LENGTH
    shape = (S, S)
    return {"log p(x) per frame": est.score(X_test) / S,
            "E_eq": equivariance_error(est, X_test, capsule_shape=shape),
            "E_eq centred": equivariance_error(est, X_test, center=True,
                                               capsule_shape=shape),
            "roll accuracy": roll_prediction_accuracy(est, X_test, capsule_shape=shape)}


def main(argv=None):
    """Run the quick start; ``argv`` as on the command line (``None``: ``sys.argv``).

    Parameters
    ----------
    argv : list of str, default=None
        ``--epochs N``, ``--fast`` (tiny data, seconds), ``--seed N``, ``--device
        DEVICE``, ``--quiet`` (no per-epoch log) and ``--out PATH``.

    Returns
    -------
    results : dict
        For "TVAE" and "VAE": held-out log-likelihood per frame, E_eq (plain and
        centred) and roll-prediction accuracy.

    Examples
    --------
    >>> import tempfile, os
    >>> from sktvae.demo import main
    >>> out = os.path.join(tempfile.mkdtemp(), "rolls.png")
    >>> results = main(["--fast", "--out", out])  # doctest: +ELLIPSIS
    50 training and 10 test sequences ...
    >>> sorted(results)
    ['TVAE', 'VAE']
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default 15, or 1 with --fast)")
    parser.add_argument("--fast", action="store_true", help="tiny data, seconds")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data and the models (default 0)")
    parser.add_argument("--device", default="cpu", help='e.g. "cuda" (default "cpu")')
    parser.add_argument("--quiet", action="store_true", help="no per-epoch log")
    parser.add_argument("--out", default="capsule_rolls.png", help="figure path")
    args = parser.parse_args(argv)
    try:
        check_device(args.device)
    except ValueError as error:
        parser.error(str(error))  # one line and exit status 2, not a traceback
    epochs = args.epochs or (1 if args.fast else 15)
    X_train, X_test = _build_data(n_images=60 if args.fast else None,
                                  random_state=args.seed)
    print(f"{len(X_train)} training and {len(X_test)} test sequences of "
          f"{SEQUENCE_LENGTH} rotated 16x16 digits; {epochs} epochs each.")
    results = {}
    models = _make_models(epochs, random_state=args.seed, device=args.device,
                          verbose=0 if args.quiet else 1)
    for name, est in models.items():
        print(f"\nFitting the {name} (skorch's log: the negative ELBO per sequence)")
        start = time.perf_counter()
        est.fit(X_train)
        results[name] = _evaluate(est, X_test)
        print(f"{name}: fitted in {time.perf_counter() - start:.0f} s")
    print(f"\n{'':22s}" + "".join(f"{name:>10s}" for name in results))
    for key in results["TVAE"]:
        print(f"{key:22s}" + "".join(f"{r[key]:10.3f}" for r in results.values()))
    print(f"(roll accuracy by chance: {3 / SEQUENCE_LENGTH:.3f})")
    try:
        import matplotlib

        matplotlib.use("Agg")
        from .plotting import plot_capsule_roll
    except ImportError:
        print("matplotlib is not installed: no figure (pip install 'sktvae[plot]').")
        return results
    fig = plot_capsule_roll({"TVAE": models["TVAE"], "VAE": models["VAE"]}, X_test,
                            (16, 16), n_sequences=3).figure_
    fig.savefig(args.out, dpi=120)
    print(f"Capsule rolls written to {args.out}")
    return results


if __name__ == "__main__":  # pragma: no cover
    main()
