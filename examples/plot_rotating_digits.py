"""
Rotating digits and capsule rolls
=================================

Fit a Topographic VAE to sequences of rotating digits, then encode a single frame, roll
its capsules step by step and decode: the digit turns, although the model saw that frame
alone. This is what "equivariant capsules" means in practice.

*Budget: the 1 797 embedded digits as rotation sequences of 12 frames, 15 epochs;
about 20 seconds on 2 CPU cores.*
"""

import matplotlib.pyplot as plt

from sktvae import SequenceTransformer, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import equivariance_error, roll_prediction_accuracy
from sktvae.plotting import plot_capsule_roll, plot_topographic_map

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

S = 12  # frames per sequence: one turn in 30-degree steps
X, _ = load_digits_images(size=12, padding=2, return_X_y=True)  # 16 x 16 images
X_seq = SequenceTransformer("rotation", sequence_length=S, image_shape=(16, 16),
                            random_state=0).fit_transform(X[:N_IMAGES])
X_train, X_test = X_seq[:-len(X_seq) // 6], X_seq[-len(X_seq) // 6:]

# 12 capsules of 12 dimensions: one roll of the capsule per frame of the cycle.
tvae = TopographicVAE(n_capsules=S, capsule_dim=S, sequence_length=S,
                      max_epochs=EPOCHS, random_state=0).fit(X_train)
print(f"held-out log p(x) per frame: {tvae.score(X_test) / S:.1f} nats")
print(f"centred equivariance error: {equivariance_error(tvae, X_test, center=True):.1f}")
print(f"roll-prediction accuracy: {roll_prediction_accuracy(tvae, X_test):.2f} "
      f"(chance {3 / S:.2f})")

# %%
# Top rows: the true sequence. Bottom rows: frame 0 encoded alone, capsules rolled by
# 0, 1, 2, ... and decoded.
plot_capsule_roll(tvae, X_test, (16, 16), n_sequences=3)

# %%
# The capsules of one sequence, frame by frame (centred): the pattern moves along the
# capsule dimension as the digit turns.
plot_topographic_map(tvae, X_test, sequence=0)
plt.show()
