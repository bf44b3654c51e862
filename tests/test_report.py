"""``mfrec report``: one self-contained page per run, written by ``train`` and on demand, that verifies."""

import base64
import re

import numpy as np
import pytest

from mfrec import MatrixFactorization
from mfrec._io import MANIFEST, verify_manifest
from mfrec.cli import main
from mfrec.errors import ModelFileError
from mfrec.evaluation.ranking import evaluate_ranking, rank_users
from mfrec.evaluation.report import REPORT_FILE
from tests.conftest import low_rank_ratings

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def ratings_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "ratings.csv"
    frame = low_rank_ratings(n_users=80, n_items=50).to_frame()
    frame["rating"] = (frame["rating"] * 2).round() / 2
    frame.to_csv(path, index=False)
    return path


def train(ratings_file, out, *extra):
    epochs = [] if "--epochs" in extra else ["--epochs", "3"]  # an option is given once
    return main(["train", "--ratings", str(ratings_file), *epochs, "--device", "cpu", "-q",
                 "--out", str(out), *extra])  # fmt: skip


@pytest.fixture(scope="module")
def rating_run(ratings_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "biased"
    assert train(ratings_file, out) == 0
    return out


def images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)]


def test_train_writes_a_self_contained_report_that_the_digest_list_covers(rating_run, capsys):
    page = (rating_run / REPORT_FILE).read_text()
    assert REPORT_FILE in (rating_run / MANIFEST).read_text()
    assert verify_manifest(rating_run, error=ModelFileError)
    pictures = images(page)
    # curve, per-user histogram, long tail, scores, predicted against true
    assert len(pictures) == 5 and all(p.startswith(PNG) for p in pictures)
    assert "<script" not in page and not re.search(r'(src|href)="(?!data:)', page)
    assert "http://" not in page and "https://" not in page
    for heading in ("Training curve", "Metrics on the test part", "NDCG@10 per test user", "The long tail",
                    "Scores of the recommended items", "Predicted against true ratings"):  # fmt: skip
        assert f"<h2>{heading}</h2>" in page


def test_the_metrics_table_shows_the_runs_test_metrics_and_baselines(rating_run):
    import json

    metrics = json.loads((rating_run / "metrics.json").read_text())
    page = (rating_run / REPORT_FILE).read_text()
    rows = dict(re.findall(r"<tr(?: class=model)?><td>([^<]+)</td>(.*?)</tr>", page))
    assert {"model", "global_mean", "bias_only", "popularity"} <= set(rows)
    assert f"<td>{metrics['model']['test']['rmse']:.4f}</td>" in rows["model"]
    assert f"<td>{metrics['model']['test']['ndcg@10']:.4f}</td>" in rows["model"]
    assert f"<td>{metrics['baselines']['popularity']['test']['ndcg@10']:.4f}</td>" in rows["popularity"]


def test_report_rewrites_the_same_page_in_place_and_the_run_still_loads(rating_run, capsys):
    written = (rating_run / REPORT_FILE).read_bytes()
    assert main(["report", str(rating_run)]) == 0
    assert f"report: {(rating_run / REPORT_FILE).resolve().as_uri()}" in capsys.readouterr().out
    assert (rating_run / REPORT_FILE).read_bytes() == written  # the saved model gives the page train wrote
    assert verify_manifest(rating_run, error=ModelFileError)
    assert MatrixFactorization.load(rating_run).predicts_ratings


def test_report_to_another_file_leaves_the_run_folder_alone(rating_run, tmp_path):
    before = (rating_run / MANIFEST).read_text()
    out = tmp_path / "page.html"
    assert main(["report", str(rating_run), "--out", str(out)]) == 0
    assert (rating_run / MANIFEST).read_text() == before
    assert len(images(out.read_text())) == 5
    assert main(["report", str(rating_run), "--out", str(out)]) == 0  # its own earlier page is replaced
    assert (tmp_path / "page.html.sha256").read_text().endswith("  page.html\n")


@pytest.mark.parametrize("where", ["user-page", "changed-report", "run-config", "run-model", "link"])
def test_report_never_replaces_a_file_mfrec_did_not_write(rating_run, tmp_path, capsys, where):
    """--out naming a user's page, a report edited since, or the run's own config or model: refused, unchanged."""
    import shutil

    run = tmp_path / "run"
    shutil.copytree(rating_run, run)
    target = {"user-page": tmp_path / "mine.html", "changed-report": tmp_path / "page.html",
              "run-config": run / "config.json", "run-model": run / "model.safetensors",
              "link": tmp_path / "link.html"}[where]  # fmt: skip
    if where == "changed-report":
        assert main(["report", str(run), "--out", str(target)]) == 0
        target.write_text(target.read_text() + "<!-- my note -->")
    elif where == "user-page":
        target.write_text("<p>mine</p>")
    elif where == "link":
        (tmp_path / "mine.html").write_text("<p>mine</p>")
        target.symlink_to(tmp_path / "mine.html")
    capsys.readouterr()
    before = {p: p.read_bytes() for p in [*run.iterdir(), *tmp_path.glob("*.html")]}
    code = main(["report", str(run), "--out", str(target)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1
    assert "is not a report" in err and "nothing was written" in err
    assert {p: p.read_bytes() for p in before} == before
    assert verify_manifest(run, error=ModelFileError)


def test_a_ranking_model_has_no_predicted_against_true_figure(ratings_file, tmp_path):
    out = tmp_path / "implicit"
    assert train(ratings_file, out, "--preset", "implicit", "--epochs", "2") == 0
    page = (out / REPORT_FILE).read_text()
    assert "Predicted against true ratings" not in page and len(images(page)) == 4
    assert "unit is the score" in page


def test_a_run_without_held_out_data_says_so(ratings_file, tmp_path):
    out = tmp_path / "all"
    assert train(ratings_file, out, "--split", "none") == 0
    page = (out / REPORT_FILE).read_text()
    assert "nothing was held out" in page and len(images(page)) == 1


@pytest.mark.parametrize("make", ["missing", "not-a-run", "damaged", "damaged-report"])
def test_report_on_what_is_not_a_sound_run_is_one_line(rating_run, tmp_path, capsys, make):
    import shutil

    target = tmp_path / make
    if make == "not-a-run":
        target.mkdir()
        (target / "notes.txt").write_text("mine")
    elif make.startswith("damaged"):
        shutil.copytree(rating_run, target)
        (target / ("metrics.json" if make == "damaged" else REPORT_FILE)).write_text("{}")
    code = main(["report", str(target)])
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and len(err.splitlines()) == 1 and "Traceback" not in err
    if make == "not-a-run":
        assert (target / "notes.txt").read_text() == "mine" and not (target / REPORT_FILE).exists()
    if make.startswith("damaged"):  # a folder that does not verify is reported, not rewritten
        damaged = target / ("metrics.json" if make == "damaged" else REPORT_FILE)
        assert "damaged or was changed" in err and damaged.read_text() == "{}"


def test_per_user_metrics_average_to_the_summary():
    from mfrec.evaluation.ranking import popularity_scores

    data = low_rank_ratings(n_users=50, n_items=30, density=0.5)
    rng = np.random.default_rng(0)
    test_rows = rng.random(len(data)) < 0.3
    train, test = data.subset(np.flatnonzero(~test_rows)), data.subset(np.flatnonzero(test_rows))
    ranked = rank_users(popularity_scores(train), train, test, k=5, threshold=3.0)
    summary = evaluate_ranking(popularity_scores(train), train, test, k=5, threshold=3.0)
    for name, values in ranked.metrics.items():
        assert values.mean() == pytest.approx(summary[name])
    assert ranked.top.shape == (len(ranked.users), 5)
    seen = {(u, i) for u, i in zip(train.users, train.items, strict=True)}
    assert not any((u, i) in seen for u, row in zip(ranked.users, ranked.top, strict=True) for i in row if i >= 0)
    # scores are the popularity counts of the listed items, best first
    counts = np.bincount(train.items, minlength=train.n_items)
    valid = ranked.top >= 0
    assert np.array_equal(ranked.scores[valid], counts[ranked.top[valid]])
    assert np.all(np.diff(np.where(valid, ranked.scores, -1), axis=1) <= 0)
