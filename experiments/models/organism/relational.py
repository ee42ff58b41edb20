"""The organism's relational tasks, written exactly as the CCOBRA items people solved, with worked
solutions; plus generated items of the same kinds (other letters and names, other orders).

- ``relational_3ps`` / ``relational_4ps``: left/right premises over 3 / 4 objects and a statement
  to verify ("necessarily true?"). A relation is ``(side, x, y)``: ``("Left", "A", "B")`` = "A is
  to the left of B" — the human data's ``Left;A;B``. The canonical items are the structures people
  saw: 3ps = both forms of each premise x 4 statements (16, all of the human items); 4ps = the
  chain A<B<C<D in all 6 premise orders, all-Left or all-Right, x 4 statements (48), plus the
  human set ``Right;B;A/Right;D;C/Right;B;C`` (whose order of A, C and D is not fixed) x the same
  4 statements — 52, a superset of the 46 human items.
- ``relational_carddir``: two compass premises ("The X is d1 of the Y", "The Y is d2 of the Z")
  and where Z lies from X. Canonical items: the 56 non-opposite direction pairs (the human item
  ids), with object names from the human name pool in a fixed rotation; people saw other names
  for the same structure, so only the structure is the item.

Worked solution of a verify item — the mental-model procedure (premises integrated into rows, in
the order given, then the statement read off): per premise, its relation as ``X<Y`` (a
"right of" premise is flipped: ``B>A so A<B``) and the rows after integrating it (``row: ABC``;
objects not yet related to each other stand in separate rows, ``row: AB CD``); then the statement
(flipped the same way) and ``A<C: yes`` / ``no``. A premise *needs work* unless it starts the first
row or extends a row at its right end, or when it is a "right of" premise (a flip); the short
solution writes only those premise lines, the final row, the statement when it is flipped, and
the verdict. The verdict is "yes" exactly when the statement follows in every order that
satisfies the premises (path in the rows' adjacencies, equal to
``experiments.data.relational.entailed``; tested).

Worked solution of a carddir item: the two premise vectors on the grid (``1: east = +1,+0``), the
sum per axis (``x: +1+1=+2``), the direction of the sum (``sum: east``) and its opposite
(``flip: west``, the answer). The short solution keeps only the axis lines with a non-zero term
and the flip.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from experiments.data.relational import (
    DIRECTIONS,
    TASKS,
    carddir_reference,
    entailed,
    verify_prompt,
)

Relation = tuple[str, str, str]

VERIFY_INTRO = "Objects are placed in a row from left to right."
CARDDIR_OPTIONS = ", ".join(DIRECTIONS)
HUMAN_NAMES = (
    "bank",
    "bar",
    "bridge",
    "church",
    "gym",
    "hotel",
    "mall",
    "market",
    "museum",
    "school",
    "station",
    "store",
)
OTHER_NAMES = (
    "airport",
    "bakery",
    "castle",
    "farm",
    "garden",
    "harbor",
    "library",
    "park",
    "temple",
    "theater",
    "tower",
    "zoo",
)
STATEMENTS_3PS = (("Left", "A", "C"), ("Left", "C", "A"), ("Right", "A", "C"), ("Right", "C", "A"))
STATEMENTS_4PS = (("Left", "A", "D"), ("Left", "D", "A"), ("Right", "A", "B"), ("Right", "D", "A"))
INDETERMINATE_4PS = (("Right", "B", "A"), ("Right", "D", "C"), ("Right", "B", "C"))


def sentence(relation: Relation) -> str:
    side, x, y = relation
    return f"{x} is to the {side.lower()} of {y}."


def code(relation: Relation) -> str:
    """The human data's notation, ``Left;A;B``."""
    return ";".join(relation)


def verify_item(task: str, premises: list[Relation], statement: Relation) -> dict[str, object]:
    """One verify item: id (the human data's), prompt, answer and worked solutions."""
    holds = entailed([code(p) for p in premises], code(statement))
    full = verify_steps(premises, statement, full=True)
    short = verify_steps(premises, statement, full=False)
    return {
        "item_id": f"{task}/{'/'.join(code(p) for p in premises)}|{code(statement)}",
        "task": task,
        "prompt": verify_prompt(
            [sentence(p) for p in premises], sentence(statement), intro=VERIFY_INTRO
        ),
        "answer": "true" if holds else "false",
        "steps_full": full,
        "steps_short": short,
    }


def _ordered(relation: Relation) -> tuple[str, str]:
    side, x, y = relation
    return (x, y) if side == "Left" else (y, x)


def _relation_line(relation: Relation) -> str:
    side, x, y = relation
    return f"{x}<{y}" if side == "Left" else f"{x}>{y} so {y}<{x}"


def _integrate(rows: list[list[str]], a: str, b: str) -> bool:
    """Put ``a < b`` into the rows in place; True when that needed work (see the module doc)."""
    where = {o: i for i in reversed(range(len(rows))) for o in rows[i]}  # first row holding o
    ra, rb = where.get(a), where.get(b)
    if ra is None and rb is None:
        rows.append([a, b])
        return len(rows) > 1
    if rb is None and rows[ra][-1] == a:
        rows[ra].append(b)
        return False
    if ra is None and rows[rb][0] == b:
        rows[rb].insert(0, a)
    elif ra is not None and rb is not None and ra != rb and rows[ra][-1] == a and rows[rb][0] == b:
        rows[ra].extend(rows.pop(rb))
    else:  # a relation that does not fit a row's ends is kept as a row of its own
        rows.append([a, b])
    return True


def _follows(rows: list[list[str]], a: str, b: str) -> bool:
    """A path from ``a`` to ``b`` through the rows' adjacencies."""
    edges = {(r[i], r[i + 1]) for r in rows for i in range(len(r) - 1)}
    seen, frontier = {a}, [a]
    while frontier:
        node = frontier.pop()
        for x, y in edges:
            if x == node and y not in seen:
                seen.add(y)
                frontier.append(y)
    return b in seen


def verify_steps(premises: list[Relation], statement: Relation, *, full: bool) -> list[str]:
    """The lines of the full or short worked solution of a verify item."""
    rows: list[list[str]] = []
    lines = []
    for k, premise in enumerate(premises, 1):
        work = _integrate(rows, *_ordered(premise))
        if full or work or premise[0] == "Right":
            lines.append(f"{k}: {_relation_line(premise)}")
        if full:
            lines.append("row: " + " ".join("".join(r) for r in rows))
    if not full:
        lines.append("row: " + " ".join("".join(r) for r in rows))
    if full or statement[0] == "Right":
        lines.append(f"Q: {_relation_line(statement)}")
    a, b = _ordered(statement)
    return [*lines, f"{a}<{b}: {'yes' if _follows(rows, a, b) else 'no'}"]


def _vector(v: tuple[int, int]) -> str:
    return ",".join(f"{c:+d}" for c in v)


def _compass(v) -> str:
    return {vec: name for name, vec in DIRECTIONS.items()}[tuple(int(np.sign(c)) for c in v)]


def carddir_steps(first: str, second: str, *, full: bool) -> list[str]:
    """The lines of the full or short worked solution of a carddir item."""
    v1, v2 = DIRECTIONS[first], DIRECTIONS[second]
    total = (v1[0] + v2[0], v1[1] + v2[1])
    lines = [f"1: {first} = {_vector(v1)}", f"2: {second} = {_vector(v2)}"] if full else []
    for axis, i in (("x", 0), ("y", 1)):
        if full or v1[i] or v2[i]:
            lines.append(f"{axis}: {v1[i]:+d}{v2[i]:+d}={total[i]:+d}")
    if full:
        lines.append(f"sum: {_compass(total)}")
    return [*lines, f"flip: {_compass((-total[0], -total[1]))}"]


def carddir_prompt(first: str, second: str, names: tuple[str, str, str]) -> str:
    x, y, z = names
    return (
        f"Premise 1: The {x} is {first} of the {y}.\n"
        f"Premise 2: The {y} is {second} of the {z}.\n"
        f"Complete the sentence: The {z} is _____ of the {x}.\n"
        f"Choose one of: {CARDDIR_OPTIONS}. Give the final answer (one direction) after 'Answer:'."
    )


def carddir_item(first: str, second: str, names: tuple[str, str, str], *, canonical: bool):
    """One carddir item; canonical ones carry the human item id (the direction pair)."""
    task = TASKS["carddir"]
    suffix = "" if canonical else "/" + ",".join(names)
    return {
        "item_id": f"{task}/{first},{second}{suffix}",
        "task": task,
        "prompt": carddir_prompt(first, second, names),
        "answer": carddir_reference(first, second),
        "steps_full": carddir_steps(first, second, full=True),
        "steps_short": carddir_steps(first, second, full=False),
    }


def _direction_pairs() -> list[tuple[str, str]]:
    return [(a, b) for a in DIRECTIONS for b in DIRECTIONS if carddir_reference(a, b) is not None]


def canonical_items() -> list[dict[str, object]]:
    """The structures people saw (module doc): 16 + 52 + 56 items."""
    p1 = (("Left", "A", "B"), ("Right", "B", "A"))
    p2 = (("Left", "B", "C"), ("Right", "C", "B"))
    rows = [verify_item(TASKS["3ps"], [a, b], s) for a in p1 for b in p2 for s in STATEMENTS_3PS]
    chains = (
        [("Left", "A", "B"), ("Left", "B", "C"), ("Left", "C", "D")],
        [("Right", "B", "A"), ("Right", "C", "B"), ("Right", "D", "C")],
    )
    for chain in chains:
        for order in itertools.permutations(chain):
            rows += [verify_item(TASKS["4ps"], list(order), s) for s in STATEMENTS_4PS]
    rows += [verify_item(TASKS["4ps"], list(INDETERMINATE_4PS), s) for s in STATEMENTS_4PS]
    for i, (a, b) in enumerate(_direction_pairs()):
        names = tuple(HUMAN_NAMES[(i + k) % len(HUMAN_NAMES)] for k in range(3))
        rows.append(carddir_item(a, b, names, canonical=True))
    return rows


def _random_verify(task: str, n_objects: int, rng: np.random.Generator) -> dict[str, object]:
    """Random letters in a random hidden order; the premises a chain (half the time) or a random
    tree over that order, shuffled, each in a random form; a random statement."""
    letters = [str(c) for c in rng.choice(list("ABCDEFGHIJKLMNOPQRSTUVWXYZ"), n_objects, False)]
    chain = rng.random() < 0.5
    pairs = [
        (letters[i - 1] if chain else letters[int(rng.integers(i))], letters[i])
        for i in range(1, n_objects)
    ]
    premises = [
        ("Left", a, b) if rng.random() < 0.5 else ("Right", b, a)
        for a, b in (pairs[i] for i in rng.permutation(len(pairs)))
    ]
    x, y = (str(o) for o in rng.choice(letters, 2, replace=False))
    return verify_item(task, premises, (("Left", "Right")[int(rng.integers(2))], x, y))


def generated_items(n_per_task: int, seed: int) -> list[dict[str, object]]:
    """``n_per_task`` random items of each relational task (duplicates possible; callers dedup)."""
    rng = np.random.default_rng(seed)
    pairs, names = _direction_pairs(), HUMAN_NAMES + OTHER_NAMES
    rows = []
    for _ in range(n_per_task):
        rows.append(_random_verify(TASKS["3ps"], 3, rng))
        rows.append(_random_verify(TASKS["4ps"], 4, rng))
        a, b = pairs[int(rng.integers(len(pairs)))]
        picked = tuple(str(n) for n in rng.choice(names, 3, replace=False))
        rows.append(carddir_item(a, b, picked, canonical=False))
    return rows


def relational_items(n_generated: int = 0, seed: int = 0) -> pd.DataFrame:
    """The canonical items, then ``n_generated`` generated ones per task (ids unique)."""
    rows = canonical_items() + generated_items(n_generated, seed)
    return pd.DataFrame(rows).drop_duplicates("item_id", ignore_index=True)
