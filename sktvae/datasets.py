"""Image data sets: scikit-learn's embedded digits, real MNIST and dSprites (local file
or cached), and dSprites-style sprites drawn from their factors.

Nothing here downloads unless asked to: ``load_digits_images`` reads the copy that ships
with scikit-learn, and ``fetch_mnist`` reads a local file, then its cache, and only then
downloads once (scikit-learn's ``fetch_file``: retried, verified by SHA-256) when
``download_if_missing=True``.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import socket
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.datasets import fetch_file, get_data_home, load_digits
from sklearn.utils import Bunch
from torch.nn import functional as F

from ._validation import is_int as _is_int
from ._sprites import make_sprite_sequences, make_sprites, sprite_grid_sequences

__all__ = ["fetch_dsprites", "fetch_mnist", "load_digits_images", "make_sprite_sequences",
           "make_sprites", "sprite_grid_sequences"]

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_DOWNLOAD_RETRIES, _RETRY_DELAY = 3, 1.0
_IDX_FILES = {"x_train": "train-images-idx3-ubyte", "y_train": "train-labels-idx1-ubyte",
              "x_test": "t10k-images-idx3-ubyte", "y_test": "t10k-labels-idx1-ubyte"}


def load_digits_images(size: int = 8, *, padding: int = 0, return_X_y: bool = False
                       ) -> Bunch | tuple[NDArray[np.float32], NDArray[np.int64]]:
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
    if not _is_int(size) or size < 1:
        raise ValueError(f"size must be a positive integer; got {size!r}.")
    if not _is_int(padding) or padding < 0:
        raise ValueError(f"padding must be a non-negative integer; got {padding!r}.")
    digits = load_digits()
    size, padding = int(size), int(padding)
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


def fetch_mnist(data_home: str | os.PathLike | None = None,
                path: str | os.PathLike | None = None, *, download_if_missing: bool = True,
                return_X_y: bool = False) -> Bunch | tuple[NDArray[np.uint8], ...]:
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
    if path is None:
        path = _cached("MNIST", data_home, "sktvae_mnist/mnist.npz", MNIST_URL,
                       download_if_missing, sha256=MNIST_SHA256)
    arrays = _read_mnist(Path(path))
    if return_X_y:
        return tuple(arrays[k] for k in ("x_train", "y_train", "x_test", "y_test"))
    return Bunch(**arrays)


def _read_mnist(path):
    if path.is_dir():
        arrays = {key: _read_idx(path, name) for key, name in _IDX_FILES.items()}
    elif not path.exists():
        raise FileNotFoundError(f"No MNIST file or folder at {path}.")
    else:
        arrays = _read_npz(path)
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(
                f"{path}: x_{split} has shape {images.shape} and y_{split} {labels.shape}; "
                f"MNIST needs images (n, height, width) and n labels (n,).")
    return arrays


def _read_npz(path, keys=tuple(_IDX_FILES), what="an MNIST .npz"):
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = set(keys) - set(data.files)
            if missing:
                raise ValueError(f"{path} lacks the arrays {sorted(missing)}; {what} "
                                 f"holds {', '.join(keys)}.")
            return {key: data[key] for key in keys}
    except (zipfile.BadZipFile, EOFError, OSError, zlib.error) as error:
        raise ValueError(
            f"Cannot read {path}: it is truncated, damaged or not an .npz file "
            f"({type(error).__name__}: {error}). Delete it and fetch it again, or pass "
            "path= to an intact copy.") from error


# What each IDX file holds: labels are (n,), images (n, 28, 28).
_IDX_DIMS = {name: 1 if name.endswith("labels-idx1-ubyte") else 3
             for name in _IDX_FILES.values()}
_MAX_IDX_BYTES = 2 ** 31  # 2 GiB: 40 times MNIST's training images


def _read_idx(folder, name):
    """One IDX file (the format MNIST is distributed in), plain or gzipped.

    The header is read and checked first; then exactly the bytes it announces, so a
    small gzip that would expand to far more is refused without expanding it.
    """
    for candidate, opener in ((folder / name, open), (folder / f"{name}.gz", gzip.open)):
        if candidate.exists():
            break
    else:
        raise FileNotFoundError(f"{folder} has no {name} or {name}.gz.")
    try:
        with opener(candidate, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[:3] != b"\x00\x00\x08" or magic[3] != _IDX_DIMS[name]:
                raise ValueError(
                    f"{candidate} is not an IDX file of {_IDX_DIMS[name]}-d unsigned "
                    "bytes (its first bytes should be 00 00 08 "
                    f"{_IDX_DIMS[name]:02x}).")
            header = f.read(4 * magic[3])
            shape = tuple(int.from_bytes(header[i:i + 4], "big")
                          for i in range(0, len(header), 4))
            size = math.prod(shape)
            if len(header) < 4 * magic[3] or size > _MAX_IDX_BYTES:
                raise ValueError(f"{candidate}: its header announces shape {shape}, "
                                 "which is truncated or too large for MNIST.")
            raw = f.read(size + 1)
    except (OSError, EOFError, zlib.error) as error:  # gzip: bad or truncated stream
        raise ValueError(f"Cannot read {candidate}: it is damaged or truncated "
                         f"({type(error).__name__}: {error}).") from error
    if len(raw) != size:
        raise ValueError(
            f"{candidate}: its header announces shape {shape} ({size} bytes), but it "
            f"holds {'fewer' if len(raw) < size else 'more'}: it is truncated or "
            "damaged.")
    return np.frombuffer(raw, np.uint8).reshape(shape)


def _cached(what, data_home, name, url, download_if_missing, **checksum):
    """The path of ``name`` in the cache (scikit-learn's data home), downloaded there
    once (``checksum``: ``sha256=`` or ``md5=``) when it is missing and allowed."""
    cached = Path(get_data_home(data_home)) / name
    if not cached.exists():
        if not download_if_missing:
            raise OSError(f"{what} is not in the cache ({cached}) and "
                          "download_if_missing=False. Pass path= to a local copy.")
        _download(url, cached, **checksum)
    return cached


def _download(url, target, *, sha256=None, md5=None, timeout=60.0):
    """Download into ``target`` with scikit-learn's ``fetch_file``: retried on network
    errors, verified by SHA-256 (or, where only an MD5 is published, by that),
    written to a temporary file and moved into place, so a failed or damaged download
    leaves nothing behind.

    ``timeout`` bounds every network read in seconds (urllib waits forever by
    default). Whatever goes wrong, the error names the URL and the way round it
    (``path=``).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    advice = (f"Download {url} yourself and pass path= to the file, or set data_home= "
              f"to a folder that holds {target.parent.name}/{target.name}.")
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)  # fetch_file's urlretrieve takes no timeout
    try:
        # fetch_file checks a SHA-256 before it moves the file into place; an MD5 is
        # checked here, on a file not yet under the name the cache is read by
        name = target.name if md5 is None else target.name + ".unverified"
        fetched = fetch_file(url, folder=target.parent, local_filename=name, sha256=sha256,
                             n_retries=_DOWNLOAD_RETRIES, delay=_RETRY_DELAY)
        if md5 is not None:
            got = _md5(fetched)
            if got != md5:
                fetched.unlink()
                raise OSError(f"the MD5 checksum of {target.name} ({got}) differs from "
                              f"expected ({md5})")
            os.replace(fetched, target)
    except OSError as error:  # URLError, timeouts and a checksum mismatch
        raise OSError(f"Could not download {url} ({error}). {advice}") from error
    finally:
        socket.setdefaulttimeout(previous)


def _md5(path):
    digest = hashlib.md5()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# --- dSprites ----------------------------------------------------------------------
DSPRITES_URL = ("https://github.com/deepmind/dsprites-dataset/raw/master/"
                "dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz")
# DeepMind publishes no checksum; this is the one other projects verify the file by.
DSPRITES_MD5 = "7da33b31b13a06f4b04a70402ce90c2e"
DSPRITES_FACTORS = ("color", "shape", "scale", "orientation", "x", "y")


def fetch_dsprites(data_home: str | os.PathLike | None = None,
                   path: str | os.PathLike | None = None, *,
                   download_if_missing: bool = True) -> Bunch:
    """The real dSprites archive from a local file, the cache, or (once) the network.

    737 280 binary 64 x 64 images of a square, an ellipse or a heart, every combination
    of 6 scales, 40 orientations and 32 x 32 positions (Matthey et al., 2017). The
    archive is about 26 MB to download and 2.9 GiB of images in memory;
    :func:`make_sprites` draws the same kind of image from any factor values with no
    download.

    Parameters
    ----------
    data_home : str or path-like, default=None
        Cache folder, scikit-learn's convention; the archive is kept in
        ``sktvae_dsprites/`` inside it.
    path : str or path-like, default=None
        A local copy of ``dsprites_ndarray_co1sh3sc6or40x32y32_64x64.npz`` (arrays
        ``imgs``, ``latents_values``, ``latents_classes``). Read as it is; the cache is
        not used.
    download_if_missing : bool, default=True
        Download into the cache when it is empty (verified by MD5); if False, raise
        ``OSError`` instead.

    Returns
    -------
    data : Bunch
        ``images`` ``(737280, 64, 64)`` uint8 0/1; ``factors`` ``(737280, 6)`` float64
        values and ``factor_classes`` ``(737280, 6)`` their grid indices, columns
        named by ``factor_names`` (color, shape, scale, orientation, x, y).

    Examples
    --------
    >>> import numpy as np, tempfile, os
    >>> from sktvae.datasets import fetch_dsprites
    >>> tiny = os.path.join(tempfile.mkdtemp(), "dsprites.npz")
    >>> np.savez(tiny, imgs=np.zeros((2, 64, 64), np.uint8),
    ...          latents_values=np.zeros((2, 6)), latents_classes=np.zeros((2, 6), int))
    >>> fetch_dsprites(path=tiny).images.shape
    (2, 64, 64)
    """
    if path is None:
        path = _cached("dSprites", data_home,
                       "sktvae_dsprites/" + DSPRITES_URL.rsplit("/", 1)[1], DSPRITES_URL,
                       download_if_missing, md5=DSPRITES_MD5)
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"No dSprites file at {path}.")
    arrays = _read_npz(path, ("imgs", "latents_values", "latents_classes"),
                       "the dSprites .npz")
    images, values = arrays["imgs"], arrays["latents_values"]
    if images.ndim != 3 or values.shape != (len(images), len(DSPRITES_FACTORS)):
        raise ValueError(f"{path}: imgs has shape {images.shape} and latents_values "
                         f"{values.shape}; dSprites holds images (n, 64, 64) and "
                         f"{len(DSPRITES_FACTORS)} factor values per image.")
    return Bunch(images=images, factors=values, factor_classes=arrays["latents_classes"],
                 factor_names=DSPRITES_FACTORS)
