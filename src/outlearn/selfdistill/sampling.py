"""Sampling transforms on categorical distributions: temperature, top-k, top-p, min-p.

Every function takes probabilities ``p`` of shape (..., V) (rows sum to 1, zeros allowed)
and returns an array of the same shape whose rows sum to 1. Temperature ``T`` maps
p -> p^(1/T) / sum p^(1/T) (computed in log space, zeros stay zero); the truncations
zero out outcomes and renormalise what survives:

- top-k keeps the k most probable outcomes (ties broken by index, lowest first);
- top-p (nucleus) keeps the smallest prefix, in decreasing order, whose mass reaches P
  (an outcome is kept when the mass strictly before it is below P);
- min-p keeps outcomes with p >= min_p * max(p).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outlearn.errors import ConfigError


@dataclass(frozen=True)
class Sampler:
    """How a model samples: temperature then optional truncations (None = off)."""

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    min_p: float | None = None

    def __post_init__(self) -> None:
        if not self.temperature > 0:
            raise ConfigError(f"temperature must be > 0 (got {self.temperature}): use e.g. 1.0")
        if self.top_k is not None and self.top_k < 1:
            raise ConfigError(f"top_k must be >= 1 (got {self.top_k}): use None to disable it")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ConfigError(f"top_p must be in (0, 1] (got {self.top_p}): use None to disable")
        if self.min_p is not None and not 0 <= self.min_p <= 1:
            raise ConfigError(f"min_p must be in [0, 1] (got {self.min_p}): use None to disable")

    def __call__(self, p: np.ndarray) -> np.ndarray:
        """The sampling distribution for model probabilities ``p`` (..., V)."""
        q = temper(p, self.temperature)
        if self.top_k is not None:
            q = top_k(q, self.top_k)
        if self.top_p is not None:
            q = top_p(q, self.top_p)
        if self.min_p is not None:
            q = min_p(q, self.min_p)
        return q


def normalise(w: np.ndarray) -> np.ndarray:
    """Rows of nonnegative weights ``w`` (..., V) scaled to sum to 1."""
    return w / w.sum(axis=-1, keepdims=True)


def temper(p: np.ndarray, temperature: float) -> np.ndarray:
    """p^(1/T) renormalised, in log space; zeros stay zero. Shape (..., V)."""
    p = np.asarray(p, dtype=np.float64)
    if temperature == 1.0:
        return normalise(p)
    with np.errstate(divide="ignore"):
        logp = np.log(p) / temperature
    logp = logp - logp.max(axis=-1, keepdims=True)
    return normalise(np.exp(logp))


def top_k(p: np.ndarray, k: int) -> np.ndarray:
    """Keep the k largest entries of each row (ties: lowest index first). Shape (..., V)."""
    order = np.argsort(-p, axis=-1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(p.shape[-1]), axis=-1)
    return normalise(np.where(ranks < k, p, 0.0))


def top_p(p: np.ndarray, mass: float) -> np.ndarray:
    """Nucleus: keep the smallest decreasing prefix with mass >= ``mass``. Shape (..., V)."""
    order = np.argsort(-p, axis=-1, kind="stable")
    sorted_p = np.take_along_axis(p, order, axis=-1)
    before = np.cumsum(sorted_p, axis=-1) - sorted_p
    keep_sorted = (before < mass) & (sorted_p > 0)
    keep = np.empty_like(keep_sorted)
    np.put_along_axis(keep, order, keep_sorted, axis=-1)
    return normalise(np.where(keep, p, 0.0))


def min_p(p: np.ndarray, ratio: float) -> np.ndarray:
    """Keep entries with p >= ratio * max(p) in their row. Shape (..., V)."""
    pmax = p.max(axis=-1, keepdims=True)
    return normalise(np.where((p >= ratio * pmax) & (p > 0), p, 0.0))


def sample_categorical(q: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One index per row of ``q`` (..., V) by inverse CDF; returns int64 of shape (...)."""
    cdf = np.cumsum(q, axis=-1)
    u = rng.random(q.shape[:-1] + (1,)) * cdf[..., -1:]
    idx = (cdf <= u).sum(axis=-1)
    return np.minimum(idx, q.shape[-1] - 1)
