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


def test_plot_arguments_are_checked_not_misread(X):
    """Each once drew nothing, drew the wrong thing or ended in a raw error (issue 42)."""
    import pytest

    from sktvae.metrics import forecast_error
    from sktvae.plotting import plot_forecast, plot_forecast_error

    tvae, vae = tiny_tvae().fit(X), tiny_vae().fit(X)
    for shape in ((3, 3), (2, 3.0), None):
        with pytest.raises(ValueError, match="image_shape"):
            plot_capsule_roll(tvae, X, shape)
    for steps in (0, -1, 2.5, 5):
        with pytest.raises(ValueError, match=f"n_steps must be an int in 1 .. 4; got "
                                             f"{steps!r}"):
            plot_capsule_roll(tvae, X, (2, 3), n_steps=steps)
    with pytest.raises(ValueError, match="image_shape"):
        plot_forecast(tvae, X, (4, 4), n_observed=2)
    with pytest.raises(TypeError, match="a VAE has none"):
        plot_topographic_map(vae, X)
    for sequence in (100, -1, 1.5):
        with pytest.raises(ValueError, match="sequence must be an int in 0 .. 23"):
            plot_topographic_map(tvae, X, sequence=sequence)
    display = plot_training_curves(tvae, keys="train_loss")  # a string is one key
    assert len(display.ax_.lines) == 1
    with pytest.raises(ValueError, match=r"keys \['trian_loss'\] are in no"):
        plot_training_curves(tvae, keys=("trian_loss",))
    with pytest.raises(ValueError, match="trained no epoch"):
        plot_training_curves(tiny_tvae(max_epochs=0).fit(X))
    interrupted = tiny_tvae(max_epochs=3).fit(X)
    del interrupted.history_[-1]["train_loss"]  # as an epoch stopped before its end
    assert len(plot_training_curves(interrupted).ax_.lines[0].get_xdata()) == 2
    good = forecast_error(tvae, X, 2)
    for bad in ({"TVAE": {"mse": [1.0]}}, [good], {}):
        with pytest.raises(ValueError, match="errors"):
            plot_forecast_error(bad)
