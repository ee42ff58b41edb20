"""Which models are compared: teacher -> student <- baseline triples.

From a PAIRS.yaml::

    triples:
      - {teacher: organism-teacher, student: organism-student, baseline: organism-baseline}

or from model roles (``{model: "teacher" | "student" | "baseline"}``) and optional families
(``{model: family}``): one triple when there is exactly one model of each role; with families,
each student is matched to the baseline of its family and to the teacher of its family (or the
only teacher).
"""

from __future__ import annotations

from pathlib import Path

ROLES = ("teacher", "student", "baseline")


def load_pairs(path: str | Path) -> list[dict]:
    """Read the triples of a PAIRS.yaml file."""
    import yaml

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist; pass a PAIRS.yaml with a `triples:` list")
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict) or not isinstance(data.get("triples"), list):
        # bad input file content: ValueError like every other input error (friendly_errors)
        raise ValueError(  # noqa: TRY004
            f"{path}: expected a mapping with a `triples:` list of "
            "{teacher: ..., student: ..., baseline: ...}"
        )
    return check_triples(data["triples"], source=str(path))


def check_triples(triples: list[dict], *, source: str = "triples") -> list[dict]:
    """Every triple must name a teacher, a student and a baseline as strings."""
    out = []
    for i, t in enumerate(triples):
        if not isinstance(t, dict) or any(not isinstance(t.get(r), str) for r in ROLES):
            raise ValueError(
                f"{source}: triple {i} is {t!r}; each triple needs string keys {list(ROLES)}"
            )
        out.append({r: t[r] for r in ROLES})
    return out


def _unique(models: list[str], what: str) -> str:
    if len(models) != 1:
        raise ValueError(
            f"cannot pair models by role: {what} matches {models or 'no model'}; "
            "pass a PAIRS.yaml (--pairs) naming the triples"
        )
    return models[0]


def triples_from_roles(roles: dict[str, str], families: dict[str, str] | None = None) -> list[dict]:
    """Triples from model roles (and families when there are several students)."""
    bad = {m: r for m, r in roles.items() if r not in ROLES}
    if bad:
        raise ValueError(f"unknown role(s) {bad}; a role is one of {list(ROLES)}")
    by_role = {r: sorted(m for m, mr in roles.items() if mr == r) for r in ROLES}
    if not families:
        return [{r: _unique(by_role[r], f"role {r!r}") for r in ROLES}]
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
        raise ValueError("no model has role 'student'; give roles with --roles model=student")
    return triples


def pair_lists(triples: list[dict]) -> dict[str, list[tuple[str, str]]]:
    """Deduplicated model pairs per analysis: ``compare`` (teacher-student, student-baseline,
    teacher-baseline), ``transfer`` (student, baseline), ``inflation`` (student, teacher) and
    (student, baseline)."""

    def dedupe(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
        return list(dict.fromkeys(pairs))

    return {
        "compare": dedupe(
            [
                p
                for t in triples
                for p in (
                    (t["teacher"], t["student"]),
                    (t["student"], t["baseline"]),
                    (t["teacher"], t["baseline"]),
                )
            ]
        ),
        "transfer": dedupe([(t["student"], t["baseline"]) for t in triples]),
        "inflation": dedupe(
            [
                p
                for t in triples
                for p in ((t["student"], t["teacher"]), (t["student"], t["baseline"]))
            ]
        ),
    }
