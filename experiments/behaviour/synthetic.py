"""Planted synthetic Items + Traces tables with known behavioural parameters (tests, demos).

Per item i of a task: human difficulty h_i ~ N(0, 1), human_rt_s = exp(mu_task + 0.5 h_i).
Log reasoning tokens of an item (before per-sample noise):
- teacher:  L_T = 6 + 0.5 (r_T h + sqrt(1 - r_T^2) e_T)      -> within-task r(L_T, h) = r_T
- baseline: L_B = 6 + 0.5 (r_B h + sqrt(1 - r_B^2) e_B)      -> r(L_B, h) = r_B
- student:  L_S = L_T + log(multiplier) + multiplier_slope * h + sigma * e_S
  (multiplier_slope = 0: constant multiplier; the geometric-mean ratio S/T is `multiplier`).
Sample s: tokens = round(exp(L + tau e_s + wrong_extra * wrong_s)), capped at ``budget``
(capped samples have finished_thinking False); a sample is wrong with probability
sigmoid(h - acc_logit[model]). e_* are independent standard normals.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MODELS = ("teacher", "student", "baseline")


def planted_tables(
    *,
    n_tasks: int = 3,
    n_items: int = 60,
    n_samples: int = 1,
    r_teacher: float = 0.6,
    r_baseline: float = 0.45,
    multiplier: float = 2.44,
    multiplier_slope: float = 0.0,
    sigma: float = 0.1,
    tau: float = 0.0,
    wrong_extra: float = 0.0,
    acc_logit: dict[str, float] | None = None,
    budget: int = 10**7,
    seed: int = 0,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, traces) following the module docstring; models are named as in MODELS."""
    rng = np.random.default_rng(seed)
    acc_logit = acc_logit or {m: 1.0 for m in MODELS}
    n = n_tasks * n_items
    task = np.repeat([f"task{t}" for t in range(n_tasks)], n_items)
    h = rng.standard_normal(n)
    mu = np.repeat(rng.normal(1.0, 0.7, n_tasks), n_items)
    item_id = [f"i{k:05d}" for k in range(n)]
    items = pd.DataFrame(
        {
            "item_id": item_id,
            "task": task,
            "prompt": [f"q{k}" for k in range(n)],
            "answer": "1",
            "human_rt_s": np.exp(mu + 0.5 * h),
            "human_rt_sd": 1.0,
            "human_accuracy": 0.9,
            "n_human": 20,
        }
    )
    e_t, e_b, e_s = rng.standard_normal((3, n))
    log_t = 6 + 0.5 * (r_teacher * h + np.sqrt(1 - r_teacher**2) * e_t)
    log_tokens = {
        "teacher": log_t,
        "baseline": 6 + 0.5 * (r_baseline * h + np.sqrt(1 - r_baseline**2) * e_b),
        "student": log_t + np.log(multiplier) + multiplier_slope * h + sigma * e_s,
    }
    frames = []
    for model in MODELS:
        wrong = rng.random((n, n_samples)) < 1 / (1 + np.exp(-(h[:, None] - acc_logit[model])))
        raw = np.exp(
            log_tokens[model][:, None]
            + tau * rng.standard_normal((n, n_samples))
            + wrong_extra * wrong
        )
        tokens = np.minimum(np.round(raw), budget).astype(np.int64)
        frames.append(
            pd.DataFrame(
                {
                    "model": model,
                    "item_id": np.repeat(item_id, n_samples),
                    "task": np.repeat(task, n_samples),
                    "sample": np.tile(np.arange(n_samples), n),
                    "prompt_tokens": 20,
                    "reasoning_tokens": tokens.ravel(),
                    "answer_tokens": 5,
                    "finished_thinking": (raw < budget).ravel(),
                    "response": "Answer: 1",
                    "correct": ~wrong.ravel(),
                    "text": "...",
                }
            )
        )
    return items, pd.concat(frames, ignore_index=True)


def dependent_costs(
    dist: str, n: int, rng: np.random.Generator, *, rho_h=(0.5, 0.5), rho_ab: float = 0.6
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(cost_a, cost_b, human) with corr(a, h), corr(b, h) = ``rho_h`` and corr(a, b) =
    ``rho_ab`` before the marginal transform: ``normal``; ``lognormal`` (all three exp(0.5 x):
    skewed, as token counts and RTs are); ``t5`` / ``t10`` (multivariate t, heavy tails)."""
    cov = np.array(
        [[1, rho_ab, rho_h[0]], [rho_ab, 1, rho_h[1]], [rho_h[0], rho_h[1], 1]], dtype=float
    )
    x = rng.multivariate_normal(np.zeros(3), cov, size=n)
    if dist.startswith("t"):
        df = int(dist[1:])
        x = x / np.sqrt(rng.chisquare(df, size=(n, 1)) / df)
    elif dist == "lognormal":
        x = np.exp(0.5 * x)
    elif dist != "normal":
        raise ValueError(f"unknown dist {dist!r}")
    return x[:, 0], x[:, 1], x[:, 2]


def sample_costs(
    samples: dict[str, np.ndarray], human: np.ndarray, tasks: np.ndarray | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(costs, long samples) tables from per-sample log costs ``{model: (n_items, n_samples)}``:
    ``costs`` in the layout of costs.item_costs (accuracy 1), ``long`` with one row per sample
    (``model, item_id, value``) for reliability.split_halves."""
    n = len(human)
    tasks = np.full(n, "t") if tasks is None else np.asarray(tasks)
    ids = np.array([f"i{k:05d}" for k in range(n)])
    costs, long = [], []
    for model, v in samples.items():
        m = v.shape[1]
        costs.append(
            pd.DataFrame(
                {
                    "model": model,
                    "item_id": ids,
                    "task": tasks,
                    "cost": v.mean(axis=1),
                    "mean_tokens": np.exp(v).mean(axis=1),
                    "n_samples": m,
                    "n_censored": 0,
                    "accuracy": 1.0,
                    "majority_correct": True,
                    "human_cost": human,
                }
            )
        )
        long.append(
            pd.DataFrame({"model": model, "item_id": np.repeat(ids, m), "value": v.ravel()})
        )
    return pd.concat(costs, ignore_index=True), pd.concat(long, ignore_index=True)
