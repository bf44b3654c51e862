"""Raw ids from the command line and HTTP are parsed exactly: no int() leniency, no overflow, no 500."""

import pytest

from mfrec.cli import main

HOSTILE = ["99999999999999999999", "-99999999999999999999", "1_0", "1e3", " 1", "0x10", "١٠", "9" * 5000,
           "-" + "7" * 5000]  # int() refuses text of 4,300+ digits


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    from tests.conftest import low_rank_ratings

    folder = tmp_path_factory.mktemp("ids")
    low_rank_ratings().to_frame().to_csv(folder / "r.csv", index=False)
    assert main(["train", "--ratings", str(folder / "r.csv"), "--epochs", "2", "--device", "cpu", "-q", "--out",
                 str(folder / "run")]) == 0  # fmt: skip
    return folder / "run"


@pytest.mark.parametrize("raw", HOSTILE)
@pytest.mark.parametrize("command", ["recommend --user", "predict --item 1000 --user", "similar --item",
                                     "recommend --ratings"])  # fmt: skip
def test_cli_ids_that_are_not_plain_integers_are_unknown(run_folder, capsys, command, raw):
    verb, *flags = command.split()
    value = f"{raw}=4" if flags[-1] == "--ratings" else raw
    code = main([verb, "--model", str(run_folder), *flags, value])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err and "internal" not in err, err


@pytest.mark.parametrize("raw", HOSTILE[:4])
def test_http_ids_of_any_size_are_json_errors(run_folder, raw):
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from mfrec import load_model
    from mfrec.serve import create_app

    client = TestClient(create_app(load_model(run_folder)), raise_server_exceptions=False)
    number = int(raw) if raw.lstrip("-").isdigit() else 0  # as a JSON number too
    responses = [
        client.get(f"/v1/users/{raw}/recommendations"),
        client.get(f"/v1/users/{raw}/ratings"),
        client.get(f"/v1/items/{raw}/similar"),
        client.post("/v1/predict", json={"pairs": [{"user": raw, "item": 1000}]}),
        client.post("/v1/predict", json={"pairs": [{"user": 100, "item": raw}]}),
        client.post("/v1/predict", json={"pairs": [{"user": 100, "item": number}]}),
        client.post("/v1/recommendations", json={"ratings": [{"item": raw, "rating": 4}], "n": 3}),
    ]
    for response in responses:
        assert response.status_code in (404, 422), (response.request.url, response.status_code, response.text)
        assert response.json()["status"] == response.status_code and response.json()["message"]
