"""Traces made elsewhere → a handan traces file (``handan traces import``).

Records (JSONL, one JSON object a line, or parquet, one row a record) are read through a field
mapping; two formats are built in and any field can be renamed with ``fields``:

- ``deepseek`` — DeepSeek's API: ``reasoning_content`` (the reasoning) and ``content`` (the
  answer), at the top level, under ``message``, under ``choices[0].message`` (a chat completion)
  or under ``response.body.choices[0].message`` (a batch output line); ``finish_reason`` beside
  ``message`` when present.
- ``generic`` — ``reasoning`` and ``response``; or ``text``: the whole generation with the model's
  think delimiters in it (public R1 trace datasets), split at the first closer.

Both take the item from ``item_id`` (or ``prompt_id``, or ``custom_id``), the sample from
``sample`` (default: the order of the item's records in the file) and ``finish_reason`` (``stop``
/ ``length``; default ``stop``, and ``length`` for a reasoning without an answer).

Token ids are rebuilt with the model's tokenizer: its encoding of the item prompt (the spec's
template), then the opener unless the prompt already opens the span, the reasoning, the closer,
the answer and an EOS where the model stopped; so ``reasoning_tokens`` are a re-count
(``recorded.token_counts: re-encoded``), not the API's usage numbers. Records of items that are
not in the Items table are refused, their ids listed.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from experiments.errors import InputError, MissingInput

FORMATS = ("deepseek", "generic")
_ITEM_KEYS = ("item_id", "prompt_id", "custom_id")
#: what ``json.loads`` returns, by JSON's names (for the errors)
_JSON_TYPES = {
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def read_records(path: Path) -> list[tuple[str, dict]]:
    """``(where, record)`` for each record of a JSONL or parquet file; ``where`` names its line
    (JSONL) or row (parquet) for the errors."""
    path = Path(path)
    if not path.exists():
        raise MissingInput(f"{path} does not exist; pass a .jsonl or .parquet file of traces")
    if path.suffix == ".parquet":
        from experiments.data.user_table import read_user_table

        frame = read_user_table(path, what="traces file").frame
        return [(f"{path}, row {n}", r) for n, r in enumerate(frame.to_dict("records"), 1)]
    if path.suffix not in (".jsonl", ".json"):
        raise InputError(f"{path}: unknown format {path.suffix!r}; give .jsonl or .parquet")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as err:
        raise InputError(f"{path} is not UTF-8 text (byte {err.start}); save it as UTF-8") from err
    records = []
    for n, line in enumerate(lines, 1):
        if line.strip():
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise InputError(
                    f"{path} line {n} is not JSON ({err.msg}); give one object a line"
                ) from err
            if not isinstance(record, dict):
                raise InputError(
                    f"{path} line {n} is a JSON {_JSON_TYPES.get(type(record), 'value')}, not an "
                    'object; give one {"item_id": ..., ...} object a line'
                )
            records.append((f"{path} line {n}", record))
    return records


def _mapping(value, where: str, key: str) -> Mapping:
    if not isinstance(value, Mapping):
        raise InputError(f"{where}: {key} is {value!r}, not an object; give the API's own record")
    return value


def _message(record: Mapping, where: str) -> tuple[Mapping, Mapping]:
    """(the message holding reasoning_content/content, the object holding finish_reason)."""
    body = record
    if "response" in record:
        response = _mapping(record["response"], where, "response")
        body = _mapping(response.get("body", record), where, "response.body")
    if isinstance(body.get("choices"), list) and body["choices"]:
        choice = _mapping(body["choices"][0], where, "choices[0]")
        return _mapping(choice.get("message", {}), where, "choices[0].message"), choice
    if "message" in record:
        return _mapping(record["message"], where, "message"), record
    return record, record


def _missing(value) -> bool:
    """None, or the NaN a parquet column holds where a record lacks the field."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _text(value, where: str, key: str) -> str | None:
    if _missing(value):
        return None
    if isinstance(value, str):
        return value
    raise InputError(f"{where}: {key} is {value!r}, not text; give the generated text as a string")


def _sample(value, where: str) -> int | None:
    if _missing(value):
        return None
    number = isinstance(value, numbers.Real) and not isinstance(value, bool | np.bool_)
    if not number or not math.isfinite(value) or value % 1 != 0 or not 0 <= value < 2**31:
        raise InputError(
            f"{where}: sample {value!r} is not a sample number; give a whole number from 0 "
            "(or leave it out: the order of the item's records)"
        )
    return int(value)


def parse_record(
    record: Mapping, fmt: str, fields: Mapping[str, str], think_close: str | None, where: str
):
    """(item_id, sample or None, reasoning or None, response, finish_reason) of one record;
    ``where`` (its line or row) starts every error."""
    get = lambda obj, key: obj.get(fields.get(key, key))  # noqa: E731
    item = next((get(record, k) for k in _ITEM_KEYS if get(record, k) is not None), None)
    if item is None:
        raise InputError(
            f"{where}: the record has none of {list(_ITEM_KEYS)} (rename with --field)"
        )
    if not isinstance(item, str | numbers.Integral) or isinstance(item, bool | np.bool_):
        raise InputError(f"{where}: item id {item!r} is not a name; give the Items table's item_id")
    sample = _sample(get(record, "sample"), where)
    if fmt == "deepseek":
        message, holder = _message(record, where)
        reasoning = _text(get(message, "reasoning_content"), where, "reasoning_content")
        response = _text(get(message, "content"), where, "content")
        finish = get(holder, "finish_reason")
    elif fmt == "generic":
        reasoning = _text(get(record, "reasoning"), where, "reasoning")
        response = _text(get(record, "response"), where, "response")
        finish = get(record, "finish_reason")
        text = _text(get(record, "text"), where, "text")
        if reasoning is None and text is not None:
            if think_close is not None and think_close in text:
                reasoning, response = text.split(think_close, 1)
            else:
                reasoning, response = text, ""
    else:
        raise InputError(f"unknown import format {fmt!r}; use one of {FORMATS}")
    response = response or ""
    if finish is None:
        finish = "length" if reasoning is not None and not response else "stop"
    if finish not in ("stop", "length"):
        raise InputError(f"{where}: finish_reason {finish!r}; use 'stop' or 'length'")
    return str(item), sample, reasoning, response, finish


def generated_ids(tokenizer, think, prompt_ids, reasoning, response, finish, eos_id) -> list[int]:
    """The ids the model would have generated for this reasoning and answer."""
    from hooks.accounting import prompt_opens_think

    def enc(text: str) -> list[int]:
        return tokenizer.encode(text, add_special_tokens=False) if text else []

    if not think.enabled or reasoning is None:
        gen = enc((reasoning or "") + response)
    else:
        opener = [] if prompt_opens_think(prompt_ids, think) else [think.open_id]
        closed = finish == "stop" or bool(response)
        gen = opener + enc(reasoning) + ([think.close_id] + enc(response) if closed else [])
    return gen + ([eos_id] if finish == "stop" else [])


def import_traces(
    path: str | Path,
    tokenizer,
    spec,
    items: pd.DataFrame,
    *,
    out: str | Path,
    fmt: str = "deepseek",
    fields: Mapping[str, str] | None = None,
    checker=None,
) -> pd.DataFrame:
    """Write the traces in ``path`` as model ``spec``'s traces file ``out``; returns the table."""
    from experiments.contracts import TRACE_COLUMNS, validate_items
    from experiments.generation import tracefile
    from experiments.generation.rows import tokenizer_fingerprint, trace_row
    from experiments.generation.traces import prompt_format, weights
    from hooks.accounting import think_tokens
    from hooks.engines.hf_loop import encode_prompts, eos_token_ids

    if checker is None:
        from experiments.data import get_checker as checker
    path, fields = Path(path), dict(fields or {})
    if fmt not in FORMATS:
        raise InputError(f"unknown import format {fmt!r}; use one of {FORMATS}")
    items = validate_items(items)
    records = [parse_record(r, fmt, fields, spec.think_close, w) for w, r in read_records(path)]
    if not records:
        raise InputError(f"{path} holds no records")
    known = set(items["item_id"])
    unknown = sorted({r[0] for r in records} - known)
    if unknown:
        raise InputError(
            f"{path}: {len(unknown)} item(s) not in the Items table: {unknown[:20]}; import "
            "with the Items table the traces were made from"
        )
    think = think_tokens(tokenizer, spec.think_open, spec.think_close, model=spec.name)
    eos_ids = sorted(set(eos_token_ids(tokenizer)) | set(spec.stop_token_ids))
    by_id = items.set_index("item_id", drop=False)
    needed = sorted({r[0] for r in records})
    encoded = encode_prompts(tokenizer, by_id.loc[needed, "prompt"].tolist(), **prompt_format(spec))
    prompts = dict(zip(needed, encoded))
    rows, counts = [], {}
    for item_id, sample, reasoning, response, finish in records:
        sample = counts.get(item_id, 0) if sample is None else sample
        counts[item_id] = max(counts.get(item_id, 0), sample) + 1
        gen = generated_ids(
            tokenizer, think, prompts[item_id], reasoning, response, finish, eos_ids[0]
        )
        rows.append(
            trace_row(
                model=spec.name,
                item=by_id.loc[item_id],
                sample=sample,
                prompt_ids=prompts[item_id],
                generated_ids=gen,
                finish_reason=finish,
                think=think,
                eos_ids=eos_ids,
                tokenizer=tokenizer,
                checker=checker,
            )
        )
    table = pd.DataFrame(rows)
    twice = table[table.duplicated(["item_id", "sample"], keep=False)]
    if len(twice):
        raise InputError(
            f"{path}: (item_id, sample) {twice[['item_id', 'sample']].values.tolist()[:5]} "
            "appear more than once"
        )
    meta = dict(
        model=spec.name,
        engine="imported",
        imported=dict(file=path.name, sha256=hashlib.sha256(path.read_bytes()).hexdigest()),
        format=fmt,
        fields=fields,
        **prompt_format(spec),
        **weights(spec),
        shard=None,
        recorded=dict(
            token_counts=f"re-encoded with {spec.name}'s tokenizer",
            tokenizer=tokenizer_fingerprint(tokenizer),
            n_records=len(records),
        ),
    )
    out = Path(out)
    if out.exists():
        tracefile.check_meta(out, tracefile.read_traces_meta(out), meta)
    tracefile.write_traces(table, out, meta)
    return table[list(TRACE_COLUMNS)].astype(TRACE_COLUMNS)
