"""Image data sets: scikit-learn's embedded digits, real MNIST and dSprites (local file
or cached), and dSprites-style sprites drawn from their factors.

Nothing here downloads unless asked to: ``load_digits_images`` reads the copy that ships
with scikit-learn, and ``fetch_mnist`` reads a local file, then its cache, and only then
downloads once (retried, within one deadline, verified by its checksum) when
``download_if_missing=True``.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import time
import urllib.request
import warnings
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from sklearn.datasets import get_data_home, load_digits
from sklearn.utils import Bunch
from torch.nn import functional as F

from ._validation import is_int as _is_int
from ._sprites import make_sprite_sequences, make_sprites, sprite_grid_sequences

__all__ = ["fetch_dsprites", "fetch_mnist", "load_digits_images", "make_sprite_sequences",
           "make_sprites", "sprite_grid_sequences"]

MNIST_URL = "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
MNIST_SHA256 = "731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"
_DOWNLOAD_RETRIES, _RETRY_DELAY = 3, 1.0
_MAX_DIGIT_SIZE = 256  # 1 797 digits of 256 x 256 float32: 470 MB
_DOWNLOAD_DEADLINE = 1800.0  # seconds for a whole download, retries included
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
    if not _is_int(size) or not 1 <= size <= _MAX_DIGIT_SIZE:
        raise ValueError(f"size must be an integer in 1 .. {_MAX_DIGIT_SIZE} (the digits "
                         f"are 8 x 8 pixels, scaled up); got {size!r}.")
    if not _is_int(padding) or not 0 <= padding <= _MAX_DIGIT_SIZE:
        raise ValueError(f"padding must be an integer in 0 .. {_MAX_DIGIT_SIZE}; got "
                         f"{padding!r}.")
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
    def unreadable(error):
        return ValueError(
            f"Cannot read {path}: it is truncated, damaged or not an .npz file "
            f"({type(error).__name__}: {str(error)[:200]}). Delete it and fetch it again, "
            "or pass path= to an intact copy.")

    if not zipfile.is_zipfile(path):  # a .npy, a text file, a truncated archive
        raise unreadable(ValueError("not a zip archive"))
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = set(keys) - set(data.files)
            if missing:
                raise KeyError(f"lacks the arrays {sorted(missing)}; {what} holds "
                               f"{', '.join(keys)}")
            return {key: data[key] for key in keys}
    except KeyError as error:
        raise ValueError(f"{path} {error.args[0]}.") from error
    except Exception as error:  # zip, zlib and npy-header errors of a damaged file
        raise unreadable(error) from error


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
    """Download ``url`` into ``target``: written to ``target.part``, verified by SHA-256
    (or, where only an MD5 is published, by that) and only then moved into place, so a
    failed, stalled or damaged download leaves nothing behind.

    ``timeout`` bounds every network read in seconds; the whole download, retries
    included, must end within ``_DOWNLOAD_DEADLINE`` seconds (a server that trickles
    a byte at a time never finishes otherwise). Network errors are retried
    ``_DOWNLOAD_RETRIES`` times. Whatever goes wrong, the error names the URL and the
    way round it (``path=``).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    advice = (f"Download {url} yourself and pass path= to the file, or set data_home= "
              f"to a folder that holds {target.parent.name}/{target.name}.")
    part = target.with_name(target.name + ".part")
    start = time.monotonic()
    for attempt in range(1 + _DOWNLOAD_RETRIES):
        try:
            _fetch(url, part, timeout, start + _DOWNLOAD_DEADLINE)
            break
        except OSError as error:  # URLError, timeouts, the deadline
            part.unlink(missing_ok=True)
            late = time.monotonic() - start >= _DOWNLOAD_DEADLINE
            if attempt == _DOWNLOAD_RETRIES or late:
                raise OSError(f"Could not download {url} ({getattr(error, 'reason', error)})"
                              f". {advice}") from error
            warnings.warn(f"Retry downloading from url: {url} ({error})", UserWarning)
            time.sleep(_RETRY_DELAY)
    expected, got = (sha256, _digest(part, "sha256")) if sha256 is not None else (
        md5, _digest(part, "md5") if md5 is not None else None)
    if expected is not None and got != expected:
        part.unlink()
        kind = "SHA-256" if sha256 is not None else "MD5"
        raise OSError(f"Could not download {url} (the {kind} checksum of {target.name} "
                      f"({got}) differs from the one expected ({expected})). {advice}")
    os.replace(part, target)


def _fetch(url, part, timeout, deadline):
    """Copy ``url`` into ``part`` block by block, each read bounded by ``timeout`` and
    the whole by ``deadline`` (a ``time.monotonic()`` value)."""
    with urllib.request.urlopen(url, timeout=timeout) as response, open(part, "wb") as f:
        read = getattr(response, "read1", response.read)  # what has arrived, not 64 KiB
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"not whole within the {_DOWNLOAD_DEADLINE:g} s "
                                   "deadline")
            block = read(1 << 16)
            if not block:
                return
            f.write(block)


def _digest(path, name):
    digest = hashlib.new(name)
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
    classes = arrays["latents_classes"]
    n, k = len(images), len(DSPRITES_FACTORS)
    if images.ndim != 3 or images.shape[1:] != (64, 64) or images.dtype.kind not in "uib" \
            or values.shape != (n, k) or values.dtype.kind != "f" \
            or classes.shape != (n, k) or classes.dtype.kind not in "ui":
        raise ValueError(
            f"{path} is not dSprites: imgs is {images.dtype} {images.shape}, "
            f"latents_values {values.dtype} {values.shape} and latents_classes "
            f"{classes.dtype} {classes.shape}; dSprites holds integer 0/1 images (n, 64, "
            f"64), float factor values (n, {k}) and integer factor classes (n, {k}).")
    if images.size and images.max() > 1:
        raise ValueError(f"{path}: imgs holds values up to {images.max()}; dSprites' "
                         "images are 0/1.")
    return Bunch(images=images, factors=values, factor_classes=arrays["latents_classes"],
                 factor_names=DSPRITES_FACTORS)
