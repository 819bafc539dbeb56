"""One training step's loss and gradients, the batch cut into shards run in parallel.

See :mod:`outlearn.students.threads` for why: every op runs on one thread and the
``shards`` slices of a batch run on up to ``threads`` threads at once. The loss is the
masked mean over the whole batch: each shard differentiates its masked sum, and the
shards' gradients are added in shard order and divided by the batch's count: the same
numbers for any number of threads.

A forward pass that draws random numbers (dropout) runs its shards one after another on
the calling thread, so that the draws come in a fixed order; the backward passes (most of
the work) still run in parallel.

``precision="bf16"``: linear layers run under bfloat16 autocast (on CPU, attention stays in
float32: see :class:`outlearn.students.ad.Block`); the loss is computed in float32.

The loss is the masked cross-entropy to the labels, unless the model brings its own
objective: a model with ``forward_batch(batch)`` and ``objective_terms(outputs, batch) ->
(masked sum, count)`` (:class:`outlearn.students.adq.ADQTransformer`, trained by temporal
differences) is trained on that instead, through the same shards, threads and precision.
"""

from __future__ import annotations

import contextlib
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import nn

from outlearn.students.threads import shard_pool

Precision = Literal["fp32", "bf16"]


def forward_batch(model: nn.Module, b: dict[str, torch.Tensor]) -> Any:
    """Logits (B, P, A) of a batch from :class:`~outlearn.students.data.WindowSampler`
    (or what the model's own ``forward_batch`` returns, for its ``objective_terms``)."""
    own = getattr(model, "forward_batch", None)
    if own is not None:
        return own(b)
    if model.inputs == "set":
        return model(b["ctx_obs"], b["ctx_action"], b["ctx_reward"], b["ctx_next_obs"],
                     b["query_obs"])
    return model(b["obs"], b["prev_action"], b["prev_reward"], b["new_episode"])


def loss_terms(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """(sum of masked cross-entropies, number of masked positions). logits (B, P, A);
    target (B, P) int, (B, P, A) float (soft labels) or (B,) int (one label per row,
    broadcast over P); mask like target."""
    if target.dim() == 1:
        target = target[:, None].expand(logits.shape[:2])
        mask = mask[:, None].expand(logits.shape[:2])
    logp = F.log_softmax(logits.float(), dim=-1)
    if target.is_floating_point():
        nll = -(target * logp).sum(-1)
    else:
        nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    m = mask.float()
    return (nll * m).sum(), m.sum()


def loss_fn(logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Masked mean cross-entropy (see :func:`loss_terms` for the shapes)."""
    total, count = loss_terms(logits, target, mask)
    return total / count.clamp(min=1.0)


def autocast(precision: Precision, device: torch.device) -> contextlib.AbstractContextManager:
    """bfloat16 autocast for ``"bf16"``, nothing for ``"fp32"``."""
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=torch.bfloat16)


def bf16_native() -> bool:
    """Whether this CPU has bfloat16 instructions (avx512_bf16 or AMX)."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # pragma: no cover - builds without oneDNN
        return False


def forward_uses_rng(model: nn.Module) -> bool:
    """Whether the model draws random numbers in its training forward pass: any module with
    a dropout probability above 0 (``p``, ``dropout``, ``attn_dropout``)."""
    for m in model.modules():
        for name in ("p", "dropout", "attn_dropout"):
            v = getattr(m, name, None)
            if isinstance(v, float) and v > 0:
                return True
    return False


class ShardedStep:
    """Loss and gradients of a batch, cut into ``shards`` slices along the batch axis.

    ``threads``: how many shards run at once (1: one after another on the calling
    thread; on a GPU the shards always run one after another).
    """

    def __init__(self, model: nn.Module, shards: int, threads: int, precision: Precision,
                 device: torch.device):
        self.model, self.shards, self.precision, self.device = model, shards, precision, device
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.stochastic = forward_uses_rng(model)  # training forwards then run in order
        self.pool: ThreadPoolExecutor | None = (
            shard_pool(min(threads, shards)) if device.type == "cpu" else None)

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()

    def _map(self, fn: Any, items: list[Any]) -> list[Any]:
        if self.pool is None:
            return [fn(x) for x in items]
        return list(self.pool.map(fn, items))

    def _forward(self, b: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        with autocast(self.precision, self.device):
            out = forward_batch(self.model, b)
        objective = getattr(self.model, "objective_terms", None)
        if objective is not None:
            return objective(out, b)  # type: ignore[no-any-return]
        return loss_terms(out, b["target"], b["mask"])

    def split(self, batch: dict[str, torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        n = next(iter(batch.values())).shape[0]
        size = n // self.shards
        return [{k: v[i * size:(i + 1) * size] for k, v in batch.items()}
                for i in range(self.shards)]

    def backward(self, batch: dict[str, torch.Tensor]) -> float:
        """Set every parameter's ``.grad`` to the gradient of the batch's mean loss and
        return the loss. Each shard differentiates its masked sum; the sums of gradients
        are divided by the batch's count at the end, so a shard needs nothing from the
        others and runs forward and backward as one task."""
        parts = self.split(batch)

        def grads(term: tuple[torch.Tensor, torch.Tensor]) -> tuple[Any, ...]:
            return (*term, torch.autograd.grad(term[0], self.params, allow_unused=True))

        if self.stochastic and self.model.training:
            done = self._map(grads, [self._forward(b) for b in parts])
        else:
            done = self._map(lambda b: grads(self._forward(b)), parts)
        count = torch.stack([c for _, c, _ in done]).sum().clamp(min=1.0)
        for i, p in enumerate(self.params):
            gs = [g[i] for _, _, g in done if g[i] is not None]
            p.grad = None if not gs else _ordered_sum(gs).div_(count)
        return float(sum(float(t.detach()) for t, _, _ in done) / float(count))

    @torch.no_grad()
    def loss(self, batch: dict[str, torch.Tensor]) -> float:
        """The batch's mean loss (no gradients), summed over shards in the same way."""
        terms = self._map(self._forward, self.split(batch))
        count = torch.stack([c for _, c in terms]).sum().clamp(min=1.0)
        return float(sum(float(t) for t, _ in terms) / float(count))


def _ordered_sum(gs: list[torch.Tensor]) -> torch.Tensor:
    out = gs[0].clone()
    for g in gs[1:]:
        out += g
    return out
