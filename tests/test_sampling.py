"""The hf loop's sampling warpers equal transformers' own (temperature, top-k, top-p, min-p)."""

from __future__ import annotations

import pytest
import torch
from transformers.generation.logits_process import (
    LogitsProcessorList,
    MinPLogitsWarper,
    TemperatureLogitsWarper,
    TopKLogitsWarper,
    TopPLogitsWarper,
)

from hooks.engines.hf_loop import sample_next, warp


@pytest.mark.parametrize(
    "temperature, top_k, top_p, min_p",
    [
        (0.6, 0, 0.95, 0.0),
        (0.7, 20, 0.8, 0.0),
        (1.0, 40, 1.0, 0.05),
        (0.6, 5, 0.95, 0.1),
        (1.3, 0, 1.0, 0.2),
    ],
)
def test_warp_equals_hf_warpers(temperature, top_k, top_p, min_p):
    logits = torch.randn(6, 300, generator=torch.Generator().manual_seed(1)) * 3
    chain = [TemperatureLogitsWarper(temperature)]
    chain += [TopKLogitsWarper(top_k)] if top_k else []
    chain += [TopPLogitsWarper(top_p)] if top_p < 1 else []
    chain += [MinPLogitsWarper(min_p)] if min_p else []
    ref = LogitsProcessorList(chain)(torch.zeros(6, 1, dtype=torch.long), logits.clone())
    ours = warp(logits, temperature, top_p, top_k, min_p)
    assert torch.equal(torch.isinf(ours), torch.isinf(ref))
    torch.testing.assert_close(ours.softmax(-1), ref.softmax(-1))
    if top_k:
        assert int(torch.isfinite(ours).sum(-1).max()) <= top_k  # the filter did something


def test_draws_stay_inside_the_kept_set_and_greedy_is_argmax():
    logits = torch.randn(4, 50, generator=torch.Generator().manual_seed(2))
    kept = torch.isfinite(warp(logits, 1.0, 1.0, top_k=3))
    gen = torch.Generator().manual_seed(0)
    for _ in range(50):
        draw = sample_next(logits, 1.0, 1.0, gen, top_k=3)
        assert kept[torch.arange(4), draw].all()
    assert torch.equal(sample_next(logits, 0.0, 1.0, None, top_k=3), logits.argmax(-1))
