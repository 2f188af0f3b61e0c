"""Bad input gets a clear ValueError/TypeError naming the argument and the fix;
nothing is silently changed. Input tried systematically, huge hyper-parameters,
persistence and devices."""

import io
import os
import pickle
import warnings

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.exceptions import NotFittedError
from skorch.callbacks import EpochTimer

from conftest import DEVICE, tiny_tvae, tiny_vae
from sktvae import SequenceTransformer


@pytest.mark.parametrize("bad, match", [
    (np.full((4, 24), np.nan), "NaN"),
    (np.full((4, 24), np.inf), "infinity"),
    (np.zeros(24), "Expected 2D array"),
    (np.zeros((4, 4, 6)), "one row of X is one whole sequence.*reshape"),
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
    with pytest.raises(ValueError, match="X / 255.*likelihood='gaussian'"):
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
        tiny_tvae(n_capsules=2 ** 16, batch_size=64, sequence_length=18,
                  temporal_window=2).fit(np.zeros((64, 18 * 6)))


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


FITTED = {}


def fitted(make):
    if make not in FITTED:
        X = np.random.default_rng(0).random((16, 24)).astype(np.float32)
        FITTED[make] = make().fit(X)
    return FITTED[make]


bad_values = st.sampled_from([np.nan, np.inf, -np.inf])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 6), bad=bad_values, where=st.integers(0, 10 ** 6),
       make=st.sampled_from([tiny_tvae, tiny_vae]),
       method=st.sampled_from(["fit", "transform", "score_samples", "score"]))
def test_non_finite_values_are_refused_everywhere(n, bad, where, make, method):
    X = np.random.default_rng(where).random((n, 24))
    X.flat[where % X.size] = bad
    est = make() if method == "fit" else fitted(make)
    with pytest.raises(ValueError, match="NaN|infinity"):
        getattr(est, method)(X)


@settings(max_examples=20, deadline=None)
@given(kind=st.sampled_from(["object", "complex", "str"]), where=st.integers(0, 95),
       make=st.sampled_from([tiny_tvae, tiny_vae]))
def test_wrong_dtypes_are_refused(kind, where, make):
    X = np.ones((4, 24))
    if kind == "object":
        X = X.astype(object)
        X.flat[where] = None
    elif kind == "complex":
        X = X + 1j
    else:
        X = X.astype(str)
        X.flat[where] = "a"
    with pytest.raises((ValueError, TypeError)):
        make().fit(X)


@settings(max_examples=20, deadline=None)
@given(shape=st.sampled_from([(0, 24), (4, 0), (24,), (2, 3, 4), ()]))
def test_wrong_shapes_and_empty_arrays_are_refused(shape):
    with pytest.raises(ValueError):
        tiny_tvae().fit(np.ones(shape))
    with pytest.raises(ValueError):
        fitted(tiny_tvae).transform(np.ones(shape))


@settings(max_examples=15, deadline=None)
@given(X=arrays(np.float64, (3, 24), elements=st.floats(-1e6, 1e6)))
def test_bernoulli_data_outside_unit_interval_is_refused_not_clipped(X):
    X32 = X.astype(np.float32)  # the range is checked on what the model would see
    inside = (X32 >= 0).all() and (X32 <= 1).all()
    if inside:
        assert np.isfinite(fitted(tiny_tvae).score(X))
    else:
        with pytest.raises(ValueError, match=r"likelihood='bernoulli' needs X in \[0, 1\]"):
            fitted(tiny_tvae).score(X)


def test_bool_input_is_read_as_zeros_and_ones():
    X = np.random.default_rng(0).random((8, 24)) > 0.5
    est = tiny_tvae().fit(X)
    np.testing.assert_array_equal(est.transform(X), est.transform(X.astype(np.float32)))


def test_a_single_sequence_fits():
    est = tiny_tvae().fit(np.random.default_rng(0).random((1, 24)))
    assert est.transform(np.zeros((1, 24))).shape == (1, 32)


@pytest.mark.parametrize("params, match", [
    (dict(n_capsules=-1), "n_capsules"),
    (dict(capsule_dim=0), "capsule_dim"),
    (dict(batch_size=0), "batch_size"),
    (dict(max_epochs=-1), "max_epochs"),
    (dict(lr=-1e-3), "lr"),
    (dict(n_importance_samples=0), "n_importance_samples"),
    (dict(mu_init=float("nan")), "mu_init"),
    (dict(u_mean_init=float("inf")), "u_mean_init"),
    (dict(temporal_window=-2), "temporal_window"),
    (dict(sequence_length=0), "sequence_length"),
    (dict(n_capsules=10 ** 8, capsule_dim=4), "latent values, more than"),
    (dict(n_capsules=10 ** 5, capsule_dim=4, batch_size=1, hidden_layer_sizes=(4096,)),
     "parameters.*hidden_layer_sizes"),
    (dict(hidden_layer_sizes=(10 ** 6, 10 ** 6)), "parameters"),
    (dict(device=3), "device"),
])
def test_bad_hyper_parameters_name_themselves(X, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        tiny_tvae(**params).fit(X)


def test_huge_importance_sample_count_is_chunked(X, monkeypatch):
    """K far beyond one chunk works in bounded memory and agrees with one pass."""
    est = tiny_tvae(n_importance_samples=50).fit(X)
    whole = est.score_samples(X[:3])
    monkeypatch.setattr("sktvae._runtime._FRAMES_PER_CHUNK", 12)  # 3 samples a chunk
    np.testing.assert_allclose(est.score_samples(X[:3]), whole, rtol=1e-5)


def test_sequence_transformer_bad_input():
    seq = SequenceTransformer(image_shape=(4, 4), sequence_length=3)
    with pytest.raises(ValueError, match="NaN"):
        seq.fit(np.full((2, 16), np.nan))
    with pytest.raises(ValueError, match="image_shape"):
        seq.fit(np.zeros((2, 15)))
    with pytest.raises(ValueError):
        seq.fit(np.zeros((0, 16)))


def test_save_params_and_load_params_round_trip(X, tmp_path):
    est = tiny_tvae().fit(X)
    est.net_.save_params(f_params=tmp_path / "params.pt",
                         f_optimizer=tmp_path / "opt.pt", f_history=tmp_path / "h.json")
    # Right shapes, untrained; on the CPU, so a GPU fit (SKTVAE_TEST_DEVICE=cuda) loads there.
    fresh = tiny_tvae(max_epochs=0, device="cpu").fit(X[:2])
    fresh.net_.load_params(f_params=tmp_path / "params.pt",
                           f_optimizer=tmp_path / "opt.pt", f_history=tmp_path / "h.json")
    # The same weights: the same numbers on the same device; on the GPU the encoder's
    # float32 sums round differently (seen: 1.4e-6 on values near 7).
    np.testing.assert_allclose(fresh.transform(X), est.transform(X),
                               rtol=0 if DEVICE == "cpu" else 1e-5, atol=0)


class _Exploit:
    def __reduce__(self):
        return (os.system, ("touch sktvae-was-exploited",))


def test_a_tampered_parameter_file_cannot_run_code(X, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "evil.pt"
    torch.save({"weight": _Exploit()}, path)
    est = tiny_tvae().fit(X)
    with pytest.raises(ValueError, match="evil.pt.*holds Python objects other than "
                                         "tensors, which could run code") as error:
        est.net_.load_params(f_params=path)
    assert "weights_only` set to `False`" not in str(error.value)  # not torch's advice
    assert not (tmp_path / "sktvae-was-exploited").exists()


def test_a_cuda_trained_model_loads_and_scores_on_a_cpu_only_machine(X):
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the mapping to the CPU is not exercised")
    est = tiny_tvae().fit(X)
    expected = est.transform(X)
    est.net_.device = "cuda"  # as if trained on a GPU
    buffer = io.BytesIO()
    pickle.dump(est, buffer)
    buffer.seek(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # skorch warns that it maps cuda to cpu
        loaded = pickle.load(buffer)
    assert torch.device(loaded.net_.device).type == "cpu"
    np.testing.assert_array_equal(loaded.transform(X), expected)


def test_skorch_checkpoint_and_load_init_state_through_callbacks(X, tmp_path):
    """skorch's Checkpoint saves the model; LoadInitState resumes from it."""
    from skorch.callbacks import Checkpoint, LoadInitState

    # monitor=None saves every epoch, so the checkpoint is the last one whichever
    # epoch had the lowest loss.
    checkpoint = Checkpoint(monitor=None, dirname=str(tmp_path), load_best=False)
    first = tiny_tvae(max_epochs=3, callbacks=[checkpoint]).fit(X)
    assert (tmp_path / "params.pt").exists()
    resumed = tiny_tvae(max_epochs=1, callbacks=[
        Checkpoint(monitor="train_loss_best", dirname=str(tmp_path)),
        LoadInitState(Checkpoint(monitor="train_loss_best", dirname=str(tmp_path)))])
    resumed.fit(X)
    # The history continues from the checkpoint: 3 epochs loaded, 1 more trained.
    assert len(resumed.history_) == 4
    assert resumed.history_[:3, "train_loss"] == first.history_[:, "train_loss"]


def test_training_through_accelerate_on_the_cpu(X, tmp_path, capsys):
    """skorch's AccelerateMixin path (accelerate's CPU mode) trains the same model."""
    Accelerator = pytest.importorskip(
        "accelerate", reason="the distributed extra: pip install -e '.[distributed]'"
    ).Accelerator

    accelerated = tiny_tvae(accelerator=Accelerator(cpu=True), verbose=0, device="cpu",
                            optimizer=torch.optim.Adam).fit(X)
    assert "train_loss" not in capsys.readouterr().out  # verbose=0 prints no log
    tiny_tvae(accelerator=Accelerator(cpu=True), verbose=1, max_epochs=1).fit(X)
    assert "train_loss" in capsys.readouterr().out
    assert type(accelerated.net_).__name__ == "AcceleratedTVAENet"
    # accelerate needs DataLoaders; a plain fit draws batches by index unless asked
    # for a DataLoader's options, so the same shuffling is a DataLoader's here
    plain = tiny_tvae(optimizer=torch.optim.Adam, device="cpu",
                      iterator_train__num_workers=0).fit(X)
    np.testing.assert_allclose(accelerated.transform(X), plain.transform(X),
                               rtol=1e-5, atol=1e-6)
    # The documented way to persist it: save_params / load_params.
    accelerated.net_.save_params(f_params=tmp_path / "params.pt")
    fresh = tiny_tvae(max_epochs=0, device="cpu").fit(X[:2])
    fresh.net_.load_params(f_params=tmp_path / "params.pt")
    np.testing.assert_allclose(fresh.transform(X), accelerated.transform(X), rtol=1e-6)


def test_routed_parameters_are_checked_not_trusted(X):
    with pytest.raises(ValueError, match="callbacks__prnt_log__sink: there is no callback "
                                         "named 'prnt_log' \\(did you mean 'print_log'"):
        tiny_tvae(callbacks__prnt_log__sink=print).fit(X)
    conv = dict(encoder="conv", frame_shape=(1, 2, 3))
    for bad in ("48", (4, "8"), (4.0, 8), (), (-4,)):
        with pytest.raises(ValueError, match="encoder__channels must be a non-empty "
                                             "sequence of positive ints"):
            tiny_tvae(**conv, encoder__channels=bad).fit(X)
    with pytest.raises(ValueError, match="decoder__channels with decoder='mirror'"):
        tiny_tvae(**conv, decoder__channels=(4,)).fit(X)
    est = tiny_tvae(**conv, encoder__channels=(4, 8)).fit(X)
    decoder = est.net_.module_.decoder
    assert [layer.in_channels for layer in decoder.deconv
            if isinstance(layer, torch.nn.ConvTranspose2d)] == [8, 4]
    with pytest.raises(TypeError, match="include_observed must be True or False"):
        est.predict_sequence(X[:, :6], 2, include_observed="False")


def test_every_tensor_that_affects_outputs_is_in_the_checksum(X):
    """Parameters and every buffer, non-persistent ones (the decoder's input offset,
    the topography's kernel and indices) included: one changed after the state was
    taken for pickling is refused when it is loaded."""
    from sktvae._model import module_tensors

    est = tiny_tvae().fit(X)
    names = list(module_tensors(est.net_.module_))
    assert "t_offset" in names and any(n.startswith("topography.") for n in names)
    for name in names:
        fresh = pickle.loads(pickle.dumps(est))
        state = fresh.__getstate__()
        tensor = module_tensors(fresh.net_.module_)[name]
        with torch.no_grad():
            tensor.view(-1)[0] = tensor.view(-1)[0] + 1
        copy = type(est).__new__(type(est))
        with pytest.raises(ValueError, match="do not match the checksum"):
            copy.__setstate__(state)


def test_a_misspelt_parameter_is_refused_at_construction_naming_the_closest():
    from sktvae import VAE, TopographicVAE

    with pytest.raises(TypeError, match="unexpected keyword argument 'n_capsule'; did "
                                        "you mean 'n_capsules'"):
        TopographicVAE(n_capsule=3)
    with pytest.raises(TypeError, match="'n_component'; did you mean 'n_components'"):
        VAE(n_component=3)
    assert TopographicVAE(optimizer__weight_decay=1e-4).get_params()[
        "optimizer__weight_decay"] == 1e-4


def test_damaged_files_name_themselves(X, tmp_path):
    """Each once ended in a raw or misleading error (issue 42)."""
    import joblib
    from skorch.callbacks import Checkpoint, LoadInitState

    from sktvae import load

    est = tiny_tvae().fit(X)
    path = tmp_path / "est.joblib"
    for compress in (0, 3):
        joblib.dump(est, path, compress=compress)
        raw = path.read_bytes()
        for damaged in (raw[:len(raw) // 2], raw[:-40],
                        raw[:len(raw) // 3] + bytes(b ^ 0xFF for b in raw[len(raw) // 3:
                                                                        len(raw) // 3 + 64])
                        + raw[len(raw) // 3 + 64:]):
            path.write_bytes(damaged)
            with pytest.raises(ValueError, match=f"Cannot load {str(path)!r}: it is "
                                                 "truncated, damaged or was changed"):
                load(path)
    joblib.dump(est, path)
    np.testing.assert_array_equal(load(path).transform(X), est.transform(X))
    # a skorch history that is none
    for bad in ({"epoch": 1}, [1, 2, 3]):
        (tmp_path / "h.json").write_text(__import__("json").dumps(bad))
        with pytest.raises(ValueError, match="is no skorch history"):
            est.net_.load_params(f_history=tmp_path / "h.json")
    # torch's legacy (non-zip) format is read, not refused as damaged
    legacy = tmp_path / "legacy.pt"
    torch.save(est.net_.module_.state_dict(), legacy, _use_new_zipfile_serialization=False)
    est.net_.load_params(f_params=legacy)
    # an SGD state into Adam
    sgd = tiny_tvae(optimizer="sgd").fit(X)
    sgd.net_.save_params(f_optimizer=tmp_path / "opt.pt")
    with pytest.raises(ValueError, match="opt.pt.*saved from another optimizer"):
        est.net_.load_params(f_optimizer=tmp_path / "opt.pt")
    # a truncated parameters file through skorch's Checkpoint / LoadInitState
    cp = Checkpoint(dirname=str(tmp_path / "cp"), monitor="train_loss_best")
    tiny_tvae(callbacks=[cp]).fit(X)
    params = tmp_path / "cp" / "params.pt"
    params.write_bytes(params.read_bytes()[:50])
    cp2 = Checkpoint(dirname=str(tmp_path / "cp"), monitor="train_loss_best")
    with pytest.raises(ValueError, match="Cannot read f_params=.*params.pt"):
        tiny_tvae(callbacks=[cp2, LoadInitState(cp2)]).fit(X)


def test_a_programs_own_sigint_handler_is_respected(X):
    """A handler that returns handles Ctrl-C itself: training goes on to its end and
    no KeyboardInterrupt reaches the caller (issue 42); one that raises stops it."""
    import os
    import signal

    from skorch.callbacks import Callback

    class Interrupt(Callback):
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 1:
                os.kill(os.getpid(), signal.SIGINT)

    seen = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: seen.append(signum))
    try:
        est = tiny_tvae(max_epochs=3, callbacks=[Interrupt()]).fit(X)
        assert seen == [signal.SIGINT] and len(est.history_) == 3

        def stop(signum, frame):
            raise KeyboardInterrupt

        signal.signal(signal.SIGINT, stop)
        with pytest.raises(KeyboardInterrupt):
            tiny_tvae(max_epochs=3, callbacks=[Interrupt()]).fit(X)
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sizes_are_bounded_or_computed_cheaply(X):
    """Each once ran for a minute or allocated gigabytes before an error (issue 42)."""
    import time

    from sktvae.datasets import load_digits_images, make_sprite_sequences, make_sprites

    est = tiny_tvae().fit(X)
    start = time.perf_counter()
    long = est.predict_sequence(X[:2, :6], 10 ** 5)  # one period decoded, then tiled
    assert time.perf_counter() - start < 10 and long.shape == (2, 10 ** 5 * 6)
    np.testing.assert_array_equal(long[:, :4 * 6], long[:, 4 * 6:8 * 6])
    np.testing.assert_allclose(long[:, :3 * 6], est.predict_sequence(X[:2, :6], 3))
    assert tiny_tvae(batch_size=10 ** 9).fit(X).transform(X).shape[0] == len(X)
    with pytest.raises(ValueError, match="latent values, more than"):
        tiny_tvae(capsule_dim=10 ** 6).fit(X)
    with pytest.raises(ValueError, match="parameters .* more than"):
        tiny_tvae(encoder="conv", frame_shape=(1, 2, 3),
                  encoder__channels=(20000, 20000)).fit(X)
    with pytest.raises(ValueError, match="size must be an integer in 1 .. 256"):
        load_digits_images(size=3000)
    with pytest.raises(TypeError, match="read letter by letter"):
        make_sprite_sequences(2, shapes="square")
    with pytest.raises(ValueError, match="do not broadcast"):
        make_sprites("square", [0.6, 0.7], [0.1, 0.2, 0.3], 0.5, 0.5)


@pytest.mark.slow
def test_a_corrupted_joblib_file_is_refused_by_name_or_loads_unchanged(X, tmp_path):
    """Random byte flips: each file is refused with an error naming it, or loads a
    model whose outputs are exactly the saved one's (the flip hit nothing that
    matters, such as the history's floats); none loads changed (issue 42)."""
    import warnings

    import joblib

    from sktvae import load

    est = tiny_tvae().fit(X)
    T, S = est.transform(X), est.score_samples(X)
    path = str(tmp_path / "est.joblib")
    joblib.dump(est, path)
    raw = open(path, "rb").read()
    rng = np.random.default_rng(0)
    outcomes = []
    for _ in range(100):
        damaged = bytearray(raw)
        damaged[int(rng.integers(len(raw)))] ^= int(rng.integers(1, 256))
        with open(path, "wb") as f:
            f.write(damaged)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                loaded = load(path)
            except ValueError as error:
                assert repr(path) in str(error)
                outcomes.append("refused")
                continue
        np.testing.assert_array_equal(loaded.transform(X), T)
        np.testing.assert_array_equal(loaded.score_samples(X), S)
        outcomes.append("unchanged")
    assert outcomes.count("refused") > 30


def test_a_refused_fit_leaves_the_estimator_as_it_was(X):
    """Bad input or a model that cannot be built: a fitted estimator keeps its model
    and fitted attributes whole, an unfitted one stays unfitted."""
    from sklearn.exceptions import NotFittedError

    est = tiny_tvae().fit(X)
    before, T = dict(vars(est)), est.transform(X)
    wide = np.random.default_rng(1).random((8, 4 * 10)).astype(np.float32)
    for bad in (dict(frame_shape=(1, 2, 4)), dict(capsule_dim=10 ** 7)):
        with pytest.raises(ValueError):
            est.set_params(**bad).fit(wide)
        est.set_params(**{k: tiny_tvae().get_params()[k] for k in bad})
        assert est.n_features_in_ == 24 and vars(est).keys() == before.keys()
        np.testing.assert_array_equal(est.transform(X), T)
    with pytest.raises(ValueError, match="NaN"):
        est.fit(np.full_like(X, np.nan))
    np.testing.assert_array_equal(est.transform(X), T)
    fresh = tiny_tvae(capsule_dim=10 ** 7)
    with pytest.raises(ValueError):
        fresh.fit(X)
    with pytest.raises(NotFittedError):
        fresh.transform(X)
