"""How equivariant are the capsules? The paper's measures, and a functional one.

* ``equivariance_error``: the paper's E_eq (lower is better), optionally centred so that
  roll-invariant (constant) capsules cannot score well without being equivariant.
* ``roll_prediction_accuracy``: does rolling the capsules of one frame by ``k`` decode
  to the frame ``k`` steps later? The test that a blurry decoder cannot pass.
* ``capsule_roll_correlation``: the paper's CapCorr, the correlation between the true
  shift of each frame and the roll observed in its capsules.

All take a fitted ``TopographicVAE`` or ``VAE`` and sequences ``X``. A VAE's latent is
cut into capsules the same way (``capsule_shape``) so the two are measured alike.
"""

import math

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted


def _capsule_shape(estimator, capsule_shape):
    if capsule_shape is not None:
        C, D = capsule_shape
    elif hasattr(estimator, "n_capsules"):
        C, D = estimator.n_capsules, estimator.capsule_dim
    else:
        n = estimator._n_latent
        D = math.isqrt(n)
        if D * D != n:
            raise ValueError(
                f"Cannot cut {n} latent dimensions into square capsules: pass "
                "capsule_shape=(n_capsules, capsule_dim) with a product of "
                f"{n}.")
        C = D
    if C * D != estimator._n_latent:
        raise ValueError(f"capsule_shape={(C, D)} does not cover the "
                         f"{estimator._n_latent} latent dimensions of a frame.")
    return C, D


def _capsules(estimator, X, capsule_shape):
    """t of every frame as ``(n, S, C, D)``."""
    check_is_fitted(estimator, "net_")
    C, D = _capsule_shape(estimator, capsule_shape)
    T = estimator.transform(X)
    return T.reshape(len(T), estimator.sequence_length, C, D).astype(np.float64)


def equivariance_error_from_latents(T, center=False):
    """E_eq of latents ``T`` of shape ``(n_sequences, S, n_capsules, capsule_dim)``.

    Every capsule is normalised to unit L2 norm (after removing its mean over its
    dimensions if ``center``); for every pair of frames ``l < m`` the L1 distance
    between frame ``l`` rolled by ``m - l`` and frame ``m`` is summed over capsules and
    dimensions; the sum over pairs is averaged over sequences.

    Parameters
    ----------
    T : array-like of shape (n_sequences, S, n_capsules, capsule_dim)
        Latents.
    center : bool, default=False
        Remove each capsule's mean before normalising.

    Returns
    -------
    error : float
        Mean E_eq per sequence; 0 for capsules that roll one step per frame.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae.metrics import equivariance_error_from_latents
    >>> t0 = np.random.default_rng(0).normal(size=(1, 1, 2, 5))
    >>> rolling = np.concatenate([np.roll(t0, l, axis=-1) for l in range(5)], axis=1)
    >>> float(round(equivariance_error_from_latents(rolling), 12))
    0.0
    """
    T = np.asarray(T, dtype=np.float64)
    if T.ndim != 4:
        raise ValueError(f"T must be (n_sequences, S, n_capsules, capsule_dim); got "
                         f"shape {T.shape}.")
    if center:
        T = T - T.mean(-1, keepdims=True)
    T = T / np.maximum(np.linalg.norm(T, axis=-1, keepdims=True), 1e-12)
    S = T.shape[1]
    total = np.zeros(len(T))
    for offset in range(1, S):
        rolled = np.roll(T[:, :S - offset], offset, axis=-1)
        total += np.abs(rolled - T[:, offset:]).sum(axis=(1, 2, 3))
    return float(total.mean())


def equivariance_error(estimator, X, *, center=False, capsule_shape=None):
    """The paper's equivariance error E_eq of a fitted estimator on sequences ``X``.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences whose frames are successive steps of a cyclic transformation.
    center : bool, default=False
        Remove each capsule's mean over its dimensions before normalising. A capsule
        that is constant along its dimensions is roll-invariant and scores about 0
        without being equivariant; the centred error does not reward it. Report both.
    capsule_shape : tuple of int, default=None
        ``(n_capsules, capsule_dim)`` to cut a VAE's latent into; inferred for a
        ``TopographicVAE`` and for square latent sizes.

    Returns
    -------
    error : float
        Mean over sequences of the summed L1 errors; lower is better.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.metrics import equivariance_error
    >>> X = np.random.default_rng(0).random((10, 4 * 6))
    >>> tvae = TopographicVAE(2, 4, 4, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> equivariance_error(tvae, X) >= 0
    True
    """
    return equivariance_error_from_latents(_capsules(estimator, X, capsule_shape), center)


def make_equivariance_scorer(*, center=True, capsule_shape=None):
    """A scorer for ``GridSearchCV(scoring=...)``: minus the equivariance error.

    Parameters
    ----------
    center : bool, default=True
        Use the centred error (see :func:`equivariance_error`).
    capsule_shape : tuple of int, default=None
        As for :func:`equivariance_error`.

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y=None)``; greater is better. In a pipeline the last
        step's transform is scored on the sequences the earlier steps produce.

    Examples
    --------
    >>> from sktvae.metrics import make_equivariance_scorer
    >>> scorer = make_equivariance_scorer()
    """
    def scorer(estimator, X, y=None):
        if hasattr(estimator, "steps"):  # a Pipeline: score its last step's input
            X = estimator[:-1].transform(X) if len(estimator.steps) > 1 else X
            estimator = estimator[-1]
        return -equivariance_error(estimator, X, center=center,
                                   capsule_shape=capsule_shape)
    return scorer


def _frames(estimator, X):
    X = np.asarray(X, dtype=np.float32)
    S = estimator.sequence_length
    return X.reshape(len(X), S, -1)


def roll_prediction_accuracy(estimator, X, *, tolerance=1, capsule_shape=None,
                             by_shift=False):
    """Fraction of capsule rolls of frame 0 that decode to the right later frame.

    Frame 0 of each sequence is encoded on its own; its capsules are rolled by
    ``k = 1 .. S-1``; the decoded image counts as right when the nearest true frame of
    the sequence (mean squared error) is frame ``k`` within ``tolerance`` steps of the
    cycle. Chance is ``(2 * tolerance + 1) / S``. A decoder that blurs towards the mean
    image cannot win it, since it must pick out one frame among the sequence's own. A
    roll that does not move the image at all (it decodes to frame 0 again) still counts
    for the ``tolerance`` shortest rolls either way: ``2 * tolerance / (S - 1)`` of the
    rolls, so compare with ``tolerance=0`` before reading short rolls as learnt.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences, one cycle of ``sequence_length`` steps each.
    tolerance : int, default=1
        Steps of slack, counted around the cycle.
    capsule_shape : tuple of int, default=None
        As for :func:`equivariance_error` (for a VAE).
    by_shift : bool, default=False
        Return the accuracy of each roll ``k = 1 .. S-1`` instead of their mean: shows
        whether short rolls work and long ones fail (partial equivariance). Read it
        with ``tolerance=0`` too: at ``tolerance=1`` rolls ``1`` and ``S-1`` pass even
        when nothing moves.

    Returns
    -------
    accuracy : float or ndarray of shape (sequence_length - 1,)
        In [0, 1]; an array when ``by_shift=True``.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import VAE
    >>> from sktvae.metrics import roll_prediction_accuracy
    >>> X = np.random.default_rng(0).random((10, 4 * 6))
    >>> vae = VAE(4, 4, hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X)
    >>> 0 <= roll_prediction_accuracy(vae, X) <= 1
    True
    """
    check_is_fitted(estimator, "net_")
    C, D = _capsule_shape(estimator, capsule_shape)
    frames = _frames(estimator, X)
    t0 = estimator._encode_frames(frames[:, 0]).reshape(len(frames), C, D)
    S = frames.shape[1]
    hits = _cycle_hits(_rolled_nearest_frames(estimator, t0, frames), np.arange(1, S), S,
                       tolerance)
    return hits.mean(0) if by_shift else float(hits.mean())


def _rolled_nearest_frames(estimator, t0, frames, capsules=None):
    """Roll capsules ``t0`` ``(n, C, D)`` by ``k = 1 .. S-1``, decode, and return the
    index of the true frame of ``frames`` ``(n, S, F)`` nearest to each decoded image,
    ``(n, S-1)``: the step of :func:`roll_prediction_accuracy` after encoding, for any
    ``t0`` (a diagnostic can pass frame 0's latent encoded in its sequence, or roll
    only the capsules where the boolean ``(C,)`` mask ``capsules`` is true).
    """
    n, S, F = frames.shape
    C, D = t0.shape[1:]
    rolled = np.stack([np.roll(t0, k, axis=-1) for k in range(1, S)], axis=1)
    if capsules is not None:  # the other capsules keep their values
        rolled = np.where(np.asarray(capsules)[:, None], rolled, t0[:, None])
    rolled = torch.from_numpy(np.ascontiguousarray(rolled, dtype=np.float32))
    decoded = estimator._decode(rolled.reshape(n, S - 1, C * D))  # (n, (S-1) * F)
    return _nearest_frames(decoded.reshape(n, S - 1, F), frames)


def _nearest_frames(decoded, frames):
    """Index of the true frame (least mean squared error) nearest to each decoded
    image: ``decoded`` ``(n, k, F)``, ``frames`` ``(n, S, F)`` -> ``(n, k)``."""
    mse = ((decoded[:, :, None, :] - frames[:, None, :, :]) ** 2).mean(-1)  # (n, k, S)
    return mse.argmin(-1)


def _cycle_hits(nearest, targets, S, tolerance=1):
    """Whether frame indices ``nearest`` ``(n, k)`` are within ``tolerance`` steps of
    ``targets`` ``(k,)`` around a cycle of ``S`` frames; boolean ``(n, k)``."""
    distance = np.abs(nearest - np.asarray(targets)[None, :]) % S
    return np.minimum(distance, S - distance) <= tolerance


def capsule_roll_correlation(estimator, X, shifts=None, *, capsule_shape=None):
    """The paper's CapCorr: correlation of true shifts with the rolls seen in capsules.

    For every frame ``l`` the observed roll of each capsule is the ``r`` that maximises
    the periodic cross-correlation ``sum_d t_0[d] * t_l[d + r]`` with frame 0; the mode
    over capsules is the frame's observed roll. The result is the Pearson correlation
    between the true shifts and the observed rolls over all frames ``l >= 1``.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences.
    shifts : array-like of shape (n_sequences, sequence_length), default=None
        True shift of every frame relative to frame 0, in capsule dimensions; ``None``
        means frame ``l`` is shifted by ``l`` (one step per frame).
    capsule_shape : tuple of int, default=None
        As for :func:`equivariance_error` (for a VAE).

    Returns
    -------
    correlation : float
        In [-1, 1]; 1 when every capsule rolls exactly with the transformation; 0 when
        the observed rolls do not vary at all (they carry no information).

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.metrics import capsule_roll_correlation
    >>> X = np.random.default_rng(0).random((10, 4 * 6))
    >>> tvae = TopographicVAE(2, 4, 4, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> -1 <= capsule_roll_correlation(tvae, X) <= 1
    True
    """
    T = _capsules(estimator, X, capsule_shape)
    n, S, C, D = T.shape
    if shifts is None:
        shifts = np.broadcast_to(np.arange(S), (n, S))
    shifts = np.asarray(shifts)
    if shifts.shape != (n, S):
        raise ValueError(f"shifts must have shape (n_sequences, sequence_length) = "
                         f"{(n, S)}; got {shifts.shape}.")
    true, observed = shifts[:, 1:].ravel(), observed_rolls(T)[:, 1:].ravel()
    if observed.std() == 0 or true.std() == 0:
        return 0.0
    return float(np.corrcoef(true, observed)[0, 1])


def observed_rolls(T):
    """Roll of every frame relative to frame 0, the mode over its capsules.

    Parameters
    ----------
    T : array-like of shape (n_sequences, S, n_capsules, capsule_dim)
        Latents.

    Returns
    -------
    rolls : ndarray of shape (n_sequences, S)
        For each frame, the roll ``r`` maximising the periodic cross-correlation with
        frame 0, voted over capsules.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae.metrics import observed_rolls
    >>> t0 = np.random.default_rng(0).normal(size=(1, 1, 3, 6))
    >>> T = np.concatenate([np.roll(t0, 2 * l, axis=-1) for l in range(3)], axis=1)
    >>> observed_rolls(T)
    array([[0, 2, 4]])
    """
    T = np.asarray(T)
    n, S, C, D = T.shape
    # corr[n, l, c, r] = sum_d t_0[d] t_l[d + r], by FFT along the circular capsule axis.
    f0 = np.fft.rfft(T[:, :1], axis=-1)
    fl = np.fft.rfft(T, axis=-1)
    corr = np.fft.irfft(np.conj(f0) * fl, n=D, axis=-1)
    best = corr.argmax(-1)  # (n, S, C)
    counts = (best[..., None] == np.arange(D)).sum(2)  # (n, S, D) votes per roll
    return counts.argmax(-1)
