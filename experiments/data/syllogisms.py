"""Syllogism verification with response times (cogmods ``2021_wiens``: 107 participants x 15 items).

Item = (premises, conclusion to verify); reference ``true``/``false`` from the data's ``truth``
column, which follows the study's design labels (``type_of_syllogism`` ``*-valid`` /
``*-invalid``). Premise ``All;X;Y`` is rendered "All X are Y",
``Some;X;Y`` "Some X are Y", ``No;X;Y`` "No X are Y", ``Some not;X;Y`` "Some X are not Y", with
the terms exactly as in the data. Human cost follows :mod:`experiments.data.aggregate`, with a
trial correct when its response equals ``truth`` and RT = ``response_time`` (ms) / 1000.
Each participant counts once per item: participant 106 has the flower item twice (sequences 11
and 275, identical responses and RTs; no ant item), so a repeated (participant, item) trial is
dropped, keeping the earliest sequence, with a ``UserWarning`` that counts them.

The key is disputed on 6 of the 15 items, and no single reading of the quantifiers fits all 15
(checked by enumerating small models). Keyed "true" but invalid in modern logic (no existential
import); valid if every term is non-empty:
  - All cream are object with lots of odour / No object with lots of odour are metallic object
    => Some metallic object are not cream
  - All pilot are driver / No autism are pilot => Some driver are not autism
  - All sailing champion are swimm well / No swimm well are paralytic
    => Some paralytic are not sailing champion
Keyed "false" but valid if every term is non-empty (invalid in modern logic):
  - All men are Y gene / No Y gene are ova => Some men are not ova
  - No object with wheal are boat / All vehicle are object with wheal => Some vehicle are not boat
Keyed "true" but invalid under both readings as written ("cold-blooded animal" in the premise,
"cold-blooded" in the conclusion; valid only with existential import and the two terms equated):
  - All dolphin are animal / No cold-blooded animal are dolphin => Some animal are not cold-blooded
The key is kept as published: human correctness (hence the correct-trial RTs) is defined by the
same key, so people and models are graded alike; human accuracy on these items partly measures
agreement with the study's reading, not only reasoning.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.data.aggregate import item_costs
from experiments.data.relational import verify_prompt
from experiments.errors import InputError

TASK = "syllogisms"
FILE = "syllogistic/student_projects/2021_wiens/data/data.csv"
_TEMPLATES = {
    "All": "All {} are {}.",
    "Some": "Some {} are {}.",
    "No": "No {} are {}.",
    "Some not": "Some {} are not {}.",
}


def sentence(statement: str) -> str:
    """English for one CCOBRA syllogistic statement such as ``Some not;animal;cold-blooded``."""
    quantifier, x, y = statement.split(";")
    if quantifier not in _TEMPLATES:
        raise InputError(
            f"unknown quantifier {quantifier!r} in {statement!r}; expected {sorted(_TEMPLATES)}"
        )
    return _TEMPLATES[quantifier].format(x, y)


def load(paths: dict[str, Path]) -> pd.DataFrame:
    """Items table of the 15 verification syllogisms (see the module docstring)."""
    raw = pd.read_csv(paths[FILE]).sort_values("sequence", kind="stable")
    repeated = raw.duplicated(["id", "task", "choices"])
    if repeated.any():
        warnings.warn(
            f"{TASK}: dropped {int(repeated.sum())} repeated (participant, item) trial(s), "
            "keeping each participant's earliest sequence",
            UserWarning,
            stacklevel=2,
        )
        raw = raw[~repeated]
    truth = raw["truth"].astype(str).str.lower().eq("true")
    trials = pd.DataFrame(
        {
            "item_id": TASK + "/" + raw["task"] + "|" + raw["choices"],
            "premises": raw["task"].str.split("/"),
            "conclusion": raw["choices"],
            "reference": truth,
            "rt_s": raw["response_time"] / 1000.0,
            "correct": raw["response"].astype(str).str.lower().eq("true") == truth,
        }
    )
    costs = item_costs(trials, source=TASK)
    first = trials.drop_duplicates("item_id").set_index("item_id").loc[costs["item_id"]]
    intro = "Assume the premises are true."
    return costs.assign(
        task=TASK,
        prompt=[
            verify_prompt([sentence(p) for p in ps], sentence(c), intro=intro)
            for ps, c in zip(first["premises"], first["conclusion"], strict=True)
        ],
        answer=np.where(first["reference"], "true", "false"),
    )
