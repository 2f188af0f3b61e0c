"""dSprites-style binary sprites drawn from their factors, and sequences of them.

dSprites (Matthey et al., 2017) holds 64 x 64 binary images of a square, an ellipse or
a heart at 6 scales in [0.5, 1], 40 orientations in [0, 2 pi] and 32 x and y positions
in [0, 1]. Here the same shapes are rasterised from any factor values, vectorised over
images, so that sequences can move a factor by any step and nothing is downloaded.
The drawings follow dSprites' definitions (the shapes, the ranges, a sprite that stays
inside the image at every position), not its pixels.

Geometry, in units of the image's width: at scale 1 a shape's half-extent is
``_HALF_EXTENT`` (a square of side 0.3, about 19 pixels of 64); the ellipse's axes are
2 : 1; the heart is the curve ``(a^2 + b^2 - 1)^3 <= a^2 b^3``. Position 0 to 1 moves
the centre from ``_MARGIN`` to ``1 - _MARGIN``, so that the largest sprite at any
orientation stays inside. ``x`` runs along columns (left to right), ``y`` along rows
(top to bottom); orientation turns the sprite counter-clockwise as seen.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import Bunch, check_random_state

from ._fresh import FreshSequences
from ._validation import check_output_size, is_int as _is_int

SHAPES = ("square", "ellipse", "heart")
FACTORS = ("x", "y", "orientation", "scale")
RANGES = {"scale": (0.5, 1.0), "orientation": (0.0, 2 * math.pi), "x": (0.0, 1.0),
          "y": (0.0, 1.0)}
_HALF_EXTENT = 0.15
_MARGIN = 0.23  # a square's half-diagonal at scale 1 (0.212) and a pixel to spare
_MIN_IMAGE_SIZE = 16  # the smallest sprite (scale 0.5) is then about 5 pixels across
_MAX_IMAGE_SIZE = 1024
_CHUNK = 512  # images drawn at once
# The authors' grid (Keller & Welling's dSprites runs): of dSprites' 32 positions and
# 40 orientations, every second of the first 30; of its 6 scales, the last 5.
GRID = {"x": np.arange(0, 30, 2) / 31, "y": np.arange(0, 30, 2) / 31,
        "orientation": np.arange(0, 30, 2) * 2 * math.pi / 39,
        "scale": np.linspace(0.5, 1.0, 6)[1:]}


def _shape_codes(shape):
    """Shape names (or their indices in ``SHAPES``) as an int array."""
    values = np.asarray(shape)
    if values.dtype.kind in "US" or values.dtype == object:
        names = values.astype(str)
        unknown = sorted(set(names.ravel()) - set(SHAPES))
        if unknown:
            raise ValueError(f"Unknown shape {str(unknown[0])!r}: the shapes are "
                             f"{', '.join(SHAPES)}.")
        return np.vectorize(SHAPES.index, otypes=[np.int64])(names)
    if values.dtype.kind not in "iu" or values.size and not (
            (values >= 0) & (values < len(SHAPES))).all():
        raise ValueError(f"shape must be names ({', '.join(SHAPES)}) or their indices "
                         f"0 .. {len(SHAPES) - 1}; got {shape!r}.")
    return values.astype(np.int64)


def _factor(name, value):
    values = np.asarray(value, dtype=np.float64)
    lo, hi = RANGES[name]
    if not np.isfinite(values).all() or ((values < lo) | (values > hi)).any():
        raise ValueError(f"{name} must lie in [{lo:g}, {hi:.4g}] (dSprites' range); got "
                         f"values in [{np.nanmin(values):.4g}, {np.nanmax(values):.4g}].")
    return values


def make_sprites(shape: ArrayLike, scale: ArrayLike, orientation: ArrayLike,
                 x: ArrayLike, y: ArrayLike, image_size: int = 64) -> NDArray[np.float32]:
    """Draw dSprites-style binary images from their factor values.

    The factors broadcast against each other; each combination is one image. Any value
    in dSprites' ranges can be drawn, not only its grid.

    Parameters
    ----------
    shape : str, int or array-like
        ``"square"``, ``"ellipse"`` or ``"heart"``, or its index 0, 1, 2.
    scale : float or array-like
        Size in [0.5, 1]; a sprite's area grows with ``scale ** 2``.
    orientation : float or array-like
        Angle in [0, 2 pi] radians, counter-clockwise.
    x, y : float or array-like
        Position in [0, 1] of the centre, along columns and rows.
    image_size : int, default=64
        Side of the square image in pixels, at least 16.

    Returns
    -------
    images : ndarray of shape (n_images, image_size * image_size)
        float32 0/1 pixels, row-major; ``n_images`` is the broadcast size of the
        factors (1 for scalars).

    Examples
    --------
    >>> from sktvae.datasets import make_sprites
    >>> images = make_sprites(["square", "heart"], 1.0, 0.0, 0.5, 0.5)
    >>> images.shape, float(images.max())
    ((2, 4096), 1.0)
    """
    if not _is_int(image_size) or image_size < _MIN_IMAGE_SIZE:
        raise ValueError(f"image_size must be an int >= {_MIN_IMAGE_SIZE}, enough to draw "
                         f"the smallest sprite; got {image_size!r}.")
    if image_size > _MAX_IMAGE_SIZE:
        raise ValueError(f"image_size must be at most {_MAX_IMAGE_SIZE}; got {image_size}.")
    named = {"shape": _shape_codes(shape), "scale": _factor("scale", scale),
             "orientation": _factor("orientation", orientation), "x": _factor("x", x),
             "y": _factor("y", y)}
    try:
        factors = [f.ravel() for f in np.broadcast_arrays(*named.values())]
    except ValueError as error:
        shapes = ", ".join(f"{k} {np.shape(v)}" for k, v in named.items())
        raise ValueError(f"The factors do not broadcast against each other ({shapes}): "
                         "give each one value or arrays of one common shape, as numpy "
                         "broadcasts them.") from error
    check_output_size(len(factors[0]) * image_size * image_size,
                      f"make_sprites of {len(factors[0])} images",
                      "Draw fewer images per call.")
    out = np.empty((len(factors[0]), image_size * image_size), np.float32)
    for start in range(0, len(out), _CHUNK):  # bounded memory for many images
        rows = slice(start, start + _CHUNK)
        out[rows] = _draw(*(f[rows] for f in factors), image_size)
    return out


def _draw(code, scale, theta, px, py, image_size):
    """Pixels inside each sprite, ``(n, image_size ** 2)``: a pixel is on where its
    centre lies inside the shape."""
    code, s, theta, px, py = (f.reshape(-1, 1, 1) for f in (code, scale, theta, px, py))
    centres = (np.arange(image_size) + 0.5) / image_size           # pixel centres
    cols, rows = centres[None, None, :], centres[None, :, None]
    dx = cols - (_MARGIN + px * (1 - 2 * _MARGIN))
    dy = -(rows - (_MARGIN + py * (1 - 2 * _MARGIN)))              # up is positive
    # the sprite's own axes: the offset turned back by its orientation, in half-extents
    cos, sin, r = np.cos(theta), np.sin(theta), _HALF_EXTENT * s
    u = (cos * dx + sin * dy) / r
    v = (-sin * dx + cos * dy) / r
    inside = (code == 0) & (np.maximum(abs(u), abs(v)) <= 1)
    inside |= (code == 1) & (u ** 2 + (2 * v) ** 2 <= 1)
    a, b = 1.15 * u, 1.15 * v + 0.1  # the heart's curve, centred on its extent
    inside |= (code == 2) & ((a ** 2 + b ** 2 - 1) ** 3 <= a ** 2 * b ** 3)
    return inside.reshape(len(inside), -1)


def _cycle(name, phase, path):
    """A factor's value at ``phase`` in [0, 1) of its cycle: orientation turns once
    round; position and scale go out and back (a triangle wave over their range) or,
    with ``path="wrap"``, across the range and back to its start in one jump."""
    lo, hi = RANGES[name]
    if name == "orientation" or path == "wrap":
        return lo + (hi - lo) * phase
    return lo + (hi - lo) * (1 - np.abs(1 - 2 * phase))


def make_sprite_sequences(n_sequences: int, sequence_length: int = 15, *,
                          factors: tuple[str, ...] = FACTORS, combine: str = "random",
                          path: str = "out_and_back", shapes: tuple[str, ...] = SHAPES,
                          image_size: int = 64,
                          random_state=None) -> tuple[NDArray[np.float32], Bunch]:
    """Sequences of sprites in which factors move one step per frame through a cycle.

    Each sequence moves one of ``factors`` (``combine="random"``, chosen per sequence)
    or all of them at once (``combine="compose"``) through one whole cycle of its range
    in ``sequence_length`` steps, from a random phase: orientation turns once round
    (``2 pi / sequence_length`` a frame); position and scale go out and back, from one
    end of the range to the other and back again (so a cycle ends where it began, each
    frame moving ``2 / sequence_length`` of the range), or with ``path="wrap"`` cross
    the range once (``1 / sequence_length`` a frame) and jump back to the start, as a
    factor's index modulo its number of values does. Out and back visits each value
    twice a cycle, once growing and once shrinking, so a single frame does not tell
    which way it moves; wrapping visits each once. The shape and the factors that do
    not move are random and fixed within the sequence.

    Parameters
    ----------
    n_sequences : int
        Sequences to draw.
    sequence_length : int, default=15
        Frames per sequence, at least 2 (the paper's dSprites runs: 15).
    factors : tuple of str, default=("x", "y", "orientation", "scale")
        The factors that move.
    combine : {"random", "compose"}, default="random"
        One factor per sequence, or all of ``factors`` together.
    path : {"out_and_back", "wrap", "grid"}, default="out_and_back"
        The cycle of position and scale (orientation always turns once round).
        ``"grid"`` is the authors' protocol: every factor takes values of their grid
        (x, y and orientation 15 values each, x and y from 0 to 0.9, orientation 0
        to 258 degrees in steps of 18.5; scale 5 values from 0.6 to 1), a sequence
        starts at a random grid point and its moving factor steps one grid value a
        frame, wrapping round (scale, with 5 values, goes round three times in 15
        frames); ``factors`` then also holds each factor's grid index per frame
        (``x_index``, ...).
    shapes : tuple of str, default=("square", "ellipse", "heart")
        The shapes drawn from.
    image_size : int, default=64
        Side of each frame in pixels.
    random_state : int, RandomState instance or None, default=None
        Seeds the shapes, the fixed factors and the phases.

    Returns
    -------
    X : ndarray of shape (n_sequences, sequence_length * image_size ** 2)
        float32 0/1 pixels, frames in time order, each row-major.
    factors : sklearn.utils.Bunch
        ``shape`` ``(n_sequences,)`` names; ``scale``, ``orientation``, ``x``, ``y``
        ``(n_sequences, sequence_length)``: every frame's values; ``moving``
        ``(n_sequences,)``: the factor that moves, or ``"compose"``.

    Examples
    --------
    >>> from sktvae.datasets import make_sprite_sequences
    >>> X, factors = make_sprite_sequences(4, sequence_length=6, image_size=32,
    ...                                    random_state=0)
    >>> X.shape, factors.x.shape, factors.moving.shape
    ((4, 6144), (4, 6), (4,))
    """
    if not _is_int(n_sequences) or n_sequences < 1:
        raise ValueError(f"n_sequences must be a positive int; got {n_sequences!r}.")
    if not _is_int(sequence_length) or sequence_length < 2:
        raise ValueError("sequence_length must be an int >= 2: a factor moves from frame "
                         f"to frame; got {sequence_length!r}.")
    factors = (factors,) if isinstance(factors, str) else tuple(factors)
    unknown = [f for f in factors if f not in FACTORS]
    if unknown or not factors:
        raise ValueError(f"Unknown factor {unknown[0] if unknown else '(none given)'!r}: "
                         f"the factors are {', '.join(FACTORS)}.")
    if combine not in ("random", "compose"):
        raise ValueError(f"combine must be 'random' or 'compose'; got {combine!r}.")
    if path not in ("out_and_back", "wrap", "grid"):
        raise ValueError(f"path must be 'out_and_back', 'wrap' or 'grid'; got {path!r}.")
    if isinstance(shapes, str):
        raise TypeError(f"shapes must be a sequence of shape names, e.g. ({shapes!r},); "
                        "a string would be read letter by letter.")
    codes = _shape_codes(list(shapes))
    rng = check_random_state(random_state)
    n, S = int(n_sequences), int(sequence_length)
    shape = codes[rng.randint(len(codes), size=n)]
    moving = (np.full(n, "compose", dtype=object) if combine == "compose"
              else np.asarray(factors, dtype=object)[rng.randint(len(factors), size=n)])
    values = {}
    if path == "grid":
        for name in FACTORS:
            grid = GRID[name]
            moves = ((moving == name) | ((moving == "compose") & (name in factors)))[:, None]
            index = (rng.randint(len(grid), size=(n, 1)) + moves * np.arange(S)) % len(grid)
            values[name], values[f"{name}_index"] = grid[index], index
        return _sprite_sequences(shape, moving, values, image_size)
    phase = (rng.random_sample((n, 1)) + np.arange(S) / S) % 1.0     # (n, S)
    for name in FACTORS:
        lo, hi = RANGES[name]
        fixed = np.broadcast_to(lo + (hi - lo) * rng.random_sample((n, 1)), (n, S))
        moves = ((moving == name) | ((moving == "compose") & (name in factors)))[:, None]
        values[name] = np.where(moves, _cycle(name, phase, path), fixed)
    return _sprite_sequences(shape, moving, values, image_size)


def _sprite_sequences(shape, moving, values, image_size):
    """Draw the frames of sequences given every frame's factor values ``(n, S)``."""
    n, S = values["x"].shape
    X = make_sprites(np.repeat(shape, S), values["scale"].ravel(),
                     values["orientation"].ravel(), values["x"].ravel(),
                     values["y"].ravel(), image_size=image_size)
    return (X.reshape(n, S * image_size ** 2),
            Bunch(shape=np.asarray(SHAPES, dtype=object)[shape], moving=moving, **values))


def sprite_grid_sequences(sequence_length: int = 15, *, factors: tuple[str, ...] = FACTORS,
                          shapes: tuple[str, ...] = SHAPES, image_size: int = 64,
                          dsprites=None, random_state=None) -> FreshSequences:
    """The authors' sprite training set, drawn afresh every epoch.

    One sequence starts at every point of the authors' grid (``shapes`` x 5 scales x 15
    orientations x 15 x 15 positions: 50 625 for the three shapes), and in each draw
    moves one of ``factors``, chosen per sequence, one grid value a frame, wrapping
    round (``make_sprite_sequences(path="grid")``). The grid's frames are drawn once
    (one byte a pixel: 207 MB at 64 x 64 for the three shapes); sequences index into
    them, so an epoch of new sequences costs no drawing.

    Parameters
    ----------
    sequence_length : int, default=15
        Frames per sequence (the authors': 15).
    factors : tuple of str, default=("x", "y", "orientation", "scale")
        The factors that may move.
    shapes : tuple of str, default=("square", "ellipse", "heart")
        The shapes of the grid.
    image_size : int, default=64
        Side of each frame in pixels.
    dsprites : Bunch or None, default=None
        The real archive (:func:`~sktvae.datasets.fetch_dsprites`' result): frames are
        its images at the grid points instead of drawn here (``image_size`` must be 64).
    random_state : int, RandomState instance or None, default=None
        Seeds the fixed draw (the one seen outside training).

    Returns
    -------
    X : FreshSequences of shape (n_grid_points, sequence_length * image_size ** 2)
        Row ``i`` starts at grid point ``i`` in the order (shape, scale, orientation,
        x, y), C order.

    Examples
    --------
    >>> from sktvae.datasets import sprite_grid_sequences
    >>> X = sprite_grid_sequences(4, shapes=("square",), image_size=16, random_state=0)
    >>> X.shape
    (16875, 1024)
    """
    if not _is_int(sequence_length) or sequence_length < 2:
        raise ValueError("sequence_length must be an int >= 2: a factor moves from frame "
                         f"to frame; got {sequence_length!r}.")
    factors = (factors,) if isinstance(factors, str) else tuple(factors)
    if not factors or any(f not in FACTORS for f in factors):
        raise ValueError(f"factors must be among {', '.join(FACTORS)}; got {factors!r}.")
    if isinstance(shapes, str):
        raise TypeError(f"shapes must be a sequence of shape names, e.g. ({shapes!r},).")
    codes = _shape_codes(list(shapes))
    order = ("scale", "orientation", "x", "y")
    sizes = (len(codes), *(len(GRID[name]) for name in order))
    axes = np.meshgrid(np.arange(len(codes)), *(np.arange(s) for s in sizes[1:]),
                       indexing="ij")
    if dsprites is None:
        bank = make_sprites(codes[axes[0].ravel()],
                            *(GRID[name][a.ravel()] for name, a in zip(order, axes[1:])),
                            image_size=image_size).astype(np.uint8)
    else:
        bank = _dsprites_bank(dsprites, codes[axes[0].ravel()],
                              *(a.ravel() for a in axes[1:]), image_size=image_size)
    bank = torch.from_numpy(bank)
    start = np.stack([a.ravel() for a in axes], 1)  # (n, 5): shape, then the factors
    moving_axis = np.asarray([1 + order.index(f) for f in factors])
    S = int(sequence_length)

    chosen = {}  # the moving factor of every sequence, for the last seed drawn

    def draw(rows, seed):
        if seed not in chosen:
            chosen.clear()
            rng = np.random.RandomState(seed)
            chosen[seed] = moving_axis[rng.randint(len(factors), size=len(start))]
        moving = chosen[seed][rows]
        index = np.repeat(start[rows][:, None], S, axis=1)  # (n, S, 5)
        steps = index[np.arange(len(rows)), :, moving] + np.arange(S)
        index[np.arange(len(rows)), :, moving] = steps % np.asarray(sizes)[moving][:, None]
        flat = np.ravel_multi_index(tuple(np.moveaxis(index, -1, 0)), sizes)
        return bank[torch.from_numpy(flat.ravel())].view(len(rows), S, -1).float()

    seed = check_random_state(random_state).randint(2 ** 31 - 1)
    return FreshSequences(draw, len(start), S, (1, image_size, image_size), seed=seed)


# The authors' grid in dSprites' classes: scales 1-5 of 0-5; orientations, x and y every
# second of the first 30 of 40, 32 and 32.
_DSPRITES_CLASSES = {"scale": 1 + np.arange(5), "orientation": np.arange(0, 30, 2),
                     "x": np.arange(0, 30, 2), "y": np.arange(0, 30, 2)}


def _dsprites_bank(dsprites, shape, scale, orientation, x, y, image_size):
    """The images of the real archive at grid indices ``(shape code, scale, orientation,
    x, y)``, ``(n, 4096)`` uint8, found by their factor classes."""
    if image_size != 64:
        raise ValueError(f"image_size must be 64 with dsprites= (its images are 64 x 64); "
                         f"got {image_size!r}.")
    images = getattr(dsprites, "images", None)
    classes = getattr(dsprites, "factor_classes", None)
    if images is None or classes is None:
        raise TypeError("dsprites must be fetch_dsprites()' result (a Bunch with images "
                        f"and factor_classes); got {type(dsprites).__name__}.")
    images, classes = np.asarray(images), np.asarray(classes)
    dims = (1, 3, 6, 40, 32, 32)  # color, shape, scale, orientation, x, y
    if images.shape[1:] != (64, 64) or classes.shape != (len(images), len(dims)) or (
            classes < 0).any() or (classes >= np.asarray(dims)).any():
        raise ValueError("dsprites must hold images (n, 64, 64) and factor_classes (n, 6) "
                         "within dSprites' grid; got images "
                         f"{images.shape} and factor_classes {classes.shape}.")
    row = np.full(math.prod(dims), -1, np.int64)
    row[np.ravel_multi_index(tuple(classes.T), dims)] = np.arange(len(classes))
    wanted = np.ravel_multi_index((np.zeros_like(shape), shape,
                                   _DSPRITES_CLASSES["scale"][scale],
                                   _DSPRITES_CLASSES["orientation"][orientation],
                                   _DSPRITES_CLASSES["x"][x], _DSPRITES_CLASSES["y"][y]), dims)
    found = row[wanted]
    if (found < 0).any():
        raise ValueError(f"dsprites lacks {int((found < 0).sum())} of the grid's "
                         f"{len(found)} images (shape, scale, orientation, x, y classes "
                         "of the authors' grid): pass the whole archive.")
    return images[found].reshape(len(found), -1).astype(np.uint8)
