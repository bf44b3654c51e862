"""MovieLens layouts, local lookup order, and the download path (with a fake network)."""

import hashlib
import io
import urllib.error
import zipfile
from dataclasses import replace

import pytest

from mfrec.data import fetch as fetch_module
from mfrec.data import load_dataset
from mfrec.data.movielens import REGISTRY
from mfrec.errors import DatasetNotFoundError, DownloadError

FILES = {
    "csv": {
        "ratings.csv": "userId,movieId,rating,timestamp\n1,10,4.0,100\n1,20,3.5,101\n2,10,5.0,102\n",
        "movies.csv": 'movieId,title,genres\n10,"Heat, The (1995)",Drama\n20,Up (2009),Animation\n',
    },
    "dat": {
        "ratings.dat": "1::10::4::100\n1::20::3::101\n2::10::5::102\n",
        "movies.dat": "10::Heat (1995)::Drama\n20::Caf\xe9 (2009)::Comedy\n",
    },
    "udata": {
        "u.data": "1\t10\t4\t100\n1\t20\t3\t101\n2\t10\t5\t102\n",
        "u.item": "10|Heat (1995)|01-Jan-1995||http://x|0|1\n20|Up (2009)|01-Jan-2009||http://y|1|0\n",
    },
}


def make_copy(root, name):
    spec = REGISTRY[name]
    folder = root / spec.folder
    folder.mkdir(parents=True)
    for member, text in FILES[spec.layout].items():
        (folder / member).write_bytes(text.encode("latin-1" if member.endswith((".dat", ".item")) else "utf-8"))
    return folder


def make_zip(path, name):
    spec = REGISTRY[name]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for member, text in FILES[spec.layout].items():
            encoding = "latin-1" if member.endswith((".dat", ".item")) else "utf-8"
            archive.writestr(f"{spec.folder}/{member}", text.encode(encoding))
    path.write_bytes(buffer.getvalue())
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["ml-latest-small", "ml-1m", "ml-10m", "ml-100k", "ml-25m", "ml-32m"])
def test_each_layout_parses_from_folder_and_zip(tmp_path, name):
    folder = make_copy(tmp_path / "f", name)
    zipped = tmp_path / f"{name}.zip"
    make_zip(zipped, name)
    for path in (folder, zipped):
        data = load_dataset(name, path)
        assert len(data) == 3 and data.n_users == 2 and data.n_items == 2
        assert data.user_map.raw(data.users).tolist() == [1, 1, 2]
        assert data.ratings.tolist()[:2] in ([4.0, 3.5], [4.0, 3.0])
        title = data.title(int(data.item_map.index_one(10)))
        assert title.startswith("Heat")
    if REGISTRY[name].layout == "dat":
        assert data.title(int(data.item_map.index_one(20))) == "Caf\xe9 (2009)"


def test_lookup_order_mfrec_data_then_cache(tmp_path, monkeypatch):
    data_root = tmp_path / "data"
    make_copy(data_root, "ml-1m")
    monkeypatch.setenv("MFREC_DATA", str(data_root))
    assert fetch_module.locate("ml-1m", download=False).path == data_root / "ml-1m"
    monkeypatch.setenv("MFREC_DATA", str(tmp_path / "empty"))
    make_copy(fetch_module.cache_dir(), "ml-1m")
    assert fetch_module.locate("ml-1m", download=False).path == fetch_module.cache_dir() / "ml-1m"


def test_explicit_path_that_is_not_a_copy(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="not a copy of ml-1m"):
        load_dataset("ml-1m", tmp_path)
    with pytest.raises(DatasetNotFoundError, match=r"typo: no such file or folder \(expected a copy of ml-1m"):
        load_dataset("ml-1m", tmp_path / "typo")


def test_an_explicit_path_may_name_the_ratings_file_of_a_copy(tmp_path):
    """``--data-path ml-1m/ratings.dat`` (the file, not its folder) was "not a copy of ml-1m"."""
    make_copy(tmp_path, "ml-1m")
    folder = tmp_path / "ml-1m"
    assert fetch_module.locate("ml-1m", folder / REGISTRY["ml-1m"].ratings_file, download=False).path == folder
    other = tmp_path / "mine.dat"
    other.write_text("1::2::3::4\n")
    with pytest.raises(DatasetNotFoundError, match="not a copy of ml-1m"):
        fetch_module.locate("ml-1m", other, download=False)


def test_unknown_name_lists_choices():
    with pytest.raises(DatasetNotFoundError, match=r"unknown dataset 'ml-2m'.*ml-100k"):
        load_dataset("ml-2m")


def test_offline_says_where_to_put_files(monkeypatch, tmp_path):
    monkeypatch.setenv("MFREC_DATA", str(tmp_path))

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("no network")

    monkeypatch.setattr(fetch_module.urllib.request, "urlopen", refuse)
    with pytest.raises(DatasetNotFoundError, match=r"could not be downloaded \(no network\): put ml-1m.zip"):
        load_dataset("ml-1m")
    assert not (fetch_module.cache_dir() / "ml-1m").exists()


class FakeResponse(io.BytesIO):
    def __init__(self, payload):
        super().__init__(payload)
        self.headers = {"Content-Length": str(len(payload))}


def test_download_verifies_checksum_and_moves_atomically(monkeypatch, tmp_path):
    monkeypatch.setenv("MFREC_DATA", str(tmp_path / "none"))
    payload = make_zip(tmp_path / "z.zip", "ml-1m")
    good = hashlib.md5(payload).hexdigest()
    monkeypatch.setattr(fetch_module.urllib.request, "urlopen", lambda url, timeout: FakeResponse(payload))
    monkeypatch.setitem(REGISTRY, "ml-1m", replace(REGISTRY["ml-1m"], md5="0" * 32))
    with pytest.raises(DownloadError, match="checksum mismatch"):
        load_dataset("ml-1m")
    assert list(fetch_module.cache_dir().iterdir()) == []  # nothing half-written is left
    monkeypatch.setitem(REGISTRY, "ml-1m", replace(REGISTRY["ml-1m"], md5=good))
    data = load_dataset("ml-1m")
    assert len(data) == 3
    assert (fetch_module.cache_dir() / "ml-1m" / "ratings.dat").is_file()


def test_published_md5_is_used_when_none_is_pinned(monkeypatch, tmp_path):
    monkeypatch.setenv("MFREC_DATA", str(tmp_path / "none"))
    payload = make_zip(tmp_path / "z.zip", "ml-latest-small")
    digest = hashlib.md5(payload).hexdigest()

    def serve(url, timeout):
        text = f"MD5 (ml-latest-small.zip) = {digest}\n".encode()
        return FakeResponse(text if url.endswith(".md5") else payload)

    monkeypatch.setattr(fetch_module.urllib.request, "urlopen", serve)
    assert len(load_dataset("ml-latest-small")) == 3


def _damaged_zip(path, how: str, compression: int) -> None:
    """An ml-latest-small zip whose ratings member (about 1 MB) is cut short or has bytes changed."""
    rows = "".join(f"{u},{i},{1 + (u * i) % 5}.0,{1000 + u * 50 + i}\n" for u in range(1, 400) for i in range(1, 60))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=compression) as archive:
        archive.writestr("ml-latest-small/ratings.csv", "userId,movieId,rating,timestamp\n" + rows)
        archive.writestr("ml-latest-small/movies.csv", FILES["csv"]["movies.csv"])
    data = bytearray(buffer.getvalue())
    if how == "cut":
        data = data[: len(data) // 2]
    else:
        middle = len(data) // 3
        data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["cut", "changed"])
@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED], ids=["stored", "deflated"])
def test_a_damaged_zip_is_named_by_every_reader_and_by_fetch(tmp_path, how, compression):
    """A zip cut short or with changed bytes is one DataError (never a crash or an abort in Arrow's threads),
    from loading, `datasets info` and `datasets fetch`, which reads a zip copy through once."""
    import subprocess
    import sys

    from mfrec.errors import DataError

    path = tmp_path / "ml-latest-small.zip"
    _damaged_zip(path, how, compression)
    with pytest.raises(DataError, match=r"ml-latest-small.zip: a (damaged zip|zip that cannot be read)"):
        load_dataset("ml-latest-small", path)
    for verb in ("info", "fetch"):
        done = subprocess.run([sys.executable, "-m", "mfrec.cli", "datasets", verb, "ml-latest-small", "--data-path",
                               str(path)], capture_output=True, text=True, env={**__import__("os").environ,
                               "MFREC_CACHE": str(tmp_path / "cache")})  # fmt: skip
        assert done.returncode == 1, (verb, done.returncode, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and "download it again" in lines[0], done.stderr


def test_the_offline_message_names_an_mfrec_data_that_holds_no_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("MFREC_DATA", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MFREC_CACHE", str(tmp_path / "cache"))
    with pytest.raises(DatasetNotFoundError, match=r"make MFREC_DATA \(now .*elsewhere, which holds no ml-1m/"):
        load_dataset("ml-1m", download=False)
