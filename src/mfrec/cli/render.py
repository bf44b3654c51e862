"""Tables the commands print."""

from __future__ import annotations

RANKING_COLUMNS = ("ndcg@10", "recall@10", "precision@10", "map@10", "hit_rate@10", "mrr@10", "coverage")


def metrics_table(metrics: dict) -> str:
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
    lines.append(f"{'test top-10':14}" + "".join(f"{c.split('@')[0]:>10}" for c in RANKING_COLUMNS))
    for name, parts in rows:
        t = parts["test"]
        if "ndcg@10" in t:
            lines.append(f"{name:14}" + "".join(f"{t[c]:>10.4f}" for c in RANKING_COLUMNS))
    users = metrics["model"]["test"].get("users")
    lines.append(
        f"(relevant = test ratings >= the threshold; candidates = train items the user did not rate; {users} users)"
    )
    return "\n".join(lines)
