"""Rating-prediction metrics, in stars."""

from __future__ import annotations

import numpy as np


def rmse(predicted: np.ndarray, actual: np.ndarray) -> float:
    r"""Root mean squared error :math:`\sqrt{\frac1n\sum (\hat r - r)^2}`, in the ratings' units."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.sqrt(np.mean(diff * diff))) if len(diff) else float("nan")


def mae(predicted: np.ndarray, actual: np.ndarray) -> float:
    r"""Mean absolute error :math:`\frac1n\sum |\hat r - r|`, in the ratings' units."""
    diff = np.asarray(predicted, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.mean(np.abs(diff))) if len(diff) else float("nan")


def notebook_loss(predicted_unclipped: np.ndarray, actual: np.ndarray) -> float:
    r"""The tutorial notebook's printed loss, for comparison.

    The notebook prints the MSE of predictions of ``rating / 5`` times 5, which
    equals the MSE in stars divided by 5: :math:`\frac{1}{5n}\sum(\hat r - r)^2`
    on unclipped predictions.
    """
    diff = np.asarray(predicted_unclipped, dtype=np.float64) - np.asarray(actual, dtype=np.float64)
    return float(np.mean(diff * diff) / 5.0) if len(diff) else float("nan")


def rating_metrics(predicted_unclipped: np.ndarray, actual: np.ndarray, scale: tuple[float, float]) -> dict[str, float]:
    """RMSE and MAE of predictions clipped to ``scale``, the notebook loss, and the count."""
    clipped = np.clip(predicted_unclipped, *scale)
    return {
        "rmse": rmse(clipped, actual),
        "mae": mae(clipped, actual),
        "notebook_loss": notebook_loss(predicted_unclipped, actual),
        "n": len(actual),
    }
