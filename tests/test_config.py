"""Per-model configs: options that do not apply are errors naming the model; files of the flat format load."""

import json

import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file

from mfrec import MatrixFactorization, TrainConfig, load_model
from mfrec._io import content_digest
from mfrec.cli import main
from mfrec.config import LEGACY_DEFAULTS, assemble, preset
from mfrec.errors import ConfigError


def legacy(model: str, **values) -> dict:
    """A config as mfrec 0.1 wrote it: every field of one flat dataclass."""
    return {"model": model, **LEGACY_DEFAULTS, **values}


def test_an_option_of_another_model_is_an_error_that_names_the_model():
    with pytest.raises(ConfigError, match=r"learning_rate: not an option of the 'als' model \(its options: "):
        TrainConfig("als", learning_rate=0.1)
    with pytest.raises(ConfigError, match="max_items: not an option of the 'biased' model"):
        preset("default").replace(max_items=10)
    with pytest.raises(ConfigError, match="unknown training option"):
        TrainConfig("bpr", colour="red")


def test_switching_model_starts_from_its_defaults_and_keeps_device_seed_threads():
    config = preset("default").replace(seed=7, threads=1, device="cpu").replace(model="implicit_als")
    assert config.params == TrainConfig("implicit_als").params
    assert (config.seed, config.threads, config.device) == (7, 1, "cpu")


def test_flat_config_files_of_the_old_format_still_load():
    old = legacy("implicit_als", embedding_dim=128, regularization=40.0, epochs=15, patience=0)
    # the flat format's engine "torch" is what trained such a file then, so it still does
    # (alpha 1, regularization 40, unobserved weight 1 and no exponent: the implicit preset of that format)
    then = preset("implicit").replace(engine="torch", alpha=1.0, regularization=40.0, unobserved_weight=1.0,
                                      reg_exponent=0.0)
    assert TrainConfig.from_dict(old) == then
    with pytest.raises(ConfigError, match="learning_rate: not an option of the 'implicit_als' model"):
        TrainConfig.from_dict({**old, "learning_rate": 0.1})  # not the old default: it meant something
    assert TrainConfig.from_dict({**old, "learning_rate": 0.1}, saved=True) == then


def test_assemble_orders_preset_file_and_options_and_refuses_a_foreign_preset():
    name, config = assemble(None, {"model": "bpr", "epochs": 5}, {"learning_rate": 0.01})
    assert name == "bpr" and config.epochs == 5 and config.learning_rate == 0.01
    with pytest.raises(ConfigError, match="the 'fast' preset trains the 'biased' model, not 'ease'"):
        assemble("fast", {}, {"model": "ease"})


def test_errors_name_the_config_file_and_the_model_whose_option_it_is(tmp_path, capsys):
    with pytest.raises(ConfigError, match=r"^my\.json: the 'biased' model's engine must be one of torch, compiled, "
                                          r"not 'auto'$"):  # fmt: skip
        assemble(None, {"engine": "auto"}, {}, source="my.json")
    with pytest.raises(ConfigError, match=r"^my\.json: model must be one of .*, not 'svd'$"):
        assemble(None, {"model": "svd"}, {}, source="my.json")
    with pytest.raises(ConfigError, match=r"^my\.json: unknown training option\(s\): bogus$"):
        assemble("implicit", {"bogus": 1}, {}, source="my.json")
    # a value given on the command line is not the file's, and a model's own rule keeps its wording
    with pytest.raises(ConfigError, match=r"^the 'implicit_als' model's embedding_dim must be an integer"):
        assemble(None, {"model": "implicit_als"}, {"embedding_dim": 0}, source="my.json")
    with pytest.raises(ConfigError, match=r"^bayesian needs epochs - burn_in >= samples"):
        TrainConfig("bayesian", epochs=3)
    path, ratings = tmp_path / "config.json", tmp_path / "r.csv"
    path.write_text('{"train": {"model": "bpr", "engine": "auto"}}')
    ratings.write_text("user,item,rating\n1,1,4\n2,1,3\n")
    code = main(["train", "--ratings", str(ratings), "--config", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.strip() == f"error: {path}: the 'bpr' model's engine must be one of compiled, torch, not 'auto'"


def test_a_model_file_of_the_old_format_still_loads(lowrank, tmp_path):
    model = MatrixFactorization(model="bpr", epochs=2, patience=0, device="cpu").fit(lowrank)
    path = model.save(tmp_path / "new.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["mfrec"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    meta.update(format_version=1, config=legacy("bpr", **model.config.params.to_dict(), patience=0))
    meta["sha256"] = content_digest(tensors)  # format 1 hashed the tensors only
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"mfrec": json.dumps(meta)})
    loaded = load_model(old)
    assert loaded.config.params == model.config.params
    assert (loaded.recommend([100], 5).items == model.recommend([100], 5).items).all()


def test_cli_refuses_an_option_the_model_does_not_have(lowrank, tmp_path, capsys):
    ratings = tmp_path / "r.csv"
    lowrank.to_frame().to_csv(ratings, index=False)
    code = main(["train", "--ratings", str(ratings), "--model", "als", "--learning-rate", "0.1", "--out",
                 str(tmp_path / "run")])  # fmt: skip
    err = capsys.readouterr().err.strip()
    assert code == 1 and "learning_rate: not an option of the 'als' model" in err and "\n" not in err
    assert not (tmp_path / "run").exists()


def test_an_implicit_model_file_without_the_newer_buffers_keeps_its_confidence(lowrank, tmp_path):
    # trained as files were then: c = 1 + alpha * w with w unscaled (binary input: mean weight 1)
    model = MatrixFactorization(model="implicit_als", epochs=3, confidence="binary", confidence_offset=1.0,
                                device="cpu").fit(lowrank)  # fmt: skip
    assert float(model.module_.weight_scale) == 1.0
    path = model.save(tmp_path / "new.safetensors")
    with safe_open(str(path), framework="pt") as handle:
        meta = json.loads(handle.metadata()["mfrec"])
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    for name in ("module.weight_scale", "module.confidence_offset"):
        del tensors[name]
    meta.update(format_version=1, config={**meta["config"], "confidence_offset": 0.0})  # the option's new default
    meta["sha256"] = content_digest(tensors)  # format 1 hashed the tensors only
    old = tmp_path / "old.safetensors"
    save_file(tensors, str(old), metadata={"mfrec": json.dumps(meta)})
    loaded = load_model(old)
    assert float(loaded.module_.confidence_offset) == 1.0 and float(loaded.module_.weight_scale) == 1.0
    history = {lowrank.item_map.raw(lowrank.items[0]): 5.0, lowrank.item_map.raw(lowrank.items[1]): 3.0}
    np.testing.assert_allclose(loaded.recommend_for_ratings(history, 5).scores,
                               model.recommend_for_ratings(history, 5).scores, rtol=1e-6)  # fmt: skip


@pytest.mark.parametrize(("text", "pattern"), [
    ('{"epochs": 1, "epochs": 5}', r"not readable JSON \(the key 'epochs' appears more than once\)"),
    ("[" * 100_000 + "]" * 100_000, r"not readable JSON \(nested too deeply\)"),
    ('{"epochs": 1 // a comment\n}', r"not readable JSON \(Expecting ',' delimiter"),
    ("[1, 2]", r"a config must be a JSON object"),
])  # fmt: skip
def test_a_config_file_is_read_exactly_or_refused_in_one_line(tmp_path, capsys, text, pattern):
    """A repeated key kept the last value silently, and deep nesting was a RecursionError (exit 3)."""
    from mfrec.config import load_config_file

    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=pattern):
        load_config_file(path)
    code = main(["train", "--dataset", "ml-latest-small", "--config", str(path), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.startswith(f"error: {path}: ") and "\n" not in err
    assert not (tmp_path / "o").exists()


def test_a_config_file_may_start_with_a_byte_order_mark(tmp_path):
    from mfrec.config import load_config_file

    path = tmp_path / "config.json"
    path.write_bytes(b'\xef\xbb\xbf{"epochs": 3}')  # what some editors save
    assert load_config_file(path) == {"epochs": 3}


@pytest.mark.parametrize("given, recorded", [
    ("r.csv", "{cwd}/r.csv"),
    ("/abs/r.csv", "/abs/r.csv"),
    ("sqlite:///runs/p.sqlite", "sqlite:///{cwd}/runs/p.sqlite"),
    ("sqlite:///runs/p.sqlite?mode=ro", "sqlite:///{cwd}/runs/p.sqlite?mode=ro"),
    ("sqlite:////abs/p.sqlite", "sqlite:////abs/p.sqlite"),
    ("sqlite://", "sqlite://"),
    ("postgresql+psycopg://me@db/mfrec", "postgresql+psycopg://me@db/mfrec"),
])  # fmt: skip
def test_a_run_records_its_files_as_absolute_paths(tmp_path, monkeypatch, given, recorded):
    """What config.json records for --refit and --resume to find from any folder: every local file and SQLite
    database as an absolute path; a URL of a server is kept as given."""
    from mfrec.config import RunConfig, SplitConfig

    monkeypatch.chdir(tmp_path)
    want = recorded.format(cwd=tmp_path)
    located = RunConfig(dataset=None, ratings_file=given, feedback=given, columns={"items": "items.csv"}).located()
    assert located.ratings_file == want and located.feedback == want
    assert located.columns["items"] == str(tmp_path / "items.csv")
    files = RunConfig(dataset=None, split=SplitConfig("files", files=("a.csv", "b.csv", "/c.csv"))).located()
    assert files.split.files == (str(tmp_path / "a.csv"), str(tmp_path / "b.csv"), "/c.csv")
