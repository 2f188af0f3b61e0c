"""Data loaders: embedded digits, MNIST from .npz, IDX, and the checksum-verified cache."""

import gzip
import hashlib
import io
import socket
import urllib.error
import urllib.request

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
    opener = urllib.request.urlopen

    def counting_urlopen(url, *args, **kwargs):
        calls.append(url)
        return opener(url, *args, **kwargs)

    monkeypatch.setattr(urllib.request, "urlopen", counting_urlopen)
    url = f"file://localhost{path}"
    monkeypatch.setattr(datasets, "MNIST_URL", url)
    monkeypatch.setattr(datasets, "MNIST_SHA256", hashlib.sha256(payload).hexdigest())
    home = tmp_path / "home"
    first = fetch_mnist(data_home=home)
    second = fetch_mnist(data_home=home)
    assert calls == [url]  # the second call reads the cache
    np.testing.assert_array_equal(first.x_train, second.x_train)
    assert (home / "sktvae_mnist" / "mnist.npz").read_bytes() == payload


def test_fetch_mnist_rejects_a_bad_checksum(tiny_mnist, tmp_path, monkeypatch):
    path, _ = tiny_mnist
    monkeypatch.setattr(datasets, "MNIST_URL", f"file://localhost{path}")
    home = tmp_path / "home"
    with pytest.raises(OSError, match="Could not download .*checksum.*differs.*path="):
        fetch_mnist(data_home=home)
    assert list((home / "sktvae_mnist").iterdir()) == []  # nothing half-written is kept


def test_fetch_mnist_without_download(tmp_path):
    with pytest.raises(OSError, match="download_if_missing=False"):
        fetch_mnist(data_home=tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError):
        fetch_mnist(path=tmp_path / "nothing.npz")


def test_load_digits_images_takes_numpy_integers_and_refuses_bools():
    assert load_digits_images(size=np.int64(8), padding=np.int32(1)).image_shape == (10, 10)
    with pytest.raises(ValueError, match="size must be an integer in 1 .. 256"):
        load_digits_images(size=True)


def test_damaged_mnist_files_are_named(tiny_mnist, tmp_path):
    path, arrays = tiny_mnist
    raw = path.read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 10):
        broken = tmp_path / f"cut{cut}.npz"
        broken.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=f"Cannot read .*cut{cut}.npz: it is "
                                             "truncated, damaged or not an .npz"):
            fetch_mnist(path=broken)
    short = tmp_path / "short.npz"
    np.savez(short, **{**arrays, "y_train": arrays["y_train"][:3]})  # 5 images, 3 labels
    with pytest.raises(ValueError, match=r"x_train has shape \(5, 28, 28\) and y_train "
                                         r"\(3,\)"):
        fetch_mnist(path=short)


def _idx_folder(tmp_path, arrays, gz=True):
    folder = tmp_path / "idx"
    folder.mkdir(exist_ok=True)
    for key, name in datasets._IDX_FILES.items():
        _write_idx(folder / f"{name}.gz", arrays[key], gz=gz)
    return folder


def test_idx_files_are_read_no_further_than_their_header_says(tiny_mnist, tmp_path):
    _, arrays = tiny_mnist
    folder = _idx_folder(tmp_path, arrays)
    images = folder / "train-images-idx3-ubyte.gz"
    # A small gzip that expands to far more than its header announces (a "bomb").
    header = bytes([0, 0, 8, 3]) + b"".join(int(s).to_bytes(4, "big") for s in (5, 28, 28))
    with gzip.open(images, "wb", compresslevel=9) as f:
        f.write(header + bytes(5 * 28 * 28))
        for _ in range(100):  # 100 MiB of zeros, ~100 KB compressed
            f.write(bytes(2 ** 20))
    assert images.stat().st_size < 2 * 2 ** 20
    opened = []
    real_open = gzip.open

    class Counting:
        def __init__(self, f):
            self.f, self.read_bytes = f, 0

        def read(self, n=-1):
            assert n >= 0, "an unbounded read"
            data = self.f.read(n)
            self.read_bytes += len(data)
            return data

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def counting_open(*args, **kwargs):
        opened.append(Counting(real_open(*args, **kwargs)))
        return opened[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(datasets.gzip, "open", counting_open)
        with pytest.raises(ValueError, match=r"announces shape \(5, 28, 28\) \(3920 bytes\), "
                                             "but it holds more"):
            fetch_mnist(path=folder)
    assert max(c.read_bytes for c in opened) <= 4000  # not 100 MiB
    # A truncated file, a header of another kind, a gzip stream cut short:
    _write_idx(images, arrays["x_train"][:4].reshape(-1)[:3000].reshape(1, 3000), gz=True)
    with pytest.raises(ValueError, match="is not an IDX file of 3-d unsigned bytes"):
        fetch_mnist(path=folder)
    _write_idx(images, arrays["x_train"], gz=True)
    whole = images.read_bytes()
    images.write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match="Cannot read .*train-images-idx3-ubyte.gz: it "
                                         "is damaged or truncated"):
        fetch_mnist(path=folder)
    plain = folder / "train-images-idx3-ubyte"
    images.unlink()
    _write_idx(plain, arrays["x_train"], gz=False)
    plain.write_bytes(plain.read_bytes()[:-5])
    with pytest.raises(ValueError, match="holds fewer: it is truncated"):
        fetch_mnist(path=folder)


def test_a_download_is_retried_with_a_timeout_on_each_read(tmp_path, monkeypatch):
    seen = []

    def stalled(url, *args, timeout=None, **kwargs):
        seen.append(timeout)
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib.request, "urlopen", stalled)
    monkeypatch.setattr(datasets, "_RETRY_DELAY", 0.0)
    with pytest.warns(UserWarning, match="Retry downloading"):
        with pytest.raises(OSError, match=f"Could not download {datasets.MNIST_URL} "
                                          r"\(timed out\).*pass path="):
            fetch_mnist(data_home=tmp_path)
    assert seen == [60.0] * (1 + datasets._DOWNLOAD_RETRIES)
    assert socket.getdefaulttimeout() is None  # the process's default is untouched
    assert list((tmp_path / "sktvae_mnist").iterdir()) == []  # no partial file left


def test_download_errors_name_the_url_and_path(tmp_path, monkeypatch):
    import urllib.error

    def refuse(url, *args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    monkeypatch.setattr(datasets, "_RETRY_DELAY", 0.0)
    with pytest.warns(UserWarning, match="Retry downloading"), \
            pytest.raises(OSError, match=f"Could not download {datasets.MNIST_URL} "
                                         r"\(.*Name or service not known.*\).*path="):
        fetch_mnist(data_home=tmp_path)
    assert list((tmp_path / "sktvae_mnist").iterdir()) == []


def test_a_trickling_server_meets_one_overall_deadline(tmp_path, monkeypatch):
    """A server that sends a byte at a time never times a read out; the deadline
    ends the download, removes the partial file and names the URL and path=."""
    import http.server
    import threading
    import time

    class Trickle(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Trickle)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_port}/mnist.npz"
        monkeypatch.setattr(datasets, "MNIST_URL", url)
        monkeypatch.setattr(datasets, "_DOWNLOAD_DEADLINE", 0.5)
        start = time.monotonic()
        with pytest.raises(OSError, match=f"Could not download {url} .*deadline.*path="):
            fetch_mnist(data_home=tmp_path)
        assert time.monotonic() - start < 5
        assert list((tmp_path / "sktvae_mnist").iterdir()) == []  # no .part left
    finally:
        server.shutdown()
