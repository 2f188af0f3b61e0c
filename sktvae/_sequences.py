"""``SequenceTransformer``: each image row becomes one sequence of transformed copies.

Every frame of every sequence is built by the same few torch calls over a chunk of
images: one 3x3 inverse homography per frame (rotation, scale and perspective composed),
one ``grid_sample``, and for colour one 3x3 hue matrix per frame. No per-image loop.
"""

from __future__ import annotations

import math
import re
from numbers import Integral

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from scipy.sparse import issparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import Interval, Options, StrOptions
from sklearn.utils.validation import check_is_fitted, validate_data
from torch.nn import functional as F

from ._fresh import FreshSequences

TRANSFORMATIONS = ("rotation", "scale", "hue", "translation", "perspective")
COLORS = {"red": (1.0, 0.0, 0.0), "green": (0.0, 1.0, 0.0), "blue": (0.0, 0.0, 1.0),
          "yellow": (1.0, 1.0, 0.0), "cyan": (0.0, 1.0, 1.0),
          "magenta": (1.0, 0.0, 1.0)}
SCALE_RANGE = (0.60, 1.26)  # the paper's MNIST zoom cycle
PERSPECTIVE_TILT = 0.35     # radians (about 20 degrees) of tilt out of the image plane
PERSPECTIVE_FOCAL = 2.0     # focal length in half-widths of the image
# Frames built per torch call (a few floats per output pixel each): bounds the memory.
_FRAMES_PER_CHUNK = 2048


def _hue_matrices(angle):
    """Rotation about the grey axis (1, 1, 1) of RGB space: ``(N,)`` -> ``(N, 3, 3)``.

    A cheap stand-in for an HSV hue shift (about 5x faster than an HSV round trip): it
    turns the colour wheel by ``angle`` while keeping grey levels fixed, but it does not
    keep saturation and value exactly, so results are clipped to [0, 1]. A full turn is
    the identity, so a hue cycle returns exactly to its start.
    """
    cos, sin = torch.cos(angle)[:, None, None], torch.sin(angle)[:, None, None]
    k = torch.full((3,), 3 ** -0.5, dtype=angle.dtype)
    cross = torch.tensor([[0.0, -1.0, 1.0], [1.0, 0.0, -1.0], [-1.0, 1.0, 0.0]],
                         dtype=angle.dtype) * 3 ** -0.5
    eye = torch.eye(3, dtype=angle.dtype)
    return cos * eye + sin * cross + (1 - cos) * torch.outer(k, k)


def _inverse_homographies(values, families):
    """Output -> source maps in pixel-centred units, ``(N, 3, 3)``, for the frames'
    rotation (radians), scale and perspective tilt direction (radians)."""
    N = next(iter(values.values())).shape[0]
    G = torch.eye(3, dtype=torch.float64).repeat(N, 1, 1)
    if "perspective" in families:
        # The image plane tilted by PERSPECTIVE_TILT about an axis that turns with the
        # phase; the inverse of H = K R K^-1 is K R^T K^-1.
        direction = values["perspective"]
        a = PERSPECTIVE_TILT * torch.cos(direction)  # about the vertical axis
        b = PERSPECTIVE_TILT * torch.sin(direction)  # about the horizontal axis
        ca, sa, cb, sb = torch.cos(a), torch.sin(a), torch.cos(b), torch.sin(b)
        zero, one = torch.zeros_like(a), torch.ones_like(a)
        Ry = torch.stack([ca, zero, sa, zero, one, zero, -sa, zero, ca], -1).view(N, 3, 3)
        Rx = torch.stack([one, zero, zero, zero, cb, -sb, zero, sb, cb], -1).view(N, 3, 3)
        f = PERSPECTIVE_FOCAL
        K = torch.diag(torch.tensor([f, f, 1.0], dtype=torch.float64))
        G = K @ (Ry @ Rx).transpose(1, 2) @ torch.linalg.inv(K)
    if "rotation" in families or "scale" in families:
        theta = values.get("rotation", torch.zeros(N, dtype=torch.float64))
        scale = values.get("scale", torch.ones(N, dtype=torch.float64))
        cos, sin = torch.cos(theta) / scale, torch.sin(theta) / scale
        zero, one = torch.zeros_like(cos), torch.ones_like(cos)
        # Inverse of scale * rotation(theta), counter-clockwise on screen (y points down).
        A_inv = torch.stack([cos, -sin, zero, sin, cos, zero, zero, zero, one],
                            -1).view(N, 3, 3)
        G = A_inv @ G
    return G


class SequenceArray(np.ndarray):
    """An ndarray of sequences that knows its frame structure.

    :class:`SequenceTransformer` returns one. It is an ordinary ``np.ndarray`` in every
    computation; it only carries ``sequence_length`` and ``frame_shape`` (channels,
    height, width) through row indexing, slicing and pickling, so that an estimator
    given it (``TopographicVAE``, ``VAE``) can refuse a ``sequence_length`` that would
    cut its rows into other frames than those written. ``np.asarray(X)`` drops them.
    """

    sequence_length = None
    frame_shape = None

    @classmethod
    def _wrap(cls, array, sequence_length, frame_shape):
        out = array.view(cls)
        out.sequence_length, out.frame_shape = int(sequence_length), tuple(frame_shape)
        return out

    def __array_finalize__(self, obj):
        self.sequence_length = getattr(obj, "sequence_length", None)
        self.frame_shape = getattr(obj, "frame_shape", None)

    def __reduce__(self):  # pickling (joblib, Pipeline memory) keeps the structure
        rebuild, args, state = super().__reduce__()
        return rebuild, args, (state, self.sequence_length, self.frame_shape)

    def __setstate__(self, state):
        base, self.sequence_length, self.frame_shape = state
        super().__setstate__(base)


_FEATURE_NAME = re.compile(r"frame(\d+)_ch(\d+)_y(\d+)_x(\d+)")


def frame_structure(X: object) -> tuple[int, tuple[int, ...]] | None:
    """``(sequence_length, frame_shape)`` that ``X`` says it has, or ``None``.

    Read from a :class:`SequenceArray`, or from the column names that
    :meth:`SequenceTransformer.get_feature_names_out` writes (a DataFrame output of
    ``set_output(transform="pandas")``); ``None`` for any other input, or when the
    array's rows no longer have the width that structure implies (it was reshaped).
    """
    if isinstance(X, (SequenceArray, FreshSequences)) and X.sequence_length is not None:
        S, shape = X.sequence_length, X.frame_shape
    elif hasattr(X, "columns") and len(X.columns):
        first, last = (_FEATURE_NAME.fullmatch(str(X.columns[i])) for i in (0, -1))
        if first is None or last is None or first.groups() != ("0",) * 4:
            return None
        S, *shape = (int(v) + 1 for v in last.groups())
    else:
        return None
    if getattr(X, "ndim", 0) != 2 or X.shape[1] != S * math.prod(shape):
        return None
    return S, tuple(shape)


class SequenceTransformer(TransformerMixin, BaseEstimator):
    """Turn each image into a sequence of transformed copies: one cycle per row.

    Frame ``l`` of a sequence shows the image transformed by step ``l`` of a cycle of
    ``sequence_length`` equal steps, so ``Pipeline([SequenceTransformer, TopographicVAE])``
    feeds the TVAE the sequences it learns from, and cross-validation, which splits rows,
    never splits a sequence.

    Parameters
    ----------
    transformations : str or list of str, default="rotation"
        Families, among ``"rotation"`` (0 to 360 degrees), ``"scale"`` (a zoom cycle
        of equal steps from 0.60 towards 1.26, the paper's range, then back), ``"hue"`` (a full turn of the colour
        wheel; needs colour images or ``color``), ``"translation"`` (a cyclic
        horizontal shift by the image width) and ``"perspective"`` (a tilt of about 20
        degrees whose axis turns once around).
    sequence_length : int, default=18
        Frames per sequence (at least 2).
    image_shape : tuple of int, default=(28, 28)
        ``(height, width)`` of one image.
    n_channels : int, default=1
        Channels of the input images (rows are ``(n_channels, height, width)``
        flattened).
    combine : {"compose", "random"}, default="compose"
        With several families: ``"compose"`` applies them all at every step (e.g. the
        paper's rotation + colour sequences); ``"random"`` picks one family per
        sequence and holds the others at a random fixed value (how the paper builds its
        MNIST sets).
    color : str, tuple of 3 floats or None, default=None
        Colour grey images before transforming them: a name (``"red"``, ``"green"``,
        ``"blue"``, ``"yellow"``, ``"cyan"``, ``"magenta"``) or an RGB triple in [0, 1].
        Output frames then have 3 channels. Needs input in [0, 1].
    random_start : bool or "grid", default=True
        Start each sequence at a uniformly random phase of its cycle; ``"grid"`` at a
        random whole step of it (``k / sequence_length``: with 18 frames, a multiple of
        20 degrees, the paper's MNIST grid); ``False`` starts all at 0.
    dtype : {np.float32, np.float64, np.float16, np.uint8}, default=np.float32
        Output dtype. ``np.uint8`` stores ``round(255 * x)`` (4x less memory than
        float32; divide by 255 before use).
    random_state : int, RandomState instance or None, default=None
        Seeds the starting phases and the random choices; the same seed gives the same
        output.
    fresh_each_epoch : bool, default=False
        Return :class:`FreshSequences` instead of an array: an estimator trained on
        it draws new phases and choices for every epoch and renders each batch as it
        trains, holding only the images in memory (float32 frames; ``dtype`` is not
        used). Everything else sees one fixed draw, seeded by ``random_state``.
    keep_frames : int or None, default=None
        Return only the first ``keep_frames`` frames of each sequence (of
        ``sequence_length``): the observed frames that ``predict_sequence`` of a model
        fitted on whole sequences forecasts from. ``None`` keeps them all.

    Attributes
    ----------
    n_features_in_ : int
        Features per input row, ``n_channels * height * width``.
    n_out_channels_ : int
        Channels per output frame (3 with ``color``).

    Notes
    -----
    uint8 images are divided by 255 and uint16 images by 65535 (their dtype's range);
    float and bool input is used as it is. Other integer dtypes, and integer images
    whose values are all 0 or 1 (a mask, or a nearly black image?), are refused as
    ambiguous: convert them to float in the scale you mean. ``inverse_transform`` is not provided: a sequence is not a function of one
    image that could be inverted (use frame 0 of a ``random_start=False`` sequence).
    Geometry uses bilinear ``grid_sample`` with zero padding; hue uses a 3x3 rotation
    about the grey axis, an approximation of an HSV hue shift that returns exactly to the
    start after a full cycle.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import SequenceTransformer
    >>> X = np.random.default_rng(0).random((5, 16 * 16))
    >>> seq = SequenceTransformer(sequence_length=6, image_shape=(16, 16), random_state=0)
    >>> seq.fit_transform(X).shape
    (5, 1536)
    >>> SequenceTransformer(["rotation", "hue"], sequence_length=4, image_shape=(16, 16),
    ...                     color="red").fit_transform(X).shape
    (5, 3072)
    """

    _parameter_constraints = {
        "transformations": [StrOptions(set(TRANSFORMATIONS)), list, tuple],
        "sequence_length": [Interval(Integral, 2, None, closed="left")],
        "image_shape": [tuple, list],
        "n_channels": [Interval(Integral, 1, None, closed="left")],
        "combine": [StrOptions({"compose", "random"})],
        "color": [StrOptions(set(COLORS)), tuple, list, np.ndarray, None],
        "random_start": ["boolean", StrOptions({"grid"})],
        "dtype": [Options(type, {np.float32, np.float64, np.float16, np.uint8})],
        "random_state": ["random_state"],
        "fresh_each_epoch": ["boolean"],
        "keep_frames": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(self, transformations="rotation", sequence_length=18, image_shape=(28, 28),
                 n_channels=1, combine="compose", color=None, random_start=True,
                 dtype=np.float32, random_state=None, fresh_each_epoch=False,
                 keep_frames=None):
        self.transformations = transformations
        self.sequence_length = sequence_length
        self.image_shape = image_shape
        self.n_channels = n_channels
        self.combine = combine
        self.color = color
        self.random_start = random_start
        self.dtype = dtype
        self.random_state = random_state
        self.fresh_each_epoch = fresh_each_epoch
        self.keep_frames = keep_frames

    # --- validation -----------------------------------------------------------------
    @property
    def _families(self):
        names = ([self.transformations] if isinstance(self.transformations, str)
                 else list(self.transformations))
        unknown = [n for n in names if n not in TRANSFORMATIONS]
        if not names or unknown:
            raise ValueError(
                f"Unknown transformations {unknown or names!r}; valid names are "
                f"{', '.join(TRANSFORMATIONS)}.")
        if len(set(names)) != len(names):
            raise ValueError(f"transformations lists a family twice: {names!r}.")
        return names

    def _rgb(self):
        if self.color is None:
            return None
        if isinstance(self.color, str):
            return torch.tensor(COLORS[self.color])
        rgb = np.asarray(self.color, dtype=float)
        if rgb.shape != (3,) or not np.all((rgb >= 0) & (rgb <= 1)):
            raise ValueError(f"color must be a colour name ({', '.join(COLORS)}) or an "
                             f"RGB triple in [0, 1]; got {self.color!r}.")
        return torch.tensor(rgb, dtype=torch.float32)

    def _check_params(self):
        families = self._families
        shape = tuple(self.image_shape)
        if len(shape) != 2 or not all(isinstance(s, Integral) and s > 0 for s in shape):
            raise ValueError(f"image_shape must be (height, width) of positive integers; "
                             f"got {self.image_shape!r}.")
        self._rgb()
        if self.color is not None and self.n_channels != 1:
            raise ValueError(f"color colours grey images: it needs n_channels=1, got "
                             f"n_channels={self.n_channels}.")
        if "hue" in families and self.color is None and self.n_channels != 3:
            raise ValueError(
                "The 'hue' transformation needs colour frames: pass 3-channel images "
                "(n_channels=3) or set color (e.g. color='red') to colour grey images.")
        return families

    def _validate_images(self, X, reset):
        """Rows as ``(n, C, H, W)`` float32 in the input's scale (uint8 and uint16 divided
        by their dtype's largest value)."""
        H, W = self.image_shape
        if issparse(X):
            raise TypeError("SequenceTransformer needs dense images (every pixel is "
                            "resampled); pass X.toarray().")
        X = np.asarray(X) if not hasattr(X, "iloc") else X
        if getattr(X, "ndim", 2) == 3 and self.n_channels == 1:
            X = X.reshape(len(X), -1)
        elif getattr(X, "ndim", 2) == 4:
            if X.shape[1] != self.n_channels:
                hint = (f" It looks channel-last (n, height, width, {self.n_channels}): "
                        "pass np.moveaxis(X, -1, 1)."
                        if X.shape[-1] == self.n_channels else "")
                raise ValueError(f"X has shape {X.shape}: images must be (n, channels, "
                                 f"height, width) with n_channels={self.n_channels} "
                                 f"channels.{hint}")
            X = X.reshape(len(X), -1)
        scale = _integer_scale(X)
        X = validate_data(self, X, reset=reset, dtype=np.float32)
        expected = self.n_channels * H * W
        if X.shape[1] != expected:
            raise ValueError(
                f"X has {X.shape[1]} features per row, but image_shape={tuple(self.image_shape)} "
                f"with n_channels={self.n_channels} needs {expected}. Set image_shape and "
                "n_channels to match the images.")
        if scale is not None:
            X = X / np.float32(scale)
        if self.color is not None and X.size and (X.min() < 0 or X.max() > 1):
            raise ValueError(
                f"color needs image values in [0, 1]; got [{X.min():.4g}, {X.max():.4g}]. "
                "Scale the images first (e.g. divide uint8 images by 255).")
        return torch.from_numpy(np.ascontiguousarray(X)).view(len(X), self.n_channels, H, W)

    # --- the sklearn API ----------------------------------------------------------------
    def fit(self, X: ArrayLike, y: None = None) -> SequenceTransformer:
        """Check the parameters and record the number of input features.

        Parameters
        ----------
        X : array-like of shape (n_images, n_channels * height * width)
            Images, also accepted as ``(n, height, width)`` or ``(n, C, height, width)``.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The transformer.
        """
        self._validate_params()
        self._check_params()
        self._validate_images(X, reset=True)
        self.n_out_channels_ = 3 if self.color is not None else self.n_channels
        return self

    def transform(self, X: ArrayLike) -> SequenceArray:
        """Build one sequence of ``sequence_length`` transformed frames per image.

        Parameters
        ----------
        X : array-like of shape (n_images, n_channels * height * width)
            Images, also accepted as ``(n, height, width)`` or ``(n, C, height, width)``.

        Returns
        -------
        X_seq : SequenceArray of shape (n_images, sequence_length * `n_out_channels_` \
* height * width)
            Frames in time order, each ``(n_out_channels_, height, width)`` flattened,
            in [0, 1] for input in [0, 1]. A plain ndarray that also carries
            ``sequence_length`` and ``frame_shape``, so that an estimator fitted on it
            refuses a ``sequence_length`` other than this one.
        """
        check_is_fitted(self, "n_out_channels_")
        families = self._check_params()
        images = self._validate_images(X, reset=False)
        if self.fresh_each_epoch and self.keep_frames is None:
            return self._fresh(images, families)
        values = self._frame_values(len(images), families)
        S, (H, W) = self.sequence_length, self.image_shape
        if self.keep_frames is not None:
            if self.keep_frames > S:
                raise ValueError(f"keep_frames={self.keep_frames} is more than the "
                                 f"sequence_length={S} frames of a sequence.")
            S = self.keep_frames
            values = {k: v[:, :S] for k, v in values.items()}
        out = np.empty((len(images), S * self.n_out_channels_ * H * W), self.dtype)
        step = max(1, _FRAMES_PER_CHUNK // S)
        for start in range(0, len(images), step):
            rows = slice(start, start + step)
            chunk = {k: v[rows] for k, v in values.items()}
            if self.dtype == np.float32:  # straight into the output, no extra copy
                target = torch.from_numpy(out[rows]).view(
                    len(out[rows]), S, self.n_out_channels_, H, W)
                self._render(images[rows], chunk, families, out=target)
            else:
                frames = self._render(images[rows], chunk, families)
                out[rows] = self._to_dtype(frames.reshape(frames.shape[0], -1))
        return SequenceArray._wrap(out, S, (self.n_out_channels_, H, W))

    def _to_dtype(self, frames):
        if self.dtype == np.uint8:
            return (frames * 255).round_().clamp_(0, 255).to(torch.uint8).numpy()
        return frames.numpy()

    def _fresh(self, images, families):
        """Sequences of ``images`` drawn afresh for every seed (one cached at a time)."""
        S, (H, W), C = self.sequence_length, self.image_shape, self.n_out_channels_
        drawn = {}

        def draw(rows, seed):
            if seed not in drawn:
                drawn.clear()
                drawn[seed] = self._frame_values(len(images), families,
                                                 np.random.RandomState(seed))
            index = torch.from_numpy(rows)
            values = {k: v[index] for k, v in drawn[seed].items()}
            return self._render(images[index], values, families).reshape(len(rows), S, -1)

        low = float(images.min()) if images.numel() else 0.0
        high = float(images.max()) if images.numel() else 1.0
        if "hue" in families or self.color is not None:
            low, high = max(low, 0.0), min(high, 1.0)  # clamped
        seed = check_random_state(self.random_state).randint(2 ** 31 - 1)
        return FreshSequences(draw, len(images), S, (C, H, W), seed=seed,
                              value_range=(min(low, 0.0), max(high, 0.0)))

    def _frame_values(self, n, families, rng=None):
        """Each family's value for every frame: ``{name: (n, S) float64 tensor}``."""
        rng = check_random_state(self.random_state) if rng is None else rng
        S = self.sequence_length
        start = rng.random_sample((n, len(families))) if self.random_start \
            else np.zeros((n, len(families)))
        steps = np.arange(S) / S
        if self.combine == "compose" or len(families) == 1:
            varies = np.ones((n, len(families)), bool)
        else:  # one family moves per sequence; the others rest at a random phase
            chosen = rng.randint(len(families), size=n)
            varies = np.arange(len(families))[None, :] == chosen[:, None]
            start = np.where(varies, start, rng.random_sample((n, len(families))))
        if self.random_start == "grid":  # whole steps: frames on the cycle's S values
            start = np.floor(start * S) / S
        phase = (start[:, :, None] + varies[:, :, None] * steps) % 1.0  # (n, F, S)
        phase = torch.from_numpy(phase)
        values = {}
        for i, name in enumerate(families):
            p = phase[:, i]
            if name == "scale":
                lo, hi = SCALE_RANGE  # S equal steps up from lo, then back to lo
                values[name] = lo + (hi - lo) * p
            elif name == "translation":
                values[name] = 2.0 * p  # normalised coordinates span 2 per width
            else:
                values[name] = 2 * np.pi * p
        return values

    def _render(self, images, values, families, out=None):
        """Frames ``(n, S, C_out, H, W)`` for images ``(n, C, H, W)``, in one batch,
        written into ``out`` (a float32 tensor of that shape) when given.

        Sampling and colour are both linear in the pixel values, so a grey image is
        resampled on its single channel and coloured afterwards: each frame is the
        resampled grey frame times one RGB vector (the colour turned by that frame's
        hue matrix). The S frames of an image are sampled by one ``grid_sample`` call
        whose grid stacks their S sampling grids, so the image is never copied S times.
        """
        n, C, H, W = images.shape
        S = next(iter(values.values())).shape[1]
        flat = {k: v.reshape(-1) for k, v in values.items()}
        geometric = [f for f in families if f != "hue"]
        if geometric:
            grid = self._grid(flat, geometric, H, W).view(n, S * H, W, 2)
            frames = F.grid_sample(images, grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False)  # (n, C, S*H, W)
            frames = frames.view(n, C, S, H, W).transpose(1, 2)
        else:
            frames = images[:, None].expand(n, S, C, H, W)
        rgb = self._rgb()
        hue = _hue_matrices(flat["hue"]).float() if "hue" in families else None
        if rgb is not None:  # grey frames times one colour per frame
            colours = rgb.expand(n * S, 3) if hue is None else hue @ rgb
            frames = torch.mul(frames, colours.view(n, S, 3, 1, 1), out=out)
        elif hue is not None:
            frames = torch.einsum("nsij,nsjhw->nsihw", hue.view(n, S, 3, 3), frames)
        if out is not None and frames is not out:
            frames = out.copy_(frames)
        if hue is not None:
            frames = frames.clamp_(0.0, 1.0)
        return frames

    def _grid(self, values, families, H, W):
        """Sampling grid ``(N, H, W, 2)`` of the composed geometric transformation.

        Source coordinates are affine in the output pixel's x and y, so each is built by
        broadcasting an ``(N, 1, W)`` and an ``(N, H, 1)`` term (no per-pixel matmul); the
        cyclic translation only changes x, which keeps that form.
        """
        N = next(iter(values.values())).shape[0]
        # Pixel centres in normalised coordinates (align_corners=False convention).
        y = ((torch.arange(H, dtype=torch.float32) * 2 + 1) / H - 1).view(1, H, 1)
        x = ((torch.arange(W, dtype=torch.float32) * 2 + 1) / W - 1).view(1, 1, W)
        if "translation" in families:  # cyclic: wrap around the image horizontally
            x = (x - values["translation"].float().view(N, 1, 1) + 1) % 2 - 1
        # Work in units of half the image's larger side so rotations keep aspect ratio.
        half = max(H, W)
        to_pix = torch.diag(torch.tensor([W / half, H / half, 1.0], dtype=torch.float64))
        G = torch.linalg.inv(to_pix) @ _inverse_homographies(values, families) @ to_pix
        G = G.float().view(N, 3, 3, 1, 1)
        src_x = G[:, 0, 0] * x + G[:, 0, 1] * y + G[:, 0, 2]  # (N, H, W)
        src_y = G[:, 1, 0] * x + G[:, 1, 1] * y + G[:, 1, 2]
        if "perspective" in families:
            w = G[:, 2, 0] * x + G[:, 2, 1] * y + G[:, 2, 2]
            src_x, src_y = src_x / w, src_y / w
        return torch.stack([src_x, src_y], dim=-1)

    def get_feature_names_out(self, input_features: None = None) -> NDArray[np.object_]:
        """Output feature names: ``frame{l}_ch{c}_y{y}_x{x}``.

        Parameters
        ----------
        input_features : None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            One name per output value, frames in time order.
        """
        check_is_fitted(self, "n_out_channels_")
        H, W = self.image_shape
        return np.asarray([f"frame{l}_ch{c}_y{y}_x{x}" for l in range(self.sequence_length)
                           for c in range(self.n_out_channels_) for y in range(H)
                           for x in range(W)], dtype=object)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = []
        return tags


def _integer_scale(X):
    """What integer images are divided by: their dtype's largest value for uint8 and
    uint16; ``None`` for float (or bool) input, used as it is. Refuses the ambiguous."""
    dtype = np.dtype(getattr(X, "dtype", np.float32))
    if not np.issubdtype(dtype, np.integer):
        return None
    if dtype.kind != "u" or dtype.itemsize > 2:
        raise ValueError(
            f"X is {dtype}: integer images are read in their dtype's range only for "
            "uint8 (0-255) and uint16 (0-65535). Convert X to float in [0, 1] first "
            "(e.g. X / X.max() if that is its range).")
    if X.size and X.max() == 1:
        raise ValueError(
            f"X is {dtype} with values 0 and 1 only: a 0/1 mask, or an image that is "
            f"nearly black in 0-{np.iinfo(dtype).max}? Pass X.astype(np.float32) for a "
            f"mask, or X as float in [0, 1].")
    return np.iinfo(dtype).max
