"""Rating models: each an ``nn.Module`` whose docstring states its equation and loss."""

from __future__ import annotations

from mfrec.models.base import RatingModel
from mfrec.models.biased import BiasedMF
from mfrec.models.dot import DotMF

MODELS: dict[str, type[RatingModel]] = {"dot": DotMF, "biased": BiasedMF}

__all__ = ["MODELS", "BiasedMF", "DotMF", "RatingModel"]
