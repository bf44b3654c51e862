"""Frozen option dataclasses whose fields carry their own help text and validation.

Every configurable value in mfrec (a model's hyperparameters, the training
options) is a field made by :func:`option`. Its metadata says what the value
means (``help``), which values are allowed (``check``, ``choices``) and, for the
tests, another legal value that must change the result (``probe``). The CLI
builds its ``--flags`` from the same fields, so a name means one thing in the
config file, on the command line and in the Python API.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from mfrec.errors import ConfigError

SEED_LIMIT = 2**63
#: The item-to-item similarities of ``similar_items`` (CLI ``--similar``, HTTP ``similar=``), the
#: default first (``auto``: ``ratings`` where the remembered ratings differ within users, else ``factors``).
SIMILARITIES = ("auto", "ratings", "factors", "cooccurrence")


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _integer(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


#: The most threads a pool may be given: more is a typo, not a machine.
MAX_THREADS = 1024

#: check name -> (accepts the value, what it must be, the type a command-line value is read as)
CHECKS = {
    "positive_int": (lambda v: _integer(v) and 1 <= v < SEED_LIMIT, "an integer from 1 to 2^63 - 1", int),
    "count": (lambda v: _integer(v) and 0 <= v < SEED_LIMIT, "an integer from 0 to 2^63 - 1", int),
    "threads": (lambda v: _integer(v) and 0 <= v <= MAX_THREADS, f"an integer from 0 to {MAX_THREADS}", int),
    "seed": (lambda v: _integer(v) and 0 <= v < SEED_LIMIT, f"an integer from 0 to 2^63 - 1 ({SEED_LIMIT - 1})", int),
    "positive": (lambda v: _number(v) and 0 < v < math.inf, "a positive number", float),
    "nonneg": (lambda v: _number(v) and 0 <= v < math.inf, "a non-negative number", float),
    "flag": (lambda v: isinstance(v, bool), "true or false", bool),
}


def check_flag(value: Any, name: str) -> bool:
    """``value`` as a bool: ``True`` or ``False`` (numpy's too). Anything else (``"no"``, ``0``, ``None``) is a
    :class:`ConfigError` naming ``name``: a truthy ``"no"`` read as True would do the opposite of what it says."""
    if isinstance(value, bool) or (type(value).__name__ == "bool" and type(value).__module__ == "numpy"):
        return bool(value)
    raise ConfigError(f"{name} must be True or False, not {value!r}")


def option(
    default: Any, help: str, *, check: str | None = None, choices: tuple[str, ...] | None = None, probe: Any = None,
    same: bool = False,
) -> Any:
    """A dataclass field with its help text, its validation and a probe value for the tests.

    ``check`` names an entry of :data:`CHECKS`; ``choices`` lists the allowed strings.
    ``probe`` is a legal value other than the default that changes what the model
    learns (the "every hyperparameter matters" test uses it); ``"limit"`` marks a
    resource limit, which must refuse too small a value instead. With ``same``, the
    probe is another implementation of the same computation (an engine), and must
    learn the same model up to rounding.
    """
    if check is None and choices is None:
        check = "flag" if isinstance(default, bool) else None
    metadata = {"help": help, "check": check, "choices": choices, "probe": probe, "same": same}
    return field(default=default, metadata=metadata)


def _field_error(name: str, wanted: str, value: Any) -> ConfigError:
    """``name must be WANTED, not VALUE``, with ``.option`` naming the field (so a caller can say whose it is)."""
    error = ConfigError(f"{name} must be {wanted}, not {value!r}")
    error.option = name
    return error


@dataclass(frozen=True)
class Options:
    """Base of the option dataclasses: validates every field on construction."""

    #: A short name for messages ("the 'als' model", "training").
    subject: ClassVar[str] = "these options"

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("choices") is not None and value not in f.metadata["choices"]:
                raise _field_error(f.name, f"one of {', '.join(f.metadata['choices'])}", value)
            check = f.metadata.get("check")
            if check is not None:
                accept, wanted, _ = CHECKS[check]
                if not accept(value):
                    raise _field_error(f.name, wanted, value)
                if check in ("positive", "nonneg") and isinstance(value, int):
                    object.__setattr__(self, f.name, float(value))  # 1 and 1.0 are one setting
        self.validate()

    def validate(self) -> None:
        """Checks that involve more than one field (override)."""

    @classmethod
    def default(cls, name: str, value: Any, **metadata: Any) -> Any:
        """Field ``name`` of this class with another default (for a subclass that changes it)."""
        base = cls.__dataclass_fields__[name]
        return field(default=value, metadata={**base.metadata, **metadata})

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))

    def replace(self, **changes: Any) -> Options:
        unknown = set(changes) - set(self.names())
        if unknown:
            raise ConfigError(f"{', '.join(sorted(unknown))}: not an option of {self.subject}")
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in fields(self)}
