"""A run's report: one self-contained HTML page, its figures inlined as PNG (no script, no CDN).

What it shows, all measured on the run's own test part:

* the training curve (train and validation RMSE in stars, or validation NDCG@10);
* the metrics table: the model against the run's baselines;
* a histogram of NDCG@k per test user (the table's NDCG@k is its mean);
* the long tail: the share of ratings and the share of top-k recommendations that go
  to the most-rated x% of the catalog;
* the distribution of the scores in the top-k lists (stars for rating models, the
  model's own score for ranking models);
* for rating models, predicted against true ratings: the predictions (stars, clipped
  to the scale) for each true rating value.

Ranked lists come from :meth:`~mfrec.estimator.MatrixFactorization.rank_test_users`, the
path the metrics came from, with the same user sample.
"""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import numpy as np

from mfrec._io import (
    MANIFEST,
    as_path,
    atomic_write_text,
    check_replaceable,
    file_digest,
    read_sums,
    verify_manifest,
    write_manifest,
    write_sidecar,
)
from mfrec.errors import OutputError

#: The report's file name in a run folder.
REPORT_FILE = "report.html"
#: At most this many test ratings are predicted for the predicted-against-true figure.
PREDICTED_RATINGS = 200_000
#: Ranking metrics shown in the table, in this order, where the run has them.
_COLUMNS = ("rmse", "mae", "ndcg", "recall", "precision", "hit_rate", "map", "mrr", "coverage")
_STYLE = """
body { font: 15px/1.5 system-ui, -apple-system, "Segoe UI", sans-serif; color: #1d2733; margin: 0 auto;
       max-width: 980px; padding: 24px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 6px; }
p.meta { color: #4b5563; margin: 0 0 16px; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
th, td { padding: 4px 10px; border-bottom: 1px solid #e3e7ec; text-align: right; }
th:first-child, td:first-child { text-align: left; }
tr.model td { font-weight: 600; }
figure { margin: 8px 0 0; } img { max-width: 100%; height: auto; }
figcaption { color: #4b5563; font-size: 14px; }
"""


def build_report(model: Any, split: Any, metrics: dict, *, title: str = "", ranked: Any = None) -> str:
    """The report's HTML for a fitted ``model``, its ``split`` and the run's ``metrics`` (``metrics.json``).

    ``ranked``: the test users' lists (:class:`~mfrec.evaluation.ranking.RankedUsers`) when the
    caller already has them, as ``train`` does; ranked here otherwise."""
    from mfrec.evaluation.ranking import RANKING_USERS

    k = int(metrics.get("k", 10))
    parts = [f"<h2>Training curve</h2>{_figure(_curve(model, metrics), 'Training curve by epoch')}"]
    evaluated = len(split.test) > 0
    if not evaluated:
        parts.append("<p>The run trained on every rating (<code>--split none</code>): nothing was held out, so "
                     "there is nothing to measure it on.</p>")  # fmt: skip
    else:
        parts.append(f"<h2>Metrics on the test part</h2>{_metrics_table(metrics, k)}")
        if ranked is None:
            ranked = model.rank_test_users(split.test, train=split.train, k=k, sample_users=RANKING_USERS)
        parts.append(_section(f"NDCG@{k} per test user", _per_user(ranked, k),
                              f"{len(ranked.users):,} test users with a relevant item; the dashed line is the "
                              f"mean, the table's NDCG@{k}"))  # fmt: skip
        counts = np.asarray(model.item_counts_, dtype=np.float64)
        tail, caption = _long_tail(ranked, counts)
        parts.append(_section("The long tail", tail, caption))
        unit = "predicted rating (stars, before clipping)" if model.predicts_ratings else "score"
        caption = f"every score in the {len(ranked.users):,} top-{k} lists; the unit is the {unit}"
        parts.append(_section("Scores of the recommended items", _scores(ranked, unit), caption))
        if model.predicts_ratings:
            parts.append(_section("Predicted against true ratings", _predicted(model, split.test),
                                  "for each true rating on the test part, its predictions: median, quartiles, "
                                  "and the 5th to 95th percentile"))  # fmt: skip
    kind = metrics.get("kind", getattr(model, "config", None) and model.config.model)
    heading = title or f"{kind} on {metrics.get('dataset', 'data')}"
    split_info = metrics.get("split", {})
    meta = (f"{metrics.get('preset', '')} preset · {kind} · split {split_info.get('method', '?')}"
            f" (seed {split_info.get('seed', '?')}) · {metrics.get('epochs_run', '?')} epochs, kept "
            f"{metrics.get('best_epoch', '?')} · trained on {metrics.get('device', '?')}")  # fmt: skip
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(heading)} · mfrec report</title><style>{_STYLE}</style></head><body><main>"
            f"<h1>{html.escape(heading)}</h1><p class=\"meta\">{html.escape(meta)}</p>"
            + "".join(parts) + "</main></body></html>\n")  # fmt: skip


def write_report(run: str | Path, out: str | Path | None = None) -> Path:
    """Write the report of the run folder ``run`` to ``out`` (default ``run/report.html``); returns the path.

    The run folder is verified first. A report written into the run folder joins its
    digest list, so the folder still verifies as a whole; one written elsewhere gets a
    ``<out>.sha256`` beside it. Either way only mfrec's own earlier, unchanged report is
    replaced: any other file at ``out`` (the run's config, a user's page) is an
    :class:`OutputError` and stays as it was.
    """
    from mfrec.data.split import load_split
    from mfrec.errors import ModelFileError

    run = as_path(run, "run")
    if not (run / "split.parquet").is_file():
        raise OutputError(f"{run}: not a run folder (no split.parquet); give the folder `mfrec train` wrote")
    verify_manifest(run, error=ModelFileError)
    target = run / REPORT_FILE if out is None else as_path(out, "out")
    in_run = target.resolve().parent == run.resolve()
    if in_run:
        _check_report_in_run(run, target)
    else:
        check_replaceable(target.parent, [target.name], f"{target.name}.sha256", "a report")
    from mfrec.estimator import MatrixFactorization

    model = MatrixFactorization.load(run)
    split = load_split(run / "split.parquet")
    text = build_report(model, split, model.metrics_)
    try:
        atomic_write_text(target, text)
        if not in_run:
            write_sidecar(target)
        elif (run / MANIFEST).is_file():
            write_manifest(run, sorted({*read_sums(run / MANIFEST), target.name}))
    except OSError as exc:
        raise OutputError(f"cannot write the report {target}: {exc.strerror or exc}") from None
    return target


def _check_report_in_run(run: Path, target: Path) -> None:
    """A report may take the place of an earlier report in the run folder (an ``.html`` file its digest list
    names, unchanged), never of one of the run's own files or a file mfrec did not write."""
    if not (target.exists() or target.is_symlink()):
        return
    listed = read_sums(run / MANIFEST) if (run / MANIFEST).is_file() else {}
    if target.suffix != ".html" or target.is_symlink() or listed.get(target.name) != file_digest(target):
        raise OutputError(f"{target}: exists and is not a report mfrec wrote (or was changed since); "
                          "nothing was written; choose another --out, or move it away")  # fmt: skip


# ------------------------------------------------------------------ pieces
def _figure(fig, alt: str) -> str:
    from mfrec.evaluation.plots import png_bytes

    data = base64.b64encode(png_bytes(fig)).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _section(heading: str, fig, caption: str) -> str:
    return (f"<h2>{html.escape(heading)}</h2><figure>{_figure(fig, heading)}"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")  # fmt: skip


def _curve(model, metrics: dict):
    from mfrec.evaluation.plots import history_figure

    title = f"{metrics.get('kind', '')} on {metrics.get('dataset', '')}".strip()
    return history_figure(model.history_, title=title, best_epoch=model.best_epoch_)


def _metrics_table(metrics: dict, k: int) -> str:
    rows = [("model", metrics.get("model", {}).get("test", {}))]
    rows += [(name, parts.get("test", {})) for name, parts in metrics.get("baselines", {}).items()]
    names = [c for c in _COLUMNS if any(_value(r, c, k) is not None for _, r in rows)]
    labels = {"rmse": "RMSE (stars)", "mae": "MAE (stars)", "hit_rate": f"hit rate@{k}", "coverage": "coverage",
              "ndcg": f"NDCG@{k}", "map": f"MAP@{k}", "mrr": f"MRR@{k}"}  # fmt: skip
    head = "".join(f"<th>{html.escape(labels.get(c, f'{c}@{k}'))}</th>" for c in names)
    body = []
    for name, values in rows:
        cells = "".join(f"<td>{'' if (v := _value(values, c, k)) is None else f'{v:.4f}'}</td>" for c in names)
        body.append(f'<tr{" class=model" if name == "model" else ""}><td>{html.escape(name)}</td>{cells}</tr>')
    return f"<table><thead><tr><th></th>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _value(values: dict, column: str, k: int) -> float | None:
    value = values.get(column, values.get(f"{column}@{k}"))
    return None if value is None else float(value)


def _per_user(ranked, k: int):
    from mfrec.evaluation.plots import new_figure

    values = ranked.metrics["ndcg"]
    fig = new_figure(7, 3.6)
    ax = fig.add_subplot()
    ax.hist(values, bins=np.linspace(0, 1, 41), color="#1f77b4")
    if len(values):
        ax.axvline(float(values.mean()), color="#d62728", linestyle="--", label=f"mean {values.mean():.4f}")
        ax.legend()
    ax.set_xlabel(f"NDCG@{k}")
    ax.set_ylabel("test users")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _long_tail(ranked, counts: np.ndarray) -> tuple[Any, str]:
    """Cumulative shares of ratings and of recommendations over the catalog, most-rated first."""
    from mfrec.evaluation.plots import new_figure

    order = np.argsort(-counts, kind="stable")
    catalog = np.arange(1, len(order) + 1) / max(len(order), 1) * 100
    ratings = np.cumsum(counts[order]) / max(counts.sum(), 1) * 100
    shown = ranked.top[ranked.top >= 0]
    recommended = np.bincount(shown, minlength=len(counts)).astype(np.float64)
    recs = np.cumsum(recommended[order]) / max(recommended.sum(), 1) * 100
    fig = new_figure(7, 3.8)
    ax = fig.add_subplot()
    ax.plot(catalog, ratings, label="ratings", color="#1f77b4")
    ax.plot(catalog, recs, label="recommendations", color="#d62728")
    ax.set_xscale("log")
    ax.set_xlabel("the most-rated x% of items")
    ax.set_ylabel("cumulative share (%)")
    ax.set_ylim(0, 101)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    top = max(1, round(len(order) * 0.1))
    caption = (f"the most-rated 10% of the {len(order):,} items hold {ratings[top - 1]:.0f}% of the ratings and "
               f"{recs[top - 1]:.0f}% of the recommendations; {int((recommended > 0).sum()):,} distinct items "
               f"are recommended")  # fmt: skip
    return fig, caption


def _scores(ranked, unit: str):
    from mfrec.evaluation.plots import new_figure

    values = ranked.scores[np.isfinite(ranked.scores)]
    fig = new_figure(7, 3.6)
    ax = fig.add_subplot()
    ax.hist(values, bins=50, color="#1f77b4")
    ax.set_xlabel(unit)
    ax.set_ylabel("recommendations")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def _predicted(model, test):
    from mfrec.evaluation.plots import new_figure

    if len(test) > PREDICTED_RATINGS:
        test = test.subset(np.sort(np.random.default_rng(0).choice(len(test), PREDICTED_RATINGS, replace=False)))
    frame = test.to_frame()
    predicted = model.predict(frame["user"].to_numpy(), frame["item"].to_numpy())
    truth = frame["rating"].to_numpy(dtype=np.float64)
    fig = new_figure(7, 3.8)
    ax = fig.add_subplot()
    values = np.unique(truth)
    if len(values) <= 12:
        groups = [predicted[truth == v] for v in values]
        ax.boxplot(groups, positions=values, widths=0.35 * np.min(np.diff(values), initial=1.0),
                   whis=(5, 95), showfliers=False)  # fmt: skip
        ax.set_xticks(values, [f"{v:g}" for v in values])
    else:
        ax.hexbin(truth, predicted, gridsize=40, mincnt=1, cmap="Blues")
    low, high = model.scale_
    ax.plot([low, high], [low, high], color="#d62728", linestyle=":", label="predicted = true")
    ax.set_xlabel("true rating (stars)")
    ax.set_ylabel("predicted (stars)")
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
