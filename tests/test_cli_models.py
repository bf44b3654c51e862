"""Every registered model through the command line: train (with its log lines), evaluate, recommend,
similar, and a refit on every rating.

Generated from the registry, so a new model is covered here as in the contract suite; a model
whose options the command line reads wrongly (e.g. one without epochs) fails here, not for a user.
"""

import json

import pytest

from mfrec.cli import main
from mfrec.models import registry


@pytest.mark.parametrize("name", list(registry.SPECS))
def test_every_model_trains_and_serves_from_the_command_line(name, ratings_csv, tmp_path, capsys):
    config = tmp_path / "quick.json"
    config.write_text(json.dumps(registry.get(name).quick))
    out = tmp_path / "run"
    code = main(["train", "--ratings", str(ratings_csv), "--model", name, "--config", str(config),
                 "--split", "random", "--device", "cpu", "--out", str(out)])  # fmt: skip
    _, err = capsys.readouterr()
    assert code == 0, err
    assert "Traceback" not in err
    assert (out / "model.safetensors").is_file()
    for command in (["evaluate", str(out)], ["recommend", str(out), "--user", "100", "-n", "3"],
                    ["similar", str(out), "--item", "1000", "-n", "3"]):  # fmt: skip
        code = main(command)
        stdout, err = capsys.readouterr()
        assert code == 0, (command, err)
        assert stdout.strip(), command
    code = main(["train", "--refit", str(out), "-q"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "run-refit" / "model.safetensors").is_file()
