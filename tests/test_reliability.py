"""Bad input tried systematically, huge hyper-parameters, persistence and devices."""

import io
import os
import pickle
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from conftest import DEVICE, tiny_tvae, tiny_vae
from sktvae import SequenceTransformer

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
    (dict(n_capsules=10 ** 8, capsule_dim=4), "latent values per tensor.*batch_size=8"),
    (dict(n_capsules=10 ** 6, capsule_dim=4, batch_size=1, hidden_layer_sizes=(512,)),
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
    monkeypatch.setattr("sktvae._base._FRAMES_PER_CHUNK", 12)  # 3 samples a chunk
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
    from accelerate import Accelerator

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
