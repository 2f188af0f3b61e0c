"""Shared by the examples: the budget, shrunk when SKTVAE_EXAMPLES_FAST=1."""

import os

FAST = os.environ.get("SKTVAE_EXAMPLES_FAST", "") not in ("", "0")
N_IMAGES = 80 if FAST else None  # None: all 1797 digits
EPOCHS = 1 if FAST else 15
