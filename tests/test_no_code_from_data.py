"""Nothing a user or a download provides is executed: YAML through safe_load only, no pickle, no
torch.load without weights_only, no eval/exec, and the game24 checker reads only its grammar."""

from __future__ import annotations

import ast
import builtins
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.data.game24 import evaluate_expression, solves
from experiments.errors import InputError
from experiments.pipeline.config import RunConfig

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for pkg in ("hooks", "probes", "experiments") for p in (ROOT / pkg).rglob("*.py")]


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            owner = getattr(f.value, "id", "") if isinstance(f, ast.Attribute) else ""
            yield node, owner, name


def test_source_never_deserialises_code():
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + [getattr(node, "module", "") or ""]
                if any(
                    n.split(".")[0] in {"pickle", "dill", "cloudpickle", "marshal"} for n in names
                ):
                    found.append(f"{path.name}: imports a pickle module")
        for node, owner, name in _calls(tree):
            where = f"{path.relative_to(ROOT)}:{node.lineno}"
            if owner == "yaml" and name in {"load", "unsafe_load", "full_load", "load_all"}:
                found.append(f"{where}: yaml.{name}")
            if owner == "torch" and name == "load":
                kw = {k.arg: k.value for k in node.keywords}
                if not (
                    isinstance(kw.get("weights_only"), ast.Constant)
                    and kw["weights_only"].value is True
                ):
                    found.append(f"{where}: torch.load without weights_only=True")
            if owner == "" and name in {"eval", "exec", "compile", "__import__"}:
                found.append(f"{where}: {name}()")
            for k in node.keywords:
                if (
                    k.arg == "trust_remote_code"
                    and isinstance(k.value, ast.Constant)
                    and k.value.value
                ):
                    found.append(f"{where}: trust_remote_code=True hard-coded")
    assert found == []


def test_the_scanner_catches_what_it_looks_for():
    tree = ast.parse("import yaml, torch\nyaml.load(s)\ntorch.load(f)\neval('1')\n")
    names = {(o, n) for _, o, n in _calls(tree)}
    assert {("yaml", "load"), ("torch", "load"), ("", "eval")} <= names


def test_yaml_tags_that_build_objects_are_refused_not_run(tmp_path, monkeypatch):
    import os

    monkeypatch.setattr(os, "system", lambda *_: pytest.fail("a YAML tag ran code"))
    path = tmp_path / "evil.yaml"
    path.write_text("!!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(InputError, match="not valid YAML"):
        RunConfig.from_yaml(path)


@settings(max_examples=300, deadline=None)
@given(
    st.text(alphabet=st.characters(codec="ascii"), max_size=60)
    | st.text(alphabet="0123456789+-*/() .e_xj[]'", max_size=30)
)
def test_game24_checker_reads_only_its_grammar(text):
    real = builtins.eval
    builtins.eval = lambda *a, **k: pytest.fail("eval called")  # noqa: S307
    try:
        try:
            value, used = evaluate_expression(text)
        except (InputError, ValueError, ZeroDivisionError, RecursionError):
            return
        assert all(isinstance(n, int) for n in used)
        assert value == value  # a Fraction, never NaN
    finally:
        builtins.eval = real


@pytest.mark.parametrize(
    "attack",
    ["__import__('os').system('x')", "().__class__.__bases__", "open('/etc/passwd')", "[4,6]*4"],
)
def test_game24_checker_refuses_code(attack):
    assert not solves(attack, [4, 6, 4, 1])
