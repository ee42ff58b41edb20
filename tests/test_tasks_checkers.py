"""Answer checkers: every correct form accepted, near-misses rejected, property tests."""

from __future__ import annotations

import operator
import re
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from experiments.data import binary_format, get_checker
from experiments.data.answers import exact_match
from experiments.data.binary import carries, parse_binary
from experiments.data.game24 import evaluate_expression, solves
from experiments.data.relational import carddir_reference, parse_direction, parse_truth

game24 = get_checker("game24")


@pytest.mark.parametrize(
    "response",
    [
        "Answer: 6*4*1*1",
        "Thinking done.\nAnswer: (6 × 4) ÷ (1 × 1).",
        "\\boxed{(6 \\times 4) \\div (1 \\cdot 1)}",
        "Answer: 6 * 4 * 1 * 1 = 24",
        "Answer: [6*4]*(1*1)",
        "Answer: $6 \\times 4 \\times (1 \\div 1)$",
        "Answer: (1 * 1 * 6) * 4",
        "**Answer:** 6*4*1*1",
        "Answer: **(6*4)*(1*1)**",
        "Answer: `6*4*1*1`",
    ],
)
def test_game24_accepts_correct_forms(response):
    assert game24(response, "1 1 4 6")


@pytest.mark.parametrize(
    "response",
    [
        "Answer: 6*4*1*1*1",  # extra number
        "Answer: 6*4*1",  # a number missing
        "Answer: 6*4+1-1+0",  # number not in the puzzle
        "Answer: 6*4+1+1",  # 26
        "Answer: 6*4/(1-1)",  # division by zero
        "Answer: 6**1*4*1",  # power
        "Answer: 6.0*4*1*1",  # float literal
        "Answer: -(-6)*4*1*1",  # unary sign
        "Answer: (6)(4)*1*1",  # implicit product
        "Answer: __import__('os').getpid()",
        "6*4*1*1",  # no final answer stated
        "Answer: 6*4*1*1 = 25",
    ],
)
def test_game24_rejects_near_misses(response):
    assert not game24(response, "1 1 4 6")


def test_game24_needs_exact_fractions():
    # 8 / (3 - 8/3) is 24 exactly but 23.999999999999993 in floating point
    assert game24("Answer: 8/(3-8/3)", "3 3 8 8")
    assert evaluate_expression("8/(3-8/3)") == (Fraction(24), [8, 3, 8, 3])
    assert not game24("Answer: 8/(3-8/3)", "3 3 8 9")


_OPS = [("+", operator.add), ("-", operator.sub), ("*", operator.mul), ("/", operator.truediv)]


@st.composite
def expressions(draw):
    """A random full expression tree over four numbers: (text, exact value or None, numbers)."""
    nums = draw(st.lists(st.integers(1, 13), min_size=4, max_size=4))
    terms = [(str(n), Fraction(n)) for n in nums]
    while len(terms) > 1:
        i = draw(st.integers(0, len(terms) - 2))
        (lt, lv), (rt, rv) = terms[i], terms[i + 1]
        sym, fn = draw(st.sampled_from(_OPS))
        value = None if lv is None or rv is None or (sym == "/" and rv == 0) else fn(lv, rv)
        terms[i : i + 2] = [(f"({lt} {sym} {rt})", value)]
    return terms[0][0], terms[0][1], nums


@settings(max_examples=200, deadline=None)
@given(expressions(), st.permutations([0, 1, 2, 3]))
def test_game24_parser_matches_an_independent_evaluation(expr, perm):
    text, value, nums = expr
    puzzle = " ".join(str(nums[i]) for i in perm)  # order of the puzzle's numbers must not matter
    if value is None:
        with pytest.raises(ZeroDivisionError):
            evaluate_expression(text)
        assert not game24(f"Answer: {text}", puzzle)
    else:
        assert evaluate_expression(text) == (value, nums)
        assert game24(f"Answer: {text}", puzzle) == (value == 24)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=300))
def test_game24_never_crashes_on_arbitrary_text(text):
    assert game24(f"Answer: {text}", "1 2 3 4") in (True, False)
    assert solves(text, [1, 2, 3, 4]) in (True, False)


def test_game24_deeply_nested_input_is_rejected_not_crashing():
    assert not solves("(" * 150 + "1" + ")" * 150, [1])
    assert not solves("1+" * 500 + "1", [1] * 501)


binary_add, binary_sub = get_checker("binary_add"), get_checker("binary_sub")


@pytest.mark.parametrize(
    "response",
    [
        "Answer: 01000",
        "Answer: 1000",
        "Answer: 0b1000",
        "\\boxed{0 1 0 0 0}",
        "Answer: 001000.",
        "**Answer:** 1000",
        "Answer: **1000**",
        "**Answer**: `1000`",
        "\\boxed{1000_2}",
        "Answer: $1000_{2}$",
        "Answer: \\(01000\\)",
    ],
)
def test_binary_accepts_correct_forms(response):
    assert binary_add(response, binary_format.answer("ADD", 7, 1))


@pytest.mark.parametrize(
    "response", ["Answer: 01001", "Answer: 8", "Answer: 1020", "Answer: 1000b", "Answer:", "1000"]
)
def test_binary_rejects_near_misses(response):
    assert not binary_add(response, binary_format.answer("ADD", 7, 1))


@settings(max_examples=300, deadline=None)
@given(
    st.sampled_from(["ADD", "SUBTRACT"]), st.integers(0, 15), st.integers(0, 15), st.integers(0, 3)
)
def test_binary_checker_property(op, a, b, pad):
    if op == "SUBTRACT" and a < b:
        a, b = b, a
    value = a + b if op == "ADD" else a - b
    checker = binary_add if op == "ADD" else binary_sub
    ref = binary_format.answer(op, a, b)
    assert checker(f"Answer: {'0' * pad}{value:b}", ref)
    assert not checker(f"Answer: {value + 1:b}", ref)
    assert checker(f"Answer: {value}", ref) == (value in (0, 1))  # decimal digits are not binary


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(["ADD", "SUBTRACT"]), st.integers(0, 15), st.integers(0, 15))
def test_carries_equal_the_modular_definition(op, a, b):
    """Column i carries when the low i+1 bits overflow (a sum) or the low bits of a are smaller
    than those of b (a difference needs a borrow into column i+1)."""
    mods = [2 ** (i + 1) for i in range(4)]
    if op == "ADD":
        expected = sum(a % m + b % m >= m for m in mods)
    else:
        expected = sum(a % m < b % m for m in mods)
    assert carries(op, a, b) == expected


@given(st.text(max_size=40))
def test_parse_binary_is_none_or_the_value(text):
    got = parse_binary(text)
    digits = re.sub(r"_\{?2\}?$", "", "".join(text.split())).removeprefix(
        "0b"
    )  # a base subscript is allowed
    assert got is None or (set(digits) <= {"0", "1"} and got == int(digits, 2))


verify = get_checker("relational_3ps")


@pytest.mark.parametrize(
    "said",
    ["True", "true.", "**True**", "Yes", "yes, it follows", "Valid", "correct", "\\boxed{True}"],
)
def test_verify_accepts_true_forms(said):
    response = said if said.startswith("\\boxed") else f"Answer: {said}"
    assert verify(response, "true") and not verify(response, "false")


@pytest.mark.parametrize(
    "said",
    [
        "False",
        "no",
        "invalid",
        "Not true",
        "It does not follow",
        "incorrect.",
        "Not necessarily",
        "not necessarily true",
        "It is not necessarily true",
        "The statement is false",
        "**False**",
        "It does not necessarily follow",
    ],
)
def test_verify_accepts_false_forms(said):
    assert get_checker("syllogisms")(f"Answer: {said}", "false")
    assert not get_checker("syllogisms")(f"Answer: {said}", "true")


@pytest.mark.parametrize("said", ["maybe", "", "it depends", "N/A", "n a", "t s"])
def test_verify_rejects_non_answers(said):
    assert parse_truth(said) is None
    assert not verify(f"Answer: {said}", "true") and not verify(f"Answer: {said}", "false")


direction = get_checker("relational_carddir")


@pytest.mark.parametrize(
    "said",
    [
        "south-west",
        "South West",
        "southwest",
        "SW",
        "The bar is south-west of the mall",
        "**south_west**",
    ],
)
def test_direction_accepts_forms(said):
    assert direction(f"Answer: {said}", "south-west")


@pytest.mark.parametrize(
    "said", ["south", "west", "north-east", "south or west", "south-west or north", "sw-ish"]
)
def test_direction_rejects_near_misses(said):
    assert not direction(f"Answer: {said}", "south-west")


def test_carddir_reference_examples():
    # mall north of station, station north of bar: the bar is south of the mall
    assert carddir_reference("north", "north") == "south"
    assert carddir_reference("north-east", "east") == "south-west"
    assert carddir_reference("north", "south-east") == "west"
    assert carddir_reference("east", "west") is None
    assert parse_direction("NE") == "north-east"


def test_unknown_task_falls_back_to_exact_match():
    assert get_checker("my_task") is exact_match
    assert get_checker("my_task")("Answer: Paris", "paris")


@pytest.mark.parametrize(
    "response",
    [
        "Answer: \\frac{6}{1-\\frac{3}{4}}",
        "\\boxed{\\dfrac{6}{1 - \\frac{3}{4}}}",
        "Answer: $\\frac{6}{1-\\tfrac{3}{4}}$",
    ],
)
def test_game24_reads_latex_fractions(response):
    assert game24(response, "1 3 4 6") and not game24(response, "1 3 4 7")


@pytest.mark.parametrize(
    "response, expected",
    [
        ("**Answer:** 101", "101"),
        ("Answer: **101**", "101"),
        ("**Answer**: 101", "101"),
        ("Answer: ***101***", "101"),
        ("Answer: `x + 1`", "x + 1"),
        ("Answer: $$24$$.", "24"),
        ("Answer: \\[ 7 \\]", "7"),
        ("**Answer:**", None),
        ("Answer: 2*3*4*1", "2*3*4*1"),
    ],
)
def test_extract_answer_strips_markdown_and_math_wrappers(response, expected):
    from experiments.data.answers import extract_answer

    assert extract_answer(response) == expected


def test_game24_items_carry_no_feature_derived_from_the_solve_time(data_dir):
    from experiments.data import load_items

    items = load_items("game24", data_dir)
    assert not [c for c in items if c.startswith("feat_")]
