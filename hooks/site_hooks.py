"""One hook per site, whatever its kind: the tensor a reader or an intervention sees is the
site's own (``[batch, seq, d_model]``, or one head's ``[batch, seq, d_head]`` /
``[batch, seq, d_model]`` for the per-head sites of :mod:`hooks.sites`).

A per-head site hooks the input of the attention output projection, ``b p (h d)``: ``attn_z.L.H``
is head ``H`` of ``split_heads`` (a returned tensor replaces that head's slice, the other heads
unchanged: steering and ablating one head); ``attn_result.L.H`` is that head's ``z @ W_O[H]``,
computed in the hook (read-only).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Any, Self

from torch import Tensor, nn

from experiments.errors import InputError
from hooks.heads import head_results, merge_heads, out_weights, split_heads
from hooks.sites import add_hook, n_heads, parse_site, resolve_site, site_head

SiteFn = Callable[[Tensor], Tensor | None]


def add_site_hook(model: nn.Module, site: str, fn: SiteFn, *, prepend: bool = False) -> Any:
    """Register ``fn(site tensor) -> Tensor | None`` at ``site`` (see :func:`hooks.sites.add_hook`:
    a returned tensor replaces the site's in the forward pass); returns the handle."""
    module, kind = resolve_site(model, site)
    head = site_head(site)
    if head is None:
        return add_hook(module, kind, fn, prepend=prepend)
    site_kind, layer = parse_site(site)
    heads = n_heads(model)
    if site_kind == "attn_result":
        w_o = out_weights(model, layer)[head]

        def read_result(x: Tensor) -> None:
            z = split_heads(x, heads)[:, :, head : head + 1]
            if fn(head_results(z, w_o[None])[:, :, 0]) is not None:
                raise InputError(
                    f"{site} is read-only (a head's write into the residual stream); steer or "
                    f"ablate attn_z.{layer}.{head} instead"
                )

        return add_hook(module, kind, read_result, prepend=prepend)

    def on_z(x: Tensor) -> Tensor | None:
        z = split_heads(x, heads)
        new = fn(z[:, :, head])
        if new is None:
            return None
        z = z.clone()
        z[:, :, head] = new
        return merge_heads(z)

    return add_hook(module, kind, on_z, prepend=prepend)


class SiteHooks:
    """A context manager holding hooks on sites of ``self.model``: ``_site_hooks()`` says which
    (site, fn) pairs go on at ``__enter__`` (before the model's other hooks when ``prepend``);
    every one comes off at ``__exit__``, also when the block raises or an install fails."""

    prepend = False

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self._handles: list[Any] = []

    def _site_hooks(self) -> Iterable[tuple[str, SiteFn]]:
        raise NotImplementedError

    def __enter__(self) -> Self:
        if self._handles:
            name = type(self).__name__
            raise RuntimeError(f"this {name} is already active; use one `with` block at a time")
        try:
            for site, fn in self._site_hooks():
                hook = add_site_hook(self.model, site, fn, prepend=self.prepend)
                self._handles.append(hook)
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._remove()

    def _remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
