"""Finding a dataset on disk, or downloading it into the cache.

Lookup order for a registered dataset:

1. an explicit path (the extracted folder or the official zip);
2. ``$MFREC_DATA/<name>/`` or ``$MFREC_DATA/<name>.zip``;
3. the user cache, ``$MFREC_CACHE`` or ``$XDG_CACHE_HOME/mfrec`` or ``~/.cache/mfrec``;
4. a download from GroupLens with a progress bar, an MD5 check and an atomic
   move into the cache.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

from mfrec.data.movielens import REGISTRY, MovieLensSpec, Source
from mfrec.errors import DataError, DatasetNotFoundError, DownloadError

CHUNK = 1 << 20


def cache_dir() -> Path:
    """The folder where downloaded datasets are kept."""
    if os.environ.get("MFREC_CACHE"):
        return Path(os.environ["MFREC_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base).expanduser() / "mfrec"


def spec_for(name: str) -> MovieLensSpec:
    """The registry entry for ``name``; raises :class:`DatasetNotFoundError` naming the choices."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise DatasetNotFoundError(
            f"unknown dataset {name!r}; known: {', '.join(REGISTRY)} (or pass a ratings file)"
        ) from None


def candidates(spec: MovieLensSpec) -> list[Path]:
    """Places searched for a local copy, in order (explicit paths come before these)."""
    places = []
    if os.environ.get("MFREC_DATA"):
        root = Path(os.environ["MFREC_DATA"]).expanduser()
        places += [root / spec.name, root / spec.folder, root / f"{spec.name}.zip"]
    root = cache_dir()
    places += [root / spec.name, root / f"{spec.name}.zip"]
    return places


def _as_source(path: Path, spec: MovieLensSpec) -> Source | None:
    if path.is_dir():
        if (path / spec.ratings_file).is_file():
            return Source(path, spec)
        if (path / spec.folder / spec.ratings_file).is_file():  # parent of the extracted folder
            return Source(path / spec.folder, spec)
        return None
    if path.is_file() and path.name == spec.ratings_file:  # the ratings file itself: its folder is the copy
        return Source(path.parent, spec)
    if path.is_file() and zipfile.is_zipfile(path):
        source = Source(path, spec)
        return source if source.has(spec.ratings_file) else None
    if path.is_file() and _starts_like_a_zip(path):
        raise DataError(f"{path}: a zip that cannot be read (cut short or damaged: no directory at its end); "
                        "download it again, or give an unzipped copy")  # fmt: skip
    return None


def _starts_like_a_zip(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            return handle.read(4) == b"PK\x03\x04"
    except OSError:
        return False


def locate(name: str, path: str | Path | None = None, *, download: bool = True) -> Source:
    """Find ``name`` on disk (explicit ``path`` first) or download it; see the module docstring."""
    spec = spec_for(name)
    if path is not None:
        given = Path(path).expanduser()
        source = _as_source(given, spec)
        if source is None and not given.exists():
            raise DatasetNotFoundError(f"{given}: no such file or folder (expected a copy of {name})")
        if source is None:
            raise DatasetNotFoundError(
                f"{given}: not a copy of {name} (expected the official zip or a folder with {spec.ratings_file})"
            )
        return source
    for place in candidates(spec):
        source = _as_source(place, spec)
        if source is not None:
            return source
    if not download:
        raise DatasetNotFoundError(_offline_message(spec))
    return Source(download_dataset(spec), spec)


def _offline_message(spec: MovieLensSpec, reason: str = "") -> str:
    cached = cache_dir() / spec.name
    why = f" ({reason})" if reason else ""
    given = os.environ.get("MFREC_DATA")
    data = (f"or make MFREC_DATA (now {given}, which holds no {spec.name}/ or {spec.name}.zip) a folder that does"
            if given else f"or set MFREC_DATA to a folder that holds {spec.name}/")  # fmt: skip
    return (
        f"{spec.name} is not on this machine and could not be downloaded{why}: "
        f"put {spec.name}.zip or its extracted folder at {cached}, {data}, or pass --data-path"
    )


def download_dataset(spec: MovieLensSpec, *, timeout: float = 30.0) -> Path:
    """Download, verify and extract ``spec`` into the cache; return the extracted folder.

    The zip is written to a temporary file inside the cache folder, checked
    against the registry's MD5 (or GroupLens's published ``.md5`` file), extracted
    into a temporary folder, and only then renamed into place, so an
    interrupted download never leaves a copy that looks complete.
    """
    root = cache_dir()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DownloadError(f"cannot create the cache folder {root}: {exc.strerror}") from None
    target = root / spec.name
    expected = spec.md5
    try:
        if expected is None:
            expected = _published_md5(spec, timeout)
        with tempfile.TemporaryDirectory(dir=root, prefix=f".{spec.name}-") as tmp:
            archive = Path(tmp) / f"{spec.name}.zip"
            digest = _download(spec.url, archive, timeout)
            if digest != expected:
                raise DownloadError(
                    f"{spec.url}: checksum mismatch (md5 {digest}, expected {expected}); nothing was kept"
                )
            with zipfile.ZipFile(archive) as zipped:
                zipped.extractall(tmp)
            extracted = Path(tmp) / spec.folder
            if target.exists():
                shutil.rmtree(target)
            os.replace(extracted, target)
    except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DatasetNotFoundError(_offline_message(spec, str(reason))) from None
    return target


def _published_md5(spec: MovieLensSpec, timeout: float) -> str:
    with urllib.request.urlopen(spec.url + ".md5", timeout=timeout) as response:
        text = response.read().decode("ascii", "replace")
    # formats seen: "MD5 (ml-latest-small.zip) = <hex>" and "<hex>  ml-latest-small.zip"
    for token in text.replace("=", " ").split():
        if len(token) == 32 and all(c in "0123456789abcdefABCDEF" for c in token):
            return token.lower()
    raise DownloadError(f"{spec.url}.md5: no checksum found in the published file")


def _download(url: str, destination: Path, timeout: float) -> str:
    from tqdm.auto import tqdm

    md5 = hashlib.md5(usedforsecurity=False)
    with urllib.request.urlopen(url, timeout=timeout) as response, destination.open("wb") as out:
        total = int(response.headers.get("Content-Length") or 0) or None
        with tqdm(total=total, unit="B", unit_scale=True, desc=destination.name) as bar:
            while chunk := response.read(CHUNK):
                out.write(chunk)
                md5.update(chunk)
                bar.update(len(chunk))
    return md5.hexdigest()
