"""How the ``implicit`` preset was chosen: mean validation NDCG@10 over four split seeds, for each setting tried.

    python benchmarks/implicit_preset_search.py

Every setting is the ``implicit`` preset with some options changed, fitted on the training
part of the stratified splits with seeds 42, 0, 1 and 2 and scored on each validation part
(the metric code of ``mfrec.evaluation.ranking``, K = 10). The preset is the setting with the
best mean validation NDCG@10; test NDCG@10 is printed beside it (seed 42 and the mean of
seeds 0-2) but never used to choose. Prints a Markdown table, best first.
"""

from __future__ import annotations

import itertools

import numpy as np

from mfrec import MatrixFactorization, load_dataset, split_ratings

SEEDS = (42, 0, 1, 2)


def settings() -> list[dict]:
    """The grids searched: Hu et al.'s plain ridge (nu = 0) and the frequency-scaled one (nu = 0.5)."""
    plain = [dict(confidence_offset=b, alpha=a, regularization=r, unobserved_weight=1.0, reg_exponent=0.0)
             for b, a, r in itertools.product((0.0, 1.0), (3.5, 5.0, 7.0, 10.0), (30.0, 45.0, 60.0))]  # fmt: skip
    scaled = [dict(confidence_offset=0.0, alpha=a, regularization=r, unobserved_weight=w, reg_exponent=0.5)
              for a, r, w in itertools.product((3.5, 5.0), (0.3, 0.5, 0.7, 0.9), (0.3, 0.5, 1.0))]  # fmt: skip
    return plain + scaled


def main() -> None:
    data = load_dataset("ml-latest-small")
    splits = [split_ratings(data, "stratified", seed=seed) for seed in SEEDS]
    rows = []
    for setting in settings():
        val, test = [], []
        for split in splits:
            model = MatrixFactorization.from_preset("implicit", device="cpu", **setting).fit(split.train)
            val.append(model.evaluate_ranking(split.val, train=split.train)["ndcg"])
            test.append(model.evaluate_ranking(split.test, train=split.train)["ndcg"])
        rows.append((float(np.mean(val)), setting, test))
        print(f"{setting}: mean val {np.mean(val):.4f}", flush=True)
    print("\n| offset | alpha | lambda | unobserved | exponent | mean val NDCG@10 | test seed 42 | test mean 0-2 |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for val, s, test in sorted(rows, key=lambda row: -row[0]):
        print(f"| {s['confidence_offset']:g} | {s['alpha']:g} | {s['regularization']:g} | {s['unobserved_weight']:g} "
              f"| {s['reg_exponent']:g} | {val:.4f} | {test[0]:.4f} | {np.mean(test[1:]):.4f} |")  # fmt: skip


if __name__ == "__main__":
    main()
