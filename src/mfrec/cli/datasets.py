"""``mfrec datasets``: list, fetch, synthesize and describe the registered datasets."""

from __future__ import annotations

from pathlib import Path

import click

from mfrec.cli.options import FiniteFloat, LocalPath, StrictGroup


@click.group(cls=StrictGroup)
def datasets() -> None:
    """List, fetch and describe the registered datasets."""


@datasets.command("list")
def datasets_list() -> None:
    """Registered datasets and whether a local copy exists."""
    from mfrec.data.fetch import candidates
    from mfrec.data.movielens import REGISTRY

    for spec in REGISTRY.values():
        local = any(p.exists() for p in candidates(spec))
        click.echo(
            f"{spec.name:16} {spec.n_ratings:>12,} ratings  {spec.size_mb:>6.0f} MB  "
            f"{'local ' if local else 'remote'}  {spec.description}"
        )


@datasets.command("fetch")
@click.argument("name")
@click.option("--data-path", type=LocalPath(), default=None)
def datasets_fetch(name: str, data_path: Path | None) -> None:
    """Make sure NAME is on this machine (downloading it if needed), readable, and say where."""
    from mfrec.data.fetch import locate

    source = locate(name, data_path)
    source.check()  # a zip copy is read through once: a damaged one is named here, not mid-training
    click.echo(f"{name}: {source.path}")


@datasets.command("synth")
@click.option("--like", "like", default="ml-25m", show_default=True, help="the release whose shape and layout to copy")
@click.option("--out", type=LocalPath(file_okay=False), required=True,
              help="folder to write <name>/ratings.csv and movies.csv into")  # fmt: skip
@click.option("--fraction", type=FiniteFloat(), default=1.0, show_default=True, help="scale users, items and ratings")
@click.option("--seed", type=int, default=0, show_default=True)
def datasets_synth(like: str, out: Path, fraction: float, seed: int) -> None:
    """Write a synthetic data set shaped like a MovieLens release, in its file layout."""
    from mfrec.data.synthetic import write_like

    folder = write_like(like, out, fraction=fraction, seed=seed)
    click.echo(f"wrote {folder}; train on it with: mfrec train --dataset {like} --data-path {folder}")


@datasets.command("info")
@click.argument("name")
@click.option("--data-path", type=LocalPath(), default=None)
@click.option("--no-download", is_flag=True, help="fail instead of downloading")
def datasets_info(name: str, data_path: Path | None, no_download: bool) -> None:
    """Counts, scale and density of NAME."""
    from mfrec.data import load_dataset
    from mfrec.data.fetch import spec_for

    spec = spec_for(name)
    data = load_dataset(name, data_path, download=not no_download)
    density = len(data) / (data.n_users * data.n_items)
    click.echo(
        f"{spec.name}: {spec.description}\nurl: {spec.url}\n"
        f"ratings {len(data):,}, users {data.n_users:,}, items {data.n_items:,}, density {density:.4%}, "
        f"scale {data.scale[0]:g}-{data.scale[1]:g}, mean {data.ratings.mean():.3f}"
    )
