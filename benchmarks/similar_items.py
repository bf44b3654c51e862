"""Similar items: which item-to-item similarity finds what a user likes next, and the franchise sanity set.

Run it with the peers' environment (``bash benchmarks/peers_env.sh`` prints its python):

    $(bash benchmarks/peers_env.sh) benchmarks/similar_items.py [--seeds 42 0 1 2]

Protocol (item to item). On the stratified 60/20/20 split of ml-latest-small, for every
test user with liked test items (rating >= 4) and liked training items: up to 5 of the
liked training items (drawn with a seeded generator) are queries. For each query the
10 nearest items, leaving out everything the user rated in train, are compared with
the user's liked test items: hit rate (at least one of them), precision@10 and
recall@10 (hits / min(10, liked test items)), averaged over queries and then users.
Every method is fitted on the training part only and sees the same pairs.

Two variants of it control for what the raw hit rate rewards besides the query:
- lift: the same lists are scored for a user drawn at random instead (the owners of the
  queries shuffled; that user's rated items left out, that user's liked test items
  counted), and the hit rate they earn is subtracted. A list that ignores its query, such
  as the most-rated items, scores 0: what remains is what the query item explains.
- next in time: only the owner's liked test items rated within 10 ratings of the query
  (in the order of the user's timestamps, train and test together) count; it is averaged
  over the users each of whose queries has such an item.

Franchise set. The rank of each sequel among the neighbours of the first film of its
series (Toy Story, The Matrix, The Lord of the Rings, Star Wars), from the same
training part of seed 42; at most 10 passes.

Sequel set. Every (first film, sequel) pair found from the titles alone: a title whose
name (year dropped) holds " 2", " II", " 3", " III", " 4", " IV" or "Part II/III"
paired with the film named by the part before it, the first film with at least 20
ratings and the sequel with at least 10 (75 pairs in ml-latest-small); the share of
sequels among their first film's 10 nearest items, per seed.

Methods: mfrec's ``similar_items`` with each ``similar`` option (adjusted cosine of the
ratings, the default; item factors of the implicit preset, with and without the support
weight, and of the rating preset; co-occurrence), EASE's weights, a blend that is not an
option (the rating cosine shrunk towards the factor cosine by the co-raters, s=25),
and implicit's ``similar_items`` (its ALS tuned in ``peers_ranking.py`` for rating
input, and its item-item cosine), and a yardstick: the most-rated items, the same list for
every query. Prints the tables; JSON goes to results/similar_items.json.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

from mfrec import MatrixFactorization, load_dataset, split_ratings

#: (query title id, [sequel ids]) in MovieLens ids
FRANCHISES = {
    "Toy Story": (1, [3114, 78499]),
    "The Matrix": (2571, [6365, 6934]),
    "Lord of the Rings: The Fellowship of the Ring": (4993, [5952, 7153]),
    "Star Wars: Episode IV": (260, [1196, 1210]),
}
QUERIES_PER_USER = 5
N = 10
NEAR_IN_TIME = 10
SEQUEL = re.compile(r" (?:2|II|3|III|4|IV|Part (?:2|II|Two|3|III))(?=$|:|\s)")


def sequel_pairs(data, min_first: int = 20, min_sequel: int = 10) -> list[tuple[int, int]]:
    """(first film, sequel) raw-id pairs found from the titles (see the module docstring)."""
    catalog = pd.DataFrame({"item": data.item_map.ids, "title": data.titles, "n": data.item_counts()})
    catalog["name"] = catalog["title"].astype(str).str.replace(r"\s*\(\d{4}\)\s*$", "", regex=True).str.strip()
    is_sequel = catalog["name"].str.contains(SEQUEL)
    firsts = catalog[~is_sequel]
    pairs = []
    for _, sequel in catalog[is_sequel].iterrows():
        root = SEQUEL.split(sequel["name"])[0].strip()
        found = firsts[(firsts["name"] == root) | firsts["name"].str.startswith(root + ":")]
        if len(found):
            first = found.sort_values("n").iloc[-1]
            if first["n"] >= min_first and sequel["n"] >= min_sequel:
                pairs.append((int(first["item"]), int(sequel["item"])))
    return pairs


def sequel_rate(neighbours, pairs: list[tuple[int, int]], trained: set) -> float:
    """The share of sequels among their first film's N nearest items (pairs with training data on both sides)."""
    pairs = [(a, b) for a, b in pairs if a in trained and b in trained]
    firsts = sorted({a for a, _ in pairs})
    found = dict(zip(firsts, neighbours(np.array(firsts, dtype=object), N), strict=True))
    return float(np.mean([b in list(found[a]) for a, b in pairs]))


def mfrec_method(model, **options):
    """Neighbours from mfrec's public ``similar_items`` (raw ids in, raw ids out)."""

    def neighbours(raw_items: np.ndarray, n: int) -> np.ndarray:
        return model.similar_items(raw_items, n, **options).items

    return neighbours


def shrunk_blend_method(model, prior: float = 25.0):
    r"""Not an option of mfrec: the rating cosine shrunk towards the factor cosine by the co-raters,
    :math:`(c_{ij}\, a_{ij} + s\, f_{ij}) / (c_{ij} + s)`, with :math:`a` the unshrunk adjusted cosine
    (``ratings``, shrinkage 0), :math:`f` the implicit preset's ``factors`` (support weight 20) and
    :math:`s` ``prior``; measured as the closest candidate to leading both kinds of measure. Read from
    the public ``similar_items`` over every item (the co-raters from the unshrunk ``cooccurrence``)."""
    catalog = model.catalog()
    trained = catalog["item"].to_numpy()[catalog["trained"].to_numpy()]
    counts = pd.Series(catalog["ratings"].to_numpy(), index=catalog["item"].to_numpy())

    def full(queries: np.ndarray, similar: str, shrinkage: float) -> pd.DataFrame:
        found = model.similar_items(queries, len(trained) - 1, similar=similar, shrinkage=shrinkage).to_frame()
        return found.pivot(index="query_item", columns="item", values="similarity").reindex(
            index=queries, columns=trained).fillna(-np.inf)  # fmt: skip

    def neighbours(raw_items: np.ndarray, n: int) -> np.ndarray:
        unique = pd.unique(raw_items)
        rows = []
        for start in range(0, len(unique), 500):
            queries = unique[start : start + 500]
            agree, factors = full(queries, "ratings", 0.0), full(queries, "factors", 20.0)
            cosine = full(queries, "cooccurrence", 0.0).clip(lower=0.0)
            together = np.rint(cosine.to_numpy() * np.sqrt(np.outer(counts[queries], counts[trained])))
            with np.errstate(invalid="ignore"):  # 0 * -inf at the query itself: NaN, then -inf
                score = (together * agree.to_numpy() + prior * factors.to_numpy()) / (together + prior)
            score[np.isnan(score)] = -np.inf
            order = np.argsort(-score, axis=1, kind="stable")[:, :n]
            top = np.take_along_axis(score, order, 1)
            ids = np.where(np.isfinite(top), trained[order], None)
            rows.append(pd.DataFrame(ids, index=queries))
        table = pd.concat(rows)
        return table.loc[list(raw_items)].to_numpy(dtype=object)

    return neighbours


def implicit_method(model, item_map):
    """Neighbours from an implicit model's ``similar_items`` over indices (mapped from and to raw ids)."""

    def neighbours(raw_items: np.ndarray, n: int) -> np.ndarray:
        index = item_map.index(raw_items)
        ids, _ = model.similar_items(index, N=n + 1)  # implicit returns the query itself first
        out = np.empty((len(index), n), dtype=object)
        for row, (query, found) in enumerate(zip(index, ids, strict=True)):
            found = [i for i in found if i != query][:n]
            out[row, : len(found)] = item_map.raw(np.asarray(found, dtype=np.int64))
        return out

    return neighbours


def popularity_method(train):
    """The same list for every query: the most-rated training items (what the protocol gives for popularity alone)."""
    ranked = train.item_map.raw(np.argsort(-train.item_counts(), kind="stable"))

    def neighbours(raw_items: np.ndarray, n: int) -> np.ndarray:
        out = np.empty((len(raw_items), n), dtype=object)
        for row, query in enumerate(raw_items):
            out[row] = [i for i in ranked[: n + 1] if i != query][:n]
        return out

    return neighbours


def fit_methods(split, tuned_als: dict) -> dict:
    from implicit.cpu.als import AlternatingLeastSquares
    from implicit.nearest_neighbours import CosineRecommender

    train = split.train
    implicit_model = MatrixFactorization.from_preset("implicit", device="cpu").fit(train)
    ease = MatrixFactorization.from_preset("ease", device="cpu").fit(train)
    rating_model = MatrixFactorization.from_preset("default", device="cpu").fit(train, split.val)
    matrix = sp.csr_matrix((train.ratings, (train.users, train.items)), shape=(train.n_users, train.n_items))
    als = AlternatingLeastSquares(**tuned_als, random_state=0)
    als.fit(matrix, show_progress=False)
    cosine = CosineRecommender(K=200)
    cosine.fit(sp.csr_matrix((np.ones(len(train)), (train.users, train.items)), shape=matrix.shape),
               show_progress=False)  # fmt: skip
    return {
        "mfrec similar=ratings, shrinkage 20 (the default; the same from every model)": mfrec_method(
            implicit_model, similar="ratings"
        ),
        "mfrec similar=ratings, shrinkage 0": mfrec_method(implicit_model, similar="ratings", shrinkage=0),
        "mfrec implicit preset, similar=factors, shrinkage 20": mfrec_method(implicit_model, similar="factors"),
        "mfrec implicit preset, similar=factors, shrinkage 0": mfrec_method(
            implicit_model, similar="factors", shrinkage=0
        ),
        "mfrec similar=cooccurrence (shrinkage 20)": mfrec_method(implicit_model, similar="cooccurrence"),
        "mfrec similar=cooccurrence, shrinkage 0": mfrec_method(
            implicit_model, similar="cooccurrence", shrinkage=0
        ),
        "not an option: ratings shrunk towards the implicit factors, s=25": shrunk_blend_method(implicit_model),
        "mfrec EASE preset, similar=factors (its weights)": mfrec_method(ease, similar="factors"),
        "mfrec rating preset (default), similar=factors, shrinkage 20": mfrec_method(rating_model, similar="factors"),
        f"implicit ALS similar_items {tuned_als}": implicit_method(als, train.item_map),
        "implicit CosineRecommender (K 200)": implicit_method(cosine, train.item_map),
        "the most-rated items, whatever the query (a yardstick)": popularity_method(train),
    }


def near_in_time(split, user_frame: pd.DataFrame) -> pd.Series:
    """For each (user, query item) of ``user_frame``: the user's liked test items rated within
    ``NEAR_IN_TIME`` ratings of the query, in the order of the user's timestamps."""
    both = pd.concat([split.train.to_frame().assign(test=False), split.test.to_frame().assign(test=True)])
    both = both.sort_values(["user", "timestamp", "item"], kind="stable")
    both["position"] = both.groupby("user").cumcount()
    position = both.set_index(["user", "item"])["position"]
    liked = both[both["test"] & (both["rating"] >= 4.0)]
    by_user = {user: (group["item"].to_numpy(), group["position"].to_numpy()) for user, group in liked.groupby("user")}
    queried = position.loc[list(zip(user_frame["user"], user_frame["item"], strict=True))].to_numpy()
    return pd.Series([set(by_user[u][0][np.abs(by_user[u][1] - p) <= NEAR_IN_TIME].tolist())
                      for u, p in zip(user_frame["user"], queried, strict=True)])  # fmt: skip


def item_to_item(split, neighbours, seed: int) -> dict[str, float]:
    """The protocol of the module docstring for one method: raw, lift and next-in-time scores."""
    train, test = split.train, split.test
    rng = np.random.default_rng(seed)
    liked_test = test.to_frame()[test.ratings >= 4.0].groupby("user")["item"].apply(set)
    frame = train.to_frame()
    rated = frame.groupby("user")["item"].apply(set)
    liked_train = frame[frame["rating"] >= 4.0].groupby("user")["item"].apply(list)
    users = [u for u in liked_test.index if u in liked_train.index]
    queries, owners = [], []
    for user in users:
        items = liked_train[user]
        chosen = rng.choice(len(items), min(QUERIES_PER_USER, len(items)), replace=False)
        queries += [items[c] for c in chosen]
        owners += [user] * len(chosen)
    strangers = [owners[i] for i in rng.permutation(len(owners))]  # the same users, each on another's query
    nearby = near_in_time(split, pd.DataFrame({"user": owners, "item": queries}))
    width = N + max(len(rated[u]) for u in users)  # enough to leave out everything the user rated
    width = min(width, train.n_items - 1)
    found = neighbours(np.asarray(queries, dtype=object), width)

    def top(query_items, user) -> set:
        return set([i for i in query_items if i is not None and i not in rated[user]][:N])

    per_user: dict = {}
    for query_items, user, stranger, near in zip(found, owners, strangers, nearby, strict=True):
        mine = top(query_items, user)
        hits = len(mine & liked_test[user])
        strangers_hit = bool(top(query_items, stranger) & liked_test[stranger])
        in_time = float(bool(mine & near)) if near else np.nan  # queries with a liked test item near in time
        row = [hits > 0, hits / N, hits / min(N, len(liked_test[user])), (hits > 0) - strangers_hit, in_time]
        per_user.setdefault(user, []).append(row)
    rows = np.array([np.mean(v, axis=0) for v in per_user.values()])  # NaN for in_time where a user had none
    timed = rows[:, 4][~np.isnan(rows[:, 4])]
    return {"hit_rate": float(rows[:, 0].mean()), "precision": float(rows[:, 1].mean()),
            "recall": float(rows[:, 2].mean()), "lift": float(rows[:, 3].mean()),
            "near_in_time": float(timed.mean()), "users": len(per_user), "queries": len(queries)}  # fmt: skip


def franchise_ranks(neighbours) -> dict[str, list[int | None]]:
    """The rank (1-based) of each sequel among its series' first film's 100 nearest items; None beyond."""
    out = {}
    for name, (query, sequels) in FRANCHISES.items():
        found = list(neighbours(np.array([query], dtype=object), 100)[0])
        out[name] = [found.index(s) + 1 if s in found else None for s in sequels]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 0, 1, 2])
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "similar_items.json")
    args = parser.parse_args()
    peers = Path(__file__).parent / "results" / "peers_ranking.json"
    tuned_als = {"factors": 128, "regularization": 30.0, "alpha": 1.0}  # as docs/benchmarks.md reports
    if peers.exists():  # implicit's ALS as tuned for rating input by peers_ranking.py
        tuned_als = json.loads(peers.read_text()).get("rating", {}).get("tuned", {}).get("implicit ALS", tuned_als)
    data = load_dataset("ml-latest-small")
    pairs = sequel_pairs(data)
    results: dict[str, dict] = {}
    for seed in args.seeds:
        split = split_ratings(data, "stratified", seed=seed)
        started = time.perf_counter()
        methods = fit_methods(split, tuned_als)
        print(f"\nseed {seed} (fitted in {time.perf_counter() - started:.0f} s)")
        print("| method | hit rate | precision@10 | recall@10 | lift | next in time | sequels in top 10 |\n"
              "|---|---:|---:|---:|---:|---:|---:|")  # fmt: skip
        trained = set(split.train.item_map.raw(np.flatnonzero(split.train.item_counts() > 0)).tolist())
        for name, neighbours in methods.items():
            r = item_to_item(split, neighbours, seed)
            r["sequels"] = sequel_rate(neighbours, pairs, trained)
            entry = results.setdefault(name, {"protocol": []})
            entry["protocol"].append({**r, "seed": seed})
            if seed == args.seeds[0]:
                entry["franchises"] = franchise_ranks(neighbours)
            print(f"| {name} | {r['hit_rate']:.4f} | {r['precision']:.4f} | {r['recall']:.4f} | {r['lift']:.4f} | "
                  f"{r['near_in_time']:.4f} | {r['sequels']:.3f} |", flush=True)  # fmt: skip
    names = list(FRANCHISES)
    measures = ("hit_rate", "precision", "recall", "lift", "near_in_time", "sequels")
    print(f"\nmean over seeds {args.seeds}, and franchise ranks (seed {args.seeds[0]}; sequels in order)")
    print(f"({len(pairs)} title-derived sequel pairs)")
    head = ["method", "hit rate", "precision@10", "recall@10", "lift", "next in time", "sequel set", *names,
            "franchise top 10", "franchise MRR"]  # fmt: skip
    print("| " + " | ".join(head) + " |\n|---|" + "---:|" * (len(head) - 1))
    for name, entry in results.items():
        entry["mean"] = {m: float(np.mean([r[m] for r in entry["protocol"]])) for m in measures}
        ranks = entry["franchises"]
        flat = [r for f in names for r in ranks[f]]
        entry["mean"]["franchise_top10"] = sum(r is not None and r <= N for r in flat)
        entry["mean"]["franchise_mrr"] = float(np.mean([0.0 if r is None else 1 / r for r in flat]))
        shown = [", ".join("-" if r is None else str(r) for r in ranks[f]) for f in names]
        m = entry["mean"]
        print(f"| {name} | {m['hit_rate']:.4f} | {m['precision']:.4f} | {m['recall']:.4f} | {m['lift']:.4f} | "
              f"{m['near_in_time']:.4f} | {m['sequels']:.3f} | " + " | ".join(shown)
              + f" | {m['franchise_top10']}/{len(flat)} | {m['franchise_mrr']:.3f} |")  # fmt: skip
    print("\nbest on each measure:")
    for measure in (*measures, "franchise_top10", "franchise_mrr"):
        best = max(results, key=lambda name: results[name]["mean"][measure])
        print(f"  {measure}: {best} ({results[best]['mean'][measure]:.4g})")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(results, indent=2, default=str) + "\n")


if __name__ == "__main__":
    main()
