"""Figures of the paper's Table 1 from ``paper_table.py``'s JSON output.

    python benchmarks/paper_table.py --out table.json
    python benchmarks/figures.py table.json --out docs/_static

writes ``table1_bars.png`` (per transformation and model: held-out log-likelihood per
frame, centred E_eq as a fraction of the VAE's, roll-prediction accuracy against chance),
where the run recorded it ``table1_learning_curves.png`` (held-out ELBO per frame after
each epoch), and ``table1.csv``, the table itself, which the documentation's
"Reproducing the paper" page shows as it is. Needs matplotlib.
"""

import argparse
import json
from pathlib import Path

FAMILIES = ("rotation", "hue", "scale")
PANELS = (("ll/frame", "held-out log p(x) per frame (nats)", False),
          ("E_eq centred", "centred E_eq / the VAE's", True),
          ("roll acc", "roll-prediction accuracy", False))


def _mixed(results):
    """The models of the mixed table, in the run's order (not the one-family runs)."""
    return {name: r for name, r in results.items() if name != "single"}


def bar_figure(results, sequence_length=18):
    """One row of panels per measure, transformations along x, one bar per model."""
    import matplotlib.pyplot as plt
    import numpy as np

    models = _mixed(results)
    names = list(models)
    fig, axes = plt.subplots(1, len(PANELS), figsize=(4.2 * len(PANELS) + 1.4, 3.4),
                             layout="constrained")
    width = 0.8 / len(names)
    x = np.arange(len(FAMILIES))
    for ax, (key, label, relative) in zip(axes, PANELS):
        for i, name in enumerate(names):
            values = np.array([models[name][f][key] for f in FAMILIES], dtype=float)
            if relative:
                values = values / np.array([models["VAE"][f][key] for f in FAMILIES])
            ax.bar(x + (i - (len(names) - 1) / 2) * width, values, width, label=name)
        if key == "roll acc":
            ax.axhline(3 / sequence_length, color="k", lw=0.8, ls="--", label="chance")
            ax.set_ylim(0, 1)
        if relative:
            ax.set_yscale("log")
        ax.set_xticks(x, FAMILIES)
        ax.set_title(label, fontsize=10)
    fig.legend(*axes[-1].get_legend_handles_labels(), loc="outside right upper", fontsize=8)
    return fig


def table_csv(results):
    """The table as CSV: a row per model, a cell per transformation holding held-out
    log-likelihood per frame, centred E_eq / the VAE's, roll accuracy and CapCorr."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["model", *FAMILIES])
    vae = results["VAE"]
    for name, r in _mixed(results).items():
        writer.writerow([name, *(
            f"{r[f]['ll/frame']:.1f}, {r[f]['E_eq centred'] / vae[f]['E_eq centred']:.3f}, "
            f"{r[f]['roll acc']:.2f}, {r[f]['CapCorr']:.2f}" for f in FAMILIES)])
    return out.getvalue()


def curve_figure(results):
    """Held-out ELBO per frame against epochs, one line per model (or None)."""
    import matplotlib.pyplot as plt

    curves = {name: r["held-out ELBO per frame per epoch"]
              for name, r in _mixed(results).items()
              if "held-out ELBO per frame per epoch" in r}
    if not curves:
        return None
    fig, ax = plt.subplots(figsize=(5, 3.4), layout="constrained")
    for name, curve in curves.items():
        ax.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=name)
    ax.set_xlabel("epoch")
    ax.set_ylabel("held-out ELBO per frame (nats)")
    ax.legend(fontsize=7)
    return fig


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("table", type=Path, help="paper_table.py's --out JSON")
    parser.add_argument("--out", type=Path, default=Path("."), help="folder of the PNGs")
    args = parser.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    results = json.loads(args.table.read_text())["results"]
    if "VAE" not in results:
        raise SystemExit(f"{args.table} has no VAE row: the bars are drawn relative to it.")
    args.out.mkdir(parents=True, exist_ok=True)
    written = [args.out / "table1_bars.png"]
    bar_figure(results).savefig(written[0], dpi=110)
    curves = curve_figure(results)
    if curves is not None:
        written.append(args.out / "table1_learning_curves.png")
        curves.savefig(written[-1], dpi=110)
    written.append(args.out / "table1.csv")
    written[-1].write_text(table_csv(results))
    for path in written:
        print(f"wrote {path}")
    return written


if __name__ == "__main__":
    main()
