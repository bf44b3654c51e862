"""In a notebook: tables in memory read like files, and every object shows what it is."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mfrec
from mfrec import MatrixFactorization, read_ratings, split_ratings
from mfrec.errors import DataError

ids = st.one_of(st.integers(-(2**40), 2**40), st.text("abcxyz", min_size=1, max_size=3))
rows = st.lists(st.tuples(ids, ids, st.sampled_from([0.5, 1.0, 3.5, 5.0])), min_size=1, max_size=30)


def same(a: mfrec.Ratings, b: mfrec.Ratings) -> None:
    assert a.to_frame().equals(b.to_frame())
    assert a.kind == b.kind and a.scale == b.scale


@pytest.mark.filterwarnings("ignore::mfrec.data.readers.DuplicateRatingsWarning")
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=rows)
def test_a_dataframe_reads_exactly_like_the_same_table_written_to_a_file(rows, tmp_path):
    # ids of one column are all integers or all text here, as a file's typed column would be
    frame = pd.DataFrame(rows, columns=["user", "item", "rating"])
    for column in ("user", "item"):
        if frame[column].map(type).nunique() > 1:
            frame[column] = frame[column].astype(str)
    path = tmp_path / "ratings.parquet"
    frame.to_parquet(path)
    from_file = read_ratings(path)
    same(read_ratings(frame), from_file)
    same(read_ratings(frame.set_index(np.arange(len(frame)) * 7 + 3)), from_file)  # any index
    import pyarrow as pa

    same(read_ratings(pa.Table.from_pandas(frame)), from_file)


def test_a_polars_dataframe_is_read_when_polars_is_installed():
    pl = pytest.importorskip("polars")
    frame = pl.DataFrame({"u": [1, 2], "i": ["a", "b"], "r": [4.0, 5.0]})
    ratings = read_ratings(frame, columns=mfrec.Columns("u", "i", "r"))
    assert len(ratings) == 2 and list(ratings.item_map.raw(ratings.items)) == ["a", "b"]


def test_tables_are_checked_like_files_and_other_objects_are_typed_errors():
    with pytest.raises(DataError, match=r"pandas DataFrame, row 2: rating 9 is outside the rating scale"):
        read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [4.0, 9.0]}))
    with pytest.raises(DataError, match=r"pandas DataFrame: missing column\(s\) 'stars'"):
        read_ratings(pd.DataFrame({"user": [1], "item": [1], "rating": [4.0]}),
                     columns=mfrec.Columns("user", "item", "stars"))  # fmt: skip
    with pytest.raises(DataError, match="not list"):
        read_ratings([(1, 2, 3.0)])
    with pytest.raises(DataError, match="not dict"):
        read_ratings({"user": [1], "item": [1], "rating": [4.0]})


def test_objects_say_what_they_are(lowrank):
    assert repr(lowrank) == f"Ratings('{lowrank.name}': {len(lowrank):,} ratings, 60 users, 40 items, scale 0.5-5)"
    assert "<table" in lowrank._repr_html_() and "ratings" in lowrank._repr_html_()
    split = split_ratings(lowrank, "random", seed=3)
    sizes = split.sizes()
    assert repr(split) == (f"Split(random seed 3: train {sizes['train']:,} / val {sizes['val']:,} / "
                           f"test {sizes['test']:,} of '{lowrank.name}')")  # fmt: skip
    model = MatrixFactorization(model="biased", epochs=3, patience=0, device="cpu")
    assert repr(model).endswith("; not fitted)") and "not fitted" in model._repr_html_()
    model.fit(split.train)
    assert "trained on" in repr(model) and "60 users" in repr(model) and "0x" not in repr(model)
    recs = model.recommend([lowrank.user_map.raw(np.array([0]))[0]], n=3)
    assert repr(recs).startswith("Recommendations(1 user, top 3, scores in stars)\n")
    assert "<table" in recs._repr_html_()
    similar = model.similar_items(lowrank.item_map.raw(np.array([0])), n=2)
    assert repr(similar).startswith("Recommendations(1 query item, top 2, cosine similarities)")
