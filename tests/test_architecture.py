"""The package structure: no import cycles (function-level imports included), layers point one way,
no module over 400 lines, one definition of each public name the README documents."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("hooks", "probes", "experiments")


def _modules() -> dict[str, Path]:
    found = {}
    for pkg in PACKAGES:
        for path in (ROOT / pkg).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _imports(name: str, path: Path) -> set[str]:
    """Every handan module that ``name`` imports, at any depth of its code."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    package.split(".")[: len(package.split(".")) - node.level + 1]
                    + ([base] if base else [])
                )
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        out |= {t for t in targets if t in MODULES and t != name}
    return out


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def _without_package_inits(graph):
    # a package's __init__ re-exporting its own submodules is not a cycle between concerns
    return {
        m: {t for t in ts if not (m.startswith(t + ".") and MODULES[t].name == "__init__.py")}
        for m, ts in graph.items()
    }


def test_cycle_detector_finds_a_planted_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    assert _cycles(_without_package_inits(GRAPH)) == []


def test_lower_layers_do_not_import_experiments():
    """hooks/ and probes/ may use handan's error types, nothing else of experiments/."""
    leaks = {
        m: sorted(t for t in ts if t.startswith("experiments") and t != "experiments.errors")
        for m, ts in GRAPH.items()
        if m.split(".")[0] in ("hooks", "probes")
    }
    assert {m: ts for m, ts in leaks.items() if ts} == {}
    assert not any(
        t.startswith("probes") for m, ts in GRAPH.items() if m.startswith("hooks") for t in ts
    )


@pytest.mark.parametrize("name", sorted(MODULES))
def test_no_module_over_400_lines(name):
    assert len(MODULES[name].read_text().splitlines()) <= 400


def test_no_class_docstring_sits_below_an_attribute():
    """A class attribute written above the docstring makes the docstring a no-op string and the
    class undocumented (Ablate had one); found by the AST in every module of the packages."""
    misplaced = [
        f"{name}.{node.name}"
        for name, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
        and ast.get_docstring(node) is None
        and any(
            isinstance(stmt, ast.Expr)
            and isinstance(stmt.value, ast.Constant)
            and isinstance(stmt.value.value, str)
            for stmt in node.body[1:]
        )
    ]
    assert not misplaced, misplaced


def test_documented_api_imports_and_does_not_shadow_modules():
    import importlib

    import hooks
    import probes

    for attr in (
        "Recorder",
        "Steer",
        "ActivationStore",
        "get_backend",
        "resolve_site",
        "list_sites",
    ):
        assert attr in dir(hooks) and getattr(hooks, attr) is not None
    for attr in ("LinearProbe", "sweep", "compare", "transfer"):
        assert callable(getattr(probes, attr))
        assert f"probes.{attr}" not in MODULES  # a function never hides a submodule of its name
    assert importlib.import_module("probes.layer_sweep").sweep is probes.sweep


def test_cli_import_stays_light():
    """`handan --help` must be instant: building the app imports no torch, pandas or matplotlib."""
    import subprocess
    import sys

    code = "import sys, experiments.cli; print(sorted({'torch', 'pandas', 'matplotlib', 'transformers'} & set(sys.modules)))"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"
