"""
Composite transformations: colour and rotation together
=======================================================

Each sequence turns the digit and the colour wheel at the same time (the paper's
composite sequences). One set of capsules learns both: rolling them changes the colour
and the angle together.

*Budget: the 1 797 embedded digits as colour sequences of 12 frames, 15 epochs;
about 30 seconds on 2 CPU cores.*
"""

import matplotlib.pyplot as plt

from sktvae import SequenceTransformer, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import equivariance_error
from sktvae.plotting import plot_capsule_roll

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

S = 12
X, _ = load_digits_images(size=12, padding=2, return_X_y=True)
seq = SequenceTransformer(["rotation", "hue"], sequence_length=S, image_shape=(16, 16),
                          color="red", random_state=0)
X_seq = seq.fit_transform(X[:N_IMAGES])  # 3 colour channels per frame
X_train, X_test = X_seq[:-len(X_seq) // 6], X_seq[-len(X_seq) // 6:]

tvae = TopographicVAE(n_capsules=S, capsule_dim=S, sequence_length=S,
                      max_epochs=EPOCHS, random_state=0).fit(X_train)
print(f"held-out log p(x) per frame: {tvae.score(X_test) / S:.1f} nats")
print(f"centred equivariance error: {equivariance_error(tvae, X_test, center=True):.1f}")

plot_capsule_roll(tvae, X_test, (16, 16), n_channels=3, n_sequences=3)
plt.show()
