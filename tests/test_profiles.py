"""Profiles keep what people rate: the store on SQLite and on a real PostgreSQL, the HTTP API, and real
server processes killed with SIGKILL and hammered by 50 writers.

PostgreSQL: the tests use ``MFREC_TEST_POSTGRES`` (``.ci/run`` starts a throwaway cluster with
``scripts/postgres.sh``); without it they skip, except under CI, where they fail.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from mfrec import MatrixFactorization
from mfrec.data.profiles import SCHEMA_VERSION, ProfileError, ProfileFull, ProfileNotFound, ProfileStore
from mfrec.serve import create_app
from tests.conftest import low_rank_ratings

POSTGRES = os.environ.get("MFREC_TEST_POSTGRES")
ITEMS = [str(i) for i in range(1000, 1040)]


def _postgres_url() -> str:
    if not POSTGRES:
        if os.environ.get("CI"):
            pytest.fail("MFREC_TEST_POSTGRES is not set: .ci/run starts PostgreSQL with scripts/postgres.sh")
        pytest.skip("no PostgreSQL server: set MFREC_TEST_POSTGRES (bash scripts/postgres.sh start)")
    name = f"mfrec_{uuid.uuid4().hex[:12]}"  # a database of its own per test
    admin = sa.create_engine(POSTGRES, isolation_level="AUTOCOMMIT")
    with admin.connect() as db:
        db.exec_driver_sql(f"CREATE DATABASE {name}")
    admin.dispose()
    return str(sa.engine.make_url(POSTGRES).set(database=name))


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'profiles.sqlite'}"
    return _postgres_url()


@pytest.fixture
def store(db_url):
    store = ProfileStore(db_url, max_ratings=5)
    yield store
    store.close()


@pytest.fixture(scope="module")
def model():
    return MatrixFactorization.from_preset("default", epochs=5, device="cpu").fit(low_rank_ratings())


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    model.save(path)
    return path


# ------------------------------------------------------------------ the store
def test_a_profile_keeps_its_ratings_and_only_its_token_opens_it(store, db_url):
    pid, token = store.create()
    other_pid, other_token = store.create()
    assert pid != other_pid and len(token) >= 43  # 32 random bytes: 256 bits
    me = store.authenticate(pid, token)
    store.set_rating(me, "1000", 4.5)
    store.set_rating(me, "1001", 2.0)
    store.set_rating(me, "1000", 3.0)  # a change, not a second rating
    assert sorted(store.ratings_of(me)) == [("1000", 3.0), ("1001", 2.0)]
    assert store.remove_rating(me, "1001") and not store.remove_rating(me, "1001")
    for bad in [(pid, other_token), (pid, ""), (other_pid, token), ("p" + "0" * 16, token)]:
        with pytest.raises(ProfileNotFound):
            store.authenticate(*bad)
    reopened = ProfileStore(db_url)
    assert reopened.ratings_of(reopened.authenticate(pid, token)) == [("1000", 3.0)]
    reopened.close()


def test_tokens_are_stored_only_as_their_hash(store, db_url):
    pid, token = store.create()
    with store.engine.connect() as db:
        rows = db.execute(sa.text("SELECT id, token_sha256 FROM mfrec_profiles")).all()
    assert all(token not in row for row in rows) and pid in {r[0] for r in rows}
    if db_url.startswith("sqlite:///"):
        store.close()
        raw = b"".join(p.read_bytes() for p in Path(db_url[10:]).parent.glob("profiles*"))
        assert token.encode() not in raw


def test_a_profile_holds_at_most_max_ratings_and_a_change_still_fits(store):
    me = store.authenticate(*store.create())
    for item in ITEMS[:5]:
        store.set_rating(me, item, 4.0)
    with pytest.raises(ProfileFull, match="most ratings a profile may"):
        store.set_rating(me, ITEMS[5], 4.0)
    store.set_rating(me, ITEMS[0], 1.0)  # changing one of the five is not a sixth
    assert len(store.ratings_of(me)) == 5 and store.count() == 5


def test_a_version_1_database_is_upgraded_in_place_and_keeps_its_ratings(db_url):
    engine = sa.create_engine(db_url)
    with engine.begin() as db:  # the version 1 schema, as the first release wrote it
        db.exec_driver_sql("CREATE TABLE mfrec_schema (version INTEGER NOT NULL)")
        db.exec_driver_sql("INSERT INTO mfrec_schema VALUES (1)")
        db.exec_driver_sql("CREATE TABLE mfrec_profiles (key INTEGER PRIMARY KEY, id VARCHAR(64) NOT NULL UNIQUE, "
                           "token_sha256 VARCHAR(64) NOT NULL UNIQUE, created FLOAT NOT NULL)")  # fmt: skip
        db.exec_driver_sql("CREATE TABLE mfrec_ratings (profile INTEGER NOT NULL REFERENCES mfrec_profiles (key) "
                           "ON DELETE CASCADE, item VARCHAR(200) NOT NULL, rating FLOAT NOT NULL, "
                           "updated FLOAT NOT NULL, PRIMARY KEY (profile, item))")  # fmt: skip
        from mfrec.data.profiles import _token_hash

        db.exec_driver_sql(f"INSERT INTO mfrec_profiles VALUES (1, 'pold', '{_token_hash('secret-token')}', 0)")
        db.exec_driver_sql("INSERT INTO mfrec_ratings VALUES (1, '1000', 4.5, 1)")
    engine.dispose()
    store = ProfileStore(db_url)
    with store.engine.connect() as db:
        assert db.exec_driver_sql("SELECT version FROM mfrec_schema").scalar_one() == SCHEMA_VERSION == 2
        assert "mfrec_ratings_updated" in {i["name"] for i in sa.inspect(db).get_indexes("mfrec_ratings")}
    me = store.authenticate("pold", "secret-token")
    assert store.ratings_of(me) == [("1000", 4.5)]
    store.set_rating(me, "1001", 3.0)  # and it is writable as any new database
    assert store.count() == 2
    store.close()


def test_a_schema_newer_than_this_mfrec_is_refused(store, db_url):
    with store.engine.begin() as db:
        db.execute(sa.text("UPDATE mfrec_schema SET version = :v"), {"v": SCHEMA_VERSION + 1})
    with pytest.raises(ProfileError, match="newer than this mfrec"):
        ProfileStore(db_url)


def test_a_database_that_cannot_be_reached_is_one_line(tmp_path):
    with pytest.raises(ProfileError, match="cannot open the profile database") as caught:
        ProfileStore(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'x.sqlite'}")
    assert "\n" not in str(caught.value)
    with pytest.raises(ProfileError) as caught:  # nothing listens on port 1; the password is never shown
        ProfileStore("postgresql+psycopg://someone:s3cret@127.0.0.1:1/none")
    assert "s3cret" not in str(caught.value)


# ------------------------------------------------------------------ HTTP
@pytest.fixture
def client(model, store):
    with TestClient(create_app(model, profiles=store)) as client:
        yield client


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def test_the_profile_flow_end_to_end(client, model):
    created = client.post("/v1/profiles")
    assert created.status_code == 201
    pid, token = created.json()["profile"], created.json()["token"]
    cookie = created.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie and token.lower() not in cookie.split(";")[1:]
    base = f"/v1/profiles/{pid}"
    assert client.get(f"{base}/recommendations", headers=bearer(token)).json()["items"] == []
    for item, rating in (("1000", 5.0), ("1003", 4.5), ("1007", 1.0)):
        answer = client.put(f"{base}/ratings/{item}", json={"rating": rating}, headers=bearer(token))
        assert answer.status_code == 200 and answer.json()["rating"] == rating
    listed = client.get(f"{base}/ratings", headers=bearer(token)).json()["items"]
    assert {(r["item"], r["rating"]) for r in listed} == {(1000, 5.0), (1003, 4.5), (1007, 1.0)}
    recs = client.get(f"{base}/recommendations?n=5&explain=true", headers=bearer(token)).json()["items"]
    assert len(recs) == 5 and not {1000, 1003, 1007} & {r["item"] for r in recs}
    expected = model.recommend_for_ratings({1000: 5.0, 1003: 4.5, 1007: 1.0}, 5)
    assert [r["item"] for r in recs] == list(expected.items[0])
    assert all(r["because"] for r in recs)
    assert client.delete(f"{base}/ratings/1007", headers=bearer(token)).status_code == 204
    assert client.delete(f"{base}/ratings/1007", headers=bearer(token)).status_code == 404
    assert len(client.get(f"{base}/ratings", headers=bearer(token)).json()["items"]) == 2


def test_the_page_cookie_opens_its_own_profile_only(client):
    created = client.post("/v1/profiles").json()  # the test client keeps the cookie, as a browser would
    assert client.get("/v1/me").json()["profile"] == created["profile"]
    base = f"/v1/profiles/{created['profile']}"
    assert client.put(f"{base}/ratings/1000", json={"rating": 4.0}).status_code == 200
    other = TestClient(client.app).post("/v1/profiles").json()
    assert client.get(f"/v1/profiles/{other['profile']}/ratings").status_code == 401  # the cookie is not theirs


@pytest.mark.parametrize(("how", "status"), [("none", 401), ("other", 404), ("garbage", 404), ("basic", 401)])
def test_tokens_are_checked(model, store, how, status):
    client = TestClient(create_app(model, profiles=store))  # no cookie jar shared with another test
    mine = client.post("/v1/profiles").json()
    theirs = client.post("/v1/profiles").json()
    client.cookies.clear()
    headers = {"none": {}, "other": bearer(theirs["token"]), "garbage": bearer("x" * 43),
               "basic": {"authorization": f"Basic {mine['token']}"}}[how]  # fmt: skip
    for method, path, body in (("GET", "ratings", None), ("PUT", "ratings/1000", {"rating": 3.0}),
                               ("DELETE", "ratings/1000", None), ("GET", "recommendations", None)):  # fmt: skip
        answer = client.request(method, f"/v1/profiles/{mine['profile']}/{path}", json=body, headers=headers)
        assert answer.status_code == status and set(answer.json()) >= {"status", "message"}
        assert mine["token"] not in answer.text and theirs["token"] not in answer.text
    unknown = client.get("/v1/profiles/pnothere/ratings", headers=bearer(mine["token"]))
    assert unknown.status_code == 404


@pytest.mark.parametrize(("item", "body", "status"), [
    ("1000", {"rating": 9.0}, 422), ("1000", {"rating": 0.0}, 422), ("1000", {"rating": "x"}, 422),
    ("1000", {}, 422), ("424242", {"rating": 3.0}, 404), ("1000", {"rating": float("nan")}, 422),
])  # fmt: skip
def test_bad_ratings_are_refused_and_nothing_is_stored(client, store, item, body, status):
    created = client.post("/v1/profiles").json()
    answer = client.put(f"/v1/profiles/{created['profile']}/ratings/{item}", content=json.dumps(body),
                        headers={**bearer(created["token"]), "content-type": "application/json"})  # fmt: skip
    assert answer.status_code == status, answer.text
    assert store.count() == 0


def test_a_full_profile_is_409(client):
    created = client.post("/v1/profiles").json()
    for item in ITEMS[:5]:
        client.put(f"/v1/profiles/{created['profile']}/ratings/{item}", json={"rating": 3.0},
                   headers=bearer(created["token"]))  # fmt: skip
    answer = client.put(f"/v1/profiles/{created['profile']}/ratings/{ITEMS[5]}", json={"rating": 3.0},
                        headers=bearer(created["token"]))  # fmt: skip
    assert answer.status_code == 409 and "most ratings" in answer.json()["message"]


def test_without_a_database_there_are_no_profiles(model):
    client = TestClient(create_app(model))
    answer = client.post("/v1/profiles")
    assert answer.status_code == 404 and "--db" in answer.json()["message"]
    assert client.get("/v1/profiles/p1/ratings", headers=bearer("x")).status_code == 404


# ------------------------------------------------------------------ real server processes
def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _start(model_file, db_url: str, port: int) -> subprocess.Popen:
    import httpx

    process = subprocess.Popen([sys.executable, "-m", "mfrec.cli", "serve", str(model_file), "--port", str(port),
                                "--db", db_url], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    process.kill()
    pytest.fail(f"the server did not start: {process.stdout.read().decode()[-2000:]}")


def test_every_acknowledged_rating_survives_kill_9(model_file, db_url):
    import httpx

    port = _free_port()
    server = _start(model_file, db_url, port)
    acknowledged = []
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http:
            created = http.post("/v1/profiles").json()
            base, headers = f"/v1/profiles/{created['profile']}", bearer(created["token"])

            def write(n: int) -> None:
                with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as own:
                    for item in ITEMS[n::4]:
                        try:
                            answer = own.put(f"{base}/ratings/{item}", json={"rating": 4.0}, headers=headers)
                        except httpx.HTTPError:  # the server is gone: this write was never acknowledged
                            return
                        if answer.status_code == 200:
                            acknowledged.append(item)

            writers = [threading.Thread(target=write, args=(n,)) for n in range(4)]
            for w in writers:
                w.start()
            deadline = time.time() + 30
            while len(acknowledged) < 12 and time.time() < deadline:
                time.sleep(0.005)
            server.send_signal(signal.SIGKILL)  # mid-write: what was acknowledged must be there
            for w in writers:
                w.join()
    finally:
        server.kill()
        server.wait()
    server = _start(model_file, db_url, port)
    try:
        stored = httpx.get(f"http://127.0.0.1:{port}{base}/ratings", headers=headers, timeout=10).json()["items"]
        assert acknowledged and set(acknowledged) <= {str(r["item"]) for r in stored}
    finally:
        server.kill()
        server.wait()


def test_fifty_concurrent_writers_lose_nothing(model_file, db_url):
    import httpx

    seconds = float(os.environ.get("MFREC_CONCURRENCY_SECONDS", "30"))
    port = _free_port()
    server = _start(model_file, db_url, port)
    errors, acknowledged, tokens = [], [0] * 50, []
    stop = time.time() + seconds

    def client(n: int) -> None:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as http:
            created = http.post("/v1/profiles").json()
            tokens.append(created["token"])
            base, headers = f"/v1/profiles/{created['profile']}", bearer(created["token"])
            step = 0
            while time.time() < stop:
                item = ITEMS[(n + step) % len(ITEMS)]
                answer = http.put(f"{base}/ratings/{item}", json={"rating": 0.5 + step % 10 / 2}, headers=headers)
                if answer.status_code != 200:
                    errors.append(answer.text)
                elif step < len(ITEMS):
                    acknowledged[n] += 1  # a new item each time for the first 40 writes
                if step % 5 == 0 and http.get(f"{base}/ratings", headers=headers).status_code != 200:
                    errors.append("read failed")
                step += 1

    try:
        threads = [threading.Thread(target=client, args=(n,)) for n in range(50)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert errors == []
    logged = server.stdout.read().decode(errors="replace")
    assert not [token for token in tokens if token in logged]  # tokens never reach the server's output
    store = ProfileStore(db_url)
    assert store.count() == sum(acknowledged) > 0  # one row per distinct (profile, item) acknowledged
    store.close()


# ------------------------------------------------------------------ retraining from feedback
@pytest.fixture
def rated_store(store):
    """Two profiles that rated items 1000-1009 high and 1030-1039 low (what the API stores)."""
    made = []
    for _ in range(2):
        pid, token = store.create()
        profile = store.authenticate(pid, token)
        for item in ITEMS[:4]:
            store.set_rating(profile, item, 5.0)
        store.set_rating(profile, ITEMS[39], 0.5)
        made.append(pid)
    return made


def test_train_on_the_stored_ratings_alone(rated_store, db_url, tmp_path):
    from mfrec.cli import main

    out = tmp_path / "run"
    assert main(["train", "--ratings", db_url, "--model", "implicit_als", "--split", "none", "--epochs", "2",
                 "--device", "cpu", "-q", "--out", str(out)]) == 0  # fmt: skip
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["feedback"]["ratings"] == 10 and metrics["feedback"]["profiles"] == 2
    assert "s3cret" not in metrics["feedback"]["source"]
    model = MatrixFactorization.load(out)
    assert set(model.trained_users()) == {f"profile:{pid}" for pid in rated_store}
    assert set(model.trained_items()) == {1000, 1001, 1002, 1003, 1039}  # ids read back as whole numbers


def test_feedback_joins_a_dataset_and_changes_that_profiles_recommendations(rated_store, store, db_url, tmp_path):
    from mfrec.cli import main

    data = tmp_path / "ratings.csv"
    frame = low_rank_ratings().to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    frame.to_csv(data, index=False)
    common = ["--ratings", str(data), "--preset", "implicit", "--epochs", "4", "--device", "cpu", "-q"]
    assert main(["train", *common, "--out", str(tmp_path / "before")]) == 0
    assert main(["train", *common, "--feedback", db_url, "--out", str(tmp_path / "after")]) == 0
    before, after = MatrixFactorization.load(tmp_path / "before"), MatrixFactorization.load(tmp_path / "after")
    metrics = json.loads((tmp_path / "after" / "metrics.json").read_text())
    assert metrics["feedback"]["ratings"] == 10 and "feedback" not in json.loads(
        (tmp_path / "before" / "metrics.json").read_text())  # fmt: skip
    assert json.loads((tmp_path / "after" / "config.json").read_text())["feedback"] == db_url
    # the dataset's users keep their ids as text; the profiles are users of their own beside them
    assert {str(u) for u in before.trained_users()} <= set(after.user_map_.ids)
    profile = f"profile:{rated_store[0]}"
    assert profile in set(after.trained_users())
    rated = {1000: 5.0, 1001: 5.0, 1002: 5.0, 1003: 5.0, 1039: 0.5}
    served = before.recommend_for_ratings(rated, 10)  # what the service gave the profile before the retrain
    retrained = after.recommend(profile, 10)  # the retrained model's own factors for it
    assert not set(rated) & set(retrained.items[0])
    assert list(served.items[0]) != list(retrained.items[0])


@pytest.mark.parametrize("bad", ["mysql://x/y", "notaurl"])
def test_feedback_takes_only_a_profile_database(tmp_path, ratings_csv, capsys, bad):
    from mfrec.cli import main

    code = main(["train", "--ratings", str(ratings_csv), "--feedback", bad, "--epochs", "1", "-q",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    assert code == 2 and "--feedback takes a database URL" in capsys.readouterr().err


def test_an_empty_profile_database_is_one_line(db_url, store, tmp_path, capsys):
    from mfrec.cli import main

    assert main(["train", "--ratings", db_url, "--epochs", "1", "-q", "--out", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err.strip()
    assert "holds no ratings" in err and len(err.splitlines()) == 1


def test_training_reads_a_profile_database_and_never_makes_one(tmp_path, ratings_csv, capsys):
    """A mistyped path, or another program's SQLite file, is one line, and no file or table appears."""
    import sqlite3

    from mfrec.cli import main

    missing = tmp_path / "typo.sqlite"
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("create table notes (x)")
    before = other.read_bytes()
    for url, message in ((f"sqlite:///{missing}", "no such database file"),
                         (f"sqlite:///{other}", "not a profile database")):  # fmt: skip
        for args in (["--ratings", url], ["--ratings", str(ratings_csv), "--feedback", url]):
            assert main(["train", *args, "--epochs", "1", "-q", "--out", str(tmp_path / "run")]) == 1
            err = capsys.readouterr().err.strip()
            assert message in err and len(err.splitlines()) == 1
    assert not missing.exists() and other.read_bytes() == before and not (tmp_path / "run").exists()



def test_serving_never_adds_profiles_to_another_programs_sqlite_file(tmp_path):
    """`serve --db sqlite:///their.db` added mfrec's tables to another program's file and switched it to WAL
    (a header rewrite some readers cannot follow); it is refused, byte for byte untouched. An empty file, a new
    one and a profile database of mfrec's own (with a table of the user's beside) still open."""
    import sqlite3

    from mfrec.data.profiles import ProfileError, ProfileStore

    other = tmp_path / "accounts.db"
    with sqlite3.connect(other) as db:
        db.execute("create table accounts (id integer, name text)")
    before = other.read_bytes()
    with pytest.raises(ProfileError, match=r"holds another program's tables \(accounts\) and no profiles"):
        ProfileStore(f"sqlite:///{other}")
    assert other.read_bytes() == before and not Path(f"{other}-wal").exists()
    (tmp_path / "empty.db").write_bytes(b"")
    for name in ("empty.db", "new.db"):
        ProfileStore(f"sqlite:///{tmp_path / name}").create()
    ours = tmp_path / "new.db"
    with sqlite3.connect(ours) as db:
        db.execute("create table my_notes (x)")
    assert ProfileStore(f"sqlite:///{ours}").create()

# ------------------------------------------------------------------ rows edited by hand
#: What a row changed outside the service may hold: (column, value, databases that can store it).
EDITS = [
    ("rating", "abc", ("sqlite",)),
    ("rating", b"\x00", ("sqlite",)),
    ("rating", float("inf"), ("sqlite", "postgresql")),
    ("rating", 99.0, ("sqlite", "postgresql")),
    ("updated", 1e300, ("sqlite", "postgresql")),
    ("updated", "x", ("sqlite",)),
]


def _edit(db_url: str, column: str, value, item: str) -> None:
    engine = sa.create_engine(db_url)
    with engine.begin() as db:
        db.execute(sa.text(f"UPDATE mfrec_ratings SET {column} = :v WHERE item = :i"), {"v": value, "i": item})
    engine.dispose()


EDIT_CASES = [(kind, column, value) for column, value, kinds in EDITS for kind in kinds]


@pytest.mark.parametrize(("kind", "column", "value"), EDIT_CASES, ids=[f"{k}-{c}={v!r}" for k, c, v in EDIT_CASES])
def test_a_row_edited_by_hand_is_left_out_when_serving_and_named_when_training(
        model, tmp_path, capsys, kind, column, value):  # fmt: skip
    """Serving: the profile's other ratings still give its recommendations (the row is not the client's error,
    and it stays in the store). Training on the database: one line naming the profile, item and value."""
    db_url = f"sqlite:///{tmp_path / 'profiles.sqlite'}" if kind == "sqlite" else _postgres_url()
    store = ProfileStore(db_url, max_ratings=5)
    try:
        _edited_row_checks(model, store, db_url, tmp_path, capsys, column, value)
    finally:
        store.close()


def _edited_row_checks(model, store, db_url, tmp_path, capsys, column, value) -> None:
    from mfrec.cli import main

    client = TestClient(create_app(model, profiles=store))
    created = client.post("/v1/profiles").json()
    base, auth = f"/v1/profiles/{created['profile']}", bearer(created["token"])
    for item, rating in (("1000", 5.0), ("1003", 4.5), ("1007", 1.0)):
        assert client.put(f"{base}/ratings/{item}", json={"rating": rating}, headers=auth).status_code == 200
    _edit(db_url, column, value, "1007")
    listed = client.get(f"{base}/ratings", headers=auth)
    assert listed.status_code == 200
    kept = {r["item"]: r["rating"] for r in listed.json()["items"]}
    assert kept == ({1000: 5.0, 1003: 4.5} if column == "rating" else {1000: 5.0, 1003: 4.5, 1007: 1.0})
    recs = client.get(f"{base}/recommendations?n=5", headers=auth)
    assert recs.status_code == 200, recs.text
    assert [r["item"] for r in recs.json()["items"]] == list(model.recommend_for_ratings(kept, 5).items[0])
    assert store.count() == 3  # left out, never deleted
    logged = capsys.readouterr().err
    assert column != "rating" or "1 stored rating(s) left out (item '1007'" in logged
    code = main(["train", "--ratings", db_url, "--model", "ease", "--split", "none", "-q",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1, err
    assert f"profile:{created['profile']}" in err and "1007" in err
    assert ("outside the scale" if value == 99.0 else "correct or delete that row") in err
