"""Building what trains: the frame shape, the networks, the model-size guard, the
skorch net with its optimizer, and the training precision.

The estimator builds the module once (``fit``, or the first ``partial_fit``) and the
skorch net around it afresh before every training call (:func:`make_net`), from the
parameters as they are then: so ``lr``, ``optimizer``, ``batch_size``, ``train_split``,
``callbacks``, ``verbose``, ``device``, ``precision`` and the routed ``optimizer__*`` /
``iterator_*`` / ``callbacks__*`` parameters set since the last call all take effect,
and the optimizer's state goes on when its class is the same.
"""

from __future__ import annotations

import math

import torch
from sklearn.base import clone

from ._model import ConvDecoder, ConvEncoder, layer_sizes, mlp
from ._net import (AcceleratedTVAENet, NegativeELBO, StopOnNonFiniteLoss, TVAENet,
                   discard, tensor_batches)
from ._runtime import bfloat16_is_native
from ._validation import is_int

OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
              "sgd": torch.optim.SGD}
# Values of one latent tensor of a training batch (batch_size * S * n_latent); a step
# holds about ten such tensors with their gradients.
_MAX_BATCH_LATENT_VALUES = 2 ** 28
_MAX_PARAMETERS = 2 ** 30  # 4 GiB of float32 weights, before gradients and Adam
_MAX_LATENT = 2 ** 20  # latent values per frame (the paper's models: 324)


def resolve_frame_shape(est, n_features):
    """``frame_shape_``: the parameter, or the shape the input said it has."""
    seen = getattr(est, "_seen_frame_shape", None)
    shape = est.frame_shape
    if shape is not None:
        if len(shape) != 3 or not all(is_int(v) and (v >= 1 or v == -1)
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
            f"{n_features * est.sequence_length_} / {est.sequence_length_}).")
    if shape is None and "conv" in (est.encoder, est.decoder):
        raise ValueError(
            "encoder='conv' (or decoder='conv') needs frame_shape=(channels, height, "
            "width), e.g. frame_shape=(1, 28, 28) for MNIST frames.")
    return shape


def networks(est):
    """The encoder and decoder factories, ``(n_in, n_out) -> nn.Module``. The mirror
    decoder is the encoder's kind with the encoder's parameters."""
    encoder, decoder = est.encoder, est.decoder
    hidden = tuple(int(h) for h in est.hidden_layer_sizes)
    roles = [("encoder", encoder, hidden, est._network_params("encoder"))]
    if decoder == "mirror":
        mirrored = encoder if isinstance(encoder, str) else "mlp"
        params = est._network_params("encoder") if mirrored == "conv" else {}
        roles.append(("decoder", mirrored, hidden[::-1], params))
    else:
        roles.append(("decoder", decoder, hidden[::-1], est._network_params("decoder")))
    factories = []
    for role, kind, sizes, params in roles:
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
        factories.append(lambda n_in, n_out, cls=cls, params=params, role=role:
                         _built(cls, role, n_in, n_out, est.frame_shape_, params))
    return tuple(factories)


def _built(cls, role, n_in, n_out, frame_shape, params):
    """``cls(n_in, n_out, frame_shape, **params)``, or an error that states the
    contract a network class must follow."""
    try:
        return cls(n_in, n_out, frame_shape, **params)
    except TypeError as error:
        routed = ", ".join(f"{role}__{k}" for k in params) or f"no {role}__ parameters"
        raise TypeError(
            f"{role}={cls.__name__} could not be built ({error}). A {role} class is "
            f"called as {cls.__name__}(n_in, n_out, frame_shape, **params) with n_in="
            f"{n_in}, n_out={n_out}, frame_shape={frame_shape} and the {role}__* "
            f"parameters ({routed}).") from error


def check_model_size(est, n_features, n_rows):
    """Refuse models too large to allocate, before torch tries (and fails late)."""
    if est._n_latent > _MAX_LATENT:
        raise ValueError(
            f"A frame would have {est._n_latent:.3g} latent values, more than "
            f"{_MAX_LATENT:.3g}: use fewer capsules or a smaller capsule_dim.")
    rows = max(1, min(est.batch_size, n_rows))  # a batch is at most the data
    batch_latent = rows * est.sequence_length_ * est._n_latent
    if batch_latent > _MAX_BATCH_LATENT_VALUES:
        raise ValueError(
            f"A training batch would hold {batch_latent:.3g} latent values per tensor "
            f"({rows} sequences x sequence_length={est.sequence_length_} x "
            f"{est._n_latent} latent values per frame), more than "
            f"{_MAX_BATCH_LATENT_VALUES:.3g}: a step would need tens of GiB. Use a "
            "smaller batch_size or fewer latent dimensions.")
    n_params = sum(count * _network_parameters(est, role, n_features)
                   for role, count in (("encoder", est._n_encoders), ("decoder", 1)))
    if n_params > _MAX_PARAMETERS:
        raise ValueError(
            f"The model would have {n_params:.3g} parameters (frames of {n_features} "
            f"features, {est._n_latent} latent values per frame, "
            f"hidden_layer_sizes={tuple(est.hidden_layer_sizes)}, the networks' "
            f"channels), more than {_MAX_PARAMETERS:.3g}. Use smaller networks or fewer "
            "latent dimensions.")


def _network_parameters(est, role, n_features):
    """Parameters of the MLP or convolutional encoder (one) or decoder; 0 for a
    module class, whose size is its own."""
    kind = est.encoder if role == "encoder" else (
        est.decoder if est.decoder != "mirror" else
        (est.encoder if isinstance(est.encoder, str) else "mlp"))
    encoder, decoder = layer_sizes(n_features, est._n_latent, est.hidden_layer_sizes)
    if kind == "mlp":
        sizes = encoder if role == "encoder" else decoder
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    if kind != "conv" or est.frame_shape_ is None:
        return 0
    params = est._network_params("encoder" if est.decoder == "mirror" else role)
    channels = [int(c) for c in params.get("channels", (32, 64, 128))]
    c_in, (H, W) = est.frame_shape_[0], est.frame_shape_[1:]
    convs = sum(16 * a * b + b for a, b in zip([c_in, *channels[:-1]], channels))
    for _ in channels:
        H, W = (H // 2 if H >= 2 else H), (W // 2 if W >= 2 else W)
    head = channels[-1] * H * W * (2 * est._n_latent if role == "encoder" else est._n_latent)
    return convs + head


def make_net(est, module):
    """The skorch net around ``module``, from the estimator's parameters as they are."""
    optimizer = est.optimizer
    routed = est._net_params()
    extra = {}
    if isinstance(optimizer, str):
        if optimizer == "sgd":  # the paper's optimizer
            extra["optimizer__momentum"] = 0.9
        if est.accelerator is None and "optimizer__foreach" not in routed \
                and torch.device(est.device).type in ("cpu", "cuda"):
            # One fused kernel for the whole update: on 2 CPU cores Adam's per-tensor
            # loop took 23 ms of an 82 ms paper-sized step, the fused one 5 ms. A
            # fused step also skips itself on a flag left on the device, so the
            # non-finite check needs no synchronisation (StopOnNonFiniteLoss). Same
            # update up to float rounding; pass the class (or optimizer__foreach) to
            # opt out.
            extra["optimizer__fused"] = True
        optimizer = OPTIMIZERS[optimizer]
    callbacks = [("stop_on_non_finite", StopOnNonFiniteLoss())]
    callbacks += [clone(cb, safe=False) for cb in est.callbacks or []]
    net_class, device = TVAENet, est.device
    if est.accelerator is not None:  # accelerate places the model itself
        net_class, device = AcceleratedTVAENet, None
        extra["accelerator"] = est.accelerator
        if not est.verbose:
            extra["callbacks__print_log__sink"] = discard
    else:  # batches by index from the data's one tensor (accelerate wants loaders)
        extra.update(iterator_train=tensor_batches, iterator_valid=tensor_batches,
                     iterator_train__redraw=True)
        if torch.device(est.device).type == "cuda":
            extra.update(iterator_train__device=est.device,
                         iterator_valid__device=est.device)
    net = net_class(
        module=module, criterion=NegativeELBO, optimizer=optimizer, lr=est.lr,
        max_epochs=est.max_epochs, batch_size=est.batch_size,
        train_split=est.train_split, callbacks=callbacks, device=device,
        verbose=est.verbose,
        # defaults the routed iterator_train__* / optimizer__* parameters override
        **{"iterator_train__shuffle": True, **extra, **routed})
    est._check_callback_names(net)
    return net


def renew_net(est):
    """A net built from the current parameters around the trained module: the
    history goes on, and so does the optimizer's state when its class is the same
    (its hyper-parameters, such as ``lr``, are the current ones)."""
    old = est.net_
    net = make_net(est, old.module_)
    net.initialize()
    if type(net.optimizer_) is type(old.optimizer_):
        groups = [{k: v for k, v in group.items() if k != "params"}
                  for group in net.optimizer_.param_groups]
        net.optimizer_.load_state_dict(old.optimizer_.state_dict())
        for group, settings in zip(net.optimizer_.param_groups, groups):
            group.update(settings)
    net.history = old.history
    return net


def apply_precision(est):
    """``precision_`` and the module's training arithmetic, from ``precision``."""
    precision = est.precision
    if precision == "auto":
        precision = "bfloat16" if bfloat16_is_native(est._module_device) else "float32"
    est.precision_ = precision
    est.net_.module_.autocast_dtype = torch.bfloat16 if precision == "bfloat16" else None
