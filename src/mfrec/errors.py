"""The one exception hierarchy of mfrec.

Every error a user can cause derives from :class:`MfrecError`; its message is a
single line that names the offending file, row or value. The CLI prints that
line and exits non-zero; library callers can catch the specific subclass.
"""

from __future__ import annotations


class MfrecError(Exception):
    """Base class of every error mfrec raises on purpose."""


class DataError(MfrecError, ValueError):
    """Ratings input is malformed: missing columns, bad values, empty input."""


class DatasetNotFoundError(MfrecError, LookupError):
    """A dataset name is unknown, or no local copy exists and it cannot be downloaded."""


class DownloadError(MfrecError, OSError):
    """A download failed or its checksum did not match."""


class ConfigError(MfrecError, ValueError):
    """A configuration value is invalid (unknown preset, negative learning rate, ...)."""


class UnknownIdError(MfrecError, KeyError):
    """A raw user or item id is not known to the model or dataset."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class ModelFileError(MfrecError, OSError):
    """A model file is missing, truncated, tampered with, or from an incompatible version."""


class DivergenceError(MfrecError, FloatingPointError):
    """Training produced NaN or inf; nothing was saved."""


class OutputError(MfrecError, OSError):
    """An output folder or file cannot be written."""


class DistributedError(MfrecError, RuntimeError):
    """A rank of a multi-process run failed or could not join; the other ranks were stopped."""
