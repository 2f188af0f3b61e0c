"""The paper's Figure 3: a 2-D topographic map of MNIST digits, against a VAE.

One capsule of 18 x 18 units read as a torus, W a 5 x 5 window of ones (circular on both
axes), no sequences, mu_0 = 10, batch 128 (the reference run ``tvae_2d_mnist``), trained
on all 60 000 MNIST training digits; a VAE with the same encoder, decoder (the paper's
972-648 layers) and budget; and the untrained TVAE, to show what W's smoothing alone
does. Measured on the 10 000 test digits:

* Moran's I of the ten digit classes' d' maps (and of the map of correlations with ink
  mass, a proxy for stroke width) on the 18 x 18 torus (the VAE's units on the same
  grid, in their own order: the baseline);
* per class, the share of units with d' >= 0.85 and the largest d'; the mean
  correlation between two classes' maps (low: each class has a map of its own);
* the held-out log-likelihood per image, importance sampled with 10 samples, after
  every epoch (on the first 2 000 test digits) and at the end (all 10 000).

Targets (same budget): TVAE Moran's I >= 0.9, every class with units of d' >= 1 and
map correlation <= 0.3; VAE |I| <= 0.1; TVAE log-likelihood within 5% of the VAE's.

Run: ``python benchmarks/topographic_map.py [--epochs 12] [--figures docs/_static]``.
The budget: 12 epochs of each model (720 000 digits), within 15 minutes on 2 CPU cores
(8 minutes on a 2-core AMD EPYC with AVX-512). ``--mu-init``, ``--window``,
``--u-mean-init`` and ``--hidden`` change the setting, to measure what the likelihood
gap depends on (docs/learned.rst, "A 2-D map costs likelihood, set by mu").
"""

import argparse
import json
import time

import numpy as np
import torch

from _common import MNIST, device_name
from sktvae import VAE, TopographicVAE
from sktvae.metrics import selectivity_summary, topographic_organization

GRID = (1, 18, 18)


def load_mnist(n_train):
    if not MNIST.exists():
        raise SystemExit(f"MNIST not found at {MNIST} (keys x_train, y_train, x_test, "
                         "y_test).")
    data = np.load(MNIST)
    X_train = (data["x_train"][:n_train].reshape(-1, 784) / 255.0).astype(np.float32)
    X_test = (data["x_test"].reshape(-1, 784) / 255.0).astype(np.float32)
    return X_train, data["y_train"][:n_train], X_test, data["y_test"]


def models(args):
    common = dict(hidden_layer_sizes=tuple(args.hidden), batch_size=128, lr=args.lr,
                  random_state=args.seed, device=args.device)
    window = (args.window, args.window)
    tvae = dict(n_capsules=1, capsule_dim=(18, 18), capsule_window=window,
                sequence_length=1, mu_init=args.mu_init, u_mean_init=args.u_mean_init)
    return {"untrained TVAE": TopographicVAE(**tvae, **common, max_epochs=0),
            "TVAE": TopographicVAE(**tvae, **common, max_epochs=1),
            "VAE": VAE(n_components=324, **common, max_epochs=1)}


def measure(est, X_test, y_test, ink):
    summary = selectivity_summary(est, X_test, y_test, grid_shape=GRID)
    return {
        "morans_i_classes": summary["morans_i_mean"],
        "morans_i_ink": topographic_organization(est, X_test, ink, grid_shape=GRID,
                                                 target_type="continuous"),
        "min_over_classes_max_d_prime": float(summary["max_selectivity"].min()),
        "share_d_prime_085": summary["share_selective"].round(3).tolist(),
        "map_correlation": summary["map_correlation"],
        "log_px": float(est.score(X_test)),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--n-train", type=int, default=60000)
    parser.add_argument("--hidden", type=int, nargs="+", default=[972, 648])
    parser.add_argument("--mu-init", type=float, default=10.0)
    parser.add_argument("--window", type=int, default=5)
    parser.add_argument("--u-mean-init", type=float, default=1.0)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--figures", help="folder for the figures (PNG)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    torch.set_num_threads(torch.get_num_threads())
    X_train, _, X_test, y_test = load_mnist(args.n_train)
    ink = X_test.sum(1)  # ink mass: a proxy for stroke width
    print(f"# topographic map: {len(X_train)} training digits, {args.epochs} epochs, "
          f"hidden {tuple(args.hidden)}, mu_0 {args.mu_init}, window {args.window}x"
          f"{args.window}, Adam lr {args.lr}, batch 128  [{device_name()}, torch "
          f"{torch.__version__}]", flush=True)
    fitted, results, curves = models(args), {}, {}
    for name, est in fitted.items():
        start = time.perf_counter()
        curves[name] = []
        if est.max_epochs == 0:
            est.fit(X_train)
        else:
            for epoch in range(args.epochs):  # as fit(max_epochs=epochs) would train
                est.partial_fit(X_train)
                curves[name].append(float(est.score(X_test[:2000])))
                print(f"  {name} epoch {epoch + 1}: held-out log p(x) (2 000 digits) "
                      f"{curves[name][-1]:.2f}", flush=True)
        seconds = time.perf_counter() - start
        results[name] = {**measure(est, X_test, y_test, ink), "fit_seconds": seconds}
        print(f"{name}: {json.dumps(results[name])}", flush=True)
    tvae, vae = results["TVAE"], results["VAE"]
    gap = (vae["log_px"] - tvae["log_px"]) / abs(vae["log_px"])
    checks = [
        ("TVAE Moran's I of the class maps >= 0.9", tvae["morans_i_classes"] >= 0.9),
        ("TVAE: every class has units of d' >= 1",
         tvae["min_over_classes_max_d_prime"] >= 1),
        ("TVAE class maps distinct (mean correlation <= 0.3)",
         tvae["map_correlation"] <= 0.3),
        ("VAE |Moran's I| <= 0.1 on the same grid", abs(vae["morans_i_classes"]) <= 0.1),
        (f"TVAE log p(x) within 5% of the VAE's (behind by {100 * gap:.1f}%)", gap <= 0.05),
    ]
    print("\n## targets")
    for text, ok in checks:
        print(f"  {'PASS' if ok else 'MISS'}  {text}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results, "curves": curves}, f,
                      indent=1)
    if args.figures:
        draw(fitted, X_test, y_test, curves, args.figures)
    return results


def draw(fitted, X_test, y_test, curves, folder):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sktvae.plotting import plot_class_selectivity, plot_max_activating, plot_samples

    for name, tag in (("TVAE", "tvae"), ("VAE", "vae"), ("untrained TVAE", "untrained")):
        display = plot_class_selectivity(fitted[name], X_test, y_test, grid_shape=GRID)
        display.figure_.suptitle(name, fontsize=10)
        display.figure_.savefig(f"{folder}/topographic_map_{tag}.png", dpi=110,
                                bbox_inches="tight")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5.6))
    plot_max_activating(fitted["TVAE"], X_test[:2000], ax=axes[0])
    plot_samples(fitted["TVAE"], 64, random_state=0, ax=axes[1])
    fig.tight_layout()
    fig.savefig(f"{folder}/topographic_map_units.png", dpi=110, bbox_inches="tight")
    fig, ax = plt.subplots(figsize=(5, 3.2))
    for name in ("TVAE", "VAE"):
        ax.plot(range(1, len(curves[name]) + 1), curves[name], marker="o", label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out log p(x) per image (nats)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(f"{folder}/topographic_map_likelihood.png", dpi=110)


if __name__ == "__main__":
    main()
