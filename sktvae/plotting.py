"""Figures: capsule-roll traversals, forecasts, topographic maps and training curves.

matplotlib is an optional dependency (``pip install sktvae[plot]``). Every function
returns a :class:`Display`, as scikit-learn's ``*Display.from_estimator`` do: its
``figure_`` and ``ax_`` to save or change, and the values it drew. A function that
draws one panel takes ``ax=`` to draw into an existing axes.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import ArrayLike

from ._base import _BaseVAE
from ._validation import is_int as _is_int
from .metrics import _check_vae

if TYPE_CHECKING:  # matplotlib is imported only when a plot is drawn
    from matplotlib.axes import Axes


class Display:
    """What a plotting function drew: the figure, its axes and the values shown.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
        The figure drawn on.
    ax : matplotlib.axes.Axes or ndarray of Axes
        The panel, or the panels of a figure of several.
    **values
        The arrays drawn, kept as attributes of the same names (e.g. ``selectivity``).

    Attributes
    ----------
    figure_ : matplotlib.figure.Figure
        The figure.
    ax_ : matplotlib.axes.Axes or ndarray of Axes
        The axes.
    """

    def __init__(self, figure, ax, **values):
        self.figure_ = figure
        self.ax_ = ax
        for name, value in values.items():
            setattr(self, name, value)

    def __repr__(self):
        names = [k for k in vars(self) if not k.endswith("_")]
        return f"Display({', '.join(['figure_', 'ax_', *names])})"


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("sktvae.plotting needs matplotlib: pip install "
                          "'sktvae[plot]'") from exc
    return plt


def _count(name, value, low, high=None):
    """``value`` as an int in ``[low, high]``, or an error that names it and the range."""
    if not _is_int(value) or value < low or (high is not None and value > high):
        where = f"in {low} .. {high}" if high is not None else f">= {low}"
        raise ValueError(f"{name} must be an int {where}; got {value!r}.")
    return int(value)


def _check_frames(estimator, image_shape, n_channels):
    """``image_shape`` and ``n_channels`` that describe the estimator's frames."""
    shape = np.asarray(image_shape, dtype=object) if image_shape is not None else None
    if shape is None or shape.ndim != 1 or len(shape) != 2 or not all(
            _is_int(v) and v >= 1 for v in shape):
        raise ValueError(f"image_shape must be (height, width), positive ints; got "
                         f"{image_shape!r}.")
    _count("n_channels", n_channels, 1)
    H, W = (int(v) for v in shape)
    F = estimator.n_features_per_frame_
    if n_channels * H * W != F:
        raise ValueError(f"image_shape={(H, W)} with n_channels={n_channels} holds "
                         f"{n_channels * H * W} values, but a frame of this model has "
                         f"{F} (n_features_per_frame_).")
    return H, W


def _as_images(frames, image_shape, n_channels):
    """``(..., C*H*W)`` -> images for imshow: ``(..., H, W)`` or ``(..., H, W, 3)``."""
    H, W = image_shape
    frames = np.clip(np.asarray(frames, dtype=np.float32), 0, 1)
    if n_channels == 1:
        return frames.reshape(*frames.shape[:-1], H, W)
    images = frames.reshape(*frames.shape[:-1], n_channels, H, W)
    return np.moveaxis(images, -3, -1)


def plot_capsule_roll(estimator: _BaseVAE, X: ArrayLike, image_shape: tuple[int, int], *,
                      n_channels: int = 1, n_sequences: int = 3,
                      n_steps: int | None = None) -> Display:
    """Capsule traversals beside the true sequences.

    For each sequence: the true frames, then the frames decoded after encoding frame 0
    alone and rolling its capsules by ``0, 1, 2, ...`` (``predict_sequence``), one row
    per estimator.

    Parameters
    ----------
    estimator : TopographicVAE, VAE, or dict of them
        Fitted; a dict ``{label: estimator}`` draws a row of each, labelled (a VAE's
        "roll" repeats its reconstruction of frame 0: the contrast).
    X : array-like of shape (n_sequences, n_features)
        Sequences; the first ``n_sequences`` are shown.
    image_shape : tuple of int
        ``(height, width)`` of a frame.
    n_channels : int, default=1
        Channels per frame (3 for colour).
    n_sequences : int, default=3
        Sequences to show.
    n_steps : int, default=None
        Frames per row; ``None`` means ``sequence_length``.

    Returns
    -------
    display : Display
        ``ax_`` holds one row of panels per sequence for the truth and one per
        estimator; ``predicted`` the rolled frames ``(n_sequences, n_steps,
        n_features_per_frame)`` (a dict of them for a dict of estimators).

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_capsule_roll
    >>> X = np.random.default_rng(0).random((4, 3 * 16))
    >>> tvae = TopographicVAE(1, 3, 3, hidden_layer_sizes=(8,), max_epochs=1).fit(X)
    >>> display = plot_capsule_roll(tvae, X, (4, 4), n_sequences=2)
    >>> display.ax_.shape
    (4, 3)
    """
    plt = _pyplot()
    if not _is_int(n_sequences) or n_sequences < 1:
        raise ValueError(f"n_sequences must be a positive int; got {n_sequences!r}.")
    models = estimator if isinstance(estimator, dict) else {"rolled": estimator}
    if not models:
        raise ValueError("estimator is an empty dict: pass {label: estimator}.")
    for model in models.values():
        _check_vae(model)
    first = next(iter(models.values()))
    S = first.sequence_length_
    image_shape = _check_frames(first, image_shape, n_channels)
    n_steps = S if n_steps is None else _count("n_steps", n_steps, 1, S)
    X = first._validate_sequences(X, reset=False)[:n_sequences].float().numpy()
    frames = X.reshape(len(X), S, -1)
    # frame 0's reconstruction, then its rolls by 1 .. n_steps - 1
    predicted = {label: est.predict_sequence(frames[:, 0], max(n_steps - 1, 1),
                                             include_observed=True).reshape(
                     len(X), -1, frames.shape[-1])[:, :n_steps]
                 for label, est in models.items()}
    rows = [("true", _as_images(frames[:, :n_steps], image_shape, n_channels))]
    rows += [(label, _as_images(p, image_shape, n_channels)) for label, p in predicted.items()]
    per = len(rows)
    fig, axes = plt.subplots(per * len(X), n_steps, squeeze=False,
                             figsize=(0.9 * n_steps, 0.95 * per * len(X) + 0.4))
    for i in range(len(X)):
        for r, (label, images) in enumerate(rows):
            for k in range(n_steps):
                ax = axes[per * i + r, k]
                ax.imshow(images[i, k], cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
            axes[per * i + r, 0].set_ylabel(label, fontsize=8)
    for k in range(n_steps):
        axes[0, k].set_title(str(k), fontsize=8)
    fig.supxlabel("frame k of the sequence / frame 0's capsules rolled by k", fontsize=9)
    fig.tight_layout(pad=0.2)
    return Display(fig, axes, predicted=predicted if isinstance(estimator, dict)
                   else predicted["rolled"])


def plot_forecast(estimator: _BaseVAE, X: ArrayLike, image_shape: tuple[int, int],
                  n_observed: int, *, n_channels: int = 1, n_sequences: int = 3) -> Display:
    """Forecasts of partly seen sequences beside the truth.

    For each sequence: the true frames, then the forecast
    (:meth:`~sktvae.TopographicVAE.predict_sequence` given the first ``n_observed``
    frames), with the seen frames' reconstructions greyed out beside it.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Whole sequences; the first ``n_sequences`` are shown.
    image_shape : tuple of int
        ``(height, width)`` of a frame.
    n_observed : int
        Frames given, ``1 .. sequence_length - 1``.
    n_channels : int, default=1
        Channels per frame (3 for colour).
    n_sequences : int, default=3
        Sequences to show.

    Returns
    -------
    display : Display
        ``ax_`` holds two rows of ``sequence_length`` panels per sequence, "true" and
        "forecast"; ``predicted`` the forecast frames ``(n_sequences, sequence_length
        - n_observed, n_features_per_frame)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_forecast
    >>> X = np.random.default_rng(0).random((4, 4 * 16))
    >>> tvae = TopographicVAE(1, 4, 4, hidden_layer_sizes=(8,), max_epochs=1).fit(X)
    >>> plot_forecast(tvae, X, (4, 4), n_observed=2, n_sequences=2).predicted.shape
    (2, 2, 16)
    """
    plt = _pyplot()
    _check_vae(estimator)
    if not _is_int(n_sequences) or n_sequences < 1:
        raise ValueError(f"n_sequences must be a positive int; got {n_sequences!r}.")
    S = estimator.sequence_length_
    if not _is_int(n_observed) or not 1 <= n_observed < S:
        raise ValueError(f"n_observed must be an int in 1 .. sequence_length - 1 = "
                         f"{S - 1}; got {n_observed!r}.")
    image_shape = _check_frames(estimator, image_shape, n_channels)
    X = estimator._validate_sequences(X, reset=False)[:n_sequences].float().numpy()
    frames = X.reshape(len(X), S, -1)
    k = int(n_observed)
    shown = estimator.predict_sequence(frames[:, :k].reshape(len(X), -1),
                                       include_observed=True).reshape(len(X), S, -1)
    true = _as_images(frames, image_shape, n_channels)
    pred = _as_images(shown, image_shape, n_channels)
    fig, axes = plt.subplots(2 * len(X), S, squeeze=False,
                             figsize=(0.9 * S, 1.9 * len(X)))
    for i in range(len(X)):
        for l in range(S):
            for row, images in ((2 * i, true), (2 * i + 1, pred)):
                ax = axes[row, l]
                seen_reconstruction = row == 2 * i + 1 and l < k
                ax.imshow(images[i, l], cmap="gray", vmin=0, vmax=1,
                          alpha=0.35 if seen_reconstruction else 1.0)
                ax.set_xticks([])
                ax.set_yticks([])
        axes[2 * i, 0].set_ylabel("true", fontsize=8)
        axes[2 * i + 1, 0].set_ylabel("forecast", fontsize=8)
    for l in range(S):
        axes[0, l].set_title("seen" if l < k else f"+{l - k + 1}", fontsize=8)
    fig.tight_layout(pad=0.2)
    return Display(fig, axes, predicted=shown[:, k:])


def plot_forecast_error(errors: dict, *, metric: str = "mse", baselines: bool = True,
                        ax: Axes | None = None) -> Display:
    """Forecast error against horizon for several models, with the baselines.

    Parameters
    ----------
    errors : dict of str to Bunch
        Model name to the output of :func:`sktvae.metrics.forecast_error` (all for
        the same sequences and ``n_observed``).
    metric : {"mse", "cross_entropy"}, default="mse"
        Which error to draw (``"cross_entropy"`` for Bernoulli models).
    baselines : bool, default=True
        Also draw the first entry's baselines (repeat the last seen frame; the mean
        of the seen frames), dashed.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure by default.

    Returns
    -------
    display : Display
        ``ax_`` holds one line per model (and per baseline).

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.metrics import forecast_error
    >>> from sktvae.plotting import plot_forecast_error
    >>> X = np.random.default_rng(0).random((6, 4 * 6))
    >>> tvae = TopographicVAE(2, 4, 4, hidden_layer_sizes=(8,), max_epochs=1).fit(X)
    >>> display = plot_forecast_error({"TVAE": forecast_error(tvae, X, 1)})
    >>> len(display.ax_.lines)
    3
    """
    plt = _pyplot()
    if metric not in ("mse", "cross_entropy"):
        raise ValueError(f"metric must be 'mse' or 'cross_entropy'; got {metric!r}.")
    if not isinstance(errors, dict) or not errors:
        raise ValueError("errors must be a non-empty dict {name: forecast_error(...)}, "
                         f"one per model; got {type(errors).__name__}.")
    needed = ("horizon", "mse_repeat_last", "mse_mean_observed")
    for name, e in errors.items():
        if not hasattr(e, "keys") or any(k not in e for k in needed):
            raise ValueError(f"errors[{name!r}] is not the output of "
                             "sktvae.metrics.forecast_error (it needs "
                             f"{', '.join(needed)}).")
    missing = [name for name, e in errors.items() if metric not in e]
    if missing:
        raise ValueError(f"{', '.join(missing)} has no {metric!r} (cross-entropy is "
                         "measured for Bernoulli models only); pass metric='mse'.")
    fig, ax = _figure_and_ax(plt, ax, (5, 3.5))
    for name, e in errors.items():
        ax.plot(e["horizon"], e[metric], marker="o", markersize=3, label=name)
    if baselines:
        first = next(iter(errors.values()))
        for suffix, label in (("_repeat_last", "repeat last seen frame"),
                              ("_mean_observed", "mean of seen frames")):
            ax.plot(first["horizon"], first[metric + suffix], linestyle="--",
                    color="0.5" if suffix == "_repeat_last" else "0.75", label=label)
    ax.set_xlabel("horizon (frames after the last seen one)")
    ax.set_ylabel("mean squared error per feature" if metric == "mse"
                  else "cross-entropy (nats per frame)")
    ax.legend(fontsize=8)
    return Display(fig, ax)


def plot_topographic_map(estimator: _BaseVAE, X: ArrayLike, *, sequence: int = 0,
                         center: bool = True) -> Display:
    """The capsules of every frame of one sequence as images, one panel per frame.

    Each panel shows ``t`` as an ``(n_capsules, capsule_dim)`` array (tori stacked:
    ``(n_capsules * rows, cols)``); with equivariant capsules the pattern moves one
    column to the right per frame.

    Parameters
    ----------
    estimator : TopographicVAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences.
    sequence : int, default=0
        Row of ``X`` to show.
    center : bool, default=True
        Remove each capsule's mean, so the rolling pattern is visible.

    Returns
    -------
    display : Display
        One panel per frame in ``ax_``; ``latents`` the images shown,
        ``(sequence_length, rows, cols)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_topographic_map
    >>> X = np.random.default_rng(0).random((4, 3 * 16))
    >>> tvae = TopographicVAE(2, 3, 3, hidden_layer_sizes=(8,), max_epochs=1).fit(X)
    >>> plot_topographic_map(tvae, X).latents.shape
    (3, 2, 3)
    """
    plt = _pyplot()
    _check_vae(estimator)
    if not hasattr(estimator, "n_capsules"):
        raise TypeError(f"plot_topographic_map draws a TopographicVAE's capsules; a "
                        f"{type(estimator).__name__} has none (plot_class_selectivity "
                        "with grid_shape= draws a VAE's units on a grid).")
    S = estimator.sequence_length_
    shape = (estimator.n_capsules, *estimator._capsule_shape)
    X = np.asanyarray(X)
    sequence = _count("sequence", sequence, 0, len(X) - 1)
    T = estimator.transform(X[sequence:sequence + 1]).reshape(S, *shape)
    if center:  # each capsule's mean over its units
        T = T - T.mean(tuple(range(2, T.ndim)), keepdims=True)
    T = _grid_image(T.reshape(S, -1), shape)
    limit = np.abs(T).max() or 1.0
    rows, cols = T.shape[1:]
    fig, axes = plt.subplots(1, S, squeeze=False,
                             figsize=(0.8 * S, 0.8 * rows / cols + 0.6))
    for l, ax in enumerate(axes[0]):
        ax.imshow(T[l], cmap="coolwarm", vmin=-limit, vmax=limit)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(l), fontsize=8)
    fig.tight_layout(pad=0.2)
    return Display(fig, axes[0], latents=T)


def plot_training_curves(*estimators: _BaseVAE, labels: list[str] | None = None,
                         keys: str | tuple[str, ...] | None = None,
                         ax: Axes | None = None) -> Display:
    """Losses per epoch from skorch's history of one or more fitted estimators.

    Parameters
    ----------
    *estimators : fitted TopographicVAE or VAE
        Estimators whose ``history_`` to draw.
    labels : list of str, default=None
        Legend labels; class names by default.
    keys : str or tuple of str, default=None
        History columns to draw, each of which some estimator must have recorded;
        ``None`` draws ``"train_loss"`` and, where recorded, ``"valid_loss"``.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure by default.

    Returns
    -------
    display : Display
        ``ax_`` holds one line per estimator and key.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import VAE
    >>> from sktvae.plotting import plot_training_curves
    >>> X = np.random.default_rng(0).random((8, 6))
    >>> vae = VAE(2, hidden_layer_sizes=(8,), max_epochs=3).fit(X)
    >>> len(plot_training_curves(vae).ax_.lines)
    1
    """
    plt = _pyplot()
    if not estimators:
        raise ValueError("plot_training_curves needs at least one fitted estimator.")
    labels = [type(e).__name__ for e in estimators] if labels is None else list(labels)
    if len(labels) != len(estimators):
        raise ValueError(f"labels has {len(labels)} entries for {len(estimators)} "
                         "estimators: give one label per estimator.")
    given = keys is not None
    keys = ("train_loss", "valid_loss") if keys is None else (
        (keys,) if isinstance(keys, str) else tuple(keys))
    for est in estimators:
        _check_vae(est)
        if not len(est.history_):
            raise ValueError(f"{type(est).__name__} has trained no epoch (max_epochs=0): "
                             "there is no curve to draw.")
    present = {k for est in estimators for row in est.history_ for k in row}
    unknown = [k for k in keys if k not in present] if given else []
    if not keys or unknown:
        raise ValueError(f"keys {unknown or list(keys)!r} are in no estimator's history; "
                         f"it holds {sorted(k for k in present if k != 'batches')}.")
    fig, ax = _figure_and_ax(plt, ax, (5, 3.5))
    for est, label in zip(estimators, labels):
        for key in keys:
            # epochs that recorded the key (an interrupted epoch may hold no loss)
            rows = [row for row in est.history_ if key in row]
            if rows:
                # markers while epochs are few: a one-epoch curve is a single point
                ax.plot([row["epoch"] for row in rows], [row[key] for row in rows],
                        label=f"{label} {key}", marker="o" if len(rows) <= 30 else None,
                        markersize=3)
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO per sequence (nats)")
    ax.legend()
    return Display(fig, ax)


# --- topographic maps -------------------------------------------------------------
def _figure_and_ax(plt, ax, figsize):
    if ax is None:  # constrained layout: axis labels are never clipped
        return plt.subplots(figsize=figsize, layout="constrained")
    return ax.figure, ax


def _grid_image(values, grid_shape):
    """Unit values ``(..., n_units)`` as images of the grid ``(..., rows, cols)``: a
    torus is its rows x cols; capsules are stacked top to bottom (a ring is one row)."""
    values = np.asarray(values)
    n_capsules, *capsule = grid_shape
    rows, cols = (1, *capsule) if len(capsule) == 1 else capsule
    return values.reshape(*values.shape[:-1], n_capsules * rows, cols)


def _image_shape(estimator, image_shape, n_channels):
    """The caller's image shape, or square frames."""
    if image_shape is not None:
        return tuple(image_shape)
    side = math.isqrt(estimator.n_features_per_frame_ // n_channels)
    if side * side * n_channels != estimator.n_features_per_frame_:
        raise ValueError(
            f"Frames of {estimator.n_features_per_frame_} features are not square "
            f"images of {n_channels} channel(s): pass image_shape=(height, width).")
    return side, side


def _mosaic(images, n_rows, n_cols, gap=1):
    """Images ``(n, H, W[, 3])`` tiled row by row into one image with white gaps (0 in
    grey images, drawn with ink dark on white; 1 in colour ones)."""
    n, H, W = images.shape[:3]
    out = np.full((n_rows * (H + gap) - gap, n_cols * (W + gap) - gap, *images.shape[3:]),
                  float(images.ndim == 4), dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, n_cols)
        out[r * (H + gap):r * (H + gap) + H, c * (W + gap):c * (W + gap) + W] = images[i]
    return out


def _show_mosaic(plt, ax, mosaic, title, n_channels):
    fig, ax = _figure_and_ax(plt, ax, (6, 6 * mosaic.shape[0] / mosaic.shape[1]))
    ax.imshow(mosaic, cmap="gray_r" if n_channels == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(title, fontsize=9)
    return fig, ax


def plot_class_selectivity(estimator: _BaseVAE, X: ArrayLike, y: ArrayLike, *,
                           threshold: float = 0.85,
                           grid_shape: tuple[int, ...] | None = None,
                           class_names: list[str] | None = None,
                           ax: Axes | None = None) -> Display:
    """Per-class selectivity maps and the map of preferred classes (Figure 3).

    For each class, the d' of every unit (:func:`sktvae.metrics.class_selectivity`)
    drawn on the latent's grid; and one map in which each unit whose largest d' reaches
    ``threshold`` takes the colour of the class it prefers (white: selective for none).
    On a torus, neighbouring pixels are neighbouring units, so a topographic map shows
    patches of one colour.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences (images, for ``sequence_length=1``).
    y : array-like of shape (n_sequences,)
        Class labels.
    threshold : float, default=0.85
        d' from which a unit counts as selective (the paper's).
    grid_shape : tuple of int, default=None
        The grid to draw on, as for :func:`sktvae.metrics.topographic_organization`;
        required for a ``VAE``.
    class_names : list of str, default=None
        Legend labels, in ``np.unique(y)`` order.
    ax : matplotlib.axes.Axes, default=None
        Draw only the preferred-class map, into this axes; by default a new figure
        with every class's map beside it.

    Returns
    -------
    display : Display
        ``ax_``: the panels (the preferred-class map last); ``selectivity``
        ``(n_classes, n_latent)``; ``classes``; ``preferred`` the grid image of each
        unit's preferred class index, ``-1`` where none passes ``threshold``.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_class_selectivity
    >>> X = np.random.default_rng(0).random((30, 16))
    >>> tvae = TopographicVAE(1, (3, 4), 1, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> display = plot_class_selectivity(tvae, X, np.arange(30) % 3)
    >>> display.preferred.shape, len(display.ax_)
    ((3, 4), 4)
    """
    from .metrics import _grid_shape, class_selectivity

    plt = _pyplot()
    grid = _grid_shape(estimator, grid_shape)
    d_prime = class_selectivity(estimator, X, y, target_type="classes")
    classes = np.unique(np.asarray(y))
    names = [str(c) for c in classes] if class_names is None else list(class_names)
    if len(names) != len(classes):
        raise ValueError(f"class_names has {len(names)} entries for {len(classes)} "
                         "classes.")
    maps = _grid_image(d_prime, grid)  # (n_classes, rows, cols)
    preferred = np.where(maps.max(0) >= threshold, maps.argmax(0), -1)
    if ax is None:
        n_cols = math.ceil(len(classes) / 2)
        fig = plt.figure(figsize=(1.5 * n_cols + 3.6, 3.4))
        spec = fig.add_gridspec(2, n_cols + 2, width_ratios=[1] * n_cols + [1.2, 1.2])
        axes = [fig.add_subplot(spec[i // n_cols, i % n_cols])
                for i in range(len(classes))]
        limit = np.abs(maps).max() or 1.0
        for a, m, name in zip(axes, maps, names):
            image = a.imshow(m, cmap="coolwarm", vmin=-limit, vmax=limit)
            a.set_xticks([])
            a.set_yticks([])
            a.set_title(name, fontsize=8)
        fig.colorbar(image, ax=axes, shrink=0.8, label="d'")
        ax = fig.add_subplot(spec[:, n_cols:])
        panels = np.array([*axes, ax], dtype=object)
    else:
        fig, panels = ax.figure, ax
    _draw_preferred(plt, ax, preferred, names, threshold)
    return Display(fig, panels, selectivity=d_prime, classes=classes,
                   preferred=preferred)


def _draw_preferred(plt, ax, preferred, names, threshold):
    from matplotlib.patches import Patch

    colours = plt.get_cmap("tab10" if len(names) <= 10 else "tab20")
    rgb = np.ones((*preferred.shape, 3))
    for k in range(len(names)):
        rgb[preferred == k] = colours(k % colours.N)[:3]
    ax.imshow(rgb, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"preferred class (d' >= {threshold:g})", fontsize=9)
    handles = [Patch(color=colours(k % colours.N), label=n) for k, n in enumerate(names)
               if (preferred == k).any()]
    if handles:
        ax.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5),
                  fontsize=7, frameon=False)


def plot_max_activating(estimator: _BaseVAE, X: ArrayLike,
                        image_shape: tuple[int, int] | None = None, *, n_channels: int = 1,
                        grid_shape: tuple[int, ...] | None = None,
                        ax: Axes | None = None) -> Display:
    """For each latent unit, the input frame that activates it most, on the grid.

    A unit's activation is as in :func:`sktvae.metrics.class_selectivity` (a TVAE's
    ``-t`` while its ``mu`` is positive).

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Candidate inputs; every frame is one candidate.
    image_shape : tuple of int, default=None
        ``(height, width)`` of a frame; ``None`` for square frames.
    n_channels : int, default=1
        Channels per frame (3 for colour).
    grid_shape : tuple of int, default=None
        As for :func:`sktvae.metrics.topographic_organization`; required for a ``VAE``.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure by default.

    Returns
    -------
    display : Display
        ``ax_`` the panel; ``indices`` the grid image of the frame index (in
        ``X.reshape(-1, n_features_per_frame_)``) that activates each unit most.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_max_activating
    >>> X = np.random.default_rng(0).random((30, 16))
    >>> tvae = TopographicVAE(1, (3, 4), 1, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> plot_max_activating(tvae, X).indices.shape
    (3, 4)
    """
    from .metrics import _activations, _check_vae, _grid_shape

    plt = _pyplot()
    _check_vae(estimator)
    grid = _grid_shape(estimator, grid_shape)
    shape = _image_shape(estimator, image_shape, n_channels)
    frames = np.asarray(X, dtype=np.float32).reshape(-1, estimator.n_features_per_frame_)
    indices = _grid_image(_activations(estimator, X).argmax(0), grid)  # (rows, cols)
    images = _as_images(frames[indices.ravel()], shape, n_channels)
    fig, ax = _show_mosaic(plt, ax, _mosaic(images, *indices.shape),
                           "most activating input of each unit", n_channels)
    return Display(fig, ax, indices=indices)


def plot_samples(estimator: _BaseVAE, n_samples: int = 16,
                 image_shape: tuple[int, int] | None = None, *, n_channels: int = 1,
                 random_state: int | np.random.RandomState | None = None,
                 ax: Axes | None = None) -> Display:
    """Samples from the prior, decoded, as one grid of images.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    n_samples : int, default=16
        Sequences to draw (:meth:`~sktvae.TopographicVAE.sample`). Single images are
        tiled in a square; sequences one per row, frames left to right.
    image_shape : tuple of int, default=None
        ``(height, width)`` of a frame; ``None`` for square frames.
    n_channels : int, default=1
        Channels per frame (3 for colour).
    random_state : int, RandomState instance or None, default=None
        Seed of the prior draws.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw into; a new figure by default.

    Returns
    -------
    display : Display
        ``ax_`` the panel; ``samples`` the decoded sequences
        ``(n_samples, n_features_in_)``.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_samples
    >>> X = np.random.default_rng(0).random((30, 16))
    >>> tvae = TopographicVAE(1, (3, 4), 1, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> plot_samples(tvae, 4, random_state=0).samples.shape
    (4, 16)
    """
    plt = _pyplot()
    shape = _image_shape(estimator, image_shape, n_channels)
    samples = estimator.sample(n_samples, random_state=random_state)
    S = estimator.sequence_length_
    images = _as_images(samples.reshape(n_samples * S, -1), shape, n_channels)
    n_rows, n_cols = n_samples, S
    if S == 1:
        n_cols = math.ceil(math.sqrt(n_samples))
        n_rows = math.ceil(n_samples / n_cols)
    fig, ax = _show_mosaic(plt, ax, _mosaic(images, n_rows, n_cols),
                           "samples from the prior", n_channels)
    return Display(fig, ax, samples=samples)
