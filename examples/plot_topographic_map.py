"""
A topographic map of digits (the paper's Figure 3)
==================================================

With no sequences at all, a Topographic VAE whose latent is one torus of units, each
sharing its scale with a window of neighbours, arranges its units by what they encode:
neighbouring units prefer the same digit class. Here a 12 x 12 torus with a 5 x 5
window learns the embedded digits; a VAE with the same encoder and decoder is the
baseline, measured on the same grid. Each map is measured on held-out digits. On these
1 347 small training digits most classes take a patch of the torus, while one or two (here
sevens and eights) get no unit of their own. On all of MNIST every class does
(``benchmarks/topographic_map.py``, in the docs' "Reproducing the paper").

*Budget: 1 347 training digits, 150 epochs for the TVAE and for the VAE; about 15
seconds on 2 CPU cores.*
"""

import matplotlib.pyplot as plt

from sktvae import VAE, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import selectivity_summary
from sktvae.plotting import plot_class_selectivity, plot_max_activating, plot_samples

N_IMAGES = None  # None: all 1797 digits
EPOCHS = 15
# sphinx_gallery_start_ignore
# The test suite runs every example at a smoke-test size (too small for the
# effect to show): SKTVAE_EXAMPLES_FAST=1, set by it and by conf.py on request.
import os  # noqa: E402

FAST = os.environ.get("SKTVAE_EXAMPLES_FAST", "0") not in ("", "0")
if FAST:
    N_IMAGES, EPOCHS = 80, 1
# sphinx_gallery_end_ignore

X, y = load_digits_images(size=16, return_X_y=True)  # 16 x 16 digits in [0, 1]
X, y = X[:N_IMAGES], y[:N_IMAGES]
X_train, y_train, X_test, y_test = X[:-len(X) // 4], y[:-len(X) // 4], \
    X[-len(X) // 4:], y[-len(X) // 4:]

GRID = (1, 12, 12)  # one capsule: a torus of 12 x 12 units
common = dict(hidden_layer_sizes=(256,), batch_size=64, max_epochs=10 * EPOCHS,
              random_state=0)
tvae = TopographicVAE(n_capsules=1, capsule_dim=(12, 12), capsule_window=(5, 5),
                      sequence_length=1, mu_init=10, **common).fit(X_train)
vae = VAE(n_components=144, **common).fit(X_train)

for name, model in (("TVAE", tvae), ("VAE", vae)):
    s = selectivity_summary(model, X_test, y_test, grid_shape=GRID)
    print(f"{name}: Moran's I {s['morans_i_mean']:.2f}, largest d' per class "
          f"from {s['max_selectivity'].min():.2f} to {s['max_selectivity'].max():.2f}, "
          f"map correlation {s['map_correlation']:.2f}, "
          f"held-out log p(x) {model.score(X_test):.1f} nats")

# %%
# Each class's d' on the torus (left), and each unit coloured by the class it prefers
# where its d' reaches 0.85 (right). Neighbouring pixels are neighbouring units: the
# TVAE's preferences come in patches, the VAE's units (on the same grid, in their own
# order) in no arrangement.
plot_class_selectivity(tvae, X_test, y_test).figure_.suptitle("TVAE")
plot_class_selectivity(vae, X_test, y_test, grid_shape=GRID).figure_.suptitle("VAE")

# %%
# For each unit of the torus, the held-out digit that activates it most; beside it,
# digits generated from the prior.
fig, axes = plt.subplots(1, 2, figsize=(10, 5))
plot_max_activating(tvae, X_test, ax=axes[0])
plot_samples(tvae, 36, random_state=0, ax=axes[1])
plt.show()
