"""Training: the one loop (:func:`fit`), the Trainer protocol, and one trainer per engine."""

from mfrec.training.options import TrainOptions
from mfrec.training.trainer import EpochRecord, Trainer, TrainingData, fit, resolve_device

__all__ = ["EpochRecord", "TrainOptions", "Trainer", "TrainingData", "fit", "resolve_device"]
