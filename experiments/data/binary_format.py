"""How a 4-bit binary arithmetic item (Cho et al., 2019) is put to a model and answered.

Shared by the human-data loader (`binary_add`, `binary_sub` items) and the model organism,
so that the organism is trained on exactly the prompts the items table carries.
"""

from __future__ import annotations

from experiments.errors import InputError

OPS = {"ADD": "+", "SUBTRACT": "-"}
TASKS = {"ADD": "binary_add", "SUBTRACT": "binary_sub"}
WIDTH = {"ADD": 5, "SUBTRACT": 4}  # result digits shown to participants


def item_id(op: str, a: int, b: int, bits: int = 4) -> str:
    """The item's id, e.g. ``binary_add/0101+0011`` (shared by the loader and the organism)."""
    return f"{TASKS[op]}/{a:0{bits}b}{OPS[op]}{b:0{bits}b}"


def prompt(op: str, a: int, b: int, bits: int = 4) -> str:
    """The prompt for ``a OP b`` with operands written as ``bits``-digit binary numbers."""
    if op not in OPS:
        raise InputError(f"unknown operator {op!r}; use one of {sorted(OPS)}")
    return (
        f"Compute in binary: {a:0{bits}b} {OPS[op]} {b:0{bits}b}. "
        "Reply with the result in binary after 'Answer:'."
    )


def answer(op: str, a: int, b: int, bits: int = 4) -> str:
    """The reference answer, zero-padded to the width participants typed (5 digits for a sum,
    4 for a difference of 4-bit operands; one more digit per extra operand bit)."""
    if op == "ADD":
        return f"{a + b:0{WIDTH['ADD'] + bits - 4}b}"
    if a < b:
        raise InputError(f"{a} - {b} is negative; the binary subtraction items have a >= b")
    return f"{a - b:0{WIDTH['SUBTRACT'] + bits - 4}b}"
