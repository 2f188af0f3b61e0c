"""SequenceTransformer: geometry against scipy, cycles, shapes, errors, pipelines."""

import pickle

import numpy as np
import pytest
import scipy.ndimage as ndi
import torch
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV, KFold, cross_validate
from sklearn.pipeline import Pipeline

from conftest import tiny_tvae
from sktvae import SequenceTransformer
from sktvae._sequences import _hue_matrices
from sktvae.datasets import load_digits_images

H = W = 16


@pytest.fixture
def images():
    return load_digits_images(size=12, padding=2).data[:6]


def frames(seq, X):
    out = seq.fit_transform(X)
    return out.reshape(len(X), seq.sequence_length, seq.n_out_channels_, H, W)


def test_rotation_frame_k_matches_scipy_rotation(images):
    S = 8
    seq = SequenceTransformer(sequence_length=S, image_shape=(H, W), random_start=False)
    out = frames(seq, images)
    for k in range(S):
        for i, img in enumerate(images.reshape(-1, H, W)):
            ref = ndi.rotate(img, 360 * k / S, reshape=False, order=1)
            assert np.abs(out[i, k, 0] - ref).mean() < 0.02


@pytest.mark.parametrize("family", ["rotation", "translation", "scale"])
def test_frame_zero_is_the_image_without_random_start(images, family):
    seq = SequenceTransformer(family, sequence_length=5, image_shape=(H, W),
                              random_start=False)
    out = frames(seq, images)
    if family == "scale":  # the cycle starts at the smallest zoom, 0.60
        assert out[:, 0].sum() < images.sum()
    else:
        np.testing.assert_allclose(out[:, 0, 0].reshape(len(images), -1), images,
                                   atol=1e-5)


def test_perspective_tilt_turns_around(images):
    seq = SequenceTransformer("perspective", sequence_length=4, image_shape=(H, W),
                              random_start=False)
    out = frames(seq, images)[:, :, 0]
    ink = out.sum((2, 3)) / images.sum(1)[:, None]
    assert np.all((ink > 0.6) & (ink < 1.4))  # tilted, not lost
    # Opposite tilts (frames 0 and 2) are mirror images for a mirror-symmetric input.
    sym = np.zeros((1, H, W), np.float32)
    sym[0, 4:12, 6:10] = 1
    out = frames(seq, sym.reshape(1, -1))[0, :, 0]
    np.testing.assert_allclose(out[0], out[2][:, ::-1], atol=1e-4)
    assert np.abs(out[0] - out[1]).sum() > 1


def test_translation_is_cyclic(images):
    seq = SequenceTransformer("translation", sequence_length=4, image_shape=(H, W),
                              random_start=False)
    out = frames(seq, images)
    np.testing.assert_allclose(out[:, 1, 0], np.roll(images.reshape(-1, H, W), 4, axis=2),
                               atol=1e-5)


def test_hue_full_cycle_returns_to_start(images):
    seq = SequenceTransformer("hue", sequence_length=6, image_shape=(H, W), color="red",
                              random_start=False)
    out = frames(seq, images)
    assert out.shape[2] == 3
    red = images.reshape(-1, 1, H, W) * np.array([1, 0, 0]).reshape(1, 3, 1, 1)
    np.testing.assert_allclose(out[:, 0], red, atol=1e-6)
    # A full turn is the identity, so the cycle returns exactly to its first frame.
    M = _hue_matrices(torch.tensor([2 * np.pi], dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(M, np.eye(3), atol=1e-12)
    # A third of a turn maps red to green: the hue wheel, not a grey shift.
    M3 = _hue_matrices(torch.tensor([2 * np.pi / 3], dtype=torch.float64))[0].numpy()
    np.testing.assert_allclose(M3 @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    assert out[:, 2, 1].sum() > 0.9 * out[:, 0, 0].sum()  # frame 2 of 6 is green


def test_compose_and_random_combinations(images):
    both = SequenceTransformer(["rotation", "hue"], sequence_length=6, image_shape=(H, W),
                               color="blue", random_state=0)
    assert both.fit_transform(images).shape == (6, 6 * 3 * H * W)
    rand = SequenceTransformer(["rotation", "scale"], sequence_length=6, combine="random",
                               image_shape=(H, W), random_state=0)
    values = rand.fit(images)._frame_values(200, ["rotation", "scale"])
    moving = [(v.std(1) > 0).numpy() for v in values.values()]
    # Exactly one family moves in each sequence, and both are chosen sometimes.
    assert np.all(moving[0] ^ moving[1]) and 20 < moving[0].sum() < 180


def test_same_seed_same_output_and_random_start(images):
    a = SequenceTransformer(image_shape=(H, W), sequence_length=4, random_state=0)
    b = clone(a)
    np.testing.assert_array_equal(a.fit_transform(images), b.fit_transform(images))
    c = a.set_params(random_state=1)
    assert not np.array_equal(c.fit_transform(images), b.fit_transform(images))


def test_input_layouts_and_dtypes(images):
    seq = SequenceTransformer(image_shape=(H, W), sequence_length=3, random_state=0)
    flat = seq.fit_transform(images)
    np.testing.assert_array_equal(seq.fit_transform(images.reshape(-1, H, W)), flat)
    np.testing.assert_array_equal(seq.fit_transform(images.reshape(-1, 1, H, W)), flat)
    as_uint8 = (images * 255).round().astype(np.uint8)
    np.testing.assert_allclose(seq.fit_transform(as_uint8), flat, atol=3e-3)
    small = seq.set_params(dtype=np.uint8).fit_transform(images)
    assert small.dtype == np.uint8
    np.testing.assert_allclose(small / 255, flat, atol=1 / 255)
    assert flat.dtype == np.float32 and flat.min() >= 0 and flat.max() <= 1


def test_chunking_gives_the_same_output(images, monkeypatch):
    seq = SequenceTransformer(["rotation", "perspective"], image_shape=(H, W),
                              sequence_length=4, random_state=0)
    whole = seq.fit_transform(images)
    monkeypatch.setattr("sktvae._sequences._FRAMES_PER_CHUNK", 4)
    np.testing.assert_array_equal(seq.fit_transform(images), whole)


def test_feature_names_and_pandas(images):
    pd = pytest.importorskip("pandas")
    seq = SequenceTransformer(image_shape=(H, W), sequence_length=2).fit(images)
    names = seq.get_feature_names_out()
    assert names[0] == "frame0_ch0_y0_x0" and len(names) == 2 * H * W
    out = seq.set_output(transform="pandas").transform(images)
    assert isinstance(out, pd.DataFrame) and out.shape == (6, 2 * H * W)


@pytest.mark.parametrize("params, X_shape, match", [
    (dict(image_shape=(15, 15)), (2, H * W), r"image_shape=\(15, 15\).*needs 225"),
    (dict(transformations="shear"), (2, H * W), "must be a str among.*rotation"),
    (dict(transformations=["rotation", "blur"]), (2, H * W),
     r"Unknown transformations \['blur'\]; valid names are rotation, scale, hue"),
    (dict(sequence_length=1), (2, H * W), "sequence_length"),
    (dict(transformations="hue"), (2, H * W), "'hue' transformation needs colour"),
    (dict(color="teal"), (2, H * W), "color"),
    (dict(color=(1.0, 2.0, 0.0)), (2, H * W), "RGB triple in"),
])
def test_bad_parameters(params, X_shape, match):
    with pytest.raises(ValueError, match=match):
        SequenceTransformer(**{"image_shape": (H, W), **params}).fit(np.zeros(X_shape))


def test_color_needs_unit_interval():
    with pytest.raises(ValueError, match=r"color needs image values in \[0, 1\]"):
        SequenceTransformer(image_shape=(H, W), color="red").fit(np.full((2, H * W), 3.0))


def test_pipeline_grid_search_and_cross_validate(images):
    X = load_digits_images(size=8).data[:24]
    pipe = Pipeline([
        ("seq", SequenceTransformer(sequence_length=4, image_shape=(8, 8), random_state=0)),
        ("tvae", tiny_tvae(sequence_length=4, temporal_window=1)),
    ])
    search = GridSearchCV(pipe, {"tvae__coherence": ["shifting", "stationary"],
                                 "seq__transformations": ["rotation", "scale"]}, cv=2)
    search.fit(X)
    assert set(search.best_params_) == {"tvae__coherence", "seq__transformations"}
    assert np.all(np.isfinite(search.cv_results_["mean_test_score"]))
    scores = cross_validate(clone(pipe), X, cv=3)["test_score"]
    assert scores.shape == (3,) and np.all(np.isfinite(scores))
    restored = pickle.loads(pickle.dumps(search.best_estimator_))
    np.testing.assert_allclose(restored.score(X), search.best_estimator_.score(X))


def test_folds_never_split_a_sequence(images):
    """Every row is a whole sequence, so each fold holds whole sequences only."""
    seq = SequenceTransformer(sequence_length=4, image_shape=(H, W), random_state=0)
    X_seq = seq.fit_transform(images)
    frame_len = H * W
    for train, test in KFold(3).split(images):
        # Each test row's 4 frames all come from its own image, none from training ones.
        for i in test:
            frames_i = X_seq[i].reshape(4, frame_len)
            assert np.allclose(frames_i.sum(1), frames_i.sum(1)[0], rtol=0.2)
        assert not set(train) & set(test)
    # A pipeline splits images, so the frames of image i go where image i goes.
    pipe = Pipeline([("seq", seq), ("tvae", tiny_tvae(sequence_length=4))])
    pipe.fit(images[:4])
    assert pipe[-1].n_features_in_ == 4 * frame_len


def test_integer_images_are_read_in_their_dtype_range():
    rng = np.random.default_rng(0)
    images = rng.random((3, 16)).astype(np.float32)
    seq = SequenceTransformer(image_shape=(4, 4), transformations="rotation",
                              sequence_length=2, random_start=False)
    expected = seq.fit_transform(images)
    as_uint16 = (images * 65535).round().astype(np.uint16)
    np.testing.assert_allclose(seq.fit_transform(as_uint16), expected, atol=1e-4)
    with pytest.raises(ValueError, match="int64: integer images are read"):
        seq.fit_transform(as_uint16.astype(np.int64))
    mask = (images > 0.5).astype(np.uint8)
    with pytest.raises(ValueError, match="uint8 with values 0 and 1 only"):
        seq.fit_transform(mask)
    np.testing.assert_allclose(seq.fit_transform(mask.astype(bool)),
                               seq.fit_transform(mask.astype(np.float32)))


def test_the_number_of_frames_is_named_once_in_a_pipeline_and_a_grid_search():
    """sequence_length="auto" (the default) takes the number of frames from the
    transformer's output; a plain array states none, and must say it."""
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    from sktvae import VAE, TopographicVAE
    from sktvae.datasets import load_digits_images

    images = load_digits_images(size=8, return_X_y=True)[0][:40]
    tiny = dict(n_capsules=2, capsule_dim=4, hidden_layer_sizes=(8,), max_epochs=1,
                random_state=0, temporal_window=1)
    pipe = Pipeline([("seq", SequenceTransformer(sequence_length=4, image_shape=(8, 8),
                                                 random_state=0)),
                     ("tvae", TopographicVAE(**tiny))])
    search = GridSearchCV(pipe, {"seq__sequence_length": [4, 6]}, cv=2).fit(images)
    assert search.best_estimator_[-1].sequence_length_ == search.best_params_[
        "seq__sequence_length"]
    fitted = pipe.fit(images)[-1]
    assert fitted.sequence_length == "auto" and fitted.sequence_length_ == 4
    X4 = pipe[0].transform(images)
    np.testing.assert_array_equal(fitted.transform(np.asarray(X4)), fitted.transform(X4))
    X6 = SequenceTransformer(sequence_length=6, image_shape=(8, 8)).fit_transform(images)
    with pytest.raises(ValueError, match="holds sequences of 6 frames"):
        fitted.transform(X6)
    with pytest.raises(ValueError, match="sequence_length='auto' takes the number of "
                                         "frames from input that states it"):
        TopographicVAE(**tiny).fit(np.asarray(X4))
    assert VAE(n_components=2, hidden_layer_sizes=(8,), max_epochs=1).fit(
        np.asarray(X4)).sequence_length_ == 1  # a VAE's plain row is one frame


def test_a_per_frame_scorer_compares_sequence_lengths():
    from sklearn.model_selection import GridSearchCV

    from sktvae.metrics import log_likelihood_per_frame

    images, pipe = _digits_and_pipeline(40)
    search = GridSearchCV(pipe, {"seq__sequence_length": [2, 4]}, cv=2,
                          scoring=log_likelihood_per_frame).fit(images)
    for S, score in zip((2, 4), search.cv_results_["mean_test_score"]):
        pipe.set_params(seq__sequence_length=S).fit(images[:20])
        assert log_likelihood_per_frame(pipe, images[20:]) == pytest.approx(
            pipe.score(images[20:]) / S)
        assert -100 < score < 0  # nats per frame of 64 pixels, not per sequence
    with pytest.raises(TypeError, match="fitted TopographicVAE or VAE"):
        log_likelihood_per_frame(SequenceTransformer(), images)


def test_keep_frames_gives_the_observed_frames_a_pipelines_model_forecasts_from():
    from sklearn.base import clone

    images, pipe = _digits_and_pipeline(30)
    pipe.fit(images)
    whole = pipe[0].transform(images)
    seen = clone(pipe[0]).set_params(keep_frames=2).fit(images).transform(images)
    assert seen.sequence_length == 2
    np.testing.assert_array_equal(seen, whole[:, :2 * 64])  # the same draw, cut short
    forecast = pipe[-1].predict_sequence(seen)  # frames 2 and 3
    assert forecast.shape == (30, 2 * 64)
    with pytest.raises(ValueError, match="keep_frames=5 is more than"):
        clone(pipe[0]).set_params(keep_frames=5).fit(images).transform(images)


def _digits_and_pipeline(n):
    """``n`` 8 x 8 digits and a tiny Pipeline of 4-frame rotations into a TVAE."""
    from sklearn.pipeline import Pipeline

    from sktvae import TopographicVAE
    from sktvae.datasets import load_digits_images

    images = load_digits_images(size=8, return_X_y=True)[0][:n]
    return images, Pipeline([
        ("seq", SequenceTransformer(sequence_length=4, image_shape=(8, 8), random_state=0)),
        ("tvae", TopographicVAE(2, 4, hidden_layer_sizes=(8,), max_epochs=1,
                                temporal_window=1, random_state=0))])
