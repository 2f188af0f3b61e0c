"""Two-sided and causal windows, circular and open time, conditioned forecasts and
their error per horizon."""

import itertools
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

from sktvae import TopographicVAE
from sktvae._topography import Topography
from sktvae.metrics import forecast_error
from sktvae.plotting import plot_forecast, plot_forecast_error

from conftest import rolling_sequences, tiny_tvae, tiny_vae


def naive_window_sum(u_sq, past, future, K, shifting, circular):
    """W * u^2 as its definition: frames l-past..l+future, K units, circular in the
    capsule; in time circular, or frames beyond the ends left out."""
    B, S, C, D = u_sq.shape
    out = np.zeros_like(u_sq)
    for b, l, c, d in itertools.product(range(B), range(S), range(C), range(D)):
        for delta in range(-past, future + 1):
            if not circular and not 0 <= l + delta < S:
                continue
            for k in range(-(K // 2), K // 2 + 1):
                dim = (d + (delta if shifting else 0) + k) % D
                out[b, l, c, d] += u_sq[b, (l + delta) % S, c, dim]
    return out


@pytest.mark.parametrize("S, past, future, K, shifting, circular", [
    (5, 2, 0, 3, True, True),     # causal, circular: frame 0 sees the last two
    (5, 2, 0, 3, True, False),    # causal, open: frame 0 sees only itself
    (6, 1, 3, 1, True, False),    # lopsided window
    (4, 3, 0, 3, False, True),    # the whole cycle behind, stationary
    (4, 1, 1, 3, True, False),    # the symmetric window, open time
])
def test_window_pairs_match_the_naive_loop(S, past, future, K, shifting, circular):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, S, 2, 5)).astype(np.float32)
    topo = Topography(2, 5, S, (past, future), K, shifting=shifting,
                      circular_time=circular)
    expected = naive_window_sum(u * u, past, future, K, shifting, circular)
    got = topo.neighbourhood_sum(torch.from_numpy(u * u).reshape(2, S, -1))
    np.testing.assert_allclose(got.reshape(u.shape).numpy(), expected, rtol=1e-5)
    topo.matrix = None  # the conv3d path agrees
    got = topo.neighbourhood_sum(torch.from_numpy(u * u).reshape(2, S, -1))
    np.testing.assert_allclose(got.reshape(u.shape).numpy(), expected, rtol=1e-5)


def test_an_int_window_is_the_symmetric_pair():
    u_sq = torch.rand(3, 7, 2 * 5)
    torch.testing.assert_close(Topography(2, 5, 7, 2, 3).neighbourhood_sum(u_sq),
                               Topography(2, 5, 7, (2, 2), 3).neighbourhood_sum(u_sq))


def test_observed_frames_get_the_prior_roll_for_the_unseen_ones():
    torch.manual_seed(0)
    S, N, D, k = 5, 2, 5, 2
    topo = Topography(N, D, S, (2, 1), 3)
    z, u_sq = torch.randn(3, k, N * D), torch.rand(3, k, N, D)
    unseen = [torch.roll(u_sq[:, -1], s, dims=-1) for s in range(1, S - k + 1)]
    full = torch.cat([u_sq, torch.stack(unseen, 1)], 1).reshape(3, S, -1)
    z_full = torch.cat([z, torch.randn(3, S - k, N * D)], 1)  # unseen z plays no part
    expected = topo.from_squares(z_full, full)[:, :k]
    torch.testing.assert_close(topo.observed(z, u_sq.reshape(3, k, -1)), expected)


def test_a_causal_open_window_reads_no_later_frame():
    X = rolling_sequences(16, S=4, D=4)
    causal = tiny_tvae(temporal_window=(2, 0), circular_time=False).fit(X)
    changed = X.copy()
    changed[:, 3 * 8:] = 1 - changed[:, 3 * 8:]  # the last frame only
    T, T_changed = causal.transform(X), causal.transform(changed)
    np.testing.assert_array_equal(T[:, :3 * 8], T_changed[:, :3 * 8])
    assert not np.allclose(T[:, 3 * 8:], T_changed[:, 3 * 8:])
    # circular time wraps: frame 0's window then reaches the last frames
    wrapped = tiny_tvae(temporal_window=(2, 0)).fit(X)
    assert not np.allclose(wrapped.transform(X)[:, :8], wrapped.transform(changed)[:, :8])


def test_window_parameters_survive_clone_pickle_and_refuse_other_files(tmp_path):
    X = rolling_sequences(8)
    est = tiny_tvae(temporal_window=(1, 0), circular_time=False).fit(X)
    assert clone(est).get_params()["temporal_window"] == (1, 0)
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(again.transform(X), est.transform(X))
    est.net_.save_params(f_params=tmp_path / "p.pt")
    for other in (dict(temporal_window=(1, 1)), dict(temporal_window=(1, 0))):
        target = tiny_tvae(**other).fit(X)  # the second differs in circular_time
        with pytest.raises(ValueError, match="saved from a model built otherwise"):
            target.net_.load_params(f_params=tmp_path / "p.pt")


class _Identity:
    """Stand-ins for the encoder and decoder: a frame is its own latent."""

    @staticmethod
    def encode(X_observed):
        X_observed = np.asarray(X_observed, np.float32)
        return X_observed.reshape(len(X_observed), -1, 8)

    @staticmethod
    def decode(T):
        return T.reshape(len(T), -1).numpy()


def test_a_rolling_latent_forecasts_exactly(monkeypatch):
    """Frames that are their own latents and roll one unit per frame: the forecast is
    every later frame exactly, while repeating the last seen frame is not."""
    X = rolling_sequences(6, S=4, D=4)  # 2 capsules of 4 units, a bump rolling in each
    est = tiny_tvae().fit(X)
    monkeypatch.setattr(est, "_encode_first_frames", _Identity.encode)
    monkeypatch.setattr(est, "_decode", _Identity.decode)
    frames = X.reshape(6, 4, 8)
    np.testing.assert_array_equal(est.predict_sequence(X[:, :8]), X[:, 8:])
    np.testing.assert_array_equal(
        est.predict_sequence(X[:, :16], n_steps=6).reshape(6, 6, 8)[:, :2], frames[:, 2:])
    errors = forecast_error(est, X, n_observed=2)
    np.testing.assert_array_equal(errors.horizon, [1, 2])
    np.testing.assert_array_equal(errors.mse, [0.0, 0.0])
    assert errors.mse_reconstruction == 0.0  # the identity reconstructs exactly
    assert np.all(errors.mse_repeat_last > 0.1) and np.all(errors.mse_mean_observed > 0.1)
    # each capsule's bump moves one pixel: two pixels differ per capsule, four of eight
    np.testing.assert_allclose(errors.mse_repeat_last, [4 / 8, 4 / 8])
    assert np.all(errors.cross_entropy < errors.cross_entropy_repeat_last)


def test_a_vae_forecasts_its_reconstruction_of_the_last_seen_frame(X):
    vae = tiny_vae().fit(X)
    forecast = vae.predict_sequence(X[:, :12], n_steps=3).reshape(len(X), 3, 6)
    last = vae._decode(torch.from_numpy(vae._encode_frames(X[:, 6:12])[:, None]))
    for h in range(3):
        np.testing.assert_allclose(forecast[:, h], last, rtol=1e-6)
    errors = forecast_error(vae, X, n_observed=1)
    assert errors.mse.shape == (3,) and "cross_entropy" in errors
    # a VAE's forecast is its reconstruction: against the next frames, not the last
    reconstruction = vae._decode(torch.from_numpy(vae._encode_frames(X[:, :6])[:, None]))
    assert errors.mse_reconstruction == pytest.approx(float(((reconstruction - X[:, :6]) ** 2
                                                             ).mean()), rel=1e-5)


def test_forecasts_from_more_frames_use_them(X):
    tvae = tiny_tvae(max_epochs=3).fit(X)
    with_reconstructions = tvae.predict_sequence(X[:, :12], include_observed=True)
    assert with_reconstructions.shape == (len(X), 24)
    np.testing.assert_array_equal(with_reconstructions[:, 12:],
                                  tvae.predict_sequence(X[:, :12]))
    # the forecast from two frames is not the one from the second frame alone
    assert not np.allclose(tvae.predict_sequence(X[:, :12]),
                           tvae.predict_sequence(X[:, 6:12], n_steps=2))


@pytest.mark.slow
def test_forecast_plots(X):
    tvae = tiny_tvae().fit(X)
    display = plot_forecast(tvae, X, (2, 3), n_observed=2, n_sequences=2)
    assert display.ax_.shape == (4, 4) and display.predicted.shape == (2, 2, 6)
    assert [display.ax_[0, l].get_title() for l in range(4)] == ["seen", "seen", "+1", "+2"]
    np.testing.assert_allclose(display.predicted.reshape(2, -1),
                               tvae.predict_sequence(X[:2, :12]))
    errors = {"TVAE": forecast_error(tvae, X, 2), "VAE": forecast_error(
        tiny_vae().fit(X), X, 2)}
    display = plot_forecast_error(errors, metric="cross_entropy")
    assert len(display.ax_.lines) == 4  # two models, two baselines
    np.testing.assert_allclose(display.ax_.lines[1].get_ydata(), errors["VAE"].cross_entropy)
    gaussian = {"G": forecast_error(tiny_tvae(likelihood="gaussian").fit(X), X, 1)}
    with pytest.raises(ValueError, match="no 'cross_entropy'.*metric='mse'"):
        plot_forecast_error(gaussian, metric="cross_entropy")
    with pytest.raises(ValueError, match="errors must be a non-empty dict"):
        plot_forecast_error({})
    with pytest.raises(ValueError, match="n_observed must be an int in 1 .. "):
        plot_forecast(tvae, X, (2, 3), n_observed=4)


@pytest.mark.parametrize("window, match", [
    ((-1, 0), r"a pair \(past, future\) of ints >= 0"),
    ((1, 2, 3), r"a pair \(past, future\)"),
    ((1.5, 0), r"a pair \(past, future\)"),
    ((3, 1), "covers 5 frames, more than the 4 of a sequence.*at most 3"),
])
def test_bad_windows_are_refused(X, window, match):
    with pytest.raises(ValueError, match=match):
        tiny_tvae(temporal_window=window).fit(X)


def test_bad_forecast_requests_are_refused(X):
    tvae = tiny_tvae().fit(X)
    for n_observed in (0, 4, 1.0, True):
        with pytest.raises(ValueError, match="n_observed must be an int in 1 .. "
                                             "sequence_length - 1 = 3"):
            forecast_error(tvae, X, n_observed)
    for n_steps in (0, -2, 1.5):
        with pytest.raises(ValueError, match="n_steps must be a positive integer"):
            tvae.predict_sequence(X[:, :6], n_steps=n_steps)
    with pytest.raises(ValueError, match="X_observed has 9 features, but rows must hold "
                                         "1 to 3 frames of 6"):
        tvae.predict_sequence(X[:, :9])
    with pytest.raises(ValueError, match="X has 20 features"):
        forecast_error(tvae, X[:, :20], 1)
    iid = tiny_tvae(sequence_length=1, temporal_window=0).fit(X[:, :6])
    with pytest.raises(ValueError, match="sequence_length=1"):
        iid.predict_sequence(X[:, :6])
    with pytest.raises(ValueError, match="sequence_length=1"):
        forecast_error(iid, X[:, :6], 1)


def test_same_seed_same_forecast(X):
    a = tiny_tvae(temporal_window=(1, 0)).fit(X).predict_sequence(X[:, :6])
    b = tiny_tvae(temporal_window=(1, 0)).fit(X).predict_sequence(X[:, :6])
    np.testing.assert_array_equal(a, b)
    assert isinstance(tiny_tvae(temporal_window=(1, 0)), TopographicVAE)
