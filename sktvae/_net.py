"""The skorch side: the loss, the net and a guard against diverging training."""

import math

import torch
from skorch import NeuralNet
from skorch.callbacks import Callback
from skorch.hf import AccelerateMixin


class NegativeELBO(torch.nn.Module):
    """The training criterion: mean over sequences of ``KL - log p(x | t)``.

    The module's forward returns the two ELBO terms of each sequence (each summed over
    its frames), so the criterion only combines them. A subclass can reweight them.
    """

    def forward(self, log_likelihood, kl):
        return (kl - log_likelihood).mean()


class TVAENet(NeuralNet):
    """skorch ``NeuralNet`` for unsupervised VAEs: ``y`` is ignored, the loss is the ELBO.

    Only ``get_loss`` differs from skorch: everything else (callbacks, history,
    checkpoints, ``verbose``) is skorch's own.
    """

    def get_loss(self, y_pred, y_true, X=None, training=False):
        log_likelihood, kl = y_pred
        return self.criterion_(log_likelihood, kl)


class AcceleratedTVAENet(AccelerateMixin, TVAENet):
    """``TVAENet`` trained through an ``accelerate.Accelerator`` (skorch's mixin;
    accelerate itself is imported only by the user who builds the accelerator)."""


def discard(*args, **kwargs):
    """A print-log sink that prints nothing.

    skorch's ``PrintLog`` checks ``verbose`` only when its sink is ``print``; the
    accelerate mixin swaps in ``accelerator.print``, so ``verbose=0`` needs this sink.
    """


class StopOnNonFiniteLoss(Callback):
    """Stop training with a clear error as soon as a batch loss is NaN or infinite."""

    def on_batch_end(self, net, batch=None, training=False, loss=None, **kwargs):
        if loss is None:
            return
        value = float(loss.detach())
        if not math.isfinite(value):
            epoch = len(net.history)
            raise FloatingPointError(
                f"The loss became {value} during epoch {epoch}; training diverged. "
                f"Use a lower learning rate (lr={net.lr} now) or check the input "
                "scaling.")
