"""
Topographic VAE against a plain VAE
===================================

Both models get the same encoder, decoder, data and training budget. The TVAE's
capsules are far more equivariant (lower equivariance error, higher roll-prediction
accuracy); both are compared on the same held-out likelihood.

*Budget: the 1 797 embedded digits as rotation sequences of 12 frames, 15 epochs for
each model; about 30 seconds on 2 CPU cores.*
"""

import matplotlib.pyplot as plt

from sktvae import VAE, SequenceTransformer, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import equivariance_error, roll_prediction_accuracy
from sktvae.plotting import plot_training_curves

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
X_seq = SequenceTransformer("rotation", sequence_length=S, image_shape=(16, 16),
                            random_state=0).fit_transform(X[:N_IMAGES])
X_train, X_test = X_seq[:-len(X_seq) // 6], X_seq[-len(X_seq) // 6:]

common = dict(sequence_length=S, max_epochs=EPOCHS, random_state=0)
models = {"TVAE": TopographicVAE(n_capsules=S, capsule_dim=S, **common),
          "VAE": VAE(n_components=S * S, **common)}
for name, est in models.items():
    est.fit(X_train)
    print(f"{name}: log p(x)/frame {est.score(X_test) / S:7.1f}  "
          f"E_eq {equivariance_error(est, X_test, capsule_shape=(S, S)):7.1f}  "
          f"E_eq centred {equivariance_error(est, X_test, center=True, capsule_shape=(S, S)):7.1f}  "
          f"roll accuracy {roll_prediction_accuracy(est, X_test, capsule_shape=(S, S)):.2f}")

plot_training_curves(*models.values(), labels=list(models))
plt.show()
