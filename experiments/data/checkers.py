"""Answer checkers keyed by task: ``checker(response_after_think, reference_answer) -> bool``.
Each extracts the final answer with :func:`experiments.data.answers.extract_answer`."""

from __future__ import annotations

from collections.abc import Callable

from experiments.data import binary, game24, relational
from experiments.data.answers import exact_match

Checker = Callable[[str, str], bool]

CHECKERS: dict[str, Checker] = {
    "game24": game24.check,
    "binary_add": binary.check,
    "binary_sub": binary.check,
    "relational_3ps": relational.check_verify,
    "relational_4ps": relational.check_verify,
    "relational_carddir": relational.check_direction,
    "syllogisms": relational.check_verify,
}


def get_checker(task: str) -> Checker:
    """The checker for ``task``. A task without its own checker (e.g. from a user Items file)
    gets :func:`experiments.data.answers.exact_match`: the extracted answer equals the reference,
    ignoring case and spaces."""
    return CHECKERS.get(task, exact_match)
