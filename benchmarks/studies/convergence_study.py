"""Which settings make a TVAE converge faster on a CPU budget? One configuration a run.

Trains one model on MNIST sequences (S = 18, 18 x 18 capsules, coloured digits; by
default one of rotation, hue or scale per sequence as in ``paper_table.py``) and prints,
after every epoch, on 150 held-out rotation sequences:

* ``elbo``: the one-sample ELBO per frame;
* ``roll``: roll-prediction accuracy (frame 0 encoded alone, rolled, decoded);
* ``frames``: the same test for each frame's own latent in its sequence (decode t_l,
  is the nearest true frame l?) - the ceiling of ``roll``: while it is at chance the
  model does not yet tell one rotation from another at all; ``half``: how often that
  decode is nearest to the frame half a cycle on instead;
* ``h1``, ``h2`` (a TVAE): the share of the power of frame 0's capsules, in its
  sequence, in harmonics 1 and 2 along the capsule dimension (see ``harmonics`` below);
* ``roll hue``, ``roll scale``: roll accuracy on 150 held-out sequences of each other
  transformation trained on;
* ``KL z`` and ``KL u`` per frame: which latent carries the information;
* ``elbo hue``, ``elbo scale``: the ELBO per frame of those other sequences;
* ``train elbo rotation`` (``hue``, ``scale``, ``composed``): the same on up to 150
  training sequences of each kind: a held-out bound that stalls while its training
  bound improves is overfitting.

At the end, log-likelihood, E_eq (plain and centred), roll accuracy and the spectrum
of the capsules (``harmonics``: the share of t's power along the capsule dimension in
harmonics 1, 2, 3, frame 0 encoded alone; for a TVAE also of the family's own
capsules, in its sequence and alone) on 300 test sequences of each transformation.
The header gives the same spectrum for the pixels of the test sequences along the
cycle (rotating MNIST digits vary more in harmonic 2 than in 1).
A pattern of period ``capsule_dim / 2`` (harmonic 2) looks the same after a roll by
half the cycle, so a model whose power is there cannot tell frames half a cycle apart:
roll accuracy 0.5 (``u_mean_init`` in docs/learned.rst). For a TVAE also where
the rolls of frame 0 land (``roll_outcomes``: within a step of frame k, on frame k, or
``unmoved`` near frame 0 - a roll that does nothing still scores on rolls of one step),
for frame 0 encoded alone and for its latent taken from its whole sequence (what the
reference code's capsule traversals roll), how well the encoder's u of each frame rolls
with the frames (``u_roll_correlation``), and which capsules vary along their dimensions
for which transformation (``capsule_spread``): a model trained on several
transformations can split its capsules between them. Swapping the alone values of a
family's own capsules, or of the others, into the sequence's latent of frame 0 shows
which capsules spoil the roll of a frame alone; rolling only the family's own capsules
(the others kept at frame 0's values) shows which capsules carry the roll; and a frame
alone with its unseen neighbours' u^2 filled in other ways (held still, or at the
prior's 1: ``completed_alone``) shows whether ``roll_prediction_accuracy``'s way of
encoding a frame alone is what holds it back.

Each argument is a JSON dict of estimator parameters (``random_state`` is 0 unless
given), with ``n_train`` (sequences), ``kind`` ("tvae" or "vae"), ``families``,
``combine`` ("random": one family per training sequence, as the paper; "compose": all of
them at once), ``compose_fraction`` (this share of the training sequences composed, the
rest as ``combine`` says; ``composed_families`` composes only these of the families
there) and ``bf16`` (train with ``precision="bfloat16"``, as ``paper_table.py``
does), ``anneal_from`` (keep the learning rate for this many epochs,
then lower it along a half cosine towards 0 at ``max_epochs``) and ``n_train_after``
(``[epoch, n]``: after that many epochs, train on the first ``n`` training sequences
only; the run goes on from where it was, learning rate, optimiser and random stream)
besides:

    python benchmarks/studies/convergence_study.py '{"n_train": 2000, "max_epochs": 20,
        "temporal_window": 2, "families": ["rotation"]}'

What its measurements showed is in docs/learned.rst ("What we learned").
"""

import json
import math
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np
import torch
from skorch.callbacks import Callback, LRScheduler

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the benchmarks
from _common import MNIST, S  # noqa: E402
from paper_table import (
    FAMILIES,
    elbo_per_frame,
    held_out_sequences,
    training_families,
    training_precision,
    training_sequences,
)
from sktvae import VAE, TopographicVAE
from sktvae._model import expected_square, gaussian_kl
from sktvae.datasets import fetch_mnist
from sktvae.metrics import (
    equivariance_error,
    _cycle_hits,
    _nearest_frames,
    roll_prediction_accuracy,
)


def decoded_frames(est, X, T):
    """Decode each frame's latent t_l, encoded in its sequence (``T``, the sequences
    ``X`` as ``est.transform`` gives them): how often the nearest
    true frame is frame l (``frames``), and how often it is the frame half a cycle on,
    l + S/2 (``half``; both within one step). A latent whose capsules hold only even
    harmonics looks the same after a roll by S/2, so the decoder cannot tell those
    two frames apart and each takes about half."""
    n = len(X)
    T = T.reshape(n, S, -1).astype(np.float32)
    decoded = est._decode(torch.from_numpy(T)).reshape(n, S, -1)
    nearest = _nearest_frames(decoded, X.reshape(n, S, -1).astype(np.float32))
    return {"frames": float(_cycle_hits(nearest, np.arange(S), S).mean()),
            "half": float(_cycle_hits(nearest, np.arange(S) + S // 2, S).mean())}


def encoded(est, X):
    """q(z|x) and q(u|x) of sequences ``X`` as the module returns them, on the CPU."""
    with torch.inference_mode():
        x = torch.from_numpy(X.astype(np.float32)).view(len(X), S, -1)
        params = est.net_.module_.encode(x.to(est._module_device))
    return [None if p is None else p.cpu() for p in params]


def diagnostics(est, X, others=(), seen=()):
    module = est.net_.module_
    z_mean, z_logvar, u_mean, u_logvar = encoded(est, X)
    kl_u = 0.0 if u_mean is None else gaussian_kl(u_mean, u_logvar).mean().item() / S
    T = est.transform(X)  # each frame's latent in its sequence
    harmonics = {}
    if u_mean is not None:  # which harmonics frame 0's capsules hold, in its sequence
        h = cycle_harmonics(T.reshape(len(X), S, est.n_capsules, -1)[:, 0], n=2)
        harmonics = {"h1": h[0], "h2": h[1]}
    return {"elbo": elbo_per_frame(module, X, rows=len(X)),  # one pass, as measured
            "roll": roll_prediction_accuracy(est, X, capsule_shape=(S, S)),
            **decoded_frames(est, X, T), **harmonics,
            **{f"roll {family}": roll_prediction_accuracy(est, Y, capsule_shape=(S, S))
               for family, Y in others},
            "KL z": gaussian_kl(z_mean, z_logvar).mean().item() / S, "KL u": kl_u,
            **{f"elbo {family}": elbo_per_frame(module, Y, rows=len(Y)) for family, Y in others},
            # the same on training sequences: a held-out bound that stalls while these
            # improve is overfitting
            **{f"train elbo {family}": elbo_per_frame(module, Y, rows=len(Y))
               for family, Y in seen}}


def cycle_harmonics(values, n=3):
    """Share of the power of ``values`` ``(..., period)`` along their last axis, one
    cycle, in harmonics 1..n (the rest is in higher ones; the mean is left out). For
    capsules ``(n_sequences, n_capsules, capsule_dim)``, the pattern along each capsule;
    for frames ``(n_sequences, n_pixels, S)``, how the pixels vary along the cycle."""
    power = np.abs(np.fft.rfft(values, axis=-1)[..., 1:]) ** 2
    power = power.reshape(-1, power.shape[-1]).mean(0)
    return power[:n] / power.sum()


def harmonics_text(values):
    """``cycle_harmonics(values)`` as printed, or "-" where there are no values."""
    return " ".join(f"{h:.3f}" for h in cycle_harmonics(values)) if values.size else "-"


def frame0_latents(est, X):
    """t of frame 0 taken from its whole encoded sequence (``transform``, as the
    reference code's capsule traversals take it) and encoded alone: two
    ``(n, n_capsules, capsule_dim)`` arrays."""
    n, C = len(X), est.n_capsules
    in_sequence = est.transform(X).reshape(n, S, C, -1)[:, 0]
    alone = est._encode_frames(X.reshape(n, S, -1)[:, 0]).reshape(n, C, -1)
    return in_sequence, alone


def _rolled_nearest(est, t0, frames, capsules=None):
    """The nearest true frame to each roll of ``t0`` by 1 .. S-1 (as
    ``roll_prediction_accuracy`` finds it), rolling only the capsules of the boolean
    ``(n_capsules,)`` mask ``capsules`` (the others keep their values)."""
    n, S_, F = frames.shape
    rolled = np.stack([np.roll(t0, k, axis=-1) for k in range(1, S_)], axis=1)
    if capsules is not None:
        mask = np.asarray(capsules).reshape(-1, *[1] * (t0.ndim - 2))
        rolled = np.where(mask, rolled, t0[:, None])
    rolled = torch.from_numpy(np.ascontiguousarray(rolled, dtype=np.float32))
    decoded = est._decode(rolled.reshape(n, S_ - 1, -1))
    return _nearest_frames(decoded.reshape(n, S_ - 1, F), frames)


def roll_outcomes(est, X, t0, capsules=None):
    """Where the rolls of frame 0's capsules ``t0`` land: ``roll`` (nearest true frame
    within one step of k, as ``roll_prediction_accuracy``), ``exact`` (frame k itself)
    and ``unmoved`` (of the rolls by 2 .. S-2 steps, the share still decoded within one
    step of frame 0). A decoder that ignores the roll scores ``unmoved`` 1, ``exact`` 0
    and ``roll`` 2/17 (rolls by 1 and 17 are within a step of frame 0). ``capsules``, a
    boolean ``(n_capsules,)`` mask, rolls only those capsules and keeps the rest."""
    frames = X.reshape(len(X), S, -1).astype(np.float32)
    nearest = _rolled_nearest(est, t0, frames, capsules)
    ks = np.arange(1, S)
    return {"roll": float(_cycle_hits(nearest, ks, S, 1).mean()),
            "exact": float(_cycle_hits(nearest, ks, S, 0).mean()),
            "unmoved": float(_cycle_hits(nearest[:, 1:-1], np.zeros(S - 3), S, 1).mean())}


def completed_alone(topography, z, u_sq, neighbours):
    """t of single frames ``(B, C*D)`` from ``z`` and ``E[u^2]`` ``(B, C*D)``, with the
    unseen neighbours' ``u^2`` in the window taken to be ``"rolled"`` (the frame's own,
    rolled one capsule dimension per frame: ``Topography.frame_alone``, what
    ``roll_prediction_accuracy`` encodes), ``"still"`` (the frame's own, unchanged, as
    if every frame of the sequence were the same) or ``"prior"`` (1, its expectation
    under the prior)."""
    if neighbours == "rolled":
        return topography.frame_alone(z, u_sq)
    B, n = u_sq.shape
    S = topography.sequence_length
    others = {"still": u_sq[:, None].expand(B, S - 1, n),
              "prior": torch.ones(B, S - 1, n, device=u_sq.device)}[neighbours]
    u_seq = torch.cat([u_sq[:, None], others], 1)
    return topography.from_squares(z[:, None].expand(B, S, n), u_seq)[:, 0]


def frame0_completions(est, X):
    """Frame 0 of each sequence alone, as ``completed_alone`` with its neighbours held
    ``"still"`` and at the ``"prior"`` (``"rolled"`` is ``frame0_latents``' alone): a
    dict from the way to ``(n, n_capsules, capsule_dim)``."""
    module = est.net_.module_
    with torch.inference_mode():
        x = torch.from_numpy(X.astype(np.float32)).view(len(X), S, -1)[:, 0]
        z_mean, _, u_mean, u_logvar = module.encode(x.to(est._module_device))
        u_sq = expected_square(u_mean, u_logvar)
        return {how: completed_alone(module.topography, z_mean, u_sq, how).cpu().numpy()
                .reshape(len(X), est.n_capsules, -1) for how in ("still", "prior")}


def u_roll_correlation(est, X):
    """Correlation of each frame's E[u^2], rolled back by its frame index, with frame
    0's (each capsule centred; averaged over frames 1..S-1 and sequences): 1 when the
    encoder's u rolls exactly with the transformation, so that one frame encoded alone
    gives the window sum its whole sequence gives; about 0 when unrelated."""
    _, _, u_mean, u_logvar = encoded(est, X)
    u_sq = expected_square(u_mean, u_logvar).view(len(X), S, est.n_capsules, -1).numpy()
    back = np.stack([np.roll(u_sq[:, l], -l, axis=-1) for l in range(S)], axis=1)
    back = (back - back.mean(-1, keepdims=True)).reshape(len(X), S, -1)
    dot = (back[:, 1:] * back[:, :1]).sum(-1)
    norms = np.linalg.norm(back[:, 1:], axis=-1) * np.linalg.norm(back[:, :1], axis=-1)
    return float((dot / np.maximum(norms, 1e-12)).mean())


def capsule_spread(in_sequence, alone):
    """How much each capsule of frame 0 varies along its dimensions (the standard
    deviation of t over the capsule, averaged over sequences), given ``frame0_latents``:
    in its sequence and alone, two ``(n_capsules,)`` arrays. A capsule whose pattern
    does not roll in these sequences sums to a flat window in the sequence, but not when
    its frame is encoded alone, which assumes every capsule rolls."""
    return in_sequence.std(-1).mean(0), alone.std(-1).mean(0)


def capsule_owners(spreads):
    """For each capsule, the index of the family (in the order of ``spreads``, which
    maps a family to ``capsule_spread``'s pair) it varies most for in the sequence;
    prints a summary."""
    families = list(spreads)
    in_sequence = np.stack([spreads[f][0] for f in families])  # (families, C)
    owner = in_sequence.argmax(0)

    def mean(values):
        return f"{values.mean():.3f}" if values.size else "-"

    for i, family in enumerate(families):
        mine, alone = owner == i, spreads[family][1]
        print(f"  {family:9s} capsules varying most for it: {int(mine.sum())}; spread of "
              f"frame 0 in its sequence {mean(in_sequence[i, mine])} on those, "
              f"{mean(in_sequence[i, ~mine])} on the others; alone "
              f"{mean(alone[mine])} and {mean(alone[~mine])}")
    return owner


class EpochDiagnostics(Callback):
    """Prints ``measure()`` (a dict) after every epoch."""

    def __init__(self, measure):
        self.measure = measure

    def on_epoch_end(self, net, **kwargs):
        net.module_.eval()
        values = self.measure()
        net.module_.train()
        print(f"  epoch {len(net.history)}: "
              + ", ".join(f"{k} {v:.3f}" for k, v in values.items()), flush=True)


def annealed(epoch, start, stop):
    """The learning-rate factor of epoch ``epoch + 1``: 1 for the first ``start``
    epochs, then a half cosine taken at the middle of each later epoch, so that it falls
    from nearly 1 to nearly 0 over epochs ``start + 1 .. stop``."""
    if epoch < start:
        return 1.0
    return 0.5 * (1 + math.cos(math.pi * (epoch - start + 0.5) / (stop - start)))


def annealing(start, stop):
    """A skorch callback that keeps the learning rate for the first ``start`` epochs,
    then anneals it towards 0 by epoch ``stop``: up to epoch ``start`` the run is the
    constant-rate run, epoch for epoch (the seed fixes the shuffling and the noise)."""
    if not 0 <= start < stop:
        raise ValueError(f"anneal_from must be in [0, max_epochs), got {start} "
                         f"with max_epochs={stop}.")
    return LRScheduler("LambdaLR", lr_lambda=partial(annealed, start=start, stop=stop))


def setup(config):
    """The estimator a configuration describes (the per-epoch diagnostics and the
    annealing set), its training sequences and the held-out ones; prints the header.
    Returns ``est, X_train, tests, kind, (switch, n_after)``: train on all of ``X_train``
    for ``switch`` epochs, then on its first ``n_after`` sequences (``n_train_after``)."""
    config = dict(config)
    n_train = config.pop("n_train", 2000)
    kind = config.pop("kind", "tvae")
    families = config.pop("families", FAMILIES)
    combine = config.pop("combine", "random")  # or "compose": all families in every sequence
    compose_fraction = config.pop("compose_fraction", 0.0)
    composed_families = config.pop("composed_families", None)  # default: all families
    anneal_from = config.pop("anneal_from", None)
    n_train_after = config.pop("n_train_after", None)
    if config.pop("bf16", False):  # bfloat16 autocast of the networks in training
        config["precision"] = training_precision("bf16")
    mnist = fetch_mnist(path=MNIST)
    X_train, n_composed = training_sequences(mnist.x_train[:n_train], families, combine,
                                             compose_fraction, composed_families)
    tests = held_out_sequences(mnist.x_test[:300])
    moving = training_families(len(X_train), families, combine, compose_fraction,
                               composed_families)  # what moves in each training sequence
    # The first 150 of each kind, indexed by row so that no whole kind is copied.
    seen = [(f, X_train[rows]) for f in (*families, "composed")
            if (rows := np.flatnonzero(moving == f)[:150]).size]
    # A closure, not the estimator itself, so that get_params does not recurse.
    monitor = EpochDiagnostics(lambda: diagnostics(
        est, tests["rotation"][:150], [(f, tests[f][:150]) for f in families if f != "rotation"],
        seen))
    params = {"sequence_length": S, "random_state": 0, "callbacks": [monitor], **config}
    est = (VAE(n_components=S * S, **params) if kind == "vae"
           else TopographicVAE(S, S, **params))
    if anneal_from is not None:  # to 0 at the estimator's own max_epochs, default or given
        est.set_params(callbacks=[monitor, annealing(anneal_from, est.max_epochs)])
    annealed = "" if anneal_from is None else f", learning rate annealed from epoch {anneal_from}"
    switch, n_after = n_train_after or (est.max_epochs, len(X_train))
    if not (0 < switch <= est.max_epochs and 0 < n_after <= len(X_train)):
        raise ValueError(f"n_train_after must be [epoch, n] with 0 < epoch <= max_epochs "
                         f"and 0 < n <= n_train, got {n_train_after}.")
    shrunk = "" if n_train_after is None else \
        f", from epoch {switch + 1} on the first {n_after} sequences"
    composed = "" if composed_families is None else f" of {list(composed_families)}"
    print(f"{kind} {config} n_train={n_train} families={list(families)} ({combine}, "
          f"{n_composed} composed{composed}){annealed}{shrunk}", flush=True)
    print("  pixel power of the test sequences along the cycle, harmonics 1-3: " + ", ".join(
        f"{family} "
        + harmonics_text(X.reshape(len(X), S, -1).transpose(0, 2, 1).astype(np.float64))
        for family, X in tests.items()), flush=True)
    return est, X_train, tests, kind, (switch, n_after)


def train(est, X_train, switch, n_after):
    """Fit ``est`` for its ``max_epochs`` on ``X_train``, on its first ``n_after``
    sequences after epoch ``switch`` (as ``setup`` returns them); prints the time."""
    epochs = est.max_epochs
    start = time.perf_counter()
    est.set_params(warm_start=True, max_epochs=switch).fit(X_train)
    if switch < epochs:  # goes on where it was (sktvae keeps the random stream too)
        est.set_params(max_epochs=epochs - switch).fit(X_train[:n_after])
    est.set_params(max_epochs=epochs)
    seconds = time.perf_counter() - start
    frames = S * (len(X_train) * switch + n_after * (epochs - switch))
    print(f"  fit {seconds:.0f} s, {frames / seconds:.0f} "
          "frames/s (with the per-epoch diagnostics)", flush=True)


def measure(est, tests, kind):
    """The end-of-run measurements on the held-out sequences ``tests``."""
    # t of frame 0 in its sequence and alone, once per family, for the TVAE diagnostics
    latents = {} if kind == "vae" else {f: frame0_latents(est, X) for f, X in tests.items()}
    for family, X in tests.items():
        harmonics = "" if kind == "vae" else " harmonics 1-3 " + harmonics_text(
            latents[family][1])
        print(f"  {family:9s} ll/frame {est.score(X) / S:8.2f} "
              f"E_eq {equivariance_error(est, X, capsule_shape=(S, S)):8.1f} "
              f"E_eq centred {equivariance_error(est, X, center=True, capsule_shape=(S, S)):8.1f} "
              f"roll acc {roll_prediction_accuracy(est, X, capsule_shape=(S, S)):.3f}"
              + harmonics, flush=True)
    if kind == "vae":
        return
    owner = capsule_owners({f: capsule_spread(*latents[f]) for f in tests})
    for i, (family, X) in enumerate(tests.items()):
        in_sequence, alone = latents[family]
        own = owner == i
        mine = own[None, :, None]
        completions = frame0_completions(est, X)
        for where, t0, which in (
                ("alone", alone, None), ("in sequence", in_sequence, None),
                # Which capsules spoil a frame alone: swap its values into the sequence's.
                ("in sequence, its capsules alone", np.where(mine, alone, in_sequence), None),
                ("in sequence, the other capsules alone",
                 np.where(mine, in_sequence, alone), None),
                # Only its own capsules rolled, the others kept at frame 0's values: the
                # sequence's half no longer carries the roll for the frame's half.
                ("in sequence, only its capsules rolled", in_sequence, own),
                ("in sequence, only the other capsules rolled", in_sequence, ~own),
                ("alone, only its capsules rolled", alone, own),
                ("in sequence, its capsules alone and only they rolled",
                 np.where(mine, alone, in_sequence), own),
                ("alone, the other capsules' neighbours held still, only its capsules rolled",
                 np.where(mine, alone, completions["still"]), own),
                # Other guesses of the unseen frames' u^2 in the window of a frame alone.
                ("alone, its neighbours' u^2 held still", completions["still"], None),
                ("alone, its neighbours' u^2 at the prior's 1", completions["prior"], None)):
            print(f"  {family:9s} rolls of frame 0 {where}: " + ", ".join(
                f"{k} {v:.3f}" for k, v in roll_outcomes(est, X, t0, which).items()))
        print(f"  {family:9s} u roll correlation {u_roll_correlation(est, X):.3f}; harmonics "
              f"1-3 of its own capsules in sequence {harmonics_text(in_sequence[:, own])}, "
              f"alone {harmonics_text(alone[:, own])}", flush=True)


def run(config):
    est, X_train, tests, kind, (switch, n_after) = setup(config)
    train(est, X_train, switch, n_after)
    measure(est, tests, kind)


if __name__ == "__main__":
    for argument in sys.argv[1:]:
        run(json.loads(argument))
    if len(sys.argv) == 1:
        print(__doc__)
