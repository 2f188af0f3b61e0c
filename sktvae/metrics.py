"""How equivariant are the capsules? The paper's measures, and a functional one.

* ``equivariance_error``: the paper's E_eq (lower is better), optionally centred so that
  roll-invariant (constant) capsules cannot score well without being equivariant.
* ``roll_prediction_accuracy``: does rolling the capsules of one frame by ``k`` decode
  to the frame ``k`` steps later? The test that a blurry decoder cannot pass.
* ``capsule_roll_correlation``: the paper's CapCorr, the correlation between the true
  shift of each frame and the roll observed in its capsules.
* ``forecast_error``: the error of the frames forecast after a partly seen sequence,
  per horizon, beside repeating the last seen frame and the mean of the seen ones.

All take a fitted ``TopographicVAE`` or ``VAE`` and sequences ``X``. A VAE's latent is
cut into capsules the same way (``capsule_shape``) so the two are measured alike. On a
torus (``capsule_dim=(rows, cols)``) a capsule is its ``rows x cols`` units and rolls
along its cols, the axis its window shifts along over time.

And for topographic maps, on i.i.d. data with labels ``y``:

* ``class_selectivity``: each unit's d' for each class (or its correlation with a
  continuous ``y``): the maps of the paper's Figure 3.
* ``topographic_organization``: Moran's I of those maps on the latent's grid: are
  neighbouring units selective for the same thing?
* ``selectivity_summary``: Moran's I beside how selective and how distinct the maps
  are, since W's smoothing alone makes maps of t smooth.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from numbers import Real

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.utils import Bunch
from sklearn.utils.validation import check_is_fitted

from ._base import _BaseVAE
from ._validation import is_int as _is_int


def _capsule_shape(estimator, capsule_shape, name="capsule_shape"):
    """One frame's latent as ``(n_capsules, D)`` rings or ``(n_capsules, rows, cols)``
    tori: the caller's ``capsule_shape``, the estimator's own, or square rings."""
    n = estimator._n_latent
    if capsule_shape is not None:
        shape = tuple(np.atleast_1d(np.asarray(capsule_shape)).tolist())
        if len(shape) not in (2, 3) or not all(
                _is_int(v) and v >= 1 for v in shape):
            raise ValueError(
                f"{name} must be (n_capsules, capsule_dim) for rings or (n_capsules, "
                f"rows, cols) for tori, positive ints; got {capsule_shape!r}.")
    elif hasattr(estimator, "n_capsules"):
        shape = (estimator.n_capsules, *estimator._capsule_shape)
    else:
        D = math.isqrt(n)
        if D * D != n:
            raise ValueError(
                f"Cannot cut {n} latent dimensions into square capsules: pass "
                f"{name}=(n_capsules, capsule_dim) with a product of {n}.")
        shape = (D, D)
    if math.prod(shape) != n:
        raise ValueError(f"{name}={shape} does not cover the {n} latent dimensions "
                         "of a frame.")
    return shape


def _capsules(estimator, X, capsule_shape):
    """t of every frame as ``(n, S, C, D)``, or ``(n, S, C, rows, cols)`` on tori."""
    check_is_fitted(estimator, "net_")
    shape = _capsule_shape(estimator, capsule_shape)
    T = estimator.transform(X)
    return T.reshape(len(T), estimator.sequence_length_, *shape).astype(np.float64)


def _checked(values, name):
    """``values`` as float64, refused when empty or not finite (a diverged model's
    latents, or a slice that selected nothing, would give NaN or a silent 0)."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        raise ValueError(f"{name} is empty (shape {values.shape}): pass at least one "
                         "row.")
    if not np.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or infinity: the measure would be "
                         "meaningless. Check the model (did training diverge?) or the "
                         "input.")
    return values


def _needs_time(S, what):
    if S < 2:
        raise ValueError(f"{what} compares frames of a sequence; with sequence_length="
                         f"{S} there is nothing to compare. Use sequences of 2 or more "
                         "frames.")


def _capsule_axes(T):
    """The axes of one capsule in ``(n, S, C, D)`` or ``(n, S, C, rows, cols)``."""
    if T.ndim not in (4, 5):
        raise ValueError(
            "T must be (n_sequences, S, n_capsules, capsule_dim), or (n_sequences, S, "
            f"n_capsules, rows, cols) for tori; got shape {T.shape}.")
    return tuple(range(3, T.ndim))


def equivariance_error_from_latents(T: ArrayLike, center: bool = False) -> float:
    """E_eq of latents ``T`` of shape ``(n_sequences, S, n_capsules, capsule_dim)``.

    Every capsule is normalised to unit L2 norm (after removing its mean over its
    dimensions if ``center``); for every pair of frames ``l < m`` the L1 distance
    between frame ``l`` rolled by ``m - l`` and frame ``m`` is summed over capsules and
    dimensions; the sum over pairs is averaged over sequences. Tori, ``(n_sequences,
    S, n_capsules, rows, cols)``, are normalised over all their units and rolled along
    their cols.

    Parameters
    ----------
    T : array-like of shape (n_sequences, S, n_capsules, capsule_dim)
        Latents, or ``(n_sequences, S, n_capsules, rows, cols)`` for tori.
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
    axes = _capsule_axes(T)
    T = _checked(T, "T")
    _needs_time(T.shape[1], "The equivariance error")
    if center:
        T = T - T.mean(axes, keepdims=True)
    norm = np.sqrt((T * T).sum(axes, keepdims=True))
    T = T / np.maximum(norm, 1e-12)
    S = T.shape[1]
    total = np.zeros(len(T))
    for offset in range(1, S):
        rolled = np.roll(T[:, :S - offset], offset, axis=-1)
        total += np.abs(rolled - T[:, offset:]).reshape(len(T), -1).sum(1)
    return float(total.mean())


def equivariance_error(estimator: _BaseVAE, X: ArrayLike, *, center: bool = False,
                       capsule_shape: tuple[int, ...] | None = None) -> float:
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
        ``(n_capsules, capsule_dim)``, or ``(n_capsules, rows, cols)`` for tori, to
        cut a VAE's latent into; inferred for a ``TopographicVAE`` and for square
        latent sizes.

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
    _check_vae(estimator)
    return equivariance_error_from_latents(_capsules(estimator, X, capsule_shape), center)


def make_equivariance_scorer(*, center: bool = True,
                             capsule_shape: tuple[int, ...] | None = None) -> Callable:
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


def log_likelihood_per_frame(estimator, X: ArrayLike, y: None = None) -> float:
    """A scorer for ``GridSearchCV(scoring=...)``: held-out log-likelihood per frame.

    ``score`` is the mean log-likelihood of a row, a whole sequence (as scikit-learn's
    ``score`` is of a sample), which grows with the number of frames; this divides it
    by ``sequence_length_``, so that models of different sequence lengths compare.

    Parameters
    ----------
    estimator : TopographicVAE, VAE or a Pipeline ending in one
        Fitted.
    X : array-like of shape (n_samples, n_features)
        Input of ``estimator`` (for a Pipeline, what its first step takes).
    y : None
        Ignored.

    Returns
    -------
    score : float
        Mean importance-sampled log p(x) per frame, in nats; greater is better.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import VAE
    >>> from sktvae.metrics import log_likelihood_per_frame
    >>> X = np.random.default_rng(0).random((10, 4 * 6))
    >>> vae = VAE(2, 4, hidden_layer_sizes=(8,), max_epochs=1, random_state=0).fit(X)
    >>> bool(np.isclose(log_likelihood_per_frame(vae, X), vae.score(X) / 4))
    True
    """
    final = estimator[-1] if hasattr(estimator, "steps") else estimator
    _check_vae(final)
    return float(np.mean(estimator.score_samples(X))) / final.sequence_length_


def _frames(estimator, X):
    """``X`` validated as the estimator's input, as float32 frames ``(n, S, F)``."""
    return estimator._validate_sequences(X, reset=False).float().numpy()


def roll_prediction_accuracy(estimator: _BaseVAE, X: ArrayLike, *, tolerance: int = 1,
                             capsule_shape: tuple[int, ...] | None = None,
                             by_shift: bool = False, encode: str = "alone"
                             ) -> float | NDArray[np.float64]:
    """Fraction of capsule rolls of frame 0 that decode to the right later frame.

    Frame 0 of each sequence is encoded on its own (or, with ``encode="sequence"``,
    taken from the latents of the whole encoded sequence, as the paper's figures
    roll it); its capsules are rolled by
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
    encode : {"alone", "sequence"}, default="alone"
        How frame 0's latent is had: encoded alone (no other frame seen; the harder
        test), or from the whole sequence encoded together (``transform``), whose
        window has seen the frames the rolls should reach.

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
    _check_vae(estimator)
    check_is_fitted(estimator, "net_")
    S = estimator.sequence_length_
    if S < 2:
        raise ValueError("roll_prediction_accuracy needs sequences to roll through; "
                         "this estimator has sequence_length=1.")
    if not _is_int(tolerance) or not 0 <= tolerance < S // 2:
        raise ValueError(f"tolerance must be an int in [0, sequence_length // 2) = [0, "
                         f"{S // 2}) steps, or every roll would pass; got {tolerance!r}.")
    if encode not in ("alone", "sequence"):
        raise ValueError(f"encode must be 'alone' or 'sequence'; got {encode!r}.")
    shape = _capsule_shape(estimator, capsule_shape)
    frames = _frames(estimator, X)
    if encode == "alone":
        t0 = estimator._encode_frames(frames[:, 0]).reshape(len(frames), *shape)
    else:
        t0 = estimator.transform(X).reshape(len(frames), S, *shape)[:, 0]
    hits = _cycle_hits(_rolled_nearest_frames(estimator, t0, frames), np.arange(1, S), S,
                       tolerance)
    return hits.mean(0) if by_shift else float(hits.mean())


def _rolled_nearest_frames(estimator, t0, frames):
    """Roll capsules ``t0`` ``(n, C, *capsule)`` by ``k = 1 .. S-1`` (along the last
    axis), decode, and return the index of the true frame of ``frames`` ``(n, S, F)``
    nearest to each decoded image, ``(n, S-1)``: the step of
    :func:`roll_prediction_accuracy` after encoding.
    """
    n, S, F = frames.shape
    rolled = np.stack([np.roll(t0, k, axis=-1) for k in range(1, S)], axis=1)
    rolled = torch.from_numpy(np.ascontiguousarray(rolled, dtype=np.float32))
    decoded = estimator._decode(rolled.reshape(n, S - 1, -1))  # (n, (S-1) * F)
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


_CLIP = 1e-4  # forecasts are clipped to [_CLIP, 1 - _CLIP] for the cross-entropy


def forecast_error(estimator: _BaseVAE, X: ArrayLike, n_observed: int) -> Bunch:
    """Error of forecasts of the unseen rest of each sequence, per horizon.

    The first ``n_observed`` frames of each sequence are given to
    :meth:`~sktvae.TopographicVAE.predict_sequence`, which forecasts the frames after
    them (a TVAE by rolling its capsules; a VAE repeats its reconstruction of the last
    seen frame, as it cannot roll). Each forecast frame at horizon ``h`` (frame
    ``n_observed - 1 + h``) is compared with the true frame, beside two baselines
    computed in the same call: repeating the last observed frame, and the mean of the
    observed frames.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator with ``sequence_length >= 2``.
    X : array-like of shape (n_sequences, n_features)
        Whole sequences, as for ``fit``; the frames after the observed ones are the
        truth.
    n_observed : int
        Frames seen, ``1 .. sequence_length - 1``.

    Returns
    -------
    errors : sklearn.utils.Bunch
        ``horizon``: ``1 .. sequence_length - n_observed``; ``mse``,
        ``mse_repeat_last``, ``mse_mean_observed``: the mean squared error per feature
        at each horizon (means over sequences and features) of the forecast and the
        two baselines; ``mse_reconstruction``: that of the model's reconstruction of
        the last observed frame, the floor a forecast cannot be expected to beat (a
        forecast decodes a roll of that frame's latent). For a Bernoulli model also
        ``cross_entropy``,
        ``cross_entropy_repeat_last``, ``cross_entropy_mean_observed``: the
        cross-entropy of the true frame under each prediction, in nats per frame
        (summed over features; predictions clipped to ``[1e-4, 1 - 1e-4]``, so a
        baseline that repeats a frame of exact zeros and ones is not infinite).

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.metrics import forecast_error
    >>> X = np.random.default_rng(0).random((10, 4 * 6))
    >>> tvae = TopographicVAE(2, 4, 4, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> errors = forecast_error(tvae, X, n_observed=2)
    >>> errors.horizon, errors.mse.shape, errors.mse_repeat_last.shape
    (array([1, 2]), (2,), (2,))
    """
    _check_vae(estimator)
    check_is_fitted(estimator, "net_")
    S = estimator.sequence_length_
    if S < 2:
        raise ValueError("forecast_error needs sequences to forecast; this estimator "
                         "has sequence_length=1.")
    if not _is_int(n_observed) or not 1 <= n_observed < S:
        raise ValueError(f"n_observed must be an int in 1 .. sequence_length - 1 = "
                         f"{S - 1} (some frames seen, some to forecast); got "
                         f"{n_observed!r}.")
    frames = _frames(estimator, X)  # (n, S, F)
    n, _, F = frames.shape
    k = int(n_observed)
    truth = frames[:, k:]                                                # (n, S-k, F)
    shown = estimator.predict_sequence(frames[:, :k].reshape(n, k * F),
                                       include_observed=True).reshape(n, S, F)
    predictions = {
        "": shown[:, k:],
        "_repeat_last": np.broadcast_to(frames[:, k - 1:k], truth.shape),
        "_mean_observed": np.broadcast_to(frames[:, :k].mean(1, keepdims=True), truth.shape),
    }
    errors = Bunch(horizon=np.arange(1, S - k + 1), mse_reconstruction=float(
        ((shown[:, k - 1] - frames[:, k - 1]) ** 2).mean()))
    for suffix, pred in predictions.items():
        errors["mse" + suffix] = ((pred - truth) ** 2).mean((0, 2)).astype(np.float64)
    if estimator.likelihood == "bernoulli":
        for suffix, pred in predictions.items():
            p = np.clip(pred, _CLIP, 1 - _CLIP).astype(np.float64)
            nll = -(truth * np.log(p) + (1 - truth) * np.log1p(-p)).sum(-1)  # (n, S-k)
            errors["cross_entropy" + suffix] = nll.mean(0)
    return errors


def capsule_roll_correlation(estimator: _BaseVAE, X: ArrayLike, shifts: ArrayLike | None = None,
                             *, capsule_shape: tuple[int, ...] | None = None,
                             groups: ArrayLike | None = None, per_capsule: bool = False,
                             method: str = "all_frames",
                             start_index: ArrayLike | None = None,
                             n_values: int | ArrayLike | None = None
                             ) -> float | NDArray[np.float64] | dict:
    """The paper's CapCorr: correlation of true shifts with the rolls seen in capsules.

    ``method="authors"`` computes it as the authors' code does, on sequences whose
    moving factor steps through a grid of ``n_values`` values, wrapping round
    (``make_sprite_sequences(path="grid")``): one pair per sequence, frame 0 and the
    first frame at which the factor's grid index is 0; the observed roll is the mode
    over capsules of the roll that maximises their circular cross-correlation,
    counted from that frame back to frame 0, and the true roll is the factor's index
    at frame 0 (``start_index``). Its floor is not 0: see :func:`roll_correlation_floor`.

    For every frame ``l`` the observed roll of each capsule is the ``r`` that maximises
    the periodic cross-correlation ``sum_d t_0[d] * t_l[d + r]`` with frame 0; the mode
    over capsules is the frame's observed roll. The result is the Pearson correlation
    between the true shifts and the observed rolls over all frames ``l >= 1``. The
    paper reports it per transformation (``groups``: which one moves in each
    sequence, e.g. ``make_sprite_sequences``' ``factors.moving``).

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
    groups : array-like of shape (n_sequences,), default=None
        A label per sequence (the factor that moves in it); the correlation is then
        computed within each group.
    per_capsule : bool, default=False
        Correlate each capsule's own observed roll with the true shifts, instead of
        the mode over capsules: which capsules follow the transformation.
    method : {"all_frames", "authors"}, default="all_frames"
        Every frame against frame 0 (ours), or one pair per sequence (the authors').
    start_index : array-like of int of shape (n_sequences,), default=None
        For ``method="authors"``: the moving factor's grid index at frame 0 (e.g.
        ``factors.x_index[:, 0]`` for the sequences that move x).
    n_values : int or array-like of int of shape (n_sequences,), default=None
        For ``method="authors"``: the number of grid values of the moving factor.

    Returns
    -------
    correlation : float, ndarray of shape (n_capsules,), or dict
        In [-1, 1]; 1 when every capsule rolls exactly with the transformation; 0 when
        the observed rolls do not vary at all (they carry no information). An array
        of one per capsule with ``per_capsule``; with ``groups``, a dict from each
        label (in sorted order) to its correlation.

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
    >>> sorted(capsule_roll_correlation(tvae, X, groups=["x"] * 5 + ["y"] * 5))
    ['x', 'y']
    """
    _check_vae(estimator)
    _needs_time(estimator.sequence_length_, "CapCorr")
    if method not in ("all_frames", "authors"):
        raise ValueError(f"method must be 'all_frames' or 'authors'; got {method!r}.")
    T = _checked(_capsules(estimator, X, capsule_shape), "The latents of X")
    n, S = T.shape[:2]
    if method == "authors":
        if shifts is not None:
            raise ValueError("method='authors' takes start_index and n_values, not shifts.")
        pair, shifts = _authors_pairs(start_index, n_values, n, S)
        T = np.stack([T[:, 0], T[np.arange(n), pair]], 1)  # (n, 2, C, D)
        rolls = (-observed_rolls(T, per_capsule=per_capsule)) % T.shape[-1]
        return _grouped(_roll_correlation, shifts, rolls, groups)
    if shifts is None:
        shifts = np.broadcast_to(np.arange(S), (n, S))
    shifts = np.asarray(shifts)
    if shifts.shape != (n, S):
        raise ValueError(f"shifts must have shape (n_sequences, sequence_length) = "
                         f"{(n, S)}; got {shifts.shape}.")
    if shifts.dtype.kind not in "iuf" or (shifts.dtype.kind == "f" and not (
            np.isfinite(shifts).all() and (shifts == np.round(shifts)).all())):
        raise ValueError("shifts must be whole numbers of capsule steps (finite); got "
                         f"dtype {shifts.dtype}"
                         + (" with non-finite or fractional values."
                            if shifts.dtype.kind == "f" else "."))
    rolls = observed_rolls(T, per_capsule=per_capsule)  # (n, S) or (n, S, C)
    return _grouped(_roll_correlation, shifts, rolls, groups)


def _grouped(correlation, shifts, rolls, groups):
    """``correlation(shifts, rolls)``, or a dict of it within each group."""
    if groups is None:
        return correlation(shifts, rolls)
    groups = _labels("groups", groups, len(shifts))
    return {label: correlation(shifts[groups == label], rolls[groups == label])
            for label in np.unique(groups).tolist()}  # plain Python labels


def _labels(name, labels, n):
    """One label a row, all of one kind (numbers or strings), none missing: ``1`` and
    ``"1"`` must not pass for one group, nor NaN or None for one."""
    values = np.asarray(labels, dtype=object) if not isinstance(labels, np.ndarray) \
        else labels
    if values.shape != (n,):
        raise ValueError(f"{name} must hold one label per sequence, shape ({n},); got "
                         f"{np.shape(labels)}.")
    kinds = {("text" if isinstance(v, (str, np.str_)) else "number"
              if isinstance(v, (Real, np.number)) and not isinstance(v, (bool, np.bool_))
              else type(v).__name__) for v in values.tolist()}
    missing = any(v is None or (isinstance(v, float) and math.isnan(v))
                  for v in values.tolist())
    if missing or len(kinds) > 1 or not kinds <= {"text", "number"}:
        raise ValueError(f"{name} must be labels of one kind, all strings or all "
                         f"numbers, with none missing (NaN, None); got {sorted(kinds)}"
                         + (" with missing values" if missing else "") + ".")
    return np.asarray(values.tolist())


def _int_tuple(name, value, what):
    """``value`` as a tuple of positive ints; a float, a bool or a negative size is
    refused, not truncated."""
    entries = np.asarray(value, dtype=object) if value is not None else None
    if entries is None or entries.ndim != 1 or not len(entries) or not all(
            _is_int(v) and v >= 1 for v in entries):
        raise ValueError(f"{name} must be {what}, positive ints; got {value!r}.")
    return tuple(int(v) for v in entries)


def _authors_pairs(start_index, n_values, n, S):
    """The authors' pair frame per sequence (the first frame at which the moving
    factor's grid index is 0) and, as ``(n, 2)`` shifts, the true roll ``start_index``
    at that frame (0 at frame 0)."""
    if start_index is None or n_values is None:
        raise ValueError("method='authors' needs start_index (the moving factor's grid "
                         "index at frame 0 of each sequence) and n_values (its number of "
                         "grid values).")
    start = np.asarray(start_index)
    values = np.broadcast_to(np.asarray(n_values), start.shape)
    if start.shape != (n,) or not np.issubdtype(start.dtype, np.integer) \
            or not np.issubdtype(values.dtype, np.integer) or (values < 1).any() \
            or (start < 0).any() or (start >= values).any():
        raise ValueError(f"start_index must be {n} ints in [0, n_values) and n_values "
                         "positive ints (one, or one per sequence); got shapes "
                         f"{start.shape} and {np.shape(n_values)}.")
    pair = (values - start) % values
    if (pair >= S).any():
        raise ValueError(f"n_values up to {values.max()} need sequences of at least "
                         f"that many frames to reach grid index 0; these have {S}.")
    return pair, np.stack([np.zeros_like(start), start], 1)


def roll_correlation_floor(start_index: ArrayLike, n_values: int | ArrayLike,
                           capsule_dim: int, *, n_draws: int = 200,
                           random_state=None) -> float:
    """The authors' CapCorr of capsules that roll at random: its floor.

    A sequence that starts at grid index 0 pairs frame 0 with itself, whose roll is
    0 whatever the capsules do, so random rolls still correlate with the true ones
    (about 0.17 for 15 grid values and rings of 15 units, 0.43 for 5). The mean over ``n_draws`` draws of uniform
    rolls in ``[0, capsule_dim)`` for every other pair.

    Parameters
    ----------
    start_index, n_values : array-like of int
        As for :func:`capsule_roll_correlation` with ``method="authors"``.
    capsule_dim : int
        Units of a capsule ring: the rolls' range.
    n_draws : int, default=200
        Draws averaged.
    random_state : int, RandomState instance or None, default=None
        Seeds the draws.

    Returns
    -------
    floor : float

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae.metrics import roll_correlation_floor
    >>> start = np.random.default_rng(0).integers(0, 5, 2000)
    >>> round(roll_correlation_floor(start, 5, 15, random_state=0), 1)
    0.4
    """
    from sklearn.utils import check_random_state

    start = np.asarray(start_index)
    if not _is_int(capsule_dim) or capsule_dim < 1 or not _is_int(n_draws) or n_draws < 1:
        raise ValueError("capsule_dim and n_draws must be positive ints; got "
                         f"{capsule_dim!r} and {n_draws!r}.")
    pair, shifts = _authors_pairs(start, n_values, len(start), int(np.max(n_values)) + 1)
    rng = check_random_state(random_state)
    draws = []
    for _ in range(n_draws):
        rolls = np.where(pair == 0, 0, rng.randint(capsule_dim, size=len(start)))
        draws.append(_roll_correlation(shifts, np.stack([np.zeros_like(rolls), rolls], 1)))
    return float(np.mean(draws))


def _roll_correlation(shifts, rolls):
    """Pearson correlation of true ``shifts`` ``(n, S)`` with observed ``rolls``
    ``(n, S)`` (a float) or ``(n, S, C)`` (one per capsule), frames ``l >= 1``."""
    true = shifts[:, 1:].reshape(-1)
    observed = rolls[:, 1:].reshape(len(true), -1)  # (n * (S-1), 1 or C)
    out = np.zeros(observed.shape[1])
    for c in range(observed.shape[1]):
        if observed[:, c].std() > 0 and true.std() > 0:
            out[c] = np.corrcoef(true, observed[:, c])[0, 1]
    return out if rolls.ndim == 3 else float(out[0])


def observed_rolls(T: ArrayLike, per_capsule: bool = False) -> NDArray[np.int64]:
    """Roll of every frame relative to frame 0, the mode over its capsules.

    Parameters
    ----------
    T : array-like of shape (n_sequences, S, n_capsules, capsule_dim)
        Latents, or ``(n_sequences, S, n_capsules, rows, cols)`` for tori, whose
        rolls are along their cols (the cross-correlation sums over rows).
    per_capsule : bool, default=False
        Return each capsule's roll instead of the vote.

    Returns
    -------
    rolls : ndarray of shape (n_sequences, S) or (n_sequences, S, n_capsules)
        For each frame, the roll ``r`` maximising the periodic cross-correlation with
        frame 0, voted over capsules (or per capsule).

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
    axes, D = _capsule_axes(T), T.shape[-1]
    T = _checked(T, "T")
    # corr[n, l, c, r] = sum_d t_0[d] t_l[d + r], by FFT along the circular capsule axis
    # (summed over a torus's rows).
    f0 = np.fft.rfft(T[:, :1], axis=-1)
    fl = np.fft.rfft(T, axis=-1)
    corr = np.fft.irfft(np.conj(f0) * fl, n=D, axis=-1).sum(axes[:-1])
    best = corr.argmax(-1)  # (n, S, C)
    if per_capsule:
        return best
    counts = (best[..., None] == np.arange(D)).sum(2)  # (n, S, D) votes per roll
    return counts.argmax(-1)


# --- topographic maps -------------------------------------------------------------
def _check_vae(estimator):
    from ._base import _BaseVAE  # metrics is imported by the estimators' users only

    if not isinstance(estimator, _BaseVAE):
        raise TypeError(f"estimator must be a fitted TopographicVAE or VAE; got "
                        f"{type(estimator).__name__}. For a Pipeline, pass its last step "
                        "and the data the earlier steps make.")
    check_is_fitted(estimator, "net_")


def _grid_shape(estimator, grid_shape):
    """The grid the units lie on: the TVAE's capsules, or the caller's for a VAE."""
    if grid_shape is None and not hasattr(estimator, "n_capsules"):
        raise ValueError(
            f"A {type(estimator).__name__}'s units have no arrangement: pass "
            "grid_shape=(n_capsules, capsule_dim) for rings or (n_capsules, rows, cols) "
            f"for tori, covering its {estimator._n_latent} latent values, e.g. the "
            "TVAE's grid, to measure it as a baseline.")
    return _capsule_shape(estimator, grid_shape, name="grid_shape")


def _activations(estimator, X):
    """Each unit's activation on every frame, ``(n_frames, n_latent)``.

    A VAE's is ``transform(X)``. A TVAE's ``t = (z - mu) / sqrt(W * u^2)`` sits at
    ``-mu / sqrt(W * u^2)`` plus ``z``'s share: with ``mu > 0`` (``mu_init=10``, and on
    MNIST every t is then negative) a unit responds to an input by moving away from 0,
    so its activation is ``-t`` (``t`` times ``-sign(mu)``). The reference code writes
    ``s = (z + mu) / sqrt(W * u^2)``, the same model with ``z``'s sign flipped, and
    measures its d' on that ``s``: this is the same quantity.
    """
    _check_vae(estimator)
    T = estimator.transform(X).reshape(-1, estimator._n_latent)
    topography = getattr(estimator.net_.module_, "topography", None)
    if topography is not None and float(topography.mu.detach()) > 0:
        T = -T
    return T


def _unit_responses(estimator, X, y):
    """The units' activations, one row per frame (:func:`_activations`), and ``y``
    repeated for every frame of its sequence."""
    T = _activations(estimator, X)
    y = np.asarray(y)
    n_rows = len(T) // estimator.sequence_length_
    if y.ndim != 1 or len(y) != n_rows:
        raise ValueError(f"y must hold one value per row of X ({n_rows} rows); got "
                         f"shape {y.shape}.")
    return T, np.repeat(y, estimator.sequence_length_)


def _target_kind(y, target_type):
    if target_type not in ("auto", "classes", "continuous"):
        raise ValueError("target_type must be 'auto', 'classes' or 'continuous'; got "
                         f"{target_type!r}.")
    if target_type != "auto":
        return target_type
    from sklearn.utils.multiclass import type_of_target

    kind = type_of_target(y, input_name="y")
    if kind == "continuous":
        return "continuous"
    if kind in ("binary", "multiclass"):
        return "classes"
    raise ValueError(f"y must be class labels or a continuous target; got a {kind} y.")


def selectivity_from_responses(T: ArrayLike, y: ArrayLike, target_type: str = "auto"
                               ) -> NDArray[np.float64]:
    """Each unit's selectivity for each class of ``y``, from responses ``T``.

    Parameters
    ----------
    T : array-like of shape (n_samples, n_units)
        The units' values, e.g. ``transform(X)``.
    y : array-like of shape (n_samples,)
        Class labels, or a continuous target.
    target_type : {"auto", "classes", "continuous"}, default="auto"
        How to read ``y``; ``"auto"`` uses :func:`sklearn.utils.multiclass.type_of_target`
        (floats that are not whole numbers are continuous).

    Returns
    -------
    selectivity : ndarray of shape (n_classes, n_units)
        For classes (in the order of ``np.unique(y)``), d' = (mean over the class -
        mean over the rest) / sqrt((var_class + var_rest) / 2); for a continuous ``y``
        one row, each unit's Pearson correlation with ``y``. A unit that does not vary
        scores 0.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae.metrics import selectivity_from_responses
    >>> T = np.array([[1.0, 0.0], [1.2, 0.1], [0.0, 0.0], [0.2, 0.1]])
    >>> selectivity_from_responses(T, [1, 1, 0, 0]).round(2)
    array([[-10.,   0.],
           [ 10.,   0.]])
    """
    T = np.asarray(T, dtype=np.float64)
    y = np.asarray(y)
    if T.ndim != 2 or y.shape != (len(T),):
        raise ValueError(f"T must be (n_samples, n_units) and y (n_samples,); got "
                         f"{T.shape} and {y.shape}.")
    T = _checked(T, "T")
    if _target_kind(y, target_type) == "continuous":
        y = y.astype(np.float64)
        if y.std() == 0:
            raise ValueError("y is constant: a correlation with it is undefined.")
        Tc, yc = T - T.mean(0), (y - y.mean()) / y.std()
        std = T.std(0)
        return np.where(std > 0, (Tc * yc[:, None]).mean(0) / np.where(std > 0, std, 1),
                        0.0)[None]
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(f"y has one class ({classes[0]!r}); selectivity compares a "
                         "class with the rest, so it needs at least two.")
    d_prime = np.empty((len(classes), T.shape[1]))
    for i, c in enumerate(classes):
        inside = y == c
        a, b = T[inside], T[~inside]
        spread = np.sqrt((a.var(0) + b.var(0)) / 2)
        diff = a.mean(0) - b.mean(0)
        d_prime[i] = np.where(spread > 0, diff / np.where(spread > 0, spread, 1), 0.0)
    return d_prime


def class_selectivity(estimator: _BaseVAE, X: ArrayLike, y: ArrayLike, *,
                      target_type: str = "auto") -> NDArray[np.float64]:
    """How selective each latent unit is for each class: the maps of Figure 3.

    Each frame of ``X`` is one sample (with its sequence's label). A unit's response is
    its activation: a VAE's ``transform(X)``; a TVAE's ``-t`` while the learned ``mu``
    is positive, since ``t = (z - mu) / sqrt(W * u^2)`` then sits below 0 and a unit
    responds by moving away from it (the reference code's ``s = (z + mu) /
    sqrt(W * u^2)`` is the same model with ``z``'s sign flipped, and its d' the same).
    So a positive d' means the class activates the unit, as in the paper's Figure 3.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences (for i.i.d. data, ``sequence_length=1``: one image per row).
    y : array-like of shape (n_sequences,)
        Class labels (e.g. digits), or a continuous target (e.g. ink mass as a proxy
        for stroke width, or slant).
    target_type : {"auto", "classes", "continuous"}, default="auto"
        How to read ``y``; see :func:`selectivity_from_responses`.

    Returns
    -------
    selectivity : ndarray of shape (n_classes, n_latent)
        d' of every unit for each class in ``np.unique(y)`` order, or one row of
        correlations for a continuous ``y``; columns in :meth:`transform`'s order of
        one frame (capsule, then its units).

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.metrics import class_selectivity
    >>> X = np.random.default_rng(0).random((20, 6))
    >>> tvae = TopographicVAE(1, (3, 3), 1, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> class_selectivity(tvae, X, np.arange(20) % 2).shape
    (2, 9)
    """
    _check_vae(estimator)
    T, y = _unit_responses(estimator, X, y)
    return selectivity_from_responses(T, y, target_type)


def morans_i(maps: ArrayLike, grid_shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Moran's I of maps on a grid of rings or tori: how alike neighbouring units are.

    Neighbours are the adjacent units within a capsule, circularly: two on a ring, four
    on a torus (an axis of one unit adds none, of two units one).
    ``I = (N / W) * sum_ij w_ij z_i z_j / sum_i z_i^2`` with ``z`` the map minus its
    mean, ``N`` units and ``W`` neighbour pairs counted both ways.

    Parameters
    ----------
    maps : array-like of shape (n_maps, n_units)
        One map per row, units in the grid's order.
    grid_shape : tuple of int
        ``(n_capsules, capsule_dim)`` or ``(n_capsules, rows, cols)``.

    Returns
    -------
    morans_i : ndarray of shape (n_maps,)
        About 1 for a smooth map, about ``-1 / (N - 1)`` (near 0) for one with no
        arrangement, negative for a checkerboard; NaN for a constant map.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae.metrics import morans_i
    >>> smooth = np.cos(2 * np.pi * np.arange(16) / 16)[None]
    >>> float(morans_i(smooth, (1, 16))[0].round(3))
    0.924
    """
    maps = np.asarray(maps, dtype=np.float64)
    grid_shape = _int_tuple("grid_shape", grid_shape,
                            "(n_capsules, capsule_dim) or (n_capsules, rows, cols)")
    if maps.ndim != 2 or maps.shape[1] != math.prod(grid_shape) \
            or len(grid_shape) not in (2, 3):
        raise ValueError(f"maps must be (n_maps, n_units) with n_units the product of "
                         f"grid_shape=(n_capsules, ...units) {grid_shape}; got "
                         f"{maps.shape}.")
    maps = _checked(maps, "maps")
    z = maps - maps.mean(1, keepdims=True)
    grid = z.reshape(len(z), *grid_shape)
    cross, n_pairs = np.zeros(len(z)), 0
    for axis, size in enumerate(grid_shape[1:], start=2):
        for shift in {1: (), 2: (1,)}.get(size, (1, -1)):
            cross += (grid * np.roll(grid, shift, axis)).reshape(len(z), -1).sum(1)
            n_pairs += z.shape[1]
    if n_pairs == 0:
        raise ValueError(f"grid_shape={grid_shape} has no neighbouring units.")
    with np.errstate(invalid="ignore", divide="ignore"):
        return z.shape[1] / n_pairs * cross / (z * z).sum(1)


def topographic_organization(estimator: _BaseVAE, X: ArrayLike, y: ArrayLike, *,
                             grid_shape: tuple[int, ...] | None = None,
                             target_type: str = "auto") -> float:
    """Moran's I of the selectivity maps on the latent's grid, averaged over classes.

    About 1 when neighbouring units on the capsules' rings or tori prefer the same
    class (a smooth map), about 0 when units are arranged with no regard to what they
    encode. W's smoothing of u^2 makes maps of t smooth partly by construction, so
    read it beside :func:`selectivity_summary`'s share of selective units and the
    distinctness of the classes' maps.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences, as for :func:`class_selectivity`.
    y : array-like of shape (n_sequences,)
        Class labels or a continuous target.
    grid_shape : tuple of int, default=None
        ``(n_capsules, capsule_dim)`` or ``(n_capsules, rows, cols)``: the grid to
        measure on. A TVAE's own by default; required for a ``VAE``, whose units have
        no arrangement (its figure is the baseline), e.g. ``(1, 18, 18)``.
    target_type : {"auto", "classes", "continuous"}, default="auto"
        How to read ``y``; see :func:`selectivity_from_responses`.

    Returns
    -------
    morans_i : float
        Mean Moran's I of the classes' maps (of the one correlation map for a
        continuous ``y``).

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.metrics import topographic_organization
    >>> X = np.random.default_rng(0).random((20, 6))
    >>> tvae = TopographicVAE(1, (3, 3), 1, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> -1 <= topographic_organization(tvae, X, np.arange(20) % 2) <= 1
    True
    """
    _check_vae(estimator)
    grid = _grid_shape(estimator, grid_shape)
    maps = class_selectivity(estimator, X, y, target_type=target_type)
    return float(np.nanmean(morans_i(maps, grid)))


def selectivity_summary(estimator: _BaseVAE, X: ArrayLike, y: ArrayLike, *,
                        threshold: float = 0.85,
                        grid_shape: tuple[int, ...] | None = None) -> dict:
    """The organisation of a topographic map in figures: smooth, selective, distinct.

    Parameters
    ----------
    estimator : TopographicVAE or VAE
        Fitted estimator.
    X : array-like of shape (n_sequences, n_features)
        Sequences, as for :func:`class_selectivity`.
    y : array-like of shape (n_sequences,)
        Class labels.
    threshold : float, default=0.85
        d' from which a unit counts as selective for a class (the paper's).
    grid_shape : tuple of int, default=None
        As for :func:`topographic_organization`.

    Returns
    -------
    summary : dict
        ``"classes"``: the labels, in the rows' order; ``"selectivity"``: the d' maps
        ``(n_classes, n_latent)``; ``"morans_i"``: each class map's Moran's I;
        ``"morans_i_mean"``: their mean; ``"share_selective"``: per class, the share of
        units with d' >= ``threshold``; ``"max_selectivity"``: per class, the largest
        d'; ``"map_correlation"``: the mean correlation between two classes' maps (low:
        the classes have maps of their own; near 1: one map, shared).

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> from sktvae.metrics import selectivity_summary
    >>> X = np.random.default_rng(0).random((20, 6))
    >>> tvae = TopographicVAE(1, (3, 3), 1, hidden_layer_sizes=(8,), max_epochs=1,
    ...                       random_state=0).fit(X)
    >>> sorted(selectivity_summary(tvae, X, np.arange(20) % 2))[:3]
    ['classes', 'map_correlation', 'max_selectivity']
    """
    _check_vae(estimator)
    if isinstance(threshold, (bool, np.bool_)) or not isinstance(threshold, Real) \
            or not math.isfinite(threshold):
        raise ValueError(f"threshold must be a finite number (a d'); got {threshold!r}.")
    grid = _grid_shape(estimator, grid_shape)
    T, y_frames = _unit_responses(estimator, X, y)
    d_prime = selectivity_from_responses(T, y_frames, "classes")
    I = morans_i(d_prime, grid)
    corr = np.corrcoef(d_prime)
    off_diagonal = corr[~np.eye(len(corr), dtype=bool)]
    return {"classes": np.unique(y_frames), "selectivity": d_prime, "morans_i": I,
            "morans_i_mean": float(np.nanmean(I)),
            "share_selective": (d_prime >= threshold).mean(1),
            "max_selectivity": d_prime.max(1),
            "map_correlation": float(np.nanmean(off_diagonal))}
