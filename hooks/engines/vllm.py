"""The ``vllm`` engine: vLLM's offline ``LLM`` behind ``Engine``.

handan sends ``TokensPrompt(prompt_token_ids=...)`` (so vLLM sees the ids handan encoded), one
request per (item, sample) with ``SamplingParams(temperature, top_p, top_k, min_p, max_tokens,
stop_token_ids = handan's EOS set, detokenize=False, seed)``, and reads back ``token_ids`` and
``finish_reason``. vLLM schedules the requests itself (continuous batching, paged KV cache);
``tensor_parallel_size`` shards a model over GPUs and ``distributed_executor_backend="ray"`` over
nodes. vLLM starts an engine process: a script that uses it needs ``if __name__ == "__main__":``.
On GPU, bit-identical reruns also need vLLM's batch-invariant mode (its docs).
"""

from __future__ import annotations

from collections.abc import Sequence

from experiments.errors import InputError
from hooks.engines.base import Decoding, Engine, Generation, Request


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


class VLLMEngine(Engine):
    """vLLM over the weights at ``model`` (a folder or hub id); the engine starts on the first
    ``generate`` (about 30 s on CPU) and stops at ``close``."""

    name = "vllm"

    def __init__(
        self,
        model: str,
        *,
        dtype: str = "auto",
        revision: str | None = None,
        tensor_parallel_size: int = 1,
        max_model_len: int | None = None,
        gpu_memory_utilization: float = 0.9,
        distributed_executor_backend: str | None = None,
        trust_remote_code: bool = False,
        seed: int = 0,
    ) -> None:
        if not vllm_available():
            raise InputError(
                "the vllm engine needs vLLM: `pip install 'handan[vllm]'` on a GPU machine, or "
                "build the CPU environment with `.ci/vllm-env DIR` (see the README)"
            )
        self._kwargs = dict(
            model=model,
            dtype=dtype,
            revision=revision,
            tensor_parallel_size=tensor_parallel_size,
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            distributed_executor_backend=distributed_executor_backend,
            trust_remote_code=trust_remote_code,
            seed=seed,
            generation_config="vllm",  # every sampling setting comes from handan, none from the model
        )
        self._llm = None

    @property
    def version(self) -> str:
        import vllm

        return f"vllm {vllm.__version__}"

    @property
    def generation_config(self):
        from transformers import GenerationConfig

        try:
            return GenerationConfig.from_pretrained(
                self._kwargs["model"], revision=self._kwargs["revision"]
            )
        except OSError:  # a model folder without generation_config.json
            return None

    @property
    def context_length(self) -> int:
        """The ``max_model_len`` vLLM runs with (the setting, else the model config's)."""
        return int(self.llm.llm_engine.model_config.max_model_len)

    @property
    def llm(self):
        if self._llm is None:
            from vllm import LLM

            self._llm = LLM(**{k: v for k, v in self._kwargs.items() if v is not None})
        return self._llm

    def generate(
        self, requests: Sequence[Request], decoding: Decoding, observer=None
    ) -> list[Generation]:
        if observer is not None:
            raise InputError(
                "the vllm engine cannot capture while it generates; generate with it, then "
                "`handan record --from-traces` (teacher-forced capture), or use the hf engine"
            )
        from vllm import SamplingParams
        from vllm.inputs import TokensPrompt

        params = [
            SamplingParams(
                temperature=decoding.temperature,
                top_p=decoding.top_p,
                top_k=decoding.top_k,
                min_p=decoding.min_p,
                max_tokens=r.max_new_tokens,
                stop_token_ids=list(decoding.eos_ids),
                detokenize=False,
                seed=r.seed,
            )
            for r in requests
        ]
        prompts = [TokensPrompt(prompt_token_ids=list(r.prompt_ids)) for r in requests]
        outs = self.llm.generate(prompts, params, use_tqdm=False)
        results = []
        for out in outs:
            done = out.outputs[0]
            if done.finish_reason not in ("stop", "length"):
                raise RuntimeError(f"vLLM ended a request with {done.finish_reason!r}")
            results.append(Generation(tuple(done.token_ids), done.finish_reason))
        return results

    def close(self) -> None:
        if self._llm is not None:
            import gc

            llm, self._llm = self._llm, None
            core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
            if core is not None:  # stop the engine process now, not at garbage collection
                core.shutdown()
            del llm
            gc.collect()
