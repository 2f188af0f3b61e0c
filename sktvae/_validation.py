"""One path from what a user passes to what the model reads.

Every method of the estimators turns its input into frames here: whole sequences
(``fit``, ``transform``, ``score_samples``), the first ``k`` frames of sequences
(``predict_sequence`` and the metrics' frames encoded alone), or latents
(``inverse_transform``). Each is a float array with no NaN, of the width the fitted
model reads, in [0, 1] for a Bernoulli likelihood, handed on as a tensor view.
"""

from __future__ import annotations

import math
from numbers import Integral

import numpy as np
import torch
from sklearn.utils.validation import check_array, validate_data

from ._fresh import FreshFrames, FreshSequences
from ._sequences import frame_structure

# What one call may return (and work with): 4 GiB of float32. Past it, an error that
# says how much was asked, not an allocation failure deep inside torch.
MAX_OUTPUT_VALUES = 2 ** 30


def is_int(value):
    """An integer, and not a bool: ``True`` passed where a count belongs is a mistake."""
    return isinstance(value, Integral) and not isinstance(value, (bool, np.bool_))


def check_bool(name, value):
    """``value`` as a bool; a string such as ``"False"`` (truthy) is refused."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False; got {value!r}.")
    return bool(value)


def comparable(value):
    """A parameter value in a form ``==`` compares: sequences as nested tuples."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(comparable(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def grid_pair(name, value):
    """A capsule's axes, ring or torus: ``D`` -> ``(D,)``, ``(rows, cols)`` stays."""
    if is_int(value):
        return (int(value),)
    entries = np.asarray(value, dtype=object)
    if entries.ndim != 1 or len(entries) != 2 or not all(
            is_int(v) and v >= 1 for v in entries):
        raise ValueError(
            f"{name} must be a positive int or a pair of positive ints (rows, cols); "
            f"got {value!r}.")
    return tuple(int(v) for v in entries)


def check_output_size(n_values, what, advice):
    if n_values > MAX_OUTPUT_VALUES:
        raise ValueError(
            f"{what} would need {n_values * 4 / 2 ** 30:.1f} GiB of float32, more than "
            f"the {MAX_OUTPUT_VALUES * 4 // 2 ** 30} GiB one call returns. {advice}")


def _check_finite(X, rows_per_chunk=1024):
    """Raise sklearn's ValueError for NaN or infinity, in bounded memory (sklearn's
    check can build a boolean copy of the whole array: 2.4 GiB for 60 000 float16
    MNIST sequences)."""
    for start in range(0, len(X), rows_per_chunk):
        chunk = X[start:start + rows_per_chunk]
        if not np.isfinite(chunk).all():
            what = "NaN" if np.isnan(chunk).any() else "infinity or a value too large"
            raise ValueError(f"Input X contains {what}. Remove or impute such values "
                             "first (e.g. with sklearn.impute.SimpleImputer).")


def _check_range(estimator, X):
    """A Bernoulli likelihood is defined on [0, 1] only."""
    if estimator.likelihood != "bernoulli" or not X.size:
        return
    low, high = X.min(), X.max()
    if low < 0 or high > 1:
        # repr: 1.0000001 must not print as "1"
        raise ValueError(
            f"likelihood='bernoulli' needs X in [0, 1]; got values in "
            f"[{float(low)!r}, {float(high)!r}]. Divide images by their largest possible "
            "value (X / 255 for 8-bit pixels, X / 16 for load_digits; "
            "sktvae.datasets.load_digits_images does it), clip X, or use "
            "likelihood='gaussian'.")


def feature_moments(X, rows_per_chunk=1024):
    """Mean and standard deviation of each feature of frames ``(n, S, F)`` (over rows
    and frames), in float64 and in bounded memory; a constant feature gets 1."""
    F = X.shape[-1]
    total, squares, count = np.zeros(F), np.zeros(F), 0
    chunks = X.chunks(rows_per_chunk) if isinstance(X, FreshFrames) else (
        X[start:start + rows_per_chunk] for start in range(0, len(X), rows_per_chunk))
    for chunk in chunks:
        chunk = np.asarray(chunk, np.float64).reshape(-1, F)
        total += chunk.sum(0)
        squares += (chunk * chunk).sum(0)
        count += len(chunk)
    mean = total / max(count, 1)
    std = np.sqrt(np.maximum(squares / max(count, 1) - mean * mean, 0.0))
    return mean, np.where(std > 1e-6 * np.maximum(np.abs(mean), 1.0), std, 1.0)


def _check_3d(X, name):
    shape = getattr(X, "shape", None)
    if shape is not None and len(shape) == 3:
        n, S, F = shape
        raise ValueError(
            f"{name} has 3 dimensions {tuple(shape)}: one row of {name} is one whole "
            f"sequence, its frames concatenated in time order. Pass "
            f"{name}.reshape({n}, -1) (sequence_length={S}).")


def _as_tensor(X, *shape):
    """A tensor view of ``X`` (torch cannot wrap read-only memory: copied then)."""
    if not X.flags.writeable:
        X = X.copy()
    return torch.from_numpy(X).view(*shape)


def sequences(estimator, X, reset, training=False):
    """Validate whole sequences ``X`` and return them as a ``(n, S, F)`` tensor.

    float16 input stays float16 (half the memory; each batch is converted on its way
    into the model); anything else becomes float32. Sequences drawn afresh each epoch
    (:class:`FreshSequences`) stay so for training (:class:`FreshFrames`) and are one
    fixed draw for everything else.
    """
    if isinstance(X, FreshSequences):
        if training:
            return _fresh_frames(estimator, X, reset)
        X = np.asarray(X)
    _check_3d(X, "X")
    structure = _check_structure(estimator, X, reset)
    if reset:
        estimator._seen_frame_shape = structure[1] if structure else None
    X = validate_data(estimator, X, reset=reset, dtype=[np.float32, np.float16],
                      ensure_all_finite=False)
    _check_finite(X)
    S = estimator.sequence_length_
    if X.shape[1] % S:
        raise ValueError(
            f"X has {X.shape[1]} features, which is not divisible by "
            f"sequence_length={S}: a row must hold {S} frames of equal size, "
            "concatenated in time order.")
    _check_range(estimator, X)
    return _as_tensor(X, X.shape[0], S, X.shape[1] // S)


def _fresh_frames(estimator, X, reset):
    """Check sequences drawn afresh as ``sequences`` checks an array, without
    rendering them."""
    _check_structure(estimator, X, reset)
    if reset:
        estimator._seen_frame_shape = X.frame_shape
        estimator.n_features_in_ = X.shape[1]
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif X.shape[1] != estimator.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(estimator).__name__} "
                         f"is expecting {estimator.n_features_in_} features as input.")
    low, high = X.value_range
    if estimator.likelihood == "bernoulli" and (low < 0 or high > 1):
        raise ValueError(f"likelihood='bernoulli' needs X in [0, 1]; these sequences "
                         f"hold values in [{low!r}, {high!r}]. Scale the images first.")
    return FreshFrames(X)


def first_frames(estimator, X, max_frames, name="X"):
    """Validate rows of the first ``k`` frames of sequences (``1 <= k <=
    max_frames``) and return them as a ``(n, k, F)`` tensor."""
    _check_3d(X, name)
    X = check_array(X, dtype=np.float32, input_name=name)
    F = estimator.n_features_per_frame_
    k = X.shape[1] // F
    if X.shape[1] % F or not 1 <= k <= max_frames:
        what = (f"one frame ({F} features, n_features_in_ / sequence_length)"
                if max_frames == 1 else
                f"1 to {max_frames} frames of {F} (n_features_in_ / sequence_length)")
        raise ValueError(f"{name} has {X.shape[1]} features, but rows must hold {what}.")
    _check_range(estimator, X)
    return _as_tensor(X, len(X), k, F)


def latents(estimator, T, name="X"):
    """Validate latents as :meth:`transform` returns them: ``(n, S, n_latent)``."""
    T = check_array(T, dtype=np.float32, input_name=name)
    S, n = estimator.sequence_length_, estimator._n_latent
    if T.shape[1] != S * n:
        raise ValueError(
            f"{name} has {T.shape[1]} features, but inverse_transform expects {S * n} "
            f"(sequence_length={S} frames of {n} latent values, the output of "
            "transform).")
    return _as_tensor(T, len(T), S, n)


def _check_structure(estimator, X, reset=False):
    """The frames per row: ``sequence_length_``, set when ``reset`` from
    ``sequence_length`` or, with ``"auto"``, from what the input says it holds. Rows
    that say they hold other frames than that are refused."""
    structure = frame_structure(X)
    S = estimator.sequence_length if reset else estimator.sequence_length_
    if S == "auto":
        S = structure[0] if structure is not None else estimator._plain_sequence_length
        if S is None:
            raise ValueError(
                f"sequence_length='auto' takes the number of frames from input that "
                f"states it (SequenceTransformer's output); this X is a plain array, "
                f"which does not: pass {type(estimator).__name__}(sequence_length=...), "
                "the frames in a row (1 for single images).")
    if reset:
        estimator.sequence_length_ = int(S)
    if structure is None or structure[0] == S:
        return structure
    frames, shape = structure
    raise ValueError(
        f"X holds sequences of {frames} frames of shape {shape} (as SequenceTransformer "
        f"wrote them), but sequence_length={S} would cut each row into {S} frames of "
        f"{X.shape[1] // S if S else 0} values. Set sequence_length={frames} here, or "
        f"sequence_length='auto' to take it from the input, or pass "
        f"np.asarray(X).reshape(-1, {math.prod(shape)}) to fit the frames one by one.")
