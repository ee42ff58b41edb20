"""4-bit binary addition and subtraction (Cho, Lim, Hickey & Zhang, CogSci/ICCM 2019).

Raw files: one tab-separated file per participant, no header, columns: operands (8 bits: two
4-bit numbers), correct, solving time (s), participant's answer, true answer, operand digits,
operator (``ADD`` / ``SUBTRACT``), carries (borrows for subtraction). 180 files x 45 trials.

Items: one per (operator, a, b); tasks ``binary_add`` / ``binary_sub``; prompt and answer from
:mod:`experiments.data.binary_format`; ``item_id`` like ``binary_add/1001+1111``. Human cost
follows :mod:`experiments.data.aggregate` with RT = solving time in seconds. ``feat_carries`` is
the data's carry (borrow) count, checked against :func:`carries` on load.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd

from experiments.data import binary_format
from experiments.data.aggregate import item_costs
from experiments.data.answers import extract_answer
from experiments.data.binary_files import RESULT_DIR, SHA256
from experiments.errors import InputError

BITS = 4
COLUMNS = ["operands", "correct", "rt_s", "response", "true_answer", "digits", "op", "carries"]
_BINARY = re.compile(r"(?:0b)?([01]+)")


def carries(op: str, a: int, b: int, bits: int = BITS) -> int:
    """Number of columns that produce a carry (``ADD``) or need a borrow (``SUBTRACT``) when
    ``a OP b`` is worked digit by digit from the right over ``bits`` columns."""
    count, carry = 0, 0
    for i in range(bits):
        x, y = (a >> i) & 1, (b >> i) & 1
        if op == "ADD":
            carry = int(x + y + carry >= 2)
        elif op == "SUBTRACT":
            carry = int(x - y - carry < 0)
        else:
            raise InputError(f"unknown operator {op!r}; use one of {sorted(binary_format.OPS)}")
        count += carry
    return count


def parse_binary(text: str) -> int | None:
    """Integer value of a binary numeral (optional ``0b``, a base subscript ``_2`` / ``_{2}``,
    leading zeros and inner spaces allowed); None for anything else."""
    match = _BINARY.fullmatch(re.sub(r"_\{?2\}?$", "", re.sub(r"\s+", "", text)))
    return int(match.group(1), 2) if match else None


def check(response: str, reference: str) -> bool:
    """Checker: the final answer is a binary numeral with the reference's integer value."""
    found = extract_answer(response)
    value = None if found is None else parse_binary(found)
    return value is not None and value == int(reference, 2)


def read_trials(paths: dict[str, Path]) -> pd.DataFrame:
    """All trials of all participants, with integer operands ``a``, ``b``."""
    frames = []
    for name in SHA256:
        frame = pd.read_csv(paths[f"{RESULT_DIR}/{name}"], sep="\t", header=None, names=COLUMNS)
        frame["participant"] = name
        frames.append(frame)
    trials = pd.concat(frames, ignore_index=True)
    digits = trials["operands"].str.replace(r"[^01]", "", regex=True)
    if not (digits.str.len() == 2 * BITS).all():
        raise InputError(f"binary result files: expected {2 * BITS} operand bits per trial")
    trials["a"] = digits.str[:BITS].apply(int, base=2)
    trials["b"] = digits.str[BITS:].apply(int, base=2)
    trials["correct"] = trials["correct"].astype(str).str.lower().eq("true")
    return trials


def load(paths: dict[str, Path]) -> pd.DataFrame:
    """Items table for ``binary_add`` and ``binary_sub`` (see the module docstring)."""
    trials = read_trials(paths)
    ours = [
        carries(op, a, b) for op, a, b in zip(trials["op"], trials["a"], trials["b"], strict=True)
    ]
    mismatch = trials["carries"].to_numpy() != ours
    if mismatch.any():
        raise InputError(
            f"binary result files: {int(mismatch.sum())} trials whose carries column "
            "disagrees with the digit-by-digit count; the files are not the pinned ones"
        )
    trials["item_id"] = [
        binary_format.item_id(op, a, b, BITS)
        for op, a, b in zip(trials["op"], trials["a"], trials["b"])
    ]
    costs = item_costs(trials, source="binary")
    first = trials.drop_duplicates("item_id").set_index("item_id")
    first = first.loc[costs["item_id"]]
    return costs.assign(
        task=first["op"].map(binary_format.TASKS).to_numpy(),
        prompt=[
            binary_format.prompt(op, a, b)
            for op, a, b in zip(first["op"], first["a"], first["b"], strict=True)
        ],
        answer=[
            binary_format.answer(op, a, b)
            for op, a, b in zip(first["op"], first["a"], first["b"], strict=True)
        ],
        feat_carries=first["carries"].astype("int64").to_numpy(),
    )
