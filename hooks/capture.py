"""Capture activations at reasoning landmarks while a batch generates.

Positions (labels in the activation store):
- ``prompt_end``: the last prompt token (where the model decides how long to think);
- ``think_open``: the think opener (in the prompt for templates ending ``<think>\\n``, else the
  generated opener);
- ``think_close``: the first closer of the span;
- ``answer_end``: the last token before EOS (absent when the budget cut the trace);
- ``step_{k}``: every k-th generated token (generated indices k-1, 2k-1, ...), one vector each.

Every generated token except an EOS has activations: ``generate_batch`` feeds the last token of
a row the budget cut once more for its observer.

Everything is selected on one device (the one ``Capture`` is given: the model's input device)
with masks and `torch.where`, so capture adds no host synchronisation per step; the chosen rows
leave the device once, when the batch ends. Under a ``device_map`` each layer's output lives on
its own GPU: the recorder moves every kept row to that one device before anything is combined
(``Capture`` sets the recorder's ``device``), and the tokens and masks the loop passes in are
moved there too, so no operation ever mixes devices.
A position that never occurs in a trace is returned as an absent row (``token_index == -1``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from experiments.errors import InputError
from hooks.accounting import ThinkTokens, prompt_opens_think

FIXED_POSITIONS = ("prompt_end", "think_open", "think_close", "answer_end")
_STEP = re.compile(r"^step_(\d+)$")


def parse_positions(positions: Sequence[str]) -> tuple[list[str], list[int]]:
    """Split position labels into fixed labels and step intervals; bad labels fail with the list."""
    if len(set(positions)) != len(positions):
        raise InputError(f"capture positions {list(positions)} repeat a label; give each once")
    fixed, steps = [], []
    for label in positions:
        match = _STEP.match(label)
        if label in FIXED_POSITIONS:
            fixed.append(label)
        elif match and int(match.group(1)) > 0:
            steps.append(int(match.group(1)))
        else:
            raise InputError(
                f"unknown capture position {label!r}; use {', '.join(FIXED_POSITIONS)} or step_K (K > 0)"
            )
    if not fixed and not steps:
        raise InputError("no capture positions given; e.g. --positions prompt_end")
    return fixed, steps


@dataclass
class Captured:
    """Rows of one batch: ``entries`` (batch_row, position, token_index; -1 = absent) in the order
    of each site's tensor in ``vectors`` (present entries only; no key when none is present)."""

    entries: list[tuple[int, str, int]]
    vectors: dict[str, Tensor]


class Capture:
    """Observer for ``hooks.engines.hf_loop.generate_batch``, reading a live ``hooks.Recorder``.

    Build it just before the batch's generation: it sets the recorder's prefill positions and its
    ``device`` (where every recorded row is moved: ``device``, whatever layer produced it)."""

    def __init__(
        self,
        recorder,
        sites: Sequence[str],
        positions: Sequence[str],
        prompt_ids: Sequence[Sequence[int]],
        think: ThinkTokens,
        device,
    ) -> None:
        self.rec, self.sites = recorder, list(sites)
        self.device = torch.device(device)
        self.rec.device = self.device
        self.fixed, self.step_ks = parse_positions(positions)
        self.think = think
        self.plen = torch.tensor([len(p) for p in prompt_ids], device=device)
        width = max(len(p) for p in prompt_ids)
        in_prompt = [prompt_opens_think(p, think) for p in prompt_ids]
        open_at = [
            len(p) - 1 - p[::-1].index(think.open_id) if o else len(p) - 1
            for p, o in zip(prompt_ids, in_prompt)
        ]
        # prefill keeps two columns per row: the last prompt token and the prompt's opener; built
        # on the host, the recorder moves them to whichever device each layer runs on
        self.rec.positions = torch.tensor(
            [[width - 1, width - len(p) + o] for p, o in zip(prompt_ids, open_at)]
        )
        self.opened = torch.tensor(in_prompt, device=device)
        self.open_tok = torch.tensor(open_at, device=device)
        self.closed = torch.zeros_like(self.opened)
        self.close_tok = torch.full_like(self.plen, -1)
        self.last_tok = self.plen - 1
        self.steps: list[tuple[int, int, Tensor, dict[str, Tensor]]] = []

    def on_forward(self, step: int, fed: Tensor, active: Tensor) -> None:
        # every tensor combined below is on self.device (each .to is a no-op when it already is)
        acts = {s: self.rec.activations[s].to(self.device) for s in self.sites}
        fed, active = fed.to(self.device), active.to(self.device)
        if step == 0:
            self.prompt_end = {s: a[:, 0] for s, a in acts.items()}
            self.open_vec = {s: a[:, 1] for s, a in acts.items()}
            self.close_vec = {s: torch.zeros_like(a[:, 0]) for s, a in acts.items()}
            self.last_vec = dict(self.prompt_end)
            self.rec.positions = None
            return
        j = step - 1  # generated index of the token fed at this step
        tok, vec, here = fed[:, 0], {s: a[:, -1] for s, a in acts.items()}, self.plen + j
        if self.think.enabled:
            new_open = (tok == self.think.open_id) & active & ~self.opened
            new_close = (tok == self.think.close_id) & active & self.opened & ~self.closed
            for s in self.sites:
                self.open_vec[s] = torch.where(new_open[:, None], vec[s], self.open_vec[s])
                self.close_vec[s] = torch.where(new_close[:, None], vec[s], self.close_vec[s])
            self.open_tok = torch.where(new_open, here, self.open_tok)
            self.close_tok = torch.where(new_close, here, self.close_tok)
            self.opened, self.closed = self.opened | new_open, self.closed | new_close
        for k in self.step_ks:
            if (j + 1) % k == 0:
                self.steps.append((k, j, active.clone(), vec))
        for s in self.sites:
            self.last_vec[s] = torch.where(active[:, None], vec[s], self.last_vec[s])
        self.last_tok = torch.where(active, here, self.last_tok)

    def collect(
        self, generated: Sequence[Sequence[int]], eos_ids: Sequence[int], dtype: torch.dtype
    ) -> Captured:
        """Entries and CPU vectors for the batch once generation has ended."""
        batch = len(generated)
        eos = set(eos_ids)
        stopped = [bool(g) and g[-1] in eos for g in generated]
        plen = self.plen.tolist()
        blocks: list[tuple[str, list[int], list[int], dict[str, Tensor]]] = []
        want = set(self.fixed)
        if "prompt_end" in want:
            blocks.append(
                ("prompt_end", list(range(batch)), [p - 1 for p in plen], self.prompt_end)
            )
        if "think_open" in want:
            blocks.append(
                ("think_open", _rows(self.opened.tolist()), self.open_tok.tolist(), self.open_vec)
            )
        if "think_close" in want:
            blocks.append(
                (
                    "think_close",
                    _rows(self.closed.tolist()),
                    self.close_tok.tolist(),
                    self.close_vec,
                )
            )
        if "answer_end" in want:
            blocks.append(("answer_end", _rows(stopped), self.last_tok.tolist(), self.last_vec))
        entries: list[tuple[int, str, int]] = []
        pieces: dict[str, list[Tensor]] = {s: [] for s in self.sites}
        for label, rows, tok, vecs in blocks:
            self._add(entries, pieces, label, rows, tok, vecs, batch)
        for k in self.step_ks:
            label, seen = f"step_{k}", set()
            for _, j, active, vecs in (x for x in self.steps if x[0] == k):
                rows = _rows(active.tolist())
                seen.update(rows)
                self._add(entries, pieces, label, rows, [p + j for p in plen], vecs, 0)
            entries.extend((i, label, -1) for i in range(batch) if i not in seen)
        vectors = {s: torch.cat(v).to("cpu", dtype) for s, v in pieces.items() if v}
        return Captured(entries, vectors)

    def _add(self, entries, pieces, label, rows, tok, vecs, batch) -> None:
        present = set(rows)
        entries.extend((i, label, tok[i]) for i in rows)
        entries.extend((i, label, -1) for i in range(batch) if i not in present)
        if rows:
            index = torch.tensor(rows, device=self.plen.device)
            for s in self.sites:
                pieces[s].append(vecs[s].index_select(0, index))


def _rows(mask: Sequence[bool]) -> list[int]:
    return [i for i, m in enumerate(mask) if m]


def landmarks(
    prompt_ids: Sequence[int],
    generated_ids: Sequence[int],
    think: ThinkTokens,
    eos_ids: Sequence[int],
    positions: Sequence[str],
) -> list[tuple[str, int]]:
    """(label, token_index) of every position of one finished sequence, read from its ids alone,
    by the rules :class:`Capture` applies while generating: ``-1`` marks an absent position, and
    each ``step_K`` gives every index it covers (or one absent entry). Token indices count from
    the first prompt token; EOS tokens (a final id in ``eos_ids``) have no position."""
    fixed, step_ks = parse_positions(positions)
    prompt, gen = list(prompt_ids), list(generated_ids)
    stopped = bool(gen) and gen[-1] in set(eos_ids)
    body = gen[:-1] if stopped else gen
    plen = len(prompt)
    opened_at = close_at = -1
    if think.enabled and prompt_opens_think(prompt, think):
        opened_at = plen - 1 - prompt[::-1].index(think.open_id)
    for j, tok in enumerate(body if think.enabled else ()):
        if opened_at < 0 and tok == think.open_id:
            opened_at = plen + j
        elif opened_at >= 0 and close_at < 0 and tok == think.close_id:
            close_at = plen + j
            break
    found = {
        "prompt_end": plen - 1,
        "think_open": opened_at,
        "think_close": close_at,
        "answer_end": plen + len(body) - 1 if stopped else -1,
    }
    out = [(label, found[label]) for label in FIXED_POSITIONS if label in fixed]
    for k in step_ks:
        steps = [(f"step_{k}", plen + j) for j in range(k - 1, len(body), k)]
        out.extend(steps or [(f"step_{k}", -1)])
    return out
