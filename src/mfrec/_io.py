"""One atomic write for every file mfrec writes, and the content digest that travels with it.

A file appears under its name only when it is complete: it is written to a
temporary file in the same folder, flushed, and renamed into place. A failure
at any point (a full disk, a file-size limit, a read-only folder) leaves the
old file, if any, untouched and raises :class:`~mfrec.errors.OutputError`
naming the path; the temporary file is removed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path

from mfrec.errors import ConfigError, OutputError

#: ``scheme://`` at the start of a URL (two letters at least, so that no drive letter is taken for one).
_URL = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]+://")


def url_problem(text: str) -> str | None:
    """Why ``text`` is not a path on this machine when it is a URL (``https://...``, ``s3://...``), else None.

    A URL read as a path would fold its ``//`` and be reported as a missing ``https:/...`` file.
    """
    match = _URL.match(text)
    if match is None:
        return None
    scheme = match.group()[:-3].lower()
    if scheme == "file":
        from urllib.parse import unquote, urlsplit

        return f"{text!r} is a file URL; give its path: {unquote(urlsplit(text).path)!r}"
    fetch = "; download the file first" if scheme in ("http", "https", "ftp") else ""
    return f"{text!r} is a URL, and this takes a path on this machine{fetch}"


#: ``-`` is standard input or output to most tools; as a path it would be a file named "-" in the current folder
DASH_PROBLEM = "'-' names no file here: mfrec reads and writes files by name (for input from a pipe, give /dev/stdin)"


def as_path(value: object, what: str) -> Path:
    """``value`` as a :class:`~pathlib.Path` when it is a path (text or ``os.PathLike``); else a
    :class:`~mfrec.errors.ConfigError` naming ``what`` and the type given (or the URL)."""
    text = os.fspath(value) if isinstance(value, str | os.PathLike) else None
    if isinstance(text, str):
        problem = url_problem(text) if isinstance(value, str) else None
        if problem:
            raise ConfigError(f"{what}: {problem}")
        if text == "-":
            raise ConfigError(f"{what}: {DASH_PROBLEM}")
        if text != "" and "\0" not in text:
            return Path(text)
        raise ConfigError(f"{what} must name a file or folder, not {text!r}")
    raise ConfigError(f"{what} must be a file path (text or os.PathLike), not {type(value).__name__}")


def _is_write_failure(exc: BaseException) -> bool:
    """OSError, or the error type safetensors raises for a failed write (it wraps the OS error)."""
    return isinstance(exc, OSError) or type(exc).__name__ == "SafetensorError"


def atomic_write(path: str | Path, write: Callable[[Path], None], *, mode: int = 0o644, what: str = "") -> Path:
    """Call ``write(tmp)`` to fill a temporary file beside ``path``, then rename it to ``path``.

    ``mode`` is the file's permission bits (a shared artefact by default, not mkstemp's 0600).
    """
    path = Path(path)
    label = f"{what} {path}" if what else str(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise OutputError(f"cannot write {label}: {exc.strerror or exc}") from None
    tmp = Path(name)
    try:
        write(tmp)
        with open(tmp, "rb+") as handle:  # the bytes reach the disk before the name does
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except Exception as exc:
        if not _is_write_failure(exc):
            raise
        raise OutputError(f"cannot write {label}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def atomic_write_text(path: str | Path, text: str, *, what: str = "") -> Path:
    """Write ``text`` (UTF-8) atomically."""
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"), what=what)


def finite(value):
    """``value`` with every NaN or infinite float replaced by ``None``: JSON has no NaN, so absent is null."""
    import math

    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def json_text(value, **options) -> str:
    """Strict JSON of ``value`` (NaN and infinities become null), for the files mfrec writes."""
    import json

    return json.dumps(finite(value), allow_nan=False, **options) + "\n"


def digest(parts: Iterable[bytes]) -> str:
    """SHA-256 (hex) of the concatenated byte strings."""
    h = hashlib.sha256()
    for part in parts:
        h.update(part)
    return h.hexdigest()


def content_digest(tensors: dict, meta: dict | None = None) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes (sorted by name), then the JSON metadata.

    ``meta`` is taken as canonical JSON (sorted keys) without its ``sha256`` entry, so a
    digest stored in the metadata covers the whole file but itself.
    """
    def parts():
        for name in sorted(tensors):
            t = tensors[name].contiguous()
            yield name.encode()
            yield str(t.dtype).encode()
            yield str(tuple(t.shape)).encode()
            yield t.reshape(-1).numpy().view("uint8") if t.numel() else b""  # hashed in place, not copied
        if meta is not None:
            yield canonical_json({k: v for k, v in meta.items() if k != "sha256"})

    return digest(parts())


def parse_json(text: str | bytes):
    """``json.loads(text)`` that refuses what a dict would not hold as written: an object naming a key
    twice (json keeps the last silently), and nesting deeper than Python's recursion limit. Both are
    a ``ValueError``, as any bad JSON is (``json.JSONDecodeError`` derives from it)."""
    import json

    def unique(pairs: list[tuple[str, object]]) -> dict:
        value = dict(pairs)
        if len(value) != len(pairs):
            twice = next(k for k in value if sum(1 for p, _ in pairs if p == k) > 1)
            raise ValueError(f"the key {twice!r} appears more than once")
        return value

    try:
        return json.loads(text, object_pairs_hook=unique)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def exact_json(raw: str):
    """``json.loads(raw)``, refusing text that ``json.dumps`` of the result would not give back (ValueError).

    Headers mfrec writes are ``json.dumps`` of their value, and their digest covers the parsed
    value; a damaged digit past a float's precision parses to the same value, so the text itself
    must also be exactly what was written.
    """
    import json

    value = parse_json(raw)
    if json.dumps(value) != raw:
        raise ValueError("the metadata text differs from what was written")
    return value


def canonical_json(value) -> bytes:
    """The bytes a JSON value is digested as: sorted keys, default separators."""
    import json

    return json.dumps(value, sort_keys=True).encode()


def file_digest(path: str | Path, block: int = 1 << 22) -> str:
    """SHA-256 (hex) of a whole file, read in blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(block):
            h.update(chunk)
    return h.hexdigest()


# ------------------------------------------------------------------ digests beside the content
#: The digest list of a folder mfrec writes (run folders, tuning results), in ``sha256sum`` format,
#: so ``sha256sum -c SHA256SUMS`` checks it without mfrec.
MANIFEST = "SHA256SUMS"


def write_manifest(folder: str | Path, names: Iterable[str]) -> Path:
    """Write ``folder/SHA256SUMS`` with the SHA-256 of each named file (written last, atomically)."""
    folder = Path(folder)
    lines = "".join(f"{file_digest(folder / name)}  {name}\n" for name in sorted(names))
    return atomic_write_text(folder / MANIFEST, lines)


def verify_manifest(
    folder: str | Path, names: Iterable[str] | None = None, *, error: type[Exception], listed_only: bool = False
) -> bool:
    """Check the files of ``folder`` against its ``SHA256SUMS``; False when it has none (an older folder).

    ``names`` limits the check to those files; each must be listed, unless ``listed_only``
    skips the ones that are not. A damaged or unreadable manifest, a missing file or a
    digest mismatch raises ``error`` naming the file.
    """
    folder = Path(folder)
    manifest = folder / MANIFEST
    if not manifest.is_file():
        return False
    try:
        listed = read_sums(manifest)
    except (OSError, ValueError):
        raise error(f"{manifest}: damaged digest list; the folder cannot be trusted") from None
    for name in listed if names is None else names:
        path = folder / name
        if name not in listed:
            if listed_only:
                continue
            raise error(f"{path}: not in {manifest}; the folder cannot be trusted")
        try:
            actual = file_digest(path)
        except OSError as exc:
            raise error(f"{path}: cannot be read to check it ({exc.strerror or exc})") from None
        if actual != listed[name]:
            raise error(f"{path}: checksum mismatch against {MANIFEST} (the file is damaged or was changed)")
    return True


def read_sums(path: Path) -> dict[str, str]:
    """``{name: sha256}`` of a digest list as :func:`write_manifest` and :func:`write_sidecar` write it
    (``sha256sum`` format, sorted by name); ValueError for any other text."""
    listed: dict[str, str] = {}
    text = path.read_text(encoding="utf-8")
    for line in text.split("\n")[:-1]:  # sha256sum's lines end in "\n" only (splitlines would take others)
        value, sep, name = line.partition("  ")
        if not sep or len(value) != 64 or value.strip("0123456789abcdef"):
            raise ValueError(line)
        listed[name] = value
    if "".join(f"{value}  {name}\n" for name, value in sorted(listed.items())) != text:
        raise ValueError("not the text write_manifest writes")  # any other byte changed is damage too
    return listed


def check_replaceable(folder: Path, names: Iterable[str], digests: str, what: str) -> None:
    """Before ``names`` and their digest list ``digests`` are written into ``folder``: an
    :class:`OutputError` if that would replace a file mfrec did not write there, i.e. one that the
    digest list does not name with its present SHA-256 (a user's own file, or one changed since).
    Nothing the user owns is ever replaced; mfrec's own earlier output is."""
    names = set(names)
    present = sorted(n for n in names if (folder / n).exists() or (folder / n).is_symlink())
    listing = folder / digests
    if not present and not listing.exists():
        return
    try:
        listed = read_sums(listing) if listing.is_file() else {}
    except (OSError, ValueError):
        listed = None
    advice = "nothing was written; choose another --out, or move it away"
    if listing.exists() and (listed is None or not set(listed) <= names):
        raise OutputError(f"{listing}: a digest list that mfrec did not write; {advice}")
    for name in present:
        path = folder / name
        if not path.is_file() or path.is_symlink() or listed.get(name) != file_digest(path):
            raise OutputError(f"{path}: exists and is not {what} that mfrec wrote (or was changed since); {advice}")


def write_sidecar(path: str | Path) -> Path:
    """Write ``<path>.sha256`` (``sha256sum`` format) for a file handed to the user, e.g. a batch output."""
    path = Path(path)
    return atomic_write_text(path.with_name(path.name + ".sha256"), f"{file_digest(path)}  {path.name}\n")


#: The key of a sealed JSON file that holds the digest of the rest of it.
SEAL = "self_sha256"


def sealed_json_text(value: dict, **options) -> str:
    """Strict JSON of ``value`` plus a :data:`SEAL` key: the SHA-256 of the rest as canonical JSON."""
    import json

    body = finite({k: v for k, v in value.items() if k != SEAL})
    return json.dumps({**body, SEAL: digest([canonical_json(body)])}, allow_nan=False, **options) + "\n"


def unseal_text(text: str, **options) -> dict:
    """The body of sealed JSON ``text`` written by :func:`sealed_json_text` with ``options``; ValueError when the
    seal is missing or wrong, or when the text is not exactly what that body and seal are written as (a digit
    past a float's precision, or changed whitespace, parses to the same value)."""

    body = unseal(parse_json(text))
    if sealed_json_text(body, **options) != text:
        raise ValueError("checksum mismatch")
    return body


def unseal(value: dict) -> dict:
    """``value`` without its :data:`SEAL` key when the seal matches; ValueError when it is missing or wrong."""
    if not isinstance(value, dict) or SEAL not in value:
        raise ValueError("no checksum")
    body = {k: v for k, v in value.items() if k != SEAL}
    if digest([canonical_json(body)]) != value[SEAL]:
        raise ValueError("checksum mismatch")
    return body
