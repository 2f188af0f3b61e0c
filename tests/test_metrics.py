"""Equivariance measures on hand-built latents, and end to end on tiny models."""

import numpy as np
import pytest
import torch

from conftest import tiny_tvae, tiny_vae
from sktvae import SequenceTransformer, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import (
    capsule_roll_correlation,
    equivariance_error,
    equivariance_error_from_latents,
    make_equivariance_scorer,
    observed_rolls,
    roll_prediction_accuracy,
)


def rolling_latents(n=3, S=6, C=2, D=6, seed=0):
    t0 = np.random.default_rng(seed).normal(size=(n, 1, C, D))
    return np.concatenate([np.roll(t0, l, axis=-1) for l in range(S)], axis=1)


def test_perfect_roll_scores_zero_and_shuffle_scores_more():
    T = rolling_latents()
    assert equivariance_error_from_latents(T) == pytest.approx(0, abs=1e-12)
    assert equivariance_error_from_latents(T, center=True) == pytest.approx(0, abs=1e-12)
    shuffled = T[:, np.random.default_rng(1).permutation(6)]
    assert equivariance_error_from_latents(shuffled) > 1
    backwards = T[:, ::-1]  # rolls the other way: the convention matters
    assert equivariance_error_from_latents(backwards) > 1


def test_error_matches_the_definition_on_a_small_case():
    T = np.random.default_rng(0).normal(size=(2, 3, 1, 4))
    That = T / np.linalg.norm(T, axis=-1, keepdims=True)
    expected = np.mean([sum(np.abs(np.roll(That[i, l], m - l, -1) - That[i, m]).sum()
                            for l in range(3) for m in range(l + 1, 3)) for i in range(2)])
    assert equivariance_error_from_latents(T) == pytest.approx(expected)


def test_centering_exposes_constant_capsules():
    """A capsule constant along its dims is roll-invariant: 0 uncentred, large centred."""
    rng = np.random.default_rng(0)
    T = 30 + 1e-3 * rng.normal(size=(4, 6, 2, 6))
    assert equivariance_error_from_latents(T) < 0.1
    assert equivariance_error_from_latents(T, center=True) > 10


def test_observed_rolls_and_capsule_roll_correlation():
    T = rolling_latents(n=4)
    np.testing.assert_array_equal(observed_rolls(T), np.tile(np.arange(6), (4, 1)))


def test_roll_and_predict_sequence(X):
    est = tiny_tvae().fit(X)
    T = est.transform(X)
    np.testing.assert_array_equal(est.roll(est.roll(T, 1), -1), T)
    np.testing.assert_array_equal(est.roll(T, 4), T)  # capsule_dim=4: a full turn
    capsules = T.reshape(len(T), -1, 4)
    np.testing.assert_array_equal(est.roll(T, 1).reshape(len(T), -1, 4),
                                  np.roll(capsules, 1, axis=-1))
    per_row = est.roll(T[:2], [0, 1])
    np.testing.assert_array_equal(per_row[1], est.roll(T[1:2], 1)[0])
    with pytest.raises(TypeError, match="shift"):
        est.roll(T, 0.5)
    pred = est.predict_sequence(X[:, :6], n_steps=3)
    assert pred.shape == (len(X), 18)
    with pytest.raises(ValueError, match="X_observed has 5 features, but rows must hold "
                                         "1 to 3 frames of 6"):
        est.predict_sequence(X[:, :5])
    with pytest.raises(ValueError, match="rows must hold 1 to 3 frames"):
        est.predict_sequence(X)  # a whole sequence leaves nothing to forecast


def test_frame_alone_uses_no_other_frame(X):
    """Changing later frames does not change the single-frame latent."""
    est = tiny_tvae().fit(X)
    a = est._encode_frames(X[:, :6])
    np.testing.assert_array_equal(a, est._encode_frames(X[:, :6].copy()))
    topo = est.net_.module_.topography
    z, u = torch.randn(3, 8, device=topo.mu.device), torch.randn(3, 8, device=topo.mu.device)
    # With a rolling u the shifting window sees the same values at every offset.
    u_sq = (u * u).view(3, 2, 4)
    window = sum(torch.roll(u_sq, k, dims=-1) for k in (-1, 0, 1)).view(3, 8)  # K = 3
    expected = (z - topo.mu) / torch.sqrt(3 * window + topo.eps)  # 2L + 1 = 3 frames
    torch.testing.assert_close(topo.frame_alone(z, u * u), expected)


@pytest.fixture(scope="module")
def rotating_digits():
    X = load_digits_images(size=8).data[:40]
    return SequenceTransformer(sequence_length=4, image_shape=(8, 8),
                               random_state=0).fit_transform(X)


def test_metrics_end_to_end(rotating_digits):
    tvae = TopographicVAE(2, 4, 4, hidden_layer_sizes=(32,), max_epochs=2,
                          random_state=0).fit(rotating_digits)
    vae = tiny_vae(n_components=8, hidden_layer_sizes=(32,)).fit(rotating_digits)
    for est in (tvae, vae):
        kw = {} if est is tvae else {"capsule_shape": (2, 4)}
        for center in (False, True):
            assert equivariance_error(est, rotating_digits, center=center, **kw) > 0
        assert 0 <= roll_prediction_accuracy(est, rotating_digits, **kw) <= 1
        assert -1 <= capsule_roll_correlation(est, rotating_digits, **kw) <= 1
    with pytest.raises(ValueError, match="capsule_shape"):
        equivariance_error(vae, rotating_digits, capsule_shape=(3, 3))
    with pytest.raises(ValueError, match="square capsules"):
        equivariance_error(vae, rotating_digits)


def test_scorer_in_grid_search(rotating_digits):
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(TopographicVAE(2, 4, 4, hidden_layer_sizes=(16,), max_epochs=1,
                                         random_state=0),
                          {"coherence": ["shifting", "stationary"]}, cv=2,
                          scoring=make_equivariance_scorer())
    search.fit(rotating_digits)
    assert np.all(search.cv_results_["mean_test_score"] <= 0)


def test_roll_prediction_accuracy_of_an_oracle(rotating_digits, monkeypatch):
    """An estimator whose rolled latent decodes to the true frame scores 1."""
    est = tiny_tvae(sequence_length=4, n_capsules=1, capsule_dim=4)
    est.fit(rotating_digits)
    frames = rotating_digits.reshape(len(rotating_digits), 4, -1)
    index = {frames[i, 0].tobytes(): i for i in range(len(frames))}
    monkeypatch.setattr(est, "_encode_frames", lambda F0: np.array(
        [np.eye(4)[0] * (index[f.tobytes()] + 1) for f in F0], np.float32))

    def decode(T):
        T = T.numpy()
        rows = T.max(-1).round().astype(int) - 1  # which sequence
        ks = T.argmax(-1)                          # how far it was rolled
        return frames[rows, ks].reshape(len(T), -1)

    monkeypatch.setattr(est, "_decode", decode)
    assert roll_prediction_accuracy(est, rotating_digits, tolerance=0) == 1.0

    def decode_short_rolls_only(T):  # a roll by 2 decodes to frame 0: wrong
        T = T.numpy()
        ks = T.argmax(-1)
        rows = T.max(-1).round().astype(int) - 1
        return frames[rows, np.where(ks == 2, 0, ks)].reshape(len(T), -1)

    monkeypatch.setattr(est, "_decode", decode_short_rolls_only)
    by_shift = roll_prediction_accuracy(est, rotating_digits, tolerance=0, by_shift=True)
    np.testing.assert_array_equal(by_shift, [1.0, 0.0, 1.0])  # k = 1, 2, 3
    assert roll_prediction_accuracy(est, rotating_digits, tolerance=0) == 2 / 3


def test_metric_arguments_are_checked_not_misread(X):
    """Each once gave a wrong result or a raw error (issue 42)."""
    from sktvae.metrics import capsule_roll_correlation, morans_i, selectivity_summary

    est = tiny_tvae().fit(X)
    n = len(X)
    with pytest.raises(ValueError, match="shifts must be whole numbers"):
        capsule_roll_correlation(est, X, shifts=np.full((n, 4), np.inf))
    with pytest.raises(ValueError, match="shifts must be whole numbers"):
        capsule_roll_correlation(est, X, shifts=np.full((n, 4), 0.5))
    half = n // 2
    for groups in ([1] * half + ["1"] * (n - half), [1.0] * half + [np.nan] * (n - half),
                   ["a"] * half + [None] * (n - half)):
        with pytest.raises(ValueError, match="groups must be labels of one kind"):
            capsule_roll_correlation(est, X, groups=groups)
    assert set(capsule_roll_correlation(est, X, groups=["a"] * half + ["b"] * (n - half))) \
        == {"a", "b"}
    for bad in ("tvae", None, X):
        with pytest.raises(TypeError, match="fitted TopographicVAE or VAE"):
            capsule_roll_correlation(bad, X)
    for grid in ((2, 4.7), (-1, -8), None, (2, True)):
        with pytest.raises(ValueError, match="grid_shape must be"):
            morans_i(np.ones((1, 8)), grid)
    with pytest.raises(ValueError, match="threshold must be a finite number"):
        selectivity_summary(est, X, np.arange(n) % 2, threshold=np.nan)


def test_rolls_of_frame_zero_taken_from_the_whole_sequence(rotating_digits, monkeypatch):
    """encode="sequence" rolls frame 0's latent as transform gives it, not frame 0
    encoded alone: an oracle right in sequence and wrong alone scores 1 and 0."""
    est = tiny_tvae(sequence_length=4, n_capsules=1, capsule_dim=4)
    est.fit(rotating_digits)
    frames = rotating_digits.reshape(len(rotating_digits), 4, -1)
    n = len(frames)
    in_sequence = np.stack([np.eye(4)[0] * (i + 1) for i in range(n)]).astype(np.float32)
    monkeypatch.setattr(est, "transform", lambda X: np.repeat(
        in_sequence[:, None], 4, 1).reshape(n, -1))
    monkeypatch.setattr(est, "_encode_frames", lambda F0: np.zeros((len(F0), 4), np.float32))

    def decode(T):
        T = T.numpy()
        rows = T.max(-1).round().astype(int) - 1
        decoded = frames[np.maximum(rows, 0), T.argmax(-1)] * (rows[..., None] >= 0)
        return decoded.reshape(len(T), -1)  # all-zero latents decode to black

    monkeypatch.setattr(est, "_decode", decode)
    assert roll_prediction_accuracy(est, rotating_digits, tolerance=0,
                                    encode="sequence") == 1.0
    assert roll_prediction_accuracy(est, rotating_digits, tolerance=0) < 0.5
    with pytest.raises(ValueError, match="encode must be 'alone' or 'sequence'"):
        roll_prediction_accuracy(est, rotating_digits, encode="whole")
