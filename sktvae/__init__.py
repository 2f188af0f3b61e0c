"""sktvae: Topographic VAEs (Keller & Welling, NeurIPS 2021) as scikit-learn estimators."""

from ._estimator import VAE, TopographicVAE
from ._sequences import SequenceTransformer

__all__ = ["SequenceTransformer", "TopographicVAE", "VAE"]
__version__ = "0.1.0.dev0"
