"""The organism's binary tasks: addition and subtraction, written exactly as the human items are.

Items (``binary_items``): ``binary_add`` — every pair of ``bits``-bit operands (16 x 16 = 256 at
4 bits); ``binary_sub`` — every pair with ``a >= b`` (136 at 4 bits). Prompts and reference answers
come from ``experiments.data.binary_format``; ``item_id`` is ``binary_add/{a:04b}+{b:04b}`` /
``binary_sub/{a:04b}-{b:04b}``, the human-data loader's ids.

Scratchpad: the column procedure people are taught. Columns are numbered from the right
(``0`` = least significant). A column line is

- addition:    ``{k}: {a_k}+{b_k}[+1]={s_k}[ carry]``  (``+1`` = carry in, `` carry`` = carry out)
- subtraction: ``{k}: {a_k}-{b_k}[-1]={d_k}[ borrow]`` (``-1`` = borrow in, `` borrow`` = out)

A column *needs work* when it takes or produces a carry/borrow; the other columns are a single
bit operation that can be done "in the head". The **full** scratchpad writes a line for every
column; the **short** one writes lines only for the columns that need work, so its length is
proportional to the number of carry/borrow columns (0 lines for ``0101 + 1010``).
"""

from __future__ import annotations

import pandas as pd

from experiments.data import binary_format
from experiments.data.binary import carries
from experiments.errors import InputError


def operand_pairs(op: str, bits: int = 4) -> list[tuple[int, int]]:
    """All operand pairs of an operation: every pair for ADD, pairs with ``a >= b`` for SUBTRACT."""
    n = 2**bits
    return [(a, b) for a in range(n) for b in range(n) if op == "ADD" or a >= b]


def columns(op: str, a: int, b: int, bits: int = 4) -> list[tuple[int, int, int, int, int]]:
    """Per column ``k`` (right to left): ``(a_k, b_k, carry_or_borrow_in, result_bit, out)``."""
    rows, flag = [], 0
    for k in range(bits):
        x, y = (a >> k) & 1, (b >> k) & 1
        if op == "ADD":
            total = x + y + flag
            bit, out = total & 1, total >> 1
        else:
            diff = x - y - flag
            bit, out = diff & 1, int(diff < 0)
        rows.append((x, y, flag, bit, out))
        flag = out
    return rows


def scratchpad_lines(op: str, a: int, b: int, bits: int = 4, *, full: bool) -> list[str]:
    """The column lines of the scratchpad: all columns (``full``) or only those that need work."""
    sign, word = ("+", "carry") if op == "ADD" else ("-", "borrow")
    lines = []
    for k, (x, y, flag_in, bit, out) in enumerate(columns(op, a, b, bits)):
        if full or flag_in or out:
            lines.append(
                f"{k}: {x}{sign}{y}{sign + '1' if flag_in else ''}={bit}{' ' + word if out else ''}"
            )
    return lines


def binary_items(bits: int = 4) -> pd.DataFrame:
    """The binary items: ``item_id, task, prompt, answer, steps_full, steps_short, op, a, b, bits,
    feat_carries, feat_work_columns, feat_ones``. ``feat_carries`` counts the columns that produce a carry
    (addition) or a borrow (subtraction); ``feat_work_columns`` the columns that take or produce
    one (= lines of the elided scratchpad); ``feat_ones`` the 1-digits in both operands."""
    if bits < 1:
        raise InputError(f"bits={bits}: operands need at least 1 bit (the human items use 4)")
    rows = []
    for op in binary_format.OPS:
        for a, b in operand_pairs(op, bits):
            cols = columns(op, a, b, bits)
            rows.append(
                {
                    "item_id": binary_format.item_id(op, a, b, bits),
                    "task": binary_format.TASKS[op],
                    "prompt": binary_format.prompt(op, a, b, bits),
                    "answer": binary_format.answer(op, a, b, bits),
                    "steps_full": scratchpad_lines(op, a, b, bits, full=True),
                    "steps_short": scratchpad_lines(op, a, b, bits, full=False),
                    "op": op,
                    "a": a,
                    "b": b,
                    "bits": bits,
                    "feat_carries": carries(op, a, b, bits),
                    "feat_work_columns": sum(bool(c[2] or c[4]) for c in cols),
                    "feat_ones": bin(a).count("1") + bin(b).count("1"),
                }
            )
    return pd.DataFrame(rows)
