"""`handan record` end to end through the real `handan` app (CliRunner) on the shipped organism teacher."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from experiments.cli import app
from experiments.models.organism.task import organism_items
from hooks import ActivationStore, Recorder

runner = CliRunner()


@pytest.fixture
def items_file(tmp_path):
    items = organism_items().groupby("task").head(2)[["item_id", "task", "prompt", "answer"]]
    path = tmp_path / "items.parquet"
    items.to_parquet(path)
    return path


def record(items_file, out, *extra):
    return runner.invoke(
        app,
        [
            "record",
            "--model",
            "organism-teacher",
            "--items",
            str(items_file),
            "--out",
            str(out),
            "--max-new-tokens",
            "40",
            "--batch-size",
            "3",
            "--temperature",
            "0",
            *extra,
        ],
        env={"COLUMNS": "200"},
    )


def test_record_writes_traces_and_a_store_that_matches_a_clean_forward(items_file, tmp_path):
    from experiments.models.loading import load_model
    from experiments.models.specs import get_spec
    from hooks.engines.hf_loop import encode_prompts

    out = tmp_path / "store"
    result = record(
        items_file,
        out,
        "--sites",
        "resid_post.*",
        "--positions",
        "prompt_end,think_close,step_8",
        "--store-dtype",
        "fp16",
    )
    assert result.exit_code == 0, result.output
    traces = pd.read_parquet(out / "traces.parquet")
    store = ActivationStore(out)
    assert (
        len(traces) == len(pd.read_parquet(items_file))  # 2 items of each organism task
        and store.dtype == "float16"
        and store.sites == [f"resid_post.{k}" for k in range(4)]
    )
    assert store.completed() == {(i, 0) for i in traces.item_id}
    spec = get_spec("organism-teacher")
    model, tok = load_model(spec, device="cpu")
    prompts = dict(
        zip(
            traces.item_id,
            encode_prompts(
                tok,
                pd.read_parquet(items_file).prompt.tolist(),
                **{"template_kwargs": spec.template_kwargs},
            ),
        )
    )
    X, index = store.load("resid_post.3", "step_8")
    generated = [len(tok.encode(t, add_special_tokens=False)) for t in traces.text]  # EOS excluded
    assert (
        len(X) == sum(n // 8 for n in generated) > 0
    )  # every 8th generated token, the last one too
    for x, row in zip(X, index.itertuples()):
        text = traces.set_index("item_id").loc[row.item_id, "text"]
        ids = (prompts[row.item_id] + tok.encode(text, add_special_tokens=False))[
            : row.token_index + 1
        ]
        with Recorder(model, ["resid_post.3"]) as rec, torch.no_grad():
            model(input_ids=torch.tensor([ids]))
        np.testing.assert_allclose(
            x, rec.activations["resid_post.3"][0, -1].numpy(), rtol=2e-3, atol=2e-3
        )
    # a rerun resumes (nothing to do), a rerun with another budget is refused and names it
    again = record(
        items_file,
        out,
        "--sites",
        "resid_post.*",
        "--positions",
        "prompt_end,think_close,step_8",
        "--store-dtype",
        "float16",
    )
    assert again.exit_code == 0, again.output
    other = record(
        items_file,
        out,
        "--sites",
        "resid_post.*",
        "--positions",
        "prompt_end",
        "--max-new-tokens",
        "8",
    )
    assert other.exit_code == 2 and "max_new_tokens" in other.output
    assert ActivationStore(out).index.equals(store.index)


def test_record_refuses_an_unknown_site_before_writing(items_file, tmp_path):
    result = record(items_file, tmp_path / "s", "--sites", "resid_post.99")
    assert result.exit_code == 2
    assert (
        "resid_post.99" in result.output and "resid_post.3" in result.output
    )  # lists the valid ones
    assert not any((tmp_path / "s").iterdir())


@pytest.mark.parametrize("forced", [False, True])
@pytest.mark.parametrize(
    "option, match",
    [(["--sites", "resid_pots.*"], "is not a site name"), (["--positions", "step_0"], "step_K")],
)
def test_record_refuses_a_malformed_site_or_position_before_loading_a_model(
    items_file, tmp_path, monkeypatch, forced, option, match
):
    def no_model(*args, **kwargs):
        raise AssertionError("a model was loaded before the options were checked")

    monkeypatch.setattr("experiments.generation.engines.open_engine", no_model)
    monkeypatch.setattr("experiments.models.loading.load_model", no_model)
    traces = tmp_path / "traces.parquet"
    if forced:
        traces.write_bytes(b"")  # never read: the options are refused first
    extra = ["--from-traces", str(traces)] if forced else []
    result = record(items_file, tmp_path / "s", *option, *extra)
    assert result.exit_code == 2, result.output
    assert match in result.output
    assert not (tmp_path / "s").exists() or not any((tmp_path / "s").iterdir())
