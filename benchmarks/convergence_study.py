"""Which settings make a TVAE converge faster on a CPU budget? One configuration a run.

Trains one model on MNIST sequences built as in ``paper_table.py`` (one of rotation,
hue or scale per sequence, coloured digits, S = 18, 18 x 18 capsules) and prints
held-out log-likelihood per frame, E_eq (plain and centred) and roll-prediction accuracy
on 300 test sequences of each transformation, plus the KL of z and u per frame (which
latent carries the information). Each argument is a JSON dict of estimator parameters,
with ``n_train`` (sequences) and ``kind`` ("tvae" or "vae") besides:

    python benchmarks/convergence_study.py '{"n_train": 5000, "max_epochs": 6, "temporal_window": 9}'

The measurements it produced are in benchmarks/README.md.
"""

import json
import sys
import time

import torch

from _common import MNIST, S
from sktvae import VAE, SequenceTransformer, TopographicVAE
from sktvae._model import gaussian_kl
from sktvae.datasets import fetch_mnist
from sktvae.metrics import equivariance_error, roll_prediction_accuracy


def run(config):
    config = dict(config)
    n_train = config.pop("n_train", 2000)
    kind = config.pop("kind", "tvae")
    mnist = fetch_mnist(path=MNIST)
    x_train = mnist.x_train[:n_train].reshape(n_train, -1)
    x_test = mnist.x_test[:300].reshape(300, -1)
    X_train = SequenceTransformer(["rotation", "hue", "scale"], sequence_length=S,
                                  combine="random", color="red",
                                  random_state=0).fit_transform(x_train)
    tests = {f: SequenceTransformer(f, sequence_length=S, color="red",
                                    random_state=1).fit_transform(x_test)
             for f in ("rotation", "hue", "scale")}
    params = dict(sequence_length=S, random_state=0, **config)
    est = (VAE(n_components=S * S, **params) if kind == "vae"
           else TopographicVAE(S, S, **params))
    start = time.perf_counter()
    est.fit(X_train)
    seconds = time.perf_counter() - start
    print(f"{kind} {config} n_train={n_train}: fit {seconds:.0f} s, "
          f"{len(X_train) * S * est.max_epochs / seconds:.0f} frames/s")
    for family, X in tests.items():
        print(f"  {family:9s} ll/frame {est.score(X) / S:8.2f} "
              f"E_eq {equivariance_error(est, X, capsule_shape=(S, S)):8.1f} "
              f"E_eq centred {equivariance_error(est, X, center=True, capsule_shape=(S, S)):8.1f} "
              f"roll acc {roll_prediction_accuracy(est, X, capsule_shape=(S, S)):.3f}")
    module = est.net_.module_
    with torch.no_grad():
        x = torch.from_numpy(tests["rotation"][:100]).view(100, S, -1)
        z_mean, z_logvar, u_mean, u_logvar = module.encode(x)
        kl_u = 0.0 if u_mean is None else gaussian_kl(u_mean, u_logvar).mean().item() / S
        print(f"  KL(z) per frame {gaussian_kl(z_mean, z_logvar).mean().item() / S:.2f}, "
              f"KL(u) per frame {kl_u:.2f}", flush=True)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        run(json.loads(argument))
    if len(sys.argv) == 1:
        print(__doc__)
