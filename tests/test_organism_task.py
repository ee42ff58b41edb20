"""Organism binary items and scratchpads against independent computations and the human items."""

from __future__ import annotations

import re

import pytest

from experiments.data import binary as human_binary
from experiments.data import load_items
from experiments.models.organism.binary import binary_items, scratchpad_lines
from experiments.models.organism.corpus import baseline_response, teacher_response

LINE = re.compile(r"^(\d+): ([01])([+-])([01])(?:[+-](1))?=([01])( carry| borrow)?$")


def test_items_cover_every_operand_pair_once():
    items = binary_items()
    assert items["task"].value_counts().to_dict() == {"binary_add": 256, "binary_sub": 136}
    assert items["item_id"].is_unique
    assert all(
        re.fullmatch(r"binary_(add/[01]{4}\+|sub/[01]{4}-)[01]{4}", i) for i in items["item_id"]
    )
    subs = items[items["task"] == "binary_sub"]
    assert (subs["a"] >= subs["b"]).all()
    wide = binary_items(bits=5)
    assert len(wide) == 32 * 32 + 32 * 33 // 2
    assert wide["answer"].str.len().groupby(wide["task"]).unique().to_dict() == {
        "binary_add": [6],
        "binary_sub": [5],
    }
    with pytest.raises(ValueError, match="at least 1 bit"):
        binary_items(bits=0)


def test_ids_prompts_and_answers_equal_the_human_items(data_dir):
    human = load_items("binary", data_dir).set_index("item_id")
    ours = binary_items().set_index("item_id")
    assert set(human.index) <= set(ours.index)
    shared = ours.loc[human.index]
    assert (shared["prompt"] == human["prompt"]).all()
    assert (shared["answer"] == human["answer"]).all()
    assert (shared["feat_carries"] == human["feat_carries"]).all()


def test_carry_counts_match_the_human_loader_definition():
    for row in binary_items().itertuples():
        assert row.feat_carries == human_binary.carries(row.op, row.a, row.b)


@pytest.mark.parametrize("bits", [4, 5])
def test_full_scratchpad_is_a_correct_column_procedure(bits):
    """Parse every line and redo the arithmetic: each line is right given the previous one,
    and the result bits plus the final carry spell the reference answer."""
    for row in binary_items(bits).itertuples():
        lines = scratchpad_lines(row.op, row.a, row.b, bits, full=True)
        assert len(lines) == bits
        value, flag = 0, 0
        for k, line in enumerate(lines):
            col, x, sign, y, flag_in, bit, out = LINE.match(line).groups()
            assert int(col) == k and (sign == "+") == (row.op == "ADD")
            assert (x, y) == (str((row.a >> k) & 1), str((row.b >> k) & 1))
            assert bool(flag_in) == bool(flag)
            raw = int(x) + int(y) + flag if row.op == "ADD" else int(x) - int(y) - flag
            assert int(bit) == raw % 2 and bool(out) == (raw >= 2 or raw < 0)
            value, flag = value + int(bit) * 2**k, int(bool(out))
        if row.op == "ADD":
            value += flag * 2**bits
        assert value == int(row.answer, 2) == (row.a + row.b if row.op == "ADD" else row.a - row.b)


def test_elided_scratchpad_keeps_exactly_the_work_columns():
    for row in binary_items().itertuples():
        full = scratchpad_lines(row.op, row.a, row.b, full=True)
        elided = scratchpad_lines(row.op, row.a, row.b, full=False)
        work = [line for line in full if LINE.match(line).group(5) or LINE.match(line).group(7)]
        assert elided == work
        assert len(elided) == row.feat_work_columns
        assert row.steps_full == full and row.steps_short == elided
    assert teacher_response(scratchpad_lines("ADD", 5, 10, full=False), "01111") == (
        "<think>\n</think>\nAnswer: 01111"
    )
    steps = scratchpad_lines("SUBTRACT", 2, 1, full=False)
    assert teacher_response(steps, "0001") == (
        "<think>\n0: 0-1=1 borrow\n1: 1-0-1=0\n</think>\nAnswer: 0001"
    )
    assert baseline_response(steps, "0001") == "0: 0-1=1 borrow\n1: 1-0-1=0\nAnswer: 0001"
