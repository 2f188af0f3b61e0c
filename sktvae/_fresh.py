"""Sequences drawn afresh on every pass over the data, from the images alone.

A :class:`FreshSequences` is what :class:`~sktvae.SequenceTransformer` returns with
``fresh_each_epoch=True`` (and :func:`~sktvae.datasets.sprite_grid_sequences`): an
object shaped like the array of sequences, ``(n_sequences, sequence_length *
n_features_per_frame)``, that holds only its source (the images, or a bank of sprite
frames) and renders rows on demand. An estimator trained on it draws new sequences for
every epoch (new phases, new random choices) and renders each batch as it goes, so
memory is that of the images, not of the sequences. Everywhere else (``transform``,
``score``, the metrics, ``np.asarray``) it is one fixed draw, so held-out scores are
reproducible.
"""

from __future__ import annotations

import math

import numpy as np
import torch

_ROWS_PER_CHUNK = 256  # rows rendered at once when the whole array is asked for


class FreshSequences:
    """Sequences rendered on demand, drawn afresh for every training epoch.

    Not built directly: :class:`~sktvae.SequenceTransformer` with
    ``fresh_each_epoch=True`` and :func:`~sktvae.datasets.sprite_grid_sequences`
    return one.

    Parameters
    ----------
    draw : callable
        ``draw(rows, seed)`` -> float32 tensor ``(len(rows), sequence_length,
        n_features_per_frame)``: the sequences of ``rows`` (an int64 array) in the draw
        ``seed`` (an int; the same seed, the same sequences).
    n_sequences : int
        Rows.
    sequence_length : int
        Frames per row.
    frame_shape : tuple of 3 int
        ``(channels, height, width)`` of a frame.
    seed : int
        The fixed draw used outside training.
    value_range : tuple of 2 float
        The smallest and largest value a frame can hold (a Bernoulli model needs
        [0, 1]).

    Attributes
    ----------
    shape : tuple of 2 int
        ``(n_sequences, sequence_length * n_features_per_frame)``, as the array of
        sequences would have.
    """

    ndim = 2
    dtype = np.dtype(np.float32)

    def __init__(self, draw, n_sequences, sequence_length, frame_shape, seed=0,
                 value_range=(0.0, 1.0)):
        self.draw = draw
        self.sequence_length = int(sequence_length)
        self.frame_shape = tuple(int(v) for v in frame_shape)
        self.seed = int(seed)
        self.value_range = tuple(float(v) for v in value_range)
        self.shape = (int(n_sequences),
                      self.sequence_length * math.prod(self.frame_shape))

    def __len__(self):
        return self.shape[0]

    def __repr__(self):
        return (f"FreshSequences({self.shape[0]} sequences of {self.sequence_length} "
                f"frames of shape {self.frame_shape}, drawn afresh every epoch)")

    def frames(self, rows, seed=None):
        """The sequences of ``rows`` in draw ``seed`` (the fixed one by default), as a
        float32 tensor ``(len(rows), sequence_length, n_features_per_frame)``."""
        rows = np.arange(len(self))[rows] if isinstance(rows, slice) \
            else np.asarray(rows, dtype=np.int64)
        out = self.draw(rows, self.seed if seed is None else int(seed))
        return out.reshape(len(rows), self.sequence_length, -1).float()

    def __getitem__(self, rows):
        """Rows, as an ndarray's: a slice or an index array gives the sequences of
        those rows, still drawn afresh every epoch (so cross-validation splits keep
        them fresh); one row index gives that row of the fixed draw, rendered."""
        if isinstance(rows, tuple):  # X[rows, ...] (scikit-learn's) or X[rows, :]
            if not rows or any(r is not Ellipsis and r != slice(None) for r in rows[1:]):
                raise IndexError("FreshSequences is indexed by rows only: X[rows].")
            rows = rows[0]
        if np.ndim(rows) == 0 and not isinstance(rows, slice):
            return self._rendered(np.atleast_1d(np.arange(len(self))[rows]))[0]
        index = np.arange(len(self))[rows]
        subset = FreshSequences(lambda r, seed: self.draw(index[r], seed), len(index),
                                self.sequence_length, self.frame_shape, self.seed,
                                self.value_range)
        return subset

    def __array__(self, dtype=None, copy=None):
        """All rows of the fixed draw, rendered (memory of the whole sequences)."""
        out = self._rendered(np.arange(len(self)))
        return out if dtype is None else out.astype(dtype)

    def _rendered(self, rows):
        from ._sequences import SequenceArray

        out = np.empty((len(rows), self.shape[1]), np.float32)
        for start in range(0, len(rows), _ROWS_PER_CHUNK):
            chunk = rows[start:start + _ROWS_PER_CHUNK]
            out[start:start + len(chunk)] = self.frames(chunk).reshape(len(chunk), -1).numpy()
        return SequenceArray._wrap(out, self.sequence_length, self.frame_shape)


class FreshFrames:
    """What training reads from :class:`FreshSequences`: a ``(n, S, F)`` source whose
    batches are rendered as they are drawn (skorch's ``Dataset`` wraps it)."""

    def __init__(self, source):
        self.source = source
        S = source.sequence_length
        self.shape = (len(source), S, source.shape[1] // S)

    def __len__(self):
        return self.shape[0]

    def chunks(self, rows_per_chunk):
        """The fixed draw in chunks of rows, ``(n, S, F)`` float32 tensors."""
        for start in range(0, len(self), rows_per_chunk):
            yield self.source.frames(slice(start, start + rows_per_chunk))


class FreshBatches:
    """skorch's iterator over :class:`FreshFrames`: for training (``redraw``), a new
    draw each epoch, its seed taken from torch's global generator, which the estimator
    seeds, so the same ``random_state`` gives the same epochs; for validation, the
    fixed draw."""

    def __init__(self, frames, batch_size, shuffle=False, device=None, rows=None,
                 redraw=False):
        self.frames, self.batch_size, self.shuffle = frames, int(batch_size), shuffle
        self.redraw = redraw
        self.rows = np.arange(len(frames)) if rows is None else np.asarray(rows)
        self.device = torch.device(device) if device is not None else torch.device("cpu")

    def __len__(self):
        return math.ceil(len(self.rows) / self.batch_size)

    def __iter__(self):
        seed = int(torch.randint(2 ** 31 - 1, ())) if self.redraw else None
        order = self.rows[torch.randperm(len(self.rows)).numpy()] if self.shuffle \
            else self.rows
        for start in range(0, len(order), self.batch_size):
            batch = self.frames.source.frames(order[start:start + self.batch_size], seed)
            yield batch.to(self.device, non_blocking=True), None
