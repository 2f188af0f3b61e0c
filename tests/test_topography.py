"""The W * u^2 operator against a naive loop, and the map (z, u) -> t."""

import itertools

import numpy as np
import pytest
import torch

from sktvae._topography import Topography, temporal_offsets


def naive_neighbourhood_sum(u_sq, L, K, shifting):
    """W * u^2 written as the definition: loops over frames, capsules, dims, offsets."""
    B, S, C, D = u_sq.shape
    first, last = temporal_offsets(S, L)
    out = np.zeros_like(u_sq)
    for b, l, c, d in itertools.product(range(B), range(S), range(C), range(D)):
        for delta in range(first, last + 1):
            for k in range(-(K // 2), K // 2 + 1):
                dim = (d + (delta if shifting else 0) + k) % D
                out[b, l, c, d] += u_sq[b, (l + delta) % S, c, dim]
    return out


@pytest.mark.parametrize("S, L, C, D, K, shifting", [
    (5, 1, 2, 4, 3, True),
    (5, 1, 2, 4, 3, False),
    (6, 3, 2, 5, 3, True),    # L = S/2 with even S: the window covers the cycle once
    (7, 3, 1, 3, 3, True),    # shifted window wider than the capsule
    (4, 0, 3, 6, 5, True),    # L = 0: within a frame only
    (3, 1, 2, 4, 1, True),    # K = 1 (dSprites setting)
    (1, 0, 2, 3, 3, False),   # i.i.d. topographic VAE
])
def test_neighbourhood_sum_matches_naive_loop(S, L, C, D, K, shifting):
    rng = np.random.default_rng(0)
    u = rng.normal(size=(2, S, C, D)).astype(np.float32)
    topo = Topography(C, D, S, L, K, shifting=shifting)
    got = topo.neighbourhood_sum(torch.from_numpy(u * u).reshape(2, S, C * D))
    expected = naive_neighbourhood_sum(u * u, L, K, shifting)
    np.testing.assert_allclose(got.reshape(2, S, C, D).numpy(), expected, rtol=1e-5)


def test_matrix_and_conv_paths_agree(monkeypatch):
    u_sq = torch.rand(3, 6, 2 * 5)
    topo = Topography(2, 5, 6, 2, 3)
    assert topo.matrix is not None
    by_matrix = topo.neighbourhood_sum(u_sq)
    topo.matrix = None  # the conv path, used for planes too large for a matrix
    torch.testing.assert_close(topo.neighbourhood_sum(u_sq), by_matrix)
    monkeypatch.setattr("sktvae._topography._MAX_MATRIX_SIDE", 10)
    assert Topography(2, 5, 6, 2, 3).matrix is None
    expected = naive_neighbourhood_sum(u_sq.view(3, 6, 2, 5).numpy(), 2, 3, True)
    np.testing.assert_allclose(by_matrix.view(3, 6, 2, 5).numpy(), expected, rtol=1e-5)


def test_window_counts_each_neighbour_once():
    S, L, C, D, K = 18, 9, 2, 18, 3
    topo = Topography(C, D, S, L, K)
    ones = torch.ones(1, S, C * D)
    # 18 frames (the cut window at L = S/2) times K dims.
    assert torch.all(topo.neighbourhood_sum(ones) == S * K)


def test_shifting_rewards_a_rolling_pattern():
    """A pattern rolling one dim per frame keeps the same shifted neighbourhood."""
    S, C, D = 6, 1, 6
    base = torch.zeros(D)
    base[0] = 1.0
    rolling = torch.stack([torch.roll(base, l) for l in range(S)]).reshape(1, S, D)
    shifting = Topography(C, D, S, 2, 1, shifting=True).neighbourhood_sum(rolling)
    stationary = Topography(C, D, S, 2, 1, shifting=False).neighbourhood_sum(rolling)
    # Shifting: where the pattern is, all 5 frames of the window see it.
    assert shifting.max() == 5
    assert stationary.max() == 1


@pytest.mark.parametrize("L, exact", [(3, True), (2, False)])
def test_whole_cycle_window_rolls_with_the_frame_for_any_u(L, exact):
    """With L = S/2 and capsule_dim = S the window of frame l + 1 at dim d + 1 holds the
    same terms as that of frame l at dim d, whatever u is: the scale part of t is
    equivariant by construction, and E_eq or CapCorr measured on sequences cannot tell
    whether the u-encoder is (benchmarks/README.md). A shorter window does not roll."""
    torch.manual_seed(0)
    S = D = 2 * 3
    u_sq = torch.rand(4, S, 2 * D)
    V = Topography(2, D, S, L, 3).neighbourhood_sum(u_sq).view(4, S, 2, D)
    rolled = torch.roll(V, shifts=(1, 1), dims=(1, 3))  # frame l -> l+1, dim d -> d+1
    assert torch.allclose(rolled, V) == exact


def test_t_formula_and_gradient_reaches_mu():
    torch.manual_seed(0)
    topo = Topography(2, 4, 3, 1, 3, mu_init=2.0)
    z = torch.randn(5, 3, 8)
    u = torch.randn(5, 3, 8)
    t = topo(z, u)
    expected = (z - 2.0) / torch.sqrt(topo.neighbourhood_sum(u * u) + topo.eps)
    torch.testing.assert_close(t, expected)
    t.sum().backward()
    assert topo.mu.grad is not None and topo.mu.grad.abs() > 0


def test_kernel_is_fixed_not_learned():
    topo = Topography(2, 4, 3, 1, 3)
    assert [name for name, _ in topo.named_parameters()] == ["mu"]
