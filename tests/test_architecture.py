"""The code's shape, checked: imports point one way, files and functions stay small, task
knowledge lives in the task registry, and ruff passes (what the README's test command enforces)."""

from __future__ import annotations

import ast
import shutil
import subprocess
import sys
from pathlib import Path

from bench.tasks import TASKS

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("bench", "models", "baselines")
MAX_FILE_LINES = 400
MAX_FUNCTION_LINES = 80
# where a task's name may be written out: the registry itself and the prompt templates (P5's
# prompt families are named by task); each model's registration line names its tasks too
TASK_NAME_HOMES = {"bench/tasks.py", "models/prompts.py"}
NOT_A_TASK = "# not a task:"  # marks a line where the word is a data field or an indexing name


def _modules() -> dict[str, Path]:
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    return {".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__"): p for p in files}


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def import_graph() -> dict[str, set[str]]:
    """module -> the suite's modules it imports, imports inside functions included."""
    mods = _modules()
    graph = {}
    for name, path in mods.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                deps |= {m for m in [node.module, *(f"{node.module}.{a.name}" for a in node.names)] if m in mods}
            elif isinstance(node, ast.Import):
                deps |= {a.name for a in node.names if a.name in mods}
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while not comp or comp[-1] != v:
                comp.append(stack.pop())
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    assert cycles(import_graph()) == []


def test_layers_point_one_way():
    """Reporting reads records only (never the run path or the models); the data layer and the
    run path never import the studies built on them."""
    graph = import_graph()
    for mod, deps in graph.items():
        if mod.startswith("bench.report"):
            bad = {d for d in deps if d.startswith(("bench.run", "bench.studies", "models", "baselines"))}
            assert not bad, f"{mod} (reporting) imports {sorted(bad)}"
        if mod.startswith(("bench.data", "bench.run")):
            bad = {d for d in deps if d.startswith("bench.studies")}
            assert not bad, f"{mod} imports the studies {sorted(bad)}"


def test_files_and_functions_are_small():
    too_long = []
    for path in _modules().values():
        text = path.read_text()
        if len(text.splitlines()) > MAX_FILE_LINES:
            too_long.append(f"{_rel(path)}: {len(text.splitlines())} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                n = node.end_lineno - node.lineno + 1
                if n > MAX_FUNCTION_LINES:
                    too_long.append(f"{_rel(path)}:{node.lineno} {node.name}(): {n} lines")
    assert not too_long, "over the size limits:\n" + "\n".join(too_long)


def _registration_lines(tree: ast.AST) -> set[int]:
    lines = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "register_model":
            lines |= set(range(node.lineno, node.end_lineno + 1))
    return lines


def task_literals(path: Path, names: set[str]) -> list[str]:
    text = path.read_text()
    src = text.splitlines()
    tree = ast.parse(text)
    allowed = _registration_lines(tree)
    return [f"{_rel(path)}:{node.lineno}: {node.value!r}" for node in ast.walk(tree)
            if isinstance(node, ast.Constant) and node.value in names and node.lineno not in allowed
            and NOT_A_TASK not in src[node.lineno - 1]]


def test_task_names_only_in_the_task_registry():
    names = set(TASKS)
    found = [hit for path in _modules().values() if _rel(path) not in TASK_NAME_HOMES
             for hit in task_literals(path, names)]
    assert not found, ("task names written out outside bench/tasks.py (ask the registry, or import its "
                       "constants):\n" + "\n".join(found))


def test_task_literal_check_sees_a_planted_literal(tmp_path, monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    planted = tmp_path / "m.py"
    planted.write_text('X = "direct"\nY = "direct"  # not a task: a field\n'
                       '@register_model("m", tasks={"direct"}, config=C)\nclass M: ...\n')
    assert task_literals(planted, {"direct"}) == ['m.py:1: \'direct\'']


def test_ruff_passes():
    ruff = shutil.which("ruff") or shutil.which("ruff", path=str(Path(sys.executable).parent))
    assert ruff is not None, "ruff is not installed: pip install -e '.[test]'"
    out = subprocess.run([ruff, "check", *PACKAGES, "tests", "reference"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr
