"""
Convolutional and custom encoders
=================================

Frames need not go through MLPs. With ``frame_shape`` (here passed along by
``SequenceTransformer``, so nothing to set), ``encoder="conv"`` puts strided
convolutions in front of the latents and mirrors them in the decoder; any
``torch.nn.Module`` subclass that follows the documented contract works too. Below, a
convolutional TVAE and one with a small residual MLP encoder of our own learn the same
rotating digits; both roll a single frame's capsules into the turning digit.

*Budget: the 1 797 embedded digits as rotation sequences of 12 frames, 15 epochs for
each model; about 50 seconds on 2 CPU cores.*
"""

import matplotlib.pyplot as plt
import torch

from sktvae import SequenceTransformer, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import roll_prediction_accuracy
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


class ResidualEncoder(torch.nn.Module):
    """Our own encoder: built with (n_features, n_outputs, frame_shape, **encoder__*),
    it maps flat frames (N, n_features) to (N, n_outputs)."""

    def __init__(self, n_features, n_outputs, frame_shape, width=256):
        super().__init__()
        self.inp = torch.nn.Linear(n_features, width)
        self.block = torch.nn.Sequential(torch.nn.ReLU(), torch.nn.Linear(width, width),
                                         torch.nn.ReLU(), torch.nn.Linear(width, width))
        self.out = torch.nn.Linear(width, n_outputs)

    def forward(self, x):
        h = self.inp(x)
        return self.out(torch.relu(h + self.block(h)))


S = 12
X, _ = load_digits_images(size=12, padding=2, return_X_y=True)  # 16 x 16 images
X_seq = SequenceTransformer("rotation", sequence_length=S, image_shape=(16, 16),
                            random_state=0).fit_transform(X[:N_IMAGES])
X_train, X_test = X_seq[:-len(X_seq) // 6], X_seq[-len(X_seq) // 6:]

common = dict(n_capsules=S, capsule_dim=S, sequence_length=S, max_epochs=EPOCHS,
              random_state=0)
models = {
    "conv": TopographicVAE(encoder="conv", encoder__channels=(32, 64), **common),
    "residual MLP": TopographicVAE(encoder=ResidualEncoder, encoder__width=256, **common),
}
for name, tvae in models.items():
    tvae.fit(X_train)
    n_params = sum(p.numel() for p in tvae.net_.module_.parameters())
    print(f"{name}: {n_params} parameters, frame shape {tvae.frame_shape_}, held-out "
          f"log p(x) per frame {tvae.score(X_test) / S:.1f} nats, roll accuracy "
          f"{roll_prediction_accuracy(tvae, X_test):.2f} (chance {3 / S:.2f})")

# %%
# The convolutional model's capsules of frame 0, encoded alone and rolled.
plot_capsule_roll(models["conv"], X_test, (16, 16), n_sequences=2)
plt.show()
