"""Spatial relational reasoning from the CCOBRA benchmarks (3ps, 4ps, Ragni2018_carddir).

Tasks and items:
- ``relational_3ps`` (16 items) and ``relational_4ps`` (46 items): left/right premises
  (``Left;A;B`` = "A is to the left of B") and a conclusion to verify; one item per (premises,
  conclusion); reference ``true``/``false`` from the data's ``korrekt`` / ``logicallycorrect``,
  kept only where it agrees with logical entailment (true in every left-to-right order that
  satisfies the premises). Two 4ps items (``Right;B;A/Right;D;C/Right;B;C`` with conclusion A left
  of D, or D right of A) are labelled correct but do not follow (A and D can be in either order);
  they are left out, since the prompt asks whether the statement is necessarily true.
- ``relational_carddir`` (56 items): two cardinal-direction premises (``north;X;Y`` = "X is north of
  Y") and the question where the last object lies from the first. Participants saw different object
  names for the same structure, so an item is the pair of premise directions; its prompt uses the
  object names of the first participant (lowest id) who saw it. Reference: premises are unit steps
  on a grid (a diagonal is one step on each axis); the answer is the compass direction of the sum.
  The 8 pairs of opposite directions sum to zero (no direction) and are left out.

Human cost follows :mod:`experiments.data.aggregate`; a trial is correct when its response equals
the reference. RT = time from the onset of the first premise to the response, in seconds: ``rt_ms``
for 3ps/4ps (timestamps from the first premise, ``PremTime1`` = 0), ``p1_rt + p2_rt + rt_ms`` for
carddir (per-screen durations).
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.data.aggregate import item_costs
from experiments.data.answers import extract_answer

DATA = "benchmarks/relational/data"
FILES = {
    "3ps": f"{DATA}/3ps.csv",
    "4ps": f"{DATA}/4ps.csv",
    "carddir": f"{DATA}/Ragni2018_carddir.csv",
}
TASKS = {"3ps": "relational_3ps", "4ps": "relational_4ps", "carddir": "relational_carddir"}

DIRECTIONS = {
    "north": (0, 1),
    "north-east": (1, 1),
    "east": (1, 0),
    "south-east": (1, -1),
    "south": (0, -1),
    "south-west": (-1, -1),
    "west": (-1, 0),
    "north-west": (-1, 1),
}
_BY_VECTOR = {v: k for k, v in DIRECTIONS.items()}
_ABBREVIATIONS = {
    "n": "north",
    "ne": "north-east",
    "e": "east",
    "se": "south-east",
    "s": "south",
    "sw": "south-west",
    "w": "west",
    "nw": "north-west",
}
_DIRECTION_WORD = re.compile(r"\b(north|south)[\s_-]?(east|west)\b|\b(north|south|east|west)\b")

_TRUE = {"true", "yes", "valid", "correct", "follows", "t", "y"}
_FALSE = {"false", "no", "invalid", "incorrect", "f", "n"}
_NEGATION = re.compile(
    r"not (?:necessarily )?(?:true|valid|correct)|not necessarily|"
    r"(?:it )?does not (?:necessarily )?follow"
)
_SUBJECT = re.compile(r"^(?:the statement|the conclusion|it|this|that) (?:is )?")


def verify_prompt(premises: list[str], conclusion: str, *, intro: str) -> str:
    """A true/false question: numbered premises, a statement, the answer format."""
    lines = [intro] + [f"Premise {i}: {p}" for i, p in enumerate(premises, 1)]
    return "\n".join(lines) + (
        f"\nStatement: {conclusion}\nIs the statement necessarily true given the premises? "
        "Give the final answer (true or false) after 'Answer:'."
    )


def _left_right(relation: str) -> str:
    side, x, y = relation.split(";")
    return f"{x.strip()} is to the {side.strip().lower()} of {y.strip()}."


def _cardinal(relation: str) -> str:
    direction, x, y = relation.split(";")
    return f"The {x} is {direction} of the {y}."


def parse_truth(text: str) -> bool | None:
    """True/False for a stated truth value, after an optional "the statement is" / "it is": the
    first word is one of true/yes/valid/correct/follows or false/no/invalid/incorrect (a single
    letter t/y/f/n only as the whole answer, so "N/A" states nothing), or the text is a negation
    such as "not true", "not necessarily (true)", "does not follow" (case and punctuation
    ignored). None when the text states none."""
    phrase = _SUBJECT.sub("", " ".join(re.findall(r"[a-z]+", text.lower())))
    words = phrase.split()
    if not words or (len(words[0]) == 1 and len(words) > 1):
        return None
    if _NEGATION.fullmatch(phrase):
        return False
    if words[0] in _TRUE:
        return True
    if words[0] in _FALSE:
        return False
    return None


def check_verify(response: str, reference: str) -> bool:
    """Checker for true/false items: the final answer's truth value equals the reference's."""
    found = extract_answer(response)
    got = None if found is None else parse_truth(found)
    return got is not None and got == parse_truth(reference)


def parse_direction(text: str) -> str | None:
    """The one compass direction named in ``text`` (``south-west``, ``South West``, ``southwest``,
    ``SW``); None when none or several different ones are named."""
    lowered = text.strip().lower()
    if lowered in _ABBREVIATIONS:
        return _ABBREVIATIONS[lowered]
    found = {f"{m[0]}-{m[1]}" if m[0] else m[2] for m in _DIRECTION_WORD.findall(lowered)}
    return found.pop() if len(found) == 1 else None


def check_direction(response: str, reference: str) -> bool:
    """Checker for single-choice compass items: the one direction named equals the reference."""
    found = extract_answer(response)
    return found is not None and parse_direction(found) == reference


def carddir_reference(first: str, second: str) -> str | None:
    """Direction of the last object from the first for premises ``X first-of Y``, ``Y second-of Z``:
    the compass name of ``-(first + second)`` on the grid; None when the sum is zero."""
    total = np.add(DIRECTIONS[first], DIRECTIONS[second])
    key = (-int(np.sign(total[0])), -int(np.sign(total[1])))
    return _BY_VECTOR.get(key)


def entailed(premises: list[str], conclusion: str) -> bool:
    """True when ``conclusion`` holds in every left-to-right order of the objects that satisfies
    all left/right ``premises`` (brute force over the orders; at most 4 objects here)."""
    relations = [r.split(";") for r in premises + [conclusion]]
    objects = sorted({o for _, x, y in relations for o in (x, y)})

    def holds(order: tuple[str, ...], side: str, x: str, y: str) -> bool:
        return (order.index(x) < order.index(y)) == (side == "Left")

    models = [
        o for o in itertools.permutations(objects) if all(holds(o, *r) for r in relations[:-1])
    ]
    return bool(models) and all(holds(o, *relations[-1]) for o in models)


def _verify_items(
    raw: pd.DataFrame, task: str, truth_column: str, rt_ms: pd.Series
) -> pd.DataFrame:
    premises = raw["task"].str.split("/")
    trials = pd.DataFrame(
        {
            "item_id": task + "/" + raw["task"] + "|" + raw["choices"],
            "premises": premises,
            "conclusion": raw["choices"],
            "reference": raw[truth_column].astype(int).astype(bool),
            "rt_s": rt_ms / 1000.0,
        }
    )
    trials["correct"] = raw["response"].astype(str).str.lower().eq("true") == trials["reference"]
    logical = pd.Series(
        [entailed(p, c) for p, c in zip(trials["premises"], trials["conclusion"], strict=True)],
        index=trials.index,
    )
    trials = trials[logical == trials["reference"]]
    costs = item_costs(trials, source=task)
    first = trials.drop_duplicates("item_id").set_index("item_id").loc[costs["item_id"]]
    intro = "Objects are placed in a row from left to right."
    return costs.assign(
        task=task,
        prompt=[
            verify_prompt([_left_right(p) for p in ps], _left_right(c), intro=intro)
            for ps, c in zip(first["premises"], first["conclusion"], strict=True)
        ],
        answer=np.where(first["reference"], "true", "false"),
        feat_n_premises=first["premises"].str.len().to_numpy(),
    )


def _carddir_items(raw: pd.DataFrame) -> pd.DataFrame:
    task = TASKS["carddir"]
    raw = raw.dropna(subset=["task"]).sort_values(["id", "sequence"], kind="stable")
    premises = raw["task"].str.split("/")
    d1, d2 = premises.str[0].str.split(";").str[0], premises.str[1].str.split(";").str[0]
    reference = [carddir_reference(a, b) for a, b in zip(d1, d2, strict=True)]
    trials = pd.DataFrame(
        {
            "item_id": task + "/" + d1 + "," + d2,
            "premises": premises,
            "question": raw["question"],
            "reference": reference,
            "rt_s": (raw["p1_rt"] + raw["p2_rt"] + raw["rt_ms"]) / 1000.0,
        }
    )
    trials = trials[trials["reference"].notna()]
    trials["correct"] = (
        raw.loc[trials.index, "response"].str.split(";").str[0] == trials["reference"]
    )
    costs = item_costs(trials, source=task)
    first = trials.drop_duplicates("item_id").set_index("item_id").loc[costs["item_id"]]
    options = ", ".join(DIRECTIONS)

    def render(premises: list[str], question: str) -> str:
        lines = [f"Premise {i}: {_cardinal(p)}" for i, p in enumerate(premises, 1)]
        return "\n".join(lines) + (
            f"\nComplete the sentence: {question}\nChoose one of: {options}. "
            "Give the final answer (one direction) after 'Answer:'."
        )

    return costs.assign(
        task=task,
        prompt=[render(p, q) for p, q in zip(first["premises"], first["question"], strict=True)],
        answer=first["reference"].to_numpy(),
        feat_n_premises=2,
    )


def load(paths: dict[str, Path]) -> pd.DataFrame:
    """Items table for ``relational_3ps``, ``relational_4ps`` and ``relational_carddir``."""
    three = pd.read_csv(paths[FILES["3ps"]])
    four = pd.read_csv(paths[FILES["4ps"]])
    card = pd.read_csv(paths[FILES["carddir"]])
    return pd.concat(
        [
            _verify_items(three, TASKS["3ps"], "korrekt", three["rt_ms"]),
            _verify_items(four, TASKS["4ps"], "logicallycorrect", four["rt_ms"]),
            _carddir_items(card),
        ],
        ignore_index=True,
    )
