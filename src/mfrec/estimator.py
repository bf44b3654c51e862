"""The fitted-model object users hold: fit, predict, evaluate, recommend, save/load.

``MatrixFactorization`` owns training (an ``nn.Module`` from :mod:`mfrec.models`
holds only the math) and the mapping between raw ids and indices. Fitted
state ends in ``_``. One class serves the rating models (``dot``, ``biased``)
and the ranking models (``implicit_als``, ``bpr``); rating-only methods
(:meth:`predict`, :meth:`evaluate`) refuse ranking models with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mfrec.config import MODEL_PRESETS, TrainConfig, preset
from mfrec.data.csr import csr_order, csr_pairs
from mfrec.data.idmap import IdMap
from mfrec.data.ratings import Ratings
from mfrec.errors import ConfigError, DataError, MfrecError, UnknownIdError
from mfrec.evaluation.metrics import rating_metrics
from mfrec.evaluation.ranking import evaluate_ranking
from mfrec.models import MODELS, FactorModel
from mfrec.recommend import Recommendations, masked_topk
from mfrec.training.loop import EpochRecord, fit_als, fit_bpr, fit_module, resolve_device

MAX_N = 100_000
SCORE_CHUNK = 1024


class NotFittedError(MfrecError, RuntimeError):
    """The model has not been fitted or loaded yet."""


class MatrixFactorization:
    """A matrix-factorization model for rating prediction or top-N ranking.

    Example::

        model = MatrixFactorization.from_preset("default").fit(split.train, val=split.val)
        model.evaluate(split.test)                      # {'rmse': ..., 'mae': ...}
        model.evaluate_ranking(split.test, train=split.train)   # NDCG@10, ...
        model.recommend([1, 2], n=10).to_frame()        # user, rank, item, score, title
    """

    def __init__(self, config: TrainConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = preset(MODEL_PRESETS.get(overrides.get("model", "biased"), "default"))
        self.config = config.replace(**overrides) if overrides else config

    @classmethod
    def from_preset(cls, name: str = "default", **overrides: Any) -> MatrixFactorization:
        return cls(preset(name), **overrides)

    @property
    def predicts_ratings(self) -> bool:
        return self.config.predicts_ratings

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        train: Ratings,
        val: Ratings | None = None,
        *,
        progress: bool = False,
        on_epoch: Callable[[EpochRecord], None] | None = None,
        checkpoint: str | Path | None = None,
    ) -> MatrixFactorization:
        """Train on ``train``; with ``val``, early-stop on its RMSE (NDCG@10 for ranking models).

        ``train`` and ``val`` must share id maps (parts of one :class:`~mfrec.data.Split`).
        With ``checkpoint`` (a file path), the training state is written there
        after every epoch, atomically, and an existing checkpoint is resumed:
        the result is the same as an uninterrupted fit. Returns ``self``.
        """
        config = self.config
        if len(train) == 0:
            raise ConfigError("cannot fit on zero training ratings")
        if val is not None and (val.user_map != train.user_map or val.item_map != train.item_map):
            raise ConfigError("train and val must come from one dataset (the same id maps)")
        check_trainable(train)
        if (
            config.predicts_ratings
            and train.kind == "explicit"
            and len(train)
            and train.ratings.min() == train.ratings.max()
        ):
            raise DataError(
                f"{train.name}: all {len(train):,} training ratings are {float(train.ratings[0]):g}, so a rating model "
                "has nothing to learn; use --model implicit_als for interactions"
            )
        if config.predicts_ratings and train.kind == "implicit":
            raise ConfigError(
                f"the {config.model!r} model predicts ratings, and these interactions have none; "
                "use --model implicit_als or bpr"
            )
        if config.threads and config.engine == "torch":  # the compiled engine's threads are its own
            torch.set_num_threads(config.threads)
        device = resolve_device("cpu" if config.engine == "compiled" and config.device == "auto" else config.device)
        from mfrec.training import distributed

        group = distributed.current()
        if group is not None:
            distributed.check_supported(config)
            if device.type == "cuda":
                device = torch.device("cuda", group.local_rank)
            checkpoint = None  # each rank's shuffle state differs: a resume runs in one process
        generator = torch.Generator().manual_seed(config.seed)
        module = self._build(train.n_users, train.n_items, generator, distributed=group is not None)
        train_t = self._tensors(train, device)
        module.to(device)
        module.mark_known(*train_t)
        has_val = val is not None and len(val) > 0
        val_t = self._tensors(val, device) if has_val else None
        saver = None
        if checkpoint is not None:
            from mfrec.training.checkpoint import Checkpoint

            saver = Checkpoint(checkpoint)
        if config.engine == "compiled":
            from mfrec.training.compiled import fit_compiled

            history, kept = fit_compiled(
                module, train_t, val_t, config,
                scale=train.scale, generator=generator, progress=progress, on_epoch=on_epoch, checkpoint=saver,
            )  # fmt: skip
        elif config.model == "als":
            from mfrec.training.loop import fit_explicit_als

            history, kept = fit_explicit_als(
                module, train_t, val_t, config,
                scale=train.scale, progress=progress, on_epoch=on_epoch, checkpoint=saver,
            )  # fmt: skip
        elif config.model == "bayesian":
            from mfrec.training.gibbs import fit_gibbs

            history, kept = fit_gibbs(
                module, train_t, val_t, config,
                scale=train.scale, generator=generator, progress=progress, on_epoch=on_epoch,
            )  # fmt: skip
        elif config.predicts_ratings:
            history, kept = fit_module(
                module, train_t, val_t, config,
                scale=train.scale, generator=generator, progress=progress, on_epoch=on_epoch, checkpoint=saver,
            )  # fmt: skip
        else:
            validate = None
            if has_val:

                def score_on_device(users: torch.Tensor) -> torch.Tensor:  # the metric code indexes on the CPU
                    return module.score_users(users.to(device))

                def validate() -> float:
                    return evaluate_ranking(score_on_device, train, val, k=10, threshold=val.relevance_threshold,
                                            sample_users=20_000)["ndcg"]  # fmt: skip

            if config.model == "implicit_als":
                history, kept = fit_als(module, train_t, config, validate=validate, progress=progress,
                                        on_epoch=on_epoch, checkpoint=saver)  # fmt: skip
            else:
                history, kept = fit_bpr(module, train_t, config, generator=generator, validate=validate,
                                        progress=progress, on_epoch=on_epoch, checkpoint=saver)  # fmt: skip
        module.zero_unknown_rows()
        self.module_ = module.cpu().eval()
        self.history_ = history
        self.best_epoch_ = kept
        self.user_map_ = train.user_map
        self.item_map_ = train.item_map
        self.scale_ = train.scale
        self.titles_ = train.titles
        self.dataset_ = train.name
        self.data_kind_ = train.kind
        self.set_seen(train)
        return self

    def _build(
        self, n_users: int, n_items: int, generator: torch.Generator | None, *, distributed: bool = False
    ) -> FactorModel:
        c = self.config
        kwargs: dict[str, Any] = {
            "init_std": c.init_std,
            "sparse": c.optimizer in ("sgd", "sparse_adam", "adagrad"),
            "generator": generator,
        }
        if distributed and c.model == "biased":
            kwargs["sparse_bias"] = False
        if c.model == "dot":
            kwargs["notebook_einsum"] = c.notebook_einsum
        if c.model == "bayesian":
            kwargs["samples"] = c.samples
            kwargs["posterior_rank"] = c.posterior_rank
        return MODELS[c.model](n_users, n_items, c.embedding_dim, **kwargs)

    def _tensors(self, ratings: Ratings, device: torch.device) -> tuple[torch.Tensor, ...]:
        divisor = self.config.rating_divisor if self.predicts_ratings else 1.0
        return (
            torch.as_tensor(ratings.users, dtype=torch.long, device=device),
            torch.as_tensor(ratings.items, dtype=torch.long, device=device),
            torch.as_tensor(ratings.ratings / divisor, dtype=torch.float32, device=device),
        )

    def _check_fitted(self) -> None:
        if not hasattr(self, "module_"):
            raise NotFittedError("this model is not fitted yet: call fit() or MatrixFactorization.load()")

    def _check_rating_model(self, what: str) -> None:
        self._check_fitted()
        if not self.predicts_ratings:
            raise ConfigError(f"{what} needs a rating model; {self.config.model!r} only ranks items")

    # ------------------------------------------------------------ seen items
    def set_seen(self, ratings: Ratings) -> MatrixFactorization:
        """Remember which items each user rated (excluded by :meth:`recommend`), as CSR arrays."""
        self._check_fitted()
        users = self.user_map_.get_indexer(ratings.user_map.raw(ratings.users))
        items = self.item_map_.get_indexer(ratings.item_map.raw(ratings.items))
        keep = (users >= 0) & (items >= 0)
        users, items, values = users[keep], items[keep], ratings.ratings[keep]
        self.seen_indptr_, order = csr_order(users, items, len(self.user_map_))
        self.seen_items_ = items[order].astype(np.int64)
        self.seen_ratings_ = values[order].astype(np.float32)
        self.item_counts_ = np.bincount(self.seen_items_, minlength=len(self.item_map_))
        return self

    def seen_items(self, user: Any) -> np.ndarray:
        """Raw ids of the items ``user`` rated."""
        self._check_fitted()
        u = self.user_map_.index_one(user)
        return self.item_map_.raw(self.seen_items_[self.seen_indptr_[u] : self.seen_indptr_[u + 1]])

    def user_ratings(self, user: Any, n: int | None = None) -> pd.DataFrame:
        """What ``user`` rated, best first: ``item, rating, title`` (the first ``n`` rows)."""
        self._check_fitted()
        u = self.user_map_.index_one(user)
        span = slice(self.seen_indptr_[u], self.seen_indptr_[u + 1])
        items, values = self.seen_items_[span], self.seen_ratings_[span]
        order = np.argsort(-values, kind="stable")[: None if n is None else _check_n(n)]
        return pd.DataFrame(
            {"item": self.item_map_.raw(items[order]), "rating": values[order], "title": self._titles(items[order])}
        )

    # ------------------------------------------------------------- predict
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
        self._check_rating_model("predicting ratings")
        out = []
        width = self.module_.item_factors().shape[1]
        chunk = max(1024, (1 << 24) // max(width, 1))  # gathers of at most 2^24 numbers (64 MB) per side
        with torch.no_grad():
            for start in range(0, len(users), chunk):
                u = torch.as_tensor(np.asarray(users[start : start + chunk]), dtype=torch.long)
                i = torch.as_tensor(np.asarray(items[start : start + chunk]), dtype=torch.long)
                out.append(self.module_(u, i).double().numpy() * self.config.rating_divisor)
        pred = np.concatenate(out) if out else np.empty(0)
        return np.clip(pred, *self.scale_) if clip else pred

    def predict(self, users: Any, items: Any, *, unknown: str = "fallback") -> np.ndarray:
        """Predicted ratings (stars, clipped to the scale) for raw (user, item) pairs.

        ``unknown="fallback"`` predicts unknown ids from what was learned (biases,
        global mean); ``unknown="error"`` raises :class:`UnknownIdError` instead.
        """
        self._check_rating_model("predicting ratings")
        users = np.atleast_1d(np.asarray(users))
        items = np.atleast_1d(np.asarray(items))
        if len(users) != len(items):
            raise ConfigError(f"users and items differ in length ({len(users)} vs {len(items)})")
        if unknown == "error":
            u, i = self.user_map_.index(users), self.item_map_.index(items)
        else:
            u, i = self.user_map_.get_indexer(users), self.item_map_.get_indexer(items)
        return self.predict_indices(u, i)

    def _indices_of(self, ratings: Ratings) -> tuple[np.ndarray, np.ndarray]:
        if ratings.user_map is self.user_map_ and ratings.item_map is self.item_map_:
            return ratings.users, ratings.items
        return (
            self.user_map_.get_indexer(ratings.user_map.raw(ratings.users)),
            self.item_map_.get_indexer(ratings.item_map.raw(ratings.items)),
        )

    def evaluate(self, ratings: Ratings) -> dict[str, float]:
        """RMSE/MAE in stars (clipped), the notebook loss, and cold-start counts on ``ratings``."""
        self._check_rating_model("RMSE")
        u, i = self._indices_of(ratings)
        pred = self.predict_indices(u, i, clip=False)
        metrics = rating_metrics(pred, ratings.ratings, self.scale_)
        known_u = np.where(u >= 0, self.module_.user_known.numpy()[np.maximum(u, 0)], False)
        known_i = np.where(i >= 0, self.module_.item_known.numpy()[np.maximum(i, 0)], False)
        metrics["unseen_user"] = int((~known_u).sum())
        metrics["unseen_item"] = int((~known_i).sum())
        return metrics

    def evaluate_ranking(
        self,
        test: Ratings,
        *,
        train: Ratings | None = None,
        k: int = 10,
        threshold: float | None = None,
        exclude: Ratings | None = None,
        chunk_size: int = SCORE_CHUNK,
        sample_users: int | None = None,
        seed: int = 0,
    ) -> dict[str, float]:
        """Ranking metrics at ``k`` (see :mod:`mfrec.evaluation.ranking`) on ``test``.

        ``sample_users`` evaluates a uniform sample of that many test users (``seed``).

        Candidates are the items with training data minus each user's ``train``
        items (default: the items remembered by :meth:`set_seen`, which after
        :meth:`fit` are the training items). ``exclude`` (e.g. validation) is
        also removed. ``threshold`` defaults to the test data's relevance threshold.
        """
        self._check_fitted()
        if train is None:
            users = np.repeat(np.arange(len(self.user_map_)), np.diff(self.seen_indptr_))
            train = Ratings(users, self.seen_items_, np.ones(len(users), np.float32), self.user_map_, self.item_map_)
        train = _remap(train, self.user_map_, self.item_map_)
        test = _remap(test, self.user_map_, self.item_map_)
        exclude = None if exclude is None else _remap(exclude, self.user_map_, self.item_map_)
        known = self.module_.item_known
        candidates_train = train.subset(np.flatnonzero(known.numpy()[train.items]))
        result = evaluate_ranking(
            self.module_.score_users, candidates_train, test, k=k,
            threshold=test.relevance_threshold if threshold is None else threshold,
            exclude=exclude, chunk_size=chunk_size, sample_users=sample_users, seed=seed,
        )  # fmt: skip
        return result

    # ----------------------------------------------------------- recommend
    def recommend(
        self,
        users: Any,
        n: int = 10,
        *,
        exclude_seen: bool = True,
        items: Any = None,
        exclude: Any = None,
        chunk_size: int = SCORE_CHUNK,
    ) -> Recommendations:
        """Top-``n`` items for one or more raw user ids, batch-first.

        Scores every item at once per chunk of users (``U[users] @ V.T``), masks
        items without training data, each user's rated items (``exclude_seen``),
        everything outside ``items`` (a raw-id whitelist) and the raw ids in
        ``exclude``, then takes ``topk``. Scores are stars for rating models.
        """
        self._check_fitted()
        n = _check_n(n)
        idx = self.user_map_.index(np.atleast_1d(np.asarray(users, dtype=object)))
        base_mask = self._item_mask(items, exclude)
        items_out, scores_out = [], []
        for start in range(0, len(idx), chunk_size):
            chunk = torch.as_tensor(idx[start : start + chunk_size], dtype=torch.long)
            with torch.no_grad():
                scores = self._scale(self.module_.score_users(chunk))
            scores[:, base_mask] = -torch.inf
            if exclude_seen:
                rows, cols = csr_pairs(self.seen_indptr_, self.seen_items_, chunk.numpy())
                scores[rows, cols] = -torch.inf
            pos, top = masked_topk(scores, n)
            items_out.append(pos)
            scores_out.append(top)
        return self._package(self.user_map_.raw(idx), np.concatenate(items_out), np.concatenate(scores_out))

    def _scale(self, scores: torch.Tensor) -> torch.Tensor:
        return scores * self.config.rating_divisor if self.predicts_ratings else scores

    def _item_mask(self, items: Any, exclude: Any) -> torch.Tensor:
        """True for items that must never be recommended: untrained, outside ``items``, in ``exclude``."""
        mask = ~self.module_.item_known
        if items is not None:
            allowed = torch.zeros_like(mask)
            allowed[torch.as_tensor(self.item_map_.index(np.atleast_1d(np.asarray(items, dtype=object))))] = True
            mask |= ~allowed
        if exclude is not None:
            mask[torch.as_tensor(self.item_map_.index(np.atleast_1d(np.asarray(exclude, dtype=object))))] = True
        return mask

    def _package(self, users: np.ndarray, positions: np.ndarray, scores: np.ndarray) -> Recommendations:
        return Recommendations(users, self.item_map_.raw(positions), scores, self._titles(positions))

    # ---------------------------------------------------------- new users
    def fold_in(self, ratings: Mapping[Any, float]) -> tuple[float, np.ndarray]:
        """A new user's bias and factors from ``{raw item id: rating}``, without retraining.

        Rating models: one regularized least-squares solve against the fixed item
        factors and biases, with the training regularization
        (:meth:`mfrec.models.base.RatingModel.fold_in`). Ranking models: the
        implicit-ALS user solve (:func:`mfrec.models.base.implicit_fold_in`);
        values are ratings or counts (used as confidence weights). Items without
        training data carry no information and are skipped.
        """
        self._check_fitted()
        if self.config.notebook_einsum:
            raise ConfigError("fold-in needs a true dot product; this model reproduces the notebook's einsum")
        if not ratings:
            raise ConfigError("fold-in needs at least one (item, rating) pair")
        raw_items = [self.item_map_.coerce(item) for item in ratings]
        values = np.array(list(ratings.values()), dtype=np.float64)
        low, high = self.scale_
        if self.data_kind_ == "implicit":
            low, high = 0.0, np.inf
        bad = np.flatnonzero(~np.isfinite(values) | (values < low) | (values > high))
        if len(bad):
            raise ConfigError(f"rating {values[bad[0]]:g} for item {raw_items[bad[0]]} is outside [{low:g}, {high:g}]")
        items = torch.as_tensor(self.item_map_.index(np.array(raw_items, dtype=object)), dtype=torch.long)
        known = self.module_.item_known[items]
        if not bool(known.any()):
            raise ConfigError("none of these items had training data, so there is nothing to fold in")
        divisor = self.config.rating_divisor if self.predicts_ratings else 1.0
        targets = torch.as_tensor(values / divisor, dtype=torch.float32)[known]
        with torch.no_grad():
            bias, factors = self.module_.fold_in(items[known], targets, self.config)
        return float(bias), factors.numpy()

    def recommend_for_ratings(self, ratings: Mapping[Any, float], n: int = 10) -> Recommendations:
        """Top-``n`` items for a new user given ``{raw item id: rating}`` (fold-in), excluding those items."""
        n = _check_n(n)
        bias, factors = self.fold_in(ratings)
        with torch.no_grad():
            scores = self._scale(self.module_.score_vector(torch.tensor(bias), torch.from_numpy(factors)).double())
        rated = self.item_map_.index(np.array([self.item_map_.coerce(i) for i in ratings], dtype=object))
        mask = self._item_mask(None, None)
        mask[torch.as_tensor(rated, dtype=torch.long)] = True
        scores[mask] = -torch.inf
        pos, top = masked_topk(scores[None, :], n)
        return self._package(np.array([None], dtype=object), pos, top)

    # ------------------------------------------------------------ similar
    def similar_items(self, items: Any, n: int = 10, *, shrinkage: float = 20.0) -> Recommendations:
        r"""The ``n`` items nearest to each of ``items`` in embedding space, batch-first.

        Similarity is the cosine of item factors weighted by support,
        :math:`\cos(q_i, q_j)\, n_j / (n_j + s)` with :math:`n_j` the ratings of
        item ``j`` and :math:`s` = ``shrinkage``: rarely rated items have noisy
        factor directions, and without the weight they crowd the top
        (``shrinkage=0`` gives the plain cosine). Returns
        :class:`~mfrec.recommend.Recommendations` whose ``users`` are the query
        items and whose ``scores`` lie in [-1, 1].
        Items without training data (untrained factors) are never returned, and
        asking about one raises :class:`UnknownIdError`.
        """
        self._check_fitted()
        n = _check_n(n)
        queries = np.atleast_1d(np.asarray(items, dtype=object))
        index = self.item_map_.index(queries)
        untrained = ~self.module_.item_known[torch.as_tensor(index)]
        if bool(untrained.any()):
            bad = queries[int(torch.nonzero(untrained)[0])]
            raise UnknownIdError(f"item {bad} has no training ratings, so it has no learned factors")
        with torch.no_grad():
            factors = torch.nn.functional.normalize(self.module_.item_factors().double(), dim=1)
            sims = factors[torch.as_tensor(index)] @ factors.T
        if shrinkage < 0:
            raise ConfigError(f"shrinkage must be >= 0, not {shrinkage}")
        if shrinkage:
            counts = torch.as_tensor(self.item_counts_, dtype=torch.float64)
            sims = sims * counts / (counts + shrinkage)
        sims[:, ~self.module_.item_known] = -torch.inf
        sims[torch.arange(len(index)), torch.as_tensor(index)] = -torch.inf
        pos, top = masked_topk(sims, n)
        return self._package(self.item_map_.raw(index), pos, top)

    def _titles(self, indices: np.ndarray) -> np.ndarray:
        if self.titles_ is None:
            return np.full(np.shape(indices), None, dtype=object)
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
        module: FactorModel,
        user_map: IdMap,
        item_map: IdMap,
        scale: tuple[float, float],
        titles: np.ndarray | None,
        seen: tuple[np.ndarray, np.ndarray, np.ndarray],
        meta: dict,
    ) -> None:
        module.zero_unknown_rows()
        self.module_ = module.eval()
        self.user_map_, self.item_map_ = user_map, item_map
        self.scale_ = scale
        self.titles_ = titles
        self.seen_indptr_, self.seen_items_, self.seen_ratings_ = seen
        self.item_counts_ = np.bincount(self.seen_items_, minlength=len(item_map))
        self.dataset_ = meta.get("dataset", "")
        self.data_kind_ = meta.get("data_kind", "explicit")
        self.history_ = [EpochRecord(**{"seconds": 0.0, **r}) for r in meta.get("history", [])]
        self.best_epoch_ = meta.get("best_epoch", 0)
        self.metrics_ = meta.get("metrics") or {}


def check_trainable(data: Ratings) -> None:
    """Refuse data with fewer than two users or two items: there is nothing to factorize."""
    users, items = np.unique(data.users).size, np.unique(data.items).size
    if users < 2 or items < 2:
        raise DataError(
            f"{data.name}: {users} user(s) and {items} item(s); matrix factorization needs at least two of each"
        )


def _remap(ratings: Ratings, user_map: IdMap, item_map: IdMap) -> Ratings:
    """``ratings`` expressed in the given id maps; pairs with ids they lack are dropped."""
    if ratings.user_map is user_map and ratings.item_map is item_map:
        return ratings
    u = user_map.get_indexer(ratings.user_map.raw(ratings.users))
    i = item_map.get_indexer(ratings.item_map.raw(ratings.items))
    keep = (u >= 0) & (i >= 0)
    return Ratings(
        u[keep], i[keep], ratings.ratings[keep], user_map, item_map, ratings.scale,
        None if ratings.timestamps is None else ratings.timestamps[keep], None, ratings.name, {}, ratings.kind,
    )  # fmt: skip


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise ConfigError(f"n must be an integer from 1 to {MAX_N}, not {n!r}")
    return int(n)
