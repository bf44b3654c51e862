"""Training: the epoch loop, optimizers, early stopping."""

from mfrec.training.loop import EpochRecord, fit_module, resolve_device

__all__ = ["EpochRecord", "fit_module", "resolve_device"]
