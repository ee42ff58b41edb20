"""Bring your own trials: one row per participant x item -> an Items table, aggregated by the
rule of the registered datasets (:func:`experiments.data.aggregate.aggregate_trials`, the same
function) plus an ``exclusions`` table of what was left out and why.

Reading a trial (columns named by a :class:`~experiments.data.trial_mapping.TrialMapping`):
- ``item_id``: the ``item`` columns' values, joined by ``|`` when there are several;
- RT: ``rt`` in ``rt_unit`` (``ms`` or ``s``), converted to seconds; an empty RT is allowed (the
  trial still counts for accuracy), anything else must be a positive number;
- correct: the boolean-like ``correct`` column (true/false, 1/0, yes/no, t/f, y/n,
  correct/incorrect; any case), or ``response`` equal to the answer as normalised text (case and
  runs of whitespace ignored); an empty correctness or response is "no response": the trial is
  left out of accuracy and RT;
- task, prompt and answer per row, from a column or a template (``"… {col} …"``), and ``feature``
  columns -> ``feat_<col>``. Within an item, the task and the features must agree; the prompt and
  answer must too unless ``prompt_from: first`` names the row to use: the first by participant
  (numeric order when every participant id is a number), then by position in the file.

A median RT under 50 ms or over 10 minutes after the unit conversion warns with the number (a
wrong ``rt_unit`` is the usual cause). Errors name the row (line, in a CSV) and the column.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.contracts import ITEM_COLUMNS, validate_items
from experiments.data import aggregate
from experiments.data.trial_mapping import TrialMapping
from experiments.data.user_table import FALSE_WORDS, TRUE_WORDS, UserTable, read_user_table
from experiments.errors import InputError

PLAUSIBLE_MEDIAN_S = (0.05, 600.0)
EXCLUSION_COLUMNS = ["reason", "trials", "items", "effect", "examples"]
_SHOWN = 5  # items named in an error or in ``examples``


@dataclass(frozen=True)
class ImportedTrials:
    """An Items table (the Items contract) and ``exclusions`` (one row per reason: ``reason,
    trials, items, effect, examples``; every reason is listed, with 0 where nothing happened)."""

    items: pd.DataFrame
    exclusions: pd.DataFrame


def import_trials(
    trials: pd.DataFrame, mapping: TrialMapping | dict, *, source: str = "trials"
) -> ImportedTrials:
    """The Items table of a trial DataFrame (see the module docstring); errors name the row
    (1-based position) and the column. ``mapping``: a TrialMapping or a dict of its keys."""
    table = UserTable(trials.reset_index(drop=True), source)
    return _import(table, TrialMapping.model_validate(mapping))


def import_trials_file(path: str | Path, mapping: TrialMapping | dict) -> ImportedTrials:
    """:func:`import_trials` of a CSV / TSV / parquet file; errors name the line (CSV, header =
    line 1) or row (parquet)."""
    return _import(read_user_table(path, what="trial file"), TrialMapping.model_validate(mapping))


def _empty(values: pd.Series) -> pd.Series:
    return values.isna() | (values.astype(str).str.strip() == "")


def _check_columns(table: UserTable, mapping: TrialMapping) -> None:
    have = list(table.frame.columns)
    for option, columns in mapping.columns().items():
        for col in columns:
            if col not in have:
                raise InputError(
                    f"{table.source}: column {col!r} (--{option.replace('_', '-')}) is not in the "
                    f"file; its columns are: {', '.join(map(str, have))}"
                )


def _text(table: UserTable, col: str, option: str) -> pd.Series:
    values = table.frame[col]
    empty = _empty(values)
    if empty.any():
        i = int(empty.to_numpy().argmax())
        raise InputError(
            f"{table.where(i)}, column {col!r}: empty value; every trial needs its "
            f"--{option.replace('_', '-')}"
        )
    return values.astype(str)


def _render(table: UserTable, template: str, option: str, mapping: TrialMapping) -> pd.Series:
    fields = mapping.columns()[option]
    values = {col: _text(table, col, option) for col in fields}
    return pd.Series(
        [
            template.format_map(dict(zip(fields, row, strict=True)))
            for row in zip(*values.values(), strict=True)
        ],
        index=table.frame.index,
        dtype=object,
    )


def _rt_seconds(table: UserTable, mapping: TrialMapping) -> pd.Series:
    raw = table.frame[mapping.rt]
    values = pd.to_numeric(raw, errors="coerce").astype("float64")
    bad = ~_empty(raw) & ~aggregate.valid_rt(values)
    if bad.any():
        i = int(bad.to_numpy().argmax())
        raise InputError(
            f"{table.where(i)}, column {mapping.rt!r}: {raw.iloc[i]!r} is not a positive number "
            f"(an RT in {mapping.rt_unit}); leave it empty where no RT was recorded"
        )
    seconds = values / 1000.0 if mapping.rt_unit == "ms" else values
    median = float(seconds.median())
    low, high = PLAUSIBLE_MEDIAN_S
    if seconds.notna().any() and not low <= median <= high:
        warnings.warn(
            f"{table.source}: the median RT is {median:.4g} s with --rt-unit {mapping.rt_unit} "
            f"(column {mapping.rt!r}), outside {low * 1000:.0f} ms to {high / 60:.0f} minutes; "
            "check --rt-unit",
            UserWarning,
            stacklevel=3,
        )
    return seconds


def _correct(table: UserTable, mapping: TrialMapping, answer: pd.Series) -> pd.Series:
    """True / False per trial, NaN where there is no response."""
    if mapping.correct is not None:
        raw = table.frame[mapping.correct]
        text = raw.astype(str).str.strip().str.lower()
        known = text.isin(TRUE_WORDS | FALSE_WORDS)
        bad = ~_empty(raw) & ~known
        if bad.any():
            i = int(bad.to_numpy().argmax())
            raise InputError(
                f"{table.where(i)}, column {mapping.correct!r}: {raw.iloc[i]!r} is not "
                "boolean-like; use true/false, 1/0 or yes/no (empty = no response)"
            )
        return text.isin(TRUE_WORDS).where(~_empty(raw))
    raw = table.frame[mapping.response]

    def norm(values: pd.Series) -> pd.Series:
        return values.astype(str).str.split().str.join(" ").str.casefold()

    return (norm(raw) == norm(answer)).where(~_empty(raw))


def _participant_order(participants: pd.Series) -> np.ndarray:
    numeric = pd.to_numeric(participants, errors="coerce")
    key = numeric if numeric.notna().all() else participants
    return np.lexsort((np.arange(len(key)), key.to_numpy()))


def _differ(frame: pd.DataFrame, col: str) -> list[str]:
    """Items whose rows disagree on ``col``, in file order."""
    counts = frame.groupby("item_id", sort=False)[col].nunique(dropna=False)
    return counts.index[counts > 1].tolist()


def _per_item(frame: pd.DataFrame, mapping: TrialMapping, source: str) -> tuple[pd.DataFrame, list]:
    """One row per item (the first row in participant order) and the items whose wording differs;
    refuses items that disagree on what must be an item's own."""
    for col, what, fix in [
        ("task", "task", "add the task column to --item"),
        *(
            (f"feat_{f}", f"feature {f!r}", "a feature must be a property of the item")
            for f in mapping.feature
        ),
    ]:
        bad = _differ(frame, col)
        if bad:
            raise InputError(
                f"{source}: the {what} differs within item(s) {bad[:_SHOWN]} ({len(bad)} in all); "
                f"{fix}"
            )
    worded = list(dict.fromkeys(_differ(frame, "prompt") + _differ(frame, "answer")))
    if worded and mapping.prompt_from is None:
        item = worded[0]
        shown = frame.loc[frame["item_id"] == item, "prompt"].unique()[:2].tolist()
        raise InputError(
            f"{source}: the prompt or answer differs within item(s) {worded[:_SHOWN]} "
            f"({len(worded)} in all; e.g. {item!r}: {shown}); give --prompt-from first to use the "
            "first participant's row, or add the varying column to --item"
        )
    first = frame.drop_duplicates("item_id").set_index("item_id")
    return first, worded


def _exclusions(frame, status, costs, worded) -> pd.DataFrame:
    def row(reason, trials, items, effect):
        return {
            "reason": reason,
            "trials": int(trials),
            "items": len(items),
            "effect": effect,
            "examples": "; ".join(map(str, list(items)[:_SHOWN])),
        }

    answered = frame[frame["correct"].notna()]
    no_response = frame[frame["correct"].isna()]
    rows = [
        row(
            "no response",
            len(no_response),
            no_response["item_id"].unique(),
            "empty correctness/response: left out of accuracy and RT",
        )
    ]
    for reason, effect in [
        (aggregate.INCORRECT, "counts for accuracy; left out of the RT statistics"),
        (aggregate.NO_RT, "correct but the RT is empty; left out of the RT statistics"),
        (
            aggregate.TRIMMED,
            "log RT outside the 99.73% prediction interval of the item's other correct log RTs; "
            "left out of the RT statistics",
        ),
    ]:
        hit = status == reason
        rows.append(row(reason, hit.sum(), answered.loc[hit, "item_id"].unique(), effect))
    no_rt = costs.loc[costs["human_rt_s"].isna(), "item_id"]
    rows.append(row("no correct trial with an RT", 0, no_rt, "item kept with human_rt_s empty"))
    rows.append(
        row(
            "wording differs within the item",
            0,
            worded,
            "prompt/answer of the first participant's row used (--prompt-from first)",
        )
    )
    return pd.DataFrame(rows, columns=EXCLUSION_COLUMNS)


def _import(table: UserTable, mapping: TrialMapping) -> ImportedTrials:
    _check_columns(table, mapping)
    if len(table.frame) == 0:
        raise InputError(f"{table.source} has no trials (no rows under the header)")
    items = [_text(table, col, "item") for col in mapping.item]
    frame = pd.DataFrame(
        {
            "item_id": items[0].str.cat(items[1:], sep="|") if len(items) > 1 else items[0],
            "participant": _text(table, mapping.participant, "participant"),
        }
    )
    frame["task"] = (
        mapping.task if mapping.task is not None else _text(table, mapping.task_col, "task_col")
    )
    for key in ("prompt", "answer"):
        column, template = getattr(mapping, key), getattr(mapping, f"{key}_template")
        frame[key] = (
            _text(table, column, key)
            if column is not None
            else _render(table, template, f"{key}_template", mapping)
        )
    for feature in mapping.feature:
        frame[f"feat_{feature}"] = table.frame[feature]
    frame["rt_s"] = _rt_seconds(table, mapping)
    frame["correct"] = _correct(table, mapping, frame["answer"])
    frame = frame.iloc[_participant_order(frame["participant"])]
    first, worded = _per_item(frame, mapping, table.source)
    answered = frame[frame["correct"].notna()].astype({"correct": bool})
    costs, status = aggregate.aggregate_trials(answered, source=table.source)
    order = pd.unique(frame.sort_index()["item_id"])  # items in file order
    costs = costs.set_index("item_id").reindex(order)
    costs["n_human"] = costs["n_human"].fillna(0)
    costs = costs.rename_axis("item_id").reset_index()
    out = costs.join(first.drop(columns=["participant", "rt_s", "correct"]), on="item_id")
    features = [c for c in out.columns if c.startswith("feat_")]
    for col in features:
        numbers = pd.to_numeric(out[col], errors="coerce")
        if not (numbers.isna() & out[col].notna()).any():
            out[col] = numbers
    out = validate_items(out[list(ITEM_COLUMNS) + features], source=table.source)
    return ImportedTrials(out, _exclusions(frame, status, costs, worded))
