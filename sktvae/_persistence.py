"""Pickling a fitted estimator (``joblib.dump`` / ``pickle``) with a checksum.

The digest covers every tensor of the module that affects an output: parameters and
all buffers, those torch leaves out of a state dict (``persistent=False``, such as the
decoder's input offset and the topography's matrices) included. A file changed or
damaged after it was written is refused when it is loaded, not used.
"""

from __future__ import annotations

import json
import os
import pickle
import zipfile
import zlib

import torch

from ._model import module_tensors, state_digest

# What tells optimizers apart in a saved state's parameter groups
_OPTIMIZER_KEYS = {"betas", "momentum", "dampening", "nesterov", "amsgrad", "alpha",
                   "centered", "rho", "lr_decay", "initial_accumulator_value"}


def _plain(value):
    """Whether ``repr(value)`` is the same in every process: numbers, strings and
    containers of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (tuple, list)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def _digest(module, state):
    """The module's tensors and layout (each submodule's attribute names) and the
    estimator's plain attributes in ``state`` (its parameters, what the model was
    built with, the fitted sizes), as a tensor of 16 bytes."""
    tensors = dict(module_tensors(module))
    plain = repr(sorted((k, v) for k, v in state.items() if _plain(v)))
    plain += repr([(type(m).__name__, sorted(vars(m))) for m in module.modules()])
    tensors["__plain__"] = torch.frombuffer(bytearray(plain.encode()), dtype=torch.uint8)
    return state_digest(tensors)


class PersistenceMixin:
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: the live object keeps its own
        if "net_" in state:
            state["_weights_digest"] = _digest(self.net_.module_, state)
        return state

    def __setstate__(self, state):
        digest = state.pop("_weights_digest", None)
        saved = dict(state)  # as written: the parent may take entries out of it
        super().__setstate__(state)
        if "net_" in saved and (digest is None or not digest.equal(
                _digest(self.net_.module_, saved))):
            raise ValueError(
                f"The tensors of this pickled {type(self).__name__} do not match the "
                "checksum saved with them: the file is damaged or was changed after it "
                "was written. Load an intact copy.")


def load(path):
    """Load an estimator saved with ``joblib.dump`` (or pickle), with an error that
    names the file when it is truncated, damaged or changed.

    Parameters
    ----------
    path : str or path-like
        The file.

    Returns
    -------
    estimator : object
        What was saved.

    Examples
    --------
    >>> import joblib, os, tempfile
    >>> import numpy as np
    >>> from sktvae import VAE, load
    >>> vae = VAE(2, hidden_layer_sizes=(8,), max_epochs=1).fit(np.zeros((4, 6)))
    >>> path = os.path.join(tempfile.mkdtemp(), "vae.joblib")
    >>> _ = joblib.dump(vae, path)
    >>> load(path).n_components
    2
    """
    import joblib

    if not os.path.exists(path):
        raise FileNotFoundError(f"{os.fspath(path)!r}: no such file.")
    try:
        return joblib.load(path)
    except (pickle.UnpicklingError, EOFError, zlib.error, ValueError, RuntimeError,
            KeyError, IndexError, TypeError, AttributeError, OSError, ImportError,
            UnicodeDecodeError, MemoryError, OverflowError, AssertionError) as error:
        text = str(error).splitlines()[0][:200] if str(error) else "no more data"
        raise ValueError(
            f"Cannot load {os.fspath(path)!r}: it is truncated, damaged or was changed "
            f"after it was written ({type(error).__name__}: {text}). Load an intact "
            "copy.") from error


def check_readable(name, path, optimizer=None):
    """Raise a ``ValueError`` naming ``path`` if it is not a whole torch file (for
    ``f_history``: a skorch history in JSON; for ``f_optimizer``: a state of
    ``optimizer``'s kind); a missing file raises ``FileNotFoundError`` as it would."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"{name}={os.fspath(path)!r}: no such file.")
    try:
        if name == "f_history":
            with open(path, encoding="utf-8") as f:
                _check_history(name, path, json.load(f))
            return
        # the archive opened and its entries read lazily (mmap); torch's older,
        # non-zip format read whole
        state = torch.load(path, map_location="cpu", weights_only=True,
                           mmap=zipfile.is_zipfile(path))
    except pickle.UnpicklingError as error:
        if "weights only" not in str(error).lower():
            raise ValueError(_unreadable(name, path, error)) from error
        # Not torch's advice to retry with weights_only=False: that would run the code.
        found = [line.strip() for line in str(error).splitlines() if "GLOBAL" in line]
        raise ValueError(
            f"Refused {name}={os.fspath(path)!r}: it holds Python objects other than "
            "tensors, which could run code when loaded. Load only files you saved "
            f"yourself{f' ({found[0][:200]})' if found else ''}.") from error
    except (RuntimeError, OSError, EOFError, zipfile.BadZipFile, UnicodeDecodeError,
            json.JSONDecodeError) as error:
        raise ValueError(_unreadable(name, path, error)) from error
    if name == "f_optimizer" and optimizer is not None:
        _check_optimizer_state(name, path, state, optimizer)


def _check_history(name, path, history):
    if not isinstance(history, list) or not all(
            isinstance(row, dict) and isinstance(row.get("epoch"), int)
            and isinstance(row.get("batches", []), list) for row in history):
        raise ValueError(f"{name}={os.fspath(path)!r} is no skorch history: that is a "
                         "JSON list of one object per epoch, each with its 'epoch' "
                         "number (as net.save_params(f_history=...) writes it).")


def _check_optimizer_state(name, path, state, optimizer):
    groups = state.get("param_groups") if isinstance(state, dict) else None
    if not groups or not isinstance(groups[0], dict):
        raise ValueError(f"{name}={os.fspath(path)!r} holds no optimizer state.")
    saved = set(groups[0]) & _OPTIMIZER_KEYS
    own = set(optimizer.param_groups[0]) & _OPTIMIZER_KEYS
    if saved != own:
        raise ValueError(
            f"{name}={os.fspath(path)!r} was saved from another optimizer (its settings "
            f"{sorted(saved)}) than this net's {type(optimizer).__name__} "
            f"({sorted(own)}): set the estimator's optimizer to the one it was saved "
            "from, or load the parameters alone.")


def _unreadable(name, path, error):
    what = "a JSON history" if name == "f_history" else "a file written by torch.save"
    return (f"Cannot read {name}={os.fspath(path)!r}: it is truncated, damaged or not "
            f"{what} ({type(error).__name__}: {str(error).splitlines()[0][:200]}).")
