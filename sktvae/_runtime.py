"""Where and how the fitted model runs: devices, the RNG stream of training, and
inference in bounded chunks (``transform``, decoding, the importance-sampled likelihood).
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
import torch
from sklearn.utils import check_random_state

from ._net import staged
from ._validation import check_output_size

# Inference works in chunks of about this many frames (decoded frames, for score_samples),
# so its working memory stays bounded however many sequences are passed.
_FRAMES_PER_CHUNK = 8192
# On a CPU, fewer: the widest tensor of a chunk stays under this many bytes, below
# glibc's largest mmap threshold (32 MiB). A larger block is mapped afresh at every
# allocation and page-faulted in again; kept under it, the blocks are reused
# (score_samples of the paper's model: 20% faster).
_CPU_CHUNK_BYTES = 24 * 2 ** 20


# --- devices -----------------------------------------------------------------------
def _available_devices():
    devices = ["cpu"]
    devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def check_device(device):
    """A ``ValueError`` naming the devices there are, for a device torch cannot use
    here (a typo, ``"cuda"`` on a CPU-only build, ``"meta"``, which holds no data)."""
    try:
        parsed = torch.device(device)
    except RuntimeError as error:
        raise ValueError(f"device={device!r} is not a torch device; available here: "
                         f"{', '.join(_available_devices())}.") from error
    if parsed.type == "cpu":
        return
    backend = getattr(torch, parsed.type, None)
    available = parsed.type != "meta" and backend is not None and bool(
        getattr(backend, "is_available", lambda: False)())
    if available and parsed.index is not None and hasattr(backend, "device_count"):
        available = parsed.index < backend.device_count()
    if parsed.type == "mps":
        available = torch.backends.mps.is_available()
    if not available:
        raise ValueError(
            f"device={device!r} cannot run here"
            + (" (a meta tensor holds no data)" if parsed.type == "meta" else "")
            + f"; available: {', '.join(_available_devices())}.")


def bfloat16_is_native(device="cpu"):
    """Whether ``device`` runs bfloat16 arithmetic in hardware: AMX or AVX-512 BF16 on
    a CPU (torch's private checks; without them, assume not), bf16 support on CUDA."""
    device = torch.device(device)
    if device.type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device.type != "cpu":
        return False
    return any(getattr(torch.cpu, check, lambda: False)()
               for check in ("_is_amx_tile_supported", "_is_avx512_bf16_supported"))


# --- randomness ----------------------------------------------------------------------
def seed_from(random_state):
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


@contextmanager
def training_rng(estimator, initialize):
    """A private torch RNG stream for training: the same seed gives the same fit, and
    the caller's global torch RNG is left as it was. Training that goes on
    (``partial_fit``, ``warm_start``) takes the stream up where the last call left it,
    so two calls of one epoch train as one fit of two."""
    devices = estimator._cuda_devices()
    with torch.random.fork_rng(devices=devices):
        if initialize:
            torch.manual_seed(seed_from(estimator.random_state))
        else:
            state = estimator._train_rng_state
            torch.set_rng_state(state["cpu"])
            for d in devices:  # a device not saved (the model moved) keeps its own
                if d in state["cuda"]:
                    torch.cuda.set_rng_state(state["cuda"][d], d)
        try:
            yield
        finally:
            estimator._train_rng_state = {
                "cpu": torch.get_rng_state(),
                "cuda": {d: torch.cuda.get_rng_state(d) for d in devices}}


_NOISE_BLOCK = 64  # importance samples drawn from one generator


def importance_noise(seed, samples, sequence_length, n_latent):
    """The standard-normal noise of importance samples ``samples`` (a range of
    indices), ``(2, len(samples), S, n_latent)``: ``z``'s, then ``u``'s.

    The samples are drawn in fixed blocks of ``_NOISE_BLOCK``, block ``b`` from a
    generator seeded from ``(seed, b)``, so sample ``k`` gets the same noise however
    the samples are chunked, and a million samples take a few thousand seedings.
    """
    eps = torch.empty(2, len(samples), sequence_length, n_latent)
    generator = torch.Generator()
    first, stop = samples.start, samples.stop
    for block in range(first // _NOISE_BLOCK, -(-stop // _NOISE_BLOCK)):
        start = block * _NOISE_BLOCK
        generator.manual_seed(int(np.random.SeedSequence([seed, block]).generate_state(1)[0]))
        drawn = torch.randn(_NOISE_BLOCK, 2, sequence_length, n_latent, generator=generator)
        lo, hi = max(first, start), min(stop, start + _NOISE_BLOCK)
        eps[:, lo - first:hi - first] = drawn[lo - start:hi - start].transpose(0, 1)
    return eps


# --- chunked inference ---------------------------------------------------------------
class RuntimeMixin:
    """Inference on the fitted module in chunks of bounded memory."""

    def _cuda_devices(self):
        if self.accelerator is not None:
            return list(range(torch.cuda.device_count()))
        device = torch.device(self.device)
        return [device.index or 0] if device.type == "cuda" else []

    @property
    def _module_device(self):
        """Where the fitted module lives (accelerate may have chosen it)."""
        return next(self.net_.module_.parameters()).device

    def _frames_per_chunk(self):
        """Frames that inference handles at once: ``_FRAMES_PER_CHUNK``, and on a CPU
        no more than keep the widest layer's output under ``_CPU_CHUNK_BYTES`` (an
        MLP's layers: a convolution's feature maps may be wider, which costs speed, not
        correctness)."""
        if self._module_device.type != "cpu":
            return _FRAMES_PER_CHUNK
        widest = max(self.n_features_per_frame_, 2 * self._n_latent,
                     *self.hidden_layer_sizes)
        return max(1, min(_FRAMES_PER_CHUNK, _CPU_CHUNK_BYTES // (4 * widest)))

    def _chunks(self, X, frames_per_row):
        """``(rows, X[rows])`` on the module's device, ``rows`` slices of at most
        :meth:`_frames_per_chunk` frames (at least one row). ``X`` is staged first (on
        a GPU: moved there whole when it fits, else pinned), so that no chunk's copy
        waits for the device to finish the chunk before."""
        device = self._module_device
        X = staged(X, device)
        step = max(1, self._frames_per_chunk() // frames_per_row)
        return ((rows, X[rows].to(device, non_blocking=True))
                for rows in (slice(i, i + step) for i in range(0, len(X), step)))

    def _collect(self, shape, dtype, chunks):
        """Chunks ``(rows, values)`` of a result, gathered into one ndarray of
        ``shape``: written straight into it on the CPU; on an accelerator gathered
        there and copied once, so that a call waits for the device once."""
        device = self._module_device
        if device.type == "cpu":
            out = np.empty(shape, dtype)
            for rows, values in chunks:
                out[rows] = values.numpy()
            return out
        out = torch.empty(shape, dtype=getattr(torch, np.dtype(dtype).name), device=device)
        for rows, values in chunks:
            out[rows] = values
        return out.cpu().numpy()

    def _map_chunks(self, X, frames_per_row, shape, dtype, fn):
        """``fn`` over the chunks of ``X`` in eval mode without autograd, gathered."""
        self.net_.module_.eval()
        with torch.inference_mode():
            return self._collect(shape, dtype, ((rows, fn(x)) for rows, x
                                                in self._chunks(X, frames_per_row)))

    def _log_likelihood(self, X, seed):
        """Importance-sampled log p(x) of each sequence of ``X`` ``(n, S, F)``.

        Chunks of rows and, for large K, of samples: the decoder sees at most about
        :meth:`_frames_per_chunk` frames at once, while the encoders run once per row.
        The noise of each chunk of samples is the same for every chunk of rows. One
        chunk of samples (the usual K) is drawn once; more are drawn as each is needed,
        so memory is bounded by the chunk, not by K.
        """
        module, device = self.net_.module_, self._module_device
        K, S, n = self.n_importance_samples, self.sequence_length_, self._n_latent
        k_step = max(1, self._frames_per_chunk() // S)
        chunks = [range(k, min(K, k + k_step)) for k in range(0, K, k_step)]

        def noise(samples):
            return importance_noise(seed, samples, S, n).to(device)

        drawn = noise(chunks[0]) if len(chunks) == 1 else None

        def log_px(x):
            x = x.float()  # float16 data converted chunk by chunk
            posterior = module.encode(x)
            log_w = torch.cat([
                module.log_importance_weights(x, *(drawn if drawn is not None
                                                   else noise(samples)), posterior)
                for samples in chunks])
            return torch.logsumexp(log_w.double(), dim=0) - math.log(K)

        return self._map_chunks(X, min(K, k_step) * S, (len(X),), np.float64, log_px)

    def _encode_first_frames(self, X):
        """t of the first ``k`` frames of sequences of which only they were seen,
        encoded together: ``(n, k, F)`` tensor -> ``(n, k, n_latent)``. For a TVAE
        the unseen frames' ``u`` is what the prior rewards (``Topography.observed``)."""
        module = self.net_.module_
        return self._map_chunks(X, self.sequence_length_,
                                (len(X), X.shape[1], self._n_latent), np.float32,
                                lambda x: module.latent_mean(x, observed=True))

    def _decode(self, T):
        """Decoder means of latents ``(n, k, n_latent)`` as ``(n, k * n_features)``."""
        module = self.net_.module_
        n, k, _ = T.shape
        check_output_size(n * k * self.n_features_per_frame_,
                          f"Decoding {n} rows of {k} frames", "Ask for fewer rows per call.")
        return self._map_chunks(T, k, (n, k * self.n_features_per_frame_), np.float32,
                                lambda t: module.mean(module.decode(t)).flatten(1))
