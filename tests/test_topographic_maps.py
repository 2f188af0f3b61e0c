"""2-D torus capsules through the estimator, the organisation metrics and their plots."""

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

from conftest import tiny_tvae, tiny_vae  # noqa: E402
from sktvae import TopographicVAE  # noqa: E402
from sktvae.metrics import (  # noqa: E402
    class_selectivity,
    equivariance_error_from_latents,
    morans_i,
    observed_rolls,
    roll_prediction_accuracy,
    selectivity_from_responses,
    selectivity_summary,
    topographic_organization,
)
from sktvae.plotting import (  # noqa: E402
    plot_class_selectivity,
    plot_max_activating,
    plot_samples,
    plot_topographic_map,
)


def tiny_torus(**params):
    return tiny_tvae(**{**dict(n_capsules=1, capsule_dim=(3, 4), capsule_window=(3, 3),
                               sequence_length=1, temporal_window=0), **params})


def activation_sign(tvae):
    """-1 where the learned mu is positive: a TVAE unit's activation is then -t."""
    return -1.0 if float(tvae.net_.module_.topography.mu.detach()) > 0 else 1.0


@pytest.fixture
def images():
    """36 'images' of 16 pixels in three classes whose mean brightness differs."""
    rng = np.random.default_rng(0)
    y = np.arange(36) % 3
    X = np.clip(rng.random((36, 16)) * 0.5 + 0.25 * y[:, None], 0, 1).astype(np.float32)
    return X, y


# --- the model --------------------------------------------------------------------
def test_torus_estimator_orders_frame_capsule_row_col(images):
    X, _ = images
    tvae = tiny_torus(n_capsules=2).fit(X)
    names = tvae.get_feature_names_out()
    assert len(names) == tvae.transform(X).shape[1] == 2 * 3 * 4
    assert list(names[:5]) == ["frame0_capsule0_r0_c0", "frame0_capsule0_r0_c1",
                               "frame0_capsule0_r0_c2", "frame0_capsule0_r0_c3",
                               "frame0_capsule0_r1_c0"]
    assert names[-1] == "frame0_capsule1_r2_c3"
    assert tvae.net_.module_.topography.matrix.shape == (12, 12)
    assert np.isfinite(tvae.score_samples(X)).all()
    assert tvae.sample(3, random_state=0).shape == (3, 16)
    assert tiny_tvae(capsule_dim=4).fit(X[:, :4 * 4]).get_feature_names_out()[1] == \
        "frame0_capsule0_dim1"  # ring names unchanged


def test_int_window_on_a_torus_is_square():
    tvae = tiny_torus(capsule_dim=(5, 5), capsule_window=3)
    assert tvae._capsule_window_shape == (3, 3)
    X = np.random.default_rng(0).random((8, 6)).astype(np.float32)
    assert tvae.fit(X).net_.module_.topography.n_terms == 9


def test_roll_along_cols_by_default_and_rows_by_axis():
    tvae = TopographicVAE(n_capsules=2, capsule_dim=(2, 3))
    T = np.arange(12.0)[None]
    capsules = T.reshape(1, 2, 2, 3)
    np.testing.assert_array_equal(tvae.roll(T, 1).reshape(1, 2, 2, 3),
                                  np.roll(capsules, 1, axis=3))
    np.testing.assert_array_equal(tvae.roll(T, 1, axis=-2).reshape(1, 2, 2, 3),
                                  np.roll(capsules, 1, axis=2))
    np.testing.assert_array_equal(tvae.roll(T, 2, axis=1), tvae.roll(T, 2))
    np.testing.assert_array_equal(tvae.roll(np.vstack([T, T]), [0, 1])[1], tvae.roll(T, 1)[0])
    with pytest.raises(ValueError, match="axis must be a capsule axis"):
        tvae.roll(T, 1, axis=2)
    with pytest.raises(ValueError, match="axis must be a capsule axis"):
        TopographicVAE(n_capsules=1, capsule_dim=4).roll(T[:, :4], 1, axis=-2)


def test_torus_with_time_rolls_along_cols_and_metrics_work():
    rng = np.random.default_rng(0)
    X = rng.random((16, 4 * 6)).astype(np.float32)
    tvae = tiny_tvae(n_capsules=1, capsule_dim=(2, 4), capsule_window=(1, 3)).fit(X)
    assert tvae.predict_sequence(X[:3, :6], n_steps=5).shape == (3, 30)
    assert 0 <= roll_prediction_accuracy(tvae, X) <= 1
    assert plot_topographic_map(tvae, X).latents.shape == (4, 2, 4)


@pytest.mark.parametrize("params, match", [
    (dict(capsule_dim=(0, 4)), "capsule_dim must be a positive int or a pair"),
    (dict(capsule_dim=(3, 4, 5)), "capsule_dim must be a positive int or a pair"),
    (dict(capsule_dim=(3.0, 4)), "capsule_dim must be a positive int or a pair"),
    (dict(capsule_window=(3, 0)), "capsule_window must be a positive int or a pair"),
    (dict(capsule_window=(2, 3)), "capsule_window must be odd and at most the torus's rows"),
    (dict(capsule_window=(3, 4)), "capsule_window must be odd and at most the torus's cols"),
    (dict(capsule_window=(5, 3)), "at most the torus's rows \\(3\\)"),
    (dict(capsule_window=5), "at most the torus's rows"),  # (5, 5) on a 3 x 4 torus
    (dict(capsule_dim=4, capsule_window=(1, 3)), "is a ring with one axis"),
])
def test_bad_torus_parameters(params, match):
    X = np.random.default_rng(0).random((8, 6)).astype(np.float32)
    with pytest.raises(ValueError, match=match):
        tiny_torus(**params).fit(X)


# --- equivariance measures on tori ------------------------------------------------------
def test_equivariance_measures_roll_tori_along_cols():
    t0 = np.random.default_rng(0).normal(size=(2, 1, 3, 2, 5))
    rolling = np.concatenate([np.roll(t0, l, axis=-1) for l in range(4)], axis=1)
    assert equivariance_error_from_latents(rolling) == pytest.approx(0, abs=1e-12)
    assert equivariance_error_from_latents(rolling, center=True) == pytest.approx(0,
                                                                                 abs=1e-12)
    along_rows = np.concatenate([np.roll(t0, l, axis=-2) for l in range(4)], axis=1)
    assert equivariance_error_from_latents(along_rows) > 1
    np.testing.assert_array_equal(observed_rolls(rolling), [[0, 1, 2, 3]] * 2)
    with pytest.raises(ValueError, match="rows, cols"):
        equivariance_error_from_latents(rolling[..., 0, 0])


# --- selectivity and Moran's I -------------------------------------------------------
def test_d_prime_matches_its_definition():
    rng = np.random.default_rng(1)
    T, y = rng.normal(size=(50, 4)), rng.integers(0, 3, 50)
    got = selectivity_from_responses(T, y)
    for k, c in enumerate(np.unique(y)):
        a, b = T[y == c], T[y != c]
        expected = (a.mean(0) - b.mean(0)) / np.sqrt((a.var(0) + b.var(0)) / 2)
        np.testing.assert_allclose(got[k], expected)


def test_continuous_target_gives_correlations():
    rng = np.random.default_rng(2)
    T, y = rng.normal(size=(40, 3)), rng.normal(size=40)
    T[:, 2] = 1.0  # a unit that does not vary
    got = selectivity_from_responses(T, y)
    assert got.shape == (1, 3)
    np.testing.assert_allclose(got[0, :2], [np.corrcoef(T[:, j], y)[0, 1] for j in (0, 1)])
    assert got[0, 2] == 0
    as_classes = selectivity_from_responses(T, (y > 0).astype(float), "classes")
    assert as_classes.shape == (2, 3)


def test_morans_i_smooth_random_checkerboard():
    rows, cols = np.meshgrid(np.arange(12), np.arange(12), indexing="ij")
    smooth = np.cos(2 * np.pi * rows / 12) + np.cos(2 * np.pi * cols / 12)
    checker = (-1.0) ** (rows + cols)
    random = np.random.default_rng(0).normal(size=(200, 144))
    grid = (1, 12, 12)
    assert morans_i(smooth.reshape(1, -1), grid)[0] > 0.9
    assert morans_i(checker.reshape(1, -1), grid)[0] == pytest.approx(-1)
    assert abs(morans_i(random, grid).mean() + 1 / 143) < 0.01
    # Rings: the same map as 12 rings of 12 ignores the vertical neighbours.
    stripes = np.repeat(np.arange(12.0)[:, None] % 2, 12, axis=1)  # rows alternate
    assert morans_i(stripes.reshape(1, -1), (1, 12, 12))[0] == pytest.approx(0)
    assert morans_i(stripes.reshape(1, -1), (12, 12))[0] == pytest.approx(1)


def test_morans_i_counts_each_neighbour_once_on_short_axes():
    # A 2 x 3 torus: one neighbour along the rows axis, two along cols.
    m = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    z = m - m.mean()
    g = z.reshape(2, 3)
    cross = (g * np.roll(g, 1, 0)).sum() + 2 * (g * np.roll(g, 1, 1)).sum()
    assert morans_i(m, (1, 2, 3))[0] == pytest.approx(6 / 18 * cross / (z * z).sum())
    with pytest.raises(ValueError, match="no neighbouring units"):
        morans_i(np.ones((1, 3)), (3, 1))
    with pytest.raises(ValueError, match="n_units the product"):
        morans_i(np.ones((1, 5)), (1, 2, 3))


def test_organization_metrics_on_a_fitted_torus(images):
    X, y = images
    tvae = tiny_torus(max_epochs=5).fit(X)
    d_prime = class_selectivity(tvae, X, y)
    assert d_prime.shape == (3, 12)
    expected = morans_i(d_prime, (1, 3, 4)).mean()
    assert topographic_organization(tvae, X, y) == pytest.approx(expected)
    summary = selectivity_summary(tvae, X, y, threshold=0.5)
    np.testing.assert_array_equal(summary["classes"], [0, 1, 2])
    np.testing.assert_allclose(summary["share_selective"], (d_prime >= 0.5).mean(1))
    np.testing.assert_allclose(summary["max_selectivity"], d_prime.max(1))
    corr = np.corrcoef(d_prime)
    assert summary["map_correlation"] == pytest.approx(corr[np.triu_indices(3, 1)].mean())
    ink = class_selectivity(tvae, X, X.sum(1))
    assert ink.shape == (1, 12)


def test_sequences_label_every_frame():
    X = np.random.default_rng(0).random((12, 4 * 6)).astype(np.float32)
    tvae = tiny_tvae().fit(X)
    y = np.arange(12) % 2
    T = tvae.transform(X).reshape(12 * 4, -1) * activation_sign(tvae)
    np.testing.assert_allclose(class_selectivity(tvae, X, y),
                               selectivity_from_responses(T, np.repeat(y, 4)))


def test_a_tvae_unit_responds_away_from_mu(images):
    """With mu > 0 every t sits below 0 and a unit responds by moving away from it:
    its activation is -t; with mu <= 0 it is t itself."""
    X, y = images
    tvae = tiny_torus(mu_init=10.0).fit(X)
    mu = tvae.net_.module_.topography.mu
    assert float(mu.detach()) > 0
    T = tvae.transform(X)
    np.testing.assert_allclose(class_selectivity(tvae, X, y),
                               selectivity_from_responses(-T, y))
    np.testing.assert_array_equal(plot_max_activating(tvae, X).indices.ravel(),
                                  (-T).argmax(0))
    mu.data.fill_(-1.0)
    T = tvae.transform(X)
    np.testing.assert_allclose(class_selectivity(tvae, X, y),
                               selectivity_from_responses(T, y))


def test_vae_is_measured_on_the_grid_the_caller_names(images):
    X, y = images
    vae = tiny_vae(n_components=12, sequence_length=1).fit(X)
    with pytest.raises(ValueError, match="units have no arrangement: pass grid_shape"):
        topographic_organization(vae, X, y)
    value = topographic_organization(vae, X, y, grid_shape=(1, 3, 4))
    assert value == pytest.approx(morans_i(class_selectivity(vae, X, y), (1, 3, 4)).mean())
    with pytest.raises(ValueError, match="does not cover the 12 latent"):
        topographic_organization(vae, X, y, grid_shape=(1, 3, 5))
    with pytest.raises(ValueError, match="grid_shape must be"):
        topographic_organization(vae, X, y, grid_shape=(12,))


@pytest.mark.parametrize("y, match", [
    (np.zeros(36), "one class"),
    (np.arange(35) % 2, "one value per row of X \\(36 rows\\)"),
    (np.ones((36, 2)), "one value per row"),
])
def test_bad_targets(images, y, match):
    X, _ = images
    tvae = tiny_torus().fit(X)
    with pytest.raises(ValueError, match=match):
        topographic_organization(tvae, X, y)


def test_unreadable_estimators(images):
    X, y = images
    with pytest.raises(TypeError, match="fitted TopographicVAE or VAE"):
        class_selectivity(object(), X, y)
    with pytest.raises(NotFittedError):
        topographic_organization(tiny_torus(), X, y)
    with pytest.raises(ValueError, match="target_type must be"):
        class_selectivity(tiny_torus().fit(X), X, y, target_type="labels")


# --- plots ---------------------------------------------------------------------------
def test_plot_class_selectivity(images):
    X, y = images
    tvae = tiny_torus(max_epochs=5).fit(X)
    display = plot_class_selectivity(tvae, X, y, threshold=0.5, class_names=["a", "b", "c"])
    assert len(display.ax_) == 4  # three class maps and the preferred-class map
    assert display.ax_[0].images[0].get_array().shape == (3, 4)
    d_prime = display.selectivity.reshape(3, 3, 4)
    expected = np.where(d_prime.max(0) >= 0.5, d_prime.argmax(0), -1)
    np.testing.assert_array_equal(display.preferred, expected)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    one = plot_class_selectivity(tvae, X, y, ax=ax)
    assert one.ax_ is ax and one.figure_ is fig and len(fig.axes) == 1
    with pytest.raises(ValueError, match="class_names has 2 entries for 3"):
        plot_class_selectivity(tvae, X, y, class_names=["a", "b"])


def test_plot_max_activating_and_samples(images):
    X, _ = images
    tvae = tiny_torus().fit(X)
    display = plot_max_activating(tvae, X)
    activations = tvae.transform(X) * activation_sign(tvae)
    np.testing.assert_array_equal(display.indices.ravel(), activations.argmax(0))
    assert display.ax_.images[0].get_array().shape == (3 * 5 - 1, 4 * 5 - 1)
    samples = plot_samples(tvae, 5, random_state=0)
    np.testing.assert_allclose(samples.samples, tvae.sample(5, random_state=0))
    assert samples.ax_.images[0].get_array().shape == (2 * 5 - 1, 3 * 5 - 1)  # 2 x 3 tiles
    with pytest.raises(ValueError, match="pass image_shape"):
        plot_samples(tiny_torus().fit(X[:, :15]), 2)
    vae = tiny_vae(n_components=12, sequence_length=1).fit(X)
    with pytest.raises(ValueError, match="pass grid_shape"):
        plot_max_activating(vae, X)
    assert plot_max_activating(vae, X, (4, 4), grid_shape=(2, 6)).indices.shape == (2, 6)
