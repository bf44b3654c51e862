"""Models: each an ``nn.Module`` whose docstring states its equation and loss."""

from __future__ import annotations

from mfrec.models.als import ExplicitALS
from mfrec.models.base import FactorModel, RatingModel
from mfrec.models.bayesian import BayesianMF
from mfrec.models.biased import BiasedMF
from mfrec.models.bpr import BPR
from mfrec.models.dot import DotMF
from mfrec.models.implicit_als import ImplicitALS

MODELS: dict[str, type[FactorModel]] = {
    "dot": DotMF,
    "biased": BiasedMF,
    "bayesian": BayesianMF,
    "als": ExplicitALS,
    "implicit_als": ImplicitALS,
    "bpr": BPR,
}

__all__ = [
    "BPR", "MODELS", "BayesianMF", "BiasedMF", "DotMF", "ExplicitALS", "FactorModel", "ImplicitALS", "RatingModel",
]
