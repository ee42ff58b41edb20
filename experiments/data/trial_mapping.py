"""How a user's trial file maps onto handan's trials: the columns ``handan data import`` reads.

The same keys serve the command-line options (``--rt-unit`` is ``rt_unit``), a ``--mapping``
YAML file versioned with the study, and :func:`experiments.data.trials.import_trials`::

    item: [problem]            # one or more columns that identify an item
    participant: subject
    rt: rt_ms
    rt_unit: ms                # ms | s
    response: resp             # correct when equal to the answer (normalised text) ...
    answer: solution           # ... or `correct: acc` (a boolean-like column)
    task: my_task              # or task_col: COLUMN
    prompt_template: "What is {problem}? Give the final answer after 'Answer:'."
    feature: [n_steps]         # optional, -> feat_n_steps
    prompt_from: first         # optional: wording of the first participant's row
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from experiments.data.user_table import read_yaml_mapping


def _one_of(mapping: TrialMapping, what: str, *keys: str) -> None:
    given = [k for k in keys if getattr(mapping, k) is not None]
    if len(given) != 1:
        options = " or ".join(f"`{k}` (--{k.replace('_', '-')})" for k in keys)
        found = f"got {', '.join(given)}" if given else "got none"
        raise ValueError(f"{what}: give exactly one of {options}; {found}")


class TrialMapping(BaseModel):
    """Which column of a trial file holds what (see the module docstring for the keys)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    item: list[str] = Field(min_length=1)
    participant: str
    rt: str
    rt_unit: Literal["ms", "s"]
    correct: str | None = None
    response: str | None = None
    answer: str | None = None
    answer_template: str | None = None
    task: str | None = None
    task_col: str | None = None
    prompt: str | None = None
    prompt_template: str | None = None
    feature: list[str] = []
    prompt_from: Literal["first"] | None = None

    @field_validator("item", "feature", mode="before")
    @classmethod
    def _listify(cls, value: object) -> object:
        return [value] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _exclusive(self) -> TrialMapping:
        _one_of(self, "correctness", "correct", "response")
        _one_of(self, "task", "task", "task_col")
        _one_of(self, "prompt", "prompt", "prompt_template")
        _one_of(self, "answer", "answer", "answer_template")
        for key in ("prompt_template", "answer_template"):
            template = getattr(self, key)
            if template is not None and not template_fields(template):
                raise ValueError(f"{key} {template!r} names no column; write {{COLUMN}} in it")
            if template is not None:
                _renders(key, template)
        return self

    def columns(self) -> dict[str, list[str]]:
        """``{option: columns it reads}`` (templates: the columns their ``{…}`` fields name)."""
        used = {
            "item": self.item,
            "participant": [self.participant],
            "rt": [self.rt],
            "feature": self.feature,
        }
        for key in ("correct", "response", "answer", "task_col", "prompt"):
            if getattr(self, key) is not None:
                used[key] = [getattr(self, key)]
        for key in ("prompt_template", "answer_template"):
            if getattr(self, key) is not None:
                used[key] = template_fields(getattr(self, key))
        return used


def _renders(key: str, template: str) -> None:
    """Refuse a template that cannot be filled with text (every column is read as text)."""
    try:
        template.format_map({name: "x" for name in template_fields(template)})
    except (KeyError, IndexError, ValueError, AttributeError, TypeError) as err:
        raise ValueError(
            f"{key} {template!r} cannot be filled ({type(err).__name__}: {err}); write plain "
            "{COLUMN} fields, without conversions, formats or attributes"
        ) from err


def template_fields(template: str) -> list[str]:
    """The column names a ``"… {col} …"`` template refers to, in order, each once."""
    try:
        names = [name for _, name, _, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as err:
        raise ValueError(
            f"template {template!r}: {err} (write {{COLUMN}}; double a literal brace)"
        ) from err
    return list(dict.fromkeys(names))


def load_mapping(path: str | Path) -> dict:
    """The keys of a ``--mapping`` YAML file (validated later, with the command-line options)."""
    return read_yaml_mapping(
        path, what="mapping file", keys="keys to column names (e.g. `rt: rt_ms`)"
    )
