"""Items tables against independent computations from the raw mirror files (csv module, numpy)."""

from __future__ import annotations

import csv
import math
import statistics
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats as st

from experiments.contracts import validate_items
from experiments.data import DATASETS, load_items, syllogisms
from experiments.data.aggregate import item_costs
from experiments.data.binary_files import RESULT_DIR

BINARY = "sungjae-cho/arithmetic-experiment-cli"
CCOBRA = "CognitiveComputationLab/ccobra/benchmarks/relational/data"


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _trimmed_mean(rts: list[float]) -> tuple[float, float]:
    """Geometric mean and SD of the log RTs after dropping RTs whose log lies outside the 99.73%
    prediction interval of the other RTs' logs (the documented leave-one-out rule), by hand with
    exact ``statistics`` sums."""
    logs = [math.log(r) for r in rts]
    if len(rts) >= 3:
        n, kept = len(rts), []
        cutoff = st.t.ppf(1 - st.norm.sf(3), n - 2) * math.sqrt(
            1 + 1 / (n - 1)
        )  # 99.73% prediction interval
        for i, x in enumerate(logs):
            others = logs[:i] + logs[i + 1 :]
            if abs(x - statistics.mean(others)) <= cutoff * statistics.stdev(others):
                kept.append(x)
        logs = kept
    return statistics.geometric_mean([math.exp(x) for x in logs]), statistics.stdev(logs)


def _costs(rts: list[float]) -> pd.Series:
    trials = pd.DataFrame({"item_id": "x", "rt_s": rts, "correct": True})
    return item_costs(trials, source="test").iloc[0]


def test_trimming_drops_one_far_rt_among_ten():
    # the full-sample rule could not: 1000 s is only (n - 1) / sqrt(n) = 2.85 SD from that mean
    row = _costs([1.0] * 9 + [1000.0])
    assert row["human_rt_s"] == 1.0 and row["human_rt_sd"] == 0.0


def test_trimming_small_item_by_hand():
    # n = 4: cutoff t(0.99865, df 2) * sqrt(1 + 1/3) = 19.21 * 1.155 = 22.2 SDs of the other three.
    # 1, 2, 3, 4 s: 1 s is 1.0594 / 0.3482 = 3.0 SDs from the others -> kept (a fixed 3 SD dropped it)
    row = _costs([1.0, 2.0, 3.0, 4.0])
    assert (row["human_rt_s"], row["human_rt_sd"]) == pytest.approx(
        (24 ** (1 / 4), np.std(np.log([1, 2, 3, 4]), ddof=1))
    )
    # 1, 1.1, 1.2, 60 s: 60 s is (ln 60 - 0.0953) / 0.0953 = 42 SDs from the others -> dropped
    assert _costs([1.0, 1.1, 1.2, 60.0])["human_rt_s"] == pytest.approx(1.32 ** (1 / 3))
    assert _costs([1.0, 1000.0])["human_rt_s"] == pytest.approx(1000**0.5)  # < 3 RTs: no trimming


def test_human_rt_is_on_the_log_scale_of_the_trimming():
    # the example: no trial of 1, 2, 3, 4, 100 s is trimmed at n = 5; the arithmetic mean
    # (22 s) would be pulled up by the one slow trial, the geometric mean is 2400 ** (1 / 5) s
    rts = [1.0, 2.0, 3.0, 4.0, 100.0]
    row = _costs(rts)
    assert _trimmed_mean(rts) == pytest.approx((2400 ** (1 / 5), np.std(np.log(rts), ddof=1)))
    assert (row["human_rt_s"], row["human_rt_sd"]) == pytest.approx(_trimmed_mean(rts))
    assert np.log(row["human_rt_s"]) == pytest.approx(np.mean(np.log(rts)))


def test_trimming_drops_a_calibrated_share_of_normal_log_rts():
    rng = np.random.default_rng(0)
    for n in (3, 5, 20):
        logs = rng.normal(size=(4000, n))
        trials = pd.DataFrame(
            {
                "item_id": np.repeat(np.arange(4000), n),
                "rt_s": np.exp(logs.ravel()),
                "correct": True,
            }
        )
        kept = item_costs(trials, source="test")
        dropped = (
            1 - np.isclose(kept["human_rt_s"].to_numpy(), np.exp(logs.mean(1)), rtol=1e-12).mean()
        )  # items touched
        assert (
            dropped < 0.005 * n
        )  # ~0.27% of RTs each (0.8% of items at n = 3); a fixed 3 SD of the others: 25%


def test_trimming_leaves_an_item_without_outliers_alone():
    rts = [2.0, 2.5, 3.0, 2.2, 2.8, 2.4]
    row = _costs(rts)
    assert (row["human_rt_s"], row["human_rt_sd"]) == pytest.approx(
        (st.gmean(rts), np.std(np.log(rts), ddof=1))
    )


@pytest.fixture(scope="module")
def binary_trials(data_dir: Path) -> list[list[str]]:
    folder = data_dir / BINARY / RESULT_DIR
    rows = []
    for path in sorted(folder.iterdir()):
        with open(path) as f:
            rows += [line.rstrip("\n").split("\t") for line in f if line.strip()]
    return rows


@pytest.mark.parametrize("name", sorted(DATASETS))
def test_every_dataset_is_a_valid_items_table_with_documented_counts(name, data_dir):
    items = load_items(name, data_dir)
    assert validate_items(items).shape == items.shape
    assert items["task"].value_counts().to_dict() == DATASETS[name].n_items
    assert items["prompt"].str.endswith("after 'Answer:'.").all()
    assert items["human_rt_s"].gt(0).all() and items["human_accuracy"].between(0, 1).all()


def test_game24_counts_and_spot_values(data_dir):
    rows = _rows(data_dir / "princeton-nlp/tree-of-thought-llm/src/tot/data/24/24.csv")
    items = load_items("game24", data_dir).set_index("item_id")
    assert len(items) == len(rows) == 1362
    row = next(r for r in rows if r["Puzzles"] == "3 3 8 8")
    item = items.loc["game24/3-3-8-8"]
    assert item["answer"] == "3 3 8 8"
    assert item["human_rt_s"] == pytest.approx(float(row["AMT (s)"]))
    assert item["human_accuracy"] == pytest.approx(float(row["Solved rate"].rstrip("%")) / 100)
    assert pd.isna(item["human_rt_sd"])  # the published SD is of seconds, not log seconds
    assert "3, 3, 8, 8" in item["prompt"]


def test_binary_items_per_operator_from_raw_files(binary_trials, data_dir):
    assert len(binary_trials) == 8100
    distinct = {(r[6], r[0]) for r in binary_trials}
    per_op = Counter(op for op, _ in distinct)
    items = load_items("binary", data_dir)
    assert items["task"].value_counts().to_dict() == {
        "binary_add": per_op["ADD"],
        "binary_sub": per_op["SUBTRACT"],
    }
    assert items["n_human"].sum() == 8100


def test_binary_answers_and_carries_match_the_data(binary_trials, data_dir):
    items = load_items("binary", data_dir).set_index("item_id")
    for r in binary_trials[:400]:
        bits = r[0].strip("[]").replace(", ", "")
        item_id = f"{'binary_add' if r[6] == 'ADD' else 'binary_sub'}/{bits[:4]}{'+' if r[6] == 'ADD' else '-'}{bits[4:]}"
        assert items.loc[item_id, "answer"] == r[4].strip("[]").replace(" ", "")
        assert items.loc[item_id, "feat_carries"] == int(r[7])


def test_binary_one_item_mean_rt_by_hand(binary_trials, data_dir):
    # 0111 + 0001: three carries
    trials = [r for r in binary_trials if r[6] == "ADD" and r[0] == "[0, 1, 1, 1, 0, 0, 0, 1]"]
    correct_rts = [float(r[2]) for r in trials if r[1] == "True"]
    mean, sd = _trimmed_mean(correct_rts)
    item = load_items("binary", data_dir).set_index("item_id").loc["binary_add/0111+0001"]
    assert item["n_human"] == len(trials)
    assert item["human_accuracy"] == pytest.approx(len(correct_rts) / len(trials))
    assert item["human_rt_s"] == pytest.approx(mean)
    assert item["human_rt_sd"] == pytest.approx(sd)
    assert item["feat_carries"] == 3


def test_binary_trimming_drops_a_far_outlier(binary_trials, data_dir):
    """Some item has a correct RT beyond 3 SD of its log RTs; its mean must exclude that trial."""
    by_item: dict[tuple[str, str], list[float]] = defaultdict(list)
    for r in binary_trials:
        if r[1] == "True":
            by_item[(r[6], r[0])].append(float(r[2]))
    trimmed = {
        k: v
        for k, v in by_item.items()
        if _trimmed_mean(v)[0] != pytest.approx(statistics.geometric_mean(v))
    }
    assert trimmed, "the data hold at least one item that the trimming rule changes"
    (op, operands), rts = next(iter(trimmed.items()))
    bits = operands.strip("[]").replace(", ", "")
    item_id = f"{'binary_add' if op == 'ADD' else 'binary_sub'}/{bits[:4]}{'+' if op == 'ADD' else '-'}{bits[4:]}"
    got = load_items("binary", data_dir).set_index("item_id").loc[item_id, "human_rt_s"]
    assert got == pytest.approx(_trimmed_mean(rts)[0])
    assert got != pytest.approx(statistics.geometric_mean(rts))


def _closure_entails(premises: list[str], conclusion: str) -> bool:
    """Entailment by transitive closure of "left of" (an order of objects in a row)."""
    left = set()
    for p in premises:
        side, x, y = p.split(";")
        left.add((x, y) if side == "Left" else (y, x))
    while True:
        more = {(a, d) for a, b in left for c, d in left if b == c} - left
        if not more:
            break
        left |= more
    side, x, y = conclusion.split(";")
    return ((x, y) if side == "Left" else (y, x)) in left


@pytest.mark.parametrize(
    ("file", "task", "dropped"),
    [("3ps.csv", "relational_3ps", 0), ("4ps.csv", "relational_4ps", 2)],
)
def test_relational_verify_references_follow_from_the_premises(file, task, dropped, data_dir):
    items = load_items("relational", data_dir)
    items = items[items["task"] == task]
    rows = _rows(data_dir / CCOBRA / file)
    truth = "korrekt" if file == "3ps.csv" else "logicallycorrect"
    labels = {(r["task"], r["choices"]): r[truth] == "1" for r in rows}
    disagree = {k for k, v in labels.items() if v != _closure_entails(k[0].split("/"), k[1])}
    assert len(disagree) == dropped
    assert len(items) == len(labels) - dropped
    for item_id, answer in zip(items["item_id"], items["answer"], strict=True):
        premises, conclusion = item_id.split("/", 1)[1].split("|")
        assert (premises, conclusion) not in disagree
        assert answer == str(_closure_entails(premises.split("/"), conclusion)).lower()


def test_relational_3ps_one_item_rt_and_accuracy_by_hand(data_dir):
    rows = [
        r
        for r in _rows(data_dir / CCOBRA / "3ps.csv")
        if r["task"] == "Left;A;B/Right;C;B" and r["choices"] == "Right;C;A"
    ]
    correct = [float(r["rt_ms"]) / 1000 for r in rows if r["response"] == "True"]
    item = (
        load_items("relational", data_dir)
        .set_index("item_id")
        .loc["relational_3ps/Left;A;B/Right;C;B|Right;C;A"]
    )
    assert item["answer"] == "true"
    assert item["human_accuracy"] == pytest.approx(len(correct) / len(rows))
    assert item["human_rt_s"] == pytest.approx(_trimmed_mean(correct)[0])


def test_carddir_references_are_the_modal_human_answer(data_dir):
    rows = _rows(data_dir / CCOBRA / "Ragni2018_carddir.csv")
    responses: dict[str, Counter] = defaultdict(Counter)
    for r in rows:
        d1, d2 = (p.split(";")[0] for p in r["task"].split("/"))
        responses[f"relational_carddir/{d1},{d2}"][r["response"].split(";")[0]] += 1
    items = load_items("relational", data_dir).set_index("item_id")
    card = items[items["task"] == "relational_carddir"]
    assert len(responses) == 64 and len(card) == 56  # 8 opposite-direction pairs have no answer
    assert "relational_carddir/north,south" not in card.index
    for item_id, answer in card["answer"].items():
        assert responses[item_id].most_common(1)[0][0] == answer
        assert card.loc[item_id, "human_accuracy"] == pytest.approx(
            responses[item_id][answer] / sum(responses[item_id].values())
        )


def test_carddir_rt_is_total_time_over_correct_trials(data_dir):
    rows = [
        r
        for r in _rows(data_dir / CCOBRA / "Ragni2018_carddir.csv")
        if [p.split(";")[0] for p in r["task"].split("/")] == ["north", "north"]
    ]
    rts = [
        (float(r["p1_rt"]) + float(r["p2_rt"]) + float(r["rt_ms"])) / 1000
        for r in rows
        if r["response"].split(";")[0] == "south"
    ]
    item = (
        load_items("relational", data_dir)
        .set_index("item_id")
        .loc["relational_carddir/north,north"]
    )
    assert item["human_rt_s"] == pytest.approx(_trimmed_mean(rts)[0])


def test_syllogisms_counts_and_one_item_by_hand(data_dir):
    rows = _rows(
        data_dir
        / "CognitiveComputationLab/cogmods/syllogistic/student_projects/2021_wiens/data/data.csv"
    )
    with pytest.warns(UserWarning, match="dropped 1 repeated"):
        items = load_items("syllogisms", data_dir).set_index("item_id")
    assert len(items) == len({(r["task"], r["choices"]) for r in rows}) == 15
    # participant 106 saw the flower item twice (and never the ant item): one trial is dropped
    assert (
        items["n_human"].sum()
        == len({(r["id"], r["task"], r["choices"]) for r in rows})
        == len(rows) - 1
    )
    flower = [r for r in rows if r["task"] == "All;flower;water/No;computer;flower"]
    assert (
        items.loc["syllogisms/All;flower;water/No;computer;flower|No;computer;water", "n_human"]
        == len(flower) - 1
    )
    sel = [r for r in rows if r["task"] == "All;bat;mammal/No;mammal;fly"]
    correct = np.array(
        [float(r["response_time"]) / 1000 for r in sel if r["response"] == r["truth"]]
    )
    item = items.loc["syllogisms/All;bat;mammal/No;mammal;fly|All;bat;fly"]
    assert item["answer"] == "false"
    assert "All bat are mammal." in item["prompt"] and "No mammal are fly." in item["prompt"]
    assert item["human_accuracy"] == pytest.approx(len(correct) / len(sel))
    assert item["human_rt_s"] == pytest.approx(_trimmed_mean(list(correct))[0])


def test_syllogisms_keep_each_participants_earliest_repeat(tmp_path):
    path = tmp_path / "data.csv"
    pd.DataFrame(
        {
            "id": [1, 1, 2, 1],
            "sequence": [9, 3, 1, 4],
            "task": ["All;a;b/All;b;c"] * 3 + ["No;a;b/All;c;a"],
            "choices": ["All;a;c"] * 3 + ["No;c;b"],
            "response": [True, False, True, True],
            "truth": [True, True, True, True],
            "response_time": [1000, 4000, 2000, 3000],
        }
    ).to_csv(path, index=False)
    with pytest.warns(UserWarning, match="dropped 1 repeated"):
        items = syllogisms.load({syllogisms.FILE: path}).set_index("item_id")
    item = items.loc["syllogisms/All;a;b/All;b;c|All;a;c"]
    # participant 1's sequence 3 (wrong) is kept, sequence 9 (right, 1 s) dropped
    assert (item["n_human"], item["human_accuracy"], item["human_rt_s"]) == (2, 0.5, 2.0)
