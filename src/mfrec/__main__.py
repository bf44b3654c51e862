"""``python -m mfrec``: the command line, as ``mfrec``."""

from mfrec.cli import entry

entry()
