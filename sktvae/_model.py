"""The PyTorch model: Gaussian encoders, a decoder and the topographic latent, in one place.

One module serves both estimators. A batch is ``(B, S, F)``: B sequences of S frames of F
features. Encoders and decoder see frames independently; only the topographic operator
(``sktvae._topography.Topography``) mixes frames. With ``topography=None`` the model is a
plain VAE with ``t = z`` and a standard-normal prior.
"""

import hashlib
import math

import torch
from torch import nn
from torch.nn import functional as F

_LOG_2PI = math.log(2.0 * math.pi)


def mlp(sizes):
    """ReLU MLP through ``sizes`` with no activation after the last layer."""
    layers = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        if i:
            layers.append(nn.ReLU())
        layers.append(nn.Linear(n_in, n_out))
    return nn.Sequential(*layers)


def layer_sizes(n_features, n_latent, hidden_layer_sizes):
    """Sizes through one encoder (to mean and log-variance) and through the decoder."""
    hidden = tuple(int(h) for h in hidden_layer_sizes)
    return [n_features, *hidden, 2 * n_latent], [n_latent, *hidden[::-1], n_features]


_MAX_LOG_VAR = 60.0


def expected_square(mean, logvar):
    """E[u^2] = mean^2 + var under N(mean, exp(logvar)): how t sees a Gaussian u, which
    it meets only squared (the mean alone would read a broad posterior as u = 0)."""
    return mean * mean + logvar.exp()


def gaussian_kl(mean, logvar):
    """KL(N(mean, exp(logvar)) || N(0, 1)), summed over all but the batch axis."""
    kl = 0.5 * (expected_square(mean, logvar) - 1.0 - logvar)
    return kl.flatten(1).sum(1)


def normal_log_prob(x, mean, logvar):
    """log N(x; mean, exp(logvar)) summed over the last axis."""
    return -0.5 * ((x - mean) ** 2 * torch.exp(-logvar) + logvar + _LOG_2PI).sum(-1)


class ConvEncoder(nn.Module):
    """Strided convolutions over a frame, then a linear layer: ``(N, C*H*W) -> (N,
    n_outputs)``.

    Each convolution (kernel 4, stride 2, padding 1, ReLU) halves the height and width,
    as in DCGAN-style VAEs; ``channels`` sets their number and widths. An axis already
    down to one value is left as it is (kernel 1 there), so any frame shape works:
    ``(1, 1, n)`` is a 1-D signal, convolved along its ``n`` values.
    """

    def __init__(self, n_features, n_outputs, frame_shape, channels=(32, 64, 128)):
        super().__init__()
        self.frame_shape = tuple(frame_shape)
        sizes = _conv_sizes(frame_shape, channels)
        layers, c_in = [], frame_shape[0]
        for c, size in zip(channels, sizes):
            layers += [nn.Conv2d(c_in, int(c), **_halving(size)), nn.ReLU()]
            c_in = int(c)
        self.conv = nn.Sequential(*layers)
        self.head = nn.Linear(c_in * sizes[-1][0] * sizes[-1][1], n_outputs)

    def forward(self, x):
        return self.head(self.conv(x.view(-1, *self.frame_shape)).flatten(1))


class ConvDecoder(nn.Module):
    """The mirror of :class:`ConvEncoder`: a linear layer to its last feature map, then
    transposed convolutions back to the frame: ``(N, n_latent) -> (N, C*H*W)``."""

    def __init__(self, n_latent, n_features, frame_shape, channels=(32, 64, 128)):
        super().__init__()
        sizes = _conv_sizes(frame_shape, channels)
        channels = [int(c) for c in channels]
        self.map_shape = (channels[-1], *sizes[-1])
        self.head = nn.Linear(n_latent, math.prod(self.map_shape))
        layers = []
        for i in reversed(range(len(channels))):
            c_out = channels[i - 1] if i else frame_shape[0]
            # output_padding 0 or 1 restores the odd sizes the encoder halved
            layers.append(nn.ConvTranspose2d(channels[i], c_out, **_halving(
                sizes[i], sizes[i + 1])))
            if i:
                layers.append(nn.ReLU())
        self.deconv = nn.Sequential(*layers)

    def forward(self, t):
        return self.deconv(self.head(t).relu().view(-1, *self.map_shape)).flatten(1)


def _halving(size, halved=None):
    """Per-axis kernel, stride and padding of a convolution that halves each axis of
    ``size`` (kernel 4, stride 2, padding 1) or, on an axis of one value, keeps it
    (kernel 1); with ``halved``, the output padding of the transposed convolution that
    grows ``halved`` back to ``size``."""
    shrink = [s >= 2 for s in size]
    params = dict(kernel_size=tuple(4 if h else 1 for h in shrink),
                  stride=tuple(2 if h else 1 for h in shrink),
                  padding=tuple(1 if h else 0 for h in shrink))
    if halved is not None:
        params["output_padding"] = tuple(a - 2 * b if h else 0
                                         for a, b, h in zip(size, halved, shrink))
    return params


def _conv_sizes(frame_shape, channels):
    """(height, width) of the frame and after each convolution: halved (rounded
    down) while an axis has two values or more, then kept at one."""
    sizes = [tuple(frame_shape[1:])]
    for _ in channels:
        sizes.append(tuple(s // 2 if s >= 2 else s for s in sizes[-1]))
    return sizes


def mlp_networks(hidden_layer_sizes):
    """The encoder and decoder factories of MLPs through ``hidden_layer_sizes``."""
    hidden = tuple(int(h) for h in hidden_layer_sizes)
    return (lambda n_in, n_out: mlp([n_in, *hidden, n_out]),
            lambda n_in, n_out: mlp([n_in, *hidden[::-1], n_out]))


class GaussianEncoder(nn.Module):
    """q(latent | frame): a network to the mean and log-variance of a diagonal Gaussian.

    ``net`` maps frames ``(N, n_features)`` to ``(N, 2 * n_latent)``; any leading axes
    of the input (batch, sequence) are flattened into ``N`` and restored.
    """

    def __init__(self, net):
        super().__init__()
        self.net = net

    def forward(self, x):
        out = self.net(x.reshape(-1, x.shape[-1]))
        mean, logvar = out.view(*x.shape[:-1], out.shape[-1]).chunk(2, dim=-1)
        # A standard deviation of at most e^30 (1e13): far from any trained posterior
        # (|log-variance| stays under 10 or so), it keeps samples of an input far
        # outside the data finite, where exp(logvar / 2) would overflow to inf and the
        # decoder make NaNs of it.
        return mean, logvar.clamp(-_MAX_LOG_VAR, _MAX_LOG_VAR)


def _check_network_shapes(module, n_features, n_latent):
    """Run zero frames through the networks, two and then three rows (a network right
    for one number of rows only is wrong): a network that returns another shape is
    refused now, with the shape it gave, not deep inside the first step."""
    n_out = {"encoder": 2 * n_latent, "decoder": n_features}
    with torch.no_grad():
        for name, net, n_in in (("encoder", module.encoder_z.net, n_features),
                                ("decoder", module.decoder, n_latent)):
            for rows in (2, 3):
                try:
                    out = net(torch.zeros(rows, n_in))
                except Exception as error:
                    raise ValueError(
                        f"The {name} ({type(net).__name__}) failed on frames of shape "
                        f"({rows}, {n_in}): {type(error).__name__}: {error}. A {name} "
                        f"maps (N, {n_in}) to (N, {n_out[name]}) for any N.") from error
                if not isinstance(out, torch.Tensor) or tuple(out.shape) != (rows,
                                                                          n_out[name]):
                    got = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out)
                    raise ValueError(
                        f"The {name} ({type(net).__name__}) maps ({rows}, {n_in}) to "
                        f"{got}; it must return {(rows, n_out[name])} for any number of "
                        "rows: " + ("the mean and log-variance of every latent"
                                    if name == "encoder" else
                                    "one value per feature of a frame") + ".")


def _shift_mean(net, n_latent, value):
    """Add ``value`` to the bias of the mean outputs (the first ``n_latent``) of
    ``net``'s last layer that has a bias of ``2 * n_latent`` values."""
    for layer in reversed(list(net.modules())):
        bias = getattr(layer, "bias", None)
        if isinstance(bias, torch.Tensor) and bias.shape == (2 * n_latent,):
            with torch.no_grad():
                bias[:n_latent] += value
            return
    raise ValueError(
        f"u_mean_init={value} shifts the bias of the encoder's last layer, but "
        f"{type(net).__name__} has no layer with a bias of {2 * n_latent} outputs; give "
        "it one (e.g. end with nn.Linear) or set u_mean_init=0.")


_CHECKSUM = "checksum"


def module_tensors(module):
    """Every parameter and buffer of ``module`` by name, non-persistent buffers too."""
    tensors = dict(module.named_parameters(remove_duplicate=False))
    tensors.update(module.named_buffers(remove_duplicate=False))
    return tensors


def state_digest(state_dict, prefix=""):
    """A 16-byte BLAKE2 digest of the tensors of ``state_dict`` under ``prefix``
    (names, dtypes, shapes and bytes, in name order; the checksum itself left out)."""
    digest = hashlib.blake2b(digest_size=16)
    for key in sorted(k for k in state_dict if k.startswith(prefix)):
        if key == prefix + _CHECKSUM:
            continue
        tensor = state_dict[key].detach().cpu().contiguous()
        digest.update(f"{key[len(prefix):]}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return torch.frombuffer(bytearray(digest.digest()), dtype=torch.uint8)


def _add_checksum(module, state_dict, prefix, local_metadata):
    state_dict[prefix + _CHECKSUM] = state_digest(state_dict, prefix)


def _verify_checksum(state_dict, prefix):
    """Check and remove the digest saved with a state dict (a state dict without one,
    such as one edited on purpose, loads unchecked)."""
    saved = state_dict.pop(prefix + _CHECKSUM, None)
    if saved is not None and not torch.equal(saved.cpu(), state_digest(state_dict, prefix)):
        raise ValueError(
            "These parameters do not match the checksum saved with them: the file is "
            "damaged or a weight was changed after saving. Load an intact copy (to load "
            f"weights changed on purpose, delete the state dict's {_CHECKSUM!r} entry "
            "first).")


class TopographicVAEModule(nn.Module):
    """Encoders q(z|x), q(u|x), decoder p(x|t) and the map (z, u) -> t.

    Parameters
    ----------
    n_features : int
        Features of one frame.
    n_latent : int
        Latent values per frame (``n_capsules * capsule_dim`` for a TVAE).
    hidden_layer_sizes : tuple of int
        Encoder hidden sizes; the decoder mirrors them.
    likelihood : {"bernoulli", "gaussian"}
        Bernoulli decodes logits; Gaussian decodes means with a learned per-feature
        log-variance.
    topography : Topography or None
        ``None`` gives the plain VAE (``t = z``, no ``u``).
    center_decoder_input : bool
        Feed the decoder ``t - t_offset``, where ``t_offset = -mu / sqrt(n)`` is about
        the mean of t under the prior at initialisation (``n`` terms in each window
        of ``W * u^2``). The decoder's first layer absorbs any constant shift, so the
        model is the same; but with ``mu = 30`` every t sits near ``-4`` with small
        variations around it, and that common offset swamps the first layer's
        gradients (LeCun et al.'s case for centred inputs). Ignored for a plain VAE,
        whose t = z is centred already.
    u_mean_init : float
        Added to the initial bias of q(u|x)'s mean. t depends on u only through u^2,
        so near u = 0 an encoder output and its negation give the same t; started
        away from 0, u^2 follows the encoder's output to first order. An
        initialisation only: the model and its objective are unchanged.
    """

    def __init__(self, n_features, n_latent, hidden_layer_sizes=(512, 512),
                 likelihood="bernoulli", topography=None, center_decoder_input=False,
                 u_mean_init=0.0, networks=None):
        super().__init__()
        make_encoder, make_decoder = networks or mlp_networks(hidden_layer_sizes)
        self.likelihood = likelihood
        self.n_latent = n_latent
        self.encoder_z = GaussianEncoder(make_encoder(n_features, 2 * n_latent))
        self.encoder_u = (GaussianEncoder(make_encoder(n_features, 2 * n_latent))
                          if topography is not None else None)
        self.topography = topography
        self.decoder = make_decoder(n_latent, n_features)
        _check_network_shapes(self, n_features, n_latent)
        if self.encoder_u is not None and u_mean_init:
            _shift_mean(self.encoder_u.net, n_latent, u_mean_init)
        offset = 0.0
        if topography is not None and center_decoder_input:
            offset = -topography.mu.detach().item() / math.sqrt(topography.n_terms)
        self.register_buffer("t_offset", torch.tensor(offset), persistent=False)
        # bfloat16 for the networks while training (the estimator's precision); the
        # topography, the likelihood and everything at inference stay float32
        self.autocast_dtype = None
        if likelihood == "gaussian":
            self.x_logvar = nn.Parameter(torch.zeros(n_features))
            # The data's per-feature mean and standard deviation (set by the estimator
            # at fit): the encoders read standardised frames and the decoder's means
            # and variances are in standardised units, mapped back for the likelihood.
            # A fixed affine map of x, so the model family and its likelihood of x are
            # unchanged; data of mean 100 or standard deviation 100 trains as data of
            # mean 0 and standard deviation 1 does.
            self.register_buffer("x_shift", torch.zeros(n_features))
            self.register_buffer("x_scale", torch.ones(n_features))
        # What the weights were trained with beyond their shapes, saved with them, so
        # that loading them into a model built otherwise is refused, not silently wrong.
        self.register_buffer("structure", torch.tensor(self._structure(), dtype=torch.float64))
        # Every state dict carries a digest of its tensors, checked when it is loaded:
        # a file with a changed or damaged weight is refused, not used.
        self._register_state_dict_hook(_add_checksum)

    # (what the estimator calls it, the value) for each entry of ``structure``
    _STRUCTURE_NAMES = ("a topography (TopographicVAE, not VAE)", "coherence",
                        "temporal_window (past frames)", "capsule_window (rows)",
                        "capsule_window (cols)", "n_capsules", "capsule_dim (rows)",
                        "capsule_dim (cols)", "sequence_length",
                        "center_decoder_input (with mu_init)",
                        "temporal_window (future frames)", "circular_time")

    def _structure(self):
        top = self.topography
        if top is None:
            return [0.0] * 9 + [float(self.t_offset), 0.0, 0.0]
        first, last = top.window_offsets
        return [1.0, float(top.shifting), float(-first),
                *map(float, top.capsule_window), float(top.n_capsules),
                *map(float, top.capsule_shape), float(top.sequence_length),
                float(self.t_offset), float(last), float(top.circular_time)]

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Refuse weights saved from a model of another structure (torch would load
        them wherever the shapes agree)."""
        _verify_checksum(state_dict, prefix)
        key = prefix + "structure"
        if key not in state_dict:  # torch reports the missing key itself
            return super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        saved = state_dict[key].double().cpu().flatten().tolist()
        own = self.structure.cpu().tolist()
        differ = [f"{name} ({a:g} saved, {b:g} here)" for name, a, b
                  in zip(self._STRUCTURE_NAMES, saved, own) if abs(a - b) > 1e-6]
        if len(saved) != len(own) or differ:
            raise ValueError(
                "These parameters were saved from a model built otherwise: "
                f"{'; '.join(differ) or 'another layout'}. Build the estimator with the "
                "parameters the file was saved from, fit it (max_epochs=0 is enough), "
                "then load.")
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # --- the pieces -------------------------------------------------------------
    def _autocast(self, x):
        dtype = self.autocast_dtype
        return torch.autocast(x.device.type, dtype=dtype or torch.bfloat16,
                              enabled=dtype is not None and self.training)

    def _standardised(self, x):
        if self.likelihood == "bernoulli":
            return x
        return (x - self.x_shift) / self.x_scale

    def encode(self, x):
        """Posterior parameters: four ``(B, S, n_latent)`` tensors (``u`` ones ``None``)."""
        x = self._standardised(x)
        with self._autocast(x):
            z_mean, z_logvar = self.encoder_z(x)
            u_mean, u_logvar = self.encoder_u(x) if self.encoder_u is not None \
                else (None, None)
        if u_mean is None:
            return z_mean.float(), z_logvar.float(), None, None
        return z_mean.float(), z_logvar.float(), u_mean.float(), u_logvar.float()

    def latent(self, z, u):
        """t from z and u; ``(..., S, n_latent)`` with any leading batch axes."""
        if self.topography is None:
            return z
        lead = z.shape[:-2]
        t = self.topography(z.reshape(-1, *z.shape[-2:]), u.reshape(-1, *u.shape[-2:]))
        return t.view(*lead, *t.shape[-2:])

    def latent_mean(self, x, observed=False):
        """Deterministic t: ``z`` at its posterior mean and ``u^2`` at its posterior
        expectation (``expected_square``).

        ``x`` is ``(B, S, F)``, or with ``observed=True`` ``(B, k, F)``: the first ``k``
        frames of sequences of which no more was seen (``Topography.observed``; ``k = 1``
        is a frame encoded alone).
        """
        z_mean, _, u_mean, u_logvar = self.encode(x.float())
        if self.topography is None:
            return z_mean
        u_sq = expected_square(u_mean, u_logvar)
        if observed:
            return self.topography.observed(z_mean, u_sq)
        return self.topography.from_squares(z_mean, u_sq)

    def decode(self, t):
        """The decoder's output: Bernoulli logits or Gaussian means, ``(..., F)``."""
        with self._autocast(t):
            out = self.decoder((t - self.t_offset).reshape(-1, t.shape[-1]))
        return out.float().view(*t.shape[:-1], out.shape[-1])

    def mean(self, x_param):
        """E[x | t] from the decoder output."""
        if self.likelihood == "bernoulli":
            return torch.sigmoid(x_param)
        return self.x_shift + self.x_scale * x_param

    def log_likelihood(self, x, x_param):
        """log p(x | t) per frame, ``(..., S)``."""
        if self.likelihood == "bernoulli":
            return -F.binary_cross_entropy_with_logits(
                x_param, x.expand_as(x_param), reduction="none").sum(-1)
        return (normal_log_prob(self._standardised(x), x_param, self.x_logvar)
                - self.x_scale.log().sum())

    # --- the objective ------------------------------------------------------------
    def forward(self, x):
        """One-sample ELBO terms of each sequence: ``(log p(x|t), KL)``, both ``(B,)``.

        ``x`` is ``(B, S, F)``. The reparameterised samples make both terms
        differentiable; their difference summed over frames is the ELBO.
        """
        x = x.float()  # float16 data is converted batch by batch
        z_mean, z_logvar, u_mean, u_logvar = self.encode(x)
        z = z_mean + torch.randn_like(z_mean) * torch.exp(0.5 * z_logvar)
        kl = gaussian_kl(z_mean, z_logvar)
        u = None
        if u_mean is not None:
            u = u_mean + torch.randn_like(u_mean) * torch.exp(0.5 * u_logvar)
            kl = kl + gaussian_kl(u_mean, u_logvar)
        x_param = self.decode(self.latent(z, u))
        return self.log_likelihood(x, x_param).sum(-1), kl

    def log_importance_weights(self, x, eps_z, eps_u=None, posterior=None):
        """log p(x, z, u) - log q(z, u | x) of each sequence for given noise.

        ``x`` is ``(B, S, F)``; ``eps_z`` and ``eps_u`` are ``(K, S, n_latent)``
        standard-normal draws shared by every sequence of the batch (common random
        numbers, so a row's estimate does not depend on its batch). The encoders run
        once (or not at all when their output ``posterior = encode(x)`` is given); the
        K samples are decoded in one batch. Returns ``(K, B)``.
        """
        x = x.float()
        z_mean, z_logvar, u_mean, u_logvar = posterior or self.encode(x)
        z, log_w = self._reparameterise(z_mean, z_logvar, eps_z)
        u = None
        if u_mean is not None:
            u, log_w_u = self._reparameterise(u_mean, u_logvar, eps_u)
            log_w = log_w + log_w_u
        x_param = self.decode(self.latent(z, u))  # (K, B, S, F)
        return log_w + self.log_likelihood(x, x_param).sum(-1)

    @staticmethod
    def _reparameterise(mean, logvar, eps):
        """Samples ``(K, B, S, n)`` and their ``log p - log q`` summed per sequence.

        ``log q`` of a reparameterised sample depends only on ``eps`` and ``logvar``,
        so it is summed on those small tensors instead of on the samples.
        """
        sample = mean + eps[:, None] * torch.exp(0.5 * logvar)
        log_q = -0.5 * ((eps * eps).sum((-2, -1))[:, None]             # (K, 1)
                        + logvar.sum((-2, -1))[None] + _LOG_2PI * logvar[0].numel())
        # In float64: a sample of 1e20 (a far-out input's broad posterior) has a finite
        # log-density there, while its square overflows float32.
        square = sample.double().square().sum((-2, -1))
        log_p = -0.5 * (square + _LOG_2PI * logvar[0].numel())
        return sample, log_p - log_q
