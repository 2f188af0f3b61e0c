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
        ``"gaussian"`` for real-valued data, with a learned per-feature variance.
    hidden_layer_sizes : tuple of int, default=(512, 512)
        Hidden sizes of each encoder MLP (ReLU); the decoder mirrors them. The paper's
        MNIST model is ``(972, 648)``; the default trains several times faster on a CPU.
        Used by ``encoder="mlp"`` (and by the MLP decoder of a custom encoder).
    frame_shape : tuple of 3 int or None, default=None
        ``(channels, height, width)`` of one frame, its features in row-major CHW order
        (as :class:`SequenceTransformer` writes them); one entry may be ``-1``, inferred
        from the features as numpy's ``reshape`` does (``(1, 1, -1)``: a 1-D signal of
        any length). ``None`` treats frames as flat vectors, or takes the shape from a
        :class:`SequenceArray`. Needed by ``encoder="conv"``; checked against the
        features per frame at fit.
    encoder : {"mlp", "conv"} or torch.nn.Module subclass, default="mlp"
        The network of q(z|x) and q(u|x) (each its own copy). ``"conv"``: strided
        convolutions (kernel 4, stride 2, ReLU; ``encoder__channels``, default
        ``(32, 64, 128)``), each halving height and width (an axis down to one value
        stays), and a linear layer. A class is built as
        ``encoder(n_features, n_outputs, frame_shape, **encoder__params)`` and maps
        flat frames ``(N, n_features)`` to ``(N, n_outputs)`` (the latents' means, then
        their log-variances); checked on two frames when the model is built.
    decoder : {"mirror", "mlp", "conv"} or torch.nn.Module subclass, default="mirror"
        The network of p(x|t): ``"mirror"`` mirrors ``"mlp"`` or ``"conv"`` (and is the
        MLP for a custom encoder). A class is built as ``decoder(n_latent, n_features,
        frame_shape, **decoder__params)`` and maps ``(N, n_latent)`` to ``(N,
        n_features)`` (logits or means).
    n_importance_samples : int, default=10
        Samples per sequence of the importance-sampled log-likelihood
        (:meth:`score_samples`), as in the paper.
    batch_size : int, default=32
        Sequences per gradient step (each has ``sequence_length`` frames). On MNIST
        sequences 32 learned as well per epoch as 16 and trained 10% faster (larger
        matrix products); see "What we learned" in the documentation.
    max_epochs : int, default=20
        Passes over the training data. Twenty epochs of a few thousand sequences take
        minutes on a CPU; on the embedded digits the equivariance measures stop
        improving after about ten.
    lr : float, default=1e-3
        Learning rate. With Adam, 1e-3 and 3e-4 learned alike in the convergence study;
        3e-3 settled in clearly worse optima.
    optimizer : {"adam", "adamw", "sgd"} or torch.optim.Optimizer subclass, \
default="adam"
        Adam learns in a few epochs on a CPU; ``"sgd"`` is the paper's setting (SGD
        with momentum 0.9, which needs ``lr=1e-4`` and many more epochs). The named
        Adam variants use torch's fused implementation on CPU and CUDA (several times
        faster updates, the same result up to float rounding); pass
        ``torch.optim.Adam`` itself for the unfused one.
    callbacks : list of skorch callbacks or None, default=None
        Extra skorch callbacks, or ``(name, callback)`` pairs; copied at fit.
        ``EarlyStopping`` and ``Checkpoint`` monitor the validation loss by default,
        which needs ``train_split``; with ``train_split=None`` they are refused at
        fit unless told to monitor the training loss (``EarlyStopping(monitor=
        "train_loss")``, ``Checkpoint(monitor="train_loss_best")``).
    train_split : callable or None, default=None
        A skorch split such as ``skorch.dataset.ValidSplit(0.2)`` to record a
        validation loss each epoch; ``None`` trains on all of ``X``.
    device : str or torch.device, default="cpu"
        Where the model trains and runs, e.g. ``"cuda"``.
    precision : {"float32", "bfloat16", "auto"}, default="float32"
        Arithmetic of the encoders and decoder while training: ``"bfloat16"`` runs
        them under autocast (1.9x the float32 speed of the paper's model on a CPU
        with AMX; emulated, 15x slower, on one without bfloat16 units); ``"auto"``
        picks it where the device runs bfloat16 natively (AMX or AVX-512 BF16 CPUs,
        GPUs that support it) and float32 elsewhere (``precision_`` says which). The
        topography, the likelihood and every inference method (``transform``,
        ``score_samples``, the metrics) stay float32. The same seed gives the same
        fit per precision.
    accelerator : accelerate.Accelerator or None, default=None
        Train through Hugging Face accelerate (skorch's ``AccelerateMixin``): data
        parallel over several GPUs or processes, mixed precision. The accelerator then
        places the model and ``device`` is not used for training. Needs
        ``pip install accelerate``; persist such models with
        ``net_.save_params`` / ``net_.load_params``.
    warm_start : bool, default=False
        If True, :meth:`fit` continues from the current parameters (and from where
        training left ``random_state``'s stream, as :meth:`partial_fit` does). Training
        parameters changed by ``set_params`` (``lr``, ``optimizer``, ``batch_size``,
        ``train_split``, ``callbacks``, ``verbose``, ``device``, ``precision``, the
        routed ones) take effect on the next such call; a changed architecture is
        refused until ``fit`` with ``warm_start=False`` rebuilds the model.
    random_state : int, RandomState instance or None, default=None
        Seeds initialisation, batching and sampling noise (and the noise of
        :meth:`score_samples`). The global torch RNG is left untouched.
    verbose : int, default=0
        ``1`` prints skorch's table of losses per epoch.
    **kwargs
        skorch's double-underscore parameters, passed to the skorch net as skorch
        routes them: ``optimizer__weight_decay=1e-4``, ``optimizer__betas=(0.9,
        0.99)``, ``iterator_train__num_workers=2``, ``iterator_valid__batch_size=256``,
        ``callbacks__print_log__sink=print`` (a callback by its name: skorch's
        ``epoch_timer``, ``train_loss``, ``print_log``, sktvae's
        ``stop_on_non_finite``, or the name given in a ``(name, callback)`` pair).
        Listed by ``get_params``, settable by ``set_params`` and ``GridSearchCV``; set
        after fit, they take effect on the next ``partial_fit`` or warm-start ``fit``.
        ``optimizer__lr`` must agree with ``lr``; a callback name that is no callback,
        and other prefixes, are refused."""

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
        Frames per sequence (per row of ``X``). ``"auto"`` takes it from input that
        states it (the output of :class:`SequenceTransformer`), so a Pipeline or a
        grid search names it once, on the transformer; a plain array states nothing,
        and needs an int here. ``1`` gives an i.i.d. topographic VAE.
    temporal_window : int, tuple of (int, int) or None, default=None
        ``L``: frames ``l - L .. l + L`` share their scale. ``0`` is the paper's
        "TVAE L=0" (no temporal coherence). ``None`` means ``sequence_length // 2``, the
        whole cycle, the paper's "TVAE L=S/2". Measured on MNIST sequences of one
        transformation, ``L=S/2`` gives the best likelihood and rolls of single frames
        (0.997 on rotation; ``L=2``: 0.983; ``benchmarks/README.md``). At most
        ``sequence_length // 2``; for even lengths the window at ``L = S/2`` covers the
        ``S`` frames once. A pair ``(past, future)`` shares the scale of frames
        ``l - past .. l + future``: ``(L, 0)`` is causal (a frame's latent depends on no
        later frame, as in the authors' predictive-coding follow-up); ``past + future``
        is at most ``sequence_length - 1``.
    circular_time : bool, default=True
        Whether a sequence is one whole cycle of its transformation, so that its last
        frame neighbours its first (the paper's sequences), or has two ends: then a
        window stops at them (frames beyond an end are absent), and a causal window
        never draws on frames that come later.
    capsule_window : int or tuple of (int, int), default=3
        ``K`` (odd): neighbouring capsule units that share their scale. On a torus, a
        pair ``(k_rows, k_cols)`` of odd sizes, or one int for the square window
        ``(K, K)`` (as ``torch.nn.Conv2d``'s ``kernel_size``). A window may be as wide
        as its axis, not wider. A ring has one axis, so it takes an int only.
    coherence : {{"shifting", "stationary"}}, default="shifting"
        ``"shifting"`` is the TVAE; ``"stationary"`` is the paper's BubbleVAE.
    mu_init : float, default=30.0
        Initial value of the learned scalar ``mu`` (the reference code's value). It
        decides which latent carries a frame's information: with 30 it is ``u``, whose
        shifted windows make the capsules roll; with 0 to 5 it is ``z``, and the
        capsules are no more equivariant than a VAE's ("What we learned" in the
        documentation).
    center_decoder_input : bool, default=True
        Subtract ``-mu_init / sqrt(n)``, about the prior mean of t at initialisation
        (``n`` terms in each window), from t before the decoder. The decoder's first
        layer absorbs a constant shift, so the model and its t are unchanged; but with
        ``mu_init=30`` every t sits near ``-4`` with small variations, and centring
        the decoder's input trains it much faster (LeCun's case for centred inputs;
        measured in "What we learned" in the documentation). ``False`` is the
        reference code's decoder.
    u_mean_init : float, default=1.0
        Where q(u|x)'s mean starts: added to the initial bias of the u-encoder's mean
        output. t depends on u only through ``u^2``, so ``u`` and ``-u`` give the same
        t; started near 0, features that change sign under a transformation (rotating
        a digit by 180 degrees) are squared away, and the capsules learn patterns of
        period ``capsule_dim / 2`` that cannot tell such frames apart. Started at 1,
        ``u^2`` follows the encoder's output to first order. Measured on rotating
        MNIST ("What we learned"): TVAE L=S/2 roll accuracy 0.50 with 0, 0.997
        with 1. ``0`` is the reference code's initialisation. The prior draws the mean
        back towards 0 during training; the model and its objective are unchanged.
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
        if "__" not in key:
            names = cls._get_param_names()
            close = difflib.get_close_matches(key, names, n=3, cutoff=0.6)
            raise TypeError(
                f"{cls.__name__}.__init__() got an unexpected keyword argument {key!r}"
                + (f"; did you mean {' or '.join(map(repr, close))}?" if close else ".")
                + " Double-underscore parameters (optimizer__weight_decay=...) go to "
                "the skorch net and the networks.")
    return kwargs
