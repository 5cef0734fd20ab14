"""Lorenz-63 and Lorenz-96 models (tendencies, RK4), the Kuramoto-Sivashinsky model (ETDRK4, `ks`), and a batched
(optionally compiled) forecaster for all three.

This package imports nothing from the rest of the project. Every function works on any leading batch
shape with the state on the last axis, for numpy arrays and torch tensors alike.
"""

from models import ks, lorenz63, lorenz96
from models.forecast import Forecaster, make_tendency

__all__ = ["Forecaster", "make_tendency", "ks", "lorenz63", "lorenz96"]
