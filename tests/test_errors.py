"""Bad input gets a clear ValueError/TypeError; nothing is silently changed."""

import pickle
import warnings

import numpy as np
import pytest
import torch
import scipy.sparse as sp
from sklearn.exceptions import NotFittedError
from skorch.callbacks import EpochTimer

from conftest import tiny_tvae, tiny_vae
from sktvae import SequenceTransformer


@pytest.mark.parametrize("bad, match", [
    (np.full((4, 24), np.nan), "NaN"),
    (np.full((4, 24), np.inf), "infinity"),
    (np.zeros(24), "Expected 2D array"),
    (np.zeros((4, 4, 6)), "dim 3"),
])
def test_invalid_arrays(bad, match):
    with pytest.raises(ValueError, match=match):
        tiny_tvae().fit(bad)


def test_sparse_and_strings():
    with pytest.raises(TypeError, match="[Ss]parse"):
        tiny_tvae().fit(sp.csr_matrix(np.ones((4, 24))))
    with pytest.raises(ValueError, match="convert"):
        tiny_tvae().fit(np.array([["a"] * 24] * 4))


def test_features_not_divisible_by_sequence_length():
    with pytest.raises(ValueError, match=r"25 features.*sequence_length=4"):
        tiny_tvae().fit(np.zeros((4, 25)))


def test_bernoulli_needs_unit_interval():
    X = np.random.default_rng(0).normal(size=(4, 24))
    with pytest.raises(ValueError, match="MinMaxScaler.*likelihood='gaussian'"):
        tiny_tvae().fit(X)
    tiny_tvae(likelihood="gaussian").fit(X)  # accepted as it is


@pytest.mark.parametrize("method", ["transform", "score_samples", "score",
                                    "inverse_transform"])
@pytest.mark.parametrize("make", [tiny_tvae, tiny_vae])
def test_not_fitted(make, method):
    with pytest.raises(NotFittedError):
        getattr(make(), method)(np.zeros((2, 24)))
    with pytest.raises(NotFittedError):
        make().sample(2)


def test_wrong_number_of_features_after_fit(X):
    est = tiny_tvae().fit(X)
    with pytest.raises(ValueError, match="24 features"):
        est.transform(np.zeros((2, 28)))
    with pytest.raises(ValueError, match=r"inverse_transform expects 32"):
        est.inverse_transform(np.zeros((2, 8)))


@pytest.mark.parametrize("params, match", [
    (dict(capsule_window=2), "capsule_window must be odd"),
    (dict(capsule_window=5), "capsule_window must be odd and at most capsule_dim \\(4\\)"),
    (dict(temporal_window=3), "temporal_window must be at most sequence_length // 2 = 2"),
    (dict(hidden_layer_sizes=(16, 0)), "hidden_layer_sizes"),
    (dict(hidden_layer_sizes=()), "hidden_layer_sizes"),
    (dict(coherence="rolling"), "coherence"),
    (dict(lr=0.0), "lr"),
    (dict(n_capsules=0), "n_capsules"),
    (dict(likelihood="poisson"), "likelihood"),
    (dict(optimizer="rmsprop"), "optimizer"),
])
def test_bad_hyper_parameters(X, params, match):
    with pytest.raises(ValueError, match=match):
        tiny_tvae(**params).fit(X)


def test_optimizer_class_must_be_a_torch_optimizer(X):
    with pytest.raises(TypeError, match="optimizer"):
        tiny_tvae(optimizer=dict).fit(X)
    import torch

    tiny_tvae(optimizer=torch.optim.RMSprop).fit(X)


def test_sample_count(X):
    est = tiny_tvae().fit(X)
    for bad in (0, -1, 1.5, "3"):
        with pytest.raises(ValueError, match="n_samples"):
            est.sample(bad)


def test_diverging_loss_stops_with_epoch_and_advice():
    X = np.random.default_rng(0).normal(size=(16, 8)) * 1e30
    est = tiny_tvae(sequence_length=2, likelihood="gaussian", lr=1e3, max_epochs=3)
    with pytest.raises(FloatingPointError, match=r"epoch 1.*lower learning rate"):
        est.fit(X)


@pytest.mark.parametrize("optimizer, check_every, n_losses", [
    ("adam", 256, 8), ("sgd", 256, 8), ("adam", 2, 3), (torch.optim.Adam, 256, 3)])
def test_a_diverging_fit_keeps_its_last_finite_parameters(optimizer, check_every,
                                                          n_losses):
    """The step that would make the weights non-finite is never taken: the estimator
    that raised is the model (and optimizer state) of the last finite step. A fused
    optimizer (sktvae's "adam" and "sgd") skips that step and every later one on a
    flag left on the device, read when the epoch ends or every ``check_every``
    batches; another one (the class passed itself) is checked before every step and
    stops at once."""
    from skorch.callbacks import Callback

    class Snapshot(Callback):
        """The model after each batch, up to the first whose loss is not finite."""

        def on_train_begin(self, net, **kwargs):
            self.diverged, self.initial = False, self.record(net)

        def on_batch_end(self, net, loss=None, **kwargs):
            self.diverged = self.diverged or not np.isfinite(float(loss.detach()))
            if not self.diverged:
                self.record(net)

        def record(self, net):
            self.params = {k: v.clone() for k, v in net.module_.state_dict().items()}
            self.steps = [s.get("step") for s in net.optimizer_.state.values()]
            return self.params

    rng = np.random.default_rng(0)
    X = rng.normal(size=(64, 8)).astype(np.float32)
    X[24:32] *= 1e30  # in order: three batches train, the fourth diverges, four more
    est = tiny_tvae(sequence_length=2, likelihood="gaussian", batch_size=8, lr=1e-3,
                    max_epochs=2, callbacks=[Snapshot()], train_split=None,
                    optimizer=optimizer, iterator_train__shuffle=False,
                    callbacks__stop_on_non_finite__check_every=check_every)
    with pytest.raises(FloatingPointError, match="epoch 1.*last finite parameters"):
        est.fit(X)
    fused = isinstance(optimizer, str)
    assert est.net_.optimizer_.defaults["fused"] is (True if fused else None)
    assert not hasattr(est.net_.optimizer_, "found_inf")  # the flag is taken back
    # the epoch goes on to its end (its finite batches taking no step) only where the
    # check waits for it; elsewhere it stops inside the fourth batch
    losses = est.history_[-1, "batches", :, "train_loss"]
    assert len(losses) == n_losses
    assert np.isfinite(losses).sum() == (7 if n_losses == 8 else 3)
    state = est.net_.module_.state_dict()
    assert all(torch.isfinite(v).all() for v in state.values())
    callback = dict(est.net_.callbacks_)["Snapshot"]
    assert not torch.equal(callback.params["decoder.0.weight"],
                           callback.initial["decoder.0.weight"])  # three steps trained
    for name, value in callback.params.items():
        torch.testing.assert_close(state[name], value, rtol=0, atol=0)
    assert [s.get("step") for s in est.net_.optimizer_.state.values()] == callback.steps
    assert np.isfinite(est.transform(X[:24])).all()


def test_a_float16_gradient_scaler_may_meet_infinite_gradients():
    """With accelerate's float16 scaler, infinite gradients are the scaler's to skip;
    only a non-finite loss stops training. Without it, they stop it before the step."""
    from types import SimpleNamespace

    from sktvae._net import StopOnNonFiniteLoss

    param = torch.nn.Parameter(torch.zeros(3))
    param.grad = torch.tensor([1.0, float("inf"), 0.0])
    plain = SimpleNamespace(history=[{}], lr=0.1)
    scaled = SimpleNamespace(history=[{}], lr=0.1,
                             accelerator=SimpleNamespace(scaler=object()))
    guard = StopOnNonFiniteLoss()
    with pytest.raises(FloatingPointError, match="before that step"):
        guard.on_grad_computed(plain, [("w", param)])
    guard.on_grad_computed(scaled, [("w", param)])
    guard.on_batch_end(scaled, training=True, loss=torch.tensor(1.0))
    with pytest.raises(FloatingPointError, match="The loss became inf"):
        guard.on_batch_end(scaled, training=True, loss=torch.tensor(float("inf")))


@pytest.mark.parametrize("amp_devices", [("cpu", "cuda"), ()])
def test_non_finite_values_are_noted_on_the_device_and_stay_noted(amp_devices, monkeypatch):
    """The flag goes to 1 on an inf or a NaN anywhere and stays there; gradients are
    left as they were. ``()``: the per-tensor test other devices get."""
    from sktvae import _net

    monkeypatch.setattr(_net, "_AMP_CHECK_DEVICES", amp_devices)
    found = torch.zeros(())
    grads = [torch.ones(3), torch.arange(4.0).view(2, 2)]
    _net._note_non_finite(grads, found)
    assert found.item() == 0.0
    for bad in (float("nan"), float("inf"), -float("inf")):
        for dtype in (torch.float32, torch.bfloat16):  # a group of each dtype
            found.zero_()
            _net._note_non_finite(grads + [torch.tensor([1.0, bad], dtype=dtype)], found)
            assert found.item() == 1.0
        _net._note_non_finite(grads, found)
        assert found.item() == 1.0  # sticky
    torch.testing.assert_close(grads[1], torch.arange(4.0).view(2, 2), rtol=0, atol=0)


@pytest.mark.parametrize("params", [dict(n_capsules=True), dict(batch_size=True),
                                    dict(n_importance_samples=np.True_)])
def test_a_bool_is_not_a_size(X, params):
    with pytest.raises(ValueError, match="must be an int"):  # not a bool
        tiny_tvae(**params).fit(X)


def test_predict_sequence_bounds_its_output(X):
    tvae = tiny_tvae().fit(X)
    with pytest.raises(ValueError, match="n_steps must be a positive integer"):
        tvae.predict_sequence(X[:2, :6], n_steps=True)
    with pytest.raises(ValueError, match=r"n_steps=1000000000 for 2 sequences would "
                                         r"need .* GiB .*fewer steps"):
        tvae.predict_sequence(X[:2, :6], n_steps=10 ** 9)


@pytest.mark.parametrize("make", [tiny_tvae, tiny_vae])
def test_far_out_inputs_score_without_nan(make):
    """A Gaussian model meets an input far outside its data: a log-variance past 88
    used to overflow (0 * inf in W's GEMM, inf samples in the decoder) into NaN."""
    X = np.random.default_rng(0).normal(size=(40, 4 * 6)).astype(np.float32)
    est = make(likelihood="gaussian", max_epochs=3).fit(X)
    Y = X[:3].copy()
    Y[0, 0], Y[1, 0] = 1000, 1e6
    scores = est.score_samples(Y)
    assert np.isfinite(scores).all() and (scores[:2] < scores[2]).all()
    assert np.isfinite(est.transform(Y)).all()
    Y[0, 0] = 1e30  # beyond float32's reach: a density of 0, not NaN
    assert not np.isnan(est.score_samples(Y)).any()


def test_roll_accuracy_and_roll_plots_check_their_counts(X):
    from sktvae.metrics import roll_prediction_accuracy
    from sktvae.plotting import plot_capsule_roll

    tvae = tiny_tvae().fit(X)  # sequence_length 4: tolerance 0 or 1
    for bad in (2, -1, 1.5, True):
        with pytest.raises(ValueError, match="tolerance must be an int in \\[0, "
                                             "sequence_length // 2\\) = \\[0, 2\\)"):
            roll_prediction_accuracy(tvae, X, tolerance=bad)
    with pytest.raises(ValueError, match="needs sequences to roll through"):
        roll_prediction_accuracy(tiny_tvae(sequence_length=1, temporal_window=0).fit(
            X[:, :6]), X[:, :6])
    for bad in (-1, 0, True):
        with pytest.raises(ValueError, match="n_sequences must be a positive int"):
            plot_capsule_roll(tvae, X, (2, 3), n_sequences=bad)


def _sequences(S=4, n=12):
    images = np.random.default_rng(0).random((n, 4 * 4)).astype(np.float32)
    return images, SequenceTransformer(sequence_length=S, image_shape=(4, 4),
                                       random_state=0)


def test_a_pipeline_cannot_cut_sequences_into_other_frames():
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import make_pipeline

    images, seq = _sequences(S=4)
    with pytest.raises(ValueError, match=r"X holds sequences of 4 frames of shape "
                                         r"\(1, 4, 4\).*sequence_length=2.*"
                                         r"Set sequence_length=4"):
        make_pipeline(seq, tiny_tvae(sequence_length=2, temporal_window=1)).fit(images)
    make_pipeline(seq, tiny_tvae()).fit(images)  # the lengths agree
    search = GridSearchCV(make_pipeline(seq, tiny_tvae(max_epochs=1)),
                          {"sequencetransformer__sequence_length": [2, 4]}, cv=2,
                          error_score="raise")
    with pytest.raises(ValueError, match="X holds sequences of 2 frames"):
        search.fit(images)
    search.set_params(param_grid=[{"sequencetransformer__sequence_length": [S],
                                   "topographicvae__sequence_length": [S]}
                                  for S in (2, 4)]).fit(images)
    assert search.best_params_["topographicvae__sequence_length"] in (2, 4)


def test_the_frame_structure_survives_indexing_pickling_and_pandas():
    import pandas as pd

    from sktvae._sequences import SequenceArray, frame_structure

    images, seq = _sequences(S=4)
    X = seq.fit_transform(images)
    assert isinstance(X, SequenceArray) and frame_structure(X) == (4, (1, 4, 4))
    for Y in (X[[3, 1]], X[2:5], pickle.loads(pickle.dumps(X)), X.astype(np.float16)):
        assert frame_structure(Y) == (4, (1, 4, 4))
        with pytest.raises(ValueError, match="X holds sequences of 4 frames"):
            tiny_vae(sequence_length=2).fit(Y)
    # Reshaped rows no longer say anything: the frames, fitted one by one.
    assert frame_structure(X.reshape(-1, 16)) is None
    tiny_vae(sequence_length=1).fit(X.reshape(-1, 16))
    frames = seq.set_output(transform="pandas").fit_transform(images)
    assert isinstance(frames, pd.DataFrame) and frame_structure(frames) == (4, (1, 4, 4))
    with pytest.raises(ValueError, match="X holds sequences of 4 frames"):
        tiny_tvae(sequence_length=1, temporal_window=0).fit(frames)
    assert frame_structure(pd.DataFrame(np.zeros((2, 3)))) is None


def test_frames_met_outside_fit_are_checked_too(X):
    from sktvae.metrics import roll_prediction_accuracy

    tvae = tiny_tvae().fit(X)
    bad = X.copy()
    bad[0, 0] = 1.0000001
    # The bad maximum is printed as it is, not rounded to "1".
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]; got values in "
                                         r"\[.*, 1\.000000\d+\]"):
        tvae.predict_sequence(bad[:2, :6])
    with pytest.raises(ValueError, match=r"needs X in \[0, 1\]"):
        roll_prediction_accuracy(tvae, bad)
    with pytest.raises(ValueError, match=r"X has 25 features"):
        roll_prediction_accuracy(tvae, np.zeros((2, 25)))
    read_only = X[:2, :6].copy()
    read_only.flags.writeable = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # torch warns when it wraps read-only memory
        assert tvae.predict_sequence(read_only).shape == (2, 18)


@pytest.mark.parametrize("device, match", [
    ("nonsense", "device='nonsense' is not a torch device; available here: cpu"),
    ("meta", "device='meta' cannot run here \\(a meta tensor holds no data\\); "
             "available: cpu"),
    ("cuda:99", "device='cuda:99' cannot run here; available: cpu")])
def test_devices_are_checked_when_fitting(X, device, match):
    with pytest.raises(ValueError, match=match):
        tiny_tvae(device=device).fit(X)


def test_callbacks_must_be_callbacks(X):
    with pytest.raises(TypeError, match=r"callbacks\[1\] is 1: each callback must be a "
                                        "skorch Callback"):
        tiny_tvae(callbacks=[("timer", EpochTimer()), 1]).fit(X)
    assert len(tiny_tvae(callbacks=[("timer", EpochTimer())]).fit(X).history_) == 2


def test_roll_shifts_are_checked_and_periodic(X):
    tvae = tiny_tvae().fit(X)
    T = tvae.transform(X)
    with pytest.raises(ValueError, match=r"one int per row of T \(24\); got shape \(3,\)"):
        tvae.roll(T, np.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"got shape \(24, 2\)"):
        tvae.roll(T, np.ones((24, 2), int))
    with pytest.raises(TypeError, match="shift must be integers; got dtype bool"):
        tvae.roll(T, True)
    expected = tvae.roll(T, 3)
    for same in (np.uint64(2 ** 64 - 1), 10 ** 30 + 3, -1, np.full(24, 2 ** 64 - 1,
                                                                  np.uint64)):
        np.testing.assert_array_equal(tvae.roll(T, same), expected)  # 3 modulo 4


def test_outputs_and_batches_are_bounded(X):
    tvae = tiny_tvae().fit(X)
    with pytest.raises(ValueError, match=r"sample\(1000000000\) would need .* GiB"):
        tvae.sample(10 ** 9)
    with pytest.raises(ValueError, match="latent values per tensor"):
        tiny_tvae(capsule_dim=10 ** 6, batch_size=32, sequence_length=18,
                  temporal_window=2).fit(np.zeros((2, 18 * 6)))


def test_sequence_transformer_explains_sparse_and_channel_last_input():
    images = np.random.default_rng(0).random((3, 4, 4, 3))
    seq = SequenceTransformer(sequence_length=2, image_shape=(4, 4), n_channels=3)
    with pytest.raises(ValueError, match=r"channel-last .*np.moveaxis\(X, -1, 1\)"):
        seq.fit(images)
    seq.fit(np.moveaxis(images, -1, 1))
    with pytest.raises(TypeError, match="dense images.*X.toarray()"):
        SequenceTransformer(sequence_length=2, image_shape=(4, 4)).fit(
            sp.csr_matrix(np.ones((3, 16))))


def test_metrics_refuse_what_they_cannot_measure(X):
    from sktvae import metrics

    one = tiny_tvae(sequence_length=1, temporal_window=0).fit(X[:, :6])
    for measure in (metrics.equivariance_error, metrics.capsule_roll_correlation):
        with pytest.raises(ValueError, match="sequence_length=1 there is nothing"):
            measure(one, X[:, :6])
    bad = np.zeros((2, 4, 2, 4))
    bad[0, 1, 0, 0] = np.nan
    for measure in (metrics.equivariance_error_from_latents, metrics.observed_rolls):
        with pytest.raises(ValueError, match="T contains NaN or infinity"):
            measure(bad)
        with pytest.raises(ValueError, match="T is empty"):
            measure(np.zeros((0, 4, 2, 4)))
    with pytest.raises(ValueError, match="T contains NaN"):
        metrics.selectivity_from_responses(bad.reshape(8, 8), [0, 1] * 4)
    with pytest.raises(ValueError, match="maps is empty"):
        metrics.morans_i(np.zeros((0, 8)), (2, 4))
    vae = tiny_vae().fit(X)
    for shape in ((2.0, 2), (0, 4), (1, 2, 2, 1), "x"):
        with pytest.raises(ValueError, match="capsule_shape must be .*positive ints"):
            metrics.equivariance_error(vae, X, capsule_shape=shape)
    with pytest.raises(ValueError, match=r"capsule_shape=\(3, 3\) does not cover the 4"):
        metrics.equivariance_error(vae, X, capsule_shape=(3, 3))
    assert metrics.equivariance_error(vae, X, capsule_shape=np.array([2, 2])) >= 0
