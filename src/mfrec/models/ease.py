"""EASE: a closed-form item-item model (Steck 2019, "Embarrassingly shallow autoencoders")."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from mfrec.errors import ConfigError
from mfrec.models.base import Model, ModelConfig
from mfrec.options import option
from mfrec.training.trainer import BaseTrainer, EpochRecord, TrainingData


@dataclass(frozen=True)
class EASEConfig(ModelConfig):
    """Hyperparameters of :class:`EASE` (the ``ease`` preset's values)."""

    regularization: float = option(300.0, "L2 weight lambda on the item-item weights", check="nonneg", probe=5.0)
    max_items: int = option(20_000, "refuse more trained items than this: the model is a dense items x items matrix",
                            check="positive_int", probe="limit")  # fmt: skip


class EASE(Model):
    r"""Item-item ridge regression with a zero diagonal, solved in closed form.

    With :math:`X` the binary user-item matrix of the training interactions,

    .. math::  B = \arg\min_B \lVert X - XB\rVert_F^2 + \lambda \lVert B\rVert_F^2
               \quad\text{s.t. } \operatorname{diag}(B) = 0,

    whose solution is :math:`P = (X^\top X + \lambda I)^{-1}`,
    :math:`B = I - P\,\operatorname{diag}(1/\operatorname{diag} P)` (so
    :math:`B_{ij} = -P_{ij} / P_{jj}`, :math:`B_{jj} = 0`). A user with history
    :math:`x` scores :math:`x B`: a new user's fold-in is free, and
    :meth:`similarity` reads item :math:`i`'s row of :math:`B`. Only items with
    training data take part; the matrix is dense, so its memory is
    :math:`4 n^2` bytes per copy for :math:`n` trained items (``max_items`` bounds it).
    """

    def __init__(self, n_users: int, n_items: int) -> None:
        super().__init__(n_users, n_items)
        self.register_buffer("weights", torch.zeros(0, 0))  # B over the trained items, (m, m)
        self.register_buffer("trained", torch.zeros(0, dtype=torch.long))  # item index of each row of B
        self.register_buffer("history_indptr", torch.zeros(n_users + 1, dtype=torch.long))
        self.register_buffer("history_items", torch.zeros(0, dtype=torch.long))

    @classmethod
    def from_config(cls, n_users, n_items, config, *, generator=None, distributed=False) -> EASE:
        return cls(n_users, n_items)

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        for name in ("weights", "trained", "history_items"):  # their sizes come with the data
            if name in state_dict:
                self._buffers[name] = torch.empty_like(state_dict[name], device=self.global_mean.device)
        return super().load_state_dict(state_dict, strict=strict, assign=assign)

    @property
    def stored_width(self) -> int:
        return int(self.weights.shape[0])

    @torch.no_grad()
    def solve(self, users: torch.Tensor, items: torch.Tensor, config: EASEConfig) -> None:
        """Fit :math:`B` to the (user, item) pairs, after checking that the dense matrices fit ``max_items``."""
        trained = torch.unique(items)
        m = len(trained)
        if m > config.max_items:
            need = 3 * 4 * m * m / 2**30
            raise ConfigError(
                f"EASE needs a dense {m:,} x {m:,} item matrix (about {need:.1f} GiB for its three copies); "
                f"max_items is {config.max_items:,}: raise it if that memory is there, or filter rare items"
            )
        order = torch.argsort(users * self.n_items + items)
        users, items = users[order], items[order]
        self.trained = trained
        self.history_indptr = torch.cat([users.new_zeros(1), torch.bincount(users, minlength=self.n_users).cumsum(0)])
        self.history_items = items
        gram = torch.zeros(m, m, device=items.device)
        step = max(1, (1 << 25) // max(m, 1))  # users per slice: no users x items matrix is ever whole
        for first in range(0, self.n_users, step):
            x = self.represent(torch.arange(first, min(first + step, self.n_users), device=items.device))[0]
            gram.addmm_(x.T, x)
        gram.diagonal().add_(config.regularization)
        p = torch.cholesky_inverse(torch.linalg.cholesky(gram.double())).float()
        b = p / (-p.diagonal())[None, :]
        b.diagonal().zero_()
        self.weights = b.contiguous()  # row-major, as a loaded model has it: the same products, bit for bit

    def _positions(self, device) -> torch.Tensor:
        """Each item's row of :math:`B`, ``-1`` for items without training data, ``(n_items,)``."""
        position = torch.full((self.n_items,), -1, dtype=torch.long, device=device)
        position[self.trained] = torch.arange(len(self.trained), device=device)
        return position

    def _rows(self, items: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
        """Dense binary histories over the trained items, ``(n_rows, m)``."""
        x = torch.zeros(n_rows, len(self.trained), device=items.device)
        col = self._positions(items.device)[items]
        keep = col >= 0
        x[rows[keep], col[keep]] = 1.0
        return x

    def represent(self, users: torch.Tensor) -> tuple[torch.Tensor, ...]:
        starts, stops = self.history_indptr[users], self.history_indptr[users + 1]
        counts = stops - starts
        device = users.device
        rows = torch.repeat_interleave(torch.arange(len(users), device=device), counts)
        offsets = torch.arange(int(counts.sum()), device=device) - torch.repeat_interleave(counts.cumsum(0) - counts,
                                                                                           counts)
        return (self._rows(self.history_items[torch.repeat_interleave(starts, counts) + offsets], rows, len(users)),)

    def fold_in(self, items: torch.Tensor, values: torch.Tensor, config) -> tuple[torch.Tensor, ...]:
        return (self._rows(items, torch.zeros_like(items), 1),)

    def explain(self, items: torch.Tensor, values: torch.Tensor, config,
                targets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # fmt: skip
        r"""EASE's score is :math:`s_t = \sum_h x_h B_{ht}` with :math:`x` the binary history: item :math:`h`
        adds :math:`B_{ht}` (an item given twice counts once), the base is 0."""
        position = self._positions(self.weights.device)
        hist, cols = position[items], position[targets]
        first = torch.zeros(len(items), dtype=torch.bool)
        first[np.unique(hist.cpu().numpy(), return_index=True)[1]] = True
        weights = self.weights.double()[hist.clamp(min=0)][:, cols.clamp(min=0)].T  # (T, H): B[h, t]
        keep = (hist >= 0) & first
        contributions = weights * keep[None, :] * (cols >= 0)[:, None]
        return torch.zeros(len(targets), dtype=torch.float64), contributions

    def score(self, history: torch.Tensor) -> torch.Tensor:
        out = torch.zeros(len(history), self.n_items, device=history.device)
        out[:, self.trained] = history @ self.weights
        return out

    def item_factors(self) -> torch.Tensor:
        out = torch.zeros(self.n_items, len(self.trained), device=self.weights.device)
        out[self.trained] = self.weights
        return out

    def similarity(self, items: torch.Tensor) -> torch.Tensor:
        """Item ``i``'s row of :math:`B` (how much it predicts each item), scaled into [-1, 1]."""
        position = self._positions(self.weights.device)[items]
        rows = self.weights[position.clamp(min=0)].double() * (position >= 0)[:, None]  # B[i, :], trained items
        sims = torch.zeros(len(items), self.n_items, dtype=torch.float64, device=rows.device)
        sims[:, self.trained] = rows
        return sims / sims.abs().amax(1, keepdim=True).clamp_min(1e-30)


class EASETrainer(BaseTrainer):
    """The closed form as a one-epoch trainer of the single training loop."""

    epochs = 1

    def __init__(self, module: EASE, config: EASEConfig, data: TrainingData, generator=None, options=None) -> None:
        self.module, self.config, self.data = module, config, data

    def epoch(self, epoch: int) -> EpochRecord:
        users, items, _ = self.data.train
        self.module.solve(users, items, self.config)
        return EpochRecord(epoch, val_ndcg=self.data.validate() if self.data.validate else None)
