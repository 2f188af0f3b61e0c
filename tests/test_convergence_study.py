"""benchmarks/studies/convergence_study.py: its measures on models built to pass or
fail them, and a CI-sized run end to end."""

import sys
from pathlib import Path

import numpy as np
import pytest

from sktvae import TopographicVAE
from sktvae.datasets import load_digits_images

sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks"))
sys.path.insert(0, str(Path(__file__).parents[1] / "benchmarks" / "studies"))
import paper_table  # noqa: E402


def test_cycle_harmonics_finds_the_period_of_the_pattern():
    """convergence_study's diagnostic: a pattern cos(2 pi h d / S) along the last axis
    puts all its power in harmonic h, whatever its phase and offset; a mix splits it by
    the squared amplitudes."""
    import convergence_study

    S = paper_table.S
    d = np.arange(S)

    phase = np.arange(4)[:, None, None]  # t of frame 0 of four sequences
    for h in (1, 2, 3):
        t = 3.0 + np.cos(2 * np.pi * h * d / S + phase) * np.ones((1, S, 1))
        np.testing.assert_allclose(convergence_study.cycle_harmonics(t),
                                   np.eye(3)[h - 1], atol=1e-12)
    mix = np.cos(2 * np.pi * d / S + phase) + 2 * np.sin(4 * np.pi * d / S)
    np.testing.assert_allclose(convergence_study.cycle_harmonics(mix, n=2), [0.2, 0.8])
    assert convergence_study.harmonics_text(mix) == "0.200 0.800 0.000"
    assert convergence_study.harmonics_text(mix[:, :0]) == "-"  # a family with no capsules


class _IdentityCodec:
    """Stands in for a fitted estimator whose latent is the frame itself: t = x and
    decoding returns t (one capsule of S dims per frame)."""
    n_capsules = 1

    def transform(self, X):
        return np.asarray(X, dtype=np.float32)

    def _encode_frames(self, frames):
        return np.asarray(frames, dtype=np.float32)

    def _decode(self, T):
        return T.numpy().reshape(len(T), -1)


def test_roll_outcomes_tell_a_rolling_decoder_from_one_that_does_not_move():
    """Frames that are rolls of one pattern are predicted exactly by rolling frame 0's
    latent (alone or from its sequence); the same frames out of order are not; and a
    decoder that undoes the roll stays on frame 0 yet scores 2/17 within one step."""
    import convergence_study

    S = paper_table.S
    pattern = np.random.default_rng(0).normal(size=(5, 1, S))
    rolling = np.concatenate([np.roll(pattern, l, axis=-1) for l in range(S)], axis=1)
    X = rolling.reshape(5, -1)
    for t0 in convergence_study.frame0_latents(_IdentityCodec(), X):  # in sequence, alone
        assert convergence_study.roll_outcomes(_IdentityCodec(), X, t0) == {
            "roll": 1.0, "exact": 1.0, "unmoved": 0.0}
    shuffled = rolling[:, np.random.default_rng(1).permutation(S)].reshape(5, -1)
    t0 = convergence_study.frame0_latents(_IdentityCodec(), shuffled)[1]
    assert convergence_study.roll_outcomes(_IdentityCodec(), shuffled, t0)["exact"] < 0.5

    class Unmoved(_IdentityCodec):
        def _decode(self, T):  # row k holds t0 rolled by k + 1: roll it back
            T = T.numpy()
            return np.stack([np.roll(T[:, k], -(k + 1), axis=-1)
                             for k in range(T.shape[1])], axis=1).reshape(len(T), -1)

    outcome = convergence_study.roll_outcomes(Unmoved(), X, pattern)
    assert outcome["unmoved"] == 1.0 and outcome["exact"] == 0.0
    assert outcome["roll"] == pytest.approx(2 / (S - 1))


def test_roll_outcomes_roll_only_the_capsules_asked_for():
    """With ``capsules`` only the masked capsules roll: frames in which capsule 0 rolls
    and capsule 1 stays put are predicted exactly by rolling capsule 0, and rolling
    capsule 1 alone leaves every prediction on frame 0."""
    import convergence_study

    S = paper_table.S
    rng = np.random.default_rng(0)
    pattern, still = rng.normal(size=(5, 1, 1, S)), rng.normal(size=(5, 1, 1, S))
    frames = np.concatenate([np.concatenate([np.roll(pattern, l, axis=-1), still], axis=2)
                             for l in range(S)], axis=1)  # (5, S, 2 capsules, S)
    X = frames.reshape(5, -1)

    class TwoCapsules(_IdentityCodec):
        n_capsules = 2

    t0 = frames[:, 0]
    only_first = convergence_study.roll_outcomes(TwoCapsules(), X, t0,
                                                 np.array([True, False]))
    assert only_first == {"roll": 1.0, "exact": 1.0, "unmoved": 0.0}
    only_second = convergence_study.roll_outcomes(TwoCapsules(), X, t0,
                                                  np.array([False, True]))
    assert only_second["unmoved"] == 1.0 and only_second["exact"] == 0.0


def test_decoded_frames_tells_its_own_frame_from_the_one_half_a_cycle_on():
    """decoded_frames: a latent that decodes to its own frame scores frames 1, half 0;
    one that decodes to the frame S/2 on (what a capsule pattern of only even harmonics
    gives) frames 0, half 1."""
    import convergence_study

    S = paper_table.S
    X = np.tile(np.eye(S).reshape(1, -1), (3, 1))  # 3 sequences; frame l is one-hot at l

    class HalfACycleOn(_IdentityCodec):
        def transform(self, X):
            return np.roll(X.reshape(len(X), S, -1), -(S // 2), axis=1).reshape(len(X), -1)

    for codec, expected in ((_IdentityCodec(), {"frames": 1.0, "half": 0.0}),
                            (HalfACycleOn(), {"frames": 0.0, "half": 1.0})):
        assert convergence_study.decoded_frames(codec, X, codec.transform(X)) == expected


def test_completed_alone_fills_in_the_unseen_neighbours_as_asked():
    """A frame alone with its neighbours' u^2 "rolled" is Topography.frame_alone; held
    "still", the whole-cycle shifting window sums the capsule's u^2 at every dimension
    (a flat scale); at the "prior" they count 1 each. For a flat u^2 of 1 all agree."""
    import torch

    import convergence_study
    from sktvae._topography import Topography

    S, C = paper_table.S, 2
    topo = Topography(C, S, S, S // 2, 3, mu_init=1.0)
    z = torch.randn(4, C * S)
    u_sq = torch.rand(4, C * S) + 0.5
    rolled = convergence_study.completed_alone(topo, z, u_sq, "rolled")
    torch.testing.assert_close(rolled, topo.frame_alone(z, u_sq))
    still = convergence_study.completed_alone(topo, z, u_sq, "still")
    scale = 3 * u_sq.view(4, C, S).sum(-1, keepdim=True)  # K = 3 dims, every one once
    torch.testing.assert_close(still, ((z.view(4, C, S) - 1.0) / torch.sqrt(scale + 1e-6))
                               .view(4, -1))
    prior = convergence_study.completed_alone(topo, z, u_sq, "prior")
    own = sum(torch.roll(u_sq.view(4, C, S), k, dims=-1) for k in (-1, 0, 1)).view(4, -1)
    n_terms = topo.n_terms
    torch.testing.assert_close(prior, (z - 1.0) / torch.sqrt(own + n_terms - 3 + 1e-6))
    ones = torch.ones_like(u_sq)
    for how in ("still", "prior"):
        torch.testing.assert_close(convergence_study.completed_alone(topo, z, ones, how),
                                   topo.frame_alone(z, ones))


def test_capsule_spread_tells_flat_capsules_from_varying_ones():
    """capsule_spread: a capsule constant along its dimensions has spread 0, one
    holding a pattern its standard deviation; in sequence and alone are read apart."""
    import convergence_study

    S = paper_table.S

    class Encoded(_IdentityCodec):
        n_capsules = 2

        def transform(self, X):  # capsule 0 flat, capsule 1 a cosine of amplitude 2
            t = np.zeros((len(X), S, 2, 9))
            t[:, :, 1] = 2 * np.cos(2 * np.pi * np.arange(9) / 9)
            return t.reshape(len(X), -1)

        def _encode_frames(self, frames):  # alone: both capsules hold the cosine
            t = np.ones((len(frames), 2, 1)) * 2 * np.cos(2 * np.pi * np.arange(9) / 9)
            return t.reshape(len(frames), -1)

    in_sequence, alone = convergence_study.capsule_spread(
        *convergence_study.frame0_latents(Encoded(), np.zeros((3, S * 18))))
    np.testing.assert_allclose(in_sequence, [0.0, np.sqrt(2)], atol=1e-12)
    np.testing.assert_allclose(alone, [np.sqrt(2), np.sqrt(2)], atol=1e-12)


def test_u_roll_correlation_is_one_for_a_rolling_u_and_low_for_shuffled_frames():
    """convergence_study's check that the encoder's u rolls with the frames."""
    from types import SimpleNamespace

    import torch

    import convergence_study

    S = paper_table.S
    pattern = np.random.default_rng(0).normal(size=(4, 1, 2, S))
    rolling = np.concatenate([np.roll(pattern, l, axis=-1) for l in range(S)], axis=1)

    def estimator(u):
        class Module:  # E[u^2] = u^2: a vanishing posterior variance
            def encode(self, x):
                u_mean = torch.from_numpy(u.reshape(len(u), S, -1))
                return None, None, u_mean, torch.full_like(u_mean, -80.0)
        return SimpleNamespace(net_=SimpleNamespace(module_=Module()), n_capsules=2,
                               _module_device=torch.device("cpu"))

    X = np.zeros((4, S * 3))
    assert convergence_study.u_roll_correlation(estimator(1 + rolling), X) == (
        pytest.approx(1.0))
    shuffled = rolling[:, np.random.default_rng(1).permutation(S)]
    assert convergence_study.u_roll_correlation(estimator(1 + shuffled), X) < 0.5


def test_capsule_owners_gives_each_capsule_the_family_it_varies_most_for(capsys):
    """convergence_study's split of capsules between families (in sequence spreads)."""
    import convergence_study

    spreads = {"rotation": (np.array([0.9, 0.1, 0.2]), np.ones(3)),
               "hue": (np.array([0.1, 0.8, 0.3]), np.ones(3))}
    owner = convergence_study.capsule_owners(spreads)
    np.testing.assert_array_equal(owner, [0, 1, 1])
    assert "rotation  capsules varying most for it: 1" in capsys.readouterr().out


@pytest.mark.parametrize("kind", ["tvae", "vae"])
def test_convergence_study_runs_end_to_end(monkeypatch, capsys, kind):
    """A CI-sized convergence_study run (embedded digits for MNIST, 1 epoch) prints its
    per-epoch diagnostics and its end-of-run measurements for each kind of model."""
    from sklearn.utils import Bunch

    import convergence_study

    images = (load_digits_images(size=28).data.reshape(-1, 28, 28) * 255).astype(np.uint8)
    monkeypatch.setattr(convergence_study, "fetch_mnist",
                        lambda path: Bunch(x_train=images[:6], x_test=images[100:102]))
    convergence_study.run({"n_train": 6, "max_epochs": 1, "kind": kind, "batch_size": 3,
                           "hidden_layer_sizes": [8]})
    out = capsys.readouterr().out
    epoch = next(line for line in out.splitlines() if line.startswith("  epoch 1:"))
    assert "frames" in epoch and "half" in epoch and "elbo hue" in epoch
    assert "train elbo rotation" in epoch or "train elbo hue" in epoch
    assert ("h2" in epoch) == (kind == "tvae")
    assert out.count("ll/frame") == 3  # rotation, hue, scale
    assert out.count("u roll correlation") == (3 if kind == "tvae" else 0)


def test_annealing_keeps_the_rate_then_lowers_it_towards_zero():
    """convergence_study's ``anneal_from``: the first epochs train at the set rate (so
    the run repeats the constant-rate one up to there), the later ones at a falling one."""
    import convergence_study

    est = TopographicVAE(2, 3, sequence_length=2, hidden_layer_sizes=(8,), max_epochs=6,
                         lr=1e-2, random_state=0,
                         callbacks=[convergence_study.annealing(3, 6)])
    X = np.random.default_rng(0).random((16, 2 * 9))
    lrs = est.fit(X).history_[:, "event_lr"]
    assert lrs[:3] == [1e-2] * 3
    assert 1e-2 > lrs[3] > lrs[4] > lrs[5] > 0
    assert lrs[5] < 1e-3
    constant = TopographicVAE(2, 3, sequence_length=2, hidden_layer_sizes=(8,),
                              max_epochs=3, lr=1e-2, random_state=0).fit(X)
    assert est.history_[:3, "train_loss"] == constant.history_[:, "train_loss"]
    with pytest.raises(ValueError, match="anneal_from"):
        convergence_study.annealing(6, 6)
