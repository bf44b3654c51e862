"""Evaluation: rating metrics, baselines, plots."""

from mfrec.evaluation.baselines import BiasBaseline, GlobalMean
from mfrec.evaluation.metrics import mae, notebook_loss, rating_metrics, rmse

__all__ = ["BiasBaseline", "GlobalMean", "mae", "notebook_loss", "rating_metrics", "rmse"]
