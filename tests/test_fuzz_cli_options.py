"""Fuzzed option values of `handan generate` and `handan record`: counts at or below zero,
temperatures and probability masses out of range or not finite, devices, engines, dtypes and
shards that do not exist, values of the wrong type (``--dtype`` is checked by model loading
itself, before any weight is read). Each is refused in one line naming the
setting before any model loads (model loading is replaced by a tripwire here), and the output
folder is left as it was (tests/fuzzing.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from fuzzing import fuzz, refused
from hypothesis import example, given
from hypothesis import strategies as st

UNICODE = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1, max_size=10
)
NON_POSITIVE = st.integers(max_value=0).map(str)
NOT_FINITE = st.sampled_from(["nan", "inf", "-inf"])
#: (option, its setting's name in the error, bad values), for both commands unless noted
OPTIONS = [
    ("--samples", "samples", NON_POSITIVE),
    ("--max-new-tokens", "max_new_tokens", NON_POSITIVE),
    ("--batch-size", "batch_size", NON_POSITIVE),
    ("--max-model-len", "max_model_len", NON_POSITIVE),
    ("--temperature", "temperature", st.floats(max_value=-1e-9).map(repr) | NOT_FINITE),
    (
        "--top-p",
        "top_p",
        st.floats(min_value=1.0001).map(repr) | st.sampled_from(["0", "-0.5"]) | NOT_FINITE,
    ),
    ("--shard", "--shard", st.sampled_from(["x", "0/2", "3/2", "1/0", "-1/2", "1/", "/2", "½"])),
    (
        "--device",
        "--device",
        UNICODE.filter(
            lambda s: s.strip() and s.split(":")[0] not in ("cpu", "cuda", "meta", "mps")
        ),
    ),
    ("--samples", "--samples", st.sampled_from(["abc", "1.5", "☃", "1e3"])),
]
GENERATE_ONLY = [
    ("--engine", "engine", UNICODE.filter(lambda s: s not in ("hf", "vllm"))),
    ("--tensor-parallel-size", "tensor_parallel_size", NON_POSITIVE),
    (
        "--gpu-memory-utilization",
        "gpu_memory_utilization",
        st.sampled_from(["0", "1.5", "-1", "nan"]),
    ),
]


@pytest.fixture(scope="module", autouse=True)
def tripwire():
    """A bad option must be refused before a model loads: loading fails the test instead."""
    import experiments.generation.engines as engines
    import experiments.models.loading as loading

    def reached(*args, **kwargs):
        raise AssertionError("a bad option reached model loading")

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(engines, "open_engine", reached)
        patch.setattr(loading, "load_model", reached)
        yield


@st.composite
def bad_option(draw):
    command = draw(st.sampled_from(["generate", "record"]))
    choices = OPTIONS + (GENERATE_ONLY if command == "generate" else [])
    option, named, values = draw(st.sampled_from(choices))
    return command, option, draw(values), named


@fuzz(60)
@given(case=bad_option())
@example(case=("generate", "--temperature", "inf", "temperature"))  # was accepted
@example(case=("generate", "--device", "nonsense", "--device"))  # was a RuntimeError at load
@example(case=("record", "--device", "cuda:x", "--device"))
def test_bad_generation_options_are_refused_before_a_model_loads(case):
    command, option, value, named = case
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "traces.parquet").write_bytes(b"from before")
        out = folder / ("traces.parquet" if command == "generate" else "store")
        args = [command, "--model", "organism-teacher", "--items", "binary", "--out", out]
        refused([*args, f"{option}={value}"], folder, named)
