"""`handan data import` / import_trials on a generated trial file with planted correct and
incorrect trials, outliers, empty RTs and responses, against an independent pandas computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st
import yaml
from pydantic import ValidationError
from typer.testing import CliRunner

from experiments.cli import app
from experiments.data import import_trials, load_items_file
from experiments.data.trials import import_trials_file

runner = CliRunner()
N_ITEMS, N_PEOPLE = 24, 9
MAPPING = {
    "item": ["a", "b"],
    "participant": "subject",
    "rt": "rt",
    "rt_unit": "ms",
    "response": "typed",
    "answer": "solution",
    "task_col": "block",
    "prompt_template": "What is {a} + {b}? Give the final answer after 'Answer:'.",
    "feature": ["size"],
}


def _trials(seed: int = 0) -> tuple[pd.DataFrame, dict[str, int]]:
    """Trials of N_ITEMS additions by N_PEOPLE participants (rows shuffled), RTs in ms, text
    columns as a CSV would hold them; and what was planted."""
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(N_ITEMS):
        a, b = k + 1, 2 * k + 3
        for person in range(N_PEOPLE):
            rows.append(
                {
                    "subject": str(person + 1),
                    "a": str(a),
                    "b": str(b),
                    "block": "small" if a < 10 else "large",
                    "size": str(len(str(a + b))),
                    "solution": str(a + b),
                    "typed": f" {a + b} " if rng.random() < 0.1 else str(a + b),
                    "rt": float(np.exp(rng.normal(7.5 + 0.04 * k, 0.3))),
                }
            )
    trials = pd.DataFrame(rows)
    wrong = rng.random(len(trials)) < 0.2
    trials.loc[wrong, "typed"] = (trials.loc[wrong, "solution"].astype(int) + 1).astype(str)
    last = trials["a"] == str(N_ITEMS)  # an item nobody solves
    trials.loc[last, "typed"] = "0"
    right = ~wrong & ~last
    # one outlier in each of 5 items (two in one item would widen each other's interval)
    items = rng.choice(N_ITEMS - 1, 5, replace=False)
    outliers = [rng.choice(np.flatnonzero(right & (trials["a"] == str(k + 1)))) for k in items]
    trials.loc[outliers, "rt"] *= 60  # 60x slower: far outside the trimming interval
    trials["note"] = np.where(trials.index.isin(outliers), "outlier", "")  # a column not mapped
    empty_rt = rng.choice(np.setdiff1d(np.flatnonzero(right), outliers), 4, replace=False)
    trials["rt"] = trials["rt"].map(lambda x: f"{x:.1f}")
    trials.loc[empty_rt, "rt"] = np.nan
    no_response = rng.choice(np.flatnonzero(wrong), 3, replace=False)
    trials.loc[no_response, "typed"] = np.nan
    planted = {"outliers": 5, "empty_rt": 4, "no_response": 3, "unsolved": 1}
    return trials.sample(frac=1.0, random_state=seed).reset_index(drop=True), planted


def _expected(trials: pd.DataFrame, seconds_per_unit: float = 1e-3) -> pd.DataFrame:
    """The documented rule, computed independently: vectorised leave-one-out moments per item
    (sums minus the trial) instead of the aggregator's loop over trials."""
    t = trials.assign(item_id=trials["a"] + "|" + trials["b"])
    t = t[t["typed"].notna()].copy()
    t["correct"] = t["typed"].str.strip() == t["solution"]
    acc = t.groupby("item_id")["correct"].agg(human_accuracy="mean", n_human="size")
    c = t[t["correct"] & t["rt"].notna()].copy()
    c["x"] = np.log(c["rt"].astype(float) * seconds_per_unit)
    g = c.groupby("item_id")["x"]
    n, s, ss = g.transform("size"), g.transform("sum"), g.transform(lambda v: (v**2).sum())
    mean_o = (s - c["x"]) / (n - 1)
    var_o = (ss - c["x"] ** 2 - (n - 1) * mean_o**2) / (n - 2)
    cutoff = st.t.ppf(1 - st.norm.sf(3), n - 2) * np.sqrt(1 + 1 / (n - 1))
    c["kept"] = (n < 3) | ((c["x"] - mean_o).abs() <= cutoff * np.sqrt(var_o))
    kept = c[c["kept"]].groupby("item_id")["x"]
    out = acc.join(pd.DataFrame({"human_rt_s": np.exp(kept.mean()), "human_rt_sd": kept.std()}))
    out.attrs["trimmed"] = set(c.index[~c["kept"]])
    out.attrs["incorrect"] = int((~t["correct"]).sum())
    return out


@pytest.fixture(scope="module")
def planted():
    return _trials()


def test_items_match_an_independent_pandas_computation(planted):
    trials, counts = planted
    result = import_trials(trials, MAPPING)
    items = result.items.set_index("item_id")
    expected = _expected(trials)
    assert len(items) == N_ITEMS and set(items.index) == set(expected.index)
    for col in ["human_rt_s", "human_rt_sd", "human_accuracy"]:
        np.testing.assert_allclose(items[col], expected.loc[items.index, col], rtol=1e-10)
    assert (items["n_human"] == expected.loc[items.index, "n_human"]).all()
    # planted signals come back: every 60x outlier trimmed, nothing else; the unsolved item kept
    assert expected.attrs["trimmed"] == set(trials.index[trials["note"] == "outlier"])
    unsolved = f"{N_ITEMS}|{2 * N_ITEMS + 1}"
    assert pd.isna(items.loc[unsolved, "human_rt_s"]) and items.loc[unsolved, "human_accuracy"] == 0
    ex = result.exclusions.set_index("reason")
    assert ex.loc["trimmed", "trials"] == counts["outliers"]
    assert ex.loc["no valid RT", "trials"] == counts["empty_rt"]
    assert ex.loc["no response", "trials"] == counts["no_response"]
    assert ex.loc["incorrect", "trials"] == expected.attrs["incorrect"]
    assert ex.loc["no correct trial with an RT", "items"] == counts["unsolved"]
    assert ex.loc["no correct trial with an RT", "examples"] == unsolved
    assert items["n_human"].sum() == len(trials) - counts["no_response"]


def test_task_prompt_answer_and_features_per_item(planted):
    trials, _ = planted
    items = import_trials(trials, MAPPING).items.set_index("item_id")
    assert items.loc["3|7", "prompt"] == "What is 3 + 7? Give the final answer after 'Answer:'."
    assert items.loc["3|7", "answer"] == "10" and items.loc["3|7", "task"] == "small"
    assert items.loc["12|25", "task"] == "large"
    assert items["feat_size"].tolist() == [len(a) for a in items["answer"]]
    assert pd.api.types.is_numeric_dtype(items["feat_size"])


def test_seconds_give_the_same_items_and_files_round_trip(planted, tmp_path):
    trials, _ = planted
    ms = import_trials(trials, MAPPING).items.set_index("item_id").sort_index()
    in_s = trials.assign(rt=pd.to_numeric(trials["rt"]) / 1000)
    seconds = import_trials(in_s, MAPPING | {"rt_unit": "s"}).items.set_index("item_id")
    pd.testing.assert_frame_equal(seconds.sort_index(), ms, rtol=1e-9)
    csv, tsv, parquet = tmp_path / "t.csv", tmp_path / "t.tsv", tmp_path / "t.parquet"
    trials.to_csv(csv, index=False)
    trials.to_csv(tsv, index=False, sep="\t")
    trials.assign(rt=pd.to_numeric(trials["rt"])).to_parquet(parquet)
    for path in (csv, tsv, parquet):
        got = import_trials_file(path, MAPPING).items.set_index("item_id").sort_index()
        pd.testing.assert_frame_equal(got, ms, rtol=1e-9)


def test_correct_column_equals_response_and_answer(planted):
    trials, _ = planted
    by_response = import_trials(trials, MAPPING).items
    flags = (trials["typed"].str.strip() == trials["solution"]).map({True: "yes", False: "No"})
    flagged = trials.assign(acc=flags.where(trials["typed"].notna()))
    mapping = {k: v for k, v in MAPPING.items() if k != "response"} | {"correct": "acc"}
    pd.testing.assert_frame_equal(import_trials(flagged, mapping).items, by_response)


def _small(**columns) -> pd.DataFrame:
    base = {
        "subject": ["1", "2", "1", "2"],
        "q": ["x", "x", "y", "y"],
        "rt": ["1200", "1500", "900", "2000"],
        "ok": ["1", "0", "true", "False"],
        "text": ["Say x. Answer:", "Say x. Answer:", "Say y. Answer:", "Say y. Answer:"],
        "key": ["x", "x", "y", "y"],
    }
    return pd.DataFrame(base | columns)


SMALL = {
    "item": "q",
    "participant": "subject",
    "rt": "rt",
    "rt_unit": "ms",
    "correct": "ok",
    "task": "t",
    "prompt": "text",
    "answer": "key",
}


def test_missing_column_lists_the_columns_of_the_file():
    with pytest.raises(ValueError, match=r"column 'latency' \(--rt\) is not in the file") as err:
        import_trials(_small(), SMALL | {"rt": "latency"})
    assert "subject, q, rt, ok, text, key" in str(err.value)
    with pytest.raises(ValueError, match=r"column 'nope' \(--prompt-template\)"):
        import_trials(
            _small(),
            {k: v for k, v in SMALL.items() if k != "prompt"} | {"prompt_template": "Say {nope}"},
        )


@pytest.mark.parametrize("bad", ["fast", "0", "-3", "inf"])
def test_bad_rt_names_row_and_column(bad, tmp_path):
    path = tmp_path / "t.csv"
    _small(rt=["1200", "1500", bad, "2000"]).to_csv(path, index=False)
    with pytest.raises(
        ValueError, match=rf"t\.csv, line 4, column 'rt': '{bad}' is not a positive"
    ):
        import_trials_file(path, SMALL)
    with pytest.raises(ValueError, match=r"trials, row 3, column 'rt'"):
        import_trials(_small(rt=["1200", "1500", bad, "2000"]), SMALL)


def test_correctness_that_is_not_boolean_like_names_row_and_column():
    with pytest.raises(ValueError, match=r"row 2, column 'ok': 'maybe' is not boolean-like"):
        import_trials(_small(ok=["1", "maybe", "1", "0"]), SMALL)


def test_implausible_units_warn_with_the_median():
    with pytest.warns(UserWarning, match=r"median RT is 1350 s with --rt-unit s"):
        import_trials(_small(), SMALL | {"rt_unit": "s"})
    with pytest.warns(UserWarning, match=r"median RT is 0.00135 s with --rt-unit ms"):
        import_trials(_small(rt=["1.2", "1.5", "0.9", "2.0"]), SMALL)


def test_differing_wording_is_refused_unless_prompt_from_first():
    text = ["Say x. Answer:", "Please say x. Answer:", "Say y. Answer:", "Say y. Answer:"]
    # participants "10" and "9" saw item x: numerically 9 comes first
    trials = _small(text=text, subject=["10", "9", "10", "9"])
    with pytest.raises(ValueError, match=r"prompt or answer differs within item\(s\) \['x'\]"):
        import_trials(trials, SMALL)
    result = import_trials(trials, SMALL | {"prompt_from": "first"})
    assert result.items.set_index("item_id").loc["x", "prompt"] == "Please say x. Answer:"
    ex = result.exclusions.set_index("reason").loc["wording differs within the item"]
    assert (ex["items"], ex["examples"]) == (1, "x")


def test_task_or_feature_varying_within_an_item_is_refused():
    mapping = {k: v for k, v in SMALL.items() if k != "task"} | {"task_col": "block"}
    with pytest.raises(ValueError, match=r"task differs within item\(s\) \['x'\]"):
        import_trials(_small(block=["a", "b", "a", "a"]), mapping)
    with pytest.raises(ValueError, match=r"feature 'n' differs within item\(s\) \['y'\]"):
        import_trials(_small(n=["1", "1", "2", "3"]), SMALL | {"feature": "n"})


def test_mapping_needs_one_source_of_each_field():
    with pytest.raises(ValidationError, match="correctness: give exactly one of"):
        import_trials(_small(), SMALL | {"response": "key"})
    with pytest.raises(ValidationError, match="prompt: give exactly one of"):
        import_trials(_small(), {k: v for k, v in SMALL.items() if k != "prompt"})
    with pytest.raises(ValidationError, match="rt_unit"):
        import_trials(_small(), SMALL | {"rt_unit": "minutes"})


def test_cli_with_options_and_with_a_mapping_file(planted, tmp_path):
    trials, _ = planted
    trials.to_csv(tmp_path / "trials.csv", index=False)
    options = []
    for key, value in MAPPING.items():
        for v in value if isinstance(value, list) else [value]:
            options += [f"--{key.replace('_', '-')}", v]
    out = tmp_path / "items.csv"
    result = runner.invoke(
        app, ["data", "import", str(tmp_path / "trials.csv"), "--out", str(out), *options]
    )
    assert result.exit_code == 0, result.output
    assert f"wrote {N_ITEMS} items (2 task(s))" in result.output
    expected = import_trials(trials, MAPPING)
    pd.testing.assert_frame_equal(
        load_items_file(out).reset_index(drop=True), expected.items, check_dtype=False
    )
    pd.testing.assert_frame_equal(
        pd.read_csv(tmp_path / "items.exclusions.csv", keep_default_na=False),
        expected.exclusions.astype({"examples": str}),
    )
    (tmp_path / "mapping.yaml").write_text(yaml.safe_dump(MAPPING | {"rt": "wrong"}))
    parquet = tmp_path / "items.parquet"
    result = runner.invoke(
        app,
        [
            "data",
            "import",
            str(tmp_path / "trials.csv"),
            "--out",
            str(parquet),
            "--mapping",
            str(tmp_path / "mapping.yaml"),
            "--rt",
            "rt",
        ],
    )  # an option overrides the file's key
    assert result.exit_code == 0, result.output
    pd.testing.assert_frame_equal(pd.read_parquet(parquet), expected.items)


def test_cli_bad_input_is_one_line_and_exit_2(tmp_path):
    _small(ok=["1", "maybe", "1", "0"]).to_csv(tmp_path / "t.csv", index=False)
    args = ["data", "import", str(tmp_path / "t.csv"), "--out", str(tmp_path / "i.csv")]
    for key, value in SMALL.items():
        args += [f"--{key.replace('_', '-')}", value]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "line 3, column 'ok': 'maybe' is not boolean-like" in result.output
    assert "Traceback" not in result.output
