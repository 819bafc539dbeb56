"""Self-distillation of a categorical model over V outcomes (claim 13).

Ideal refit (infinite samples): p' = S(p), where S is the sampler (temperature T, then
truncation); at plain temperature, p' ∝ p^(1/T) and after t generations
p_t ∝ p_0^(T^-t) (:func:`closed_form`).

Finite refit (:func:`run_finite`): R independent repeats, each generation draws N
outcomes, a fraction ``fresh`` of them from the real distribution p_0 and the rest from
S(p_{t-1}); p_t is the add-``alpha`` smoothed frequency of that generation's data, or of
all data since generation 1 when ``accumulate``. At T=1 with no options this is
Wright-Fisher drift: p_t is a martingale, E[1 - sum p_t^2] = (1 - sum p_0^2)(1 - 1/N)^t,
and outcome i fixes with probability p_0(i).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outlearn.errors import ConfigError
from outlearn.selfdistill.sampling import Sampler, normalise


def ideal_refit(p: np.ndarray, sampler: Sampler) -> np.ndarray:
    """One ideal generation: the refit model equals its sampling distribution. (..., V)."""
    return sampler(p)


def ideal_trajectory(p0: np.ndarray, sampler: Sampler, generations: int) -> np.ndarray:
    """Iterates p_0..p_G of the ideal refit; shape (G + 1, ..., V)."""
    out = [np.asarray(p0, dtype=np.float64)]
    for _ in range(generations):
        out.append(ideal_refit(out[-1], sampler))
    return np.stack(out)


def closed_form(p0: np.ndarray, temperature: float, t: int | float) -> np.ndarray:
    """p_t ∝ p_0^(T^-t), zeros kept zero; shape (..., V). Stable for large t."""
    p0 = np.asarray(p0, dtype=np.float64)
    with np.errstate(divide="ignore"):
        logp = np.log(p0)
    logp = logp - logp.max(axis=-1, keepdims=True)
    with np.errstate(over="ignore"):
        expo = np.power(np.float64(temperature), -float(t))
    with np.errstate(invalid="ignore"):
        scaled = np.where(logp == 0, 0.0, logp * expo)  # the max stays at 0 even if expo=inf
        scaled = np.where(p0 > 0, scaled, -np.inf)
    return normalise(np.exp(scaled))


def ideal_limit(p0: np.ndarray, temperature: float) -> np.ndarray:
    """The t -> infinity limit: p_0 (T=1), uniform on argmax (T<1) or on support (T>1)."""
    p0 = np.asarray(p0, dtype=np.float64)
    if temperature == 1.0:
        return normalise(p0)
    if temperature < 1.0:
        mask = p0 == p0.max(axis=-1, keepdims=True)
    else:
        mask = p0 > 0
    return normalise(mask.astype(np.float64))


@dataclass(frozen=True)
class FiniteOptions:
    """Options of the finite-sample loop (see the module docstring)."""

    n_samples: int = 100
    fresh: float = 0.0
    accumulate: bool = False
    alpha: float = 0.0

    def __post_init__(self) -> None:
        if self.n_samples < 1:
            raise ConfigError(f"n_samples must be >= 1 (got {self.n_samples}): use e.g. 100")
        if not 0.0 <= self.fresh <= 1.0:
            raise ConfigError(f"fresh must be in [0, 1] (got {self.fresh}): it is a fraction")
        if self.alpha < 0:
            raise ConfigError(f"alpha must be >= 0 (got {self.alpha}): use 0 for no smoothing")


@dataclass
class Trajectory:
    """Per-generation metrics of R repeats; each array has shape (G + 1, R).

    ``first_outcome`` is p_t(0) of every repeat (the martingale check). ``fixed_at`` (R,):
    first generation whose model puts all mass on one outcome (-1 if never);
    ``fixed_to`` (R,): that outcome (-1 if never). ``final`` (R, V): p_G.
    """

    entropy: np.ndarray
    modal: np.ndarray
    support: np.ndarray
    heterozygosity: np.ndarray
    mean_p: np.ndarray
    first_outcome: np.ndarray
    fixed_at: np.ndarray
    fixed_to: np.ndarray
    final: np.ndarray


def entropy(p: np.ndarray) -> np.ndarray:
    """Shannon entropy in nats of rows of ``p`` (..., V) -> (...)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log(p), 0.0)
    return terms.sum(axis=-1)


def heterozygosity(p: np.ndarray) -> np.ndarray:
    """1 - sum p^2 of rows of ``p`` (..., V) -> (...)."""
    return 1.0 - (p * p).sum(axis=-1)


def _draw(p: np.ndarray, p_real: np.ndarray, opts: FiniteOptions, sampler: Sampler,
          rng: np.random.Generator) -> np.ndarray:
    """One generation's counts, shape (R, V)."""
    n_fresh = int(round(opts.fresh * opts.n_samples))
    counts = rng.multinomial(opts.n_samples - n_fresh, sampler(p))
    if n_fresh:
        counts = counts + rng.multinomial(n_fresh, np.broadcast_to(p_real, p.shape))
    return counts


def _fit(counts: np.ndarray, alpha: float) -> np.ndarray:
    """Add-alpha smoothed frequencies of ``counts`` (R, V)."""
    return normalise(counts + alpha)


def run_finite(p0: np.ndarray, sampler: Sampler, opts: FiniteOptions, repeats: int,
               generations: int, seed: int = 0) -> Trajectory:
    """The finite-sample loop for ``repeats`` independent chains from ``p0`` (V,)."""
    rng = np.random.default_rng(seed)
    p0 = normalise(np.asarray(p0, dtype=np.float64))
    p = np.tile(p0, (repeats, 1))
    total = np.zeros_like(p)
    hist = [p]
    for _ in range(generations):
        counts = _draw(p, p0, opts, sampler, rng)
        if opts.accumulate:
            total = total + counts
            counts = total
        p = _fit(counts, opts.alpha)
        hist.append(p)
    return summarise(np.stack(hist))


def summarise(ps: np.ndarray) -> Trajectory:
    """Metrics of iterates ``ps`` of shape (G + 1, R, V)."""
    fixed = ps.max(axis=-1) >= 1.0 - 1e-12
    ever = fixed.any(axis=0)
    first = np.where(ever, fixed.argmax(axis=0), -1)
    gens = np.arange(ps.shape[1])
    fixed_to = np.where(ever, ps[np.maximum(first, 0), gens].argmax(axis=-1), -1)
    return Trajectory(
        entropy=entropy(ps), modal=ps.max(axis=-1), support=(ps > 0).sum(axis=-1),
        heterozygosity=heterozygosity(ps), mean_p=ps.mean(axis=1), first_outcome=ps[..., 0],
        fixed_at=first,
        fixed_to=fixed_to, final=ps[-1],
    )


def expected_heterozygosity(p0: np.ndarray, n_samples: int, generations: int) -> np.ndarray:
    """Wright-Fisher: E[1 - sum p_t^2] = (1 - sum p_0^2)(1 - 1/N)^t for t = 0..G."""
    t = np.arange(generations + 1)
    return heterozygosity(normalise(np.asarray(p0, float))) * (1.0 - 1.0 / n_samples) ** t


def run_finite_loop(p0: np.ndarray, sampler: Sampler, opts: FiniteOptions, repeats: int,
                    generations: int, seed: int = 0) -> np.ndarray:
    """Reference: the same loop one repeat at a time in plain Python. Returns p_G (R, V).

    Kept for the benchmark (the vectorised :func:`run_finite` against this).
    """
    rng = np.random.default_rng(seed)
    p0 = normalise(np.asarray(p0, dtype=np.float64))
    finals, metrics = [], []
    for _ in range(repeats):
        p = p0.copy()
        total = np.zeros_like(p)
        for _ in range(generations):
            counts = _draw(p[None], p0, opts, sampler, rng)[0]
            if opts.accumulate:
                total = total + counts
                counts = total
            p = _fit(counts, opts.alpha)
            metrics.append((entropy(p), heterozygosity(p), p.max(), (p > 0).sum()))
        finals.append(p)
    return np.stack(finals)
