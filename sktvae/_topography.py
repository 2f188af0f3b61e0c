"""The topographic operator: t = (z - mu) / sqrt(W * u^2).

W sums u^2 over a neighbourhood of each latent: frames ``l - L .. l + L`` (the temporal
window ``L``, circular in time because a sequence is one whole cycle of a transformation)
and ``K`` neighbouring dimensions of the same capsule (circular along the capsule).
With *shifting* coherence the capsule window at time offset ``delta`` is centred on
``d + delta``, so a pattern that rolls one capsule dimension per frame shares one scale:
that is the inductive bias that makes capsules equivariant. *Stationary* coherence
(the paper's BubbleVAE) does not shift the window.

W is fixed, so it is a buffer. It is linear on each capsule's (time, capsule dim) plane,
so for the usual sizes it is applied as one dense ``(S*D, S*D)`` 0/1 matrix to every
capsule plane of the batch: a single GEMM, which CPUs and GPUs run near their peak
(a single-channel ``conv2d`` with the banded kernel computes the same sums several times
slower). Planes larger than ``_MAX_MATRIX_SIDE`` use that ``conv2d`` instead, over the
circularly padded plane. The matrix is built by applying the conv to a basis, so the
two paths agree by construction.
"""

import torch
from torch import nn
from torch.nn import functional as F

_MAX_MATRIX_SIDE = 2048  # S*D above which the (S*D)^2 matrix would outgrow the conv


def temporal_offsets(sequence_length, temporal_window):
    """Frame offsets ``delta`` covered by the temporal window, as ``(first, last)``.

    The window is ``-L .. L``. When ``2L + 1`` frames would cover a cycle of
    ``sequence_length`` frames more than once (``L = S/2`` with even ``S``), it is cut to
    ``S`` frames, ``-L .. S - 1 - L``, so that no frame is counted twice (the reference
    code's 18-frame kernel for ``S = 18``).
    """
    last = min(temporal_window, sequence_length - 1 - temporal_window)
    return -temporal_window, last


def topographic_kernel(sequence_length, temporal_window, capsule_window, shifting):
    """The fixed weights W as a ``(n_time, n_dim)`` 0/1 kernel for ``conv2d``.

    Row ``i`` is time offset ``delta = first + i``; column ``j`` is capsule-dim offset
    ``k = j - pad_dim``. ``W[i, j] = 1`` where ``|k - shift * delta| <= K'`` with
    ``K = 2K' + 1`` and ``shift = 1`` for shifting coherence, ``0`` for stationary.
    """
    first, last = temporal_offsets(sequence_length, temporal_window)
    half = capsule_window // 2
    deltas = torch.arange(first, last + 1)
    reach = half + (max(-first, last) if shifting else 0)
    ks = torch.arange(-reach, reach + 1)
    centre = deltas[:, None] * int(shifting)
    return ((ks[None, :] - centre).abs() <= half).float()


class Topography(nn.Module):
    """Maps the two Gaussian latents ``z`` and ``u`` of every frame to ``t``.

    Parameters
    ----------
    n_capsules, capsule_dim : int
        The latent of one frame is ``n_capsules`` circular capsules of ``capsule_dim``.
    sequence_length : int
        Frames per sequence ``S``; time is circular.
    temporal_window : int
        ``L``: frames ``l - L .. l + L`` share their scale; ``0`` for none.
    capsule_window : int
        ``K`` (odd): neighbouring capsule dimensions that share their scale.
    shifting : bool
        Shift the capsule window by the time offset (TVAE) or not (BubbleVAE).
    mu_init : float
        Initial value of the learned scalar ``mu``.
    eps : float
        Added inside the square root for stability (the reference value).
    """

    def __init__(self, n_capsules, capsule_dim, sequence_length, temporal_window,
                 capsule_window, shifting=True, mu_init=0.0, eps=1e-6):
        super().__init__()
        self.n_capsules = n_capsules
        self.capsule_dim = capsule_dim
        self.sequence_length = sequence_length
        self.shifting = shifting
        self.eps = eps
        self.mu = nn.Parameter(torch.tensor(float(mu_init)))
        kernel = topographic_kernel(sequence_length, temporal_window, capsule_window,
                                    shifting)
        self.register_buffer("kernel", kernel[None, None], persistent=False)
        first, last = temporal_offsets(sequence_length, temporal_window)
        pad_dim = (kernel.shape[1] - 1) // 2
        # Circular padding as an index: works for windows wider than the axis itself.
        self.register_buffer(
            "time_index", torch.arange(first, sequence_length + last) % sequence_length,
            persistent=False)
        self.register_buffer(
            "dim_index", torch.arange(-pad_dim, capsule_dim + pad_dim) % capsule_dim,
            persistent=False)
        side = sequence_length * capsule_dim
        matrix = None
        if side <= _MAX_MATRIX_SIDE:
            basis = torch.eye(side).view(side, sequence_length, capsule_dim)
            matrix = self._conv_planes(basis).reshape(side, side)  # row: input (l', d')
        self.register_buffer("matrix", matrix, persistent=False)

    @property
    def n_terms(self):
        """Terms of ``u^2`` in each window: ``W * u^2`` is about this under the prior."""
        return int(self.kernel.sum())

    def _conv_planes(self, planes):
        """W * u^2 on ``(N, S, D)`` planes by a conv over the circularly padded plane."""
        padded = planes.index_select(1, self.time_index).index_select(2, self.dim_index)
        return F.conv2d(padded[:, None], self.kernel)[:, 0]

    def neighbourhood_sum(self, u_sq):
        """``W * u^2``: ``(B, S, C*D)`` -> ``(B, S, C*D)``, one op for the whole batch."""
        B, S, _ = u_sq.shape
        C, D = self.n_capsules, self.capsule_dim
        planes = u_sq.view(B, S, C, D).transpose(1, 2)  # (B, C, S, D)
        if self.matrix is not None:
            out = planes.reshape(B * C, S * D) @ self.matrix
        else:
            out = self._conv_planes(planes.reshape(B * C, S, D))
        return out.view(B, C, S, D).transpose(1, 2).reshape(B, S, C * D)

    def forward(self, z, u):
        """``t = (z - mu) / sqrt(W * u^2 + eps)``; ``z``, ``u``: ``(B, S, C*D)``."""
        return self.from_squares(z, u * u)

    def from_squares(self, z, u_sq):
        """t given ``u^2`` (or its posterior expectation ``E[u^2]``)."""
        return (z - self.mu) * torch.rsqrt(self.neighbourhood_sum(u_sq) + self.eps)

    def frame_alone(self, z, u_sq):
        """t of single frames with no sequence around them; ``z``, ``u_sq``: ``(B, C*D)``.

        The unseen neighbours' ``u`` are taken to be what the prior rewards: ``u`` rolled
        one capsule dimension per frame (shifting) or unchanged (stationary). The frame
        then gets the same number of terms in its window as in training, and its
        latent holds nothing about any other frame.
        """
        B, n = u_sq.shape
        S, C, D = self.sequence_length, self.n_capsules, self.capsule_dim
        steps = torch.arange(S, device=u_sq.device)[:, None] * int(self.shifting)
        index = (torch.arange(D, device=u_sq.device)[None, :] - steps) % D  # (S, D)
        u_seq = u_sq.view(B, 1, C, D).expand(B, S, C, D)
        u_seq = u_seq.gather(3, index.view(1, S, 1, D).expand(B, S, C, D))
        z_seq = z.view(B, 1, n).expand(B, S, n)
        return self.from_squares(z_seq, u_seq.reshape(B, S, n))[:, 0]
