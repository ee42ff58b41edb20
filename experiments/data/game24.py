"""Game of 24 (princeton-nlp/tree-of-thought-llm ``24.csv``, scraped from 4nums.com).

Aggregation: none is possible. The file is one row per puzzle, with summaries computed upstream
(4nums.com) from solve times that are not published, so handan's trial rule
(:mod:`experiments.data.aggregate`: correct trials, log-RT trimming, geometric mean) cannot be
applied. ``human_rt_s`` = ``AMT (s)`` as given: an arithmetic mean of solve times in seconds, a
different estimand from the trial-level datasets' geometric mean (under a lognormal it exceeds it
by ``exp(sd_log ** 2 / 2)``). Within-task statistics (game24's r with model cost, over its own
puzzles) are affected only where that dispersion differs between puzzles; the level is not
comparable with other tasks', so cross-task and pooled rows that mix game24 with trial-level
tasks mix two estimands. ``human_rt_sd`` is NA: the one published dispersion, ``1-sigma STD
(s)``, is in seconds of the solves within one SD of the mean, not on the log scale of the
contract. ``human_accuracy`` = ``Solved rate`` (percent / 100), ``n_human`` unknown (NA). The
file's ``Rank`` column is left out: it orders the puzzles by solve time, so as a ``feat_*``
baseline it would be the target itself.
The reference answer is the puzzle itself (``"1 1 4 6"``); any expression that reaches 24 is right.
"""

from __future__ import annotations

import ast
import re
from collections import Counter
from fractions import Fraction
from pathlib import Path

import pandas as pd

from experiments.data.answers import extract_answer
from experiments.errors import InputError

TASK = "game24"
TARGET = 24
MAX_EXPRESSION_CHARS = 200  # longer is not an answer to a four-number puzzle; bounds parse work

_BINOPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}
# Typographic and LaTeX spellings of the four operations that models write.
_SPELLINGS = {
    "\\times": "*",
    "\\cdot": "*",
    "\\div": "/",
    "×": "*",
    "·": "*",
    "÷": "/",
    "−": "-",
    "–": "-",
    "\\left": "",
    "\\right": "",
    "[": "(",
    "]": ")",
    "{": "(",
    "}": ")",
}


def prompt(numbers: list[int]) -> str:
    """The prompt for one puzzle."""
    listed = ", ".join(str(n) for n in numbers)
    return (
        f"Use the numbers {listed} to make 24. Use each number exactly once and only +, -, * and /, "
        "with parentheses as needed. Give the final answer, a single arithmetic expression using "
        "the four numbers, after 'Answer:'."
    )


_FRAC = re.compile(r"\\[dt]?frac\{([^{}]*)\}\{([^{}]*)\}")


def _normalise(expression: str) -> str:
    while (
        unfolded := _FRAC.sub(r"((\1)/(\2))", expression)
    ) != expression:  # innermost \frac first
        expression = unfolded
    for spelling, op in _SPELLINGS.items():
        expression = expression.replace(spelling, op)
    # A trailing "= 24" restates the target; anything else after "=" is not part of the expression.
    return re.sub(r"=\s*24\s*$", "", expression).strip()


def _evaluate(node: ast.AST, used: list[int]) -> Fraction:
    """Exact value of a whitelisted expression tree, appending every literal to ``used``.
    Raises ValueError on any other node (names, calls, powers, unary signs, floats)."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, used)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        used.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINOPS:
        left, right = _evaluate(node.left, used), _evaluate(node.right, used)
        return _BINOPS[type(node.op)](left, right)  # ZeroDivisionError on x / 0
    raise InputError(f"not allowed in a 24 expression: {type(node).__name__}")


def evaluate_expression(expression: str) -> tuple[Fraction, list[int]]:
    """Parse ``expression`` (integers, + - * /, parentheses) with ``ast`` and a node whitelist, and
    return its exact value and the integers it uses, in order. Never calls ``eval``.
    Raises ValueError for anything else and ZeroDivisionError for a division by zero."""
    text = _normalise(expression)
    if len(text) > MAX_EXPRESSION_CHARS:
        raise InputError(f"expression longer than {MAX_EXPRESSION_CHARS} characters")
    try:
        tree = ast.parse(text, mode="eval")
    except (SyntaxError, RecursionError, MemoryError) as err:
        raise InputError(f"not an arithmetic expression: {text!r}") from err
    used: list[int] = []
    return _evaluate(tree, used), used


def solves(expression: str, numbers: list[int]) -> bool:
    """True when ``expression`` uses each of ``numbers`` exactly once and equals 24 exactly."""
    try:
        value, used = evaluate_expression(expression)
    except (ValueError, ZeroDivisionError, RecursionError):
        return False
    return Counter(used) == Counter(numbers) and value == TARGET


def check(response: str, reference: str) -> bool:
    """Checker: the final answer of ``response`` solves the puzzle ``reference`` (``"1 1 4 6"``)."""
    found = extract_answer(response)
    return found is not None and solves(found, [int(n) for n in reference.split()])


def load(paths: dict[str, Path]) -> pd.DataFrame:
    """Items table of the 1,362 puzzles (see the module docstring for the rule)."""
    raw = pd.read_csv(paths["src/tot/data/24/24.csv"])
    numbers = raw["Puzzles"].str.split().apply(lambda xs: [int(x) for x in xs])
    return pd.DataFrame(
        {
            "item_id": TASK + "/" + raw["Puzzles"].str.replace(" ", "-"),
            "task": TASK,
            "prompt": numbers.apply(prompt),
            "answer": raw["Puzzles"],
            "human_rt_s": raw["AMT (s)"].astype("float64"),
            "human_rt_sd": float("nan"),
            "human_accuracy": raw["Solved rate"].str.rstrip("%").astype("float64") / 100,
            "n_human": pd.NA,
        }
    )
