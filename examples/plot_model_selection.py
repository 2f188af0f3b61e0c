"""
Model selection by held-out likelihood with GridSearchCV
========================================================

``Pipeline([SequenceTransformer, TopographicVAE])`` is an ordinary scikit-learn
estimator: ``GridSearchCV`` compares coherence types and window sizes by the
importance-sampled log-likelihood of held-out sequences (``score``). Each image becomes
one whole sequence, so no fold ever splits a sequence. The equivariance error can be
used as the score instead (``make_equivariance_scorer``).

*Budget: 900 digits as rotation sequences of 8 frames, six candidates of 5 epochs
in 3 folds, then the refit; about 20 seconds on 2 CPU cores.*
"""

import pandas as pd
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline

from sktvae import SequenceTransformer, TopographicVAE
from sktvae.datasets import load_digits_images
from sktvae.metrics import make_equivariance_scorer

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

S = 8
X, _ = load_digits_images(size=12, padding=2, return_X_y=True)
pipe = Pipeline([
    ("seq", SequenceTransformer("rotation", sequence_length=S, image_shape=(16, 16),
                                random_state=0)),
    ("tvae", TopographicVAE(n_capsules=S, capsule_dim=S, hidden_layer_sizes=(256, 256),
                            max_epochs=max(1, EPOCHS // 3), random_state=0)),
])
grid = {"tvae__coherence": ["shifting", "stationary"],
        "tvae__temporal_window": [0, 2, 4]}
CV = 3
# sphinx_gallery_start_ignore
if FAST:
    grid["tvae__temporal_window"], CV = [0, 2], 2
# sphinx_gallery_end_ignore
search = GridSearchCV(pipe, grid, cv=CV,
                      scoring={"log_likelihood": None,
                               "equivariance": make_equivariance_scorer()},
                      refit="log_likelihood")
search.fit(X[:N_IMAGES or 900])
results = pd.DataFrame(search.cv_results_)
columns = ["param_tvae__coherence", "param_tvae__temporal_window",
           "mean_test_log_likelihood", "mean_test_equivariance"]
print(results[columns].to_string(index=False))
print("best by held-out likelihood:", search.best_params_)
