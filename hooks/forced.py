"""Teacher-forced capture: activations at reasoning landmarks from stored token ids.

One forward over prompt + generated ids computes, at every position, what the generating forward
computed there (causal attention: no later token changes an earlier position), so the landmarks
of :func:`hooks.capture.landmarks` can be read after generation, from any engine's ids or from
imported traces. Sequences are sorted by the length they need (the last needed position + 1:
everything after it is cut), batched, right-padded (pads come after every real token, so they are
never attended to and no mask is needed), and run with ``logits_to_keep=1`` so no full-vocabulary
logits are made; the recorder keeps only the needed positions before anything leaves the device.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from hooks.accounting import ThinkTokens
from hooks.capture import Captured, landmarks


@dataclass(frozen=True)
class ForcedSequence:
    """One stored trace: its prompt ids, its generated ids (a final EOS included when it
    stopped) and the ids that count as EOS for it."""

    prompt_ids: Sequence[int]
    generated_ids: Sequence[int]
    eos_ids: Sequence[int]


def _plan(seqs: Sequence[ForcedSequence], think: ThinkTokens, positions: Sequence[str]):
    marks = [landmarks(s.prompt_ids, s.generated_ids, think, s.eos_ids, positions) for s in seqs]
    need = [max(t for _, t in m) + 1 for m in marks]  # prompt_end is always present: >= 1
    return marks, need


def forced_batches(
    seqs: Sequence[ForcedSequence],
    think: ThinkTokens,
    positions: Sequence[str],
    batch_size: int,
) -> list[list[int]]:
    """Indices of ``seqs`` per batch: sorted by needed length, longest first (so a batch that
    does not fit in memory fails at the start, not after hours)."""
    _, need = _plan(seqs, think, positions)
    order = sorted(range(len(seqs)), key=lambda i: -need[i])
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


@torch.inference_mode()
def forced_capture(
    model,
    recorder,
    seqs: Sequence[ForcedSequence],
    think: ThinkTokens,
    positions: Sequence[str],
    dtype: torch.dtype,
    pad_id: int = 0,
) -> Captured:
    """The ``Captured`` rows of ``seqs`` (one batch; ``recorder`` a live ``hooks.Recorder`` on
    ``model``): entries (batch row, position, token index), vectors per site on the CPU in
    ``dtype`` — the same as ``hooks.capture.Capture`` collects while generating."""
    marks, need = _plan(seqs, think, positions)
    device = next(model.parameters()).device
    width = max(need)
    ids = torch.full((len(seqs), width), pad_id, dtype=torch.long)
    for r, s in enumerate(seqs):
        row = (list(s.prompt_ids) + list(s.generated_ids))[: need[r]]
        ids[r, : len(row)] = torch.tensor(row, dtype=torch.long)
    columns = [sorted({t for _, t in m if t >= 0}) for m in marks]
    gather = torch.zeros((len(seqs), max(map(len, columns))), dtype=torch.long)
    for r, cols in enumerate(columns):
        gather[r, : len(cols)] = torch.tensor(cols, dtype=torch.long)
    recorder.positions = gather.to(device)
    try:
        model(input_ids=ids.to(device), use_cache=False, **_no_logits(model))
    finally:
        recorder.positions = None
    acts = {site: recorder.activations[site] for site in recorder.sites}
    entries, picks = [], []
    for r, m in enumerate(marks):
        where = {t: c for c, t in enumerate(columns[r])}
        for label, tok in m:
            entries.append((r, label, tok))
            if tok >= 0:
                picks.append((r, where[tok]))
    if not picks:
        return Captured(entries, {})
    rows = torch.tensor([p[0] for p in picks], device=device)
    cols = torch.tensor([p[1] for p in picks], device=device)
    vectors = {site: a[rows, cols].to("cpu", dtype) for site, a in acts.items()}
    return Captured(entries, vectors)


def _no_logits(model) -> dict:
    """``logits_to_keep=1`` where the model takes it (transformers' causal LMs do)."""
    params = inspect.signature(model.forward).parameters
    return {"logits_to_keep": 1} if "logits_to_keep" in params else {}


def iter_forced(
    model,
    recorder,
    seqs: Sequence[ForcedSequence],
    think: ThinkTokens,
    positions: Sequence[str],
    dtype: torch.dtype,
    batch_size: int,
    pad_id: int = 0,
) -> Iterator[tuple[list[int], Captured]]:
    """``(indices into seqs, Captured)`` per batch, batches as :func:`forced_batches` plans."""
    for batch in forced_batches(seqs, think, positions, batch_size):
        yield (
            batch,
            forced_capture(
                model, recorder, [seqs[i] for i in batch], think, positions, dtype, pad_id
            ),
        )
