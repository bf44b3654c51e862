"""Nonsense is refused with one line: NaN scales, empty test parts, resume with options, bad ports."""

import json
import socket

import pytest

from mfrec.cli import main


def one_line_error(capsys, code, words):
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and err.startswith("error: ") and "\n" not in err and words in err, err


@pytest.mark.parametrize("scale, words", [(("nan", "5"), "'nan' is not a finite number"),
                                          (("5", "1"), "rating scale must be two finite numbers"),
                                          (("1", "inf"), "'inf' is not a finite number"),
                                          (("-inf", "5"), "'-inf' is not a finite number")])  # fmt: skip
def test_a_scale_that_is_not_two_finite_increasing_numbers(ratings_csv, tmp_path, capsys, scale, words):
    code = main(["train", "--ratings", str(ratings_csv), "--scale", *scale, "--out", str(tmp_path / "run")])
    assert code == (2 if "is not a finite number" in words else 1)  # a non-number is refused by the option's type
    one_line_error(capsys, code, words)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args", [["--split", "temporal-user", "--holdout", "100"],
                                  ["--split", "random", "--split-fractions", "1", "0", "0"],
                                  ["--split", "temporal-user", "--holdout", "30"]])  # fmt: skip
def test_a_split_without_test_ratings_is_an_error(ratings_csv, tmp_path, capsys, args):
    code = main(["train", "--ratings", str(ratings_csv), "--timestamp-col", "timestamp", *args, "-q", "--out",
                 str(tmp_path / "r")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code in (1, 2) and err.startswith("error: ") and "\n" not in err, err
    assert not (tmp_path / "r").exists()



@pytest.mark.parametrize("rows, words", [
    ("1,1,5\n1,2,4\n2,1,3\n", r"a.csv, its training part \(1 rating\(s\)\): 1 user\(s\) and 1 item\(s\)"),
    ("".join(f"1,{i},{1 + i % 5}\n" for i in range(30)), r"a.csv: 1 user\(s\) and 30 item\(s\)"),
])  # fmt: skip
def test_too_few_users_or_items_names_the_file_or_its_training_part(tmp_path, capsys, rows, words):
    """The count refers to what it counts: the file had 2 users, so "a.csv: 1 user" would contradict the
    data line printed above it; it is the training part left after the split that has one."""
    (tmp_path / "a.csv").write_text("user,item,rating\n" + rows)
    code = main(["train", "--ratings", str(tmp_path / "a.csv"), "-q", "--out", str(tmp_path / "r")])
    one_line_error(capsys, code, "needs at least two of each")
    assert not (tmp_path / "r").exists()
    main(["train", "--ratings", str(tmp_path / "a.csv"), "-q", "--out", str(tmp_path / "r")])
    import re

    assert re.search(words, capsys.readouterr().err)


def test_metrics_files_never_hold_nan(ratings_csv, tmp_path):
    from mfrec._io import json_text

    text = json_text({"a": float("nan"), "b": [float("inf"), 1.0], "c": {"d": -float("inf")}})
    assert json.loads(text) == {"a": None, "b": [None, 1.0], "c": {"d": None}}
    assert main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "-q", "--device", "cpu", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    json.loads((tmp_path / "run" / "metrics.json").read_text(), parse_constant=pytest.fail)


@pytest.mark.parametrize("extra", [["--epochs", "2"], ["--learning-rate", "0.5"], ["--preset", "fast"]])
def test_resume_refuses_options_it_would_ignore(ratings_csv, tmp_path, capsys, extra):
    code = main(["train", "--resume", str(tmp_path / "run"), *extra])
    one_line_error(capsys, code, "--resume continues the run with its own saved config")


@pytest.mark.parametrize("shrinkage", ["nan", "inf", "-1"])
def test_similar_refuses_a_shrinkage_that_is_not_a_number_at_least_zero(ratings_csv, tmp_path, capsys, shrinkage):
    assert main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "-q", "--device", "cpu", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()
    code = main(["similar", "--model", str(tmp_path / "run"), "--item", "1000", "--shrinkage", shrinkage])
    one_line_error(capsys, code, "shrinkage")


@pytest.mark.parametrize("port", ["0", "99999", "-1"])
def test_serve_refuses_a_port_out_of_range(tmp_path, capsys, port):
    code = main(["serve", str(tmp_path / "model.safetensors"), "--port", port])
    one_line_error(capsys, code, "--port")


def test_serve_refuses_a_list_memory_without_lists(tmp_path, capsys):
    """--top-k 0 precomputes nothing, so a --top-k-memory given beside it would be ignored without a word."""
    code = main(["serve", str(tmp_path / "model.safetensors"), "--top-k", "0", "--top-k-memory", "64"])
    assert code == 2
    one_line_error(capsys, code, "--top-k-memory does not apply to --top-k 0")


@pytest.mark.parametrize(("token", "words"), [
    ("short", "at least 16 characters"), (" " * 20, "no spaces"), ("a" * 20 + "\n", "no spaces"),
    ("a" * 10 + " " + "a" * 10, "no spaces"), ("a" * 20 + "\x00", "no spaces"),
])  # fmt: skip
def test_serve_refuses_an_admin_token_no_header_could_carry(tmp_path, capsys, monkeypatch, token, words):
    """A token with a space or newline (a file read into the variable) could never match a Bearer header."""
    if "\x00" in token:  # no environment variable holds one
        code = main(["serve", str(tmp_path / "model.safetensors"), "--admin-token", token])
    else:
        monkeypatch.setenv("MFREC_ADMIN_TOKEN", token)
        code = main(["serve", str(tmp_path / "model.safetensors")])
    assert code == 2
    one_line_error(capsys, code, words)



@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_serve_refuses_a_profile_database_in_memory(tmp_path, capsys, url):
    """Profiles in memory were lost at every restart, and each worker kept its own: the service keeps what
    users tell it, so it is refused before the model is read."""
    code = main(["serve", str(tmp_path / "model.safetensors"), "--db", url])
    assert code == 2
    one_line_error(capsys, code, "an in-memory database keeps no profile past a restart")


def test_serve_reports_a_port_in_use_in_one_line(ratings_csv, tmp_path, capsys):
    assert main(["train", "--ratings", str(ratings_csv), "--epochs", "2", "-q", "--device", "cpu", "--out",
                 str(tmp_path / "run")]) == 0  # fmt: skip
    capsys.readouterr()
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    try:
        code = main(["serve", str(tmp_path / "run"), "--port", str(taken.getsockname()[1])])
    finally:
        taken.close()
    one_line_error(capsys, code, "cannot listen on 127.0.0.1")
    for empty in ("", "  "):  # an empty address (an unset variable, say) would listen on every interface
        code = main(["serve", str(tmp_path / "run"), "--host", empty, "--port", "1"])
        assert code == 2
        one_line_error(capsys, code, "--host: give an address: 127.0.0.1")


@pytest.mark.parametrize("content", ['{"train": null}', '{"train": [1, 2]}', '{"train": "fast"}', "[1]"])
def test_a_config_file_of_the_wrong_shape(ratings_csv, tmp_path, capsys, content):
    config = tmp_path / "config.json"
    config.write_text(content)
    code = main(["train", "--ratings", str(ratings_csv), "--config", str(config), "--out", str(tmp_path / "run")])
    one_line_error(capsys, code, str(config))


@pytest.mark.parametrize("content", ["{}", '{"split": 1}', "not json", '{"preset": "x", "train": {"model": 3}}'])
def test_a_damaged_resume_state_is_a_clear_error(ratings_csv, tmp_path, capsys, content):
    from mfrec.run import work_folder

    work = work_folder(tmp_path / "run")
    work.mkdir()
    (work / "config.json").write_text(content)
    code = main(["train", "--resume", str(tmp_path / "run")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith("error: ") and "\n" not in err and "internal" not in err, err
    assert (work / "config.json").read_text() == content  # nothing the user owns is deleted


@pytest.mark.parametrize("limit", [4_000, 40_000, 400_000])
def test_a_real_write_failure_is_one_line_and_leaves_nothing_behind(ratings_csv, tmp_path, limit):
    """RLIMIT_FSIZE makes the kernel refuse writes (EFBIG) beyond ``limit`` bytes, as a full disk would."""
    import subprocess
    import sys

    script = (
        "import resource, signal, sys\n"
        "signal.signal(signal.SIGXFSZ, signal.SIG_IGN)\n"
        f"resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit}))\n"
        "from mfrec.cli import main\n"
        f"sys.exit(main(['train', '--ratings', {str(ratings_csv)!r}, '--epochs', '3', '--device', 'cpu', '-q',\n"
        f"           '--embedding-dim', '256', '--out', {str(tmp_path / 'out' / 'run')!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    err = done.stderr.strip()
    assert done.returncode == 1 and err.startswith("error: ") and "\n" not in err, err
    assert "File too large" in err
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.parametrize("changes", [{"embedding_dim": 10**9}, {"embedding_dim": 2**40, "model": "implicit_als"},
                                     {"model": "bayesian", "embedding_dim": 10**6, "samples": 10**4,
                                      "epochs": 10**4 + 1, "burn_in": 0}])  # fmt: skip
def test_a_model_too_large_for_memory_is_refused_before_allocating(lowrank, changes):
    from mfrec import MatrixFactorization
    from mfrec.errors import ConfigError

    with pytest.raises(ConfigError, match=r"needs about [\d,.]+ GiB for 60 users and 40 items; this machine has"):
        MatrixFactorization(device="cpu", patience=0, **changes).fit(lowrank)


def test_cli_refuses_an_embedding_dim_too_large_for_memory(ratings_csv, tmp_path, capsys):
    code = main(["train", "--ratings", str(ratings_csv), "--embedding-dim", "1000000000", "-q", "--out",
                 str(tmp_path / "run")])  # fmt: skip
    one_line_error(capsys, code, "GiB")
    assert not (tmp_path / "run").exists()


def test_a_process_count_beyond_any_machine_is_a_usage_line(tmp_path, capsys):
    """--nproc of 30 digits reached the process launcher, whose OverflowError was exit 3."""
    from mfrec.cli import main

    out = tmp_path / "run"
    code = main(["train", "--ratings", str(tmp_path / "r.csv"), "--nproc", "9" * 30, "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "--nproc" in err and not out.exists()


def test_running_out_of_memory_is_one_line_and_not_called_a_bug(ratings_csv, tmp_path, capsys, monkeypatch):
    """A MemoryError is this machine's (or ulimit's) limit: exit 1 with what to try, not exit 3 "report it"."""
    import mfrec.run

    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(mfrec.run, "make_split", no_memory)
    code = main(["train", "--ratings", str(ratings_csv), "--out", str(tmp_path / "run")])
    assert code == 1
    one_line_error(capsys, code, "out of memory")
