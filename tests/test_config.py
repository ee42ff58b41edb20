"""Run settings: one source of defaults, a deep --fast overlay, and bad configs refused in one line."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from experiments.cli import app
from experiments.errors import InputError, MissingInput
from experiments.generation import GenerationConfig, GenerationSettings
from experiments.models.specs import ModelSpec, Sampling
from experiments.pipeline.config import DEMO_CONFIG, FAST, RunConfig, deep_merge, read_yaml_mapping

SPEC = ModelSpec(
    name="m", source="memory", sampling=Sampling(temperature=0.7, top_p=0.9, max_new_tokens=99)
)


def test_deep_merge_keeps_keys_the_overlay_does_not_name():
    base = {"a": 1, "s": {"x": 1, "y": {"p": 1, "q": 2}}, "l": [1, 2]}
    assert deep_merge(base, {"s": {"y": {"q": 3}}, "l": [9]}) == {
        "a": 1,
        "s": {"x": 1, "y": {"p": 1, "q": 3}},
        "l": [9],
    }
    assert base["s"]["y"]["q"] == 2  # not modified in place


def test_fast_demo_keeps_the_demo_settings_it_does_not_override():
    demo = read_yaml_mapping(DEMO_CONFIG)
    fast = RunConfig.from_mapping(deep_merge(demo, FAST))
    assert fast.steering.target == demo["steering"]["target"]
    assert fast.record.positions == demo["record"]["positions"]
    assert fast.generation.samples == FAST["generation"]["samples"]


def test_generation_settings_resolve_against_the_spec_and_are_the_only_defaults():
    assert GenerationSettings().resolve(SPEC) == GenerationConfig(
        samples=1, max_new_tokens=99, temperature=0.7, top_p=0.9, seed=0, batch_size=16
    )
    assert (
        GenerationSettings(temperature=0.0, max_new_tokens=5).resolve(SPEC).temperature == 0.0
    )  # 0 is not "unset"
    assert GenerationConfig.from_spec(SPEC, samples=3) == GenerationSettings(samples=3).resolve(
        SPEC
    )
    assert RunConfig(datasets=["binary"], models=["m"]).generation == GenerationSettings()


@pytest.mark.parametrize(
    "bad",
    [
        dict(max_new_tokens=0),
        dict(max_new_tokens=-5),
        dict(temperature=-1),
        dict(top_p=2),
        dict(top_p=0),
        dict(samples=0),
        dict(batch_size=0),
    ],
)
def test_invalid_generation_settings_are_refused(bad):
    with pytest.raises(ValueError):
        GenerationSettings(**bad)
    with pytest.raises(ValueError):
        GenerationConfig.from_spec(SPEC, **bad)


@pytest.mark.parametrize(
    "text, match",
    [
        ("name: [unclosed", "is not valid YAML"),
        ("- a\n- b\n", "holds a list, not a mapping"),
        ("!!python/object/apply:os.system ['echo hacked']", "is not valid YAML"),
        (
            "datasets: [binary]\nmodels: [m]\ngeneration: {max_new_tokens: -3}\n",
            "generation.max_new_tokens",
        ),
        ("datasets: [binary]\nmodels: [m]\nbogus: 1\n", "bogus"),
    ],
)
def test_bad_run_configs_name_the_file_and_the_problem(tmp_path, text, match):
    path = tmp_path / "cfg.yaml"
    path.write_text(text)
    with pytest.raises(InputError, match=match) as err:
        RunConfig.from_yaml(path)
    assert str(path) in str(err.value)


def test_missing_run_config_is_missing_input(tmp_path):
    with pytest.raises(MissingInput, match="does not exist"):
        RunConfig.from_yaml(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "args", [["--max-new-tokens", "0"], ["--temperature", "-1"], ["--top-p", "2"]]
)
def test_cli_refuses_bad_generation_options_in_one_line(tmp_path, args):
    result = CliRunner().invoke(
        app,
        [
            "generate",
            "--model",
            "organism-teacher",
            "--items",
            "binary",
            "--out",
            str(tmp_path / "t.parquet"),
            *args,
        ],
    )
    assert result.exit_code == 2, result.output
    assert "invalid setting" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "t.parquet").exists()


def test_cli_run_with_broken_yaml_is_one_line(tmp_path):
    path = tmp_path / "cfg.yaml"
    path.write_text("a: [")
    result = CliRunner().invoke(app, ["run", str(path)])
    assert result.exit_code == 2 and "is not valid YAML" in result.output


def test_probe_defaults_are_the_estimators_defaults_and_bad_depths_are_refused():
    from probes.contrasts import PREREGISTERED_DEPTHS
    from probes.crossfit import N_SPLITS

    probes = RunConfig.model_validate({"datasets": ["d"], "models": ["m"]}).probes
    assert probes.n_splits == N_SPLITS and tuple(probes.depths) == PREREGISTERED_DEPTHS
    for bad, match in [({"depths": [0.5, 1.5]}, "depths"), ({"n_splits": 0}, "n_splits")]:
        with pytest.raises(ValueError, match=match):
            RunConfig.model_validate({"datasets": ["d"], "models": ["m"], "probes": bad})


@pytest.mark.parametrize(
    "record, match",
    [
        ({"sites": "resid_post.*,mlp_oot.3"}, "mlp_oot.3"),
        ({"positions": ["think_end"]}, "think_end"),
    ],
)
def test_malformed_record_sites_or_positions_are_refused_when_the_config_is_read(record, match):
    with pytest.raises(ValueError, match=match):
        RunConfig.model_validate({"datasets": ["d"], "models": ["m"], "record": record})
