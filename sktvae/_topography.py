"""The topographic operator: t = (z - mu) / sqrt(W * u^2).

Each capsule is a torus of ``rows x cols`` units; a ring of ``D`` units (the paper's
sequence capsules) is the torus ``1 x D``, so one code serves both. W sums u^2 over a
neighbourhood of each latent: frames ``l - past .. l + future`` (the temporal window:
``-L .. L`` for an int ``L``; ``(L, 0)`` is causal) and a ``k_rows x k_cols`` window of
the same capsule's torus (circular on both axes). Time is circular when a sequence is
one whole cycle of a transformation (the paper's sequences); otherwise frames beyond
either end of the sequence are absent from the window (zero padding), so no frame's
scale is shared with the other end of its sequence. With
*shifting* coherence the window at time offset ``delta`` is centred ``delta`` units
further along the cols axis, so a pattern that rolls one unit per frame shares one
scale: that is the inductive bias that makes capsules equivariant. *Stationary*
coherence (the paper's BubbleVAE) does not shift the window.

W is fixed, so it is a buffer. It is linear on each capsule's (time, rows, cols) block,
so for the usual sizes it is applied as one dense ``(S*R*C, S*R*C)`` 0/1 matrix to every
capsule block of the batch: a single GEMM, which CPUs and GPUs run near their peak
(a single-channel convolution with the banded kernel computes the same sums several
times slower). Blocks larger than ``_MAX_MATRIX_SIDE`` use that ``conv3d`` instead, over
the circularly padded block. The matrix is built by applying the conv to a basis, so
the two paths agree by construction.
"""

from numbers import Integral

import torch
from torch import nn
from torch.nn import functional as F

_MAX_MATRIX_SIDE = 2048  # S*R*C above which the (S*R*C)^2 matrix would outgrow the conv


def temporal_offsets(sequence_length, temporal_window):
    """Frame offsets ``delta`` covered by the temporal window, as ``(first, last)``.

    An int ``L`` is the window ``-L .. L``. When ``2L + 1`` frames would cover a cycle
    of ``sequence_length`` frames more than once (``L = S/2`` with even ``S``), it is
    cut to ``S`` frames, ``-L .. S - 1 - L``, so that no frame is counted twice (the
    reference code's 18-frame kernel for ``S = 18``). A pair ``(past, future)`` is the
    window ``-past .. future``, taken as it is: ``(L, 0)`` is causal.
    """
    if isinstance(temporal_window, Integral):
        L = int(temporal_window)
        return -L, min(L, sequence_length - 1 - L)
    past, future = temporal_window
    return -int(past), int(future)


def topographic_kernel(sequence_length, temporal_window, capsule_window, shifting):
    """The fixed weights W as a ``(n_time, n_rows, n_cols)`` 0/1 kernel for ``conv3d``.

    ``capsule_window`` is ``(k_rows, k_cols)``, both odd. Index ``i`` is time offset
    ``delta = first + i``; ``a`` and ``b`` are row and col offsets from the window's
    centre. ``W[i, a, b] = 1`` where ``|b - shift * delta| <= k_cols // 2`` (every row
    offset of the ``k_rows`` counts), with ``shift = 1`` for shifting coherence and
    ``0`` for stationary.
    """
    k_rows, k_cols = capsule_window
    first, last = temporal_offsets(sequence_length, temporal_window)
    half = k_cols // 2
    deltas = torch.arange(first, last + 1)
    reach = half + (max(-first, last) if shifting else 0)
    cols = torch.arange(-reach, reach + 1)
    plane = ((cols[None, :] - deltas[:, None] * int(shifting)).abs() <= half).float()
    return plane[:, None, :].expand(-1, k_rows, -1).contiguous()  # (T, k_rows, cols)


def _circular_index(first, size, last):
    """Indices ``first .. size - 1 + last`` wrapped into ``0 .. size - 1``: circular
    padding as an index, which works for windows wider than the axis itself."""
    return torch.arange(first, size + last) % size


class Topography(nn.Module):
    """Maps the two Gaussian latents ``z`` and ``u`` of every frame to ``t``.

    Parameters
    ----------
    n_capsules : int
        Capsules per frame.
    capsule_shape : int or tuple of int
        ``D`` (or ``(D,)``) for a ring of ``D`` units, ``(rows, cols)`` for a torus.
    sequence_length : int
        Frames per sequence ``S``.
    temporal_window : int or tuple of (int, int)
        ``L``: frames ``l - L .. l + L`` share their scale (``0`` for none); a pair
        ``(past, future)``: frames ``l - past .. l + future``.
    capsule_window : int or tuple of int
        ``K`` (odd) neighbouring units of a ring, or ``(k_rows, k_cols)`` (both odd) on
        a torus, that share their scale.
    shifting : bool
        Shift the window along the cols axis by the time offset (TVAE) or not
        (BubbleVAE).
    mu_init : float
        Initial value of the learned scalar ``mu``.
    circular_time : bool
        Whether time wraps around (sequences are whole cycles) or the window stops at
        the sequence's ends.
    eps : float
        Added inside the square root for stability (the reference value).
    """

    def __init__(self, n_capsules, capsule_shape, sequence_length, temporal_window,
                 capsule_window, shifting=True, mu_init=0.0, circular_time=True,
                 eps=1e-6):
        super().__init__()
        rows, cols = _as_torus(capsule_shape)
        self.n_capsules = n_capsules
        self.capsule_shape = (rows, cols)  # a ring is the torus (1, D)
        self.sequence_length = sequence_length
        self.shifting = shifting
        self.temporal_window = temporal_window
        self.circular_time = circular_time
        self.capsule_window = _as_torus(capsule_window)
        self.eps = eps
        self.mu = nn.Parameter(torch.tensor(float(mu_init)))
        kernel = topographic_kernel(sequence_length, temporal_window,
                                    _as_torus(capsule_window), shifting)
        self.register_buffer("kernel", kernel[None, None], persistent=False)
        # kept as a number: read from the buffer on a GPU it would wait for the device
        # in every forward pass
        self._n_terms = int(kernel.sum())
        first, last = temporal_offsets(sequence_length, temporal_window)
        pad_rows, pad_cols = (kernel.shape[1] - 1) // 2, (kernel.shape[2] - 1) // 2
        self.time_padding = (-first, last)
        self.register_buffer("time_index", _circular_index(first, sequence_length, last),
                             persistent=False)
        self.register_buffer("row_index", _circular_index(-pad_rows, rows, pad_rows),
                             persistent=False)
        self.register_buffer("col_index", _circular_index(-pad_cols, cols, pad_cols),
                             persistent=False)
        side = sequence_length * rows * cols
        matrix = None
        if side <= _MAX_MATRIX_SIDE:
            basis = torch.eye(side).view(side, sequence_length, rows, cols)
            matrix = self._conv_blocks(basis).reshape(side, side)  # row: input unit
        self.register_buffer("matrix", matrix, persistent=False)

    @property
    def n_units(self):
        """Units per capsule, ``rows * cols``."""
        return self.capsule_shape[0] * self.capsule_shape[1]

    @property
    def n_terms(self):
        """Terms of ``u^2`` in each window: ``W * u^2`` is about this under the prior."""
        return self._n_terms

    @property
    def window_offsets(self):
        """``(first, last)``: the window covers frames ``l + first .. l + last``."""
        return -self.time_padding[0], self.time_padding[1]

    def _conv_blocks(self, blocks):
        """W * u^2 on ``(N, S, R, C)`` blocks by a conv over the padded block: circular
        on the torus, and in time circular or zero (frames beyond the ends)."""
        if self.circular_time:
            blocks = blocks.index_select(1, self.time_index)
        else:
            blocks = F.pad(blocks, (0, 0, 0, 0, *self.time_padding))
        padded = blocks.index_select(2, self.row_index).index_select(3, self.col_index)
        return F.conv3d(padded[:, None], self.kernel)[:, 0]

    def neighbourhood_sum(self, u_sq):
        """``W * u^2``: ``(B, S, n_capsules * R * C)`` -> the same shape, one op."""
        B, S, _ = u_sq.shape
        N, (R, C) = self.n_capsules, self.capsule_shape
        blocks = u_sq.view(B, S, N, R * C).transpose(1, 2)  # (B, N, S, R*C)
        if self.matrix is not None:
            out = blocks.reshape(B * N, S * R * C) @ self.matrix
        else:
            out = self._conv_blocks(blocks.reshape(B * N, S, R, C))
        return out.view(B, N, S, R * C).transpose(1, 2).reshape(B, S, N * R * C)

    def forward(self, z, u):
        """``t = (z - mu) / sqrt(W * u^2 + eps)``; ``z``, ``u``: ``(B, S, n_latent)``."""
        return self.from_squares(z, u * u)

    def from_squares(self, z, u_sq):
        """t given ``u^2`` (or its posterior expectation ``E[u^2]``)."""
        # An infinite u^2 (exp of a log-variance past 88 in float32, from an input far
        # outside the training data) would make the GEMM's 0 * inf a NaN: capped so that
        # a window's sum stays finite, it gives t near 0, as the limit does.
        cap = torch.finfo(u_sq.dtype).max / self.n_terms
        return (z - self.mu) * torch.rsqrt(self.neighbourhood_sum(u_sq.clamp(max=cap))
                                           + self.eps)

    def frame_alone(self, z, u_sq):
        """t of single frames with no sequence around them; ``z``, ``u_sq``: ``(B, n)``.

        :meth:`observed` with one frame: the frame gets the same number of terms in its
        window as in training, and its latent holds nothing about any other frame.
        """
        return self.observed(z[:, None], u_sq[:, None])[:, 0]

    def observed(self, z, u_sq):
        """t of the first ``k`` frames of sequences of which only they were seen.

        ``z``, ``u_sq``: ``(B, k, n)`` with ``1 <= k <= S``. The unseen frames
        ``k .. S-1`` take the ``u^2`` the prior rewards: the last seen frame's rolled
        one unit along the cols axis per frame after it (shifting) or unchanged
        (stationary). Their ``z`` does not matter: t of a frame uses its own ``z``.
        Returns ``(B, k, n)``.
        """
        B, k, n = u_sq.shape
        S, N, (R, C) = self.sequence_length, self.n_capsules, self.capsule_shape
        if k < S:
            steps = torch.arange(1, S - k + 1, device=u_sq.device)[:, None] * int(self.shifting)
            index = (torch.arange(C, device=u_sq.device)[None, :] - steps) % C  # (S-k, C)
            last = u_sq[:, -1].reshape(B, 1, N, R, C).expand(B, S - k, N, R, C)
            unseen = last.gather(4, index.view(1, S - k, 1, 1, C).expand(B, S - k, N, R, C))
            u_sq = torch.cat([u_sq, unseen.reshape(B, S - k, n)], 1)
            z = torch.cat([z, z[:, -1:].expand(B, S - k, n)], 1)
        return self.from_squares(z, u_sq)[:, :k]


def _as_torus(shape):
    """``D`` or ``(D,)`` -> ``(1, D)``: a ring is a torus of one row; a pair stays."""
    shape = (shape,) if isinstance(shape, Integral) else tuple(shape)
    rows, cols = (1, *shape) if len(shape) == 1 else shape
    return int(rows), int(cols)
