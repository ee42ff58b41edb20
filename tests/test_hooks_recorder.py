"""Sites, Recorder and Steer on tiny random-init Qwen2 / Llama / GPT-2 models (fp32)."""

from __future__ import annotations

import pandas as pd
import pytest
import tiny
import torch

from hooks import Recorder, Steer, list_sites, resolve_site
from hooks.sites import d_model, decoder_layers, n_layers

N_LAYERS, D = 3, 64


def tiny_model(family: str) -> torch.nn.Module:
    return tiny.tiny_model(family, vocab=100, layers=N_LAYERS)


@pytest.fixture(scope="module", params=["qwen2", "llama"])
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    return tiny_model(request.param)


def _ids(batch: int = 2, seq: int = 7, seed: int = 1) -> torch.Tensor:
    return torch.randint(3, 100, (batch, seq), generator=torch.Generator().manual_seed(seed))


# ---- sites ------------------------------------------------------------------------------------
def test_sites_cover_every_layer_and_kind() -> None:
    for family in ("qwen2", "llama", "gpt2"):
        m = tiny_model(family)
        assert n_layers(m) == N_LAYERS and d_model(m) == D
        sites = list_sites(m)
        assert len(sites) == 4 * N_LAYERS
        for kind in ("resid_pre", "resid_post", "attn_out", "mlp_out"):
            assert f"{kind}.{N_LAYERS - 1}" in sites
        layer = decoder_layers(m)[1]
        assert resolve_site(m, "resid_post.1") == (layer, "output")
        assert resolve_site(m, "resid_pre.1") == (layer, "input")
        attn = layer.self_attn if family != "gpt2" else layer.attn
        assert resolve_site(m, "attn_out.1") == (attn, "output")
        assert resolve_site(m, "mlp_out.1") == (layer.mlp, "output")
    # the base model (no LM head) resolves too
    assert list_sites(tiny_model("qwen2").model) == list_sites(tiny_model("qwen2"))


@pytest.mark.parametrize("bad", ["resid_post.3", "resid_post", "hook_resid_post.0", "mlp_out.-1"])
def test_unknown_site_lists_valid_ones(model: torch.nn.Module, bad: str) -> None:
    with pytest.raises(ValueError, match="resid_post.0"):
        Recorder(model, ["resid_post.0", bad])


# ---- recorder ------------------------------------------------------------------------------
def test_resid_post_matches_output_hidden_states(model: torch.nn.Module) -> None:
    ids = _ids()
    with Recorder(model, list_sites(model)) as rec, torch.no_grad():
        hidden = model(input_ids=ids, output_hidden_states=True).hidden_states
    acts = rec.activations
    torch.testing.assert_close(acts["resid_pre.0"], hidden[0], rtol=0, atol=1e-5)
    for layer in range(N_LAYERS - 1):
        torch.testing.assert_close(
            acts[f"resid_post.{layer}"], hidden[layer + 1], rtol=0, atol=1e-5
        )
        torch.testing.assert_close(acts[f"resid_pre.{layer + 1}"], acts[f"resid_post.{layer}"])
    # HF's last hidden state has the final norm applied
    last = model.model.norm(acts[f"resid_post.{N_LAYERS - 1}"])
    torch.testing.assert_close(last, hidden[N_LAYERS], rtol=0, atol=1e-5)
    assert not acts["resid_post.0"].requires_grad


@pytest.mark.parametrize("family", ["qwen2", "gpt2"])
def test_attn_and_mlp_out_sum_to_the_residual_update(family: str) -> None:
    """Pre-norm blocks: resid_post = resid_pre + attn_out + mlp_out."""
    m = tiny_model(family)
    with Recorder(m, list_sites(m)) as rec, torch.no_grad():
        m(input_ids=_ids())
    a = rec.activations
    for layer in range(N_LAYERS):
        total = a[f"resid_pre.{layer}"] + a[f"attn_out.{layer}"] + a[f"mlp_out.{layer}"]
        torch.testing.assert_close(total, a[f"resid_post.{layer}"], rtol=0, atol=1e-5)
        assert a[f"attn_out.{layer}"].abs().sum() > 0 and a[f"mlp_out.{layer}"].abs().sum() > 0


def test_positions_slice_gather_and_cast(model: torch.nn.Module) -> None:
    ids = _ids(batch=3, seq=6)
    with Recorder(model, ["resid_post.1"]) as full, torch.no_grad():
        model(input_ids=ids)
    ref = full.activations["resid_post.1"]
    index = torch.tensor([[5, 0], [2, 2], [1, 4]])
    recorder = Recorder(model, ["resid_post.1"], positions=slice(-2, None), dtype=torch.float16)
    with recorder as rec, torch.no_grad():
        model(input_ids=ids)
        got_slice = rec.activations["resid_post.1"]
        rec.positions = index  # the caller changes positions between forward calls
        model(input_ids=ids)
    got_gather = rec.activations["resid_post.1"]
    assert got_slice.dtype == torch.float16 and got_slice.shape == (3, 2, D)
    torch.testing.assert_close(got_slice, ref[:, -2:].half())
    expected = torch.stack([ref[b, index[b]] for b in range(3)]).half()
    assert got_gather.shape == (3, 2, D)
    torch.testing.assert_close(got_gather, expected)


def test_bad_positions_raise(model: torch.nn.Module) -> None:
    before = tiny.hook_ids(model)
    with Recorder(model, ["resid_post.0"], positions=torch.tensor([1, 2])) as rec:
        with pytest.raises(ValueError, match="LongTensor"):
            model(input_ids=_ids())
        rec.positions = torch.zeros(5, 1, dtype=torch.long)
        with pytest.raises(ValueError, match="one row of indices per batch row"):
            model(input_ids=_ids())
    assert tiny.hook_ids(model) == before


def test_recorder_keeps_the_latest_forward_during_generation(model: torch.nn.Module) -> None:
    ids = _ids(batch=2, seq=5)
    with Recorder(model, ["resid_post.2"]) as rec, torch.no_grad():
        out = model.generate(
            input_ids=ids,
            attention_mask=torch.ones_like(ids),
            max_new_tokens=3,
            do_sample=False,
            pad_token_id=0,
        )
        assert rec.activations["resid_post.2"].shape == (2, 1, D)  # one decoding step
        last_step = rec.activations["resid_post.2"]
        rec.clear()
        assert rec.activations == {}
        # a clean forward over prompt + output reproduces the last step's activation
        model(input_ids=out[:, :-1])
    torch.testing.assert_close(
        rec.activations["resid_post.2"][:, -1:], last_step, rtol=0, atol=1e-5
    )


def test_left_padded_batch_equals_each_prompt_alone(model: torch.nn.Module) -> None:
    prompts = [_ids(1, 7, seed=2)[0], _ids(1, 4, seed=3)[0]]
    width = max(len(p) for p in prompts)
    ids = torch.zeros(len(prompts), width, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for b, p in enumerate(prompts):
        ids[b, width - len(p) :] = p
        mask[b, width - len(p) :] = 1
    position_ids = (mask.cumsum(-1) - 1).clamp(min=0)
    sites = ["resid_post.0", "resid_post.2", "attn_out.1"]
    with Recorder(model, sites) as rec, torch.no_grad():
        model(input_ids=ids, attention_mask=mask, position_ids=position_ids)
        batched = dict(rec.activations)
        for b, p in enumerate(prompts):
            model(input_ids=p[None])
            for site in sites:
                torch.testing.assert_close(
                    batched[site][b, width - len(p) :], rec.activations[site][0], rtol=0, atol=1e-5
                )


def test_hooks_removed_on_exit_and_on_exception(model: torch.nn.Module) -> None:
    sites = list_sites(model)
    before = tiny.hook_ids(model)
    with Recorder(model, sites):
        assert len(tiny.hook_ids(model) - before) == len(sites)
    assert tiny.hook_ids(model) == before
    with (
        pytest.raises(RuntimeError, match="boom"),
        Recorder(model, sites),
        Steer(model, "resid_pre.1", torch.ones(D)),
    ):
        model(input_ids=_ids())
        raise RuntimeError("boom")
    assert tiny.hook_ids(model) == before


# ---- steering -----------------------------------------------------------------------------
def _record(
    model: torch.nn.Module, sites: list[str], steers: list[Steer], **inputs: object
) -> dict:
    """Activations at ``sites`` with ``steers`` active (steering hooks run before recording)."""
    from contextlib import ExitStack

    with ExitStack() as stack, torch.no_grad():
        for steer in steers:
            stack.enter_context(steer)
        rec = stack.enter_context(Recorder(model, sites))
        logits = model(**inputs).logits
    return {**rec.activations, "logits": logits}


def test_zero_vector_changes_nothing(model: torch.nn.Module) -> None:
    ids = _ids()
    plain = _record(model, [], [], input_ids=ids)
    for positions in ("all", "prompt", "prompt_end", "generated"):
        steered = _record(
            model,
            [],
            [Steer(model, "resid_post.1", torch.zeros(D), positions=positions)],
            input_ids=ids,
        )
        torch.testing.assert_close(steered["logits"], plain["logits"], rtol=0, atol=0)


@pytest.mark.parametrize(
    "positions,steered_cols",
    [("prompt_end", [6]), ("prompt", list(range(7))), ("all", list(range(7))), ("generated", [])],
)
def test_steer_adds_vector_at_chosen_prefill_positions(
    model: torch.nn.Module, positions: str, steered_cols: list[int]
) -> None:
    ids = _ids(seq=7)
    vector = torch.randn(D, generator=torch.Generator().manual_seed(5))
    sites = ["resid_post.0", "resid_post.1", "resid_post.2"]
    plain = _record(model, sites, [], input_ids=ids)
    steered = _record(
        model, sites, [Steer(model, "resid_post.1", vector, positions=positions)], input_ids=ids
    )
    torch.testing.assert_close(steered["resid_post.0"], plain["resid_post.0"], rtol=0, atol=0)
    expected = plain["resid_post.1"].clone()
    expected[:, steered_cols] += vector
    torch.testing.assert_close(steered["resid_post.1"], expected, rtol=0, atol=1e-6)
    later = (steered["resid_post.2"] - plain["resid_post.2"]).abs().amax(dim=(0, 2))
    untouched = [c for c in range(7) if c < min(steered_cols, default=7)]
    assert torch.all(later[untouched] == 0)  # causal: earlier positions never see the vector
    assert torch.all(later[steered_cols] > 1e-3)


def test_steer_generated_only_touches_decoding_steps(model: torch.nn.Module) -> None:
    ids = _ids(seq=5)
    vector = torch.randn(D, generator=torch.Generator().manual_seed(6))
    step = torch.tensor([[7], [8]])

    def run(steers: list[Steer]) -> tuple[dict, dict]:
        prefill_out = model(input_ids=ids, use_cache=True)
        prefill = _record(model, ["resid_post.1"], steers, input_ids=ids)
        decode = _record(
            model, ["resid_post.1"], steers, input_ids=step, cache=prefill_out.past_key_values
        )
        return prefill, decode

    with torch.no_grad():
        plain_prefill, plain_step = run([])
        steer = Steer(model, "resid_post.1", vector, positions="generated")
        gen_prefill, gen_step = run([steer])
    torch.testing.assert_close(
        gen_prefill["resid_post.1"], plain_prefill["resid_post.1"], rtol=0, atol=0
    )
    torch.testing.assert_close(
        gen_step["resid_post.1"], plain_step["resid_post.1"] + vector, rtol=0, atol=1e-6
    )


def test_steer_resid_pre_and_stacking(model: torch.nn.Module) -> None:
    ids = _ids()
    before = tiny.hook_ids(model)
    v1 = torch.randn(D, generator=torch.Generator().manual_seed(7))
    v2 = torch.randn(D, generator=torch.Generator().manual_seed(8))
    sites = ["resid_post.0", "resid_pre.1", "resid_post.2"]
    plain = _record(model, sites, [], input_ids=ids)
    pre = _record(model, sites, [Steer(model, "resid_pre.1", v1, positions="all")], input_ids=ids)
    torch.testing.assert_close(pre["resid_post.0"], plain["resid_post.0"], rtol=0, atol=0)
    torch.testing.assert_close(pre["resid_pre.1"], plain["resid_pre.1"] + v1, rtol=0, atol=1e-6)
    # the recorder sees the steered tensor whatever the order of the with-blocks
    with (
        Recorder(model, ["resid_pre.1"]) as rec,
        Steer(model, "resid_pre.1", v1, positions="all"),
        torch.no_grad(),
    ):
        model(input_ids=ids)
    torch.testing.assert_close(rec.activations["resid_pre.1"], pre["resid_pre.1"], rtol=0, atol=0)
    both = _record(
        model,
        sites,
        [
            Steer(model, "resid_post.0", v1, positions="all"),
            Steer(model, "resid_post.0", v2, positions="all"),
        ],
        input_ids=ids,
    )
    summed = _record(
        model, sites, [Steer(model, "resid_post.0", v1 + v2, positions="all")], input_ids=ids
    )
    torch.testing.assert_close(both["resid_post.2"], summed["resid_post.2"], rtol=0, atol=1e-5)
    assert not torch.allclose(both["resid_post.2"], plain["resid_post.2"])
    assert tiny.hook_ids(model) == before


def test_steer_rejects_bad_input(model: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="(length|width) 64"):
        Steer(model, "resid_post.0", torch.zeros(D + 1))
    with pytest.raises(ValueError, match="prompt_end"):
        Steer(model, "resid_post.0", torch.zeros(D), positions="last")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="valid sites"):
        Steer(model, "resid_post.9", torch.zeros(D))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_cuda_recorder_steer_and_store(tmp_path, dtype: torch.dtype) -> None:
    """On a GPU: positions chosen on the device, rows moved to CPU and cast; steering and the
    store take CUDA tensors."""
    from hooks import ActivationStore

    model = tiny_model("qwen2").to(device="cuda", dtype=dtype)
    ids = _ids(batch=3, seq=6).cuda()
    index = torch.tensor([[5, 0], [2, 2], [1, 4]])  # on the CPU: the recorder moves it
    with Recorder(model, ["resid_post.1"]) as full, torch.no_grad():
        model(input_ids=ids)
    ref = full.activations["resid_post.1"]
    assert ref.device.type == "cuda" and ref.dtype == dtype
    with (
        Recorder(
            model, ["resid_post.1"], positions=index, device="cpu", dtype=torch.float32
        ) as rec,
        torch.no_grad(),
    ):
        model(input_ids=ids)
    got = rec.activations["resid_post.1"]
    assert got.device.type == "cpu" and got.dtype == torch.float32
    expected = torch.stack([ref[b, index[b].cuda()] for b in range(3)]).float().cpu()
    torch.testing.assert_close(got, expected, rtol=0, atol=0)

    vector = torch.randn(D, generator=torch.Generator().manual_seed(5))
    with (
        Steer(model, "resid_post.1", vector, positions="prompt_end"),
        Recorder(model, ["resid_post.1"]) as steered,
        torch.no_grad(),
    ):
        model(input_ids=ids)
    want = ref.clone()
    want[:, -1] += vector.to(device="cuda", dtype=dtype)
    torch.testing.assert_close(steered.activations["resid_post.1"], want, rtol=0, atol=0)

    store = ActivationStore.create_or_open(
        tmp_path / "s",
        {
            "model": "tiny",
            "config_hash": "x",
            "sites": ["resid_post.1"],
            "positions": ["p"],
            "dtype": str(dtype).removeprefix("torch."),
            "d_model": D,
        },
    )
    rows = [
        {
            "model": "tiny",
            "item_id": f"i{b}",
            "sample": 0,
            "site": "resid_post.1",
            "position": "p",
            "token_index": 5,
        }
        for b in range(3)
    ]
    store.append(pd.DataFrame(rows), {"resid_post.1": ref[:, -1]})
    X, _ = store.load("resid_post.1", "p")
    np_expected = ref[:, -1].float().cpu().numpy()
    assert (X == np_expected).all()


# ---- capture across devices -------------------------------------------------------------------
@pytest.mark.parametrize("recorder_told", [True, False])
def test_capture_moves_every_layer_output_to_its_device_before_combining(
    model: torch.nn.Module, recorder_told: bool
) -> None:
    """No machine here has two GPUs, so another device *type* stands in: the model runs on the
    CPU, the capture combines on ``meta``, and a test hook puts layer 1's recorded output on
    ``meta`` while layer 0's stays on the CPU (as under a device_map over two GPUs). Mixing
    devices in ``torch.where`` raises; every step must run and every kept tensor end on meta.
    What this cannot show: real cross-GPU copies and their cost (needs two GPUs)."""
    from hooks.accounting import ThinkTokens
    from hooks.capture import Capture
    from hooks.engines.hf_loop import generate_batch

    sites = ["resid_post.0", "resid_post.1", "mlp_out.2"]
    prompts = [[5, 6, 7, 8], [9, 10]]
    with Recorder(model, sites) as rec:
        cap = Capture(
            rec,
            sites,
            ["prompt_end", "think_open", "think_close", "answer_end", "step_2"],
            prompts,
            ThinkTokens(11, 12),
            "meta",
        )
        assert rec.device == torch.device("meta")  # the recorder takes the capture's device
        if not recorder_told:  # a recorder left on its own: layer outputs arrive as they are
            rec.device = None
            layer = resolve_site(model, "resid_post.1")[0]
            hook = layer.register_forward_hook(
                lambda *_: rec.activations.__setitem__(
                    "resid_post.1", rec.activations["resid_post.1"].to("meta")
                )
            )
        out = generate_batch(model, prompts, max_new_tokens=5, eos_ids=[1], pad_id=0, observer=cap)
        if not recorder_told:
            hook.remove()
            assert {rec.activations[s].device.type for s in sites} == {"cpu", "meta"}
    assert all(1 <= len(g) <= 5 for g in out)
    kept = [*cap.prompt_end.values(), *cap.open_vec.values(), *cap.close_vec.values()]
    kept += [*cap.last_vec.values(), *(v for *_, vecs in cap.steps for v in vecs.values())]
    assert len(cap.steps) == 2 and {t.device.type for t in kept} == {"meta"}
    assert {t.device.type for t in (cap.opened, cap.closed, cap.close_tok, cap.last_tok)} == {
        "meta"
    }
