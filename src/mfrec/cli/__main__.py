"""``python -m mfrec.cli``."""

from mfrec.cli import entry

entry()
