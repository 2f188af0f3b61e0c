"""Plots return figures with the expected panels (Agg backend, nothing shown)."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402

from conftest import tiny_tvae, tiny_vae  # noqa: E402
from sktvae.plotting import (  # noqa: E402
    plot_capsule_roll,
    plot_topographic_map,
    plot_training_curves,
)


def test_plots(X):
    tvae = tiny_tvae(max_epochs=3).fit(X)
    display = plot_capsule_roll(tvae, X, (2, 3), n_sequences=2)
    assert display.ax_.shape == (2 * 2, 4) and len(display.figure_.axes) == 2 * 2 * 4
    assert display.ax_[0, 0].get_ylabel() == "true"
    np.testing.assert_allclose(display.predicted.reshape(2, -1),
                               tvae.predict_sequence(X[:2, :6], include_observed=True))
    display = plot_topographic_map(tvae, X, sequence=1)
    assert len(display.ax_) == 4
    assert display.ax_[0].images[0].get_array().shape == (2, 4)
    display = plot_training_curves(tvae, tiny_vae().fit(X), labels=["tvae", "vae"])
    ax = display.ax_
    assert [line.get_label() for line in ax.lines] == ["tvae train_loss", "vae train_loss"]
    np.testing.assert_allclose(ax.lines[0].get_ydata(), tvae.history_[:, "train_loss"])
    assert plot_training_curves(tvae, ax=ax).ax_ is ax and len(ax.lines) == 3
    import pytest

    with pytest.raises(ValueError, match="labels has 1 entries for 2 estimators"):
        plot_training_curves(tvae, tvae, labels=["only one"])


def test_capsule_rolls_of_several_models_one_row_each(X):
    tvae, vae = tiny_tvae().fit(X), tiny_vae().fit(X)
    display = plot_capsule_roll({"TVAE": tvae, "VAE": vae}, X, (2, 3), n_sequences=2)
    assert display.ax_.shape == (2 * 3, 4)
    assert [display.ax_[r, 0].get_ylabel() for r in range(3)] == ["true", "TVAE", "VAE"]
    assert display.figure_._supxlabel.get_text().startswith("frame k")
    np.testing.assert_allclose(display.predicted["VAE"].reshape(2, -1),
                               vae.predict_sequence(X[:2, :6], include_observed=True))
