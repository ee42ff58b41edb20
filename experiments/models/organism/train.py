"""Train the whole organism: teacher (SFT warm start, then RL), baseline (SFT), student (distilled).

Stages, each seeded with ``seed * 1000 + stage number`` (``torch.manual_seed`` for initialisation
and sampling, a ``torch.Generator`` for batch order):

1. ``teacher_sft`` — a fresh teacher-shaped model, SFT on every 4-bit item twice, once with the
   full and once with the elided scratchpad (``task.py``): a valid but not length-optimal
   procedure. Saved as the ``teacher_sft`` checkpoint (the pre-RL reference).
2. ``teacher_rl`` — REINFORCE with a group-mean baseline (``rl.py``), reward = correct -
   ``token_cost`` x reasoning tokens. Saved as ``teacher``.
3. ``baseline_sft`` — a fresh baseline-shaped model, SFT on the direct answers. Saved as ``baseline``.
4. ``distill`` — the teacher samples ``distill_samples`` responses per item at
   ``distill_temperature``; the correct ones are kept (rejection sampling, as for the
   R1-Distill data; the ``fast`` test budget keeps every trace, since its barely trained
   teacher is rarely correct).
5. ``student_sft`` — a copy of the baseline, SFT on those traces. Saved as ``student``.

Each checkpoint is evaluated greedily on the 4-bit items. ``out_dir`` then holds one
``save_pretrained`` folder per role (model + tokenizer, safetensors, fp32), ``curves.csv`` /
``curves.png`` (per-step metrics, ``curves.py``) and ``training.json``: seed, budget, settings,
wall seconds per stage, the number of distillation traces, and per role the accuracy by task,
reasoning-token statistics, their Spearman correlation with ``feat_carries`` and
``feat_work_columns``, and per item ``correct`` / ``reasoning_tokens``.
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
from scipy.stats import spearmanr
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from experiments.errors import InputError, MissingInput
from experiments.models.organism.curves import CurveLog, plot_curves
from experiments.models.organism.models import build_model
from experiments.models.organism.rl import RLConfig, train_rl
from experiments.models.organism.sampling import generate, score
from experiments.models.organism.sft import SFTConfig, train_sft
from experiments.models.organism.task import baseline_response, organism_items, teacher_response
from experiments.models.organism.tokenizer import build_tokenizer

ROLES = ("teacher", "baseline", "student", "teacher_sft")
SHIPPED = Path(__file__).resolve().parent / "checkpoints"
EVAL_MAX_NEW_TOKENS = 128
THREADS = 2


@dataclass(frozen=True)
class Budget:
    """Settings of every stage; ``eval_items`` = how many items (spread over both tasks) the
    evaluations and the distillation use (None = all 392)."""

    teacher_sft: SFTConfig
    rl: RLConfig
    baseline_sft: SFTConfig
    student_sft: SFTConfig
    distill_samples: int
    distill_temperature: float
    distill_keep_incorrect: bool = False
    eval_items: int | None = None


BUDGETS = {
    "full": Budget(
        teacher_sft=SFTConfig(steps=800, batch_size=32, lr=1.5e-3, warmup=20),
        rl=RLConfig(
            steps=30,
            prompts_per_step=16,
            group_size=8,
            lr=1e-4,
            token_cost=0.004,
            max_new_tokens=112,
        ),
        baseline_sft=SFTConfig(steps=900, batch_size=64, lr=3e-3, warmup=20),
        student_sft=SFTConfig(steps=600, batch_size=32, lr=1.5e-3, warmup=20),
        distill_samples=4,
        distill_temperature=0.6,
    ),
    "fast": Budget(
        teacher_sft=SFTConfig(steps=40, batch_size=16, lr=3e-3, warmup=5),
        rl=RLConfig(
            steps=3, prompts_per_step=4, group_size=4, lr=5e-5, token_cost=0.004, max_new_tokens=80
        ),
        baseline_sft=SFTConfig(steps=30, batch_size=16, lr=3e-3, warmup=5),
        student_sft=SFTConfig(steps=20, batch_size=16, lr=3e-3, warmup=5),
        distill_samples=1,
        distill_temperature=0.6,
        distill_keep_incorrect=True,
        eval_items=24,
    ),
}


def checkpoint_dir(role: str, root: Path | None = None) -> Path:
    """The folder of a trained organism checkpoint (default: the shipped ones)."""
    if role not in ROLES:
        raise InputError(f"unknown organism role {role!r}; use one of {list(ROLES)}")
    path = Path(root if root is not None else SHIPPED) / role
    if not (path / "config.json").exists():
        raise MissingInput(
            f"no organism checkpoint at {path}; train it with `handan organism train"
            + (f" --out {root}`" if root is not None else "`")
        )
    return path


def _eval_subset(items: pd.DataFrame, n: int | None) -> pd.DataFrame:
    """All items, or ``n`` of them evenly spaced over the table (both tasks are covered)."""
    if n is None or n >= len(items):
        return items
    return items.iloc[torch.linspace(0, len(items) - 1, n).round().long().tolist()]


def evaluate(
    model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, items: pd.DataFrame
) -> dict[str, object]:
    """Greedy accuracy and reasoning-token statistics of a model on ``items``."""
    new = generate(model, tokenizer, list(items["prompt"]), max_new_tokens=EVAL_MAX_NEW_TOKENS)
    scored = [score(tokenizer, ids, ans) for ids, ans in zip(new, items["answer"])]
    frame = items[["item_id", "task", "feat_carries", "feat_work_columns"]].assign(
        correct=[s.correct for s in scored],
        reasoning_tokens=[s.reasoning_tokens for s in scored],
        finished_thinking=[s.finished_thinking for s in scored],
    )
    result: dict[str, object] = {
        "accuracy": {
            "all": float(frame["correct"].mean()),
            **frame.groupby("task")["correct"].mean().astype(float).to_dict(),
        },
        "finished_thinking": float(frame["finished_thinking"].mean()),
        "reasoning_tokens": {
            "mean": float(frame["reasoning_tokens"].mean()),
            "sd": float(frame["reasoning_tokens"].std(ddof=1)),
            "min": int(frame["reasoning_tokens"].min()),
            "max": int(frame["reasoning_tokens"].max()),
            "by_task": frame.groupby("task")["reasoning_tokens"].mean().astype(float).to_dict(),
            "by_work_columns": {
                str(k): float(v)
                for k, v in frame.groupby("feat_work_columns")["reasoning_tokens"].mean().items()
            },
        },
    }
    for feature in ("feat_carries", "feat_work_columns"):
        varies = frame["reasoning_tokens"].nunique() > 1 and frame[feature].nunique() > 1
        rho = spearmanr(frame["reasoning_tokens"], frame[feature]).statistic if varies else None
        result["reasoning_tokens"][f"spearman_{feature}"] = None if rho is None else float(rho)
    result["by_item"] = {
        row.item_id: {"correct": bool(row.correct), "reasoning_tokens": int(row.reasoning_tokens)}
        for row in frame.itertuples()
    }
    return result


def _save(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase, path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    copy.deepcopy(model).cpu().save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path


def train_all(
    out_dir: Path,
    *,
    seed: int = 0,
    budget: str = "full",
    progress: bool = True,
    device: str = "cpu",
) -> dict[str, Path]:
    """Train every organism model into ``out_dir``; returns role -> checkpoint folder.
    ``device`` is where the models train (``cpu``, or ``cuda`` where there is a GPU; the same
    seed gives the same weights on the same device, not across devices). The checkpoints are
    always saved from CPU memory, fp32."""
    if budget not in BUDGETS:
        raise InputError(f"unknown budget {budget!r}; use one of {sorted(BUDGETS)}")
    from tqdm.auto import tqdm

    plan = BUDGETS[budget]
    torch.set_num_threads(min(THREADS, torch.get_num_threads()))
    out_dir = Path(out_dir)
    tokenizer, items = build_tokenizer(), organism_items()
    subset = _eval_subset(items, plan.eval_items)
    log, walls, evals, paths = CurveLog(), {}, {}, {}

    @contextmanager
    def stage(number: int, name: str, steps: int | None):
        """Seed the stage, time it into ``walls``, show its progress; yields (generator, log)."""
        torch.manual_seed(seed * 1000 + number)  # every device's generator
        start = time.perf_counter()
        with tqdm(total=steps, desc=name, disable=not progress, leave=True) as bar:
            yield torch.Generator().manual_seed(seed * 1000 + number), log.stage(name, bar.update)
        walls[name] = time.perf_counter() - start

    with stage(1, "teacher_sft", plan.teacher_sft.steps) as (
        generator,
        step_log,
    ):  # teacher warm start
        teacher = build_model("teacher", tokenizer, seed * 1000 + 1).to(device)
        pairs = [
            (r.prompt, teacher_response(r.op, r.a, r.b, full=full))
            for r in items.itertuples()
            for full in (True, False)
        ]
        train_sft(teacher, tokenizer, pairs, plan.teacher_sft, generator, step_log)
    paths["teacher_sft"] = _save(teacher, tokenizer, out_dir / "teacher_sft")
    evals["teacher_sft"] = evaluate(teacher, tokenizer, subset)

    with stage(2, "teacher_rl", plan.rl.steps) as (generator, step_log):
        train_rl(
            teacher,
            tokenizer,
            list(subset["prompt"]),
            list(subset["answer"]),
            plan.rl,
            generator,
            step_log,
        )
    paths["teacher"] = _save(teacher, tokenizer, out_dir / "teacher")
    evals["teacher"] = evaluate(teacher, tokenizer, subset)

    with stage(3, "baseline_sft", plan.baseline_sft.steps) as (generator, step_log):
        baseline = build_model("baseline", tokenizer, seed * 1000 + 3).to(device)
        pairs = [(r.prompt, baseline_response(r.op, r.a, r.b)) for r in items.itertuples()]
        train_sft(baseline, tokenizer, pairs, plan.baseline_sft, generator, step_log)
    paths["baseline"] = _save(baseline, tokenizer, out_dir / "baseline")
    evals["baseline"] = evaluate(baseline, tokenizer, subset)

    with stage(
        4, "distill", None
    ):  # teacher traces for distillation (no curve; the bar shows time)
        prompts = [p for p in subset["prompt"] for _ in range(plan.distill_samples)]
        answers = [a for a in subset["answer"] for _ in range(plan.distill_samples)]
        sampled = generate(
            teacher,
            tokenizer,
            prompts,
            max_new_tokens=EVAL_MAX_NEW_TOKENS,
            temperature=plan.distill_temperature,
        )
        traces = [
            (prompt, tokenizer.decode(ids, skip_special_tokens=True))
            for prompt, answer, ids in zip(prompts, answers, sampled)
            if plan.distill_keep_incorrect or score(tokenizer, ids, answer).correct
        ]
    if not traces:
        raise InputError(
            "the teacher produced no correct trace to distil; train with a larger "
            "budget (drop --fast) or another --seed"
        )

    with stage(5, "student_sft", plan.student_sft.steps) as (generator, step_log):
        student = copy.deepcopy(baseline)
        train_sft(student, tokenizer, traces, plan.student_sft, generator, step_log)
    paths["student"] = _save(student, tokenizer, out_dir / "student")
    evals["student"] = evaluate(student, tokenizer, subset)

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
        "distill_traces": {"sampled": len(sampled), "kept": len(traces)},
        "parameters": {
            role: sum(p.numel() for p in m.parameters())
            for role, m in (("teacher", teacher), ("baseline", baseline), ("student", student))
        },
        "evaluation_items": int(len(subset)),
        "models": evals,
    }
    (out_dir / "training.json").write_text(json.dumps(summary, indent=1))
    return paths
