import calendar
import io
import re
import warnings
from datetime import datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mfrec.data import Columns, DuplicateRatingsWarning, read_ratings
from mfrec.errors import DataError

COLS = Columns("u", "i", "r", "t")


def write(tmp_path, text, name="r.csv", mode="w"):
    path = tmp_path / name
    if mode == "wb":
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def test_reads_and_maps_ids(tmp_path):
    path = write(tmp_path, "u,i,r,t\n10,a,4.5,1\n20,b,3,2\n10,b,1,3\n")
    data = read_ratings(path, columns=COLS)
    assert len(data) == 3 and data.n_users == 2 and data.n_items == 2
    assert data.user_map.raw(data.users).tolist() == [10, 20, 10]
    assert data.item_map.raw(data.items).tolist() == ["a", "b", "b"]
    assert data.ratings.dtype == np.float32 and data.timestamps.tolist() == [1, 2, 3]


def test_parquet_and_tsv(tmp_path):
    import pandas as pd

    frame = pd.DataFrame({"u": [1, 2], "i": [3, 4], "r": [1.0, 2.0], "t": [5, 6]})
    frame.to_parquet(tmp_path / "r.parquet")
    frame.to_csv(tmp_path / "r.tsv", sep="\t", index=False)
    for name in ("r.parquet", "r.tsv"):
        data = read_ratings(tmp_path / name, columns=COLS)
        assert data.ratings.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("text", "pattern"),
    [
        ("u,i,x\n1,2,3\n", r"missing column\(s\) 'r'.*found 'u', 'i', 'x'"),
        ("u,i,r\n1,2,abc\n", r"row 2: rating 'abc' is not a number"),
        ("u,i,r\n1,2,4\n1,3,\n", r"row 3: rating is missing"),
        ("u,i,r\n1,2,NaN\n", r"row 2: rating is missing"),
        ("u,i,r\n1,2,inf\n", r"row 2: rating 'inf' is not finite"),
        ("u,i,r\n1,2,4\n1,3,7\n", r"row 3: rating 7 is outside the rating scale \[0.5, 5\]"),
        ("u,i,r\n", r"no ratings"),
        ("", r"empty"),
        ("u,i,r\n1,,4\n", r"row 2: item id is missing"),
        ('u,i,r\n1,2,3\n1,"3,4\n', r"malformed"),
    ],
)
def test_bad_input_names_file_row_and_value(tmp_path, text, pattern):
    path = write(tmp_path, text)
    with pytest.raises(DataError, match=pattern) as info:
        read_ratings(path, columns=Columns("u", "i", "r"))
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_file_and_non_utf8(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        read_ratings(tmp_path / "nope.csv")
    path = write(tmp_path, b"u,i,r\n1,2,3\n1,\xff\xfe,4\n", mode="wb")
    with pytest.raises(DataError, match="line 3: bytes that are not valid utf-8"):
        read_ratings(path, columns=Columns("u", "i", "r"))


def test_bom_is_ignored(tmp_path):
    path = write(tmp_path, "\ufeffu,i,r\n1,2,3\n")
    assert len(read_ratings(path, columns=Columns("u", "i", "r"))) == 1


def test_duplicates_keep_latest_by_timestamp_and_are_reported(tmp_path):
    path = write(tmp_path, "u,i,r,t\n1,2,1,30\n1,2,5,10\n1,3,2,5\n1,2,3,20\n")
    with pytest.warns(DuplicateRatingsWarning, match="dropped 2 duplicate"):
        data = read_ratings(path, columns=COLS)
    assert data.info["duplicates_dropped"] == 2
    assert sorted(zip(data.item_map.raw(data.items).tolist(), data.ratings.tolist(), strict=True)) == [
        (2, 1.0),
        (3, 2.0),
    ]


def test_duplicates_can_be_refused(tmp_path):
    path = write(tmp_path, "u,i,r\n1,2,1\n1,2,5\n")
    with pytest.raises(DataError, match=r"row 3: duplicate rating for user 1 and item 2"):
        read_ratings(path, columns=Columns("u", "i", "r"), on_duplicates="error")


def test_no_duplicates_no_warning(tmp_path):
    path = write(tmp_path, "u,i,r\n1,2,1\n1,3,5\n")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_ratings(path, columns=Columns("u", "i", "r")).info["duplicates_dropped"] == 0


def test_iso_dates_are_unix_seconds_and_other_text_is_named(tmp_path):
    stamps = ["2020-01-01", "2020-01-01T00:00:01Z", "2020-01-01 02:00:00+02:00", "1969-12-31T23:59:59.5",
              "1677-01-01", "9999-12-31T23:59:59"]  # fmt: skip
    body = "".join(f"{k},{k},4,{stamp}\n" for k, stamp in enumerate(stamps))
    data = read_ratings(write(tmp_path, "u,i,r,t\n" + body), columns=COLS)
    assert data.timestamps.tolist() == [1577836800, 1577836801, 1577836800, -1, -9246096000, 253402300799]
    cases = {
        "2020-01-01\n1,1,4,\n": "row 3: timestamp is missing",
        "2020-01-01\n1,1,4,01/02/2020\n": "row 3: timestamp '01/02/2020' is neither a whole number .* nor an ISO 8601",
        "2020-01-01\n1,1,4,5\n": r"row 2: timestamp '2020-01-01' is a date, and row 3 holds a number \(5\)",
        "5\n1,1,4,2020-01-01\n": r"row 3: timestamp '2020-01-01' is a date, and row 2 holds a number \(5\)",
        "yesterday\n1,1,4,today\n": r"row 2: timestamp 'yesterday' is neither .* \(2 such rows\)",
    }
    for rows, message in cases.items():
        with pytest.raises(DataError, match=message):
            read_ratings(write(tmp_path, "u,i,r,t\n0,0,4," + rows), columns=COLS)


@settings(max_examples=60, deadline=None)
@given(moments=st.lists(st.datetimes(min_value=datetime(1700, 1, 1), max_value=datetime(9000, 1, 1),
                                     timezones=st.sampled_from([timezone.utc, timezone(timedelta(hours=2)),
                                                                timezone(timedelta(hours=-5, minutes=-30))])),
                        min_size=1, max_size=20),
       sep=st.sampled_from(["T", " "]))  # fmt: skip
def test_any_iso_date_time_reads_as_its_floored_unix_second(tmp_path_factory, moments, sep):
    path = tmp_path_factory.mktemp("iso") / "r.csv"
    path.write_text("u,i,r,t\n" + "".join(f"{k},{k},4,{m.isoformat(sep=sep)}\n" for k, m in enumerate(moments)))
    expected = [calendar.timegm(m.astimezone(timezone.utc).utctimetuple()) for m in moments]
    assert read_ratings(path, columns=COLS).timestamps.tolist() == expected


PLAIN = "u,i,r,t\n10,a,4.5,1\n20,b,3,2\n10,b,1,3\n"


def _packed(kind: str, name: str, data: bytes, folder):
    import bz2
    import gzip
    import lzma
    import zipfile

    path = folder / name
    if kind == "zip":
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr(f"inside/{name.removesuffix('.zip')}", data)
            archive.writestr(f"__MACOSX/inside/._{name.removesuffix('.zip')}", b"\x00\x05")  # macOS adds these
    else:
        path.write_bytes({"gzip": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress}[kind](data))
    return path


@pytest.mark.parametrize(("kind", "name"), [("gzip", "r.csv.gz"), ("bz2", "r.csv.bz2"), ("xz", "r.csv.xz"),
                                            ("zip", "r.csv.zip"), ("gzip", "r.csv"), ("gzip", "r.tsv.gz"),
                                            ("gzip", "r.tsv"), ("zip", "r.tsv.zip")])  # fmt: skip
def test_compressed_tables_read_as_the_plain_file(tmp_path, kind, name):
    text = PLAIN.replace(",", "\t") if ".tsv" in name else PLAIN
    plain = read_ratings(write(tmp_path, PLAIN), columns=COLS)
    packed = read_ratings(_packed(kind, name, text.encode(), tmp_path), columns=COLS)
    assert packed.to_frame().equals(plain.to_frame())


def test_parquet_is_known_by_its_bytes_and_inside_a_zip(tmp_path):
    frame = pd.read_csv(io.StringIO(PLAIN))
    frame.loc[1, "r"] = 9.0
    frame.to_parquet(tmp_path / "named.csv")
    buffer = io.BytesIO()
    frame.to_parquet(buffer)
    zipped = _packed("zip", "r.parquet.zip", buffer.getvalue(), tmp_path)
    for path in (tmp_path / "named.csv", zipped):  # Parquet rows count from 1, with no header line
        with pytest.raises(DataError, match=f"^{re.escape(str(path))}, row 2: rating 9 is outside"):
            read_ratings(path, columns=COLS)


def test_spreadsheets_zips_of_several_files_and_damaged_archives_are_named(tmp_path):
    import gzip
    import zipfile

    with zipfile.ZipFile(tmp_path / "book.xlsx", "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    (tmp_path / "old.xls").write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504))
    with zipfile.ZipFile(tmp_path / "ml.zip", "w") as archive:
        archive.writestr("ml/ratings.csv", PLAIN)
        archive.writestr("ml/movies.csv", "movieId,title,genres\n")
    (tmp_path / "cut.csv.gz").write_bytes(gzip.compress(PLAIN.encode())[:20])
    (tmp_path / "r.csv.zst").write_bytes(b"(\xb5/\xfd" + bytes(20))
    cases = {
        "book.xlsx": "a spreadsheet or office document .* save the sheet as CSV",
        "old.xls": r"a spreadsheet \(Excel\); save the sheet as CSV",
        "ml.zip": r"a zip of 2 files \(ml/ratings.csv, ml/movies.csv\), not one \(a MovieLens zip: --dataset NAME",
        "cut.csv.gz": r"damaged compressed file \(",
        "r.csv.zst": "Zstandard-compressed, which is not read here",
    }
    for name, message in cases.items():
        with pytest.raises(DataError, match=f"^{re.escape(str(tmp_path / name))}: {message}"):
            read_ratings(tmp_path / name, columns=COLS)


@pytest.mark.parametrize(("sep", "flag"), [(";", "';'"), ("\t", "'\\t'"), ("|", "'|'"), ("::", "'::'")])
def test_a_table_read_as_one_column_names_the_separator_its_header_uses(tmp_path, sep, flag):
    path = write(tmp_path, PLAIN.replace(",", sep), name="r.csv")
    with pytest.raises(DataError, match=f"one column: the header holds {re.escape(flag)}, so try --sep "):
        read_ratings(path, columns=COLS)
    assert len(read_ratings(path, columns=COLS, sep=sep)) == 3


def test_a_decimal_comma_under_a_semicolon_header_names_the_separator(tmp_path):
    """``4,5`` under ``u;i;r;t`` made line 2 hold two fields; the hint said "a title line", not the separator."""
    path = write(tmp_path, "u;i;r;t\n1;a;4,5;1\n", name="r.csv")
    with pytest.raises(DataError, match=r"line 2: 2 fields, but the header names 1 columns \(one column: the "
                                        r"header holds ';', so try --sep ';'"):  # fmt: skip
        read_ratings(path, columns=COLS)


def test_utf16_and_other_encodings_say_to_save_as_utf8(tmp_path):
    path = tmp_path / "r.csv"
    path.write_bytes("u,i,r,t\n1,a,4,1\n".encode("utf-16"))
    with pytest.raises(DataError, match=r"UTF-16 text .*save it as UTF-8 CSV"):
        read_ratings(path, columns=COLS)
    path.write_bytes("u,i,r,t\n1,Am\u00e9lie,4,1\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"line 2: bytes that are not valid utf-8 text \(save the file as UTF-8\)"):
        read_ratings(path, columns=COLS)


def test_an_integer_id_of_any_length_is_read_as_written(tmp_path):
    """An id of 100,000 digits was an internal error: int() refuses text of more than 4,300 digits."""
    long_id = "9" * 100_000
    data = read_ratings(write(tmp_path, f"u,i,r,t\n{long_id},a,4,1\n2,b,3,2\n"), columns=COLS)
    assert data.user_map.ids.dtype == object and long_id in data.user_map.ids.tolist()  # text: beyond 64 bits


def test_a_header_that_names_a_column_twice_is_refused(tmp_path):
    # pandas would read the second as 'user.1' and train on the first without a word
    for text, shown in [("u,u,i,r,t\n1,9,a,4,1\n", "'u' twice (columns 1 and 2)"),
                        ('u,i,r,t,"u"\n1,a,4,1,2\n', "'u' twice (columns 1 and 5)")]:  # fmt: skip
        with pytest.raises(DataError, match=re.escape(f"line 1: the header names {shown}")):
            read_ratings(write(tmp_path, text), columns=COLS)
    assert len(read_ratings(write(tmp_path, "u,i,r,t,,\n1,a,4,1,,\n2,b,3,2,,\n"), columns=COLS)) == 2  # blank names


def test_user_ids_come_one_per_line_or_from_a_tables_user_column(tmp_path):
    import gzip

    from mfrec.data.readers import read_ids

    (tmp_path / "plain.txt").write_text("10\n\n 20 \n30\n")
    (tmp_path / "header.txt").write_text("user\n10\n20\n")
    (tmp_path / "table.csv").write_text("user,score\n10,1\n20,2\n")
    (tmp_path / "table.tsv.gz").write_bytes(gzip.compress(b"score\tuser\n1\t10\n2\t20\n"))
    pd.DataFrame({"user": [10, 20]}).to_parquet(tmp_path / "table.parquet")
    assert read_ids(tmp_path / "plain.txt") == ["10", "20", "30"]
    for name in ("header.txt", "table.csv", "table.tsv.gz", "table.parquet"):
        assert read_ids(tmp_path / name) == ["10", "20"], name
    (tmp_path / "empty.txt").write_text("\n \n")
    (tmp_path / "only.txt").write_text("user\n")
    (tmp_path / "other.csv").write_text("uid,score\n10,1\n")
    (tmp_path / "blank.csv").write_text("user,score\n10,1\n,2\n")
    (tmp_path / "latin.txt").write_bytes(b"10\n\xe9\n")
    cases = {"empty.txt": ": no user ids \\(the file is empty\\)", "only.txt": ": no user ids \\(a header only\\)",
             "other.csv": ": no 'user' column for the user ids; found 'uid', 'score'",
             "blank.csv": ", row 2: the user id is missing", "latin.txt": ", line 2: bytes that are not valid utf-8",
             "missing.txt": ": no such file"}  # fmt: skip
    for name, message in cases.items():
        with pytest.raises(DataError, match=re.escape(str(tmp_path / name)) + message):
            read_ids(tmp_path / name)


def test_a_title_or_comment_line_above_the_header_is_named(tmp_path):
    for first in ("# exported 2024-05-31", "My ratings"):
        with pytest.raises(DataError, match=r"line 2: 4 fields, but the header names 1 columns \(is line 1 a title "
                                             r"or comment above the header\?"):  # fmt: skip
            read_ratings(write(tmp_path, f"{first}\n{PLAIN}"), columns=COLS)


@pytest.mark.parametrize("end", ["\n", "\r\n", "\r"])
def test_any_line_end_reads_alike_and_a_repeated_header_name_is_still_found(tmp_path, end):
    text = PLAIN.replace("\n", end)
    path = tmp_path / "ends.csv"
    path.write_bytes(text.encode())  # the bytes as written, with no newline translation
    assert read_ratings(path, columns=COLS).to_frame().equals(
        read_ratings(write(tmp_path, PLAIN, name="plain.csv"), columns=COLS).to_frame())  # fmt: skip
    with pytest.raises(DataError, match="the header names 'u' twice"):
        path.write_bytes(text.replace("u,i,r,t", "u,u,i,r,t").encode())
        read_ratings(path, columns=COLS)


def test_pandas_tables_odd_shapes_are_read_or_named():
    frame = pd.DataFrame({"user": [1, 2, 1], "item": [1, 2, 2], "rating": [3.0, 4.0, 5.0]})
    expected = read_ratings(frame).to_frame()
    for form in (frame.set_index("user"), frame.set_index(["user", "item"]), frame.rename_axis("row")):
        assert read_ratings(form).to_frame().equals(expected)  # a named index level is a column
    twice = pd.DataFrame([[1, 9, 2, 3.0], [2, 8, 3, 4.0]], columns=["user", "user", "item", "rating"])
    with pytest.raises(DataError, match=r"^pandas DataFrame: the table has 2 columns named 'user'; keep one$"):
        read_ratings(twice)
    nested = pd.DataFrame({("a", "user"): [1, 2], ("a", "item"): [1, 2], ("a", "rating"): [3, 4]})
    with pytest.raises(DataError, match=r"missing column\(s\) 'user', 'item', 'rating'; found .*\)\"$"):
        read_ratings(nested)  # no flag is offered for a name that cannot be typed
    # pandas 3 keeps NaN, None and <NA> through astype(str): each is "missing", never a crash
    stamps = Columns("user", "item", "rating", "ts")
    for ts in (pd.array([1, None], dtype="Int64"), [1.0, np.nan], ["2020-01-01", None]):
        with pytest.raises(DataError, match="row 2: timestamp is missing"):
            read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": [3, 4], "ts": ts}), columns=stamps)
    with pytest.raises(DataError, match="row 2: rating is missing"):
        read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": ["3", None]}))
    with pytest.raises(DataError, match=r"row 2: rating '\[1, 2\]' is not a number"):  # a list in a cell
        read_ratings(pd.DataFrame({"user": [1, 2], "item": [1, 2], "rating": pd.Series([3, [1, 2]], dtype=object)}))


def test_id_cells_of_a_table_in_memory_are_text_or_numbers():
    # a DataFrame can hold anything in a cell; a list or a bool as an id is named, not turned into text
    for cells, shown in [([1, [1, 2]], r"\[1, 2\]"), ([1, {"a": 1}], r"\{'a': 1\}"), ([True, 1], "True")]:
        frame = pd.DataFrame({"user": pd.Series(cells, dtype=object), "item": [1, 2], "rating": [3.0, 4.0]})
        with pytest.raises(DataError, match=f"user id {shown} is not text or a number"):
            read_ratings(frame)
    for cells, ids in [([1.0, 2.0], ["1.0", "2.0"]), (["a", 2], ["a", "2"]), ([b"a", "b"], ["a", "b"])]:
        frame = pd.DataFrame({"user": pd.Series(cells, dtype=object), "item": [1, 2], "rating": [3.0, 4.0]})
        assert read_ratings(frame).user_map.ids.tolist() == ids


def _through_a_pipe(tmp_path, data: bytes, name: str = "ratings.csv"):
    """A named pipe that a thread fills with ``data`` once, as ``<(zcat ...)`` or ``cmd | mfrec ... /dev/stdin`` do."""
    import os
    import threading

    fifo = tmp_path / name
    os.mkfifo(fifo)

    def write():
        with open(fifo, "wb") as handle:
            handle.write(data)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return fifo, writer


@pytest.mark.parametrize("compress", [False, True])
def test_a_pipe_is_read_once_whole_plain_or_compressed(tmp_path, compress):
    """The readers look at a file's first bytes and then read it whole: a pipe gives its bytes once, so it is
    copied first. Before, `--ratings <(cat r.csv)` lost its first bytes to the look and failed on the header."""
    import gzip

    text = b"user,item,rating\n" + b"".join(b"%d,%d,%d\n" % (k % 7, k, 1 + k % 5) for k in range(50))
    fifo, writer = _through_a_pipe(tmp_path, gzip.compress(text) if compress else text, "anonymous")
    data = read_ratings(fifo)
    writer.join(5)
    assert len(data) == 50 and data.n_users == 7 and data.name == "anonymous"
    assert read_ratings(write(tmp_path, text, "plain.csv", "wb")).to_frame().equals(data.to_frame())


def test_an_error_in_piped_data_names_the_pipe_and_a_device_is_refused(tmp_path):
    fifo, writer = _through_a_pipe(tmp_path, b"user,item,rating\n1,2,great\n")
    with pytest.raises(DataError, match=re.escape(f"{fifo}, row 2: rating 'great' is not a number")):
        read_ratings(fifo)
    writer.join(5)
    with pytest.raises(DataError, match=r"/dev/zero: a device, not a file of data"):
        read_ratings("/dev/zero")  # endless: refused before reading, never a MemoryError


def test_ids_and_items_come_through_a_pipe_too(tmp_path):
    from mfrec.data import read_items
    from mfrec.data.readers import read_ids

    fifo, writer = _through_a_pipe(tmp_path, b"user\n5\n7\n", "users")
    assert read_ids(fifo) == ["5", "7"]
    writer.join(5)
    fifo, writer = _through_a_pipe(tmp_path, b"item;title\n1;Heat (1995)\n", "items.csv")
    assert read_items(fifo)["title"].tolist() == ["Heat (1995)"]
    writer.join(5)


def test_a_parquet_table_naming_a_column_twice_is_named(tmp_path):
    """pyarrow's own message was about "FieldRef.Name(user)" and "__fragment_index"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "r.parquet"
    pq.write_table(pa.table([pa.array([1, 2]), pa.array([3, 4]), pa.array([4.0, 5.0])],
                            names=["user", "user", "rating"]), path)  # fmt: skip
    with pytest.raises(DataError, match=r"r.parquet: the table names the column 'user' 2 times"):
        read_ratings(path)


def test_an_interaction_of_weight_0_is_no_interaction(tmp_path):
    """A count of 0 (shown, never played) was a positive for BPR and EASE, a relevant test item, and a seen item
    never recommended: it is dropped with a note, as implicit drops the zeros of its matrix."""
    path = write(tmp_path, "user,item,plays\n1,1,3\n1,2,0\n2,1,0\n2,2,5\n")
    with pytest.warns(UserWarning, match=r"dropped 2 interaction\(s\) of weight 0"):
        data = read_ratings(path, columns=Columns("user", "item", "plays"), implicit=True)
    assert len(data) == 2 and data.ratings.min() == 3
    assert read_ratings(path, columns=Columns("user", "item", "plays"), scale=(0, 5)).ratings.min() == 0  # a rating
    write(tmp_path, "user,item,plays\n1,1,0\n2,2,0\n")
    with pytest.raises(DataError, match="every interaction has weight 0"):
        read_ratings(tmp_path / "r.csv", columns=Columns("user", "item", "plays"), implicit=True)
