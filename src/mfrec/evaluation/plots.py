"""Loss-curve plot of a training history."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mfrec.training.trainer import EpochRecord


def plot_history(
    history: Sequence[EpochRecord], path: str | Path, *, title: str = "", best_epoch: int | None = None
) -> Path:
    """Write train and validation RMSE (stars) per epoch to a PNG at ``path``.

    Ranking models have no RMSE: their plot shows validation NDCG@10 per epoch.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global figure state

    epochs = [r.epoch for r in history]
    fig = Figure(figsize=(7, 4.2), dpi=110)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    rating = any(r.train_rmse is not None for r in history)
    if rating:
        ax.plot(epochs, [r.train_rmse for r in history], label="train (during epoch)", color="#1f77b4")
        if any(r.val_rmse is not None for r in history):
            ax.plot(epochs, [r.val_rmse for r in history], label="validation", color="#d62728")
        ax.set_ylabel("RMSE (stars)")
    elif any(r.val_ndcg is not None for r in history):
        ax.plot(epochs, [r.val_ndcg for r in history], label="validation NDCG@10", color="#d62728")
        ax.set_ylabel("NDCG@10")
    else:
        ax.plot(epochs, [r.train_loss or 0.0 for r in history], label="train loss", color="#1f77b4")
        ax.set_ylabel("loss")
    if best_epoch:
        ax.axvline(best_epoch, color="grey", linestyle=":", label=f"kept epoch {best_epoch}")
    ax.set_xlabel("epoch")
    ax.set_title(title or "Training curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    return path
