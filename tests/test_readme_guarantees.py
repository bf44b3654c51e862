"""The README's "What happens when things go wrong" section: every guarantee names tests that exist."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def section() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    start = text.index("## What happens when things go wrong")
    return text[start : text.index("\n## ", start + 1)]


def guarantees() -> list[str]:
    return re.split(r"\n- ", section())[1:]


def test_every_guarantee_cites_a_test_that_exists():
    cited = 0
    for item in guarantees():
        names = re.findall(r"`(test_\w+\.py)::(test_\w+)`", item)
        if "MFREC_DEBUG" in item:  # a how-to, not a guarantee
            continue
        assert names, f"a guarantee without a test: {item[:80]}"
        for file, name in names:
            tree = ast.parse((ROOT / "tests" / file).read_text())
            defined = {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}
            assert name in defined, f"{file}::{name} is cited in the README but does not exist"
            cited += 1
    assert cited >= 25
