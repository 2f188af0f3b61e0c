"""Behaviour of TopographicVAE and VAE: shapes, determinism, persistence, likelihood."""

import io
import pickle

import joblib
import os
import signal

import numpy as np
import pytest
import torch
from sklearn.base import clone
from skorch.callbacks import EpochScoring

from conftest import rolling_sequences, tiny_tvae, tiny_vae
from sktvae import VAE, TopographicVAE
from sktvae._model import expected_square, gaussian_kl


@pytest.mark.parametrize("make, n_latent", [(tiny_tvae, 8), (tiny_vae, 4)])
def test_shapes(X, make, n_latent):
    est = make().fit(X)
    T = est.transform(X)
    assert T.shape == (24, 4 * n_latent) and T.dtype == np.float32
    assert est.inverse_transform(T).shape == X.shape
    assert est.score_samples(X).shape == (24,)
    assert np.isfinite(est.score(X))
    assert est.sample(3, random_state=0).shape == (3, X.shape[1])
    assert est.n_features_in_ == 24 and est.n_features_per_frame_ == 6
    assert len(est.get_feature_names_out()) == T.shape[1]


def test_inverse_transform_is_in_unit_interval_for_bernoulli(X):
    est = tiny_tvae().fit(X)
    Xr = est.inverse_transform(est.transform(X))
    assert Xr.min() >= 0 and Xr.max() <= 1


def test_feature_names_and_pandas_output(X):
    pd = pytest.importorskip("pandas")
    est = tiny_tvae().fit(X)
    names = est.get_feature_names_out()
    assert names[0] == "frame0_capsule0_dim0" and names[-1] == "frame3_capsule1_dim3"
    out = est.set_output(transform="pandas").transform(X)
    assert isinstance(out, pd.DataFrame) and list(out.columns) == list(names)


@pytest.mark.parametrize("make", [tiny_tvae, tiny_vae])
def test_same_seed_same_results(X, make):
    a, b = make().fit(X), make().fit(X)
    np.testing.assert_array_equal(a.transform(X), b.transform(X))
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(X))
    np.testing.assert_array_equal(a.sample(2, random_state=1), b.sample(2, random_state=1))
    c = make(random_state=1).fit(X)
    assert not np.array_equal(a.transform(X), c.transform(X))


def test_fit_leaves_global_torch_rng_alone(X):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    tiny_tvae().fit(X)
    torch.testing.assert_close(torch.rand(3), expected)


def test_score_samples_agree_between_calls_without_a_seed(X):
    """random_state=None: one seed drawn at fit and kept, so repeated calls agree
    (they differed by nats before); another fit draws another."""
    est = tiny_tvae(random_state=None).fit(X)
    first = est.score_samples(X)
    np.testing.assert_array_equal(est.score_samples(X), first)
    rs = np.random.RandomState(0)
    est = tiny_tvae(random_state=rs).fit(X)
    np.testing.assert_array_equal(est.score_samples(X), est.score_samples(X))


def test_importance_noise_is_drawn_per_chunk_of_samples(X, monkeypatch):
    """Each chunk of samples draws its own noise (memory bounded by the chunk), and a
    sample's noise does not depend on the chunking: K samples in chunks of 1 give the
    scores of one chunk of K."""
    import sktvae._runtime as runtime

    est = tiny_tvae(n_importance_samples=6).fit(X)
    whole = est.score_samples(X)
    drawn = []
    noise = runtime.importance_noise
    monkeypatch.setattr(runtime, "importance_noise",
                        lambda *a: drawn.append(len(a[1])) or noise(*a))
    monkeypatch.setattr(runtime, "_FRAMES_PER_CHUNK", 8)  # 2 samples of S = 4 a chunk
    np.testing.assert_allclose(est.score_samples(X[:1]), whole[:1], rtol=1e-5)
    assert drawn == [2, 2, 2]


def test_score_samples_does_not_depend_on_batching(X, monkeypatch):
    est = tiny_tvae().fit(X)
    whole = est.score_samples(X)
    monkeypatch.setattr("sktvae._runtime._FRAMES_PER_CHUNK", 7)  # forces 1-row chunks
    np.testing.assert_allclose(est.score_samples(X), whole, rtol=1e-5)
    np.testing.assert_allclose(est.score_samples(X[5:9]), whole[5:9], rtol=1e-5)


def test_cpu_chunks_stay_under_the_mmap_threshold(monkeypatch):
    """On a CPU a chunk's widest tensor stays under 24 MiB (glibc maps larger blocks
    afresh at every allocation); the results do not depend on it."""
    X = np.random.default_rng(0).random((6, 2 * 5000)).astype(np.float32)
    est = tiny_tvae(sequence_length=2, hidden_layer_sizes=(8,), max_epochs=1).fit(X)
    assert est._frames_per_chunk() == 24 * 2 ** 20 // (4 * 5000)  # 1258 frames
    whole = est.transform(X)
    monkeypatch.setattr("sktvae._runtime._CPU_CHUNK_BYTES", 4 * 5000 * 2)  # 1 row a chunk
    assert est._frames_per_chunk() == 2
    np.testing.assert_allclose(est.transform(X), whole, rtol=1e-5)  # GEMM blocking


def test_clone_and_get_params():
    est = tiny_tvae(coherence="stationary")
    params = clone(est).get_params()
    assert params["coherence"] == "stationary" and params["n_capsules"] == 2
    assert set(params) >= {"temporal_window", "capsule_window", "mu_init", "lr",
                           "optimizer", "callbacks", "train_split", "device"}


@pytest.mark.parametrize("make", [tiny_tvae, tiny_vae])
def test_joblib_round_trip_gives_identical_outputs(X, make):
    est = make().fit(X)
    buffer = io.BytesIO()
    joblib.dump(est, buffer)
    buffer.seek(0)
    loaded = joblib.load(buffer)
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    np.testing.assert_array_equal(loaded.score_samples(X), est.score_samples(X))


def test_history_and_verbose(X, capsys):
    est = tiny_tvae(verbose=1, max_epochs=3).fit(X)
    assert len(est.history_) == 3
    assert "train_loss" in capsys.readouterr().out


def test_train_split_and_user_callbacks(X):
    from skorch.dataset import ValidSplit

    scoring = EpochScoring(lambda net, X, y: 1.0, name="dummy", on_train=True)
    est = tiny_tvae(train_split=ValidSplit(4), callbacks=[scoring]).fit(X)
    assert "valid_loss" in est.history_[-1] and est.history_[-1]["dummy"] == 1.0
    # The user's callback object is copied, not mutated by fit.
    assert all(cb is not scoring for _, cb in est.net_.callbacks_)


@pytest.mark.slow
def test_fit_on_rolling_pattern_learns_structure():
    """The loss falls well below that of independent per-pixel Bernoullis."""
    X = rolling_sequences(128)
    p = X.mean(0)
    marginal_entropy = -(p * np.log(p) + (1 - p) * np.log(1 - p)).sum()
    est = tiny_tvae(hidden_layer_sizes=(64,), max_epochs=40, lr=3e-3).fit(X)
    losses = est.history_[:, "train_loss"]
    assert losses[-1] < losses[0] - 5
    assert losses[-1] < marginal_entropy - 2


def test_warm_start_and_partial_fit_continue_training(X):
    est = tiny_tvae(warm_start=True).fit(X)
    before = est.transform(X)
    est.fit(X)
    assert len(est.history_) == 4
    assert not np.array_equal(est.transform(X), before)
    est2 = tiny_tvae()
    est2.partial_fit(X).partial_fit(X)
    assert len(est2.history_) == 2


@pytest.mark.parametrize("make", [tiny_tvae, tiny_vae])
def test_training_in_steps_is_one_longer_fit(make, X):
    """partial_fit, warm_start and a pickled model resumed all take the random stream up
    where training left it: epoch for epoch the same as one fit. Reseeding at each call
    would replay the first epoch's shuffling and noise."""
    whole = make(max_epochs=3).fit(X)
    stepped = make()
    for _ in range(3):
        stepped.partial_fit(X)
    warm = make(max_epochs=1, warm_start=True).fit(X).set_params(max_epochs=2).fit(X)
    resumed = pickle.loads(pickle.dumps(make(max_epochs=2).fit(X)))
    resumed.partial_fit(X)
    expected = whole.history_[:, "train_loss"]
    for est in (stepped, warm, resumed):
        np.testing.assert_allclose(est.history_[:, "train_loss"], expected, rtol=1e-6)
        np.testing.assert_allclose(est.transform(X), whole.transform(X), rtol=1e-5, atol=1e-6)


def test_vae_scores_sum_over_frames(X):
    """A VAE's sequence score is the sum of its frames' scores."""
    est = tiny_vae(sequence_length=4).fit(X)
    per_frame = VAE(**{**est.get_params(), "sequence_length": 1})
    per_frame.n_features_in_ = per_frame.n_features_per_frame_ = 6
    per_frame.sequence_length_ = 1
    per_frame.net_ = est.net_
    per_frame._built_with = per_frame._architecture()
    # Different noise per frame position, so compare in expectation: large K.
    est.set_params(n_importance_samples=500)
    per_frame.set_params(n_importance_samples=500)
    frames = per_frame.score_samples(X.reshape(-1, 6)).reshape(-1, 4).sum(1)
    np.testing.assert_allclose(est.score_samples(X), frames, rtol=0.02)


def elbo_terms(est, X, n_draws):
    """Monte-Carlo mean of the one-sample ELBO from the training forward pass."""
    x = torch.from_numpy(X).view(len(X), est.sequence_length, -1).to(est._module_device)
    module = est.net_.module_.eval()
    with torch.no_grad():
        return np.mean([(lambda r: (r[0] - r[1]).cpu().numpy())(module(x))
                        for _ in range(n_draws)], axis=0)


def test_one_importance_sample_is_the_elbo_in_expectation(X):
    est = tiny_tvae(max_epochs=5).fit(X)
    elbo = elbo_terms(est, X, 400)
    est.set_params(n_importance_samples=1)
    scores = np.array([est.set_params(random_state=s).score_samples(X)
                       for s in range(400)])
    stderr = scores.std(0).mean() / np.sqrt(400)
    assert abs(scores.mean() - elbo.mean()) < 4 * stderr + 0.05


def test_gaussian_closed_forms_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, logvar = torch.randn(5, 3, 4, generator=g), torch.randn(5, 3, 4, generator=g)
    q = torch.distributions.Normal(mean, (0.5 * logvar).exp())
    kl = torch.distributions.kl_divergence(q, torch.distributions.Normal(0.0, 1.0))
    torch.testing.assert_close(gaussian_kl(mean, logvar), kl.flatten(1).sum(1))
    # E[u^2] by sampling, which shares nothing with the closed form
    draws = (mean + q.stddev * torch.randn(20000, *mean.shape, generator=g)) ** 2
    stderr = draws.std(0) / np.sqrt(len(draws))
    assert ((draws.mean(0) - expected_square(mean, logvar)).abs() < 5 * stderr).all()


def test_more_importance_samples_tighten_the_bound():
    X = rolling_sequences(64)
    est = tiny_tvae(max_epochs=10, hidden_layer_sizes=(32,), lr=3e-3).fit(X)
    one = np.mean([est.set_params(n_importance_samples=1, random_state=s).score(X)
                   for s in range(20)])
    many = est.set_params(n_importance_samples=200).score(X)
    assert many > one


def test_sample_uses_its_own_random_state(X):
    est = tiny_tvae().fit(X)
    assert np.array_equal(est.sample(2, random_state=3), est.sample(2, random_state=3))
    assert not np.array_equal(est.sample(2, random_state=3), est.sample(2, random_state=4))


def test_gaussian_likelihood_on_real_valued_data():
    X = np.random.default_rng(0).normal(size=(24, 8)) * 5
    est = tiny_tvae(sequence_length=2, temporal_window=1, likelihood="gaussian").fit(X)
    assert np.isfinite(est.score(X))
    assert "x_logvar" in dict(est.net_.module_.named_parameters())


def built(est, n_features, S=18):
    """The module an estimator builds for frames of ``n_features`` values in sequences
    of ``S`` frames (where its sequence_length is "auto"), without fitting."""
    est.sequence_length_ = S if est.sequence_length == "auto" else est.sequence_length
    est.frame_shape_ = None
    return est._build_module(n_features)


def test_paper_sized_module_layers():
    """The paper's MNIST model: 2352 -> 972 -> 648 -> 2 x 324 per encoder, mirrored."""
    est = TopographicVAE(hidden_layer_sizes=(972, 648))
    module = built(est, 3 * 28 * 28)
    shapes = [tuple(p.shape) for n, p in module.encoder_z.named_parameters()
              if n.endswith("weight")]
    assert shapes == [(972, 2352), (648, 972), (648, 648)]
    shapes = [tuple(p.shape) for n, p in module.decoder.named_parameters()
              if n.endswith("weight")]
    assert shapes == [(648, 324), (972, 648), (2352, 972)]


def test_decoder_input_is_centred_on_the_prior_mean_of_t():
    """t is fed to the decoder as t + mu_init / sqrt(n), n = terms of each window (here
    18 frames x 3 dims); the VAE's t = z is centred already and is not shifted."""
    t = torch.randn(5, 18 * 18)
    centred = built(TopographicVAE(hidden_layer_sizes=(8,)), 12)
    assert centred.t_offset.item() == pytest.approx(-30.0 / np.sqrt(18 * 3))
    expected = centred.decoder(t + 30.0 / np.sqrt(54))
    torch.testing.assert_close(centred.decode(t), expected)
    plain = built(TopographicVAE(hidden_layer_sizes=(8,), center_decoder_input=False,
                                 mu_init=5.0), 12)
    assert plain.t_offset.item() == 0.0
    torch.testing.assert_close(plain.decode(t), plain.decoder(t))
    assert built(VAE(hidden_layer_sizes=(8,)), 12).t_offset.item() == 0.0


def test_u_mean_init_shifts_only_the_initial_mean_of_q_u():
    """u_mean_init adds to the bias of q(u|x)'s mean and to nothing else: the same
    seed gives the same weights otherwise, and the mean of u over inputs moves by it."""
    modules = []
    for b in (0.0, 2.5):
        torch.manual_seed(0)
        modules.append(built(TopographicVAE(2, 4, 4, hidden_layer_sizes=(8,),
                                            u_mean_init=b), 6))
    plain, shifted = (dict(m.named_parameters()) for m in modules)
    for name, p in plain.items():
        if name != "encoder_u.net.2.bias":
            torch.testing.assert_close(shifted[name], p, msg=name)
    delta = shifted["encoder_u.net.2.bias"] - plain["encoder_u.net.2.bias"]
    torch.testing.assert_close(delta[:8], torch.full((8,), 2.5))   # the mean half
    torch.testing.assert_close(delta[8:], torch.zeros(8))          # log-variance half
    x = torch.rand(3, 4, 6)
    u_plain, u_shifted = (m.encode(x)[2] for m in modules)
    torch.testing.assert_close(u_shifted - u_plain, torch.full_like(u_plain, 2.5))


def test_float16_input_stays_float16_and_matches_float32(X):
    """float16 sequences (half the memory) give the same model as their float32 copy."""
    X16 = X.astype(np.float16)
    a = tiny_tvae().fit(X16)
    b = tiny_tvae().fit(X16.astype(np.float32))
    assert a._validate_sequences(X16, reset=False).dtype == torch.float16
    np.testing.assert_allclose(a.transform(X16), b.transform(X16.astype(np.float32)),
                               rtol=1e-5, atol=1e-6)


def test_interrupted_fit_leaves_a_usable_estimator_that_can_continue(X):
    """Ctrl-C (KeyboardInterrupt) during fit stops after the last completed batch and
    reaches the caller; the estimator keeps what it had learnt and can go on."""
    from skorch.callbacks import Callback

    class Interrupt(Callback):  # Ctrl-C itself: SIGINT to this process
        def on_epoch_end(self, net, **kwargs):
            if len(net.history) == 2:
                os.kill(os.getpid(), signal.SIGINT)

    est = tiny_tvae(max_epochs=5, callbacks=[Interrupt()], warm_start=True)
    with pytest.raises(KeyboardInterrupt):  # the caller stops too
        est.fit(X)
    assert len(est.history_) == 2 and est.history_ is est.net_.history
    assert np.isfinite(est.score(X)) and est.transform(X).shape == (24, 32)
    est.set_params(callbacks=None, max_epochs=1).fit(X)  # warm start continues
    assert len(est.history_) == 3
    est.partial_fit(X)
    assert len(est.history_) == 4


def test_interrupting_a_grid_search_stops_it_at_once(X):
    """One Ctrl-C stops a GridSearchCV: no fold is ranked as if it were complete."""
    from skorch.callbacks import Callback
    from sklearn.model_selection import GridSearchCV

    fits = []

    class Interrupt(Callback):
        def on_batch_end(self, net, **kwargs):
            fits.append(1)
            os.kill(os.getpid(), signal.SIGINT)

    search = GridSearchCV(tiny_tvae(callbacks=[Interrupt()]), {"lr": [1e-3, 1e-2]}, cv=2)
    with pytest.raises(KeyboardInterrupt):
        search.fit(X)
    assert len(fits) == 1 and not hasattr(search, "cv_results_")


def test_fused_adam_gives_the_same_model_as_plain_adam(X):
    """The fast path (fused Adam for optimizer='adam') changes no result."""
    fused = tiny_tvae(max_epochs=3).fit(X)
    assert fused.net_.optimizer_.defaults["fused"]
    plain = tiny_tvae(max_epochs=3, optimizer=torch.optim.Adam).fit(X)
    assert not plain.net_.optimizer_.defaults.get("fused")
    np.testing.assert_allclose(fused.transform(X), plain.transform(X), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(fused.score_samples(X), plain.score_samples(X), rtol=1e-4)


def test_batching_gives_the_same_outputs_as_one_pass(X, monkeypatch):
    est = tiny_tvae(n_importance_samples=7).fit(X)
    T, scores = est.transform(X), est.score_samples(X)
    X_back, frames = est.inverse_transform(T), est._encode_frames(X[:, :6])
    monkeypatch.setattr("sktvae._runtime._FRAMES_PER_CHUNK", 8)  # 1 row, 2 samples a chunk
    np.testing.assert_allclose(est.transform(X), T, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.inverse_transform(T), X_back, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(est.score_samples(X), scores, rtol=1e-5)
    np.testing.assert_allclose(est._encode_frames(X[:, :6]), frames, rtol=1e-5, atol=1e-6)


def test_training_parameters_set_after_fit_take_effect_on_the_next_call(X):
    """Each call trains a net built from the parameters as they are then: the
    optimizer's state goes on (same class) under the new lr; train_split, callbacks,
    verbose and batch_size changed since the last call are used."""
    from skorch.callbacks import EpochScoring
    from skorch.dataset import ValidSplit

    est = tiny_tvae(warm_start=True).fit(X)
    steps = [s["step"].item() for s in est.net_.optimizer_.state.values()]
    est.set_params(lr=0.5, batch_size=3).partial_fit(X)
    adam = est.net_.optimizer_
    assert adam.param_groups[0]["lr"] == 0.5 and est.net_.batch_size == 3
    assert [s["step"].item() for s in adam.state.values()] == [n + 8 for n in steps]
    est.set_params(lr=0.25).fit(X)  # a warm-start fit too
    assert est.net_.optimizer_.param_groups[0]["lr"] == 0.25
    module, epochs = est.net_.module_, len(est.history_)
    est.set_params(optimizer="sgd", lr=0.01).partial_fit(X)
    assert isinstance(est.net_.optimizer_, torch.optim.SGD)
    assert est.net_.optimizer_.param_groups[0]["momentum"] == 0.9
    assert est.net_.module_ is module and len(est.history_) == epochs + 1
    lines = []
    est.set_params(train_split=ValidSplit(4), verbose=1, callbacks__print_log__sink=lines.append,
                   callbacks=[EpochScoring(lambda net, X, y: 1.0, name="one")])
    est.partial_fit(X)
    assert "valid_loss" in est.history_[-1] and est.history_[-1, "one"] == 1.0
    assert lines and "valid_loss" in lines[0]


def test_continued_training_checks_parameters_as_fit_does(X):
    est = tiny_tvae().fit(X)
    before = est.transform(X)
    for bad in (dict(lr=-1.0), dict(batch_size=-5), dict(precision="float16"),
                dict(max_epochs=1.5), dict(optimizer="lbfgs")):
        est.set_params(**bad)
        with pytest.raises(ValueError, match=next(iter(bad))):
            est.partial_fit(X)
        with pytest.raises(ValueError, match=next(iter(bad))):
            est.set_params(warm_start=True).fit(X)
        est.set_params(**{k: tiny_tvae().get_params()[k] for k in bad}, warm_start=False)
    np.testing.assert_array_equal(est.transform(X), before)  # nothing trained


def test_optimizer_lr_and_lr_cannot_disagree(X):
    """skorch's optimizer__lr and lr are one setting: n partial_fit calls train as a
    fit of n epochs at that rate."""
    with pytest.raises(ValueError, match="optimizer__lr=0.05 and lr=0.001 are one setting"):
        tiny_tvae(optimizer__lr=0.05).fit(X)
    est = tiny_tvae(lr=0.05, optimizer__lr=0.05, max_epochs=1).fit(X)
    est.partial_fit(X)
    assert est.net_.optimizer_.param_groups[0]["lr"] == 0.05
    np.testing.assert_allclose(
        est.transform(X), tiny_tvae(lr=0.05, max_epochs=2).fit(X).transform(X), rtol=1e-5,
        atol=1e-6)


@pytest.mark.parametrize("param, value", [("n_capsules", 3), ("capsule_window", 1),
                                          ("coherence", "stationary"),
                                          ("hidden_layer_sizes", (9,)),
                                          ("center_decoder_input", False)])
def test_a_changed_architecture_is_refused_until_rebuilt(X, param, value):
    est = tiny_tvae(warm_start=True).fit(X)
    est.set_params(**{param: value})
    for call in (est.transform, est.score_samples, est.partial_fit, est.fit):
        with pytest.raises(ValueError, match=f"{param}=.*but the fitted model was built "
                                             f"with {param}=.*warm_start=False"):
            call(X)
    est.set_params(warm_start=False).fit(X)  # rebuilt with the new value
    assert est.transform(X).shape[0] == len(X)


def test_a_changed_likelihood_is_refused(X):
    vae = tiny_vae(likelihood="gaussian").fit(X)
    vae.set_params(likelihood="bernoulli")
    with pytest.raises(ValueError, match="likelihood='bernoulli', but the fitted"):
        vae.score_samples(X)
    vae.set_params(likelihood="gaussian",  # a list is the tuple it was built with
                   hidden_layer_sizes=list(vae.hidden_layer_sizes))
    assert np.isfinite(vae.score_samples(X)).all()


def test_loading_refuses_another_structure_and_keeps_history_in_step(X, tmp_path):
    """torch loads weights wherever the shapes agree; a file saved from a model with
    another coherence, window or decoder centring is refused, naming it."""
    params, history = tmp_path / "params.pt", tmp_path / "history.json"
    a = tiny_tvae(max_epochs=3).fit(X)
    a.net_.save_params(f_params=params, f_history=history)
    b = tiny_tvae(max_epochs=1).fit(X)
    b.net_.load_params(f_params=params, f_history=history)
    assert len(b.history_) == 3  # the loaded history, not the old one
    np.testing.assert_allclose(b.transform(X), a.transform(X))
    for changed, name in [(dict(coherence="stationary"), "coherence"),
                          (dict(temporal_window=0), "temporal_window"),
                          (dict(center_decoder_input=False), "center_decoder_input"),
                          (dict(mu_init=5.0), "center_decoder_input \\(with mu_init\\)"),
                          (dict(capsule_window=1), "capsule_window \\(cols\\)")]:
        c = tiny_tvae(max_epochs=0, **changed).fit(X)
        with pytest.raises(ValueError, match=f"saved from a model built otherwise: {name}"):
            c.net_.load_params(f_params=params)


def test_damaged_or_changed_files_are_refused_by_name(X, tmp_path):
    import joblib

    est = tiny_tvae().fit(X)
    params, history = tmp_path / "params.pt", tmp_path / "history.json"
    est.net_.save_params(f_params=params, f_history=history)
    raw = params.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 10):
        params.with_name("cut.pt").write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"Cannot read f_params='.*cut.pt': it is "
                                             "truncated, damaged or not a file written"):
            est.net_.load_params(f_params=params.with_name("cut.pt"))
    text = history.read_bytes()
    history.with_name("cut.json").write_bytes(text[:len(text) // 2])
    with pytest.raises(ValueError, match="Cannot read f_history=.*not a JSON history"):
        est.net_.load_params(f_history=history.with_name("cut.json"))
    # One weight overwritten: the checksum saved with the weights no longer matches.
    state = torch.load(params, weights_only=True)
    state["encoder_z.net.0.weight"][0, 0] += 0.5
    torch.save(state, params.with_name("changed.pt"))
    before = est.transform(X)
    with pytest.raises(ValueError, match="do not match the checksum saved with them"):
        est.net_.load_params(f_params=params.with_name("changed.pt"))
    np.testing.assert_array_equal(est.transform(X), before)  # nothing was loaded
    del state["checksum"]  # changed on purpose: loads
    est.net_.module_.load_state_dict(state)
    assert not np.allclose(est.transform(X), before)

    # A pickle: the weights are stored once, and a flipped byte in them is refused.
    est = tiny_tvae().fit(X)
    path = tmp_path / "model.joblib"
    joblib.dump(est, path)
    loaded = joblib.load(path)
    assert loaded.net_.module is loaded.net_.module_  # one module, as before pickling
    np.testing.assert_array_equal(loaded.transform(X), est.transform(X))
    weight = est.net_.module_.decoder[0].weight.detach().numpy()[0, :4].tobytes()
    data = bytearray(path.read_bytes())
    assert data.count(weight) == 1
    data[data.index(weight)] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="pickled TopographicVAE do not match the checksum"):
        joblib.load(path)


def test_skorch_double_underscore_parameters(X):
    """optimizer__*, iterator_*__* and callbacks__* reach the skorch net, the skorch way."""
    from sklearn.model_selection import GridSearchCV

    tvae = tiny_tvae(optimizer__weight_decay=0.1, iterator_train__drop_last=True)
    assert tvae.get_params()["optimizer__weight_decay"] == 0.1
    assert clone(tvae).get_params()["iterator_train__drop_last"] is True
    assert "optimizer__weight_decay=0.1" in repr(tvae)
    tvae.fit(X)
    group = tvae.net_.optimizer_.param_groups[0]
    assert group["weight_decay"] == 0.1 and tvae.net_.iterator_train__drop_last is True
    # Set after fit: on the next partial_fit, the optimizer's state kept.
    steps = float(tvae.net_.optimizer_.state_dict()["state"][0]["step"])
    tvae.set_params(optimizer__weight_decay=0.0, optimizer__betas=(0.5, 0.9)).partial_fit(X)
    group = tvae.net_.optimizer_.param_groups[0]
    assert group["weight_decay"] == 0.0 and tuple(group["betas"]) == (0.5, 0.9)
    assert float(tvae.net_.optimizer_.state_dict()["state"][0]["step"]) > steps
    loaded = pickle.loads(pickle.dumps(tvae))
    assert loaded.get_params()["optimizer__betas"] == (0.5, 0.9)
    # A named callback's parameter, through skorch's callbacks__<name>__<param>.
    lines = []
    tiny_vae(verbose=1, callbacks__print_log__sink=lines.append).fit(X)
    assert any("train_loss" in line for line in lines)
    search = GridSearchCV(tiny_vae(max_epochs=1),
                          {"optimizer__weight_decay": [0.0, 1e-2]}, cv=2).fit(X)
    assert search.best_params_["optimizer__weight_decay"] in (0.0, 1e-2)
    assert search.best_estimator_.net_.optimizer_.param_groups[0]["weight_decay"] == \
        search.best_params_["optimizer__weight_decay"]


def test_unknown_double_underscore_prefixes_are_refused(X):
    with pytest.raises(ValueError, match="'module__x' is not a parameter of TopographicVAE.*"
                                         "optimizer__, iterator_train__"):
        tiny_tvae().set_params(module__x=1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'typo'"):
        tiny_vae(typo=1)  # at construction
    with pytest.raises(ValueError, match="Invalid parameter 'typo'"):
        tiny_vae().set_params(typo=1)


def test_callbacks_that_need_a_validation_split_say_so(X):
    from skorch.callbacks import Checkpoint, EarlyStopping
    from skorch.dataset import ValidSplit

    with pytest.raises(ValueError, match=r"callbacks\[0\] \(EarlyStopping\) monitors "
                                         r"'valid_loss', but train_split=None.*"
                                         r"EarlyStopping\(monitor='train_loss'\)"):
        tiny_tvae(callbacks=[EarlyStopping()]).fit(X)
    with pytest.raises(ValueError, match=r"Checkpoint\(monitor='train_loss_best'\)"):
        tiny_tvae(callbacks=[Checkpoint()]).fit(X)
    tiny_tvae(callbacks=[EarlyStopping(monitor="train_loss", patience=1)]).fit(X)
    tiny_tvae(callbacks=[EarlyStopping()], train_split=ValidSplit(4)).fit(X)


def test_early_stopping_ends_fit_normally_while_ctrl_c_reaches_the_caller(X):
    """skorch's EarlyStopping stops by raising KeyboardInterrupt; that is the end of a
    fit, not a Ctrl-C, so fit returns (a real SIGINT is tested above)."""
    from skorch.callbacks import EarlyStopping

    # a threshold no epoch after the first can meet: it stops `patience` epochs later
    stop = EarlyStopping(monitor="train_loss", patience=2, threshold=1e9,
                         threshold_mode="abs")
    est = tiny_tvae(max_epochs=10, callbacks=[stop]).fit(X)
    assert len(est.history_) == 3 and np.isfinite(est.score(X))
    import signal as signal_module
    assert signal_module.getsignal(signal_module.SIGINT) is signal_module.default_int_handler


def test_bfloat16_training_is_its_own_reproducible_fit(X, monkeypatch):
    import sktvae._build as base

    fp32 = tiny_tvae().fit(X)
    bf16 = tiny_tvae(precision="bfloat16").fit(X)
    again = tiny_tvae(precision="bfloat16").fit(X)
    assert fp32.precision_ == "float32" and bf16.precision_ == "bfloat16"
    np.testing.assert_array_equal(bf16.transform(X), again.transform(X))  # same seed
    assert not np.array_equal(bf16.transform(X), fp32.transform(X))  # other arithmetic
    # Inference stays float32, and close to the float32 model's after two epochs.
    assert bf16.transform(X).dtype == np.float32
    assert abs(bf16.score(X) - fp32.score(X)) < 0.05 * abs(fp32.score(X))
    # The networks ran in bfloat16 while training only.
    seen = []
    hook = bf16.net_.module_.decoder.register_forward_hook(
        lambda module, args, out: seen.append(out.dtype))
    bf16.partial_fit(X)
    bf16.transform(X[:2])
    bf16.inverse_transform(bf16.transform(X[:2]))
    hook.remove()
    assert seen[0] == torch.bfloat16 and seen[-1] == torch.float32
    for native, expected in ((True, "bfloat16"), (False, "float32")):
        monkeypatch.setattr(base, "bfloat16_is_native", lambda device, n=native: n)
        assert tiny_vae(precision="auto").fit(X).precision_ == expected
    fp32.set_params(precision="bfloat16").partial_fit(X)  # a training parameter
    assert fp32.precision_ == "bfloat16"


def test_grid_search_over_an_optimizer_parameter(X):
    from sklearn.model_selection import GridSearchCV

    search = GridSearchCV(tiny_tvae(), {"optimizer__weight_decay": [0.0, 10.0]}, cv=2)
    search.fit(X)
    assert search.best_params_ == {"optimizer__weight_decay": 0.0}  # 10 crushes the fit
    assert search.best_estimator_.net_.optimizer_.param_groups[0]["weight_decay"] == 0.0
    scores = search.cv_results_["mean_test_score"]
    assert scores[0] > scores[1]


def test_a_callback_stop_ends_fit_in_a_background_job_and_a_thread(X):
    """With SIGINT ignored (a background job) or in a thread, where no Ctrl-C can
    raise KeyboardInterrupt in fit, a callback's stop still ends fit normally."""
    import threading

    from skorch.callbacks import EarlyStopping

    def fit():
        stop = EarlyStopping(monitor="train_loss", patience=1, threshold=1e9,
                             threshold_mode="abs")
        return len(tiny_tvae(max_epochs=10, callbacks=[stop]).fit(X).history_)

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        assert fit() == 2
    finally:
        signal.signal(signal.SIGINT, previous)
    lengths = []
    worker = threading.Thread(target=lambda: lengths.append(fit()))
    worker.start()
    worker.join()
    assert lengths == [2]
