"""Syllogism verification with response times (cogmods ``2021_wiens``: 107 participants x 15 items).

Item = (premises, conclusion to verify); reference ``true``/``false`` from the data's ``truth``
column (logical validity of the conclusion). Premise ``All;X;Y`` is rendered "All X are Y",
``Some;X;Y`` "Some X are Y", ``No;X;Y`` "No X are Y", ``Some not;X;Y`` "Some X are not Y", with
the terms exactly as in the data. Human cost follows :mod:`experiments.tasks.aggregate`, with a
trial correct when its response equals ``truth`` and RT = ``response_time`` (ms) / 1000.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from experiments.tasks.aggregate import item_costs
from experiments.tasks.relational import verify_prompt

TASK = "syllogisms"
FILE = "syllogistic/student_projects/2021_wiens/data/data.csv"
_TEMPLATES = {"All": "All {} are {}.", "Some": "Some {} are {}.", "No": "No {} are {}.",
              "Some not": "Some {} are not {}."}


def sentence(statement: str) -> str:
    """English for one CCOBRA syllogistic statement such as ``Some not;animal;cold-blooded``."""
    quantifier, x, y = statement.split(";")
    if quantifier not in _TEMPLATES:
        raise ValueError(f"unknown quantifier {quantifier!r} in {statement!r}; expected {sorted(_TEMPLATES)}")
    return _TEMPLATES[quantifier].format(x, y)


def load(paths: dict[str, Path]) -> pd.DataFrame:
    """Items table of the 15 verification syllogisms (see the module docstring)."""
    raw = pd.read_csv(paths[FILE])
    truth = raw["truth"].astype(str).str.lower().eq("true")
    trials = pd.DataFrame({
        "item_id": TASK + "/" + raw["task"] + "|" + raw["choices"],
        "premises": raw["task"].str.split("/"),
        "conclusion": raw["choices"],
        "reference": truth,
        "rt_s": raw["response_time"] / 1000.0,
        "correct": raw["response"].astype(str).str.lower().eq("true") == truth,
    })
    costs = item_costs(trials, source=TASK)
    first = trials.drop_duplicates("item_id").set_index("item_id").loc[costs["item_id"]]
    intro = "Assume the premises are true."
    return costs.assign(
        task=TASK,
        prompt=[verify_prompt([sentence(p) for p in ps], sentence(c), intro=intro)
                for ps, c in zip(first["premises"], first["conclusion"], strict=True)],
        answer=np.where(first["reference"], "true", "false"),
    )
