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


def naive_torus_sum(u_sq, L, window, shifting):
    """W * u^2 on tori ``(B, S, N, R, C)`` written as the definition: every unit sums
    u^2 over frames l-L..l+L and a k_rows x k_cols window, circular on both axes, that
    moves delta cols at time offset delta when shifting."""
    B, S, N, R, C = u_sq.shape
    (kr, kc), (first, last) = window, temporal_offsets(S, L)
    out = np.zeros_like(u_sq)
    for b, l, n, i, j in itertools.product(*map(range, (B, S, N, R, C))):
        for delta in range(first, last + 1):
            for a in range(-(kr // 2), kr // 2 + 1):
                for k in range(-(kc // 2), kc // 2 + 1):
                    col = (j + (delta if shifting else 0) + k) % C
                    out[b, l, n, i, j] += u_sq[b, (l + delta) % S, n, (i + a) % R, col]
    return out


@pytest.mark.parametrize("S, L, N, shape, window, shifting", [
    (1, 0, 1, (18, 18), (5, 5), False),  # Figure 3's torus
    (1, 0, 2, (3, 5), (3, 1), True),     # non-square, a window of 1 along cols
    (1, 0, 1, (4, 6), (1, 1), True),     # a window of one unit
    (1, 0, 1, (3, 5), (3, 5), False),    # windows as wide as each axis
    (4, 1, 2, (3, 4), (3, 3), True),     # with time: the window moves along cols
    (4, 1, 1, (3, 4), (1, 3), False),    # with time, stationary
    (6, 3, 1, (2, 3), (1, 3), True),     # the shifted window wraps the cols axis
])
def test_torus_sum_matches_naive_loop(S, L, N, shape, window, shifting):
    rng = np.random.default_rng(1)
    u = rng.normal(size=(2, S, N, *shape)).astype(np.float32)
    topo = Topography(N, shape, S, L, window, shifting=shifting)
    got = topo.neighbourhood_sum(torch.from_numpy(u * u).reshape(2, S, -1))
    expected = naive_torus_sum(u * u, L, window, shifting)
    np.testing.assert_allclose(got.reshape(u.shape).numpy(), expected, rtol=1e-5)
    topo.matrix = None  # the conv3d path, used for blocks too large for a matrix
    got = topo.neighbourhood_sum(torch.from_numpy(u * u).reshape(2, S, -1))
    np.testing.assert_allclose(got.reshape(u.shape).numpy(), expected, rtol=1e-5)


def test_figure3_torus_is_one_324_square_matrix():
    topo = Topography(1, (18, 18), 1, 0, (5, 5), shifting=False)
    assert topo.matrix.shape == (324, 324)
    assert topo.n_terms == 25
    assert torch.all(topo.matrix.sum(0) == 25)


def test_ring_is_the_torus_with_one_row():
    u_sq = torch.rand(3, 5, 2 * 6)
    ring = Topography(2, 6, 5, 1, 3).neighbourhood_sum(u_sq)
    torus = Topography(2, (1, 6), 5, 1, (1, 3)).neighbourhood_sum(u_sq)
    torch.testing.assert_close(ring, torus)


def test_frame_alone_rolls_u_along_cols_of_a_torus():
    """A frame encoded alone gets the t it would have in a sequence whose u rolls one
    col per frame, and each row of the torus rolls on its own."""
    torch.manual_seed(0)
    S, N, R, C = 4, 2, 3, 5
    topo = Topography(N, (R, C), S, 1, (3, 3))
    z, u_sq = torch.randn(2, N * R * C), torch.rand(2, N, R, C)
    rolled = torch.stack([torch.roll(u_sq, l, dims=3) for l in range(S)], 1)
    in_sequence = topo.from_squares(z[:, None].expand(2, S, -1), rolled.reshape(2, S, -1))
    torch.testing.assert_close(topo.frame_alone(z, u_sq.reshape(2, -1)),
                               in_sequence[:, 0])


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
    whether the u-encoder is (docs/learned.rst). A shorter window does not roll."""
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
