"""Where trained organism checkpoints live.

A training run (``train_all``) writes one triple into a folder: ``teacher/``, ``teacher_sft/``,
``baseline/``, ``student/`` (``save_pretrained`` folders: model as fp16 safetensors + tokenizer),
``training.json``, ``curves.csv``, ``curves.png``. The shipped checkpoints hold one such folder
per seed, ``checkpoints/seed{N}/``, without ``teacher_sft/`` (the pre-RL teacher: 1.7 MB a
seed, used by no command; its evaluation stays in ``training.json``). A registry source ``organism:ROLE`` names seed 0's model,
``organism:ROLE-sN`` seed N's (``experiments.models.specs``: ``organism-teacher``,
``organism-teacher-s1``, ...).
"""

from __future__ import annotations

import re
from pathlib import Path

from experiments.errors import InputError, MissingInput

ROLES = ("teacher", "baseline", "student", "teacher_sft")
SHIPPED = Path(__file__).resolve().parent / "checkpoints"
_NAME = re.compile(r"(?P<role>[a-z_]+?)(?:-s(?P<seed>\d+))?")


def seed_dir(seed: int, root: Path | None = None) -> Path:
    """The folder of one seed's triple under ``root`` (default: the shipped checkpoints)."""
    return Path(root if root is not None else SHIPPED) / f"seed{seed}"


def checkpoint_dir(role: str, root: Path | None = None) -> Path:
    """The folder of a trained checkpoint. ``role`` is ``teacher``, ``baseline``, ``student`` or
    ``teacher_sft``, with ``-sN`` for seed N; without ``root`` it is looked up among the shipped
    checkpoints (no suffix = seed 0), with ``root`` in that folder (one ``train_all`` output, no
    suffix)."""
    match = _NAME.fullmatch(role)
    if match is None or match["role"] not in ROLES or (root is not None and match["seed"]):
        raise InputError(
            f"unknown organism checkpoint {role!r}; use one of {list(ROLES)}"
            + (", with -sN for seed N (e.g. teacher-s1)" if root is None else "")
        )
    seed = int(match["seed"] or 0)
    folder = Path(root) if root is not None else seed_dir(seed)
    path = folder / match["role"]
    if not (path / "config.json").exists():
        raise MissingInput(
            f"no organism checkpoint at {path}; train it with `handan organism train"
            + (f" --out {root}`" if root is not None else f" --seed {seed}`")
        )
    return path
