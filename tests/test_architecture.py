"""The shape of the code: no import cycles, no model-name dispatch outside models/, a public read API."""

import ast
from pathlib import Path

from mfrec.models import registry

SRC = Path(__file__).resolve().parents[1] / "src"
FILES = sorted(SRC.rglob("*.py"))


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in FILES}


def imports(path: Path) -> set[str]:
    """Every mfrec module ``path`` imports, at module level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        for name in names:
            while name and name not in MODULES:
                name = name.rpartition(".")[0]
            if name.startswith("mfrec"):
                found.add(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` (a path that ends where it starts), or ``None``."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for name in sorted(graph):
        if name not in state and (cycle := visit(name)):
            return cycle
    return None


def test_no_import_cycles_in_src():
    graph = {name: imports(path) - {name} for name, path in MODULES.items()}
    # a package importing its own submodules is how packages work; a submodule importing back is a cycle
    graph = {name: {t for t in targets if not (t.startswith(name + ".") and MODULES[name].name == "__init__.py")}
             for name, targets in graph.items()}  # fmt: skip
    assert sum(map(len, graph.values())) > 150  # the graph is really there
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_checkers_see_imports_and_cycles(tmp_path):
    probe = tmp_path / "b.py"
    probe.write_text("from mfrec.errors import MfrecError\n\ndef f():\n    from mfrec.estimator import load_model\n")
    assert imports(probe) == {"mfrec.errors", "mfrec.estimator"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None


def model_name_comparisons(path: Path) -> list[str]:
    names = set(registry.SPECS)
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Compare):
            for side in [node.left, *node.comparators]:
                values = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                hits = [v.value for v in values if isinstance(v, ast.Constant) and v.value in names]
                if hits:
                    found.append(f"{path.name}:{node.lineno} compares with {hits}")
    return found


def test_no_dispatch_on_the_model_name_outside_models():
    outside = [p for p in FILES if "models" not in p.relative_to(SRC).parts]
    found = [hit for p in outside for hit in model_name_comparisons(p)]
    assert not found, found


def test_the_dispatch_checker_sees_a_comparison(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text('if config.model == "bpr" or kind in ("als", "x"):\n    pass\n')
    assert len(model_name_comparisons(probe)) == 2


def test_serving_cli_runs_and_recommend_use_the_public_read_api():
    package = SRC / "mfrec"
    users = [*sorted((package / "serve").glob("*.py")), *sorted((package / "cli").glob("*.py")),
             package / "run.py", package / "recommend.py", package / "store.py"]  # fmt: skip
    offenders = [str(p.relative_to(SRC)) for p in users if "module_" in p.read_text()]
    assert not offenders, offenders


def test_store_calls_nothing_private():
    tree = ast.parse((SRC / "mfrec" / "store.py").read_text())
    private = [
        f"line {node.lineno}: {node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
    ]
    assert not private, private


def control_characters(root: Path) -> list[str]:
    """``file:line`` of every character below U+0020 other than a newline in the Python and Markdown under
    ``root``, hidden folders (environments) left out: a tab in a docstring is usually a ``\\t`` that was
    meant as the start of ``\\top``."""
    found = []
    paths = [*root.rglob("*.py"), *root.rglob("*.md")] if root.is_dir() else [root]
    for path in sorted(paths):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").split("\n"), 1):
            if any(ord(c) < 32 for c in line):
                found.append(f"{path.relative_to(root.parent)}:{number}")
    return found


def test_sources_and_docs_hold_no_control_characters():
    root = SRC.parent
    names = ("src", "tests", "docs", "benchmarks", "README.md")
    found = [hit for name in names for hit in control_characters(root / name)]
    assert not found, found


def test_the_control_character_check_sees_a_tab(tmp_path):
    (tmp_path / "module.py").write_text('"""The score :math:`y_t^' + "\t" + 'op x`."""\n')  # "\\top" as a tab
    assert control_characters(tmp_path) == [f"{tmp_path.name}/module.py:1"]
