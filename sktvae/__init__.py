"""sktvae: Topographic VAEs (Keller & Welling, NeurIPS 2021) as scikit-learn estimators.

Public modules: ``sktvae.metrics`` (equivariance measures), ``sktvae.datasets`` (digits,
MNIST) and ``sktvae.plotting`` (figures; needs matplotlib).
"""

from ._estimator import VAE, TopographicVAE
from ._fresh import FreshSequences
from ._persistence import load
from ._sequences import SequenceArray, SequenceTransformer

__all__ = ["FreshSequences", "SequenceArray", "SequenceTransformer", "TopographicVAE",
           "VAE", "load"]
__version__ = "0.1.0.dev0"
