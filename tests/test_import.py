"""Imported traces: DeepSeek-API and generic records become the same Traces rows as generated
ones (tokens re-counted with the model's tokenizer); unknown items are refused by id."""

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from experiments.cli import app
from experiments.generation import GenerationConfig, tracefile
from experiments.generation.imports import import_traces
from experiments.generation.traces import generate_traces
from hooks.accounting import account, think_tokens

COMPARED = ["item_id", "sample", "reasoning_tokens", "finished_thinking", "response", "correct"]


@pytest.fixture(scope="module")
def organism(tmp_path_factory):
    """The shipped teacher's greedy traces on a few binary items (as if made elsewhere)."""
    from experiments.models.loading import load_model
    from experiments.models.organism.task import organism_items
    from experiments.models.specs import get_spec

    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    items = organism_items()
    items = (
        items[items.task.str.startswith("binary")].groupby("task").head(6).reset_index(drop=True)
    )
    out = tmp_path_factory.mktemp("gen") / "teacher.parquet"
    cfg = GenerationConfig(samples=1, max_new_tokens=120, temperature=0.0, batch_size=12)
    generate_traces(model, tok, spec, items, config=cfg, out=out, progress=False)
    return spec, tok, items, tracefile.read_traces(out)


def deepseek_records(spec, tok, traces, *, nest=True):
    """API-shaped records: the reasoning span and the answer as text, like `reasoning_content`."""
    think = think_tokens(tok, spec.think_open, spec.think_close)
    out = []
    for row in traces.itertuples():
        gen = list(row.generated_ids)
        acc = account(
            row.prompt_ids, gen, think, [gen[-1]] if row.finish_reason == "stop" else [], tok.decode
        )
        message = {
            "role": "assistant",
            "reasoning_content": tok.decode(gen[acc.span[0] : acc.span[1]]),
            "content": row.response,
        }
        choice = {"index": 0, "message": message, "finish_reason": row.finish_reason}
        out.append(
            {"custom_id": row.item_id, "choices": [choice]}
            if nest
            else {"item_id": row.item_id, **message}
        )
    return out


def test_deepseek_records_import_to_the_generated_traces(organism, tmp_path):
    spec, tok, items, generated = organism
    path = tmp_path / "api.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in deepseek_records(spec, tok, generated)))
    imported = import_traces(path, tok, spec, items, out=tmp_path / "t.parquet")
    pd.testing.assert_frame_equal(
        imported[COMPARED], generated[COMPARED].astype(imported[COMPARED].dtypes)
    )
    assert generated.finished_thinking.any()
    file = tracefile.read_traces(tmp_path / "t.parquet")
    assert [list(x) for x in file.generated_ids] == [list(x) for x in generated.generated_ids]
    meta = tracefile.read_traces_meta(tmp_path / "t.parquet")
    assert meta["engine"] == "imported" and meta["recorded"]["token_counts"].startswith(
        "re-encoded"
    )
    assert meta["imported"]["file"] == "api.jsonl"


def test_generic_mapping_parquet_and_text_field(organism, tmp_path):
    spec, tok, items, generated = organism
    flat = deepseek_records(spec, tok, generated, nest=False)
    renamed = pd.DataFrame(
        {
            "question": [r["item_id"] for r in flat],
            "thinking": [r["reasoning_content"] for r in flat],
            "answer": [r["content"] for r in flat],
        }
    )
    renamed.to_parquet(tmp_path / "lab.parquet")
    got = import_traces(
        tmp_path / "lab.parquet",
        tok,
        spec,
        items,
        out=tmp_path / "a.parquet",
        fmt="generic",
        fields={"item_id": "question", "reasoning": "thinking", "response": "answer"},
    )
    finished = generated.finished_thinking.to_numpy()
    pd.testing.assert_frame_equal(
        got.loc[finished, COMPARED].reset_index(drop=True),
        generated.loc[finished, COMPARED].reset_index(drop=True).astype(got[COMPARED].dtypes),
    )
    # a public-dataset style record: the whole generation, think delimiters in the text
    text = [
        {
            "prompt_id": r["item_id"],
            "text": r["reasoning_content"] + spec.think_close + r["content"],
        }
        for r in flat
    ]
    (tmp_path / "r1.jsonl").write_text("\n".join(map(json.dumps, text)))
    again = import_traces(
        tmp_path / "r1.jsonl", tok, spec, items, out=tmp_path / "b.parquet", fmt="generic"
    )
    pd.testing.assert_frame_equal(again.loc[finished, COMPARED], got.loc[finished, COMPARED])


def test_unknown_items_and_bad_records_are_refused(organism, tmp_path):
    spec, tok, items, generated = organism
    records = deepseek_records(spec, tok, generated, nest=False)
    records += [{"item_id": "nope-1", "content": "x"}, {"item_id": "nope-2", "content": "y"}]
    path = tmp_path / "api.jsonl"
    path.write_text("\n".join(map(json.dumps, records)))
    with pytest.raises(
        ValueError, match=r"2 item\(s\) not in the Items table: \['nope-1', 'nope-2'\]"
    ):
        import_traces(path, tok, spec, items, out=tmp_path / "t.parquet")
    assert not (tmp_path / "t.parquet").exists()
    path.write_text('{"item_id": "a"}\nnot json\n')
    with pytest.raises(ValueError, match="line 2 is not JSON"):
        import_traces(path, tok, spec, items, out=tmp_path / "t.parquet")
    path.write_text(json.dumps({"reasoning_content": "r", "content": "c"}))
    with pytest.raises(ValueError, match="none of"):
        import_traces(path, tok, spec, items, out=tmp_path / "t.parquet")


def test_cli_traces_import(organism, tmp_path):
    spec, tok, items, generated = organism
    items.to_parquet(tmp_path / "items.parquet")
    path = tmp_path / "api.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in deepseek_records(spec, tok, generated)))
    args = [
        "traces",
        "import",
        str(path),
        "--model",
        spec.name,
        "--items",
        str(tmp_path / "items.parquet"),
        "--out",
        str(tmp_path / "t.parquet"),
    ]
    result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    assert "imported traces" in result.output
    assert len(pd.read_parquet(tmp_path / "t.parquet")) == len(generated)
    bad = CliRunner().invoke(app, [*args[:-1], str(tmp_path / "u.parquet"), "--field", "oops"])
    assert bad.exit_code == 2 and "KEY=NAME" in bad.output


@pytest.mark.slow
def test_a_run_takes_imported_traces_as_the_teacher_and_reports(organism, tmp_path, data_dir):
    """The DeepSeek-R1 set-up on the organism: the teacher's traces come from an API-style file,
    the student and baseline are generated; behaviour covers all three, probes the two with
    stores."""
    from experiments.pipeline import RunConfig, RunLayout, run_pipeline
    from experiments.pipeline.stages import build_items

    spec, tok, _, _ = organism
    raw = dict(
        name="imported teacher",
        out=str(tmp_path / "run"),
        data_dir=str(data_dir),
        datasets=["binary"],
        max_items_per_task=10,
        models=["organism-teacher", "organism-student", "organism-baseline"],
        generation={"samples": 1, "max_new_tokens": 120, "batch_size": 20},
        probes={"targets": ["human_rt"], "cv": 3, "n_permutations": 5, "n_boot": 50},
        behaviour={"n_boot": 50},
        steering={"enabled": False},
    )
    build_items(RunConfig.model_validate(raw), tmp_path / "items.parquet")
    items = pd.read_parquet(tmp_path / "items.parquet")
    from experiments.models.loading import load_model

    model, _ = load_model(spec, device="cpu")
    cfg = GenerationConfig(samples=2, max_new_tokens=120, temperature=0.6, top_p=0.95)
    made = generate_traces(
        model, tok, spec, items, config=cfg, out=tmp_path / "api.parquet", progress=False
    )
    api = tmp_path / "api.jsonl"
    api.write_text(
        "\n".join(
            json.dumps(r)
            for r in deepseek_records(spec, tok, tracefile.read_traces(tmp_path / "api.parquet"))
        )
    )
    result = CliRunner().invoke(
        app,
        [
            "traces",
            "import",
            str(api),
            "--model",
            spec.name,
            "--items",
            str(tmp_path / "items.parquet"),
            "--out",
            str(tmp_path / "r1.parquet"),
        ],
    )
    assert result.exit_code == 0, result.output
    summary = run_pipeline(
        RunConfig.model_validate(raw | {"imported": {spec.name: str(tmp_path / "r1.parquet")}}),
        progress=False,
    )
    run = RunLayout(tmp_path / "run")
    traces = pd.read_parquet(run.traces)
    teacher = (
        traces[traces.model == spec.name].sort_values(["item_id", "sample"]).reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(
        teacher[COMPARED], made.sort_values(["item_id", "sample"]).reset_index(drop=True)[COMPARED]
    )
    assert tracefile.read_traces_meta(run.model_traces(spec.name))["engine"] == "imported"
    assert not run.store(spec.name).exists()  # nothing to record for an imported model
    alignment = pd.read_csv(run.behaviour_file("alignment"))
    assert spec.name in set(alignment.model)
    sweep = pd.read_csv(run.probe_sweep)
    assert set(sweep.model) == {"organism-student", "organism-baseline"}
    assert run.report.exists() and spec.name in run.report.read_text()
    assert summary
