"""Image data sets: scikit-learn's embedded digits and real MNIST (local file or cached).

Nothing here downloads unless asked to: ``load_digits_images`` reads the copy that ships
with scikit-learn, and ``fetch_mnist`` reads a local file, then its cache, and only then
downloads once (verified by SHA-256) when ``download_if_missing=True``.
"""

import gzip
import hashlib
import os
import shutil
import tempfile
import urllib.request
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import get_data_home, load_digits
from sklearn.utils import Bunch
from torch.nn import functional as F

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
              "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def load_digits_images(size=8, *, padding=0, return_X_y=False):
    """scikit-learn's 8x8 handwritten digits as images in [0, 1], optionally resized.

    Parameters
    ----------
    size : int, default=8
        Side of the returned digit in pixels; other than 8, the digits are resized
        bilinearly (e.g. 16 or 28 so that rotations keep detail).
    padding : int, default=0
        Pixels of zero border added around each resized digit, so that rotated or
        zoomed copies stay inside the frame.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : Bunch or tuple
        ``data`` of shape ``(1797, (size + 2 * padding) ** 2)`` float32 in [0, 1],
        ``target`` the digit classes, ``image_shape`` the ``(height, width)``.

    Examples
    --------
    >>> from sktvae.datasets import load_digits_images
    >>> digits = load_digits_images(size=16, padding=2)
    >>> digits.data.shape, digits.image_shape
    ((1797, 400), (20, 20))
    """
    if not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer; got {size!r}.")
    if not isinstance(padding, int) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer; got {padding!r}.")
    digits = load_digits()
    images = torch.from_numpy(digits.images.astype(np.float32) / 16.0)[:, None]
    if size != 8:
        images = F.interpolate(images, size=(size, size), mode="bilinear",
                               align_corners=False).clamp_(0.0, 1.0)
    images = F.pad(images, (padding,) * 4)
    side = size + 2 * padding
    data = images.reshape(len(images), side * side).numpy()
    if return_X_y:
        return data, digits.target
    return Bunch(data=data, target=digits.target, image_shape=(side, side))


def fetch_mnist(data_home=None, path=None, *, download_if_missing=True, return_X_y=False):
    """MNIST from a local file, the cache, or (once, checksum-verified) the network.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder, scikit-learn's convention (``~/scikit_learn_data`` or
        ``$SCIKIT_LEARN_DATA``); MNIST is kept in ``sktvae_mnist/mnist.npz`` inside it.
    path : str or path-like, default=None
        A local ``.npz`` (keys ``x_train``, ``y_train``, ``x_test``, ``y_test``) or a
        folder of the four IDX files (optionally gzipped). Read as it is; the cache is
        not used.
    download_if_missing : bool, default=True
        Download into the cache when it is empty; if False, raise ``OSError`` instead.
    return_X_y : bool, default=False
        Return ``(x_train, y_train, x_test, y_test)`` instead of a Bunch.

    Returns
    -------
    data : Bunch or tuple
        ``x_train`` ``(60000, 28, 28)`` and ``x_test`` ``(10000, 28, 28)`` uint8 images,
        ``y_train`` and ``y_test`` labels.

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sktvae.datasets import fetch_mnist
    >>> tiny = os.path.join(tempfile.mkdtemp(), "tiny.npz")
    >>> images = np.zeros((2, 28, 28), np.uint8)
    >>> np.savez(tiny, x_train=images, y_train=[0, 1], x_test=images, y_test=[2, 3])
    >>> fetch_mnist(path=tiny).x_train.shape
    (2, 28, 28)
    """
    if path is not None:
        arrays = _read_mnist(Path(path))
    else:
        cached = Path(get_data_home(data_home)) / "sktvae_mnist" / "mnist.npz"
        if not cached.exists():
            if not download_if_missing:
                raise OSError(f"MNIST is not in the cache ({cached}) and "
                              "download_if_missing=False. Pass path= to a local copy.")
            _download(MNIST_URL, cached, MNIST_SHA256)
        arrays = _read_mnist(cached)
    if return_X_y:
        return tuple(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    return Bunch(**arrays)


def _read_mnist(path):
    if path.is_dir():
        return {key: _read_idx(path, name) for key, name in _IDX_FILES.items()}
    if not path.exists():
        raise FileNotFoundError(f"No MNIST file or folder at {path}.")
    with np.load(path, allow_pickle=False) as data:
        missing = set(_IDX_FILES) - set(data.files)
        if missing:
            raise ValueError(f"{path} lacks the arrays {sorted(missing)}; an MNIST .npz "
                             "holds x_train, y_train, x_test and y_test.")
        return {key: data[key] for key in _IDX_FILES}


def _read_idx(folder, name):
    """One IDX file (the format MNIST is distributed in), plain or gzipped."""
    for candidate, opener in ((folder / name, open), (folder / f"{name}.gz", gzip.open)):
        if candidate.exists():
            with opener(candidate, "rb") as f:
                raw = f.read()
            break
    else:
        raise FileNotFoundError(f"{folder} has no {name} or {name}.gz.")
    if raw[:2] != b"\x00\x00" or raw[2] != 0x08:
        raise ValueError(f"{name} is not an IDX file of unsigned bytes.")
    ndim = raw[3]
    shape = tuple(int.from_bytes(raw[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url, target, sha256):
    """Download to a temporary file, verify its checksum, then move it into place."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(fd)
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as f:
            shutil.copyfileobj(response, f)
        got = _sha256(tmp)
        if got != sha256:
            raise OSError(f"Checksum mismatch for {url}: expected {sha256}, got {got}. "
                          "The file was discarded; try again or pass path= to a copy.")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
