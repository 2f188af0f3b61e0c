"""Figures: capsule-roll traversals, topographic maps and training curves (matplotlib).

matplotlib is an optional dependency (``pip install sktvae[plot]``); every function
returns the figure so it can be saved or changed.
"""

import numpy as np


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError("sktvae.plotting needs matplotlib: pip install "
                          "'sktvae[plot]'") from exc
    return plt


def _as_images(frames, image_shape, n_channels):
    """``(..., C*H*W)`` -> images for imshow: ``(..., H, W)`` or ``(..., H, W, 3)``."""
    H, W = image_shape
    frames = np.clip(np.asarray(frames, dtype=np.float32), 0, 1)
    if n_channels == 1:
        return frames.reshape(*frames.shape[:-1], H, W)
    images = frames.reshape(*frames.shape[:-1], n_channels, H, W)
    return np.moveaxis(images, -3, -1)


def plot_capsule_roll(estimator, X, image_shape, *, n_channels=1, n_sequences=3,
                      n_steps=None):
    """Capsule traversals beside the true sequences.

    For each sequence: the true frames, then the frames decoded after encoding frame 0
    alone and rolling its capsules by ``0, 1, 2, ...`` (``predict_sequence``).

    Parameters
    ----------
    estimator : TopographicVAE
        Fitted estimator.
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
    fig : matplotlib.figure.Figure
        Two rows per sequence: "true" and "rolled".

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_capsule_roll
    >>> X = np.random.default_rng(0).random((4, 3 * 16))
    >>> tvae = TopographicVAE(1, 3, 3, hidden_layer_sizes=(8,), max_epochs=1).fit(X)
    >>> fig = plot_capsule_roll(tvae, X, (4, 4), n_sequences=2)
    >>> len(fig.axes)
    12
    """
    plt = _pyplot()
    X = np.asarray(X, dtype=np.float32)[:n_sequences]
    S = estimator.sequence_length
    n_steps = S if n_steps is None else n_steps
    frames = X.reshape(len(X), S, -1)
    pred = estimator.predict_sequence(frames[:, 0], n_steps).reshape(len(X), n_steps, -1)
    true = _as_images(frames[:, :n_steps], image_shape, n_channels)
    pred = _as_images(pred, image_shape, n_channels)
    fig, axes = plt.subplots(2 * len(X), n_steps, squeeze=False,
                             figsize=(0.9 * n_steps, 1.9 * len(X)))
    for i in range(len(X)):
        for k in range(n_steps):
            for row, images in ((2 * i, true), (2 * i + 1, pred)):
                ax = axes[row, k]
                ax.imshow(images[i, k], cmap="gray", vmin=0, vmax=1)
                ax.set_xticks([])
                ax.set_yticks([])
        axes[2 * i, 0].set_ylabel("true", fontsize=8)
        axes[2 * i + 1, 0].set_ylabel("rolled", fontsize=8)
    for k in range(n_steps):
        axes[0, k].set_title(str(k), fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def plot_topographic_map(estimator, X, *, sequence=0, center=True):
    """The capsules of every frame of one sequence as images, one panel per frame.

    Each panel shows ``t`` as an ``(n_capsules, capsule_dim)`` array; with equivariant
    capsules the pattern moves one column to the right per frame.

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
    fig : matplotlib.figure.Figure
        One panel per frame.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.plotting import plot_topographic_map
    >>> X = np.random.default_rng(0).random((4, 3 * 16))
    >>> tvae = TopographicVAE(2, 3, 3, hidden_layer_sizes=(8,), max_epochs=1).fit(X)
    >>> len(plot_topographic_map(tvae, X).axes)
    3
    """
    plt = _pyplot()
    S, C, D = estimator.sequence_length, estimator.n_capsules, estimator.capsule_dim
    T = estimator.transform(np.asarray(X)[sequence:sequence + 1]).reshape(S, C, D)
    if center:
        T = T - T.mean(-1, keepdims=True)
    limit = np.abs(T).max() or 1.0
    fig, axes = plt.subplots(1, S, squeeze=False, figsize=(0.8 * S, 0.8 * C / D + 0.6))
    for l, ax in enumerate(axes[0]):
        ax.imshow(T[l], cmap="coolwarm", vmin=-limit, vmax=limit)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_title(str(l), fontsize=8)
    fig.tight_layout(pad=0.2)
    return fig


def plot_training_curves(*estimators, labels=None, keys=("train_loss", "valid_loss")):
    """Losses per epoch from skorch's history of one or more fitted estimators.

    Parameters
    ----------
    *estimators : fitted TopographicVAE or VAE
        Estimators whose ``history_`` to draw.
    labels : list of str, default=None
        Legend labels; class names by default.
    keys : tuple of str, default=("train_loss", "valid_loss")
        History columns to draw where present.

    Returns
    -------
    ax : matplotlib.axes.Axes
        The axes with one line per estimator and key.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import VAE
    >>> from sktvae.plotting import plot_training_curves
    >>> X = np.random.default_rng(0).random((8, 6))
    >>> vae = VAE(2, hidden_layer_sizes=(8,), max_epochs=3).fit(X)
    >>> len(plot_training_curves(vae).lines)
    1
    """
    plt = _pyplot()
    labels = labels or [type(e).__name__ for e in estimators]
    _, ax = plt.subplots(figsize=(5, 3.5))
    for est, label in zip(estimators, labels):
        history = est.history_
        epochs = history[:, "epoch"]
        for key in keys:
            if all(key in row for row in history):
                ax.plot(epochs, history[:, key], label=f"{label} {key}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative ELBO per sequence (nats)")
    ax.legend()
    return ax
