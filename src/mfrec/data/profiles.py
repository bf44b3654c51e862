"""Profiles and the ratings they give, kept in a real database (SQLAlchemy Core).

A profile is what a person who is not in the training data gets: a public id and a
secret token. Its ratings are stored, and its recommendations are folded in from them.

* **Databases.** SQLite (``sqlite:///path``, the default: WAL journal, ``synchronous=FULL``,
  a busy timeout, foreign keys on) or PostgreSQL (``postgresql+psycopg://...``).
* **Schema.** Versioned in ``mfrec_schema``; :data:`SCHEMA_VERSION` is the version this code
  writes, older versions are upgraded step by step on open (:data:`UPGRADES`), and a newer
  one is refused.
* **Durability.** Every write is one transaction, committed before the call returns: the
  HTTP layer answers 2xx only after that.
* **Tokens.** 256 bits from :mod:`secrets`; only their SHA-256 is stored, and a token opens
  only its own profile. A token is never logged or returned again after creation.
* **Bounds.** At most ``max_ratings`` ratings per profile.

Item ids are stored as text (the model's raw ids, as the API receives them); ratings in
the model's stars.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mfrec.errors import ConfigError, DataError, MfrecError

#: The schema version this code reads and writes.
SCHEMA_VERSION = 2
#: The default bound on one profile's ratings.
MAX_RATINGS = 5000
#: How a profile is named as a user of a training set: never the text of a dataset's own user id.
PROFILE_USER = "profile:"
#: ``version -> [SQL]`` upgrading a schema from ``version`` to ``version + 1``, in one transaction.
#: 2: ratings indexed by the time of their last change (training exports read them in that order).
UPGRADES: dict[int, list[str]] = {1: ["CREATE INDEX mfrec_ratings_updated ON mfrec_ratings (updated)"]}


class ProfileError(MfrecError):
    """A profile request that cannot be met: a full profile, or a database that cannot be used."""


class ProfileFull(ProfileError):
    """The profile already holds the most ratings a profile may."""


class ProfileNotFound(MfrecError):
    """No profile with this id and token (the two cases are not told apart)."""


@dataclass(frozen=True)
class Profile:
    """An authenticated profile: its database key and public id."""

    key: int
    id: str


def stored_number(value: Any) -> float | None:
    """A stored rating or time as a finite float; None for what a hand-edited row may hold instead (text, NULL,
    bytes, NaN or infinity: SQLite keeps any value in any column)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


#: The database URLs profiles may be kept at, as messages spell them.
DATABASES = "sqlite:///PATH or postgresql+psycopg://USER@HOST/DB"
#: Added to a message about a URL that starts ``postgres`` but is not one mfrec reads (``postgres://``).
POSTGRES_HINT = " (PostgreSQL's is postgresql+psycopg://...)"


def is_database_url(text: Any) -> bool:
    """True for the database URLs profiles are kept in (``sqlite:...``, ``postgresql...``)."""
    return isinstance(text, str) and text.startswith(("sqlite:", "postgresql"))


def is_memory_url(url: str) -> bool:
    """A SQLite URL without a file (``sqlite://``, ``sqlite:///:memory:``, ``?mode=memory``): gone at exit."""
    import sqlalchemy as sa

    parsed = sa.engine.make_url(url)
    return parsed.get_backend_name() == "sqlite" and (
        parsed.database in (None, "", ":memory:") or parsed.query.get("mode") == "memory")  # fmt: skip


def check_database_url(url: str) -> None:
    """A :class:`ConfigError` for a URL that is not a SQLite or PostgreSQL database, before any driver of another
    database is looked for (which would be its ImportError)."""
    import sqlalchemy as sa

    shown = _safe(url)
    try:
        backend = sa.engine.make_url(url).get_backend_name()
    except sa.exc.ArgumentError as exc:
        raise ConfigError(f"cannot use the database {shown}: {exc}") from None
    if backend not in ("sqlite", "postgresql"):
        hint = POSTGRES_HINT if backend.startswith("postgres") else ""
        raise ConfigError(f"{shown}: profiles are kept in SQLite or PostgreSQL ({DATABASES}), not {backend!r}{hint}")


def database_url(url: str | None, beside: str | Path) -> str:
    """``url``, or a SQLite file beside the served model: ``<run folder>.profiles.sqlite``."""
    if url:
        return url
    path = Path(beside).resolve()
    return f"sqlite:///{path.with_name(path.name + '.profiles.sqlite')}"


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


class ProfileStore:
    """Profiles and their ratings in the database at ``url`` (see the module docstring)."""

    def __init__(self, url: str, *, max_ratings: int = MAX_RATINGS, create: bool = True) -> None:
        """Open (with ``create``, create or upgrade) the profile database at ``url``.

        ``create=False`` only reads what is there, as training does: a SQLite file that does not
        exist, or a database without mfrec's tables, is a :class:`DataError`, and nothing is made.
        """
        import sqlalchemy as sa

        self.max_ratings = max_ratings
        self._may_create = create
        self._shown = _safe(url)  # the URL as messages show it, without its password
        check_database_url(url)
        try:
            options: dict[str, Any] = {"future": True}
            if url.startswith("sqlite"):
                options["connect_args"] = {"timeout": 30, "check_same_thread": False}
            else:
                options["pool_pre_ping"] = True
            self.engine = sa.create_engine(url, **options)
        except (ImportError, sa.exc.ArgumentError) as exc:
            raise ConfigError(f"cannot use the database {self._shown}: {exc}") from None
        if self.engine.dialect.name == "sqlite":
            if create:  # before the first connection switches the file to WAL
                _check_not_foreign(url, options, self._shown)
            sa.event.listen(self.engine, "connect", _sqlite_pragmas if create else _sqlite_read_pragmas)
            sa.event.listen(self.engine, "begin", _sqlite_begin)
        elif self.engine.dialect.name != "postgresql":
            raise ConfigError(f"profiles are kept in SQLite or PostgreSQL, not {self.engine.dialect.name}")
        meta = sa.MetaData()
        self.version = sa.Table("mfrec_schema", meta, sa.Column("version", sa.Integer, nullable=False))
        self.profiles = sa.Table(
            "mfrec_profiles", meta,
            sa.Column("key", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("id", sa.String(64), nullable=False, unique=True),
            sa.Column("token_sha256", sa.String(64), nullable=False, unique=True),
            sa.Column("created", sa.Float, nullable=False),
        )  # fmt: skip
        self.ratings = sa.Table(
            "mfrec_ratings", meta,
            sa.Column("profile", sa.Integer, sa.ForeignKey("mfrec_profiles.key", ondelete="CASCADE"),
                      primary_key=True),
            sa.Column("item", sa.String(200), primary_key=True),
            sa.Column("rating", sa.Float, nullable=False),
            sa.Column("updated", sa.Float, nullable=False),
            sa.Index("mfrec_ratings_updated", "updated"),
        )  # fmt: skip
        self._meta = meta
        database = self.engine.url.database
        on_disk = self.engine.dialect.name == "sqlite" and database not in (None, "", ":memory:")
        if not create and on_disk and not Path(database).is_file():  # connecting would create an empty file
            raise DataError(f"{self._shown}: no such database file")
        try:
            self._migrate()
        except sa.exc.SQLAlchemyError as exc:
            raise ProfileError(f"cannot open the profile database {self._shown}: {_reason(exc)}") from None

    # ------------------------------------------------------------------ schema
    def _migrate(self) -> None:
        import sqlalchemy as sa

        with self.engine.begin() as db:
            if not sa.inspect(db).has_table("mfrec_schema"):
                if not self._may_create:
                    raise DataError(f"{self._shown}: not a profile database (no mfrec tables)")
                self._meta.create_all(db)
                db.execute(self.version.insert().values(version=SCHEMA_VERSION))
                return
            found = db.execute(sa.select(self.version.c.version)).scalar_one()
            if found > SCHEMA_VERSION:
                raise ProfileError(f"the profile database has schema version {found}, newer than this mfrec "
                                   f"reads ({SCHEMA_VERSION}); upgrade mfrec")  # fmt: skip
            for version in range(found, SCHEMA_VERSION):
                for statement in UPGRADES[version]:
                    db.execute(sa.text(statement))
            db.execute(self.version.update().values(version=SCHEMA_VERSION))

    # ------------------------------------------------------------------ profiles
    def create(self) -> tuple[str, str]:
        """A new profile: ``(id, token)``. The token is shown this once; only its hash is kept."""
        token = secrets.token_urlsafe(32)
        profile_id = "p" + secrets.token_hex(8)
        with self._write() as db:
            db.execute(self.profiles.insert().values(id=profile_id, token_sha256=_token_hash(token),
                                                     created=time.time()))  # fmt: skip
        return profile_id, token

    def authenticate(self, profile_id: str, token: str) -> Profile:
        """The profile ``profile_id`` if ``token`` is its token; :class:`ProfileNotFound` otherwise."""
        import sqlalchemy as sa

        with self._read() as db:
            row = db.execute(sa.select(self.profiles.c.key, self.profiles.c.token_sha256)
                             .where(self.profiles.c.id == profile_id)).first()  # fmt: skip
        if row is None or not hmac.compare_digest(row.token_sha256, _token_hash(token)):
            raise ProfileNotFound(f"no profile {profile_id!r} for this token")
        return Profile(row.key, profile_id)

    # ------------------------------------------------------------------ ratings
    def set_rating(self, profile: Profile, item: str, rating: float) -> None:
        """Add or change one rating; committed when this returns."""
        import sqlalchemy as sa

        insert = (sa.dialects.sqlite.insert if self.engine.dialect.name == "sqlite"
                  else sa.dialects.postgresql.insert)(self.ratings)  # fmt: skip
        values = {"profile": profile.key, "item": item, "rating": float(rating), "updated": time.time()}
        upsert = insert.values(**values).on_conflict_do_update(
            index_elements=["profile", "item"], set_={"rating": values["rating"], "updated": values["updated"]}
        )
        with self._write() as db:
            if self.engine.dialect.name == "postgresql":  # one writer per profile at a time: the bound holds
                db.execute(sa.select(self.profiles.c.key).where(self.profiles.c.key == profile.key).with_for_update())
            count = db.execute(sa.select(sa.func.count()).select_from(self.ratings).where(
                self.ratings.c.profile == profile.key, self.ratings.c.item != item)).scalar_one()  # fmt: skip
            if count >= self.max_ratings:
                raise ProfileFull(f"profile {profile.id} holds the most ratings a profile may ({self.max_ratings:,})")
            db.execute(upsert)

    def remove_rating(self, profile: Profile, item: str) -> bool:
        """Remove one rating; False when there was none. Committed when this returns."""
        with self._write() as db:
            done = db.execute(self.ratings.delete().where(self.ratings.c.profile == profile.key,
                                                          self.ratings.c.item == item))  # fmt: skip
        return done.rowcount > 0

    def ratings_of(self, profile: Profile) -> list[tuple[str, float]]:
        """The profile's ratings, ``(item, stars)``, the least recently changed first."""
        import sqlalchemy as sa

        with self._read() as db:
            rows = db.execute(sa.select(self.ratings.c.item, self.ratings.c.rating)
                              .where(self.ratings.c.profile == profile.key)
                              .order_by(self.ratings.c.updated, self.ratings.c.item)).all()  # fmt: skip
        return [(r.item, r.rating) for r in rows]

    def count(self) -> int:
        """Every stored rating, over all profiles."""
        import sqlalchemy as sa

        with self._read() as db:
            return int(db.execute(sa.select(sa.func.count()).select_from(self.ratings)).scalar_one())

    def table(self) -> Any:
        """Every stored rating as a frame: ``user`` (:data:`PROFILE_USER` + profile id), ``item`` (text),
        ``rating`` (stars) and ``timestamp`` (Unix seconds of the last change)."""
        import pandas as pd
        import sqlalchemy as sa

        query = (sa.select(self.profiles.c.id, self.ratings.c.item, self.ratings.c.rating, self.ratings.c.updated)
                 .join(self.profiles, self.profiles.c.key == self.ratings.c.profile)
                 .order_by(self.ratings.c.updated, self.profiles.c.id, self.ratings.c.item))  # fmt: skip
        with self._read() as db:
            rows = db.execute(query).all()
        return pd.DataFrame({"user": [PROFILE_USER + r[0] for r in rows], "item": [r[1] for r in rows],
                             "rating": [r[2] for r in rows], "timestamp": [r[3] for r in rows]})  # fmt: skip

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------ transactions
    def _write(self):
        return _Transaction(self.engine, write=True)

    def _read(self):
        return _Transaction(self.engine, write=False)


class _Transaction:
    """One transaction on its own connection, committed on a clean exit; database failures become one
    :class:`ProfileError` line (no driver traceback). SQLite writes begin IMMEDIATE: the write lock is
    taken at the start, so two writers never deadlock upgrading a read lock."""

    def __init__(self, engine, *, write: bool) -> None:
        self.engine = engine
        self.write = write

    def __enter__(self):
        import sqlalchemy as sa

        try:
            self.connection = self.engine.connect()
            self.connection.info["mfrec_write"] = self.write
            self.transaction = self.connection.begin()
            return self.connection
        except sa.exc.SQLAlchemyError as exc:
            raise ProfileError(f"the profile database is unavailable: {_reason(exc)}") from None

    def __exit__(self, kind, value, tb) -> bool:
        import sqlalchemy as sa

        try:
            if kind is None:
                self.transaction.commit()
            else:
                self.transaction.rollback()
        except sa.exc.SQLAlchemyError as exc:
            raise ProfileError(f"the profile database could not commit: {_reason(exc)}") from None
        finally:
            self.connection.close()
        if isinstance(value, sa.exc.SQLAlchemyError):
            raise ProfileError(f"the profile database failed: {_reason(value)}") from None
        return False


def _check_not_foreign(url: str, options: dict[str, Any], shown: str) -> None:
    """Refuse a SQLite file that holds another program's tables and none of mfrec's: opening it to keep profiles
    would add mfrec's tables to it and switch it to WAL, which rewrites its header (and some programs, or a file
    on a network share, cannot read it then). Read without any pragma that writes."""
    import sqlalchemy as sa

    database = sa.engine.make_url(url).database
    if is_memory_url(url) or not Path(database).is_file() or Path(database).stat().st_size == 0:
        return
    probe = sa.create_engine(url, **options)
    sa.event.listen(probe, "connect", _sqlite_read_pragmas)
    try:
        with probe.connect() as db:
            names = sorted(sa.inspect(db).get_table_names())
    except sa.exc.SQLAlchemyError as exc:
        raise ProfileError(f"cannot open the profile database {shown}: {_reason(exc)}") from None
    finally:
        probe.dispose()
    other = [name for name in names if not name.startswith("mfrec_")]
    if other and "mfrec_schema" not in names:
        from mfrec._repr import listed

        raise ProfileError(f"{shown}: holds another program's tables ({listed(other)}) and no profiles; mfrec keeps "
                           "profiles in a database of its own and changes no other: give a new file")  # fmt: skip


def _sqlite_begin(connection) -> None:
    connection.exec_driver_sql("BEGIN IMMEDIATE" if connection.info.get("mfrec_write") else "BEGIN")


def _sqlite_pragmas(connection, _record) -> None:
    """WAL (readers never block the writer), full sync (a commit survives a crash), a busy timeout."""
    _set_pragmas(connection, ("journal_mode=WAL", "synchronous=FULL", "busy_timeout=30000", "foreign_keys=ON"))


def _sqlite_read_pragmas(connection, _record) -> None:
    """:func:`_sqlite_pragmas` without switching the file to WAL, which rewrites its header: for reading
    a database that may not be a profile database at all (a profile database is in WAL already)."""
    _set_pragmas(connection, ("busy_timeout=30000", "foreign_keys=ON"))


def _set_pragmas(connection, pragmas: tuple[str, ...]) -> None:
    connection.isolation_level = None  # the driver's implicit transactions off: _sqlite_begin says BEGIN
    cursor = connection.cursor()
    for pragma in pragmas:
        cursor.execute(f"PRAGMA {pragma}")
    cursor.close()


def _reason(exc: Exception) -> str:
    original = getattr(exc, "orig", None) or exc
    return str(original).strip().splitlines()[0] if str(original).strip() else type(original).__name__


def _safe(url: str) -> str:
    """The URL without its password."""
    import sqlalchemy as sa

    try:
        return sa.engine.make_url(url).render_as_string(hide_password=True)
    except (sa.exc.ArgumentError, ValueError):  # not a URL: nothing in it was parsed as a password
        return repr(url)
