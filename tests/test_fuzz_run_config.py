"""Fuzzed bad run configs to `handan run CONFIG`: wrong YAML shapes and syntax, unknown keys,
values of the wrong type, numbers out of range or not finite, names that are not datasets,
models, tasks, positions, targets, sites or steering choices. Each is refused in one line naming
the key before anything runs (generation is replaced by a tripwire here), and a run folder that
exists is left byte-identical (tests/fuzzing.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
import yaml
from fuzzing import fuzz, refused
from hypothesis import example, given
from hypothesis import strategies as st

from experiments.pipeline.config import DEMO_CONFIG, FAST, RunConfig, deep_merge
from experiments.pipeline.preflight import check_run

BASE = {
    "datasets": ["binary"],
    "models": ["organism-teacher", "organism-student", "organism-baseline"],
    "max_items_per_task": 4,
}
UNICODE = st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), max_size=10)
#: (key path, a value the config model or the preflight must refuse)
OUT_OF_RANGE = st.sampled_from(
    [
        (("max_items_per_task",), 0),
        (("max_items_per_task",), -3),
        (("generation", "samples"), 0),
        (("generation", "max_new_tokens"), -5),
        (("generation", "temperature"), -1.0),
        (("generation", "temperature"), float("inf")),
        (("generation", "top_p"), 2.0),
        (("generation", "top_p"), float("nan")),
        (("generation", "batch_size"), 0),
        (("behaviour", "n_boot"), -5),
        (("probes", "cv"), 1),
        (("probes", "n_permutations"), -1),
        (("probes", "n_boot"), -1),
        (("steering", "alphas"), [float("nan")]),
        (("steering", "alphas"), [0.0, float("-inf")]),
        (("steering", "alphas"), []),
        (("steering", "holdout"), 1.5),
        (("steering", "n_random"), -1),
        (("steering", "samples"), 0),
        (("steering", "linear_tolerance"), 0.0),
    ]
)
#: keys whose value names something that must exist
NAMED = [
    ("datasets",),
    ("models",),
    ("tasks",),
    ("record", "positions"),
    ("record", "sites"),
    ("record", "dtype"),
    ("probes", "targets"),
    ("probes", "positions"),
    ("probes", "dtype"),
    ("steering", "target"),
    ("steering", "control_target"),
    ("steering", "position"),
    ("steering", "inject"),
    ("steering", "method"),
    ("steering", "site"),
    ("steering", "models"),
    ("pairs",),
    ("device",),
]
LISTS = {("datasets",), ("models",), ("tasks",), ("record", "positions"), ("probes", "targets")}
LISTS |= {("probes", "positions"), ("steering", "models")}
SECTIONS = ["generation", "record", "behaviour", "probes", "steering"]


@pytest.fixture(scope="module", autouse=True)
def tripwire():
    """A config that reaches generation was not refused up front: fail loudly instead of running."""
    import experiments.pipeline.stages as stages

    def reached(*args, **kwargs):
        raise AssertionError("a bad config reached generation")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stages, "generate_all", reached)
        yield


def _set(raw: dict, path: tuple, value) -> dict:
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    if len(path) == 1:
        raw[path[0]] = value
    else:
        raw.setdefault(path[0], {})[path[1]] = value
    return raw


@st.composite
def broken_configs(draw):
    """(YAML text of a run config, texts the error must name)."""
    kind = draw(st.sampled_from(["shape", "unknown", "type", "range", "name"]))
    if kind == "shape":
        text = draw(
            st.sampled_from(
                [
                    "- binary\n- organism-teacher",
                    "42",
                    "just text",
                    "datasets: [binary\nmodels: [organism-teacher]",
                    "!!python/object/apply:os.system ['echo hacked']",
                    "datasets: !!python/name:os.system\nmodels: [organism-teacher]",
                    "? [a, b]\n: c",
                    "datasets: [binary]\n\tmodels: [x]",
                    "1: binary",
                    "datasets: [binary]",  # models missing
                ]
            )
        )
        return text, ["run.yaml"]
    if kind == "unknown":
        section = draw(st.sampled_from([None, *SECTIONS]))
        key = draw(st.from_regex(r"[a-z_]{1,10}", fullmatch=True) | UNICODE.filter(str.strip))
        known = (
            RunConfig.model_fields
            if section is None
            else RunConfig.model_fields[section].annotation.model_fields
        )
        if key in known:
            key += "_x"
        raw = _set(BASE, (key,) if section is None else (section, key), 1)
        return yaml.safe_dump(raw, allow_unicode=True), [section or "Extra inputs"]
    if kind == "type":
        path = draw(
            st.sampled_from([(s,) for s in SECTIONS] + NAMED[:3] + [("generation", "samples")])
        )
        value = draw(
            st.sampled_from([[1, 2], "text", 3.5, {"a": 1}, None, True])
            if path[0] in SECTIONS and len(path) == 1
            else st.sampled_from([{"a": 1}, 3.5, [[1]], True])
        )
        if path == ("generation", "samples") and value is True:
            value = "many"
        return yaml.safe_dump(_set(BASE, path, value)), [path[0]]
    if kind == "range":
        path, value = draw(OUT_OF_RANGE)
        return yaml.safe_dump(_set(BASE, path, value)), [".".join(path)]
    path = draw(st.sampled_from(NAMED))
    name = draw(
        st.sampled_from(["nope", "../..", "resid_post.x", "step_0", "cuda:-1", "feat_none", ""])
        | UNICODE.filter(lambda s: s.strip() and s not in ("cpu", "cuda"))
    )
    if path == ("steering", "models") or path == ("pairs",):
        name = name or "nope"
    value = [name] if path in LISTS else name
    return yaml.safe_dump(_set(BASE, path, value), allow_unicode=True), [".".join(path)]


@fuzz(80)
@given(case=broken_configs())
@example(case=(yaml.safe_dump({**BASE, "max_items_per_task": 0}), ["max_items_per_task"]))
@example(case=(yaml.safe_dump({**BASE, "steering": {"alphas": [float("nan")]}}), ["alphas"]))
@example(case=(yaml.safe_dump({**BASE, "probes": {"targets": ["nope"]}}), ["probes.targets"]))
@example(case=(yaml.safe_dump({**BASE, "behaviour": {"n_boot": -5}}), ["behaviour.n_boot"]))
@example(case=(yaml.safe_dump({**BASE, "device": "nonsense"}), ["device"]))
@example(case=(yaml.safe_dump({**BASE, "record": {"sites": "nope.*"}}), ["record.sites"]))
@example(case=(yaml.safe_dump({**BASE, "datasets": []}), ["datasets"]))
def test_bad_run_configs_are_refused_before_anything_runs(case):
    text, named = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        run = folder / "run"  # a run folder from before, with its files
        run.mkdir()
        (run / "config.yaml").write_text("name: the previous run\n")
        (run / "stages.json").write_text("{}")
        config = folder / "run.yaml"
        config.write_text(text, encoding="utf-8")
        refused(["run", config, "--out", run], folder, *named)


def test_a_run_folder_that_is_a_file_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(BASE))
    refused(["run", config, "--out", config], tmp_path, str(config))


def test_the_shipped_demo_configs_pass_the_preflight():
    demo = yaml.safe_load(DEMO_CONFIG.read_text())
    for raw in (demo, deep_merge(demo, FAST), BASE):
        check_run(RunConfig.from_mapping(raw))
