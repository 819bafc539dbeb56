"""Relative position schemes for a transformer that runs on a sliding window.

A student acting online sees an unbounded stream of steps through a window of its last
``C`` (= ``context_len``) steps. With learned absolute positions every slide of the window
moves every step to a new position, so nothing computed for a step can be kept. With a
relative scheme, the score between a query at step ``i`` and a key at step ``j`` depends
only on ``i - j``, so the keys and values of past steps stay valid as the window slides
and a per-layer key/value cache (:class:`KVCache`) computes one new token per step.

* ``"rope"`` (rotary, Su et al. 2021): queries and keys are rotated by angles
  proportional to their absolute step; the dot product then depends on ``i - j`` only.
  Attention keeps torch's fused causal kernel (``is_causal=True``) in training.
* ``"alibi"`` (Press et al. 2022): a per-head linear penalty ``-slope_h * (i - j)`` added
  to the scores. It needs an explicit float mask, which takes attention off the fused
  causal kernel (measured: ``benchmarks/train.py --positions alibi``).
* ``"learned"``: the original absolute embedding (kept for old checkpoints); no cache.

Angles are computed in float64 from integer steps and then rounded to float32, so a step
thousands of steps into a rollout gets the same rotation in the cached path and in a
full recompute of the stream.
"""

from __future__ import annotations

from typing import Literal

import torch

Scheme = Literal["rope", "alibi", "learned"]
#: The default base, as in language models. The best base depends on the context: on the
#: AD 9x9 check (context 640) base 10,000 met the bar in 2 of 4 runs and base 100 did not
#: (0.77 of optimal at best); on the demo's 5x5 room (context 30) base 100 learned more in
#: context than 10,000 (``benchmarks/positions.py``), so ``configs/demo.toml`` sets
#: ``rope_base = 100``.
ROPE_BASE = 10000.0


def rope_tables(positions: torch.Tensor, head_dim: int, base: float = ROPE_BASE
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, signed sin), each (T, head_dim) float32, for integer ``positions`` (T,) and an
    even ``head_dim``: channel i and i + D/2 are rotated together by angle
    ``position * base^(-i / (D/2))``."""
    half = head_dim // 2
    inv = base ** (-torch.arange(half, dtype=torch.float64) / half)
    ang = positions.to(torch.float64)[:, None] * inv[None, :]
    cos, sin = torch.cos(ang).float(), torch.sin(ang).float()
    return torch.cat([cos, cos], -1), torch.cat([-sin, sin], -1)


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (B, H, T, D) by the tables of :func:`rope_tables` (T, D):
    (x1, x2) -> (x1 cos - x2 sin, x2 cos + x1 sin) for the halves x1, x2 of each head."""
    h = x.shape[-1] // 2
    swapped = torch.cat([x[..., h:], x[..., :h]], dim=-1)
    return x * cos.to(x.dtype) + swapped * sin.to(x.dtype)


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """(H,) float32: 2^(-8 h / H) for h = 1..H, ALiBi's geometric slopes."""
    return torch.pow(2.0, -8.0 * torch.arange(1, n_heads + 1, dtype=torch.float64)
                     / n_heads).float()


def window_mask(q_pos: torch.Tensor, k_pos: torch.Tensor, window: int) -> torch.Tensor:
    """Bool (Tq, Tk): a query at step i sees keys at steps j with i - window < j <= i."""
    d = q_pos[:, None] - k_pos[None, :]
    return (d >= 0) & (d < window)


def alibi_bias(slopes: torch.Tensor, q_pos: torch.Tensor, k_pos: torch.Tensor,
               window: int) -> torch.Tensor:
    """Float (H, Tq, Tk): ``-slope * (i - j)`` where visible (:func:`window_mask`), -inf
    elsewhere."""
    d = (q_pos[:, None] - k_pos[None, :]).float()
    bias = -slopes[:, None, None] * d[None]
    return bias.masked_fill(~window_mask(q_pos, k_pos, window)[None], float("-inf"))


class KVCache:
    """Per-layer keys and values of the last ``window`` steps of ``B`` streams.

    Ring buffers (B, H, window, D) per layer. Keys are stored already rotated (rope), so
    attention over the filled slots in any order gives the scores of the window; ALiBi
    keeps each slot's step to build its bias. Slot ``t % window`` holds step ``t``: once
    the window is full the oldest step is overwritten, i.e. it leaves the context.
    """

    def __init__(self, n_layers: int, batch: int, n_heads: int, head_dim: int, window: int,
                 device: torch.device, dtype: torch.dtype = torch.float32):
        shape = (batch, n_heads, window, head_dim)
        self.k = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.v = [torch.zeros(shape, device=device, dtype=dtype) for _ in range(n_layers)]
        self.pos = torch.zeros(window, dtype=torch.long, device=device)
        self.window, self.t = window, 0

    @property
    def filled(self) -> int:
        """Slots holding a step (all of them once ``t >= window``)."""
        return min(self.t, self.window)

    def slot(self) -> int:
        return self.t % self.window

    def write(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor,
                                                                         torch.Tensor]:
        """Store step ``t``'s (B, H, 1, D) key/value in ``layer``; return the layer's
        keys and values over the filled slots, this step's included."""
        s = self.slot()
        self.pos[s] = self.t
        self.k[layer][:, :, s:s + 1] = k
        self.v[layer][:, :, s:s + 1] = v
        n = min(self.t + 1, self.window)
        return self.k[layer][:, :, :n], self.v[layer][:, :, :n]

    def keys_pos(self) -> torch.Tensor:
        """(n,) the steps held by the slots :meth:`write` returned, this step's included."""
        return self.pos[:min(self.t + 1, self.window)]

    def advance(self) -> None:
        """Move to step ``t + 1`` (after every layer has written step ``t``)."""
        self.t += 1
