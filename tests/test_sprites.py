"""dSprites-style sprites from their factors, sprite sequences, the dSprites fetcher
and CapCorr per factor."""

import hashlib
import math

import numpy as np
import pytest

from sktvae import datasets
from sktvae._sprites import _MARGIN
from sktvae.datasets import (
    fetch_dsprites,
    make_sprite_sequences,
    make_sprites,
    sprite_grid_sequences,
)
from sktvae.metrics import capsule_roll_correlation

from conftest import tiny_tvae


def _centroid(image, size):
    rows, cols = np.nonzero(image.reshape(size, size))
    return cols.mean(), rows.mean()


@pytest.mark.parametrize("shape", ["square", "ellipse", "heart"])
def test_area_grows_with_the_square_of_scale(shape):
    area = make_sprites(shape, [0.5, 0.75, 1.0], 0.3, 0.5, 0.5, image_size=128).sum(1)
    np.testing.assert_allclose(area / area[-1], [0.25, 0.5625, 1.0], rtol=0.04)


def test_shapes_have_their_own_symmetries():
    square = make_sprites("square", 0.9, [0.4, 0.4 + math.pi / 2], 0.5, 0.5, image_size=96)
    assert np.mean(square[0] != square[1]) < 1e-3  # a quarter turn: itself
    ellipse = make_sprites("ellipse", 0.9, [0.4, 0.4 + math.pi / 2, 0.4 + math.pi],
                           0.5, 0.5, image_size=96)
    assert np.mean(ellipse[0] != ellipse[2]) < 1e-3  # a half turn: itself
    assert np.mean(ellipse[0] != ellipse[1]) > 0.01  # a quarter turn is not
    heart = make_sprites("heart", 0.9, [0.0, math.pi], 0.5, 0.5, image_size=96)
    assert np.mean(heart[0] != heart[1]) > 0.01  # upside down is another image
    area = make_sprites(["square", "ellipse", "heart"], 1.0, 0.0, 0.5, 0.5).sum(1)
    assert area[1] < area[2] < area[0]  # the 2:1 ellipse is the smallest


def test_a_position_shift_moves_the_centroid():
    size = 64
    images = make_sprites("heart", 0.7, 1.0, [0.2, 0.7], [0.4, 0.4], image_size=size)
    (x0, y0), (x1, y1) = (_centroid(im, size) for im in images)
    travel = 0.5 * (1 - 2 * _MARGIN) * size  # half of the centre's range
    assert x1 - x0 == pytest.approx(travel, abs=0.5) and y1 == pytest.approx(y0, abs=0.5)
    down = make_sprites("square", 0.7, 0.0, 0.5, [0.0, 1.0], image_size=size)
    assert _centroid(down[1], size)[1] > _centroid(down[0], size)[1]  # y grows downwards


def test_every_sprite_stays_inside_the_image():
    corners = make_sprites(["square", "heart"] * 2, 1.0, math.pi / 4, [0, 1, 0, 1],
                           [0, 0, 1, 1]).reshape(4, 64, 64)
    border = np.concatenate([corners[:, 0], corners[:, -1], corners[:, :, 0],
                             corners[:, :, -1]], axis=1)
    assert border.sum() == 0  # the largest sprite, turned, in each corner: not clipped
    assert np.all(corners.sum((1, 2)) > 240)  # and drawn whole


def test_factors_broadcast_and_are_checked():
    assert make_sprites([0, 1, 2], 1.0, 0.0, 0.5, 0.5).shape == (3, 64 * 64)
    assert set(np.unique(make_sprites("ellipse", 0.6, 2.0, 0.3, 0.8))) == {0.0, 1.0}
    with pytest.raises(ValueError, match="Unknown shape 'circle': the shapes are square, "
                                         "ellipse, heart"):
        make_sprites("circle", 1.0, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"scale must lie in \[0.5, 1\]"):
        make_sprites("square", 1.2, 0.0, 0.5, 0.5)
    with pytest.raises(ValueError, match=r"x must lie in \[0, 1\]"):
        make_sprites("square", 1.0, 0.0, -0.1, 0.5)
    with pytest.raises(ValueError, match=r"orientation must lie in \[0, 6.283\]"):
        make_sprites("square", 1.0, 7.0, 0.5, 0.5)
    with pytest.raises(ValueError, match="image_size must be an int >= 16"):
        make_sprites("square", 1.0, 0.0, 0.5, 0.5, image_size=8)
    with pytest.raises(ValueError, match="indices 0 .. 2"):
        make_sprites(3, 1.0, 0.0, 0.5, 0.5)


def test_sequences_move_one_factor_through_a_cycle():
    X, f = make_sprite_sequences(40, sequence_length=8, image_size=32, random_state=0)
    assert X.shape == (40, 8 * 32 * 32) and X.dtype == np.float32
    assert set(f.moving) == {"x", "y", "orientation", "scale"}
    for i in range(40):
        for name in ("x", "y", "orientation", "scale"):
            varies = np.ptp(f[name][i]) > 0
            assert varies == (f.moving[i] == name)
    # out and back: one step per frame is 2/S of the range, and the cycle closes
    xs = f.x[f.moving == "x"]
    steps = np.abs(np.diff(np.concatenate([xs, xs[:, :1]], 1), axis=1))
    assert np.all(steps <= 2 / 8 + 1e-9)
    assert np.all(np.isclose(steps, 2 / 8).sum(1) >= 8 - 2)  # all but at the turns
    assert np.all(np.ptp(xs, axis=1) > 0.7)  # out to near both ends
    turns = f.orientation[f.moving == "orientation"]
    np.testing.assert_allclose(np.diff(np.unwrap(turns), axis=1), 2 * np.pi / 8)
    # the frames are the sprites of those factor values
    i = 3
    frames = make_sprites(np.repeat(f.shape[i], 8), f.scale[i], f.orientation[i], f.x[i],
                          f.y[i], image_size=32)
    np.testing.assert_array_equal(X[i].reshape(8, -1), frames)


def test_a_wrapping_path_crosses_the_range_once_and_jumps_back():
    _, f = make_sprite_sequences(30, sequence_length=6, factors=("x", "scale"), path="wrap",
                                 image_size=16, random_state=0)
    xs = f.x[f.moving == "x"]
    steps = np.diff(np.concatenate([xs, xs[:, :1]], 1), axis=1)
    # five steps of +1/6 of the range and one jump back of -5/6, somewhere in the cycle
    np.testing.assert_allclose(np.sort(steps, axis=1)[:, 1:], 1 / 6)
    np.testing.assert_allclose(np.sort(steps, axis=1)[:, 0], -5 / 6)
    with pytest.raises(ValueError, match="path must be 'out_and_back', 'wrap' or 'grid'"):
        make_sprite_sequences(2, path="loop")


def test_composed_sequences_move_every_listed_factor():
    X, f = make_sprite_sequences(6, sequence_length=5, factors=("x", "scale"),
                                 combine="compose", image_size=16, random_state=1)
    assert set(f.moving) == {"compose"}
    assert np.all(np.ptp(f.x, axis=1) > 0) and np.all(np.ptp(f.scale, axis=1) > 0)
    assert np.all(np.ptp(f.y, axis=1) == 0)
    again, _ = make_sprite_sequences(6, sequence_length=5, factors=("x", "scale"),
                                     combine="compose", image_size=16, random_state=1)
    np.testing.assert_array_equal(X, again)  # the same seed, the same sequences


@pytest.mark.parametrize("kwargs, match", [
    (dict(factors=("x", "colour")), "Unknown factor 'colour': the factors are x, y, "
                                    "orientation, scale"),
    (dict(sequence_length=1), "sequence_length must be an int >= 2"),
    (dict(shapes=("square", "star")), "Unknown shape 'star'"),
    (dict(combine="all"), "combine must be 'random' or 'compose'"),
    (dict(image_size=10), "image_size must be an int >= 16"),
])
def test_bad_sequence_requests_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sprite_sequences(2, **kwargs)


def test_capsule_roll_correlation_per_factor_and_per_capsule(monkeypatch):
    X, f = make_sprite_sequences(6, sequence_length=4, factors=("x", "y"), image_size=16,
                                 random_state=0)
    est = tiny_tvae(sequence_length=4).fit(X)
    rng = np.random.default_rng(0)
    t0 = rng.normal(size=(6, 1, 2, 4))
    rolling = np.concatenate([np.roll(t0, l, axis=-1) for l in range(4)], axis=1)
    still = np.repeat(t0, 4, axis=1)
    # the x sequences' capsules roll with the frame; the y sequences' do not move
    T = np.where((f.moving == "x")[:, None, None, None], rolling, still)
    monkeypatch.setattr(est, "transform", lambda X: T.reshape(len(X), -1))
    by_factor = capsule_roll_correlation(est, X, groups=f.moving)
    assert by_factor == {"x": pytest.approx(1.0), "y": 0.0}
    # capsule 0 rolls, capsule 1 is held still: per capsule 1 and 0
    T = np.concatenate([rolling[:, :, :1], still[:, :, 1:]], axis=2)
    per_capsule = capsule_roll_correlation(est, X, per_capsule=True)
    np.testing.assert_allclose(per_capsule, [1.0, 0.0])
    with pytest.raises(ValueError, match=r"one label per sequence, shape \(6,\)"):
        capsule_roll_correlation(est, X, groups=f.moving[:3])


def test_the_authors_grid_steps_one_factor_one_grid_value_a_frame_wrapping_round():
    from sktvae._sprites import GRID

    X, f = make_sprite_sequences(40, 15, path="grid", image_size=16, random_state=0)
    assert X.shape == (40, 15 * 256)
    assert len(GRID["x"]) == len(GRID["orientation"]) == 15 and len(GRID["scale"]) == 5
    np.testing.assert_allclose([GRID["x"].max(), np.degrees(GRID["orientation"][1]),
                                GRID["scale"].min()], [28 / 31, 360 / 39 * 2, 0.6])
    for name in ("x", "y", "orientation", "scale"):
        index = f[f"{name}_index"]
        moves = f.moving == name
        n = len(GRID[name])
        np.testing.assert_array_equal(np.diff(index[moves], axis=1) % n, 1)
        np.testing.assert_array_equal(np.diff(index[~moves], axis=1), 0)
        np.testing.assert_allclose(f[name], GRID[name][index])


def test_the_authors_capsule_roll_correlation_and_its_floor(monkeypatch):
    """One pair a sequence: frame 0 and the first frame at grid index 0. Capsules that
    roll with the factor score 1; capsules that roll at random score about the floor,
    which is not 0 (sequences that start at index 0 pair frame 0 with itself)."""
    from sktvae.metrics import roll_correlation_floor

    n, S, D = 300, 15, 15
    X, f = make_sprite_sequences(n, S, factors=("x",), path="grid", image_size=16,
                                 random_state=0)
    est = tiny_tvae(sequence_length=S, n_capsules=2, capsule_dim=D, temporal_window=1,
                    max_epochs=0).fit(X[:4])
    rng = np.random.default_rng(0)
    t0 = rng.normal(size=(n, 1, 2, D))
    rolling = np.concatenate([np.roll(t0, l, axis=-1) for l in range(S)], axis=1)
    start = f.x_index[:, 0]
    for T, expected in ((rolling, 1.0), (rng.normal(size=(n, S, 2, D)), None)):
        monkeypatch.setattr(est, "transform", lambda X, T=T: T.reshape(len(X), -1))
        value = capsule_roll_correlation(est, X, method="authors", start_index=start,
                                         n_values=15)
        if expected is not None:
            assert value == pytest.approx(expected)
        else:
            floor = roll_correlation_floor(start, 15, D, random_state=0)
            assert 0.1 < floor < 0.25 and abs(value - floor) < 0.15
    assert capsule_roll_correlation(est, X, per_capsule=True)[0] == pytest.approx(0.0, abs=0.2)
    with pytest.raises(ValueError, match="needs start_index"):
        capsule_roll_correlation(est, X, method="authors")
    with pytest.raises(ValueError, match="method must be"):
        capsule_roll_correlation(est, X, method="author")
    with pytest.raises(ValueError, match="start_index must be 300 ints"):
        capsule_roll_correlation(est, X, method="authors", start_index=start + 15,
                                 n_values=15)


def _tiny_dsprites(path):
    images = make_sprites(["square", "heart"], 1.0, 0.0, 0.5, 0.5).reshape(2, 64, 64)
    np.savez_compressed(path, imgs=images.astype(np.uint8),
                        latents_values=np.array([[1, 1, 1, 0, 0.5, 0.5], [1, 3, 1, 0, 0.5, 0.5]]),
                        latents_classes=np.array([[0, 0, 5, 0, 16, 16], [0, 2, 5, 0, 16, 16]]))
    return images


def test_fetch_dsprites_reads_a_local_copy_and_the_cache_once(tmp_path, monkeypatch):
    source = tmp_path / "source.npz"
    images = _tiny_dsprites(source)
    data = fetch_dsprites(path=source)
    np.testing.assert_array_equal(data.images, images)
    assert data.factor_names[1] == "shape" and data.factors.shape == (2, 6)
    monkeypatch.setattr(datasets, "DSPRITES_URL", f"file://localhost{source}")
    monkeypatch.setattr(datasets, "DSPRITES_MD5",
                        hashlib.md5(source.read_bytes()).hexdigest())
    home = tmp_path / "home"
    np.testing.assert_array_equal(fetch_dsprites(data_home=home).images, images)
    # checked, then moved under its own name: nothing unverified is left beside it
    assert [p.name for p in (home / "sktvae_dsprites").iterdir()] == [
        datasets.DSPRITES_URL.rsplit("/", 1)[1]]
    source.unlink()  # the second call reads the cache
    np.testing.assert_array_equal(fetch_dsprites(data_home=home).images, images)


def test_fetch_dsprites_refuses_a_bad_checksum_and_missing_files(tmp_path, monkeypatch):
    source = tmp_path / "source.npz"
    _tiny_dsprites(source)
    monkeypatch.setattr(datasets, "DSPRITES_URL", f"file://localhost{source}")
    home = tmp_path / "home"
    with pytest.raises(OSError, match="Could not download .*MD5 checksum.*differs.*path="):
        fetch_dsprites(data_home=home)
    assert list((home / "sktvae_dsprites").iterdir()) == []  # nothing kept
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_dsprites(data_home=home, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match="No dSprites file"):
        fetch_dsprites(path=tmp_path / "none.npz")
    np.savez(tmp_path / "other.npz", imgs=np.zeros((2, 64, 64)))
    with pytest.raises(ValueError, match="lacks the arrays.*the dSprites .npz holds imgs"):
        fetch_dsprites(path=tmp_path / "other.npz")


def test_sprite_grid_sequences_start_at_every_grid_point_and_redraw_the_factor():
    from sktvae._sprites import GRID
    from sktvae.datasets import sprite_grid_sequences

    X = sprite_grid_sequences(4, shapes=("heart",), image_size=16, random_state=0)
    assert X.shape == (5 * 15 ** 3, 4 * 256) and X.frame_shape == (1, 16, 16)
    rows = np.array([0, 1, 15 * 15 * 15 - 1, len(X) - 1])  # (scale, orientation, x, y)
    start = np.stack(np.unravel_index(rows, (5, 15, 15, 15)), 1)
    names = ("scale", "orientation", "x", "y")
    moved = set()
    for seed in range(6):
        frames = X.frames(rows, seed).numpy()  # (4, S, 256)
        for r, first in enumerate(start):
            expected = None
            for axis, name in enumerate(names):  # exactly one factor explains the frames
                index = np.repeat(first[None], 4, 0)
                index[:, axis] = (first[axis] + np.arange(4)) % len(GRID[name])
                values = [GRID[n][index[:, i]] for i, n in enumerate(names)]
                drawn = make_sprites("heart", *values, image_size=16)
                if np.array_equal(drawn, frames[r]):
                    expected = name
            assert expected is not None
            moved.add(expected)
    assert len(moved) >= 3  # the factor is redrawn
    np.testing.assert_array_equal(X.frames(rows), X.frames(rows))  # the fixed draw
    with pytest.raises(TypeError, match="sequence of shape names"):
        sprite_grid_sequences(shapes="square")


def test_fetch_dsprites_refuses_files_that_are_not_dsprites(tmp_path):
    """Wrong shapes and dtypes, a .npy, a text file and flipped bytes each name the
    file; none is returned as if it were dSprites (issue 42)."""
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, imgs=np.zeros((6, 3, 3)), latents_values=np.zeros((2, 6)),
             latents_classes=np.zeros((2, 6)))
    with pytest.raises(ValueError, match="wrong.npz is not dSprites"):
        fetch_dsprites(path=wrong)
    grey = tmp_path / "grey.npz"
    np.savez(grey, imgs=np.full((2, 64, 64), 7, np.uint8), latents_values=np.zeros((2, 6)),
             latents_classes=np.zeros((2, 6), int))
    with pytest.raises(ValueError, match="values up to 7"):
        fetch_dsprites(path=grey)
    npy, text = tmp_path / "a.npy", tmp_path / "a.txt"
    np.save(npy, np.zeros(3))
    text.write_text("not an archive")
    for path in (npy, text):
        with pytest.raises(ValueError, match=f"Cannot read {path}: .*not an .npz"):
            fetch_dsprites(path=path)
    good = tmp_path / "good.npz"
    np.savez(good, imgs=np.zeros((2, 64, 64), np.uint8), latents_values=np.zeros((2, 6)),
             latents_classes=np.zeros((2, 6), int))
    raw = bytearray(good.read_bytes())
    for offset in range(40, 200, 7):  # inside the first member's header
        flipped = bytearray(raw)
        flipped[offset] ^= 0xFF
        damaged = tmp_path / f"flipped{offset}.npz"
        damaged.write_bytes(bytes(flipped))
        try:
            data = fetch_dsprites(path=damaged)
        except ValueError as error:
            assert str(damaged) in str(error)
        else:  # a flip the format cannot see must still give dSprites' shapes
            assert data.images.shape == (2, 64, 64)


def _fake_dsprites(shapes=(0,)):
    """An archive holding the grid's images of ``shapes``, each image's first row
    holding its own six factor classes (the real one holds sprites)."""
    from sklearn.utils import Bunch

    axes = np.meshgrid(np.zeros(1, int), np.asarray(shapes), 1 + np.arange(5),
                       np.arange(0, 30, 2), np.arange(0, 30, 2), np.arange(0, 30, 2),
                       indexing="ij")
    classes = np.stack([a.ravel() for a in axes], 1)[::-1].copy()  # any order will do
    images = np.zeros((len(classes), 64, 64), np.uint8)
    images[:, 0, :6] = classes
    return Bunch(images=images, factor_classes=classes)


def test_sprite_grid_sequences_take_the_real_archive_s_images_at_the_grid():
    X = sprite_grid_sequences(15, shapes=("square",), dsprites=_fake_dsprites(),
                              random_state=0)
    assert X.shape == (5 * 15 ** 3, 15 * 64 * 64)
    rows = np.random.RandomState(0).choice(len(X), 200, replace=False)
    seen = X.frames(rows, seed=3).numpy()[:, :, :6].astype(int)  # (n, S, 6) classes
    start = np.stack(np.unravel_index(rows, (1, 5, 15, 15, 15)), 1)  # shape, sc, or, x, y
    np.testing.assert_array_equal(seen[:, 0, 2:], np.stack(
        [1 + start[:, 1], 2 * start[:, 2], 2 * start[:, 3], 2 * start[:, 4]], 1))
    steps = np.diff(seen, axis=1)  # one factor moves one grid value a frame, wrapping
    moving = (steps != 0).any(1)
    assert (moving.sum(1) == 1).all() and not moving[:, :2].any()
    for col, step, wrap in ((2, 1, -4), (3, 2, -28), (4, 2, -28), (5, 2, -28)):
        moved = steps[moving[:, col], :, col]
        assert np.isin(moved, (step, wrap)).all()


def test_sprite_grid_sequences_refuse_an_incomplete_archive_or_another_size():
    fake = _fake_dsprites()
    with pytest.raises(ValueError, match="lacks 33750 of the grid's 50625 images"):
        sprite_grid_sequences(15, dsprites=fake)  # the ellipse and heart are missing
    with pytest.raises(ValueError, match="image_size must be 64 with dsprites="):
        sprite_grid_sequences(15, shapes=("square",), image_size=32, dsprites=fake)
    with pytest.raises(TypeError, match="dsprites must be fetch_dsprites"):
        sprite_grid_sequences(15, shapes=("square",), dsprites=np.zeros((3, 64, 64)))
