"""The human-data datasets: where each file lives upstream (repo @ pinned commit, path, sha256),
its licence, the tasks it yields and how trials become item costs."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import pandas as pd

from experiments.data import binary, binary_files, game24, relational, syllogisms
from experiments.errors import InputError

RAW_URL = "https://raw.githubusercontent.com/{repo}/{commit}/"


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset. ``files`` maps a path inside ``repo`` (as upstream names it) to its sha256;
    ``n_items`` the item count per task; ``aggregation`` how trials become item costs;
    ``loader`` turns ``{path: local file}`` into an Items table. ``base_url`` is the raw-file URL
    of the repo at ``commit`` (a folder URL ending in ``/``)."""

    name: str
    repo: str
    commit: str
    files: dict[str, str]
    licence: str
    citation: str
    n_items: dict[str, int]
    aggregation: str
    loader: Callable[[dict[str, Path]], pd.DataFrame] = field(repr=False)
    base_url: str = ""

    def __post_init__(self) -> None:
        if not self.base_url:
            object.__setattr__(self, "base_url", RAW_URL.format(repo=self.repo, commit=self.commit))

    @property
    def tasks(self) -> list[str]:
        """The task names the dataset's items carry."""
        return list(self.n_items)

    def url(self, path: str) -> str:
        """Download URL of ``path`` (percent-encoded: spaces, backslashes, quotes)."""
        return self.base_url + quote(path, safe="/")


_CCOBRA = ("CognitiveComputationLab/ccobra", "fa6e8aa8d0b8cde486b0c6f108d87d7c3e64a40b")

DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in [
        DatasetSpec(
            name="game24",
            repo="princeton-nlp/tree-of-thought-llm",
            commit="ab400345c5ea39d28ea6d7d3be0e417b11113c87",
            files={
                "src/tot/data/24/24.csv": "b9f12b3e36d987a3c714c4cef17d89a137d7c59da26532fcfb93b4821d8111b5"
            },
            licence="MIT (repo); data scraped from 4nums.com",
            citation="Yao et al. 2023, Tree of Thoughts; human data from 4nums.com",
            n_items={"game24": 1362},
            aggregation=game24.__doc__ or "",
            loader=game24.load,
        ),
        DatasetSpec(
            name="binary",
            repo="sungjae-cho/arithmetic-experiment-cli",
            commit="cdda53452031777b27fbb52004d5a814f45bf8c2",
            files={
                f"{binary_files.RESULT_DIR}/{name}": sha
                for name, sha in binary_files.SHA256.items()
            },
            licence="MIT",
            citation="Cho, Lim, Hickey & Zhang, CogSci/ICCM 2019",
            n_items={"binary_add": 256, "binary_sub": 136},
            aggregation=binary.__doc__ or "",
            loader=binary.load,
        ),
        DatasetSpec(
            name="relational",
            repo=_CCOBRA[0],
            commit=_CCOBRA[1],
            files={
                relational.FILES[
                    "3ps"
                ]: "6e2d751b8eae81823799977da363847ed65862b4b4d0bd8b18acb4cb06d2ee81",
                relational.FILES[
                    "4ps"
                ]: "7297a91cf884d1dcb06c1433767976b0e9818695691df77896c189dffd7c4758",
                relational.FILES[
                    "carddir"
                ]: "c917882e0263eb28927f4ae2475ee55de3b86b0bef650641118603772ccdacdc",
            },
            licence="MIT",
            citation="CCOBRA relational benchmarks (3ps, 4ps, Ragni 2018 cardinal directions)",
            n_items={"relational_3ps": 16, "relational_4ps": 46, "relational_carddir": 56},
            aggregation=relational.__doc__ or "",
            loader=relational.load,
        ),
        DatasetSpec(
            name="syllogisms",
            repo="CognitiveComputationLab/cogmods",
            commit="ac73fb60387aad37d3b3fb823f9b2c205c6cb458",
            files={
                syllogisms.FILE: "0ccc8ef19a2b3e0ba809e9f71421c6c88f4c59d8da99284f3a5e241bd39fe185"
            },
            licence="MIT",
            citation="cogmods syllogistic/student_projects/2021_wiens (syllogism verification)",
            n_items={"syllogisms": 15},
            aggregation=syllogisms.__doc__ or "",
            loader=syllogisms.load,
        ),
    ]
}


def get_dataset(name: str) -> DatasetSpec:
    """The spec called ``name``; the error lists the known names."""
    if name not in DATASETS:
        raise InputError(
            f"unknown dataset {name!r}; choose one of {sorted(DATASETS)} "
            "(or load your own Items file with load_items_file)"
        )
    return DATASETS[name]
