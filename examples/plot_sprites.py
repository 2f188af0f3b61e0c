"""
Sprites: capsules that roll as a sprite moves
=============================================

The paper's second data set: sprites (a square, an ellipse, a heart) whose position,
orientation or scale moves one step per frame. :func:`sktvae.datasets.make_sprite_sequences`
draws them from their factors, so nothing is downloaded. CapCorr
(:func:`sktvae.metrics.capsule_roll_correlation`, per factor with ``groups=``) says how
well the roll seen in the capsules of an encoded sequence follows the true step. At this
budget the capsules learn to roll with the sprite's position (CapCorr near 1 for x and
y) before orientation and scale (near 0), and a frame encoded alone, rolled, still
decodes to a blur that moves only roughly: the benchmark ``sprites_table.py`` trains
longer, on 64 x 64 frames.

*Budget: 1 200 sequences of 15 frames of 32 x 32 pixels, 12 epochs; about 30 seconds
on 2 CPU cores.*
"""

import matplotlib.pyplot as plt

from sktvae import TopographicVAE
from sktvae.datasets import make_sprite_sequences
from sktvae.metrics import capsule_roll_correlation, roll_prediction_accuracy
from sktvae.plotting import plot_capsule_roll

N_TRAIN = 1200
EPOCHS = 12
# sphinx_gallery_start_ignore
# The test suite runs every example at a smoke-test size (too small for the
# effect to show): SKTVAE_EXAMPLES_FAST=1, set by it and by conf.py on request.
import os  # noqa: E402

FAST = os.environ.get("SKTVAE_EXAMPLES_FAST", "0") not in ("", "0")
if FAST:
    N_TRAIN, EPOCHS = 60, 1
# sphinx_gallery_end_ignore

S, SIZE = 15, 32
X_train, _ = make_sprite_sequences(N_TRAIN, S, image_size=SIZE, random_state=0)
X_test, factors = make_sprite_sequences(200, S, image_size=SIZE, random_state=1)

# 15 capsules of 15 units, each unit's scale shared with no neighbour (K = 1) over a
# window of 10 frames, as in the paper's sprite runs.
tvae = TopographicVAE(n_capsules=S, capsule_dim=S, sequence_length=S, capsule_window=1,
                      temporal_window=(5, 4), max_epochs=EPOCHS, random_state=0)
tvae.fit(X_train)
print(f"held-out log p(x) per frame: {tvae.score(X_test) / S:.1f} nats")
for factor, corr in capsule_roll_correlation(tvae, X_test, groups=factors.moving).items():
    print(f"CapCorr, {factor} moving: {corr:.2f}")
print(f"roll-prediction accuracy: {roll_prediction_accuracy(tvae, X_test):.2f} "
      f"(chance {3 / S:.2f})")

# %%
# For one sequence of each factor: the true frames, then frame 0 encoded alone and its
# capsules rolled by 0, 1, 2, ... and decoded.
order = [list(factors.moving).index(f) for f in ("x", "y", "orientation", "scale")]
plot_capsule_roll(tvae, X_test[order], (SIZE, SIZE), n_sequences=4)
plt.show()
