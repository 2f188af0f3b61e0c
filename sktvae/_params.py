"""Parameters: their checks, skorch's double-underscore routing, and the record of what
the fitted model was built with.

``fit``, ``partial_fit`` and a warm-start ``fit`` all check every parameter here
(:meth:`ParamsMixin._check_params`); the fitted model keeps the architecture it was
built with, so that a method called after ``set_params`` changed it is refused rather
than run on a model that no longer matches its parameters.
"""

from __future__ import annotations

import difflib
from numbers import Integral

import numpy as np
import torch
from sklearn.utils._param_validation import Interval, InvalidParameterError
from sklearn.utils.validation import check_is_fitted
from skorch.callbacks import Callback

from ._runtime import check_device
from ._validation import comparable, is_int

# skorch's double-underscore parameters that reach the net (``**kwargs``)
ROUTED_PREFIXES = ("optimizer", "iterator_train", "iterator_valid", "callbacks",
                   "encoder", "decoder")
NETWORK_PREFIXES = ("encoder", "decoder")  # for the module, not the skorch net


class ParamsMixin:
    """``get_params``/``set_params`` with routed parameters, and their checks."""

    # Parameters that define the model: changed after fit, they would describe a
    # model that is not the one fitted, so they are refused until it is rebuilt.
    _architecture_params = ("sequence_length", "hidden_layer_sizes", "likelihood",
                            "frame_shape", "encoder", "decoder")

    # --- routing --------------------------------------------------------------------
    def _routed_params(self):
        """The keyword arguments given beyond the named parameters (``**kwargs``, or
        ``set_params``)."""
        return dict(vars(self).get("_kwargs", {}))

    def _net_params(self):
        """The double-underscore parameters that go to the skorch net."""
        return {k: v for k, v in self._routed_params().items()
                if k.split("__", 1)[0] not in NETWORK_PREFIXES}

    def _network_params(self, role):
        """``encoder__*`` or ``decoder__*`` without the prefix."""
        return {k.split("__", 1)[1]: v for k, v in self._routed_params().items()
                if k.startswith(role + "__")}

    def _check_routed(self, params):
        for key in params:
            if "__" in key and key.split("__", 1)[0] in ROUTED_PREFIXES:
                continue
            close = difflib.get_close_matches(key, self._get_param_names(), n=3)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise ValueError(
                f"{key!r} is not a parameter of {type(self).__name__}.{hint} Double-"
                "underscore parameters go to the skorch net or the networks and start "
                f"with {', '.join(p + '__' for p in ROUTED_PREFIXES)} (e.g. "
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

    # --- checks ---------------------------------------------------------------------
    def _check_params(self):
        """Every parameter, as ``fit`` needs it: scikit-learn's constraints, then the
        checks across parameters (subclasses extend them)."""
        self._validate_params()
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
        self._check_networks()
        self._check_optimizer()
        self._check_callbacks()
        if self.accelerator is None:  # accelerate places the model itself
            check_device(self.device)
        elif self.precision != "float32":
            raise ValueError(
                f"precision={self.precision!r} with an accelerator: set the accelerator's "
                "own mixed_precision instead (Accelerator(mixed_precision='bf16')).")

    def _check_networks(self):
        for role in NETWORK_PREFIXES:
            kind = getattr(self, role)
            if isinstance(kind, type) and not issubclass(kind, torch.nn.Module):
                raise TypeError(f"{role} must be 'mlp', 'conv' or a torch.nn.Module "
                                f"subclass; got {kind!r}.")
            channels = self._network_params(role).get("channels")
            if channels is not None and (
                    isinstance(channels, (str, bytes)) or np.ndim(channels) != 1
                    or not len(channels)
                    or not all(is_int(c) and c >= 1 for c in np.asarray(channels, object))):
                raise ValueError(f"{role}__channels must be a non-empty sequence of "
                                 f"positive ints, e.g. (32, 64); got {channels!r}.")
        if self.decoder == "mirror" and self._network_params("decoder"):
            key = next(iter(self._network_params("decoder")))
            raise ValueError(
                f"decoder__{key} with decoder='mirror': the mirror decoder takes the "
                "encoder's parameters (encoder__*). Set decoder='conv' (or a class) to "
                "give the decoder its own.")
        sizes = np.asarray(self.hidden_layer_sizes)
        if sizes.ndim != 1 or sizes.size == 0 or not np.issubdtype(sizes.dtype, np.integer) \
                or (sizes < 1).any():
            raise ValueError(
                "hidden_layer_sizes must be a non-empty sequence of positive integers, "
                f"e.g. (512, 512); got {self.hidden_layer_sizes!r}.")

    def _check_optimizer(self):
        if isinstance(self.optimizer, type) \
                and not issubclass(self.optimizer, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be 'adam', 'adamw', 'sgd' or a torch.optim.Optimizer "
                f"subclass; got {self.optimizer!r}.")
        routed = self._routed_params()
        if "optimizer__lr" in routed and comparable(routed["optimizer__lr"]) != self.lr:
            raise ValueError(
                f"optimizer__lr={routed['optimizer__lr']!r} and lr={self.lr!r} are one "
                f"setting: set lr={routed['optimizer__lr']!r} alone.")
        if routed.get("optimizer__foreach") and routed.get("optimizer__fused"):
            raise ValueError("optimizer__foreach=True and optimizer__fused=True exclude "
                             "each other: set one.")

    def _check_callbacks(self):
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

    @staticmethod
    def _check_callback_names(net):
        """Each ``callbacks__<name>__*`` names a callback of ``net`` (not initialised):
        skorch would ignore a misspelt name."""
        names = [name for name, _ in net._uniquely_named_callbacks()]
        for key in net.get_params(deep=False):
            if not key.startswith("callbacks__") or key.count("__") < 2:
                continue
            name = key.split("__")[1]
            if name not in names:
                close = difflib.get_close_matches(name, names, n=1)
                raise ValueError(
                    f"{key}: there is no callback named {name!r}"
                    + (f" (did you mean {close[0]!r}?)" if close else "")
                    + f"; the callbacks are {', '.join(names)}.")

    # --- what was built -------------------------------------------------------------
    def _architecture(self):
        """The parameters that define the model, with ``encoder__*`` / ``decoder__*``."""
        architecture = {name: comparable(getattr(self, name))
                        for name in self._architecture_params}
        for role in NETWORK_PREFIXES:
            for key, value in self._network_params(role).items():
                architecture[f"{role}__{key}"] = comparable(value)
        return architecture

    def _check_fitted(self):
        """``check_is_fitted``, and that the parameters still describe the fitted model."""
        check_is_fitted(self, "net_")
        built, now = self._built_with, self._architecture()
        for name in sorted(set(now) | set(built)):
            if now.get(name, "not set") != built.get(name, "not set"):
                raise ValueError(
                    f"{name}={now.get(name, 'not set')!r}, but the fitted model was "
                    f"built with {name}={built.get(name, 'not set')!r}; set_params does "
                    f"not rebuild a fitted model. Set {name} back, or fit with "
                    "warm_start=False to build a new model with it.")
