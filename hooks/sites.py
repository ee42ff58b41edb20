"""Site names, the same whatever the backend, and their resolution to HF modules.

A *site* is a place in the residual stream of a decoder-only transformer:

- ``resid_pre.{L}``  — the hidden state entering decoder layer ``L`` (input of the layer);
- ``resid_post.{L}`` — the hidden state leaving decoder layer ``L`` (output of the layer);
  ``resid_post.{L}`` equals ``resid_pre.{L+1}``; HF's ``output_hidden_states[L + 1]`` equals
  ``resid_post.{L}`` except for the last layer, where HF applies the final norm first;
- ``attn_out.{L}``   — what layer ``L``'s self-attention adds to the residual stream;
- ``mlp_out.{L}``    — what layer ``L``'s MLP adds to the residual stream.

``L`` runs over ``0 .. n_layers(model) - 1``. Each of these is a tensor ``[batch, seq, d_model]``.

Per-head sites (``H`` runs over ``0 .. n_heads - 1``; :mod:`hooks.heads` does the shapes):

- ``attn_z.{L}.{H}``      — head ``H``'s output before the output projection (TransformerLens'
  ``hook_z`` at head ``H``), ``[batch, seq, d_head]``: the input of the attention's output
  projection (``o_proj`` in Qwen2/Qwen3/Llama, ``c_proj`` in GPT-2) is ``b p (h d)``, and the
  site is ``rearrange(x, "b p (h d) -> b p h d", h=n_heads)[:, :, H]``; ``attn_z.{L}.*`` is the
  whole ``[batch, seq, head, d_head]`` tensor of layer ``L``, one site per head;
- ``attn_result.{L}.{H}`` — what head ``H`` adds to the residual stream, ``z_H @ W_O[H]``,
  ``[batch, seq, d_model]``; summed over the heads, plus the projection's bias, it is
  ``attn_out.{L}`` (tested on every backend). Read-only: steer or ablate ``attn_z``.

``list_sites(model)`` lists the residual-width sites; ``list_sites(model, heads=True)`` every
site. Patterns: ``KIND.*`` (every layer, and every head for head kinds), ``attn_z.{L}.*``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any, Literal

from torch import Tensor, nn

from experiments.errors import InputError

SITE_KINDS = ("resid_pre", "resid_post", "attn_out", "mlp_out")
HEAD_KINDS = ("attn_z", "attn_result")
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
_OUT_PROJ_NAMES = ("o_proj", "c_proj", "out_proj", "dense")  # attention output projections
_SITE_RE = re.compile(r"^(resid_pre|resid_post|attn_out|mlp_out)\.(\d+)$")
_HEAD_RE = re.compile(r"^(attn_z|attn_result)\.(\d+)\.(\d+)$")


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


def list_sites(model: nn.Module, *, heads: bool = False) -> list[str]:
    """Valid site names of ``model``, in the order the forward pass computes them (layer by
    layer: resid_pre, [attn_z.L.*, attn_result.L.*,] attn_out, mlp_out, resid_post); the
    per-head sites only with ``heads=True``."""
    layers = decoder_layers(model)
    sites = []
    for i, layer in enumerate(layers):
        sites.append(f"resid_pre.{i}")
        attn = _child(layer, _ATTN_NAMES)
        if attn is not None:
            if heads and _child(attn, _OUT_PROJ_NAMES) is not None:
                n = n_heads(model)
                sites += [f"{kind}.{i}.{h}" for kind in HEAD_KINDS for h in range(n)]
            sites.append(f"attn_out.{i}")
        if _child(layer, _MLP_NAMES) is not None:
            sites.append(f"mlp_out.{i}")
        sites.append(f"resid_post.{i}")
    return sites


def n_heads(model: nn.Module) -> int:
    """Number of attention (query) heads per layer (``num_attention_heads`` / ``n_head``)."""
    config = model.config
    if hasattr(config, "get_text_config"):
        config = config.get_text_config()
    for name in ("num_attention_heads", "n_head", "n_heads"):
        value = getattr(config, name, None)
        if isinstance(value, int):
            return value
    raise InputError(
        f"{type(model).__name__}.config has no num_attention_heads / n_head; per-head sites "
        "need an HF decoder model (Qwen2/Qwen3/Llama/GPT-2 families)"
    )


def attention_projection(model: nn.Module, layer: int) -> nn.Module:
    """Layer ``layer``'s attention output projection (``o_proj`` / ``c_proj``): its input is
    every head's output, ``[batch, seq, n_heads * d_head]``."""
    attn = _child(decoder_layers(model)[layer], _ATTN_NAMES)
    proj = None if attn is None else _child(attn, _OUT_PROJ_NAMES)
    if proj is None:
        raise InputError(
            f"layer {layer} of {type(model).__name__} has no attention output projection "
            f"({', '.join(_OUT_PROJ_NAMES)}); per-head sites need Qwen2/Qwen3/Llama/GPT-2 models"
        )
    return proj


def _child(layer: nn.Module, names: tuple[str, ...]) -> nn.Module | None:
    for name in names:
        child = getattr(layer, name, None)
        if isinstance(child, nn.Module):
            return child
    return None


def parse_site(site: str) -> tuple[str, int]:
    """``"resid_post.3"`` -> ``("resid_post", 3)``, ``"attn_z.3.1"`` -> ``("attn_z", 3)`` (the
    head: :func:`site_head`); InputError for a malformed name."""
    match = None
    if isinstance(site, str):
        match = _SITE_RE.match(site) or _HEAD_RE.match(site)
    if match is None:
        raise InputError(
            f"malformed site {site!r}; a site is <kind>.<layer> with kind in {SITE_KINDS}, "
            f"e.g. 'resid_post.3', or <kind>.<layer>.<head> with kind in {HEAD_KINDS}"
        )
    return match.group(1), int(match.group(2))


def site_head(site: str) -> int | None:
    """The head of a per-head site (``"attn_z.3.1"`` -> 1); None for the other sites."""
    match = _HEAD_RE.match(site) if isinstance(site, str) else None
    return None if match is None else int(match.group(3))


def check_sites(sites: Sequence[str], valid: Sequence[str], owner: str) -> None:
    """InputError naming the sites of ``sites`` not in ``valid`` and listing the valid ones."""
    unknown = [site for site in sites if site not in valid]
    if unknown:
        layers: dict[str, list[int]] = {}
        heads: dict[str, set[int]] = {}
        for name in valid:
            kind, layer = parse_site(name)
            if site_head(name) is None:
                layers.setdefault(kind, []).append(layer)
            else:
                heads.setdefault(kind, set()).add(int(site_head(name)))  # type: ignore[arg-type]
                layers.setdefault(kind, [])
                if layer not in layers[kind]:
                    layers[kind].append(layer)
        shown = "; ".join(
            (
                f"{kind}.{min(ls)}..{kind}.{max(ls)}"
                if ls == list(range(min(ls), max(ls) + 1))
                else ", ".join(f"{kind}.{k}" for k in ls)
            )
            + (f" x heads .0..{max(heads[kind])}" if kind in heads else "")
            for kind, ls in layers.items()
        )
        raise InputError(f"unknown site(s) {unknown} for {owner}; valid sites: {shown}")


def resolve_site(model: nn.Module, site: str) -> tuple[nn.Module, HookKind]:
    """The module to hook for ``site`` and whether the site is its ``input`` or ``output`` (for
    a per-head site: the attention output projection's input, of which the site is a part —
    ``hooks.site_hooks`` cuts it out).

    Unknown sites raise InputError listing the valid ones."""
    check_sites([site], list_sites(model, heads=True), type(model).__name__)
    kind, layer_idx = parse_site(site)
    layer = decoder_layers(model)[layer_idx]
    if kind in HEAD_KINDS:
        return attention_projection(model, layer_idx), "input"
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


_PATTERN_RE = re.compile(
    rf"^({'|'.join(SITE_KINDS + HEAD_KINDS)})\.\*$|^({'|'.join(HEAD_KINDS)})\.\d+\.\*$"
)


def split_sites(sites: str) -> list[str]:
    """The comma-separated site names and patterns of ``sites``, each checked for its form
    (no model needed, so a typo is refused before one loads); whether a layer or head exists is
    checked by ``expand_sites``."""
    parts = [p.strip() for p in sites.split(",") if p.strip()]
    if not parts:
        raise InputError("no sites given; e.g. --sites resid_post.* or resid_post.3,mlp_out.3")
    for part in parts:
        if not (_SITE_RE.match(part) or _HEAD_RE.match(part) or _PATTERN_RE.match(part)):
            raise InputError(
                f"site {part!r} is not a site name: use KIND.L ({', '.join(SITE_KINDS)}), "
                f"KIND.L.H ({', '.join(HEAD_KINDS)}) or a pattern KIND.* / attn_z.L.*"
            )
    return parts


def expand_sites(model: nn.Module, sites: str) -> list[str]:
    """Comma-separated site names; ``KIND.*`` expands to every layer (e.g. ``resid_post.*``) and,
    for per-head kinds, every head (``attn_z.*``); ``attn_z.3.*`` to every head of layer 3."""
    parts = split_sites(sites)
    valid = list_sites(model, heads=True)
    out: list[str] = []
    for part in parts:
        if part.endswith(".*"):
            found = [s for s in valid if s.startswith(part[:-1])]
            if not found:
                raise InputError(
                    f"site pattern {part!r} matches nothing; valid sites: "
                    f"{', '.join(list_sites(model))} and per head {', '.join(HEAD_KINDS)}.L.H"
                )
            out += found
        else:
            out.append(part)
    return out
