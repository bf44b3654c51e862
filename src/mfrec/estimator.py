"""The fitted-model object users hold: fit, predict, evaluate, recommend, save/load.

``MatrixFactorization`` owns training (an ``nn.Module`` from :mod:`mfrec.models`
holds only the math) and the mapping between raw ids and indices. Fitted
state ends in ``_``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mfrec.config import TrainConfig, preset
from mfrec.data.csr import build_csr, csr_pairs
from mfrec.data.idmap import IdMap
from mfrec.data.ratings import Ratings
from mfrec.errors import ConfigError, MfrecError, UnknownIdError
from mfrec.evaluation.metrics import rating_metrics
from mfrec.models import MODELS, RatingModel
from mfrec.training.loop import EpochRecord, fit_module, resolve_device

MAX_N = 100_000
SCORE_CHUNK = 1024


class NotFittedError(MfrecError, RuntimeError):
    """The model has not been fitted or loaded yet."""


class MatrixFactorization:
    """A matrix-factorization rating model.

    Example::

        model = MatrixFactorization.from_preset("default").fit(split.train, val=split.val)
        model.evaluate(split.test)        # {'rmse': ..., 'mae': ...}
        model.recommend(1, n=10)          # DataFrame: user, rank, item, score, title
    """

    def __init__(self, config: TrainConfig | None = None, **overrides: Any) -> None:
        config = config or TrainConfig()
        self.config = config.replace(**overrides) if overrides else config

    @classmethod
    def from_preset(cls, name: str = "default", **overrides: Any) -> MatrixFactorization:
        return cls(preset(name), **overrides)

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Ratings,
        val: Ratings | None = None,
        *,
        progress: bool = False,
        on_epoch: Callable[[EpochRecord], None] | None = None,
    ) -> MatrixFactorization:
        """Train on ``train``; with ``val``, early-stop on its RMSE. Returns ``self``.

        ``train`` and ``val`` must share id maps (parts of one :class:`~mfrec.data.Split`).
        """
        config = self.config
        if len(train) == 0:
            raise ConfigError("cannot fit on zero training ratings")
        if val is not None and (val.user_map != train.user_map or val.item_map != train.item_map):
            raise ConfigError("train and val must come from one dataset (the same id maps)")
        if config.threads:
            torch.set_num_threads(config.threads)
        device = resolve_device(config.device)
        generator = torch.Generator().manual_seed(config.seed)
        module = self._build(train.n_users, train.n_items, generator)
        train_t = self._tensors(train, device)
        module.to(device)
        module.mark_known(*train_t)
        val_t = self._tensors(val, device) if val is not None and len(val) else None
        history, best_epoch = fit_module(
            module,
            train_t,
            val_t,
            config,
            scale=train.scale,
            generator=generator,
            progress=progress,
            on_epoch=on_epoch,
        )
        self.module_ = module.cpu()
        self.history_ = history
        self.best_epoch_ = best_epoch
        self.user_map_ = train.user_map
        self.item_map_ = train.item_map
        self.scale_ = train.scale
        self.titles_ = train.titles
        self.dataset_ = train.name
        self.set_seen(train)
        return self

    def _build(self, n_users: int, n_items: int, generator: torch.Generator | None) -> RatingModel:
        c = self.config
        kwargs: dict[str, Any] = {
            "init_std": c.init_std,
            "sparse": c.optimizer in ("sgd", "sparse_adam", "adagrad"),
            "generator": generator,
        }
        if c.model == "dot":
            kwargs["notebook_einsum"] = c.notebook_einsum
        return MODELS[c.model](n_users, n_items, c.embedding_dim, **kwargs)

    def _tensors(self, ratings: Ratings, device: torch.device) -> tuple[torch.Tensor, ...]:
        return (
            torch.as_tensor(ratings.users, dtype=torch.long, device=device),
            torch.as_tensor(ratings.items, dtype=torch.long, device=device),
            torch.as_tensor(ratings.ratings / self.config.rating_divisor, dtype=torch.float32, device=device),
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError("this model is not fitted yet: call fit() or MatrixFactorization.load()")

    # ------------------------------------------------------------ seen items
    def set_seen(self, ratings: Ratings) -> MatrixFactorization:
        """Remember which items each user rated (excluded by :meth:`recommend`), as CSR arrays."""
        self._check_fitted()
        users = self.user_map_.get_indexer(ratings.user_map.raw(ratings.users))
        items = self.item_map_.get_indexer(ratings.item_map.raw(ratings.items))
        keep = (users >= 0) & (items >= 0)
        self.seen_indptr_, self.seen_items_ = build_csr(users[keep], items[keep], len(self.user_map_))
        return self

    def seen_items(self, user: Any) -> np.ndarray:
        """Raw ids of the items ``user`` rated."""
        self._check_fitted()
        u = self.user_map_.index_one(user)
        return self.item_map_.raw(self.seen_items_[self.seen_indptr_[u] : self.seen_indptr_[u + 1]])

    # ------------------------------------------------------------- predict
    @property
    def known_users(self) -> int:
        self._check_fitted()
        return int(self.module_.user_known.sum())

    def knows_user(self, user: Any) -> bool:
        """True when ``user`` had training ratings."""
        self._check_fitted()
        index = self.user_map_.get_indexer([self.user_map_.coerce(user)])[0]
        return bool(index >= 0 and self.module_.user_known[index])

    def knows_item(self, item: Any) -> bool:
        """True when ``item`` had training ratings."""
        self._check_fitted()
        index = self.item_map_.get_indexer([self.item_map_.coerce(item)])[0]
        return bool(index >= 0 and self.module_.item_known[index])

    def predict_indices(self, users: np.ndarray, items: np.ndarray, *, clip: bool = True) -> np.ndarray:
        """Predicted ratings in stars for index pairs; index ``-1`` means an unknown id."""
        self._check_fitted()
        out = []
        with torch.no_grad():
            for start in range(0, len(users), 1 << 20):
                u = torch.as_tensor(np.asarray(users[start : start + (1 << 20)]), dtype=torch.long)
                i = torch.as_tensor(np.asarray(items[start : start + (1 << 20)]), dtype=torch.long)
                out.append(self.module_(u, i).double().numpy() * self.config.rating_divisor)
        pred = np.concatenate(out) if out else np.empty(0)
        return np.clip(pred, *self.scale_) if clip else pred

    def predict(self, users: Any, items: Any, *, unknown: str = "fallback") -> np.ndarray:
        """Predicted ratings (stars, clipped to the scale) for raw (user, item) pairs.

        ``unknown="fallback"`` predicts unknown ids from what was learned (biases,
        global mean); ``unknown="error"`` raises :class:`UnknownIdError` instead.
        """
        self._check_fitted()
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        if len(users) != len(items):
            raise ConfigError(f"users and items differ in length ({len(users)} vs {len(items)})")
        if unknown == "error":
            u, i = self.user_map_.index(users), self.item_map_.index(items)
        else:
            u, i = self.user_map_.get_indexer(users), self.item_map_.get_indexer(items)
        return self.predict_indices(u, i)

    def evaluate(self, ratings: Ratings) -> dict[str, float]:
        """RMSE/MAE in stars (clipped), the notebook loss, and cold-start counts on ``ratings``."""
        self._check_fitted()
        if ratings.user_map is self.user_map_ and ratings.item_map is self.item_map_:
            u, i = ratings.users, ratings.items
        else:
            u = self.user_map_.get_indexer(ratings.user_map.raw(ratings.users))
            i = self.item_map_.get_indexer(ratings.item_map.raw(ratings.items))
        pred = self.predict_indices(u, i, clip=False)
        metrics = rating_metrics(pred, ratings.ratings, self.scale_)
        known_u = np.where(u >= 0, self.module_.user_known.numpy()[np.maximum(u, 0)], False)
        known_i = np.where(i >= 0, self.module_.item_known.numpy()[np.maximum(i, 0)], False)
        metrics["unseen_user"] = int((~known_u).sum())
        metrics["unseen_item"] = int((~known_i).sum())
        return metrics

    # ----------------------------------------------------------- recommend
    def recommend(
        self, users: Any, n: int = 10, *, exclude_seen: bool = True, chunk_size: int = SCORE_CHUNK
    ) -> pd.DataFrame:
        """Top-``n`` items for one or more raw user ids, by predicted rating.

        Scores every item at once per chunk of users (``U[users] @ V.T``), masks
        the items each user rated (``exclude_seen``) and items without any
        training rating, then takes ``topk``. Returns a DataFrame with columns
        ``user, rank, item, score, title`` (score in stars, unclipped).
        """
        self._check_fitted()
        n = _check_n(n)
        idx = self.user_map_.index(np.atleast_1d(np.asarray(users)))
        frames = []
        untrained = ~self.module_.item_known
        for start in range(0, len(idx), chunk_size):
            chunk = torch.as_tensor(idx[start : start + chunk_size], dtype=torch.long)
            with torch.no_grad():
                scores = self.module_.score_users(chunk).double() * self.config.rating_divisor
            scores[:, untrained] = -torch.inf
            if exclude_seen:
                rows, cols = csr_pairs(self.seen_indptr_, self.seen_items_, chunk.numpy())
                scores[rows, cols] = -torch.inf
            k = min(n, scores.shape[1])
            top, pos = torch.topk(scores, k, dim=1)
            top, pos = top.numpy(), pos.numpy()
            valid = np.isfinite(top)
            user_col = np.repeat(self.user_map_.raw(chunk.numpy()), k).reshape(-1, k)
            ranks = np.tile(np.arange(1, k + 1), (len(chunk), 1))
            frames.append(
                pd.DataFrame(
                    {
                        "user": user_col[valid],
                        "rank": ranks[valid],
                        "item": self.item_map_.raw(pos[valid]),
                        "score": top[valid],
                    }
                )
            )
        frame = pd.concat(frames, ignore_index=True)
        frame["title"] = self._titles(self.item_map_.get_indexer(frame["item"].to_numpy()))
        return frame

    def fold_in(self, ratings: Mapping[Any, float]) -> tuple[float, np.ndarray]:
        """A new user's bias and factors from ``{raw item id: rating in stars}``, without retraining.

        One regularized least-squares solve against the fixed item factors and
        biases, with the regularization the model was trained with (see
        :meth:`mfrec.models.base.RatingModel.fold_in`). Items without training
        ratings carry no information and are skipped.
        """
        self._check_fitted()
        if self.config.notebook_einsum:
            raise ConfigError("fold-in needs a true dot product; this model reproduces the notebook's einsum")
        if not ratings:
            raise ConfigError("fold-in needs at least one (item, rating) pair")
        raw_items = [self.item_map_.coerce(item) for item in ratings]
        values = np.array(list(ratings.values()), dtype=np.float64)
        low, high = self.scale_
        bad = np.flatnonzero(~np.isfinite(values) | (values < low) | (values > high))
        if len(bad):
            raise ConfigError(f"rating {values[bad[0]]:g} for item {raw_items[bad[0]]} is outside [{low:g}, {high:g}]")
        items = torch.as_tensor(self.item_map_.index(np.array(raw_items, dtype=object)), dtype=torch.long)
        known = self.module_.item_known[items]
        if not bool(known.any()):
            raise ConfigError("none of these items had training ratings, so there is nothing to fold in")
        targets = torch.as_tensor(values / self.config.rating_divisor, dtype=torch.float32)[known]
        c = self.config
        with torch.no_grad():
            bias, factors = self.module_.fold_in(items[known], targets, c.regularization, c.bias_regularization)
        return float(bias), factors.numpy()

    def recommend_for_ratings(self, ratings: Mapping[Any, float], n: int = 10) -> pd.DataFrame:
        """Top-``n`` items for a new user given ``{raw item id: rating}`` (fold-in), excluding those items.

        Columns: ``rank, item, score, title`` (score in stars, unclipped).
        """
        n = _check_n(n)
        bias, factors = self.fold_in(ratings)
        with torch.no_grad():
            scores = self.module_.score_vector(torch.tensor(bias), torch.from_numpy(factors)).double()
        scores = scores * self.config.rating_divisor
        scores[~self.module_.item_known] = -torch.inf
        rated = self.item_map_.index(np.array([self.item_map_.coerce(i) for i in ratings], dtype=object))
        scores[torch.as_tensor(rated, dtype=torch.long)] = -torch.inf
        k = min(n, int(torch.isfinite(scores).sum()))
        top, pos = torch.topk(scores, k)
        pos = pos.numpy()
        return pd.DataFrame(
            {
                "rank": np.arange(1, k + 1),
                "item": self.item_map_.raw(pos),
                "score": top.numpy(),
                "title": self._titles(pos),
            }
        )

    def similar_items(self, item: Any, n: int = 10) -> pd.DataFrame:
        """The ``n`` items nearest to ``item`` by cosine similarity of item factors.

        Items without training ratings (untrained factors) are never returned, and
        asking about one raises :class:`UnknownIdError`. Columns: ``rank, item,
        similarity, title``.
        """
        self._check_fitted()
        n = _check_n(n)
        index = self.item_map_.index_one(item)
        if not bool(self.module_.item_known[index]):
            raise UnknownIdError(f"item {item} has no training ratings, so it has no learned factors")
        with torch.no_grad():
            factors = torch.nn.functional.normalize(self.module_.item_factors().double(), dim=1)
            sims = factors @ factors[index]
        sims[~self.module_.item_known] = -torch.inf
        sims[index] = -torch.inf
        return self._top_items(sims, n, "similarity")

    def _top_items(self, scores: torch.Tensor, n: int, column: str) -> pd.DataFrame:
        """The ``n`` best finite entries of a score vector over items, as ``rank, item, <column>, title``."""
        k = min(n, int(torch.isfinite(scores).sum()))
        top, pos = torch.topk(scores, k)
        pos = pos.numpy()
        return pd.DataFrame(
            {
                "rank": np.arange(1, k + 1),
                "item": self.item_map_.raw(pos),
                column: top.numpy(),
                "title": self._titles(pos),
            }
        )

    def _titles(self, indices: np.ndarray) -> np.ndarray:
        if self.titles_ is None:
            return np.full(len(indices), None, dtype=object)
        return self.titles_[indices]

    def title(self, item: Any) -> str | None:
        self._check_fitted()
        index = self.item_map_.get_indexer([self.item_map_.coerce(item)])[0]
        return None if index < 0 else self._titles(np.array([index]))[0]

    # --------------------------------------------------------------- store
    def save(self, path: str | Path, *, metrics: dict | None = None) -> Path:
        """Write the model as one safetensors file (tensors + JSON metadata); see :mod:`mfrec.store`."""
        from mfrec.store import save_model

        self._check_fitted()
        return save_model(self, path, metrics=metrics)

    @classmethod
    def load(cls, path: str | Path) -> MatrixFactorization:
        """Read a model written by :meth:`save`. Never executes code from the file."""
        from mfrec.store import load_model

        return load_model(path)

    def _restore(
        self,
        module: RatingModel,
        user_map: IdMap,
        item_map: IdMap,
        scale: tuple[float, float],
        titles: np.ndarray | None,
        seen: tuple[np.ndarray, np.ndarray],
        meta: dict,
    ) -> None:
        self.module_ = module.eval()
        self.user_map_, self.item_map_ = user_map, item_map
        self.scale_ = scale
        self.titles_ = titles
        self.seen_indptr_, self.seen_items_ = seen
        self.dataset_ = meta.get("dataset", "")
        self.history_ = [EpochRecord(**r) for r in meta.get("history", [])]
        self.best_epoch_ = meta.get("best_epoch", 0)
        self.metrics_ = meta.get("metrics") or {}


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise ConfigError(f"n must be an integer from 1 to {MAX_N}, not {n!r}")
    return int(n)
