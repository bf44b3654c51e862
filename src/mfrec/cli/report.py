"""``mfrec report``: a run folder's report as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from mfrec.cli.options import LocalPath, StrictCommand


@click.command(cls=StrictCommand)
@click.argument("run", type=LocalPath(file_okay=False))
@click.option("--out", type=LocalPath(dir_okay=False), default=None,
              help="where to write the page [RUN/report.html]")  # fmt: skip
def report(run: Path, out: Path | None) -> None:
    """Write RUN's report: training curve, metrics against baselines, per-user NDCG, long tail, scores."""
    from mfrec.evaluation.report import write_report

    if not run.exists():
        raise click.UsageError(f"{run}: no such run folder")
    path = write_report(run, out)
    click.echo(f"report: {path.resolve().as_uri()}")
