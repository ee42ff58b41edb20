"""Train one organism triple: teacher (SFT warm start, then RL), baseline (SFT), student (distilled).

Stages, each seeded with ``seed * 1000 + stage number`` (``torch.manual_seed`` for initialisation
and sampling, a ``torch.Generator`` for batch order), on ``task.training_items()`` (the same items
for every seed). In the two SFT corpora of worked solutions (stages 1 and 3) every binary item
appears ``BINARY_WEIGHT`` = 2 times: a pilot of stage 1 (900 steps, one item each) left binary at
55-75% correct while the relational tasks reached 95-100%; both corpora get the same weights.

1. ``teacher_sft`` — a fresh teacher-shaped model, SFT on the teacher warm-start corpus
   (``corpus.py``: every item's full and short worked solution in think delimiters). Saved as
   ``teacher_sft`` (the pre-RL reference).
2. ``teacher_rl`` — REINFORCE with a group-mean baseline (``rl.py``), reward = correct -
   ``token_cost`` x reasoning tokens. Saved as ``teacher``.
3. ``baseline_sft`` — a fresh baseline-shaped model, SFT on the baseline corpus (the same
   solutions as plain text before ``Answer:``; the decision and its reasons: ``corpus.py``), with
   the optimiser settings of stage 1. Saved as ``baseline``.
4. ``distill`` — the teacher samples ``distill_samples`` responses per item at
   ``distill_temperature``; the correct ones are kept (rejection sampling, as for the R1-Distill
   data; the ``fast`` test budget keeps every trace, since its barely trained teacher is rarely
   correct).
5. ``student_sft`` — a copy of the baseline, SFT on those traces. Saved as ``student``.

At the end of each stage the weights are rounded to fp16 (then trained on, evaluated and saved
as such: the shipped fp16 safetensors are exactly the evaluated models). Each checkpoint is
evaluated greedily on the canonical items (``task.organism_items``; ``evaluate.py``). Training
runs on ``threads`` CPU threads (set for the call and restored after); the same seed on the same
device and thread count gives the same weights. ``out_dir`` receives the folders of
``layout.py``; ``training.json`` holds the seed, budget, settings, wall seconds per stage, the
number of distillation traces, parameter counts and every evaluation.
"""

from __future__ import annotations

import copy
import json
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import pandas as pd
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from experiments.errors import InputError
from experiments.models.organism.corpus import baseline_corpus, teacher_corpus
from experiments.models.organism.curves import CurveLog, plot_curves
from experiments.models.organism.evaluate import EVAL_MAX_NEW_TOKENS, evaluate
from experiments.models.organism.layout import seed_dir
from experiments.models.organism.models import build_model
from experiments.models.organism.rl import RLConfig, train_rl
from experiments.models.organism.sampling import generate, score
from experiments.models.organism.sft import SFTConfig, train_sft
from experiments.models.organism.task import organism_items, training_items
from experiments.models.organism.tokenizer import build_tokenizer

BINARY_WEIGHT = 2


@dataclass(frozen=True)
class Budget:
    """Settings of every stage. ``items`` = how many items (spread over the five tasks) each
    stage uses and the evaluations score (None = all)."""

    teacher_sft: SFTConfig
    rl: RLConfig
    student_sft: SFTConfig
    distill_samples: int
    distill_temperature: float
    distill_keep_incorrect: bool = False
    items: int | None = None


BUDGETS = {
    "full": Budget(
        teacher_sft=SFTConfig(steps=1200, batch_size=32, lr=1.5e-3, warmup=20),
        rl=RLConfig(
            steps=40,
            prompts_per_step=16,
            group_size=8,
            lr=1e-4,
            token_cost=0.004,
            max_new_tokens=112,
        ),
        student_sft=SFTConfig(steps=800, batch_size=32, lr=1.5e-3, warmup=20),
        distill_samples=2,
        distill_temperature=0.6,
    ),
    "fast": Budget(
        teacher_sft=SFTConfig(steps=30, batch_size=16, lr=3e-3, warmup=5),
        rl=RLConfig(
            steps=2, prompts_per_step=4, group_size=4, lr=5e-5, token_cost=0.004, max_new_tokens=48
        ),
        student_sft=SFTConfig(steps=15, batch_size=16, lr=3e-3, warmup=5),
        distill_samples=1,
        distill_temperature=0.6,
        distill_keep_incorrect=True,
        items=20,
    ),
}


def _spread(items: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """All items, or ``n`` of them: the same number from every task, evenly spaced within it."""
    if n is None or n >= len(items):
        return items
    groups = items.groupby("task", sort=False)
    per = max(1, n // groups.ngroups)
    return pd.concat(
        g.iloc[torch.linspace(0, len(g) - 1, min(per, len(g))).round().long().tolist()]
        for _, g in groups
    )


def _round_fp16(model: PreTrainedModel) -> None:
    """Round the weights to fp16 precision in place (they stay fp32 tensors)."""
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    copy.deepcopy(model).cpu().half().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def train_all(
    out_dir: Path | None = None,
    *,
    seed: int = 0,
    budget: str = "full",
    progress: bool = True,
    device: str = "cpu",
    threads: int = 1,
) -> dict[str, Path]:
    """Train one triple (and the pre-RL teacher) into ``out_dir`` (default: the shipped
    ``checkpoints/seed{seed}``); returns role -> checkpoint folder. ``device`` is where the
    models train (``cpu``, or ``cuda`` where there is a GPU; the same seed gives the same weights
    on the same device, not across devices); checkpoints are saved from CPU memory."""
    if budget not in BUDGETS:
        raise InputError(f"unknown budget {budget!r}; use one of {sorted(BUDGETS)}")
    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _train(
            Path(out_dir or seed_dir(seed)), seed, BUDGETS[budget], budget, progress, device
        )
    finally:
        torch.set_num_threads(previous)


def _train(
    out_dir: Path, seed: int, plan: Budget, budget: str, progress: bool, device: str
) -> dict[str, Path]:
    from tqdm.auto import tqdm

    tokenizer = build_tokenizer()
    pool, canonical = _spread(training_items(), plan.items), _spread(organism_items(), plan.items)
    binary = pool[pool["task"].str.startswith("binary")]
    weighted = pd.concat([pool, *[binary] * (BINARY_WEIGHT - 1)])  # the SFT corpora's items
    log, walls, evals, paths, models = CurveLog(), {}, {}, {}, {}

    @contextmanager
    def stage(number: int, name: str, steps: int | None):
        """Seed the stage, time it into ``walls``, show its progress; yields (generator, log)."""
        torch.manual_seed(seed * 1000 + number)  # every device's generator
        start = time.perf_counter()
        with tqdm(total=steps, desc=name, disable=not progress, leave=True) as bar:
            yield torch.Generator().manual_seed(seed * 1000 + number), log.stage(name, bar.update)
        walls[name] = time.perf_counter() - start

    def finish(role: str, model: PreTrainedModel, *, delimited: bool = True) -> None:
        _round_fp16(model)
        paths[role] = _save(model, tokenizer, out_dir / role)
        evals[role] = evaluate(model, tokenizer, canonical, delimited=delimited)
        models[role] = model

    with stage(1, "teacher_sft", plan.teacher_sft.steps) as (generator, step_log):
        teacher = build_model("teacher", tokenizer, seed * 1000 + 1).to(device)
        train_sft(
            teacher, tokenizer, teacher_corpus(weighted), plan.teacher_sft, generator, step_log
        )
    finish("teacher_sft", teacher)

    with stage(2, "teacher_rl", plan.rl.steps) as (generator, step_log):
        args = (list(pool["prompt"]), list(pool["answer"]), list(pool["task"]))
        train_rl(teacher, tokenizer, *args, plan.rl, generator, step_log)
    finish("teacher", teacher)

    with stage(3, "baseline_sft", plan.teacher_sft.steps) as (generator, step_log):
        baseline = build_model("baseline", tokenizer, seed * 1000 + 3).to(device)
        corpus = baseline_corpus(weighted)
        train_sft(baseline, tokenizer, corpus, plan.teacher_sft, generator, step_log)
    finish("baseline", baseline, delimited=False)

    with stage(4, "distill", None):  # teacher traces for distillation (no curve; the bar: time)
        repeat = pool.loc[pool.index.repeat(plan.distill_samples)]
        sampled = generate(
            teacher,
            tokenizer,
            list(repeat["prompt"]),
            max_new_tokens=EVAL_MAX_NEW_TOKENS,
            temperature=plan.distill_temperature,
        )
        traces = [
            (row.prompt, tokenizer.decode(ids, skip_special_tokens=True))
            for row, ids in zip(repeat.itertuples(), sampled)
            if plan.distill_keep_incorrect or score(tokenizer, ids, row.answer, row.task).correct
        ]
    if not traces:
        raise InputError(
            "the teacher produced no correct trace to distil; train with a larger "
            "budget (drop --fast) or another --seed"
        )

    with stage(5, "student_sft", plan.student_sft.steps) as (generator, step_log):
        student = copy.deepcopy(baseline)
        train_sft(student, tokenizer, traces, plan.student_sft, generator, step_log)
    finish("student", student)

    curves = log.frame()
    curves.to_csv(out_dir / "curves.csv", index=False)
    plot_curves(curves, out_dir / "curves.png")
    summary = {
        "seed": seed,
        "budget": budget,
        "settings": asdict(plan),
        "threads": torch.get_num_threads(),
        "device": device if device == "cpu" else torch.cuda.get_device_name(),
        "torch": torch.__version__,
        "wall_s": {
            **{k: round(v, 1) for k, v in walls.items()},
            "total": round(sum(walls.values()), 1),
        },
        "training_items": pool["task"].value_counts().to_dict(),
        "distill_traces": {"sampled": len(sampled), "kept": len(traces)},
        "parameters": {
            role: sum(p.numel() for p in models[role].parameters())
            for role in ("teacher", "baseline", "student")
        },
        "evaluation_items": int(len(canonical)),
        "models": evals,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=1))
    return paths


def train_seeds(root: Path, seeds, *, budget: str = "full") -> dict[str, str]:
    """Train one triple per seed into ``root/seed{N}``; returns registry model name -> folder
    (``experiments.models.specs.organism_name``), e.g. for a run config's ``model_sources``."""
    from experiments.models.specs import organism_name

    sources = {}
    for seed in seeds:
        paths = train_all(seed_dir(seed, root), seed=seed, budget=budget)
        sources |= {
            organism_name(role, seed): str(paths[role])
            for role in ("teacher", "student", "baseline")
        }
    return sources
