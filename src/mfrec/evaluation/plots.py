"""Loss-curve plot of a training history; figures are matplotlib ``Figure`` objects (no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from mfrec.training.trainer import EpochRecord


def new_figure(width: float = 7, height: float = 4.2):
    """A matplotlib ``Figure`` with an Agg canvas (no pyplot: no global figure state)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def png_bytes(fig) -> bytes:
    """The figure as PNG bytes, without the metadata that would differ between matplotlib versions."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def plot_history(
    history: Sequence[EpochRecord], path: str | Path, *, title: str = "", best_epoch: int | None = None
) -> Path:
    """Write train and validation RMSE (stars) per epoch to a PNG at ``path``.

    Ranking models have no RMSE: their plot shows validation NDCG@10 per epoch.
    """
    path = Path(path)
    history_figure(history, title=title, best_epoch=best_epoch).savefig(path, metadata={"Software": None})
    return path


def history_figure(history: Sequence[EpochRecord], *, title: str = "", best_epoch: int | None = None):
    """The figure :func:`plot_history` writes."""
    epochs = [r.epoch for r in history]
    fig = new_figure()
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
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("epoch")
    ax.set_title(title or "Training curve")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig
