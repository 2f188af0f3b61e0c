import os

import numpy as np
import pytest

from sktvae import VAE, TopographicVAE

# SKTVAE_TEST_DEVICE=cuda runs the tiny models below on a GPU (the default is the CPU,
# as in CI): every test that builds its model through tiny_tvae / tiny_vae then checks
# the GPU path, e.g. that training in steps is one longer fit there too.
DEVICE = os.environ.get("SKTVAE_TEST_DEVICE", "cpu")
TINY = dict(hidden_layer_sizes=(16,), batch_size=8, max_epochs=2, device=DEVICE)


def tiny_tvae(**params):
    """A TopographicVAE small enough to fit in well under a second."""
    defaults = dict(n_capsules=2, capsule_dim=4, sequence_length=4, temporal_window=1,
                    random_state=0, **TINY)
    return TopographicVAE(**{**defaults, **params})


def tiny_vae(**params):
    return VAE(**{**dict(n_components=4, sequence_length=4, random_state=0, **TINY),
                  **params})


def rolling_sequences(n, S=4, D=4, C=2, seed=0):
    """Binary toy data: in each frame a bump rolls one step per frame along D pixels."""
    rng = np.random.default_rng(seed)
    X = np.zeros((n, S, C, D), np.float32)
    start = rng.integers(0, D, size=(n, C))
    for l in range(S):
        for c in range(C):
            X[np.arange(n), l, c, (start[:, c] + l) % D] = 1.0
    return X.reshape(n, -1)


@pytest.fixture
def X():
    return np.random.default_rng(0).random((24, 4 * 6)).astype(np.float32)


@pytest.fixture(autouse=True)
def _close_figures():
    """Figures a test draws are closed after it (plotting functions leave theirs open for
    the user), so the suite does not pile up more than matplotlib's 20."""
    yield
    import sys

    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
