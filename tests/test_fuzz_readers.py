"""Fuzzing the readers: any text or bytes either parse into valid Ratings or raise DataError."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mfrec.data import Columns, read_ratings
from mfrec.errors import DataError

cells = st.one_of(
    st.integers(-5, 10).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(str),
    st.sampled_from(["", " ", "NaN", "inf", "abc", '"', '"a,b"', "1e3", "4.5", "\u00e9", "1,2"]),
    st.text(max_size=4),
)
rows = st.lists(st.lists(cells, min_size=0, max_size=5), max_size=12)
headers = st.sampled_from(["user,item,rating", "user,item,rating,timestamp", "user,item", "a,b,c", ""])


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(header=headers, body=rows, delimiter=st.sampled_from([",", ";", "\t"]),
       end=st.sampled_from(["\n", "\r\n", "\r"]))
def test_csv_text_parses_or_raises_data_error(tmp_path, header, body, delimiter, end):
    text = header + end + end.join(delimiter.join(row) for row in body)
    path = tmp_path / "fuzz.csv"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates become invalid UTF-8
    try:
        data = read_ratings(path, columns=Columns("user", "item", "rating"), scale=(0.5, 5.0))
    except DataError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
        return
    assert len(data) > 0
    assert np.isfinite(data.ratings).all() and (data.ratings >= 0.5).all() and (data.ratings <= 5.0).all()
    assert data.users.max() < data.n_users and data.items.max() < data.n_items


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.binary(max_size=300))
def test_arbitrary_bytes_parse_or_raise_data_error(tmp_path, payload):
    path = tmp_path / "fuzz.tsv"
    path.write_bytes(b"user\titem\trating\n" + payload)
    try:
        data = read_ratings(path, columns=Columns("user", "item", "rating"))
    except DataError:
        return
    assert np.isfinite(data.ratings).all()


def test_a_column_name_with_a_newline_still_gives_a_one_line_error(tmp_path):
    # found by the fuzzer: a quoted header cell may hold a line break
    path = tmp_path / "odd.csv"
    path.write_text('"us\ner",item\n1,2\n')
    try:
        read_ratings(path, columns=Columns("user", "item", "rating"))
    except DataError as exc:
        assert "\n" not in str(exc) and "'us\\ner'" in str(exc)
    else:
        raise AssertionError("a file without the rating column was accepted")


MAGIC = [b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"PK\x03\x04", b"PAR1", b"\xd0\xcf\x11\xe0", b"(\xb5/\xfd"]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(magic=st.sampled_from(MAGIC), payload=st.binary(max_size=300), name=st.sampled_from(["f.csv", "f.csv.gz",
                                                                                             "f.zip", "f.parquet"]))
def test_bytes_that_look_compressed_or_binary_read_or_raise_one_line_data_errors(tmp_path, magic, payload, name):
    path = tmp_path / name
    path.write_bytes(magic + payload)
    try:
        read_ratings(path, columns=Columns("user", "item", "rating"))
    except DataError as exc:
        assert "\n" not in str(exc) and str(path) in str(exc)
