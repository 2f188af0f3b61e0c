"""Data loaders: embedded digits, MNIST from .npz, IDX, and the checksum-verified cache."""

import gzip
import hashlib
import io

import numpy as np
import pytest

from sktvae import datasets
from sktvae.datasets import fetch_mnist, load_digits_images


def test_load_digits_images_sizes():
    data = load_digits_images()
    assert data.data.shape == (1797, 64) and data.image_shape == (8, 8)
    assert data.data.min() == 0 and data.data.max() == 1
    X, y = load_digits_images(size=28, padding=2, return_X_y=True)
    assert X.shape == (1797, 32 * 32) and X.dtype == np.float32 and y.shape == (1797,)
    assert X.reshape(-1, 32, 32)[:, :2].max() == 0  # the padding is empty
    with pytest.raises(ValueError, match="size"):
        load_digits_images(size=0)


@pytest.fixture
def tiny_mnist(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8),
              "y_train": rng.integers(0, 10, 5, dtype=np.uint8),
              "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8),
              "y_test": rng.integers(0, 10, 3, dtype=np.uint8)}
    path = tmp_path / "tiny.npz"
    np.savez(path, **arrays)
    return path, arrays


def _write_idx(path, array, gz):
    header = bytes([0, 0, 8, array.ndim]) + b"".join(
        int(s).to_bytes(4, "big") for s in array.shape)
    with (gzip.open if gz else open)(path, "wb") as f:  # closed: gzip writes its trailer
        f.write(header + array.tobytes())


def test_fetch_mnist_from_npz_and_idx(tiny_mnist, tmp_path):
    path, arrays = tiny_mnist
    got = fetch_mnist(path=path)
    for key, value in arrays.items():
        np.testing.assert_array_equal(got[key], value)
    folder = tmp_path / "idx"
    folder.mkdir()
    for i, (key, name) in enumerate(datasets._IDX_FILES.items()):
        suffix = ".gz" if i % 2 else ""
        _write_idx(folder / f"{name}{suffix}", arrays[key], gz=bool(suffix))
    x_train, y_train, x_test, y_test = fetch_mnist(path=folder, return_X_y=True)
    np.testing.assert_array_equal(x_test, arrays["x_test"])
    np.testing.assert_array_equal(y_train, arrays["y_train"])


def test_fetch_mnist_downloads_once_into_the_cache(tiny_mnist, tmp_path, monkeypatch):
    path, arrays = tiny_mnist
    payload = path.read_bytes()
    calls = []

    def fake_urlopen(url, timeout):
        calls.append(url)
        return io.BytesIO(payload)

    monkeypatch.setattr(datasets.urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setattr(datasets, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    home = tmp_path / "home"
    first = fetch_mnist(data_home=home)
    second = fetch_mnist(data_home=home)
    assert calls == [datasets.MNIST_URL]  # the second call reads the cache
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert (home / "sktvae_mnist" / "mnist.npz").exists()


def test_fetch_mnist_rejects_a_bad_checksum(tiny_mnist, tmp_path, monkeypatch):
    path, _ = tiny_mnist
    monkeypatch.setattr(datasets.urllib.request, "urlopen",
                        lambda url, timeout: io.BytesIO(path.read_bytes()))
    home = tmp_path / "home"
    with pytest.raises(OSError, match="Checksum mismatch"):
        fetch_mnist(data_home=home)
    assert list((home / "sktvae_mnist").iterdir()) == []  # nothing half-written is kept


def test_fetch_mnist_without_download(tmp_path):
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_mnist(data_home=tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError):
        fetch_mnist(path=tmp_path / "nothing.npz")
