"""Site names, the same whatever the backend, and their resolution to HF modules.

A *site* is a place in the residual stream of a decoder-only transformer:

- ``resid_pre.{L}``  — the hidden state entering decoder layer ``L`` (input of the layer);
- ``resid_post.{L}`` — the hidden state leaving decoder layer ``L`` (output of the layer);
  ``resid_post.{L}`` equals ``resid_pre.{L+1}``; HF's ``output_hidden_states[L + 1]`` equals
  ``resid_post.{L}`` except for the last layer, where HF applies the final norm first;
- ``attn_out.{L}``   — what layer ``L``'s self-attention adds to the residual stream;
- ``mlp_out.{L}``    — what layer ``L``'s MLP adds to the residual stream.

``L`` runs over ``0 .. n_layers(model) - 1``. Every site is a tensor ``[batch, seq, d_model]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from torch import Tensor, nn

from experiments.errors import InputError

SITE_KINDS = ("resid_pre", "resid_post", "attn_out", "mlp_out")
HookKind = Literal["input", "output"]
"""``input``: read/modify the module's first positional (or ``hidden_states``) argument with a
forward pre-hook; ``output``: read/modify the module's output (a tensor, or the first element of
a tuple) with a forward hook."""

# Attribute paths, from the loaded model, where HF decoder families keep their layer list.
_LAYER_PATHS = (
    "model.layers",  # Qwen2/Qwen3/Llama/Mistral/Gemma ...ForCausalLM
    "layers",  # their base models
    "transformer.h",  # GPT2LMHeadModel, GPT-J, Falcon
    "h",  # GPT2Model
    "gpt_neox.layers",  # GPT-NeoX/Pythia
    "model.decoder.layers",  # OPT
    "model.language_model.layers",  # multimodal wrappers (text tower)
)
_ATTN_NAMES = ("self_attn", "attn", "attention", "self_attention")
_MLP_NAMES = ("mlp", "feed_forward", "ffn")
_SITE_RE = re.compile(r"^(resid_pre|resid_post|attn_out|mlp_out)\.(\d+)$")


def _get_path(obj: Any, path: str) -> Any:
    for part in path.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The model's list of decoder layers (found at the first of the usual attribute paths)."""
    for path in _LAYER_PATHS:
        layers = _get_path(model, path)
        if isinstance(layers, nn.ModuleList) and len(layers) > 0:
            return layers
    raise InputError(
        f"cannot find the decoder layers of {type(model).__name__}: looked for "
        f"{', '.join(_LAYER_PATHS)}; pass an HF decoder-only model (Qwen2/Qwen3/Llama/GPT-2 family)"
    )


def n_layers(model: nn.Module) -> int:
    """Number of decoder layers."""
    return len(decoder_layers(model))


def d_model(model: nn.Module) -> int:
    """Width of the residual stream (``hidden_size``, or ``n_embd`` for GPT-2)."""
    config = model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    for name in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise InputError(
        f"{type(model).__name__}.config has no hidden_size / n_embd / d_model; handan "
        "supports HF decoder models (Qwen2/Qwen3/Llama/GPT-2 families)"
    )


def list_sites(model: nn.Module) -> list[str]:
    """All valid site names of ``model``, in the order the forward pass computes them (layer by
    layer: resid_pre, attn_out, mlp_out, resid_post)."""
    layers = decoder_layers(model)
    sites = []
    for i, layer in enumerate(layers):
        sites.append(f"resid_pre.{i}")
        if _child(layer, _ATTN_NAMES) is not None:
            sites.append(f"attn_out.{i}")
        if _child(layer, _MLP_NAMES) is not None:
            sites.append(f"mlp_out.{i}")
        sites.append(f"resid_post.{i}")
    return sites


def _child(layer: nn.Module, names: tuple[str, ...]) -> nn.Module | None:
    for name in names:
        child = getattr(layer, name, None)
        if isinstance(child, nn.Module):
            return child
    return None


def parse_site(site: str) -> tuple[str, int]:
    """``"resid_post.3"`` -> ``("resid_post", 3)``; ValueError for a malformed name."""
    match = _SITE_RE.match(site) if isinstance(site, str) else None
    if match is None:
        raise InputError(
            f"malformed site {site!r}; a site is <kind>.<layer> with kind in {SITE_KINDS}, "
            "e.g. 'resid_post.3'"
        )
    return match.group(1), int(match.group(2))


def check_sites(sites: Sequence[str], valid: Sequence[str], owner: str) -> None:
    """ValueError naming the sites of ``sites`` not in ``valid`` and listing the valid ones."""
    unknown = [site for site in sites if site not in valid]
    if unknown:
        layers: dict[str, list[int]] = {}
        for name in valid:
            kind, layer = parse_site(name)
            layers.setdefault(kind, []).append(layer)
        shown = "; ".join(
            f"{kind}.{min(ls)}..{kind}.{max(ls)}"
            if ls == list(range(min(ls), max(ls) + 1))
            else ", ".join(f"{kind}.{k}" for k in ls)
            for kind, ls in layers.items()
        )
        raise InputError(f"unknown site(s) {unknown} for {owner}; valid sites: {shown}")


def resolve_site(model: nn.Module, site: str) -> tuple[nn.Module, HookKind]:
    """The module to hook for ``site`` and whether the site is its ``input`` or ``output``.

    Unknown sites raise ValueError listing the valid ones."""
    check_sites([site], list_sites(model), type(model).__name__)
    kind, layer_idx = parse_site(site)
    layer = decoder_layers(model)[layer_idx]
    if kind == "resid_pre":
        return layer, "input"
    if kind == "resid_post":
        return layer, "output"
    child = _child(layer, _ATTN_NAMES if kind == "attn_out" else _MLP_NAMES)
    assert child is not None  # guaranteed by list_sites
    return child, "output"


def output_tensor(output: Any) -> Tensor:
    """The hidden-state tensor in a module output: the tensor itself, or a tuple's first element
    (decoder layers return a tensor in transformers 5, a tuple in older versions; attention
    modules return ``(attn_output, attn_weights)``)."""
    return output[0] if isinstance(output, tuple) else output


def replace_output_tensor(output: Any, new: Tensor) -> Any:
    """``output`` with its hidden-state tensor replaced by ``new`` (same container type)."""
    return (new, *output[1:]) if isinstance(output, tuple) else new


def input_tensor(args: tuple, kwargs: dict) -> Tensor:
    """The hidden-state input of a decoder layer: first positional arg, else ``hidden_states``."""
    return args[0] if args else kwargs["hidden_states"]


def replace_input_tensor(args: tuple, kwargs: dict, new: Tensor) -> tuple[tuple, dict]:
    """``(args, kwargs)`` with the hidden-state input replaced by ``new``."""
    if args:
        return (new, *args[1:]), kwargs
    return args, {**kwargs, "hidden_states": new}


def add_hook(module: nn.Module, kind: HookKind, fn: Any, *, prepend: bool = False) -> Any:
    """Register ``fn(tensor) -> Tensor | None`` on ``module`` at ``kind``.

    ``fn`` receives the site tensor ``[batch, seq, d]``; a returned tensor replaces it in the
    forward pass (``None`` leaves it untouched). ``prepend=True`` runs it before the module's
    other hooks (interventions use it, so every reader sees the edited tensor). Returns the
    ``RemovableHandle``."""
    if kind == "output":

        def forward_hook(_mod: nn.Module, _args: Any, output: Any) -> Any:
            new = fn(output_tensor(output))
            return None if new is None else replace_output_tensor(output, new)

        return module.register_forward_hook(forward_hook, prepend=prepend)

    def pre_hook(_mod: nn.Module, args: tuple, kwargs: dict) -> Any:
        new = fn(input_tensor(args, kwargs))
        return None if new is None else replace_input_tensor(args, kwargs, new)

    return module.register_forward_pre_hook(pre_hook, with_kwargs=True, prepend=prepend)


def expand_sites(model: nn.Module, sites: str) -> list[str]:
    """Comma-separated site names; ``KIND.*`` expands to every layer (e.g. ``resid_post.*``)."""
    valid = list_sites(model)
    out: list[str] = []
    for part in (p.strip() for p in sites.split(",") if p.strip()):
        if part.endswith(".*"):
            found = [s for s in valid if s.startswith(part[:-1])]
            if not found:
                raise InputError(
                    f"site pattern {part!r} matches nothing; valid sites: {', '.join(valid)}"
                )
            out += found
        else:
            out.append(part)
    return out
