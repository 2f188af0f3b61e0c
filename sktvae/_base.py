"""What ``TopographicVAE`` and ``VAE`` share: the public API, over hooks the
subclasses fill (``_build_module``, ``_n_latent``, ``_latent_feature_names``,
``_forecast_latents``).

The life of an estimator: parameters (``_params``) -> input as frames
(``_validation``) -> the module and the skorch net around it (``_build``) -> training
in skorch's loop, stopped with the last good state restored if it blows up (``_net``)
-> inference in bounded chunks (``_runtime``) -> pickling with a checksum
(``_persistence``).
"""

from __future__ import annotations

from abc import abstractmethod
from numbers import Integral, Real
from typing import TYPE_CHECKING

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils._param_validation import HasMethods, Interval, StrOptions

from . import _build, _validation
from ._params import ParamsMixin
from ._persistence import PersistenceMixin
from ._runtime import RuntimeMixin, seed_from, training_rng
from ._validation import check_bool, check_output_size, is_int

if TYPE_CHECKING:  # typing.Self is Python 3.11+
    from typing_extensions import Self


class _BaseVAE(ParamsMixin, RuntimeMixin, PersistenceMixin, TransformerMixin,
               BaseEstimator):
    """Base class of the sequence VAEs; not for direct use."""

    _parameter_constraints = {
        "sequence_length": [Interval(Integral, 1, None, closed="left"),
                            StrOptions({"auto"})],
        "likelihood": [StrOptions({"bernoulli", "gaussian"})],
        "hidden_layer_sizes": ["array-like"],
        "frame_shape": [tuple, list, None],
        "encoder": [StrOptions({"mlp", "conv"}), type],
        "decoder": [StrOptions({"mirror", "mlp", "conv"}), type],
        "n_importance_samples": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left")],
        "max_epochs": [Interval(Integral, 0, None, closed="left")],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "optimizer": [StrOptions(set(_build.OPTIMIZERS)), type],
        "callbacks": [list, None],
        "train_split": [callable, None],
        "device": [str, torch.device],
        "precision": [StrOptions({"float32", "bfloat16", "auto"})],
        "accelerator": [HasMethods(["prepare", "accumulate"]), None],
        "warm_start": ["boolean"],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
    }
    _n_encoders = 1
    # Frames per row of a plain array under sequence_length="auto" (None: refused)
    _plain_sequence_length = None

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

    def _check_sequence_params(self):
        """Checks that need ``sequence_length_``, once the input has fixed it."""

    _forecast_period = 1  # steps after which the forecast repeats (a VAE's: each)

    @abstractmethod
    def _forecast_latents(self, t_observed, n_steps):
        """Latents ``(n, n_steps, n_latent)`` of the frames after the observed ones,
        whose latents are ``t_observed`` ``(n, k, n_latent)``."""

    # --- training -------------------------------------------------------------------
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
            When the fit blows up: a loss, gradient or parameter that is not finite,
            or an encoder's variance at its bound. The model (parameters and optimizer
            state) is restored to the last state checked good, at worst the one the
            call began with, and the error says which.
        KeyboardInterrupt
            On Ctrl-C, after the last completed batch; the estimator stays usable with
            what it has learnt and can go on (``warm_start``, :meth:`partial_fit`).
        """
        self._check_params()
        return self._train(X, self.max_epochs,
                           initialize=not (self.warm_start and hasattr(self, "net_")))

    def partial_fit(self, X: ArrayLike, y: None = None) -> Self:
        """Train for one epoch on ``X``, initialising the model on the first call.

        Each call takes ``random_state``'s stream up where the last one left it, so
        ``n`` calls on the same ``X`` train exactly as ``fit`` with ``max_epochs=n``
        (as does a ``warm_start`` fit that goes on, or a pickled model trained further).
        Parameters are checked as by :meth:`fit`; training parameters changed since
        the last call take effect (see ``warm_start``), architecture ones are refused.

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
        self._check_params()
        return self._train(X, 1, initialize=not hasattr(self, "net_"))

    def _validate_sequences(self, X, reset, training=False):
        if not reset:
            self._check_fitted()
        return _validation.sequences(self, X, reset, training)

    def _train(self, X, epochs, initialize):
        """skorch's ``partial_fit`` for ``epochs`` on a net built (or renewed) from the
        parameters as they are now: callbacks' ``on_train_begin``/``end`` run; Ctrl-C
        stops after the last completed batch, leaving a usable estimator; a fit that
        blows up is restored to its last good state (``StopOnNonFiniteLoss``). A call
        refused before training starts (bad input, a model that cannot be built)
        leaves the estimator as it was: fitted attributes are not half replaced."""
        before = dict(vars(self))
        try:
            X = self._validate_sequences(X, reset=initialize, training=True)
        except Exception:
            self._restore(before)
            raise
        refused = None
        with training_rng(self, initialize):
            try:
                if initialize:
                    self._initialize(X)
                else:
                    self.net_ = _build.renew_net(self)
                _build.apply_precision(self)
            except Exception as error:
                refused = error
            else:
                self.net_.partial_fit(X, None, epochs=epochs)
        if refused is not None:
            self._restore(before)
            raise refused
        if self.net_.interrupted_:
            raise KeyboardInterrupt  # the caller (a loop, GridSearchCV) stops too
        return self

    def _restore(self, state):
        vars(self).clear()
        vars(self).update(state)

    def _initialize(self, X):
        """Build the module and its net for sequences ``X`` ``(n, S, F)``."""
        n_features = X.shape[2]
        self._check_sequence_params()
        # score_samples' noise where random_state is not an int: drawn once per
        # fitted model, so that repeated calls agree.
        self._score_seed = seed_from(self.random_state)
        self.frame_shape_ = _build.resolve_frame_shape(self, n_features)
        _build.check_model_size(self, n_features, len(X))
        self.n_features_per_frame_ = n_features
        module = self._build_module(n_features)
        if self.likelihood == "gaussian":
            mean, std = _validation.feature_moments(X)
            module.x_shift.copy_(torch.from_numpy(mean))
            module.x_scale.copy_(torch.from_numpy(std))
        self.net_ = _build.make_net(self, module)
        self.net_.initialize()
        self._built_with = self._architecture()

    @property
    def history_(self):
        """skorch's ``History`` of the fitted net, ``net_.history``: always the net's
        own, so that loading a history (``net_.load_params(f_history=...)``) shows."""
        if "net_" not in vars(self):
            raise AttributeError("history_ exists once the estimator is fitted.")
        return self.net_.history

    # --- inference ------------------------------------------------------------------
    # sktvae.metrics and sktvae.plotting use the public methods and, beyond them, one
    # internal interface: _validate_sequences, _encode_frames, _decode, _n_latent
    # (and a TopographicVAE's _capsule_shape).
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
        X = self._validate_sequences(X, reset=False)
        check_output_size(X.shape[0] * self._n_features_out, f"transform of {len(X)} rows",
                          "Transform fewer rows per call.")
        module = self.net_.module_
        return self._map_chunks(X, self.sequence_length_,
                                (X.shape[0], self._n_features_out), np.float32,
                                lambda x: module.latent_mean(x).flatten(1))

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
        return self._decode(_validation.latents(self, X))

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
        include_observed = check_bool("include_observed", include_observed)
        if self.sequence_length_ < 2:
            raise ValueError("predict_sequence forecasts the frames of a sequence after "
                             "the observed ones; this estimator has sequence_length=1.")
        t = self._encode_first_frames(_validation.first_frames(
            self, X_observed, self.sequence_length_ - 1, "X_observed"))  # (n, k, n_latent)
        n, k, _ = t.shape
        n_steps = self.sequence_length_ - k if n_steps is None else n_steps
        if not is_int(n_steps) or n_steps < 1:
            raise ValueError(f"n_steps must be a positive integer; got {n_steps!r}.")
        n_steps, F = int(n_steps), self.n_features_per_frame_
        check_output_size(
            n * (n_steps + (k if include_observed else 0)) * F,
            f"n_steps={n_steps} for {n} sequences", "Ask for fewer steps (a TVAE's "
            "rolls repeat after capsule_dim steps), or fewer sequences per call.")
        # The forecast repeats with the period of the rolls: decode one period, tile it.
        steps = min(n_steps, self._forecast_period)
        latents = self._forecast_latents(t, steps)
        if include_observed:
            latents = np.concatenate([t, latents], 1)
        decoded = self._decode(torch.from_numpy(np.ascontiguousarray(latents)))
        if steps == n_steps:
            return decoded
        decoded = decoded.reshape(n, -1, F)
        seen, ahead = decoded[:, :decoded.shape[1] - steps], decoded[:, -steps:]
        ahead = np.take(ahead, np.arange(n_steps) % steps, axis=1)
        return np.concatenate([seen, ahead], 1).reshape(n, -1)

    def _encode_frames(self, X_frames):
        """t of single frames, each encoded on its own: ``(n, F)`` -> ``(n, n_latent)``.

        No other frame enters the latent; for a TVAE the frame's unseen neighbours are
        assumed to follow the prior's roll (``Topography.observed``). With
        :meth:`_decode`, the internal interface of :mod:`sktvae.metrics`.
        """
        self._check_fitted()
        return self._encode_first_frames(_validation.first_frames(self, X_frames, 1))[:, 0]

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
        X = self._validate_sequences(X, reset=False)
        seed = self._score_seed if not isinstance(self.random_state, Integral) \
            else seed_from(self.random_state)
        return self._log_likelihood(X, seed)

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
        if not is_int(n_samples) or n_samples < 1:
            raise ValueError(f"n_samples must be a positive integer; got {n_samples!r}.")
        S = self.sequence_length_
        check_output_size(
            n_samples * S * (self.n_features_per_frame_ + 3 * self._n_latent),
            f"sample({n_samples})", "Draw fewer sequences per call, e.g. in a loop with "
            "a different random_state for each.")
        generator = torch.Generator().manual_seed(seed_from(random_state))
        shape = (n_samples, S, self._n_latent)
        z = torch.randn(shape, generator=generator)
        u = torch.randn(shape, generator=generator)
        module, device = self.net_.module_.eval(), self._module_device
        with torch.inference_mode():
            t = module.latent(z.to(device), u.to(device)).cpu()
        return self._decode(t)

    # --- sklearn plumbing -------------------------------------------------------------
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
        return np.asarray([f"frame{l}_{name}" for l in range(self.sequence_length_)
                           for name in per_frame], dtype=object)

    @property
    def _n_features_out(self):
        return self.sequence_length_ * self._n_latent

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]
        return tags
