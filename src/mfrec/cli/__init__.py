"""The ``mfrec`` command line: thin commands over the library, one module per command.

Every user error prints one line, ``error: ...``, on stderr and exits non-zero
(1 for errors in data, models and files, 2 for command-line usage); no traceback.
Set ``MFREC_DEBUG=1`` to see tracebacks of unexpected failures.
"""

from __future__ import annotations

import os
import sys
import warnings

import click

from mfrec.cli.options import StrictCommand
from mfrec.errors import MfrecError

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERNAL = 3
#: click 8.2+ raises this for a group given no command (8.1 printed the help itself and exited 0)
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())

@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="mfrec")
def cli() -> None:
    """mfrec: matrix-factorization recommenders on PyTorch."""


@click.command(cls=StrictCommand)
def presets() -> None:
    """The named presets: the model each trains and the options it sets."""
    from mfrec.config import preset, preset_names

    for name in preset_names():
        config = preset(name)
        click.echo(f"{name:10} {config.spec.describe(config.params)}")


def _register() -> None:
    from mfrec.cli.datasets import datasets
    from mfrec.cli.evaluate import evaluate
    from mfrec.cli.recommend import predict, recommend, similar
    from mfrec.cli.report import report
    from mfrec.cli.serve import serve
    from mfrec.cli.train import train
    from mfrec.cli.tune import cv, tune

    for command in (train, evaluate, report, recommend, similar, predict, tune, cv, serve, datasets, presets):
        cli.add_command(command)


_register()


# ----------------------------------------------------------------- main
def _warning_line(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"note: {message}", err=True)


def main(argv: list[str] | None = None) -> int:
    """Entry point: run the CLI and turn every failure into one line and an exit code."""
    debug = bool(os.environ.get("MFREC_DEBUG"))
    warnings.showwarning = _warning_line
    try:
        result = cli.main(args=argv, prog_name="mfrec", standalone_mode=False)
        return result if isinstance(result, int) else 0
    except click.exceptions.Exit as exc:
        return exc.exit_code
    except _NO_ARGS_IS_HELP as exc:  # `mfrec` or `mfrec datasets` alone: the help, not an error
        click.echo(exc.ctx.get_help() if exc.ctx else exc.format_message())
        return 0
    except click.UsageError as exc:
        hint = (
            f" (see: mfrec {exc.ctx.command_path.split(' ', 1)[1]} --help)"
            if exc.ctx and " " in exc.ctx.command_path
            else ""
        )
        click.echo(f"error: {exc.format_message()}{hint}", err=True)
        return EXIT_USAGE
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        return exc.exit_code
    except (click.Abort, KeyboardInterrupt):
        click.echo("error: interrupted", err=True)
        return 130
    except MfrecError as exc:
        if debug:
            raise
        click.echo(f"error: {exc}", err=True)
        return EXIT_ERROR
    except OSError as exc:
        if debug:
            raise
        where = f"{exc.filename}: " if getattr(exc, "filename", None) else ""
        click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        return EXIT_ERROR
    except MemoryError:  # a limit of this machine (or of ulimit), not a bug
        if debug:
            raise
        click.echo("error: out of memory: this needs more memory than the process may use; try less data, "
                   "a smaller model (--embedding-dim) or a machine with more memory", err=True)  # fmt: skip
        return EXIT_ERROR
    except Exception as exc:  # a bug, not a user error: still one line unless debugging
        if debug:
            raise
        click.echo(
            f"error: internal error ({type(exc).__name__}: {exc}); rerun with MFREC_DEBUG=1 and report it", err=True
        )
        return EXIT_INTERNAL


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
