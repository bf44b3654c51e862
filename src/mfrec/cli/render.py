"""Tables the commands print."""

from __future__ import annotations

import click

#: The ranking metrics the commands show, without their cut-off.
RANKING_METRICS = ("ndcg", "recall", "precision", "map", "hit_rate", "mrr")


#: ``--k``: the cut-off of the ranking metrics, for every command that reports them.
K_OPTION = click.option("--k", "k", type=click.IntRange(min=1), default=10, show_default=True,
                        help="cut-off of the ranking metrics (NDCG@k, recall@k, ...)")  # fmt: skip


def ranking_columns(k: int) -> tuple[str, ...]:
    """The ranking metric names at cut-off ``k`` as the metrics dictionaries spell them, then coverage."""
    return (*(f"{name}@{k}" for name in RANKING_METRICS), "coverage")


def nothing_to_rank(k: int, who: str) -> str:
    """The line shown instead of ranking metrics that are undefined (NaN: no user to rank for)."""
    return f"top-{k}: no {who}: nothing to rank against"


def metrics_table(metrics: dict) -> str:
    """The model's and baselines' metrics of a run; a run trained on every rating (``--split none``) has none."""
    if not metrics["model"]:
        sizes = metrics["split"]["sizes"]
        return (f"trained on all {sizes['train']:,} ratings (--split none): nothing was held out, "
                "so nothing is evaluated")
    k = metrics.get("k", 10)
    columns = ranking_columns(k)
    rows = [("model", metrics["model"]), *metrics["baselines"].items()]
    lines = []
    rating_rows = [(name, parts) for name, parts in rows if "rmse" in parts["test"]]
    if rating_rows:
        lines.append(f"{'':14}{'val RMSE':>10}{'val MAE':>9}{'test RMSE':>11}{'test MAE':>10}{'notebook loss':>15}")
        for name, parts in rating_rows:
            v, t = parts["val"], parts["test"]
            lines.append(
                f"{name:14}{v['rmse']:>10.4f}{v['mae']:>9.4f}{t['rmse']:>11.4f}{t['mae']:>10.4f}"
                f"{t['notebook_loss']:>15.4f}"
            )
        lines.append("(RMSE/MAE in stars, predictions clipped to the rating scale; notebook loss = test MSE / 5)\n")
    users = metrics["model"]["test"].get("users")
    if users == 0:  # every ranking mean is undefined (NaN): say why instead of a table of them
        lines.append("test " + nothing_to_rank(k, "test user has a relevant rating (at or above the threshold)"))
        return "\n".join(lines)
    lines.append(f"{f'test top-{k}':14}" + "".join(f"{c.split('@')[0]:>10}" for c in columns))
    for name, parts in rows:
        t = parts["test"]
        if columns[0] in t:
            lines.append(f"{name:14}" + "".join(f"{t[c]:>10.4f}" for c in columns))
    lines.append(
        f"(relevant = test ratings >= the threshold; candidates = train items the user did not rate; {users} users)"
    )
    return "\n".join(lines)
