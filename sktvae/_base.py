"""What ``TopographicVAE`` and ``VAE`` share: validation, training through skorch, and the
batched inference behind ``transform``, ``inverse_transform``, ``score_samples`` and
``sample``.

Data flow: ``fit(X)`` -> ``validate_data`` -> rows reshaped to ``(n, S, F)`` -> skorch
net (``net_``) -> module -> ``NegativeELBO``. Subclasses only say which module to build
(``_build_module``) and how to name the latent features (``_latent_feature_names``).
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import TYPE_CHECKING
from numbers import Integral, Real

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils._param_validation import (HasMethods, Interval, InvalidParameterError,
                                            StrOptions)
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from skorch.callbacks import Callback

from ._model import ConvDecoder, ConvEncoder, layer_sizes, mlp, state_digest
from ._sequences import frame_structure
from ._net import (AcceleratedTVAENet, NegativeELBO, StopOnNonFiniteLoss, TVAENet, discard,
                   staged, tensor_batches)

_OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "sgd": torch.optim.SGD}
# Inference works in chunks of about this many frames (decoded frames, for score_samples),
# so its working memory stays bounded however many sequences are passed.
_FRAMES_PER_CHUNK = 8192
# On a CPU, fewer: the widest tensor of a chunk stays under this many bytes, below
# glibc's largest mmap threshold (32 MiB). A larger block is mapped afresh at every
# allocation and page-faulted in again; kept under it, the blocks are reused
# (score_samples of the paper's model: 20% faster).
_CPU_CHUNK_BYTES = 24 * 2 ** 20
# What one call may return (and work with): 4 GiB of float32. Past it, an error that
# says how much was asked, not an allocation failure deep inside torch.
_MAX_OUTPUT_VALUES = 2 ** 30
# Values of one latent tensor of a training batch (batch_size * S * n_latent); a step
# holds about ten such tensors with their gradients.
_MAX_BATCH_LATENT_VALUES = 2 ** 28


def _check_output_size(n_values, what, advice):
    if n_values > _MAX_OUTPUT_VALUES:
        raise ValueError(
            f"{what} would need {n_values * 4 / 2 ** 30:.1f} GiB of float32, more than "
            f"the {_MAX_OUTPUT_VALUES * 4 // 2 ** 30} GiB one call returns. {advice}")


def _get_rng_state(devices):
    """torch's RNG state: the CPU generator's and each listed CUDA device's."""
    return {"cpu": torch.get_rng_state(),
            "cuda": {d: torch.cuda.get_rng_state(d) for d in devices}}


def _set_rng_state(state, devices):
    torch.set_rng_state(state["cpu"])
    for d in devices:  # a device not saved (the model moved) keeps its fresh state
        if d in state["cuda"]:
            torch.cuda.set_rng_state(state["cuda"][d], d)


def _importance_noise(seed, samples, sequence_length, n_latent):
    """The standard-normal noise of importance samples ``samples`` (a range of
    indices), ``(2, len(samples), S, n_latent)``: ``z``'s, then ``u``'s.

    Each sample has a generator of its own, seeded from ``(seed, k)``, so sample ``k``
    gets the same noise however the samples are chunked.
    """
    eps = torch.empty(2, len(samples), sequence_length, n_latent)
    generator = torch.Generator()
    for i, k in enumerate(samples):
        generator.manual_seed(int(np.random.SeedSequence([seed, k]).generate_state(1)[0]))
        eps[:, i] = torch.randn(2, sequence_length, n_latent, generator=generator)
    return eps


if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing_extensions import Self


def _available_devices():
    devices = ["cpu"]
    devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    return devices


def _check_device(device):
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


def _is_int(value):
    """An integer, and not a bool: ``True`` passed where a count belongs is a mistake."""
    return isinstance(value, Integral) and not isinstance(value, bool)


def _comparable(value):
    """A parameter value in a form ``==`` compares: sequences as nested tuples."""
    if isinstance(value, (list, tuple, np.ndarray)):
        return tuple(_comparable(v) for v in value)
    return value.item() if isinstance(value, np.generic) else value


def _check_finite(X, rows_per_chunk=1024):
    """Raise sklearn's ValueError for NaN or infinity, in bounded memory."""
    for start in range(0, len(X), rows_per_chunk):
        chunk = X[start:start + rows_per_chunk]
        if not np.isfinite(chunk).all():
            what = "NaN" if np.isnan(chunk).any() else "infinity or a value too large"
            raise ValueError(f"Input X contains {what}. Remove or impute such values "
                             "first (e.g. with sklearn.impute.SimpleImputer).")


class _BaseVAE(TransformerMixin, BaseEstimator):
    """Base class of the sequence VAEs; not for direct use."""

    _parameter_constraints = {
        "sequence_length": [Interval(Integral, 1, None, closed="left")],
        "likelihood": [StrOptions({"bernoulli", "gaussian"})],
        "hidden_layer_sizes": ["array-like"],
        "frame_shape": [tuple, list, None],
        "encoder": [StrOptions({"mlp", "conv"}), type],
        "decoder": [StrOptions({"mirror", "mlp", "conv"}), type],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_OPTIMIZERS)), type],
        "callbacks": [list, None],
        "train_split": [callable, None],
        "device": [str, torch.device],
        "precision": [StrOptions({"float32", "bfloat16", "auto"})],
        "accelerator": [HasMethods(["prepare", "accumulate"]), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }

    # skorch's double-underscore parameters that reach the net (``**kwargs``)
    _ROUTED_PREFIXES = ("optimizer", "iterator_train", "iterator_valid", "callbacks",
                        "encoder", "decoder")
    _NETWORK_PREFIXES = ("encoder", "decoder")  # for the module, not the skorch net

    def _net_params(self):
        """The double-underscore parameters that go to the skorch net."""
        return {k: v for k, v in self._routed_params().items()
                if k.split("__", 1)[0] not in self._NETWORK_PREFIXES}

    def _network_params(self, role):
        """``encoder__*`` or ``decoder__*`` without the prefix."""
        return {k.split("__", 1)[1]: v for k, v in self._routed_params().items()
                if k.startswith(role + "__")}

    def _networks(self):
        """The encoder and decoder factories, ``(n_in, n_out) -> nn.Module``."""
        encoder = self.encoder
        decoder = self.decoder if self.decoder != "mirror" else (
            encoder if isinstance(encoder, str) else "mlp")
        hidden = tuple(int(h) for h in self.hidden_layer_sizes)
        shape = getattr(self, "frame_shape_", self.frame_shape)
        factories = []
        for role, kind, sizes in (("encoder", encoder, hidden),
                                  ("decoder", decoder, hidden[::-1])):
            params = self._network_params(role)
            if kind == "mlp":
                if params:
                    raise ValueError(
                        f"{role}__{next(iter(params))}: the MLP {role} takes its sizes "
                        f"from hidden_layer_sizes; {role}__ parameters go to {role}='conv' "
                        "or a module class.")
                factories.append(lambda n_in, n_out, sizes=sizes: mlp([n_in, *sizes, n_out]))
                continue
            cls = kind if isinstance(kind, type) else (
                ConvEncoder if role == "encoder" else ConvDecoder)
            factories.append(lambda n_in, n_out, cls=cls, params=params:
                             cls(n_in, n_out, shape, **params))
        return tuple(factories)

    def _resolve_frame_shape(self, n_features):
        """``frame_shape_``: the parameter, or the shape the input said it has."""
        seen = getattr(self, "_seen_frame_shape", None)
        shape = self.frame_shape
        if shape is not None:
            if len(shape) != 3 or not all(_is_int(v) and (v >= 1 or v == -1)
                                          for v in shape) or list(shape).count(-1) > 1:
                raise ValueError(f"frame_shape must be (channels, height, width) of "
                                 f"positive ints, one of which may be -1 (inferred from "
                                 f"the features, as numpy's reshape does); got {shape!r}.")
            shape = tuple(int(v) for v in shape)
            if -1 in shape:
                known = -math.prod(shape)
                if n_features % known:
                    raise ValueError(
                        f"frame_shape={shape}: a frame of X has {n_features} values, not "
                        f"a multiple of {known}, so -1 cannot be inferred.")
                shape = tuple(n_features // known if v == -1 else v for v in shape)
            if seen is not None and seen != shape:
                raise ValueError(f"frame_shape={shape}, but X holds frames of shape "
                                 f"{seen} (as SequenceTransformer wrote them).")
        else:
            shape = seen
        if shape is not None and math.prod(shape) != n_features:
            raise ValueError(
                f"frame_shape={shape} has {math.prod(shape)} values, but a frame of X has "
                f"{n_features} (n_features_in_ / sequence_length = "
                f"{n_features * self.sequence_length} / {self.sequence_length}).")
        if shape is None and "conv" in (self.encoder, self.decoder):
            raise ValueError(
                "encoder='conv' (or decoder='conv') needs frame_shape=(channels, height, "
                "width), e.g. frame_shape=(1, 28, 28) for MNIST frames.")
        return shape

    def _routed_params(self):
        """The keyword arguments given beyond the named parameters (``**kwargs``, or
        ``set_params``)."""
        return dict(vars(self).get("_kwargs", {}))

    def _check_routed(self, params):
        for key in params:
            if "__" not in key or key.split("__", 1)[0] not in self._ROUTED_PREFIXES:
                raise ValueError(
                    f"{key!r} is not a parameter of {type(self).__name__}: double-"
                    "underscore parameters go to the skorch net or the networks and "
                    "must start with "
                    f"{', '.join(p + '__' for p in self._ROUTED_PREFIXES)} (e.g. "
                    "optimizer__weight_decay=1e-4).")

    def get_params(self, deep=True):
        """Get the parameters of this estimator, with its double-underscore ones.

        Parameters
        ----------
        deep : bool, default=True
            Also the parameters of sub-objects that are estimators.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return {**super().get_params(deep=deep), **self._routed_params()}

    def set_params(self, **params):
        """Set parameters, including skorch's double-underscore ones.

        ``optimizer__*``, ``iterator_train__*``, ``iterator_valid__*`` and
        ``callbacks__*`` are kept for the skorch net, ``encoder__*`` and
        ``decoder__*`` for the networks (scikit-learn would read them as parameters of
        a nested estimator ``optimizer``, which is a string).

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
            The estimator.
        """
        extra = self._routed_params()
        routed = {k: v for k, v in params.items() if "__" in k or k in extra}
        self._check_routed({k: v for k, v in routed.items() if "__" in k})
        super().set_params(**{k: v for k, v in params.items() if k not in routed})
        self._kwargs = {**self._routed_params(), **routed}
        return self

    # --- what subclasses provide ---------------------------------------------------
    @abstractmethod
    def _build_module(self, n_features):
        """The torch module for frames of ``n_features`` values."""

    @abstractmethod
    def _latent_feature_names(self):
        """Names of one frame's latent values."""

    @property
    @abstractmethod
    def _n_latent(self):
        """Latent values per frame."""

    @abstractmethod
    def _forecast_latents(self, t_observed, n_steps):
        """Latents ``(n, n_steps, n_latent)`` of the frames after the observed ones,
        whose latents are ``t_observed`` ``(n, k, n_latent)``."""

    def _check_params(self):
        """Checks across parameters, after ``_validate_params``; subclasses extend it."""
        for name, constraints in self._parameter_constraints.items():
            # scikit-learn's Interval(Integral) takes True for 1: a flag passed where a
            # size belongs is a mistake, not a size.
            value = getattr(self, name)
            if isinstance(value, (bool, np.bool_)) and any(
                    isinstance(c, Interval) and c.type is Integral for c in constraints):
                raise InvalidParameterError(
                    f"The {name!r} parameter of {type(self).__name__} must be an int, "
                    f"not a bool; got {value!r}.")
        self._check_routed(self._routed_params())
        for role in ("encoder", "decoder"):
            kind = getattr(self, role)
            if isinstance(kind, type) and not issubclass(kind, torch.nn.Module):
                raise TypeError(f"{role} must be 'mlp', 'conv' or a torch.nn.Module "
                                f"subclass; got {kind!r}.")
        sizes = np.asarray(self.hidden_layer_sizes)
        if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) \
                or (sizes < 1).any():
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of positive integers, "
                f"e.g. (512, 512); got {self.hidden_layer_sizes!r}.")
        if isinstance(self.optimizer, type) \
                and not issubclass(self.optimizer, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be 'adam', 'adamw', 'sgd' or a torch.optim.Optimizer "
                f"subclass; got {self.optimizer!r}.")
        for i, callback in enumerate(self.callbacks or []):
            named = isinstance(callback, tuple) and len(callback) == 2 \
                and isinstance(callback[0], str)
            instance = callback[1] if named else callback
            if not isinstance(instance, Callback):
                raise TypeError(
                    f"callbacks[{i}] is {callback!r}: each callback must be a skorch "
                    "Callback instance (e.g. skorch.callbacks.EarlyStopping()) or a "
                    "(name, callback) pair.")
            monitor = getattr(instance, "monitor", None)
            if self.train_split is None and isinstance(monitor, str) \
                    and monitor.startswith("valid_"):
                name = type(instance).__name__
                raise ValueError(
                    f"callbacks[{i}] ({name}) monitors {monitor!r}, but train_split=None "
                    "records no validation loss. Pass train_split=skorch.dataset."
                    f"ValidSplit(0.2), or monitor the training loss: {name}(monitor="
                    f"{monitor.replace('valid_', 'train_', 1)!r}).")
        if self.accelerator is None:  # accelerate places the model itself
            _check_device(self.device)
        elif self.precision != "float32":
            raise ValueError(
                f"precision={self.precision!r} with an accelerator: set the accelerator's "
                "own mixed_precision instead (Accelerator(mixed_precision='bf16')).")

    # --- input handling -------------------------------------------------------------
    def _validate_X(self, X, reset):
        """Validate ``X`` and return it as a ``(n, S, F)`` tensor (a view, no copy).

        float16 input stays float16 (half the memory of float32; each batch is converted
        on its way into the model); anything else becomes float32.
        """
        if not reset:
            self._check_fitted()
        structure = self._check_structure(X)
        if reset:
            self._seen_frame_shape = structure[1] if structure else None
        # Finiteness is checked below in row chunks: sklearn's check can build a boolean
        # copy of the whole array (2.4 GiB for 60 000 float16 MNIST sequences).
        X = validate_data(self, X, reset=reset, dtype=[np.float32, np.float16],
                          ensure_all_finite=False)
        _check_finite(X)
        S = self.sequence_length
        if X.shape[1] % S:
            raise ValueError(
                f"X has {X.shape[1]} features, which is not divisible by "
                f"sequence_length={S}: a row must hold {S} frames of equal size, "
                "concatenated in time order.")
        self._check_range(X)
        if not X.flags.writeable:  # torch cannot wrap read-only memory
            X = X.copy()
        return torch.from_numpy(X).view(X.shape[0], S, X.shape[1] // S)

    def _check_structure(self, X):
        """Refuse rows that say they hold other frames than ``sequence_length`` cuts."""
        structure = frame_structure(X)
        if structure is None or structure[0] == self.sequence_length:
            return structure
        S, shape = structure
        raise ValueError(
            f"X holds sequences of {S} frames of shape {shape} (as SequenceTransformer "
            f"wrote them), but sequence_length={self.sequence_length} would cut each "
            f"row into {self.sequence_length} frames of "
            f"{X.shape[1] // self.sequence_length if self.sequence_length else 0} values. "
            f"Set sequence_length={S} here (in a grid search, search both together: "
            f"[{{'<transformer>__sequence_length': [{S}], '<vae>__sequence_length': "
            f"[{S}]}}, ...]), or pass np.asarray(X).reshape(-1, {math.prod(shape)}) to "
            "fit the frames one by one.")

    def _check_range(self, X):
        """A Bernoulli likelihood is defined on [0, 1] only."""
        if self.likelihood != "bernoulli" or not X.size:
            return
        low, high = X.min(), X.max()
        if low < 0 or high > 1:
            # repr: 1.0000001 must not print as "1"
            raise ValueError(
                f"likelihood='bernoulli' needs X in [0, 1]; got values in "
                f"[{float(low)!r}, {float(high)!r}]. Scale X (e.g. with "
                "sklearn.preprocessing.MinMaxScaler), clip it, or use "
                "likelihood='gaussian'.")

    # Parameters that define the model: changed after fit, they would describe a
    # model that is not the one fitted, so they are refused until it is rebuilt.
    _architecture_params = ("sequence_length", "hidden_layer_sizes", "likelihood",
                            "frame_shape", "encoder", "decoder")

    def _architecture(self):
        """The parameters that define the model, with ``encoder__*`` / ``decoder__*``."""
        architecture = {name: _comparable(getattr(self, name))
                        for name in self._architecture_params}
        for role in self._NETWORK_PREFIXES:
            for key, value in self._network_params(role).items():
                architecture[f"{role}__{key}"] = _comparable(value)
        return architecture

    def _check_fitted(self):
        """``check_is_fitted``, and that the parameters still describe the fitted model."""
        check_is_fitted(self, "net_")
        built = getattr(self, "_built_with", None)
        if built is None:  # a model pickled before the parameters were kept
            return
        now = self._architecture()
        for name in sorted(set(now) | set(built)):
            if name not in built and name in self._architecture_params:
                continue  # a model pickled before this parameter existed
            if now.get(name, "not set") != built.get(name, "not set"):
                raise ValueError(
                    f"{name}={now.get(name, 'not set')!r}, but the fitted model was "
                    f"built with {name}={built.get(name, 'not set')!r}; set_params does "
                    f"not rebuild a fitted model. Set {name} back, or fit with "
                    "warm_start=False to build a new model with it.")

    def _seed(self, random_state):
        return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))

    # --- training -------------------------------------------------------------------
    def _make_net(self, module):
        optimizer = self.optimizer
        extra = {}
        if isinstance(optimizer, str):
            if optimizer == "sgd":  # the paper's optimizer
                extra["optimizer__momentum"] = 0.9
            if self.accelerator is None \
                    and torch.device(self.device).type in ("cpu", "cuda"):
                # One fused kernel for the whole update: on 2 CPU cores Adam's per-tensor
                # loop took 23 ms of an 82 ms paper-sized step, the fused one 5 ms. A
                # fused step also skips itself on a flag left on the device, so the
                # non-finite check needs no synchronisation (StopOnNonFiniteLoss). Same
                # update up to float rounding; pass the class to opt out.
                extra["optimizer__fused"] = True
            optimizer = _OPTIMIZERS[optimizer]
        callbacks = [("stop_on_non_finite", StopOnNonFiniteLoss())]
        callbacks += [clone(cb, safe=False) for cb in self.callbacks or []]
        net_class, device = TVAENet, self.device
        if self.accelerator is not None:  # accelerate places the model itself
            net_class, device = AcceleratedTVAENet, None
            extra["accelerator"] = self.accelerator
            if not self.verbose:
                extra["callbacks__print_log__sink"] = discard
        else:  # batches by index from the data's one tensor (accelerate wants loaders)
            extra.update(iterator_train=tensor_batches, iterator_valid=tensor_batches)
            if torch.device(self.device).type == "cuda":
                extra.update(iterator_train__device=self.device,
                             iterator_valid__device=self.device)
        return net_class(
            module=module, criterion=NegativeELBO, optimizer=optimizer, lr=self.lr,
            max_epochs=self.max_epochs, batch_size=self.batch_size,
            train_split=self.train_split, callbacks=callbacks, device=device,
            verbose=self.verbose,
            # defaults the routed iterator_train__* / optimizer__* parameters override
            **{"iterator_train__shuffle": True, **extra, **self._net_params()})

    def fit(self, X: ArrayLike, y: None = None) -> Self:
        """Fit the model to sequences ``X`` by maximising the ELBO.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_features)
            One row per sequence: ``sequence_length`` frames concatenated in time order.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The fitted estimator.

        Raises
        ------
        FloatingPointError
            When the loss or its gradient becomes non-finite. That step is not
            taken: the estimator keeps the parameters and optimizer state of the last
            finite step. With a fused optimizer (the default) no later step is taken
            either and the error comes at the end of that epoch or within 256
            batches (``callbacks__stop_on_non_finite__check_every``), with the losses
            up to then in the history; otherwise it comes at once.
        KeyboardInterrupt
            On Ctrl-C, after the last completed batch; the estimator stays usable with
            what it has learnt and can go on (``warm_start``, :meth:`partial_fit`).
        """
        self._validate_params()
        self._check_params()
        first_fit = not (self.warm_start and hasattr(self, "net_"))
        X = self._validate_X(X, reset=first_fit)
        return self._train(X, epochs=self.max_epochs, initialize=first_fit)

    def partial_fit(self, X: ArrayLike, y: None = None) -> Self:
        """Train for one epoch on ``X``, initialising the model on the first call.

        Each call takes ``random_state``'s stream up where the last one left it, so
        ``n`` calls on the same ``X`` train exactly as ``fit`` with ``max_epochs=n``
        (as does a ``warm_start`` fit that goes on, or a pickled model trained further).

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_features)
            Sequences, as for :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        self : object
            The estimator, trained one more epoch.
        """
        first_fit = not hasattr(self, "net_")
        if first_fit:
            self._validate_params()
            self._check_params()
        X = self._validate_X(X, reset=first_fit)
        return self._train(X, epochs=1, initialize=first_fit)

    def _train(self, X, epochs, initialize):
        devices = self._cuda_devices()
        # A private RNG stream: the same seed gives the same fit, and the caller's global
        # torch RNG is left as it was. Training that goes on (partial_fit, warm_start)
        # takes the stream up where the last call left it, so two calls of one epoch
        # train as one fit of two: reseeding would replay the first epoch's shuffling
        # and noise, every example with the same noise draw each epoch.
        with torch.random.fork_rng(devices=devices):
            state = None if initialize else getattr(self, "_train_rng_state", None)
            if state is None:  # a first fit (or a model pickled before this state)
                torch.manual_seed(self._seed(self.random_state))
            else:
                _set_rng_state(state, devices)
            if initialize:
                # score_samples' noise where random_state is not an int: drawn once
                # per fitted model, so that repeated calls agree.
                self._score_seed = self._seed(self.random_state)
                self.frame_shape_ = self._resolve_frame_shape(X.shape[2])
                self._check_model_size(X.shape[2])
                self.n_features_per_frame_ = X.shape[2]
                self.net_ = self._make_net(self._build_module(X.shape[2]))
                self.net_.initialize()
                self._apply_precision()
                self._built_with = self._architecture()
                self._built_optimizer = self.optimizer
                self._built_routed = self._net_params()
            else:
                self._refresh_training_params()
            # skorch's partial_fit: callbacks' on_train_begin/end run, and Ctrl-C stops
            # after the last completed batch, leaving a usable estimator; a diverging
            # step raises before it changes the weights (StopOnNonFiniteLoss).
            try:
                self.net_.partial_fit(X, None, epochs=epochs)
            finally:
                self._train_rng_state = _get_rng_state(devices)
        if getattr(self.net_, "interrupted_", False):
            raise KeyboardInterrupt  # the caller (a loop, GridSearchCV) stops too
        return self

    @property
    def history_(self):
        """skorch's ``History`` of the fitted net, ``net_.history``: always the net's
        own, so that loading a history (``net_.load_params(f_history=...)``) shows."""
        if "net_" not in vars(self):
            raise AttributeError("history_ exists once the estimator is fitted.")
        return self.net_.history

    def _refresh_training_params(self):
        """Training parameters changed by ``set_params`` since the last call take
        effect now: ``lr`` and ``batch_size`` on the same optimizer (its state kept);
        another ``optimizer`` starts afresh, with no state, on the trained weights."""
        built = getattr(self, "_built_optimizer", self.optimizer)
        if _comparable(self.optimizer) != _comparable(built):
            history = self.net_.history
            self.net_ = self._make_net(self.net_.module_)  # the trained module itself
            self.net_.initialize()
            self.net_.history = history
        else:
            routed = self._net_params()
            built = getattr(self, "_built_routed", {})
            changed = {k: v for k, v in routed.items()
                       if k not in built or _comparable(v) != _comparable(built[k])}
            # skorch's own rules: optimizer__* update its param groups (state kept)
            self.net_.set_params(lr=self.lr, batch_size=self.batch_size, **changed)
        self._built_optimizer = self.optimizer
        self._built_routed = self._net_params()
        self._apply_precision()

    def _apply_precision(self):
        """``precision_`` and the module's training arithmetic, from ``precision``."""
        precision = self.precision
        if precision == "auto":
            precision = "bfloat16" if bfloat16_is_native(self._module_device) \
                else "float32"
        self.precision_ = precision
        self.net_.module_.autocast_dtype = torch.bfloat16 if precision == "bfloat16" \
            else None

    _n_encoders = 1
    _MAX_PARAMETERS = 2 ** 30  # 4 GiB of float32 weights, before gradients and Adam

    def _check_model_size(self, n_features):
        """Refuse models too large to allocate, before torch tries (and fails late)."""
        encoder, decoder = layer_sizes(n_features, self._n_latent, self.hidden_layer_sizes)
        n_params = sum(
            count * sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
            for count, sizes in ((self._n_encoders, encoder), (1, decoder)))
        batch_latent = self.batch_size * self.sequence_length * self._n_latent
        if batch_latent > _MAX_BATCH_LATENT_VALUES:
            raise ValueError(
                f"A training batch would hold {batch_latent:.3g} latent values per tensor "
                f"(batch_size={self.batch_size} x sequence_length={self.sequence_length} "
                f"x {self._n_latent} latent values per frame), more than "
                f"{_MAX_BATCH_LATENT_VALUES:.3g}: a step would need tens of GiB. Use a "
                "smaller batch_size or fewer latent dimensions.")
        mlps = self.encoder == "mlp" and self.decoder in ("mirror", "mlp")
        if mlps and n_params > self._MAX_PARAMETERS:  # other networks: their own size
            raise ValueError(
                f"The model would have {n_params:.3g} parameters (frames of {n_features} "
                f"features, {self._n_latent} latent values per frame, "
                f"hidden_layer_sizes={tuple(encoder[1:-1])}), more than "
                f"{self._MAX_PARAMETERS:.3g}. Use smaller hidden_layer_sizes or fewer "
                "latent dimensions.")

    def _cuda_devices(self):
        if self.accelerator is not None:
            return list(range(torch.cuda.device_count()))
        device = torch.device(self.device)
        return [device.index or 0] if device.type == "cuda" else []

    @property
    def _module_device(self):
        """Where the fitted module lives (accelerate may have chosen it)."""
        return next(self.net_.module_.parameters()).device

    # --- batched inference ------------------------------------------------------------
    def _frames_per_chunk(self):
        """Frames that inference handles at once: ``_FRAMES_PER_CHUNK``, and on a CPU
        no more than keep the widest layer's output under ``_CPU_CHUNK_BYTES`` (an
        MLP's layers: a convolution's feature maps may be wider, which costs speed, not
        correctness)."""
        if self._module_device.type != "cpu":
            return _FRAMES_PER_CHUNK
        widest = max(self.n_features_in_ // self.sequence_length, 2 * self._n_latent,
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
        there and copied once, so that a call waits for the device once, not once per
        chunk."""
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

    def _inference(self):
        """Context for inference: eval mode, no autograd."""
        self._check_fitted()
        self.net_.module_.eval()
        return torch.inference_mode()

    def transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """The latent ``t`` of every frame from the posterior (deterministic).

        ``z`` is taken at its posterior mean and ``u^2`` at its posterior expectation
        (``u`` enters ``t`` only through ``u^2``), so ``transform`` involves no noise.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_features)
            Sequences, as for :meth:`fit`.

        Returns
        -------
        T : ndarray of shape (n_sequences, sequence_length * n_latent)
            Latents ordered by frame, then latent index (for a TVAE: capsule, then
            capsule dimension).
        """
        X = self._validate_X(X, reset=False)
        _check_output_size(X.shape[0] * self._n_features_out, f"transform of {len(X)} rows",
                           "Transform fewer rows per call.")
        module = self.net_.module_
        with self._inference():
            return self._collect(
                (X.shape[0], self.sequence_length * self._n_latent), np.float32,
                ((rows, module.latent_mean(x).flatten(1))
                 for rows, x in self._chunks(X, self.sequence_length)))

    def inverse_transform(self, X: ArrayLike) -> NDArray[np.float32]:
        """Decode latents: the decoder's mean ``E[x | t]`` for every frame.

        Parameters
        ----------
        X : array-like of shape (n_sequences, sequence_length * n_latent)
            Latents as returned by :meth:`transform`.

        Returns
        -------
        X_original : ndarray of shape (n_sequences, `n_features_in_`)
            The decoded sequences.
        """
        self._check_fitted()
        T = check_array(X, dtype=np.float32)
        n_t = self.sequence_length * self._n_latent
        if T.shape[1] != n_t:
            raise ValueError(
                f"X has {T.shape[1]} features, but inverse_transform expects {n_t} "
                f"(sequence_length={self.sequence_length} frames of {self._n_latent} "
                "latent values, the output of transform).")
        T = torch.from_numpy(np.array(T, copy=not T.flags.writeable))
        return self._decode(T.view(len(T), self.sequence_length, self._n_latent))

    def _decode(self, T):
        """Decoder means of latents ``(n, k, n_latent)`` as ``(n, k * n_features)``."""
        module = self.net_.module_
        n, k, _ = T.shape
        _check_output_size(n * k * self.n_features_per_frame_,
                           f"Decoding {n} rows of {k} frames", "Ask for fewer rows per call.")
        with self._inference():
            return self._collect(
                (n, k * self.n_features_per_frame_), np.float32,
                ((rows, module.mean(module.decode(t)).flatten(1))
                 for rows, t in self._chunks(T, k)))

    def predict_sequence(self, X_observed: ArrayLike, n_steps: int | None = None, *,
                         include_observed: bool = False) -> NDArray[np.float32]:
        """Forecast the frames after the observed ones.

        Each row holds the first ``k`` frames of a sequence (``1 <= k <
        sequence_length``), encoded together. A :class:`TopographicVAE` takes the ``u``
        of the unseen frames to roll one capsule unit per frame on from the last
        observed one, as the prior rewards (so no unseen frame enters the latents;
        ``k = 1`` is a frame encoded alone), rolls the last observed frame's capsules
        by ``1 .. n_steps`` and decodes each roll: the frames the model expects next,
        the decoder's mean ``E[x | t]``. A :class:`VAE` cannot roll: its forecast is
        the reconstruction of the last observed frame, repeated (so the two are
        compared on the same quantity).

        Parameters
        ----------
        X_observed : array-like of shape (n_samples, k * `n_features_per_frame_`)
            The observed frames of each sequence, in time order.
        n_steps : int, default=None
            Frames to forecast; ``None`` means ``sequence_length - k``, the rest of the
            sequence. A TVAE's rolls go on round the capsules beyond it (after
            ``capsule_dim`` steps they repeat).
        include_observed : bool, default=False
            Put the reconstructions of the ``k`` observed frames (decoded from their
            latents) before the forecast.

        Returns
        -------
        X_pred : ndarray of shape (n_samples, m * `n_features_per_frame_`)
            Frames in time order: the ``n_steps`` forecast frames ``k .. k + n_steps -
            1`` (``m = n_steps``), after the ``k`` reconstructions when
            ``include_observed`` (``m = k + n_steps``).

        See Also
        --------
        sktvae.metrics.forecast_error : The forecasts' error per horizon, beside
            baselines.

        Examples
        --------
        >>> import numpy as np
        >>> from sktvae import TopographicVAE
        >>> X = np.random.default_rng(0).random((10, 4 * 6))
        >>> tvae = TopographicVAE(2, 4, 4, hidden_layer_sizes=(8,), max_epochs=1,
        ...                       random_state=0).fit(X)
        >>> tvae.predict_sequence(X[:3, :2 * 6]).shape  # 2 frames seen, 2 forecast
        (3, 12)
        >>> tvae.predict_sequence(X[:3, :6], n_steps=5, include_observed=True).shape
        (3, 36)
        """
        self._check_fitted()
        if self.sequence_length < 2:
            raise ValueError("predict_sequence forecasts the frames of a sequence after "
                             "the observed ones; this estimator has sequence_length=1.")
        t = self._encode_observed(X_observed, max_frames=self.sequence_length - 1,
                                  name="X_observed")  # (n, k, n_latent)
        n, k, _ = t.shape
        n_steps = self.sequence_length - k if n_steps is None else n_steps
        if not _is_int(n_steps) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}.")
        frames = int(n_steps) + (k if include_observed else 0)
        values = n * frames * (self.n_features_per_frame_ + self._n_latent)
        if values > _MAX_OUTPUT_VALUES:
            raise ValueError(
                f"n_steps={n_steps} for {n} sequences would need "
                f"{values * 4 / 2 ** 30:.1f} GiB of output and rolls; at most "
                f"{_MAX_OUTPUT_VALUES * 4 // 2 ** 30} GiB a call. Ask for fewer steps (a "
                "TVAE's rolls repeat after capsule_dim steps), or fewer sequences per "
                "call.")
        latents = self._forecast_latents(t, int(n_steps))
        if include_observed:
            latents = np.concatenate([t, latents], 1)
        return self._decode(torch.from_numpy(np.ascontiguousarray(latents)))

    def _encode_frames(self, X_frames):
        """t of single frames, each encoded on its own: ``(n, F)`` -> ``(n, n_latent)``.

        No other frame enters the latent; for a TVAE the frame's unseen neighbours are
        assumed to follow the prior's roll (``Topography.frame_alone``).
        """
        return self._encode_observed(X_frames, max_frames=1)[:, 0]

    def _encode_observed(self, X_observed, max_frames=None, name="X"):
        """t of the first ``k`` frames of sequences of which only they were seen,
        encoded together: ``(n, k * F)`` -> ``(n, k, n_latent)``.

        For a TVAE the unseen frames' ``u`` is what the prior rewards
        (``Topography.observed``), so no unseen frame enters the latents.
        """
        self._check_fitted()
        X_observed = check_array(X_observed, dtype=np.float32)
        F, S = self.n_features_per_frame_, self.sequence_length
        max_frames = S if max_frames is None else max_frames
        k = X_observed.shape[1] // F
        if X_observed.shape[1] % F or not 1 <= k <= max_frames:
            what = ("one frame" if max_frames == 1 else
                    f"1 to {max_frames} frames of {F} (n_features_in_ / sequence_length)")
            raise ValueError(
                f"{name} has {X_observed.shape[1]} features, but rows must hold {what}"
                + (f" ({F} features, n_features_in_ / sequence_length)"
                   if max_frames == 1 else "") + ".")
        self._check_range(X_observed)
        module = self.net_.module_
        # torch cannot wrap read-only memory
        X_observed = torch.from_numpy(X_observed if X_observed.flags.writeable
                                      else X_observed.copy()).view(len(X_observed), k, F)
        with self._inference():
            return self._collect(
                (len(X_observed), k, self._n_latent), np.float32,
                ((rows, module.latent_mean(x, observed=True))
                 for rows, x in self._chunks(X_observed, S)))

    def score_samples(self, X: ArrayLike) -> NDArray[np.float64]:
        """Importance-sampled log-likelihood log p(x) of each whole sequence, in nats.

        The estimate is ``log (1/K) sum_k w_k`` with ``K = n_importance_samples`` joint
        samples of all latents of a sequence drawn from the posterior. The encoders run
        once per frame; the K samples are decoded in one batch. The noise comes from
        ``random_state``: an int seeds it; with ``None`` or a ``RandomState``, one seed
        is drawn when the fit starts and kept by the fitted model. Each sample's noise
        is shared by all rows, so a row's score does not depend on the other rows, the
        batching or the chunking, and repeated calls on one fitted model agree. The
        estimate is a lower bound in expectation that tightens as K grows.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_features)
            Sequences, as for :meth:`fit`.

        Returns
        -------
        log_likelihood : ndarray of shape (n_sequences,)
            Estimated log p(x) per sequence (divide by ``sequence_length`` for a
            per-frame figure).
        """
        X = self._validate_X(X, reset=False)
        module, device = self.net_.module_, self._module_device
        K, S, n = self.n_importance_samples, self.sequence_length, self._n_latent
        seed = getattr(self, "_score_seed", None)
        if seed is None or isinstance(self.random_state, Integral):
            seed = self._seed(self.random_state)
        # Chunks of rows and, for large K, of samples: the decoder sees at most about
        # _frames_per_chunk() frames at once, while the encoders still run once per row.
        # The noise of each chunk of samples is the same for every chunk of rows. One
        # chunk of samples (the usual K) is drawn once; more are drawn as each is
        # needed, so memory is bounded by the chunk, not by K.
        k_step = max(1, self._frames_per_chunk() // S)
        chunks = [range(k, min(K, k + k_step)) for k in range(0, K, k_step)]

        def noise(samples):
            return _importance_noise(seed, samples, S, n).to(device)

        drawn = noise(chunks[0]) if len(chunks) == 1 else None

        def log_px(x):
            x = x.float()  # float16 data converted chunk by chunk
            posterior = module.encode(x)
            log_w = torch.cat([
                module.log_importance_weights(x, *(drawn if drawn is not None
                                                   else noise(samples)), posterior)
                for samples in chunks])
            return torch.logsumexp(log_w.double(), dim=0) - math.log(K)

        with self._inference():
            return self._collect((len(X),), np.float64, (
                (rows, log_px(x)) for rows, x in self._chunks(X, min(K, k_step) * S)))

    def score(self, X: ArrayLike, y: None = None) -> float:
        """Mean importance-sampled log-likelihood of the sequences in ``X``.

        Parameters
        ----------
        X : array-like of shape (n_sequences, n_features)
            Sequences, as for :meth:`fit`.
        y : None
            Ignored.

        Returns
        -------
        score : float
            Mean of :meth:`score_samples`; higher is better, so model selection tools
            rank models by held-out likelihood.
        """
        return float(np.mean(self.score_samples(X)))

    def sample(self, n_samples: int = 1,
               random_state: int | np.random.RandomState | None = None
               ) -> NDArray[np.float32]:
        """Generate sequences from the prior: the decoder's mean for prior latents.

        Parameters
        ----------
        n_samples : int, default=1
            Number of sequences to generate.
        random_state : int, RandomState instance or None, default=None
            Seed of the prior draws; an int gives the same sequences every call.

        Returns
        -------
        X : ndarray of shape (n_samples, `n_features_in_`)
            Generated sequences (``E[x | t]`` per frame, e.g. pixel probabilities).
        """
        self._check_fitted()
        if not _is_int(n_samples) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        S = self.sequence_length
        _check_output_size(
            n_samples * S * (self.n_features_per_frame_ + 3 * self._n_latent),
            f"sample({n_samples})", "Draw fewer sequences per call, e.g. in a loop with "
            "a different random_state for each.")
        generator = torch.Generator().manual_seed(self._seed(random_state))
        shape = (n_samples, self.sequence_length, self._n_latent)
        z = torch.randn(shape, generator=generator)
        u = torch.randn(shape, generator=generator)
        module = self.net_.module_
        with self._inference():
            device = self._module_device
            t = module.latent(z.to(device), u.to(device)).cpu()
        return self._decode(t)

    # --- sklearn plumbing -------------------------------------------------------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live object keeps its own
        if "net_" in state:  # a digest of the weights, checked on unpickling
            state["_weights_digest"] = state_digest(self.net_.module_.state_dict())
        return state

    def __setstate__(self, state):
        digest = state.pop("_weights_digest", None)
        super().__setstate__(state)
        if digest is not None and not torch.equal(
                digest, state_digest(self.net_.module_.state_dict())):
            raise ValueError(
                f"The weights of this pickled {type(self).__name__} do not match the "
                "checksum saved with them: the file is damaged or was changed after it "
                "was written. Load an intact copy.")

    def get_feature_names_out(self, input_features: None = None) -> NDArray[np.object_]:
        """Names of the features of :meth:`transform`'s output.

        Parameters
        ----------
        input_features : None
            Ignored; present for API consistency.

        Returns
        -------
        feature_names_out : ndarray of str objects
            ``frame{l}_`` followed by the latent's name within the frame.
        """
        self._check_fitted()
        per_frame = self._latent_feature_names()
        return np.asarray([f"frame{l}_{name}" for l in range(self.sequence_length)
                           for name in per_frame], dtype=object)

    @property
    def _n_features_out(self):
        return self.sequence_length * self._n_latent

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
