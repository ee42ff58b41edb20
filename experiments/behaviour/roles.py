"""Which models are compared: teacher -> student <- baseline triples.

From a PAIRS.yaml::

    triples:
      - {teacher: organism-teacher, student: organism-student, baseline: organism-baseline}

or from model roles (``{model: "teacher" | "student" | "baseline"}``) and optional families
(``{model: family}``): one triple when there is exactly one model of each role; with families,
each student is matched to the baseline of its family and to the teacher of its family (or the
only teacher).

A triple may lack its baseline (``{teacher, student}``): then it gives the teacher-student
comparisons and no transfer rows.
"""

from __future__ import annotations

from pathlib import Path

from experiments.errors import InputError

ROLES = ("teacher", "student", "baseline")


def load_pairs(path: str | Path) -> list[dict]:
    """Read the triples of a PAIRS.yaml file."""
    from experiments.data.user_table import read_yaml_mapping

    data = read_yaml_mapping(path, what="pairs file", keys="`triples:` to a list of triples")
    if not isinstance(data.get("triples"), list) or not data["triples"] or set(data) != {"triples"}:
        raise InputError(
            f"{path}: expected a mapping with only a non-empty `triples:` list of "
            "{teacher: ..., student: ..., baseline: ...}"
        )
    return check_triples(data["triples"], source=str(path))


def check_triples(triples: list[dict], *, source: str = "triples") -> list[dict]:
    """Every triple must name a teacher and a student, and may name a baseline, as strings."""
    out = []
    for i, t in enumerate(triples):
        named = isinstance(t, dict) and all(isinstance(t.get(r), str) for r in ROLES[:2])
        if not named or not isinstance(t.get("baseline", ""), str) or set(t) - set(ROLES):
            raise InputError(
                f"{source}: triple {i} is {t!r}; each triple needs string keys teacher and "
                "student, and optionally baseline"
            )
        out.append({r: t[r] for r in ROLES if r in t})
    return out


def _unique(models: list[str], what: str) -> str:
    if len(models) != 1:
        raise InputError(
            f"cannot pair models by role: {what} matches {models or 'no model'}; name the "
            "triples in a PAIRS.yaml (`--pairs` of `handan behaviour`, `pairs:` in a run config)"
        )
    return models[0]


def triples_from_roles(roles: dict[str, str], families: dict[str, str] | None = None) -> list[dict]:
    """Triples from model roles (and families when there are several students). Without
    families, a run with no baseline gives one triple without it."""
    bad = {m: r for m, r in roles.items() if r not in ROLES}
    if bad:
        raise InputError(f"unknown role(s) {bad}; a role is one of {list(ROLES)}")
    by_role = {r: sorted(m for m, mr in roles.items() if mr == r) for r in ROLES}
    if not families:
        named = [r for r in ROLES if r != "baseline" or by_role[r]]  # the baseline is optional
        return [{r: _unique(by_role[r], f"role {r!r}") for r in named}]
    triples = []
    for student in by_role["student"]:
        fam = families.get(student)
        baseline = _unique(
            [m for m in by_role["baseline"] if families.get(m) == fam],
            f"baseline of family {fam!r} (student {student})",
        )
        teachers = [m for m in by_role["teacher"] if families.get(m) == fam] or by_role["teacher"]
        teacher = _unique(teachers, f"teacher for student {student}")
        triples.append({"teacher": teacher, "student": student, "baseline": baseline})
    if not triples:
        raise InputError("no model has role 'student'; give roles with --roles model=student")
    return triples


def pair_lists(triples: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """Deduplicated model pairs per analysis: ``compare`` (teacher-student, student-baseline,
    teacher-baseline), ``transfer`` (student, baseline), ``inflation`` (student, teacher) and
    (student, baseline); pairs with the baseline only for triples that name one."""

    def pairs(*roles: tuple[str, str]) -> list[tuple[str, str]]:
        return list(dict.fromkeys((t[a], t[b]) for t in triples for a, b in roles if b in t))

    return {
        "compare": pairs(("teacher", "student"), ("student", "baseline"), ("teacher", "baseline")),
        "transfer": pairs(("student", "baseline")),
        "inflation": pairs(("student", "teacher"), ("student", "baseline")),
    }
