"""
Completing half-seen sequences
==============================

Show a Topographic VAE the first half of a rotating digit, and it draws the second
half: the seen frames are encoded together, the last one's capsules are rolled one
step per frame, and each roll is decoded. A plain VAE cannot roll; the best it can do
is repeat the last frame it saw. :func:`sktvae.metrics.forecast_error` measures both
per horizon, beside repeating the last seen frame and the mean of the seen frames.

*Budget: the 1 797 embedded digits as rotation sequences of 12 frames, a TVAE and a
VAE for 15 epochs each; about 30 seconds on 2 CPU cores.*
"""

import matplotlib.pyplot as plt

from sktvae import VAE, SequenceTransformer, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import forecast_error
from sktvae.plotting import plot_forecast, plot_forecast_error

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

S, SEEN = 12, 6  # one turn in 30-degree steps; half of it seen
X, _ = load_digits_images(size=12, padding=2, return_X_y=True)  # 16 x 16 images
X_seq = SequenceTransformer("rotation", sequence_length=S, image_shape=(16, 16),
                            random_state=0).fit_transform(X[:N_IMAGES])
X_train, X_test = X_seq[:-len(X_seq) // 6], X_seq[-len(X_seq) // 6:]

tvae = TopographicVAE(n_capsules=S, capsule_dim=S, sequence_length=S,
                      max_epochs=EPOCHS, random_state=0).fit(X_train)
vae = VAE(n_components=S * S, sequence_length=S, max_epochs=EPOCHS,
          random_state=0).fit(X_train)

errors = {"TVAE": forecast_error(tvae, X_test, n_observed=SEEN),
          "VAE": forecast_error(vae, X_test, n_observed=SEEN)}
for h in (1, 3, S - SEEN):
    print(f"horizon {h}: mean squared error TVAE {errors['TVAE'].mse[h - 1]:.4f}, "
          f"VAE {errors['VAE'].mse[h - 1]:.4f}, repeat the last seen frame "
          f"{errors['TVAE'].mse_repeat_last[h - 1]:.4f}")

# %%
# Top rows: the true sequence. Bottom rows: the six seen frames (faded: their
# reconstructions) and the six the TVAE forecast from them.
plot_forecast(tvae, X_test, (16, 16), n_observed=SEEN, n_sequences=3)

# %%
# The error at each horizon. Repeating the last seen frame is right at first and drifts
# away as the digit turns; the TVAE's rolls follow it.
plot_forecast_error(errors)
plt.show()
