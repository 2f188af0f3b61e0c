"""The public estimators: ``TopographicVAE`` and its plain-VAE baseline ``VAE``."""

from __future__ import annotations

import math
from numbers import Integral, Real

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_array

from . import _build
from ._base import _BaseVAE
from ._validation import grid_pair, is_int
from ._model import TopographicVAEModule
from ._topography import Topography


_TRAINING_DOC = """\
    likelihood : {"bernoulli", "gaussian"}, default="bernoulli"
        ``"bernoulli"`` for data in [0, 1] such as pixel intensities (the paper's);
        ``"gaussian"`` for real-valued data of any scale, with a learned per-feature
        variance.
    hidden_layer_sizes : tuple of int, default=(512, 512)
        Hidden sizes of each encoder MLP (ReLU); the decoder mirrors them. The paper's
        MNIST model is ``(972, 648)``.
    frame_shape : tuple of 3 int or None, default=None
        ``(channels, height, width)`` of a frame (row-major), one entry possibly ``-1``
        as in numpy's ``reshape``. Needed by ``encoder="conv"``; ``None`` takes it from
        :class:`SequenceTransformer`'s output or treats frames as flat vectors.
    encoder : {"mlp", "conv"} or torch.nn.Module subclass, default="mlp"
        The network of q(z|x) and q(u|x). ``"conv"`` is strided convolutions
        (``encoder__channels``); a class is built as ``encoder(n_features, n_outputs,
        frame_shape, **encoder__params)`` and maps ``(N, n_features)`` to ``(N,
        n_outputs)`` (means, then log-variances).
    decoder : {"mirror", "mlp", "conv"} or torch.nn.Module subclass, default="mirror"
        The network of p(x|t): ``"mirror"`` mirrors the encoder (an MLP for a custom
        encoder); a class is built as ``decoder(n_latent, n_features, frame_shape,
        **decoder__params)``.
    n_importance_samples : int, default=10
        Samples per sequence of the importance-sampled log-likelihood
        (:meth:`score_samples`), as in the paper.
    batch_size : int, default=32
        Sequences per gradient step.
    max_epochs : int, default=20
        Passes over the training data.
    lr : float, default=1e-3
        Learning rate (the one setting with skorch's ``optimizer__lr``).
    optimizer : {"adam", "adamw", "sgd"} or torch.optim.Optimizer subclass, \
default="adam"
        The named ones run torch's fused update on CPU and CUDA; ``"sgd"`` is the
        paper's (momentum 0.9, many more epochs; its ``lr=1e-4`` is on a loss per
        frame, the loss here is per sequence: ``lr=1e-4 / sequence_length``). Pass a
        class, such as ``torch.optim.Adam``, for anything else.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks, or ``(name, callback)`` pairs; copied at fit. Those
        that monitor a validation loss need ``train_split``.
    train_split : callable or None, default=None
        A skorch split such as ``skorch.dataset.ValidSplit(0.2)`` to record a
        validation loss each epoch; ``None`` trains on all of ``X``.
    device : str or torch.device, default="cpu"
        Where the model trains and runs, e.g. ``"cuda"``.
    precision : {"float32", "bfloat16", "auto"}, default="float32"
        Arithmetic of the encoders and decoder while training; ``"auto"`` takes
        bfloat16 where the device runs it natively (``precision_`` says which).
        Inference is always float32.
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face accelerate (several GPUs or processes, mixed
        precision); the accelerator then places the model.
    warm_start : bool, default=False
        If True, :meth:`fit` continues from the fitted model, as :meth:`partial_fit`
        does: training parameters changed since take effect, a changed architecture
        is refused.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batching, sampling noise and :meth:`score_samples`'
        noise; the global torch RNG is left untouched.
    verbose : int, default=0
        ``1`` prints a table of losses per epoch.
    **kwargs
        skorch's double-underscore parameters (``optimizer__weight_decay=1e-4``,
        ``iterator_valid__batch_size=256``, ``callbacks__print_log__sink=print``) and
        the networks' (``encoder__channels=(32, 64)``), settable by ``set_params`` and
        ``GridSearchCV``. A name without ``__`` is refused at once."""

_ATTRIBUTES_DOC = """\
    net_ : TVAENet
        The fitted skorch net; ``net_.module_`` is the torch module.
    precision_ : {"float32", "bfloat16"}
        The training arithmetic ``precision`` resolved to.
    frame_shape_ : tuple of 3 int or None
        The frame layout used: ``frame_shape``, or the one the input carried.
    history_ : skorch.History
        Per-epoch and per-batch losses recorded by skorch.
    n_features_in_ : int
        Number of features of ``X`` seen during fit.
    feature_names_in_ : ndarray of shape (`n_features_in_`,)
        Names of the features seen during fit, when ``X`` had string column names.
    n_features_per_frame_ : int
        Features per frame, ``n_features_in_ // sequence_length_``.
    sequence_length_ : int
        Frames per row: ``sequence_length``, or the number the input stated."""


class TopographicVAE(_BaseVAE):
    __doc__ = f"""Topographic VAE (Keller & Welling, NeurIPS 2021).

    Learns capsules of latents in which a transformation of the input becomes a cyclic
    roll of the capsule. Each frame has two Gaussian latents ``z`` and ``u``, and

        t_l = (z_l - mu) / sqrt(W * u^2)_l,

    where ``W * u^2`` sums ``u^2`` over frames ``l - L .. l + L`` and over ``K``
    neighbouring dimensions of the same capsule. With ``coherence="shifting"`` the
    capsule window moves one dimension per frame of offset, which rewards latents that
    roll along the capsule as the sequence advances.

    A capsule is a ring of ``capsule_dim`` units, or with ``capsule_dim=(rows, cols)``
    a torus, circular on both axes, whose window is ``capsule_window`` units on each
    axis: one torus with ``sequence_length=1`` is the paper's 2-D topographic map
    (its Figure 3), ``TopographicVAE(n_capsules=1, capsule_dim=(18, 18),
    capsule_window=(5, 5), sequence_length=1, mu_init=10)``. Over time, a torus's
    window shifts along its cols axis.

    One row of ``X`` is one sequence: ``sequence_length`` frames concatenated in time
    order. Sequences are treated as cycles (time is circular) unless
    ``circular_time=False``.

    Parameters
    ----------
    n_capsules : int, default=18
        Capsules per frame.
    capsule_dim : int or tuple of (int, int), default=18
        Units per capsule: an int ``D`` for a ring of ``D`` units, a pair
        ``(rows, cols)`` for a torus of ``rows x cols`` units (circular on both axes).
    sequence_length : int or "auto", default="auto"
        Frames per row of ``X``. ``"auto"`` takes it from :class:`SequenceTransformer`'s
        output, so a Pipeline names it once; a plain array needs an int. ``1`` gives an
        i.i.d. topographic VAE.
    temporal_window : int, tuple of (int, int) or None, default=None
        ``L``: frames ``l - L .. l + L`` share their scale; ``0`` is the paper's "TVAE
        L=0", ``None`` the whole cycle (``sequence_length // 2``). A pair ``(past,
        future)`` is lopsided, ``(L, 0)`` causal.
    circular_time : bool, default=True
        Whether a sequence is one cycle, its last frame beside its first (the
        paper's); ``False`` stops windows at the ends.
    capsule_window : int or tuple of (int, int), default=3
        ``K`` (odd): neighbouring capsule units that share their scale; on a torus a
        pair ``(k_rows, k_cols)``, or one int for a square window.
    coherence : {{"shifting", "stationary"}}, default="shifting"
        ``"shifting"`` is the TVAE; ``"stationary"`` is the paper's BubbleVAE.
    mu_init : float, default=30.0
        Initial value of the learned scalar ``mu`` (the reference value). Large values
        route a frame's information through ``u``, whose shifted windows make the
        capsules roll.
    center_decoder_input : bool, default=True
        Feed the decoder ``t`` minus its prior mean at initialisation, a shift the
        model absorbs, which trains faster; ``False`` is the reference code's decoder.
    u_mean_init : float, default=1.0
        Added to the initial bias of q(u|x)'s mean, so that ``u^2`` follows the
        encoder from the start (``t`` sees only ``u^2``); ``0`` is the reference
        code's initialisation.
{_TRAINING_DOC}

    Attributes
    ----------
{_ATTRIBUTES_DOC}

    See Also
    --------
    VAE : The Gaussian-prior baseline with the same encoder and decoder.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import TopographicVAE
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((20, 4 * 6))  # 20 sequences of 4 frames of 6 values in [0, 1]
    >>> tvae = TopographicVAE(n_capsules=2, capsule_dim=4, sequence_length=4,
    ...                       hidden_layer_sizes=(16,), max_epochs=2, random_state=0)
    >>> tvae.fit(X).transform(X).shape
    (20, 32)
    >>> tvae.score_samples(X).shape
    (20,)
    """

    _architecture_params = _BaseVAE._architecture_params + (
        "n_capsules", "capsule_dim", "temporal_window", "circular_time", "capsule_window",
        "coherence", "mu_init", "center_decoder_input", "u_mean_init")

    _parameter_constraints = {
        **_BaseVAE._parameter_constraints,
        "n_capsules": [Interval(Integral, 1, None, closed="left")],
        "capsule_dim": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "temporal_window": [Interval(Integral, 0, None, closed="left"), "array-like",
                            None],
        "circular_time": ["boolean"],
        "capsule_window": [Interval(Integral, 1, None, closed="left"), "array-like"],
        "coherence": [StrOptions({"shifting", "stationary"})],
        "mu_init": [Interval(Real, None, None, closed="neither")],
        "center_decoder_input": ["boolean"],
        "u_mean_init": [Interval(Real, None, None, closed="neither")],
    }

    def __init__(self, n_capsules=18, capsule_dim=18, sequence_length="auto", *,
                 temporal_window=None, circular_time=True, capsule_window=3,
                 coherence="shifting",
                 likelihood="bernoulli", mu_init=30.0, center_decoder_input=True,
                 u_mean_init=1.0, hidden_layer_sizes=(512, 512), frame_shape=None,
                 encoder="mlp", decoder="mirror",
                 n_importance_samples=10, batch_size=32, max_epochs=20, lr=1e-3,
                 optimizer="adam", callbacks=None, train_split=None, device="cpu",
                 precision="float32", accelerator=None, warm_start=False,
                 random_state=None, verbose=0, **kwargs):
        self.n_capsules = n_capsules
        self.capsule_dim = capsule_dim
        self.sequence_length = sequence_length
        self.temporal_window = temporal_window
        self.circular_time = circular_time
        self.capsule_window = capsule_window
        self.coherence = coherence
        self.likelihood = likelihood
        self.mu_init = mu_init
        self.center_decoder_input = center_decoder_input
        self.u_mean_init = u_mean_init
        self.hidden_layer_sizes = hidden_layer_sizes
        self.frame_shape = frame_shape
        self.encoder = encoder
        self.decoder = decoder
        self.n_importance_samples = n_importance_samples
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.optimizer = optimizer
        self.callbacks = callbacks
        self.train_split = train_split
        self.device = device
        self.precision = precision
        self.accelerator = accelerator
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        # skorch-style double-underscore parameters, kept apart from the named ones
        # (scikit-learn's checks allow no other public attribute set in __init__); a
        # name without "__" is a typo, refused at once
        self._kwargs = _routed_kwargs(type(self), kwargs)

    _n_encoders = 2  # q(z|x) and q(u|x)

    def _temporal_window_for(self, S):
        """``L`` (an int) or ``(past, future)``, checked against ``S`` frames."""
        window = self.temporal_window
        if window is None:
            return S // 2
        if is_int(window):
            if window > S // 2:
                raise ValueError(
                    f"temporal_window must be at most sequence_length // 2 = {S // 2} (a "
                    f"window of frames l-L..l+L covers the cycle of {S} frames at "
                    f"L = S/2); got {window}.")
            return int(window)
        entries = np.asarray(window, dtype=object)
        if entries.ndim != 1 or len(entries) != 2 or not all(
                is_int(v) and v >= 0 for v in entries):
            raise ValueError(
                "temporal_window must be an int L or a pair (past, future) of ints >= 0; "
                f"got {window!r}.")
        past, future = (int(v) for v in entries)
        if past + future > S - 1:
            raise ValueError(
                f"temporal_window={window!r} covers {past + future + 1} frames, more than "
                f"the {S} of a sequence (sequence_length): past + future must be at most "
                f"{S - 1}.")
        return past, future

    def _check_params(self):
        super()._check_params()
        _ = self._capsule_window_shape  # raises for a window that does not fit
        if self.sequence_length != "auto":
            self._temporal_window_for(self.sequence_length)

    def _check_sequence_params(self):
        self._temporal_window_for(self.sequence_length_)

    @property
    def _capsule_shape(self):
        """``(D,)`` for rings, ``(rows, cols)`` for tori: the axes of one capsule."""
        return grid_pair("capsule_dim", self.capsule_dim)

    @property
    def _capsule_window_shape(self):
        """The window as one size per capsule axis, checked against the capsule."""
        shape = self._capsule_shape
        window = grid_pair("capsule_window", self.capsule_window)
        if len(shape) == 1 and len(window) == 2:
            raise ValueError(
                f"capsule_window={self.capsule_window!r} is a pair, but "
                f"capsule_dim={self.capsule_dim!r} is a ring with one axis: pass an "
                "int window, or capsule_dim=(rows, cols) for a torus.")
        if len(window) < len(shape):  # an int on a torus: the square window
            window = window * len(shape)
        for axis, k, size in zip(("rows", "cols") if len(shape) == 2 else ("ring",),
                                 window, shape):
            if k % 2 == 0 or k > size:
                what = "capsule_dim" if len(shape) == 1 else f"the torus's {axis}"
                raise ValueError(
                    f"capsule_window must be odd and at most {what} ({size}), a window "
                    f"centred on each unit; got capsule_window={self.capsule_window!r} "
                    f"for capsule_dim={self.capsule_dim!r}.")
        return window

    @property
    def _n_latent(self):
        return self.n_capsules * math.prod(self._capsule_shape)

    def _latent_feature_names(self):
        shape = self._capsule_shape
        if len(shape) == 1:
            return [f"capsule{c}_dim{d}" for c in range(self.n_capsules)
                    for d in range(shape[0])]
        return [f"capsule{c}_r{i}_c{j}" for c in range(self.n_capsules)
                for i in range(shape[0]) for j in range(shape[1])]

    def roll(self, T: ArrayLike, shift: int | ArrayLike, axis: int = -1) -> NDArray:
        """Roll every capsule of latents ``T`` by ``shift`` units.

        With shifting coherence a transformation of the input by one step of its cycle
        becomes a roll by one unit, so ``inverse_transform(roll(T, k))`` shows the
        input transformed ``k`` steps further (the paper's capsule traversals). On a
        torus the roll is along the cols axis, the one the window shifts along over
        time; ``axis=-2`` rolls along the rows instead.

        Parameters
        ----------
        T : array-like of shape (n_samples, k * n_latent)
            Latents of ``k`` frames each, e.g. the output of :meth:`transform`
            (``n_latent`` is ``n_capsules`` times the units of a capsule).
        shift : int or array-like of int of shape (n_samples,)
            Steps to roll by, the same for all rows or one per row.
        axis : int, default=-1
            The capsule axis to roll along: ``-1`` (or ``0`` on a ring, ``1`` on a
            torus) is the ring or the torus's cols; ``-2`` (or ``0``) a torus's rows.

        Returns
        -------
        T_rolled : ndarray of the same shape as ``T``
            ``T_rolled[..., d] = T[..., d - shift]`` along ``axis`` within each capsule.

        Examples
        --------
        >>> import numpy as np
        >>> from sktvae import TopographicVAE
        >>> tvae = TopographicVAE(n_capsules=1, capsule_dim=4)
        >>> tvae.roll(np.array([[1.0, 2.0, 3.0, 4.0]]), 1)
        array([[4., 1., 2., 3.]])
        """
        T = check_array(T)
        shape = self._capsule_shape
        units = math.prod(shape)
        if T.shape[1] % units:
            raise ValueError(f"T has {T.shape[1]} features, not a whole number of "
                             f"capsules of capsule_dim={self.capsule_dim!r}.")
        if not is_int(axis) or not -len(shape) <= axis < len(shape):
            raise ValueError(
                f"axis must be a capsule axis, -1 or {len(shape) - 1} (cols)"
                + (", -2 or 0 (rows)" if len(shape) == 2 else "")
                + f" for capsule_dim={self.capsule_dim!r}; got {axis!r}.")
        axis = 2 + axis % len(shape)  # in (n, capsules, *shape)
        capsules = T.reshape(len(T), -1, *shape)
        D = capsules.shape[axis]
        shift = _shifts(shift, len(T), D)
        index = (np.arange(D)[None, :] - shift[:, None]) % D  # (n, D)
        index = np.expand_dims(index, [a for a in range(1, capsules.ndim) if a != axis])
        return np.take_along_axis(capsules, index, axis=axis).reshape(T.shape)

    @property
    def _forecast_period(self):
        return self._capsule_shape[-1]  # a roll by the capsule's length is no roll

    def _forecast_latents(self, t_observed, n_steps):
        """Latents of the ``n_steps`` frames after the observed ones ``(n, k,
        n_latent)``: the last one's capsules rolled by ``1 .. n_steps`` (after
        ``capsule_dim`` steps the rolls repeat)."""
        return np.stack([self.roll(t_observed[:, -1], h) for h in range(1, n_steps + 1)], 1)

    def _build_module(self, n_features):
        topography = Topography(
            self.n_capsules, self._capsule_shape, self.sequence_length_,
            self._temporal_window_for(self.sequence_length_), self._capsule_window_shape,
            shifting=self.coherence == "shifting", mu_init=self.mu_init,
            circular_time=self.circular_time)
        return TopographicVAEModule(n_features, self._n_latent, self.hidden_layer_sizes,
                                    self.likelihood, topography,
                                    center_decoder_input=self.center_decoder_input,
                                    u_mean_init=self.u_mean_init,
                                    networks=_build.networks(self))


def _shifts(shift, n_rows, period):
    """``shift`` (an int, or one per row) as int64 in ``[0, period)``: a roll is
    periodic, so any integer (uint64, or past int64 as a Python int) is taken modulo
    the capsule's length before it is cast."""
    values = np.asarray(shift)
    if values.ndim > 1 or (values.ndim == 1 and len(values) != n_rows):
        raise ValueError(f"shift must be an int or one int per row of T ({n_rows}); got "
                         f"shape {values.shape}.")
    if values.dtype == object and all(is_int(v) for v in values.flat):
        values = np.asarray([int(v) % period for v in values.flat],
                            np.int64).reshape(values.shape)
    elif not np.issubdtype(values.dtype, np.integer):
        raise TypeError(f"shift must be integers; got dtype {values.dtype}.")
    else:  # the period in the shift's own dtype: numpy 1.x made uint64 % int a float
        values = (values % values.dtype.type(period)).astype(np.int64)
    return np.broadcast_to(values, (n_rows,))


class VAE(_BaseVAE):
    __doc__ = f"""Variational autoencoder with a standard-normal prior (the paper's baseline).

    The same encoder/decoder family as :class:`TopographicVAE`, with ``t = z`` and
    frames treated independently. Rows hold ``sequence_length`` frames so that both
    estimators read the same data; :meth:`score_samples` sums the frames'
    log-likelihoods, so the two are compared on the same quantity.

    Parameters
    ----------
    n_components : int, default=324
        Latent dimensions per frame (default: as many as the TVAE's 18 x 18 capsules).
    sequence_length : int or "auto", default="auto"
        Frames per row of ``X``: ``"auto"`` takes it from input that states it (the
        output of :class:`SequenceTransformer`); a plain array is one frame a row.
{_TRAINING_DOC}

    Attributes
    ----------
{_ATTRIBUTES_DOC}

    See Also
    --------
    TopographicVAE : The model with topographic, equivariant capsules.

    Examples
    --------
    >>> import numpy as np
    >>> from sktvae import VAE
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((20, 6))
    >>> vae = VAE(n_components=2, hidden_layer_sizes=(16,), max_epochs=2,
    ...           random_state=0).fit(X)
    >>> vae.transform(X).shape
    (20, 2)
    >>> vae.sample(3, random_state=0).shape
    (3, 6)
    """

    _architecture_params = _BaseVAE._architecture_params + ("n_components",)

    _parameter_constraints = {
        **_BaseVAE._parameter_constraints,
        "n_components": [Interval(Integral, 1, None, closed="left")],
    }

    def _forecast_latents(self, t_observed, n_steps):
        """A VAE cannot roll: every forecast frame is the last observed one's latent."""
        return np.repeat(t_observed[:, -1:], n_steps, axis=1)

    _plain_sequence_length = 1  # frames are independent: a plain row is one frame

    def __init__(self, n_components=324, sequence_length="auto", *, likelihood="bernoulli",
                 hidden_layer_sizes=(512, 512), frame_shape=None, encoder="mlp",
                 decoder="mirror", n_importance_samples=10, batch_size=32,
                 max_epochs=20, lr=1e-3, optimizer="adam", callbacks=None,
                 train_split=None, device="cpu", precision="float32", accelerator=None,
                 warm_start=False, random_state=None, verbose=0, **kwargs):
        self.n_components = n_components
        self.sequence_length = sequence_length
        self.likelihood = likelihood
        self.hidden_layer_sizes = hidden_layer_sizes
        self.frame_shape = frame_shape
        self.encoder = encoder
        self.decoder = decoder
        self.n_importance_samples = n_importance_samples
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.lr = lr
        self.optimizer = optimizer
        self.callbacks = callbacks
        self.train_split = train_split
        self.device = device
        self.precision = precision
        self.accelerator = accelerator
        self.warm_start = warm_start
        self.random_state = random_state
        self.verbose = verbose
        # skorch-style double-underscore parameters, kept apart from the named ones
        # (scikit-learn's checks allow no other public attribute set in __init__); a
        # name without "__" is a typo, refused at once
        self._kwargs = _routed_kwargs(type(self), kwargs)

    @property
    def _n_latent(self):
        return self.n_components

    def _latent_feature_names(self):
        return [f"z{k}" for k in range(self.n_components)]

    def _build_module(self, n_features):
        return TopographicVAEModule(n_features, self.n_components,
                                    self.hidden_layer_sizes, self.likelihood,
                                    networks=_build.networks(self))


def _routed_kwargs(cls, kwargs):
    """``kwargs`` if each is a double-underscore parameter; a ``TypeError`` naming the
    closest parameters for a name that is none (a typo such as ``n_capsule``)."""
    import difflib

    for key in kwargs:
        # "kwargs" itself is what scikit-learn's checks pass for **kwargs: kept, and
        # refused at fit like any other name that is no parameter
        if "__" not in key and key != "kwargs":
            names = cls._get_param_names()
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            raise TypeError(
                f"{cls.__name__}.__init__() got an unexpected keyword argument {key!r}"
                + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ".")
                + " Double-underscore parameters (optimizer__weight_decay=...) go to "
                "the skorch net and the networks.")
    return kwargs
