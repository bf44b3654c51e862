import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mfrec.data import IdMap
from mfrec.errors import UnknownIdError

ids = st.one_of(
    st.lists(st.integers(-(2**40), 2**40), min_size=1, max_size=50),
    st.lists(st.text(min_size=1, max_size=6), min_size=1, max_size=50),
)


@given(ids)
def test_codes_are_contiguous_and_round_trip(values):
    idmap, codes = IdMap.from_values(values)
    assert len(idmap) == len(set(values))
    assert set(codes.tolist()) == set(range(len(idmap)))
    assert idmap.raw(codes).tolist() == list(values)
    assert np.array_equal(idmap.index(values), codes)


@given(ids)
def test_unknown_ids_map_to_minus_one_and_raise(values):
    idmap, _ = IdMap.from_values(values)
    unknown = "never-an-id-xyz" if isinstance(values[0], str) else 2**41
    assert idmap.get_indexer([unknown])[0] == -1
    with pytest.raises(UnknownIdError, match="unknown"):
        idmap.index([unknown])


def test_text_ids_are_coerced_for_integer_maps():
    idmap, _ = IdMap.from_values([5, 7, 9])
    assert idmap.index_one("7") == 1
    assert idmap.get_indexer(np.array(["9", "5"])).tolist() == [2, 0]
    with pytest.raises(UnknownIdError, match="'abc'"):
        idmap.index_one("abc")


def test_duplicate_ids_are_refused():
    with pytest.raises(ValueError, match="not unique"):
        IdMap(np.array([1, 2, 1]))
