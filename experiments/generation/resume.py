"""Resuming a recording whose activation store holds samples that its traces file lacks.

Each batch goes to the store first and to the traces file second, so a kill between the two
leaves the store one append ahead of the traces. That append's vectors were captured from a
generation whose traces were never written. Regenerating it reproduces the same tokens only if
generation is deterministic: the per-(item, sample) seeds make it so for the same batch on the
same machine and kernels, but not across GPUs, kernel choices or batch compositions, and a
vector whose trace differs (another length, another ``think_close``) would be silently paired
with the wrong trace. So that last append is dropped and recomputed together with its traces:
one batch of work, and the store stays the one an uninterrupted run writes.

More than that (the traces file is new, was deleted or replaced by another one) is refused before
anything is generated: the store's vectors were computed from traces that no longer exist, and
skipping those samples would leave vectors without traces while regenerating them would pair
old vectors with new traces. The refusal names the fix: restore the traces file, or delete the
store (or record into another folder) so that both are recomputed.
"""

from __future__ import annotations

from pathlib import Path

from experiments.errors import SettingsMismatch
from hooks.store import ActivationStore
from hooks.store_index import drop_part, parts, read_part


def drop_unmatched(store: ActivationStore, traced: set[tuple[str, int]], traces: Path) -> bool:
    """Make ``store`` (open for writing) hold no (item, sample) pair missing from ``traced`` (the
    keys of the traces file ``traces``): drop its last append when that covers them all (returns
    True: reopen the store), else refuse. False when nothing was unmatched."""
    unmatched = store.completed() - traced
    if not unmatched:
        return False
    last = parts(store.path)[-1:]
    rows = read_part(last[0]) if last else None
    if rows is not None and unmatched <= set(zip(rows["item_id"], rows["sample"].astype(int))):
        drop_part(store.path, last[0])  # the append a kill left ahead of its traces
        return True
    raise SettingsMismatch(
        f"{store.path} holds activations of {len(unmatched)} (item, sample) pairs whose traces "
        f"are not in {traces} (e.g. {sorted(unmatched)[:3]}): that file is new, was deleted or "
        "replaced, and regenerated traces need not match the stored vectors; restore "
        f"{traces}, or delete {store.path} (or record into another --out folder) to recompute both"
    )
