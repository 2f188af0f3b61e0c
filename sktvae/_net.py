"""The skorch side: the loss, the net and a guard against diverging training."""

import contextlib
import copy
import math
import numbers
import os
import signal
import threading

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback, PrintLog, ProgressBar
from skorch.utils import Ansi
from skorch.dataset import get_len
from skorch.hf import AccelerateMixin

from ._fresh import FreshBatches, FreshFrames
from ._model import _MAX_LOG_VAR, module_tensors
from ._persistence import check_readable

_MOVE_SHARE = 0.25  # of a GPU's free memory: data up to it is moved there whole


def _fits(X, device):
    free, _ = torch.cuda.mem_get_info(device)
    return X.numel() * X.element_size() <= _MOVE_SHARE * free


def staged(X, device):
    """``X`` (a tensor) where slices of it reach ``device`` without waiting for it.

    For a GPU: moved there whole when it takes at most a quarter of the free memory,
    else pinned, so that ``X[rows].to(device, non_blocking=True)`` is an asynchronous
    copy (one from ordinary pageable memory waits for the GPU to finish its queue).
    Elsewhere ``X`` as it is.
    """
    device = torch.device(device)
    if device.type != "cuda" or X.device == device:
        return X
    if _fits(X, device):
        return X.to(device)
    return X.pin_memory() if X.device.type == "cpu" else X


class TensorBatches:
    """Batches drawn by index from the one tensor that holds the data: skorch's
    ``iterator_train`` and ``iterator_valid`` for it.

    skorch's default, a ``DataLoader`` over its ``Dataset``, fetches a batch row by
    row and stacks the rows again (per-row Python work that costs more than a small
    model's arithmetic); here a batch is one ``index_select`` on the tensor. On a GPU
    the data is moved there once, when it takes at most a quarter of the free memory
    (:func:`staged`), so that no batch is copied from the host; otherwise batches are
    gathered from pinned host memory and copied without blocking. float16 data stays
    float16 (the module converts each batch). Shuffling draws ``torch.randperm`` from
    the global generator, which the estimator seeds: the same seed, the same batches.

    Use :func:`tensor_batches`, which falls back to a ``DataLoader`` for anything else.
    """

    def __init__(self, X, batch_size, shuffle=False, device=None, rows=None):
        self.batch_size, self.shuffle = int(batch_size), shuffle
        self.rows = rows  # a subset of the rows (a validation split), or all
        self.n = len(X) if rows is None else len(rows)
        device = torch.device(device) if device is not None else X.device
        self.X, self.device = staged(X, device), device

    def __len__(self):
        return math.ceil(self.n / self.batch_size)

    def __iter__(self):
        order = (torch.randperm(self.n) if self.shuffle else torch.arange(self.n))
        if self.rows is not None:
            order = self.rows[order]
        order = order.to(self.X.device)
        for start in range(0, self.n, self.batch_size):
            batch = self.X.index_select(0, order[start:start + self.batch_size])
            # skorch unpacks (X, y); an unsupervised model has no y
            yield batch.to(self.device, non_blocking=True), None


def tensor_batches(dataset, batch_size, shuffle=False, device=None, redraw=False,
                   **loader_params):
    """skorch's iterator for sktvae's nets: :class:`TensorBatches` for data in one
    tensor (skorch's ``Dataset`` of it, or a ``Subset`` from a validation split),
    :class:`FreshBatches` for sequences drawn afresh (a new draw each pass where
    ``redraw``: the training iterator), a ``DataLoader`` otherwise or when
    ``loader_params`` (``num_workers=`` and the like, from ``iterator_train__*``) ask
    for one."""
    base, rows = dataset, None
    if isinstance(dataset, torch.utils.data.Subset):
        base, rows = dataset.dataset, torch.as_tensor(dataset.indices, dtype=torch.long)
    X = getattr(base, "X", None)
    if isinstance(X, FreshFrames):
        if loader_params:
            raise ValueError(
                f"iterator_*__{next(iter(loader_params))}: sequences drawn afresh each "
                "epoch are rendered batch by batch by sktvae, not through a DataLoader; "
                "drop the iterator options (or pass precomputed sequences).")
        return FreshBatches(X, batch_size, shuffle=shuffle, device=device, redraw=redraw,
                            rows=None if rows is None else rows.numpy())
    if loader_params or not isinstance(X, torch.Tensor) or getattr(base, "y", 0) is not None:
        return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=shuffle,
                                           **loader_params)
    return TensorBatches(X, batch_size, shuffle=shuffle, device=device, rows=rows)


class NegativeELBO(torch.nn.Module):
    """The training criterion: mean over sequences of ``KL - log p(x | t)``.

    The module's forward returns the two ELBO terms of each sequence (each summed over
    its frames), so the criterion only combines them. A subclass can reweight them.
    """

    def forward(self, log_likelihood, kl):
        return (kl - log_likelihood).mean()


_SAME_AS_MODULE_ = "<sktvae: the same module as module_>"


@contextlib.contextmanager
def _noting_sigint(net):
    """Hand SIGINT (Ctrl-C) to the handler that was there, and set
    ``net.interrupted_`` when that handler raises ``KeyboardInterrupt`` (Python's
    does; a program's own handler that returns keeps training going). Yields whether
    a ``KeyboardInterrupt`` must be taken for a Ctrl-C without being seen: only when
    SIGINT is handled outside Python.

    Python raises a Ctrl-C's ``KeyboardInterrupt`` in the main thread only, and only
    while SIGINT has Python's handler (or one set in Python, which is wrapped here):
    in another thread, or with SIGINT ignored or left to the system (a background
    job), a ``KeyboardInterrupt`` in ``fit`` comes from code, such as a callback.
    """
    if threading.current_thread() is not threading.main_thread():
        yield False
        return
    previous = signal.getsignal(signal.SIGINT)
    if not callable(previous):  # None: set outside Python; or SIG_IGN / SIG_DFL
        yield previous is None
        return

    def note(signum, frame):
        # The program's own handler decides: one that returns (it handles Ctrl-C
        # itself) lets training go on; one that raises stops it, as Python's does.
        try:
            previous(signum, frame)
        except KeyboardInterrupt:
            net.interrupted_ = True
            raise

    signal.signal(signal.SIGINT, note)
    try:
        yield False
    finally:
        signal.signal(signal.SIGINT, previous)


class TVAENet(NeuralNet):
    """skorch ``NeuralNet`` for unsupervised VAEs: ``y`` is ignored, the loss is the ELBO.

    What differs from skorch: ``get_loss`` (the ELBO); when the batches' losses reach
    the host (:meth:`run_single_epoch`: at the epoch's end); the per-batch mode walk,
    skipped when the mode is unchanged; and a Ctrl-C told apart from a callback's stop
    (:meth:`fit_loop`). The rest (callbacks, history, checkpoints, ``verbose``) is
    skorch's own.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        log_likelihood, kl = y_pred
        return self.criterion_(log_likelihood, kl)

    def get_default_callbacks(self):
        """skorch's, with a print log that writes plain text where the output is no
        terminal (a log file, a pipe: skorch's colour codes would litter it)."""
        return [(name, PlainPrintLog() if name == "print_log" else cb)
                for name, cb in super().get_default_callbacks()]

    def run_single_epoch(self, iterator, training, prefix, step_fn, **fit_params):
        """skorch's epoch, but each batch's loss stays on the device until the epoch ends.

        skorch records ``step["loss"].item()`` after every batch, which on a GPU waits
        for that batch's step to finish before the next one is queued: the host's
        per-batch work (Python, kernel launches) then never overlaps the device's. Here
        the batch history holds the loss as a 0-d tensor while the epoch runs, and the
        epoch's losses become floats together, in one copy, when it ends (or is
        interrupted), before any ``on_epoch_end`` callback reads them. Callbacks are
        notified as skorch notifies them; one that reads a batch's recorded loss in
        ``on_batch_end`` finds that 0-d tensor (``float()`` of it waits for it).

        This is skorch's loop with that one change: ``.item()`` sits inside it, so no
        narrower hook can remove it.
        """
        if iterator is None:
            return
        batches = self.history[-1]["batches"]
        first = len(batches)
        batch_count = 0
        # A progress bar shows each batch's loss: then it is read at once (a wait).
        shown = any(isinstance(cb, ProgressBar) for _, cb in self.callbacks_)
        try:
            for batch in iterator:
                self.notify("on_batch_begin", batch=batch, training=training)
                step = step_fn(batch, **fit_params)
                loss = step["loss"].detach()
                self.history.record_batch(prefix + "_loss", loss.item() if shown else loss)
                self.history.record_batch(prefix + "_batch_size", get_len(
                    batch[0] if isinstance(batch, (tuple, list)) else batch))
                self.notify("on_batch_end", batch=batch, training=training, **step)
                batch_count += 1
        finally:
            _losses_to_floats(batches[first:], prefix + "_loss")
        self.history.record(prefix + "_batch_count", batch_count)

    def _set_training(self, training=True):
        """skorch sets the mode of every submodule before every batch; that walk is a
        measurable share of a small model's step, so it is skipped when the module is
        in that mode already."""
        if self.module_.training != training:
            super()._set_training(training)

    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        """skorch's loop, noting a Ctrl-C: skorch's ``partial_fit`` swallows the
        ``KeyboardInterrupt`` (after ``on_train_end``), and the estimator raises it again
        once its own state is in step with the net.

        skorch's callbacks stop training the same way (``EarlyStopping`` raises
        ``KeyboardInterrupt``), and that stop must stay a normal end of ``fit``; so a
        Ctrl-C is told apart by the signal itself, noted by a SIGINT handler that then
        runs the one it replaces (:func:`_noting_sigint`). Only where SIGINT is handled
        outside Python, so that nothing can be noted, does every ``KeyboardInterrupt``
        count as a Ctrl-C.
        """
        self.interrupted_ = False
        with _noting_sigint(self) as unknowable:
            try:
                return super().fit_loop(X, y, epochs=epochs, **fit_params)
            except KeyboardInterrupt:
                self.interrupted_ = self.interrupted_ or unknowable
                raise


    def __getstate__(self):
        # The estimator hands skorch a module instance, so ``module`` and ``module_``
        # are one object; skorch pickles ``module_`` apart from the rest, which would
        # store the weights twice and unpickle them as two modules.
        state = super().__getstate__()
        if state.get("module") is self.__dict__.get("module_"):
            state["module"] = _SAME_AS_MODULE_
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if isinstance(self.module, str) and self.module == _SAME_AS_MODULE_:
            self.module = self.module_

    def load_params(self, f_params=None, f_optimizer=None, f_criterion=None,
                    f_history=None, checkpoint=None, use_safetensors=False, **kwargs):
        """skorch's ``load_params``, with an error naming the file that cannot be read.

        A file that is truncated, or not a torch file at all, an optimizer state saved
        from another optimizer, or a history that is no skorch history, is refused with
        a ``ValueError`` naming it (also through skorch's ``Checkpoint`` and
        ``LoadInitState``). A parameters file whose weights no longer match the
        checksum saved with them, or that was saved from a model built otherwise, is
        refused by the module.
        """
        if not use_safetensors:
            self._check_files(dict(f_params=f_params, f_optimizer=f_optimizer,
                                   f_criterion=f_criterion, f_history=f_history, **kwargs))
        history = getattr(checkpoint, "f_history_", None)
        if f_history is None and isinstance(history, (str, os.PathLike)):
            check_readable("f_history", history)
        try:
            return super().load_params(
                f_params=f_params, f_optimizer=f_optimizer, f_criterion=f_criterion,
                f_history=f_history, checkpoint=checkpoint,
                use_safetensors=use_safetensors, **kwargs)
        except (RuntimeError, OSError, EOFError, KeyError) as error:
            if checkpoint is None or isinstance(error, FileNotFoundError):
                raise
            # the files a skorch Checkpoint names are known only once its history is
            # loaded, inside skorch's load_params
            self._check_files(checkpoint.get_formatted_files(self))
            raise

    def _check_files(self, files):
        """``check_readable`` each of ``files`` (name to path) that is a path."""
        for name, f in files.items():
            if isinstance(f, (str, os.PathLike)):
                check_readable(name, f, getattr(self, "optimizer_", None))


class PlainPrintLog(PrintLog):
    """skorch's ``PrintLog`` (``verbose=1``'s table of losses per epoch), which marks
    an epoch's best values in colour on a terminal and with ``*`` elsewhere (a log
    file, a pipe, a notebook cell's captured output)."""

    def format_row(self, row, key, color):
        text = super().format_row(row, key, color)
        if isinstance(text, str) and color in text and not _colour_terminal(self.sink):
            text = text.replace(color, "").replace(Ansi.ENDC.value, "") + "*"
        return text


def _colour_terminal(sink):
    """Whether ``sink`` writes to a terminal that shows colour: ``print`` to a
    standard output that is one."""
    import sys

    return sink is print and hasattr(sys.stdout, "isatty") and sys.stdout.isatty()


def _losses_to_floats(batches, key):
    """Replace the 0-d loss tensors under ``key`` in ``batches`` (history rows) by
    floats, copied from their device together."""
    rows = [row for row in batches if isinstance(row.get(key), torch.Tensor)]
    if rows:
        values = torch.stack([row[key] for row in rows]).float().tolist()
        for row, value in zip(rows, values):
            row[key] = value


class AcceleratedTVAENet(AccelerateMixin, TVAENet):
    """``TVAENet`` trained through an ``accelerate.Accelerator`` (skorch's mixin;
    accelerate itself is imported only by the user who builds the accelerator).

    Its epochs are skorch's own: accelerate's loaders and float16 scaler are the
    ones skorch's loop was written for, and its history may be a distributed one."""

    run_single_epoch = NeuralNet.run_single_epoch


def discard(*args, **kwargs):
    """A print-log sink that prints nothing.

    skorch's ``PrintLog`` checks ``verbose`` only when its sink is ``print``; the
    accelerate mixin swaps in ``accelerator.print``, so ``verbose=0`` needs this sink.
    """


# A training loss above this many nats a sequence is a blow-up: an encoder's
# log-variance at its clamp (+60) alone adds 0.5 e^60 = 5.7e25 to a sequence's KL.
_LOSS_BOUND = 1e20


class StopOnNonFiniteLoss(Callback):
    """Stop a fit that blows up with a clear error, and restore the last good state.

    A fit has blown up when a loss or a gradient is not finite, when a parameter is
    not finite after a step, or when a loss passes 1e20 nats a sequence: what an
    encoder's log-variance at the bound the module clamps it at (+60, a standard
    deviation of 1e13, far from any trained posterior) adds to the KL alone, 5.7e25;
    a clamp passes no gradient, so a model pushed there would otherwise turn into a
    finite, dead one. Gradients are checked after each backward pass by the op
    ``torch.amp.GradScaler`` runs, which sets a flag on the device; a fused optimizer
    (sktvae's default Adam, AdamW and SGD) is handed that flag and skips its update
    from then on.

    The flag, the parameters and the losses recorded since (they stay on the device
    until read) are read at check points: every ``check_every`` batches and when an
    epoch ends (any other optimizer has the flag read before each step as well), so
    the check costs a step nothing beyond the gradients' test. At each clean check the state is saved, and the state saved
    at the check before becomes the last good one (a state counts as good once the
    batches after it ran clean). When the fit has blown up, the module's parameters
    and buffers and the optimizer's state are restored to that last good state (at
    the start of the call, the state it began with) and a ``FloatingPointError``
    says which state that is.
    """

    def __init__(self, check_every=256):
        self.check_every = check_every

    def on_train_begin(self, net, **kwargs):
        self.scanned_ = (len(net.history), len(net.history[-1]["batches"])
                         if len(net.history) else 0)
        if not _is_count(self.check_every):
            raise ValueError("callbacks__stop_on_non_finite__check_every must be a "
                             f"positive int; got {self.check_every!r}.")
        self.found_inf_ = None  # on the device: 1.0 once something was not finite
        self.unchecked_ = 0  # batches since the flag was last read
        self.good_ = (_snapshot(net), "as it was when this call began")
        self.pending_ = None

    def on_grad_computed(self, net, named_parameters, X=None, y=None, training=False,
                         **kwargs):
        if _scales_gradients(net):
            return  # float16's scaler skips such steps itself: the loss is checked
        optimizer = getattr(net, "optimizer_", None)
        # The optimizer's own list: walking ``named_parameters`` (every submodule, each
        # step) took 7% of a small model's step.
        params = ([p for group in optimizer.param_groups for p in group["params"]]
                  if optimizer is not None else [p for _, p in named_parameters])
        grads = [p.grad.detach() for p in params if p.grad is not None]
        if not grads:
            return
        found = getattr(self, "found_inf_", None)
        if found is None or found.device != grads[0].device:
            found = self.found_inf_ = torch.zeros((), device=grads[0].device)
        _note_non_finite(grads, found)
        if getattr(optimizer, "_step_supports_amp_scaling", False):
            optimizer.found_inf = found  # read by its fused step
        elif found.item():  # before this step: nothing skips it otherwise
            self._fail(net, "A gradient became non-finite")

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if loss is None or not training or getattr(self, "good_", None) is None:
            return
        self.last_batch_ = batch[0] if isinstance(batch, (tuple, list)) else batch
        if _scales_gradients(net):
            value = float(loss.detach())
            if not math.isfinite(value):
                self._fail(net, f"The loss became {value}")
        self.unchecked_ += 1
        if self.unchecked_ >= self.check_every:
            self._check(net)

    def on_epoch_end(self, net, **kwargs):
        self._check(net)

    def on_train_end(self, net, **kwargs):
        self._release(net)
        self._check(net)
        self.good_ = self.pending_ = self.last_batch_ = None  # no copies kept after fit

    @staticmethod
    def _release(net):
        """Take the flag back from the optimizer: a step outside ``fit`` is not
        skipped, and a pickled optimizer holds no tensor of it."""
        optimizer = getattr(net, "optimizer_", None)
        if hasattr(optimizer, "found_inf"):
            del optimizer.found_inf

    def _check(self, net):
        """A check point: fail if anything was not finite, else save the state."""
        if getattr(self, "good_", None) is None:
            return  # outside a fit
        self.unchecked_ = 0
        found = getattr(self, "found_inf_", None)
        params = [p.detach() for p in net.module_.parameters()]
        if params:  # one read of the device: every test folded into one flag
            flag = torch.zeros((), device=params[0].device)
            _note_non_finite(params, flag)
            tests = {"A parameter became non-finite": flag.clone(),
                     "A gradient became non-finite": found,
                     "An encoder's log-variance reached its clamp (+-60)": self._at_bound(net),
                     "A training loss passed 1e20 nats or was not finite":
                         self._loss_past_bound(net)}
            for other in tests.values():
                if other is not None:
                    flag = torch.maximum(flag, other.to(flag.device, flag.dtype))
            if flag.item():  # which test fired: read only on failure
                self._fail(net, "; ".join(name for name, t in tests.items()
                                          if t is not None and bool(t)))
        if self.pending_ is not None:
            self.good_ = self.pending_
        batches = len(net.history[-1]["batches"]) if len(net.history) else 0
        self.pending_ = (_snapshot(net), f"after batch {batches} of epoch "
                                         f"{len(net.history)}")

    def _loss_past_bound(self, net):
        """Whether a training loss recorded since the last check passed the bound or
        is not finite, as a tensor (the losses stay on the device until their epoch
        ends; at its end they are floats already)."""
        if not len(net.history):
            return None
        epoch, seen = getattr(self, "scanned_", (0, 0))
        if epoch != len(net.history):
            seen = 0
        rows = net.history[-1]["batches"][seen:]
        self.scanned_ = (len(net.history), seen + len(rows))
        values = [row["train_loss"] for row in rows if "train_loss" in row]
        tensors = [v for v in values if isinstance(v, torch.Tensor)]
        past = any(not abs(v) <= _LOSS_BOUND for v in values
                   if not isinstance(v, torch.Tensor))  # NaN too
        if tensors:
            largest = torch.stack([t.float() for t in tensors]).abs().max()
            return (~(largest <= _LOSS_BOUND)) | past
        return torch.tensor(past)

    def _at_bound(self, net):
        """Whether an encoder's log-variance is at its clamp on the last training
        batch (a clamp passes no gradient: a model pushed there stays there), as a
        tensor; one pass of the encoders a check."""
        batch, encode = getattr(self, "last_batch_", None), getattr(net.module_, "encode",
                                                                    None)
        if batch is None or encode is None:
            return None
        self.last_batch_ = None
        with torch.no_grad():
            logvars = [v for v in encode(batch.float())[1::2] if v is not None]
        return torch.stack([v.abs().amax() for v in logvars]).amax() >= _MAX_LOG_VAR

    def _fail(self, net, what):
        restored = "It was stopped before that step."
        if getattr(self, "good_", None) is not None:
            state, when = self.good_
            _restore(net, state)
            restored = ("The model (its parameters and the optimizer's state) was "
                        f"restored to the last state checked good, {when}.")
        self.found_inf_ = self.last_batch_ = None
        self.good_ = self.pending_ = None
        self._release(net)  # skorch runs no on_train_end after this error
        raise FloatingPointError(
            f"{what} during epoch {len(net.history)}: training diverged. {restored} Use "
            f"a lower learning rate (lr={net.lr} now) or check the input scaling "
            "(sklearn.preprocessing.StandardScaler for likelihood='gaussian').")


def _is_count(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, bool) and value >= 1


def _snapshot(net):
    """Copies of the module's parameters and buffers and of the optimizer's state."""
    module = {k: v.detach().clone() for k, v in module_tensors(net.module_).items()}
    optimizer = getattr(net, "optimizer_", None)
    return module, (copy.deepcopy(optimizer.state_dict()) if optimizer is not None else None)


def _restore(net, state):
    module, optimizer = state
    own = module_tensors(net.module_)
    with torch.no_grad():
        for key, value in module.items():
            if key in own:
                own[key].copy_(value)
    if optimizer is not None:
        net.optimizer_.load_state_dict(optimizer)


# Devices with a kernel of torch's GradScaler check (CPU since torch 2.3)
_AMP_CHECK_DEVICES = ("cpu", "cuda")


def _note_non_finite(tensors, found):
    """Set ``found``, a 0-d float tensor, to 1 if any of ``tensors`` holds an inf or a
    NaN; never back to 0. No value is read on the host.

    ``torch.amp.GradScaler``'s op (unscaling by 1 changes nothing): on the paper's
    model it took 5% of the time of the largest gradient's norm, which the check
    computed before. Elsewhere, a test of each tensor.
    """
    groups, flags = {}, {found.device: found}
    for tensor in tensors:  # grouped as GradScaler groups them
        groups.setdefault((tensor.device, tensor.dtype), []).append(tensor)
    for (device, _), group in groups.items():
        flag = flags.setdefault(device, torch.zeros((), device=device))
        if device.type in _AMP_CHECK_DEVICES:
            torch._amp_foreach_non_finite_check_and_unscale_(
                group, flag, torch.ones((), device=device))
        else:
            finite = torch.stack([t.isfinite().all() for t in group]).all()
            flag.copy_(torch.maximum(flag, finite.logical_not().float()))
    for flag in flags.values():
        if flag is not found:
            found.copy_(torch.maximum(found, flag.to(found.device)))


def _scales_gradients(net):
    """Whether an accelerator's float16 gradient scaler runs the steps: it meets
    infinite gradients on purpose, skips those steps and lowers its scale."""
    return getattr(getattr(net, "accelerator", None), "scaler", None) is not None
