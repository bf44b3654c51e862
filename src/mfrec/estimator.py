"""The fitted-model object users hold: fit, predict, evaluate, recommend, save/load.

``MatrixFactorization`` owns training (an ``nn.Module`` from :mod:`mfrec.models`
holds only the math) and the mapping between raw ids and indices. Fitted
state ends in ``_``. One class serves the rating models (``dot``, ``biased``)
and the ranking models (``implicit_als``, ``bpr``); rating-only methods
(:meth:`predict`, :meth:`evaluate`) refuse ranking models with a clear error.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from mfrec.config import TrainConfig, preset, starting_config
from mfrec.data.csr import csr_order, csr_pairs
from mfrec.data.idmap import IdMap, raw_ids
from mfrec.data.items import ItemFilter
from mfrec.data.ratings import Ratings, require_ratings
from mfrec.errors import ConfigError, DataError, MfrecError, UnknownIdError
from mfrec.evaluation.metrics import rating_metrics
from mfrec.evaluation.ranking import RankedUsers, evaluate_ranking, rank_users
from mfrec.fitted import FittedState
from mfrec.models import registry
from mfrec.models.base import Model
from mfrec.options import SIMILARITIES, check_flag
from mfrec.recommend import Because, Recommendations, TopRequest, masked_topk
from mfrec.training.options import thread_limit
from mfrec.training.trainer import EpochRecord, TrainingData, fit, resolve_device

MAX_N = 100_000
SCORE_CHUNK = 1024
DEFAULT_SIMILAR = SIMILARITIES[0]
#: What each kind of :meth:`MatrixFactorization._columns` keeps: its matrix by user, then by item.
_COLUMN_KEYS = {"centred": ("by_user", "by_item"), "ones": ("ones_by_user", "ones_by_item")}
#: The arrays of :meth:`MatrixFactorization.similar_arrays`: item norms of the centred ratings, the
#: pattern by user (item indices, row pointers) and by item (user indices, row pointers), a 1 per
#: rating, and the centred ratings (float32) in the order of each.
SIMILAR_ARRAYS = ("norms", "user_items", "user_indptr", "item_users", "item_indptr", "ones",
                  "centred_by_user", "centred_by_item")  # fmt: skip


def _add_matrices(cache: dict[str, Any], kind: str, by_user: np.ndarray, by_item: np.ndarray) -> None:
    """Put ``kind``'s two sparse matrices into ``cache``, over its shared ``index`` arrays (not copied)."""
    import scipy.sparse as sp

    user_items, user_indptr, item_users, item_indptr = cache["index"]
    shape = (len(user_indptr) - 1, len(item_indptr) - 1)
    user_key, item_key = _COLUMN_KEYS[kind]
    cache[user_key] = sp.csr_matrix((by_user, user_items, user_indptr), shape=shape)
    cache[item_key] = sp.csr_matrix((by_item, item_users, item_indptr), shape=shape[::-1])


class NotFittedError(MfrecError, RuntimeError):
    """The model has not been fitted or loaded yet."""


class MatrixFactorization:
    """A recommender model for rating prediction or top-N ranking: any registered model kind.

    Example::

        model = MatrixFactorization.from_preset("default").fit(split.train, val=split.val)
        model.evaluate(split.test)                      # {'rmse': ..., 'mae': ...}
        model.evaluate_ranking(split.test, train=split.train)   # NDCG@10, ...
        model.recommend([1, 2], n=10).to_frame()        # user, rank, item, stars, title

    ``MatrixFactorization(model="bpr", embedding_dim=32)`` starts from that model's
    defaults; a :class:`~mfrec.config.TrainConfig` can be given instead.
    """

    def __init__(self, config: TrainConfig | None = None, **overrides: Any) -> None:
        if config is None:
            config = starting_config(overrides.get("model", registry.DEFAULT_MODEL))
        self.config = config.replace(**overrides) if overrides else config

    @classmethod
    def from_preset(cls, name: str = "default", **overrides: Any) -> MatrixFactorization:
        return cls(preset(name), **overrides)

    def __repr__(self) -> str:
        described = self.config.spec.describe(self.config.params)
        if not hasattr(self, "module_"):
            return f"MatrixFactorization({described}; not fitted)"
        return f"MatrixFactorization({described}; {'; '.join(f'{key} {value}' for key, value in self._facts()[1:])})"

    def _facts(self) -> list[tuple[str, str]]:
        """(label, text) facts about a fitted model, for its repr and its HTML table."""
        facts = [("model", self.config.spec.describe(self.config.params))]
        if not hasattr(self, "module_"):
            return facts
        users, items = int(self.module_.user_known.sum()), int(self.module_.item_known.sum())
        facts.append(("trained on", f"{self.dataset_ or 'ratings'}: {users:,} users, {items:,} items"))
        model_metrics = self.metrics_.get("model", {}) if isinstance(self.metrics_, dict) else {}
        for part in ("val", "test"):
            values = model_metrics.get(part) or {}
            shown = [f"{key} {value:.4f}" for key, value in values.items()
                     if isinstance(value, float) and (key in ("rmse", "mae") or key.startswith("ndcg@"))]  # fmt: skip
            if shown:
                facts.append((part, ", ".join(shown)))
        return facts

    def _repr_html_(self) -> str:
        from mfrec._repr import html_facts

        if not hasattr(self, "module_"):
            return html_facts("MatrixFactorization (not fitted)", self._facts()[:1])
        return html_facts("MatrixFactorization", self._facts())

    @property
    def kind(self) -> str:
        """The registered model name (``biased``, ``implicit_als``, ...)."""
        return self.config.model

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
        interactions: Ratings | None = None,
    ) -> MatrixFactorization:
        """Train on ``train``; with ``val``, early-stop on its RMSE (NDCG@10 for ranking models).

        ``train``, ``val`` and ``interactions`` must share id maps (parts of one
        :class:`~mfrec.data.Split`). ``interactions`` are further (user, item) pairs known to
        exist whose ratings the model must not see, typically the pairs it will be asked to
        predict (a split's test part): models with implicit features (``bayesian_svdpp``) learn
        from which items each user rated, with the training and validation pairs; the
        other models ignore them, and only the pairs are read, never the ratings.
        With ``checkpoint`` (a file path), the training state is written there
        after every epoch, atomically, and an existing checkpoint is resumed:
        the result is the same as an uninterrupted fit. Returns ``self``.
        """
        progress = check_flag(progress, "progress")
        config = self.config
        spec = config.spec
        for name, part in (("train", train), ("val", val), ("interactions", interactions)):
            if part is None and name != "train":
                continue
            require_ratings(part, name)
            if part.user_map != train.user_map or part.item_map != train.item_map:
                raise ConfigError(f"train and {name} must come from one dataset (the same id maps)")
        if len(train) == 0:
            raise ConfigError("cannot fit on zero training ratings")
        check_trainable(train)
        if spec.predicts_ratings and train.kind == "explicit" and train.ratings.min() == train.ratings.max():
            raise DataError(
                f"{train.name}: all {len(train):,} training ratings are {float(train.ratings[0]):g}, so a rating model "
                f"has nothing to learn; for interactions use --model {_or(registry.names(predicts_ratings=False))}"
            )
        if spec.predicts_ratings and train.kind == "implicit":
            raise ConfigError(
                f"the {config.model!r} model predicts ratings, and these interactions have none; "
                f"use --model {_or(registry.names(predicts_ratings=False))}"
            )
        device = resolve_device(config.training_device)
        from mfrec.training import distributed

        group = distributed.current()
        if group is not None:
            config.check_distributed()
            if device.type == "cuda":
                device = torch.device("cuda", group.local_rank)
            checkpoint = None  # each rank's shuffle state differs: a resume runs in one process
        saver = None
        if checkpoint is not None:
            from mfrec.training.checkpoint import Checkpoint

            saver = Checkpoint(checkpoint, engine=spec.engine_for(config.params, device))
        _check_memory(spec.module.estimated_bytes(train.n_users, train.n_items, config.params), train, config)
        with thread_limit(config.threads):
            generator = torch.Generator().manual_seed(config.seed)
            module = spec.module.from_config(train.n_users, train.n_items, config.params, generator=generator,
                                             distributed=group is not None).to(device)  # fmt: skip
            data = self._training_data(module, train, val, device, interactions)
            trainer = spec.trainer_for(config.params, device)(module, config.params, data, generator, config.options)
            history, kept = fit(trainer, patience=config.patience, target_rmse=config.target_rmse,
                                checkpoint=saver, progress=progress, on_epoch=on_epoch)  # fmt: skip
        module.zero_unknown_rows()
        self.restore(FittedState(module.cpu().eval(), train.user_map, train.item_map, train.scale, train.titles,
                                 _seen_arrays(train, train.user_map, train.item_map), train.name, train.kind,
                                 tuple(history), kept, genres=train.genres, years=train.years))  # fmt: skip
        return self

    def _training_data(self, module: Model, train: Ratings, val: Ratings | None, device,
                       interactions: Ratings | None = None) -> TrainingData:  # fmt: skip
        """Tensors on ``device``, the known-row masks set, a validation NDCG for ranking models, and every
        known (user, item) pair."""
        divisor = self.config.rating_divisor

        def tensors(ratings: Ratings) -> tuple[torch.Tensor, ...]:
            return (torch.as_tensor(ratings.users, dtype=torch.long, device=device),
                    torch.as_tensor(ratings.items, dtype=torch.long, device=device),
                    torch.as_tensor(ratings.ratings / divisor, dtype=torch.float32, device=device))  # fmt: skip

        train_t = tensors(train)
        module.mark_known(*train_t)
        has_val = val is not None and len(val) > 0
        validate = None
        # ranking validation needs a validation rating at the relevance threshold; without one
        # NDCG is undefined, and the model trains its epochs without early stopping
        if has_val and not self.predicts_ratings and val.has_relevant:

            def score_on_device(users: torch.Tensor) -> torch.Tensor:  # the metric code indexes on the CPU
                return module.score_users(users.to(device))

            def validate() -> float:
                with torch.no_grad():
                    return evaluate_ranking(score_on_device, train, val, k=10, threshold=val.relevance_threshold,
                                            sample_users=20_000)["ndcg"]  # fmt: skip

        parts = [p for p in (train, val, interactions) if p is not None]

        def pairs() -> tuple[np.ndarray, np.ndarray]:  # built only for a model that asks
            users, items = (np.concatenate([getattr(p, side) for p in parts]) for side in ("users", "items"))
            return users.astype(np.int64), items.astype(np.int64)

        return TrainingData(train_t, tensors(val) if has_val else None, train.scale, divisor, validate, pairs)

    def restore(self, state: FittedState) -> MatrixFactorization:
        """Adopt fitted state (from :meth:`fit` or a model file); returns ``self``."""
        state.module.zero_unknown_rows()
        self.module_ = state.module.eval()
        self.user_map_, self.item_map_ = state.user_map, state.item_map
        self.scale_ = state.scale
        self.titles_ = state.titles
        self.genres_, self.years_ = state.genres, state.years
        self.seen_indptr_, self.seen_items_, self.seen_ratings_ = state.seen
        self.item_counts_ = np.bincount(self.seen_items_, minlength=len(state.item_map))
        self.dataset_ = state.dataset
        self.data_kind_ = state.data_kind
        self.history_ = list(state.history)
        self.best_epoch_ = state.best_epoch
        self.metrics_ = state.metrics or {}
        self.file_sha256_ = state.sha256
        return self

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
        require_ratings(ratings, "ratings")
        self.seen_indptr_, self.seen_items_, self.seen_ratings_ = _seen_arrays(ratings, self.user_map_, self.item_map_)
        self.item_counts_ = np.bincount(self.seen_items_, minlength=len(self.item_map_))
        return self

    # ------------------------------------------------------- public read API
    def user_id(self, raw: Any) -> Any:
        """``raw`` (e.g. text from a command line or URL) as this model's user id type."""
        self._check_fitted()
        return self.user_map_.coerce(raw)

    def item_id(self, raw: Any) -> Any:
        """``raw`` as this model's item id type."""
        self._check_fitted()
        return self.item_map_.coerce(raw)

    def user_indices(self, users: Any) -> np.ndarray:
        """Indices of raw user ids; :class:`UnknownIdError` names the first unknown one."""
        self._check_fitted()
        return self.user_map_.index(raw_ids(users, "users"))

    def trained_users(self) -> np.ndarray:
        """Raw ids of the users with training data, in index order."""
        self._check_fitted()
        return self.user_map_.raw(np.flatnonzero(self.module_.user_known.numpy()))

    def trained_items(self) -> np.ndarray:
        """Raw ids of the items with training data, in index order."""
        self._check_fitted()
        return self.item_map_.raw(np.flatnonzero(self.module_.item_known.numpy()))

    def catalog(self) -> pd.DataFrame:
        """Every item in index order: ``item, title, ratings`` (remembered ratings), ``trained`` (has factors),
        and ``genres`` and ``year`` when the model has them."""
        self._check_fitted()
        frame = pd.DataFrame({
            "item": self.item_map_.ids,
            "title": self._titles(np.arange(len(self.item_map_))),
            "ratings": self.item_counts_,
            "trained": self.module_.item_known.numpy(),
        })  # fmt: skip
        if self.genres_ is not None:
            frame["genres"] = self.genres_
        if self.years_ is not None:
            frame["year"] = pd.array(np.where(np.isnan(self.years_), np.nan, self.years_), dtype="Int64")
        return frame

    def genres(self) -> list[str]:
        """The genre names items of this model carry (for the ``genres`` filter), sorted; empty without genre data."""
        self._check_fitted()
        return list(self._filter().names)

    def _filter(self) -> ItemFilter:
        """The candidate filter over this model's item metadata and remembered counts (rebuilt after set_seen)."""
        cached = getattr(self, "_item_filter", None)
        if cached is None or cached[0] is not self.seen_items_:
            cached = (self.seen_items_, ItemFilter(self.genres_, self.years_, self.item_counts_))
            self._item_filter = cached
        return cached[1]

    def info(self) -> dict[str, Any]:
        """Facts about the fitted model: kind, sizes, the stored factor width, data set, scale, metrics."""
        self._check_fitted()
        return {
            "kind": self.kind,
            "predicts_ratings": self.predicts_ratings,
            "embedding_dim": self.module_.stored_width,
            "config": self.config.to_dict(),
            "n_users": len(self.user_map_),
            "n_items": len(self.item_map_),
            "trained_users": int(self.module_.user_known.sum()),
            "trained_items": int(self.module_.item_known.sum()),
            "dataset": self.dataset_,
            "rating_scale": list(self.scale_),
            "metrics": self.metrics_,
        }

    def state(self) -> FittedState:
        """The fitted state, as :meth:`restore` takes it (what the store writes)."""
        self._check_fitted()
        return FittedState(self.module_, self.user_map_, self.item_map_, self.scale_, self.titles_,
                           (self.seen_indptr_, self.seen_items_, self.seen_ratings_), self.dataset_, self.data_kind_,
                           tuple(self.history_), self.best_epoch_, self.metrics_, self.genres_,
                           self.years_)  # fmt: skip

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
        clip = check_flag(clip, "clip")
        out = []
        width = self.module_.stored_width
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
        if unknown not in ("fallback", "error"):
            raise ConfigError(f"unknown must be 'fallback' or 'error', not {unknown!r}")
        users = raw_ids(users, "users", dtype=None)
        items = raw_ids(items, "items", dtype=None)
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
        """RMSE/MAE in stars (clipped), the notebook loss, and cold-start counts on ``ratings``.

        ``ratings`` are ratings on this model's scale: interactions without ratings, or ratings outside the
        scale (another data set's 1-10, say), are a :class:`DataError`, since no error in stars means anything then.
        """
        self._check_rating_model("RMSE")
        require_ratings(ratings, "ratings")
        if ratings.kind != "explicit":
            raise DataError(f"{ratings.name}: interactions without ratings; RMSE and MAE need ratings "
                            "(evaluate_ranking measures these)")  # fmt: skip
        low, high = self.scale_
        if len(ratings) and (ratings.ratings.min() < low or ratings.ratings.max() > high):
            raise DataError(f"{ratings.name}: ratings from {ratings.ratings.min():g} to {ratings.ratings.max():g}, "
                            f"outside this model's scale, {low:g} to {high:g}: it predicts on the scale it was "
                            "trained on")  # fmt: skip
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
        return self.rank_test_users(test, train=train, k=k, threshold=threshold, exclude=exclude,
                                    chunk_size=chunk_size, sample_users=sample_users, seed=seed).summary()  # fmt: skip

    def rank_test_users(
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
    ) -> RankedUsers:
        """Each test user's top-``k`` list and metrics, as :meth:`evaluate_ranking` ranks them.

        Returns :class:`~mfrec.evaluation.ranking.RankedUsers` in this model's index
        space (:attr:`item_counts_` gives each item's training ratings).
        """
        self._check_fitted()
        for name, part in (("test", test), ("train", train), ("exclude", exclude)):
            if part is not None or name == "test":
                require_ratings(part, name)
        if train is None:
            users = np.repeat(np.arange(len(self.user_map_)), np.diff(self.seen_indptr_))
            train = Ratings(users, self.seen_items_, np.ones(len(users), np.float32), self.user_map_, self.item_map_)
        train = _remap(train, self.user_map_, self.item_map_)
        test = _remap(test, self.user_map_, self.item_map_)
        exclude = None if exclude is None else _remap(exclude, self.user_map_, self.item_map_)
        known = self.module_.item_known
        candidates_train = train.subset(np.flatnonzero(known.numpy()[train.items]))
        return rank_users(
            self.module_.score_users, candidates_train, test, k=k,
            threshold=test.relevance_threshold if threshold is None else threshold,
            exclude=exclude, chunk_size=chunk_size, sample_users=sample_users, seed=seed,
        )  # fmt: skip

    # ----------------------------------------------------------- recommend
    def recommend(
        self,
        users: Any,
        n: int = 10,
        *,
        exclude_seen: bool = True,
        items: Any = None,
        exclude: Any = None,
        genres: str | list[str] | None = None,
        years: tuple[Any, Any] | None = None,
        min_ratings: int | None = None,
        explain: bool | int = False,
        chunk_size: int = SCORE_CHUNK,
    ) -> Recommendations:
        """Top-``n`` items for one or more raw user ids, batch-first.

        Scores every item at once per chunk of users (``U[users] @ V.T``), masks
        items without training data, each user's rated items (``exclude_seen``),
        everything outside ``items`` (a raw-id whitelist), the raw ids in
        ``exclude`` and the items the filters reject, then takes ``topk``. Scores
        are stars for rating models.

        Filters (one candidate mask for the whole batch, built before top-k): ``genres``,
        one genre or a list (an item passes with any of them); ``years``, ``(first, last)``
        inclusive, ``None`` for an open end; ``min_ratings``, the item's ratings in the
        model's data. See :meth:`genres` and :meth:`catalog` for what items carry.

        ``explain``: ``True`` (3 items) or a number of items: each recommendation carries the
        user's rated items that added most to its score (:class:`~mfrec.recommend.Because`), from
        :meth:`explain`'s decomposition of the user's fold-in from their remembered ratings.
        """
        self._check_fitted()
        n, exclude_seen = _check_n(n), check_flag(exclude_seen, "exclude_seen")
        idx = self.user_map_.index(raw_ids(users, "users"))
        base_mask = self._item_mask(items, exclude, genres, years, min_ratings)
        positions, scores = self.top_positions(idx, n, mask=base_mask, exclude_seen=exclude_seen,
                                               chunk_size=chunk_size)  # fmt: skip
        recs = self._package(self.user_map_.raw(idx), positions, scores)
        if not explain:
            return recs
        histories = [self._remembered(u) for u in idx]
        return replace(recs, because=self._because(histories, positions, explain))

    def top_positions(self, users: np.ndarray, n: int, *, mask: torch.Tensor | None = None,
                      exclude_seen: bool = True, chunk_size: int = SCORE_CHUNK) -> tuple[np.ndarray, np.ndarray]:
        """The scoring path of :meth:`recommend` on user *indices*: ``(item positions, scores)``, both ``(U, n)``.

        Scores ``U[users] @ V.T`` per chunk of users (stars for rating models, unclipped), sets
        ``-inf`` where ``mask`` is True (default: items without training data) and on each user's
        rated items (``exclude_seen``), then takes ``topk``; rows with fewer candidates end in
        ``-inf`` padding. Serving precomputes its top-K table with this.
        """
        self._check_fitted()
        exclude_seen = check_flag(exclude_seen, "exclude_seen")
        mask = ~self.module_.item_known if mask is None else mask
        users = np.asarray(users, dtype=np.int64)
        items_out, scores_out = [], []
        for start in range(0, len(users), chunk_size):
            chunk = torch.as_tensor(users[start : start + chunk_size], dtype=torch.long)
            with torch.no_grad():
                scores = self._scale(self.module_.score_users(chunk))
            scores[:, mask] = -torch.inf
            if exclude_seen:
                rows, cols = csr_pairs(self.seen_indptr_, self.seen_items_, chunk.numpy())
                scores[rows, cols] = -torch.inf
            pos, top = masked_topk(scores, n)
            items_out.append(pos)
            scores_out.append(top)
        if not items_out:
            return np.zeros((0, min(n, len(self.item_map_))), np.int64), np.zeros((0, min(n, len(self.item_map_))))
        return np.concatenate(items_out), np.concatenate(scores_out)

    def _remembered(self, user: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A trained user's remembered history as (known item indices, targets), what :meth:`_history` makes."""
        span = slice(self.seen_indptr_[user], self.seen_indptr_[user + 1])
        items = torch.as_tensor(self.seen_items_[span], dtype=torch.long)
        targets = torch.as_tensor(self.seen_ratings_[span] / self.config.rating_divisor, dtype=torch.float32)
        known = self.module_.item_known[items]
        return items[known], targets[known]

    def explain(self, user: Any = None, items: Any = None, *,
                ratings: Mapping[Any, float] | None = None) -> pd.DataFrame:  # fmt: skip
        r"""How each item a user rated makes up their score of each of ``items``.

        The user is a raw id (their remembered ratings) or, with ``ratings``, a new user's
        ``{raw item: rating}``. The user is folded in from that history; the fold-in is a
        linear solve, so each score splits exactly into a base and one contribution per rated
        item (:meth:`mfrec.models.base.Model.explain`):

        * implicit ALS and BPR: :math:`s_t = \sum_h c_h\, y_t^\top W_u^{-1} y_h` with
          :math:`W_u` the user's weighted Gram matrix, as implicit's ``explain``;
        * EASE: :math:`s_t = \sum_h B_{ht}`;
        * rating models: :math:`\hat r_t = o_t + \sum_h (r_h - o_h)\, d_t^\top G^{-1} d_h`, with
          :math:`o` the item offsets (:math:`\mu + b_i`) and :math:`G` the ridge system of the
          fold-in (a user's rating above an item's offset pulls similar items up).

        Returns one row per (target, rated item): ``item, title, rated, rated_title,
        contribution, share, base, score`` in the score's units (stars for rating models,
        unclipped), ``base + contribution.sum() == score`` for each target.
        """
        self._check_fitted()
        if (user is None) == (ratings is None):
            raise ConfigError("explain needs exactly one of a user id or ratings")
        if ratings is not None:
            history = self._history(ratings)[:2]
        else:
            history = self._remembered(int(self.user_map_.index_one(user)))
            if not len(history[0]):
                raise ConfigError(f"user {user} has no remembered ratings of trained items to explain with")
        targets = self.item_map_.index(raw_ids(items, "items"))
        base, rated, parts, total = self._contributions(history, targets)
        width = rated.shape[1]
        return pd.DataFrame({
            "item": np.repeat(self.item_map_.raw(targets), width),
            "title": np.repeat(self._titles(targets), width),
            "rated": self.item_map_.raw(rated.ravel()),
            "rated_title": self._titles(rated.ravel()),
            "contribution": parts.ravel(),
            "share": (parts / np.maximum(total[:, None], 1e-300)).ravel(),
            "base": np.repeat(base, width),
            "score": np.repeat(base + parts.sum(1), width),
        })  # fmt: skip

    def _because(self, histories: list[tuple[torch.Tensor, torch.Tensor]], positions: np.ndarray,
                 explain: bool | int) -> Because:  # fmt: skip
        """The top contributors of each recommended item (one solve per user: explanations are per request)."""
        if not isinstance(explain, bool | int | np.integer) or explain < 1:
            raise ConfigError(f"explain must be True or a number of items >= 1, not {explain!r}")
        k = 3 if explain is True else int(explain)
        shape = (*positions.shape, k)
        items = np.full(shape, None, dtype=object)
        titles = np.full(shape, None, dtype=object)
        contributions = np.full(shape, np.nan)
        shares = np.full(shape, np.nan)
        base = np.full(positions.shape, np.nan)
        for row, (history, targets) in enumerate(zip(histories, positions, strict=True)):
            if not len(history[0]):
                continue
            b, rated, parts, total = self._contributions(history, targets)
            rated, top = rated[:, :k], parts[:, :k]
            width = top.shape[1]
            items[row, :, :width] = self.item_map_.raw(rated.ravel()).reshape(rated.shape)
            titles[row, :, :width] = self._titles(rated)
            contributions[row, :, :width] = top
            shares[row, :, :width] = top / np.maximum(total[:, None], 1e-300)
            base[row] = b
        return Because(items, titles, contributions, shares, base)

    def _contributions(self, history: tuple[torch.Tensor, torch.Tensor],
                       targets: np.ndarray) -> tuple[np.ndarray, ...]:  # fmt: skip
        """``module.explain`` in the score's units: the base ``(T,)``, each target's rated items and their
        contributions ``(T, H)``, largest first, and the sum of absolute contributions ``(T,)``."""
        with torch.no_grad():
            base, parts = self.module_.explain(*history, self.config.params, torch.as_tensor(targets))
        base, parts = self._scale(base).numpy(), self._scale(parts).numpy()
        order = np.argsort(-parts, axis=1, kind="stable")
        return base, history[0].numpy()[order], np.take_along_axis(parts, order, 1), np.abs(parts).sum(1)

    def _scale(self, scores: torch.Tensor) -> torch.Tensor:
        return scores * self.config.rating_divisor if self.predicts_ratings else scores

    def _item_mask(self, items: Any, exclude: Any, genres: Any = None, years: Any = None,
                   min_ratings: Any = None) -> torch.Tensor:  # fmt: skip
        """True for items that must never be recommended: untrained, outside ``items``, in ``exclude``,
        or rejected by the metadata filters (:class:`~mfrec.data.items.ItemFilter`)."""
        mask = ~self.module_.item_known
        keep = self._filter().mask(genres, years, min_ratings)
        if keep is not None:
            mask = mask | ~torch.from_numpy(keep)
        if items is not None:
            allowed = torch.zeros_like(mask)
            allowed[torch.as_tensor(self.item_map_.index(raw_ids(items, "items")))] = True
            mask |= ~allowed
        if exclude is not None:
            mask[torch.as_tensor(self.item_map_.index(raw_ids(exclude, "exclude")))] = True
        return mask

    def _package(self, users: np.ndarray, positions: np.ndarray, scores: np.ndarray) -> Recommendations:
        """Top-N as raw ids and titles; a rating model's scores become stars on the scale (ranked before clipping)."""
        unit = "stars" if self.predicts_ratings else "score"
        if self.predicts_ratings:
            valid = np.isfinite(scores)
            scores = np.where(valid, np.clip(scores, *self.scale_), scores)
        return Recommendations(users, self.item_map_.raw(positions), scores, self._titles(positions), unit)

    # ---------------------------------------------------------- new users
    def _history(self, ratings: Mapping[Any, float]) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
        """A new user's ``{raw item: rating}`` as (known item indices, targets) plus every given item's index."""
        self._check_fitted()
        given, values = _rating_pairs(ratings)
        raw_items = [self.item_map_.coerce(item) for item in given]
        low, high = self.scale_
        if self.data_kind_ == "implicit":
            low, high = 0.0, np.inf
        bad = np.flatnonzero(~np.isfinite(values) | (values < low) | (values > high))
        if len(bad):
            value, item = values[bad[0]], raw_items[bad[0]]
            if not np.isfinite(value):
                raise ConfigError(f"rating {value:g} for item {item} is not a finite number")
            raise ConfigError(f"rating {value:g} for item {item} is outside [{low:g}, {high:g}]")
        index = self.item_map_.index(np.array(raw_items, dtype=object))
        _, first, counts = np.unique(index, return_index=True, return_counts=True)
        if (counts > 1).any():  # pairs, a Series, or keys such as 1 and "1" that name one item
            where = int(first[counts > 1].min())
            times = int(counts[first == where][0])
            raise ConfigError(f"item {raw_items[where]} is rated {times} times; give each item once")
        items = torch.as_tensor(index, dtype=torch.long)
        known = self.module_.item_known[items]
        if not bool(known.any()):
            raise ConfigError("none of these items had training data, so there is nothing to fold in")
        targets = torch.as_tensor(values / self.config.rating_divisor, dtype=torch.float32)[known]
        return items[known], targets, index

    def fold_in(self, ratings: Mapping[Any, float]) -> tuple[torch.Tensor, ...]:
        """A new user's representation from ``{raw item id: rating}``, without retraining.

        Rating models: one regularized least-squares solve against the fixed item
        factors and biases, with the training regularization
        (:meth:`mfrec.models.base.RatingModel.fold_in`); the result is ``(b_u, p, known)``.
        Ranking models: the implicit-ALS user solve
        (:func:`mfrec.models.base.implicit_fold_in`), values used as confidence
        weights; EASE: the history itself. Items without training data carry no
        information and are skipped.
        """
        items, targets, _ = self._history(ratings)
        with torch.no_grad():
            return self.module_.fold_in(items, targets, self.config.params)

    def recommend_for_ratings(self, ratings: Mapping[Any, float], n: int = 10, *, exclude: Any = None,
                              items: Any = None, genres: Any = None, years: Any = None,
                              min_ratings: int | None = None,
                              explain: bool | int = False) -> Recommendations:  # fmt: skip
        """Top-``n`` items for a new user given ``{raw item id: rating}`` (fold-in), excluding those items.

        ``ratings`` may also be a pandas Series indexed by item or a list of (item, rating) pairs.

        Scored by the same function as :meth:`recommend`
        (:meth:`~mfrec.models.base.Model.score` of the folded-in representation), with the same filters.
        """
        request = TopRequest(ratings=ratings, n=n, exclude=exclude, items=items, genres=genres, years=years,
                             min_ratings=min_ratings)  # fmt: skip
        _, positions, scores = self._score_requests([request])
        recs = self._package(np.array([None], dtype=object), positions, scores)
        if not explain:
            return recs
        return replace(recs, because=self._because([self._history(ratings)[:2]], positions, explain))

    def recommend_batch(self, requests: list[TopRequest]) -> list[Recommendations]:
        r"""Many top-``n`` requests scored as one matrix product: each :class:`~mfrec.recommend.TopRequest`'s
        representation (a trained user's, or a new user's fold-in) is stacked into one batch, scored
        at once (:meth:`~mfrec.models.base.Model.score`, ``(B, n_items)``), masked row by row (its
        filters and the items it rated), and one ``topk`` serves them all. Each answer is what
        :meth:`recommend` or :meth:`recommend_for_ratings` gives for that request alone; serving
        groups concurrent requests this way.
        """
        if not requests:
            return []
        users, positions, scores = self._score_requests(requests)
        return [
            self._package(np.array([user], dtype=object), positions[i : i + 1, : r.n], scores[i : i + 1, : r.n])
            for i, (user, r) in enumerate(zip(users, requests, strict=True))
        ]

    def _score_requests(self, requests: list[TopRequest]) -> tuple[list[Any], np.ndarray, np.ndarray]:
        """Raw users (None for new ones), item positions and scores ``(B, max n)`` of :meth:`recommend_batch`."""
        self._check_fitted()
        sizes = [_check_n(r.n) for r in requests]
        users, representations, masks = [], [], []
        for request in requests:
            mask = self._item_mask(request.items, request.exclude, request.genres, request.years, request.min_ratings)
            if request.ratings is not None:
                known, targets, rated = self._history(request.ratings)
                with torch.no_grad():
                    representations.append(self.module_.fold_in(known, targets, self.config.params))
                mask[torch.as_tensor(rated, dtype=torch.long)] = True
                users.append(None)
            else:
                user = self.user_map_.index_one(request.user)
                with torch.no_grad():
                    representations.append(self.module_.represent(torch.tensor([user])))
                if request.exclude_seen:
                    mask[torch.as_tensor(self.seen_items_[self.seen_indptr_[user] : self.seen_indptr_[user + 1]],
                                         dtype=torch.long)] = True  # fmt: skip
                users.append(self.user_map_.raw(np.array([user]))[0])
            masks.append(mask)
        with torch.no_grad():
            stacked = tuple(torch.cat(parts) for parts in zip(*representations, strict=True))
            scores = self._scale(self.module_.score(*stacked).double())
        scores[torch.stack(masks)] = -torch.inf
        positions, top = masked_topk(scores, max(sizes))
        return users, positions, top

    # ------------------------------------------------------------ similar
    def similar_items(
        self, items: Any, n: int = 10, *, shrinkage: float = 20.0, similar: str = DEFAULT_SIMILAR,
        genres: Any = None, years: Any = None, min_ratings: int | None = None,
    ) -> Recommendations:
        r"""The ``n`` items nearest to each of ``items``, batch-first.

        ``similar`` chooses the similarity; :math:`s` is ``shrinkage`` (0: no weight),
        :math:`c_{ij}` the users who rated both items and :math:`n_i` those who rated ``i``,
        over every pair the model remembers (its training data, or what :meth:`set_seen` gave):

        * ``ratings``: the adjusted cosine of the items' rating columns (Sarwar et al. 2001),
          each rating centred on its user's mean,
          :math:`\sum_u d_{ui} d_{uj} / (\lVert d_i\rVert \lVert d_j\rVert)` with
          :math:`d_{ui} = r_{ui} - \bar r_u` (0 where ``u`` did not rate ``i``), weighted by
          :math:`c_{ij} / (c_{ij} + s)` so that a pair rated by few users does not top the list.
          Two films are near when the same people rate both above (or below) their own
          average: sequels, the same studio, the same kind of film. It leads the franchise and
          sequel sets of ``benchmarks/similar_items.py``, with every model. It needs ratings
          that differ within a user, and raises :class:`~mfrec.errors.ConfigError` on data
          with one value per user (clicks, views).
        * ``factors``: the model's own (:meth:`~mfrec.models.base.Model.similarity`: the cosine
          of item factors; EASE reads its item-item weights), weighted by support,
          :math:`\cos(q_i, q_j)\, n_j / (n_j + s)`: rarely rated items have noisy factor
          directions. From the implicit preset these lists hold what the querying user likes
          next most often ("people who liked this also liked"), also once popularity is
          controlled for, but they lean to the well-liked films of the same years and rarely
          hold a sequel (docs/benchmarks.md, "Similar items").
        * ``cooccurrence``: the cosine of the items' interaction columns,
          :math:`c_{ij} / \sqrt{n_i n_j}`, weighted by :math:`c_{ij} / (c_{ij} + s)`.
        * ``auto`` (the default): ``ratings`` where the remembered ratings differ within users,
          ``factors`` where they do not.

        ``genres``, ``years`` and ``min_ratings`` filter the neighbours as in :meth:`recommend`.
        Returns :class:`~mfrec.recommend.Recommendations` whose ``query`` column is
        ``query_item`` and whose ``scores`` lie in [-1, 1]. Items without training data are
        never returned, and asking about one raises :class:`UnknownIdError`.
        """
        self._check_fitted()
        n = _check_n(n)
        if similar not in SIMILARITIES:
            raise ConfigError(f"similar must be one of {', '.join(SIMILARITIES)}, not {similar!r}")
        queries = raw_ids(items, "items")
        index = self.item_map_.index(queries)
        untrained = ~self.module_.item_known[torch.as_tensor(index)]
        if bool(untrained.any()):
            bad = queries[int(torch.nonzero(untrained)[0])]
            raise UnknownIdError(f"item {bad} has no training ratings, so it has no learned factors")
        if not (isinstance(shrinkage, int | float) and not isinstance(shrinkage, bool) and 0 <= shrinkage < np.inf):
            raise ConfigError(f"shrinkage must be a number >= 0, not {shrinkage!r}")
        if similar == "auto":
            similar = self._auto_similar()
        if similar in ("cooccurrence", "ratings"):
            sims = self._cooccurrence(index, float(shrinkage), ratings=similar == "ratings")
        else:
            with torch.no_grad():
                sims = self.module_.similarity(torch.as_tensor(index))
            if shrinkage:
                counts = torch.as_tensor(self.item_counts_, dtype=torch.float64)
                sims = sims * counts / (counts + shrinkage)
        sims[:, self._item_mask(None, None, genres, years, min_ratings)] = -torch.inf
        sims[torch.arange(len(index)), torch.as_tensor(index)] = -torch.inf
        pos, top = masked_topk(sims, n)
        return Recommendations(self.item_map_.raw(index), self.item_map_.raw(pos), top, self._titles(pos),
                               "similarity", "query_item")  # fmt: skip

    def prepare_similar(self) -> str:
        """Build now what :meth:`similar_items` reads for the default similarity, so that no call pays
        for it (a server does this in the background): the sparse rating matrices for ``ratings``
        (480 MB and 5-15 s for 25M ratings), nothing for ``factors``. Returns the similarity
        ``auto`` stands for."""
        self._check_fitted()
        chosen = self._auto_similar()
        if chosen == "ratings":
            self._columns("centred", "ones")
        return chosen

    def similar_arrays(self) -> dict[str, np.ndarray]:
        """What :meth:`similar_items` reads for the default similarity, as flat arrays (:data:`SIMILAR_ARRAYS`)
        that another process holding this model can map instead of building them
        (:meth:`use_similar_arrays`; ``mfrec serve --workers`` shares one copy this way). Empty where
        ``auto`` means ``factors``, which reads only the model."""
        self._check_fitted()
        if self._auto_similar() != "ratings":
            return {}
        cache = self._columns("centred", "ones")
        user_items, user_indptr, item_users, item_indptr = cache["index"]
        return {"norms": cache["norms"], "user_items": user_items, "user_indptr": user_indptr,
                "item_users": item_users, "item_indptr": item_indptr, "ones": cache["ones_by_user"].data,
                "centred_by_user": cache["by_user"].data, "centred_by_item": cache["by_item"].data}  # fmt: skip

    def use_similar_arrays(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Read similar items from ``arrays``, what :meth:`similar_arrays` gave for this model (memory-mapped
        from a file, say), without copying them. :class:`ConfigError` when they are not this model's."""
        self._check_fitted()
        items, indptr = self.seen_items_, self.seen_indptr_
        n_items = len(self.item_map_)
        if set(arrays) != set(SIMILAR_ARRAYS):
            raise ConfigError(f"similar arrays are {', '.join(SIMILAR_ARRAYS)}, not {', '.join(sorted(arrays))}")
        a = {name: np.asarray(value) for name, value in arrays.items()}
        per_rating = ("user_items", "item_users", "ones", "centred_by_user", "centred_by_item")
        fits = (all(a[name].shape == items.shape for name in per_rating) and a["norms"].shape == (n_items,)
                and a["item_indptr"].shape == (n_items + 1,) and a["user_indptr"].shape == indptr.shape
                and a["user_items"].dtype == a["item_users"].dtype == a["user_indptr"].dtype == a["item_indptr"].dtype
                and np.array_equal(a["user_indptr"], indptr) and np.array_equal(a["user_items"], items)
                and int(a["item_indptr"][-1]) == len(items))  # fmt: skip
        if not fits:
            raise ConfigError("these similar-items arrays belong to other data than this model remembers")
        cache = {"seen": items, "norms": a["norms"], "centred": a["centred_by_user"],
                 "index": (a["user_items"], a["user_indptr"], a["item_users"], a["item_indptr"])}  # fmt: skip
        _add_matrices(cache, "ones", a["ones"], a["ones"])
        _add_matrices(cache, "centred", a["centred_by_user"], a["centred_by_item"])
        self._item_columns = cache

    def _auto_similar(self) -> str:
        """What ``similar="auto"`` stands for: ``ratings`` where the remembered ratings differ within users."""
        return "ratings" if self._columns()["norms"].any() else "factors"

    def _columns(self, *kinds: str) -> dict[str, Any]:
        r"""The remembered interactions (:meth:`set_seen`), built once per remembered data and kind.

        Always ``norms``, :math:`\lVert d_i \rVert` per item, with :math:`d_{ui} = r_{ui} - \bar r_u`
        (each rating minus its user's mean). ``kinds`` asks for sparse matrices as well, by user
        ``(n_users, n_items)`` and by item ``(n_items, n_users)``: ``"centred"``, of :math:`d`
        (float32: ``by_user``, ``by_item``), and ``"ones"``, a 1 per pair (``ones_by_user``,
        ``ones_by_item``), whose product counts co-raters. Each kind is built only when asked for:
        ``cooccurrence`` reads only the ones.
        """
        cache = getattr(self, "_item_columns", None)
        indptr, items = self.seen_indptr_, self.seen_items_
        n_users, n_items = len(indptr) - 1, len(self.item_map_)
        per_user = np.diff(indptr)
        if cache is None or cache["seen"] is not items:
            owner = np.repeat(np.arange(n_users), per_user)
            ratings = self.seen_ratings_.astype(np.float64)
            means = np.bincount(owner, weights=ratings, minlength=n_users) / np.maximum(per_user, 1)
            centred = (ratings - means[owner]).astype(np.float32)  # what the matrices hold; norms from the same
            norms = np.sqrt(np.bincount(items, weights=np.square(centred, dtype=np.float64), minlength=n_items))
            cache = self._item_columns = {"seen": items, "norms": norms}
            if norms.any():  # otherwise every centred rating is 0 (one value per user): nothing to keep
                cache["centred"] = centred
        missing = [kind for kind in kinds if _COLUMN_KEYS[kind][0] not in cache]
        if not missing:
            return cache
        cache = dict(cache)  # a new dict, assigned whole: another thread sees all or none of what is added
        order = None  # by_user's entries in by_item's order (8 bytes per rating: made when needed, not kept)
        if "index" not in cache:
            # int32 indices where they fit, shared by every matrix of each orientation (scipy keeps
            # index arrays of its own dtype without copying): 8 bytes per rating for the two.
            dtype = np.int32 if max(len(items), n_users, n_items) < 2**31 else np.int64
            owner = np.repeat(np.arange(n_users, dtype=dtype), per_user)
            item_indptr, order = csr_order(items, owner, n_items)
            cache["index"] = (items.astype(dtype), indptr.astype(dtype), owner[order], item_indptr.astype(dtype))
        for kind in missing:
            if kind == "ones":
                by_user = by_item = np.ones(len(items), dtype=np.float32)
            else:
                if order is None:
                    order = csr_order(items, np.repeat(np.arange(n_users), per_user), n_items)[1]
                by_user = cache.get("centred", np.zeros(len(items), dtype=np.float32))
                by_item = by_user[order]
            _add_matrices(cache, kind, by_user, by_item)
        self._item_columns = cache
        return cache

    def _cooccurrence(self, index: np.ndarray, shrinkage: float, *, ratings: bool = False) -> torch.Tensor:
        r"""Shrunk co-occurrence cosine of the items ``index`` to every item, ``(len(index), n_items)`` float64.

        With ``ratings``, the adjusted cosine of centred ratings instead (see :meth:`similar_items`).
        """
        if ratings and self._auto_similar() != "ratings":
            raise ConfigError(
                "similar='ratings' needs ratings that differ within a user, and this model's data has one "
                "value per user (clicks, views): use 'factors' or 'cooccurrence'"
            )
        columns = self._columns("centred", "ones") if ratings else self._columns("ones")
        together = (columns["ones_by_item"][index] @ columns["ones_by_user"]).toarray().astype(np.float64)  # c_ij
        if ratings:
            norms = columns["norms"]
            inner = (columns["by_item"][index] @ columns["by_user"]).toarray().astype(np.float64)
        else:
            norms, inner = np.sqrt(self.item_counts_.astype(np.float64)), together
        sims = inner / np.maximum(norms[index][:, None] * norms[None, :], 1e-12)
        np.clip(sims, -1.0, 1.0, out=sims)  # float32 sums can pass 1 by a rounding error
        if shrinkage:
            sims *= together / (together + shrinkage)
        return torch.from_numpy(sims)

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
    def load(cls, path: str | Path, *, mmap: bool = False) -> MatrixFactorization:
        """Read a model written by :meth:`save`. Never executes code from the file.

        ``mmap``: keep the tensors in a copy-on-write memory map of the file, shared by every
        process that maps it (serving with several workers).
        """
        from mfrec.store import read_model

        config, state = read_model(path, mmap=check_flag(mmap, "mmap"))
        return cls(config).restore(state)


def load_model(path: str | Path, *, mmap: bool = False) -> MatrixFactorization:
    """Read a model file written by :meth:`MatrixFactorization.save`, checking its hash and version."""
    return MatrixFactorization.load(path, mmap=mmap)


def check_trainable(data: Ratings, part: str = "") -> None:
    """Refuse data with fewer than two users or two items: there is nothing to factorize.

    ``part`` names the part of ``data.name`` it is (``"training part"``), so the count is not read as the file's.
    """
    users = int(np.count_nonzero(np.bincount(data.users, minlength=data.n_users)))  # indices: O(n), no sort
    items = int(np.count_nonzero(np.bincount(data.items, minlength=data.n_items)))
    if users < 2 or items < 2:
        where = f"{data.name}, its {part} ({len(data):,} rating(s))" if part else data.name
        raise DataError(
            f"{where}: {users} user(s) and {items} item(s); matrix factorization needs at least two of each"
        )


def _seen_arrays(ratings: Ratings, user_map: IdMap, item_map: IdMap) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What each user rated, in the given maps, as CSR ``(indptr, items, ratings)`` (unknown ids dropped)."""
    if ratings.user_map is user_map and ratings.item_map is item_map:  # the training data itself: no lookups
        users, items, values = ratings.users, ratings.items, ratings.ratings
    else:
        users = user_map.get_indexer(ratings.user_map.raw(ratings.users))
        items = item_map.get_indexer(ratings.item_map.raw(ratings.items))
        keep = (users >= 0) & (items >= 0)
        users, items, values = users[keep], items[keep], ratings.ratings[keep]
    indptr, order = csr_order(users, items, len(user_map))
    return indptr, items[order].astype(np.int64), values[order].astype(np.float32)


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


def _check_memory(need: int, train: Ratings, config: TrainConfig) -> None:
    """Refuse, before allocating anything, a model that cannot fit in this machine's memory."""
    import os

    try:
        have = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # not a POSIX system: let the allocator decide
        return
    if need > have:
        shown = ", ".join(f"{name} {getattr(config.params, name)}" for name in ("embedding_dim", "samples")
                          if name in config.params.names())  # fmt: skip
        raise ConfigError(
            f"the {config.model!r} model with {shown or 'these options'} needs about {need / 2**30:,.1f} GiB for "
            f"{train.n_users:,} users and {train.n_items:,} items; this machine has {have / 2**30:,.1f} GiB"
        )


def _or(names: list[str]) -> str:
    return ", ".join(names[:-1]) + f" or {names[-1]}" if len(names) > 1 else "".join(names)


def _rating_pairs(ratings: Any) -> tuple[list[Any], np.ndarray]:
    """A new user's ratings as (raw items, float64 values), from ``{item: rating}``, a pandas Series
    indexed by item, or (item, rating) pairs; a :class:`ConfigError` for anything else, or for none."""
    if isinstance(ratings, Mapping):
        items, values = list(ratings), list(ratings.values())
    elif hasattr(ratings, "index") and hasattr(ratings, "to_numpy") and getattr(ratings, "ndim", 0) == 1:
        items, values = ratings.index.tolist(), ratings.to_numpy().tolist()  # a pandas Series
    elif isinstance(ratings, list | tuple) and all(isinstance(p, list | tuple) and len(p) == 2 for p in ratings):
        items, values = [p[0] for p in ratings], [p[1] for p in ratings]
    else:
        raise ConfigError("a new user's ratings are {item: rating}, a pandas Series indexed by item, or "
                          f"(item, rating) pairs, not {type(ratings).__name__}")  # fmt: skip
    if not items:
        raise ConfigError("fold-in needs at least one (item, rating) pair")
    for item, value in zip(items, values, strict=True):  # text is not a rating: "4" is refused as HTTP refuses it
        if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
            raise ConfigError(f"the rating for item {item} must be a number, not {value!r}")
    try:
        return items, np.array(values, dtype=np.float64)
    except OverflowError:  # an int beyond float64: an infinite rating, refused as such by the caller
        return items, np.array([float("inf") * np.sign(v) if abs(v) > 2**1023 else v for v in values],
                               dtype=np.float64)  # fmt: skip


def _check_n(n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or not 1 <= n <= MAX_N:
        raise ConfigError(f"n must be an integer from 1 to {MAX_N}, not {n!r}")
    return int(n)
