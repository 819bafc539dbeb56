"""Maximum-likelihood fit of a learner family to recorded histories.

The likelihood of an epsilon-greedy learner is piecewise constant in the parameters that
act through an argmax (a Q-learner's learning rate, discount and initial value change its
probabilities only when they change which action is greedy), so it has no useful
gradient: the fit is a search. For every combination of the discrete variants compared,
a coarse grid over the free parameters (their product, about ``grid`` members); then, in
the best variant, random members in boxes around the best ones, shrinking round by round
(the local refinement: the surface is rugged, so a search rather than a descent); then,
per parameter, a profile scan over its whole range in bins, walked outward from the best
member's bin, each bin's members drawn around the best member of the bin before it (so
the scan follows a ridge along which parameters trade off). All learners given are
fitted jointly (one member wrote them all): their log-likelihoods add.

CIs are profile-likelihood intervals: the values of a parameter whose best
log-likelihood (over every member evaluated with a value in the same bin of its range) is
within ``chi2(1, 0.95) / 2 = 1.92`` of the maximum, widened by one bin each side (so the
interval covers the gap to the nearest bin outside rather than ending inside it). A
parameter that leaves the likelihood unchanged over its range is reported as not
identified (its CI is the range).
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.stats import chi2

from outlearn.errors import ConfigError
from outlearn.identify.families import LearnerFamily, Steps

#: half the 95% quantile of chi-square with one degree of freedom
PROFILE_DROP = float(chi2.ppf(0.95, 1) / 2.0)
#: candidates evaluated per call (memory: one learner's tables for this many members)
CHUNK = 16_384


@dataclass(frozen=True)
class Space:
    """What a fit searches: free parameters' ranges, fixed values, variants to compare."""

    free: dict[str, tuple[float, float]]
    fixed: dict[str, float]
    variants: dict[str, tuple[Any, ...]]
    grid: int = 10_000
    refine_rounds: int = 3
    refine_points: int = 2_000
    starts: int = 5
    profile_points: int = 24
    profile_others: int = 32
    seed: int = 0

    def combos(self) -> list[dict[str, Any]]:
        names = list(self.variants)
        return [dict(zip(names, vals, strict=True))
                for vals in itertools.product(*(self.variants[n] for n in names))]


@dataclass
class FitResult:
    """The best member, its log-likelihood, per-parameter profile CIs, each variant's best."""

    family: str
    values: dict[str, float]
    variant: dict[str, Any]
    loglik: float
    ci: dict[str, tuple[float, float]]
    identified: dict[str, bool]
    variants: dict[str, float]  # each variant combination (as text) -> its best loglik
    evaluations: int
    seconds: float
    steps: int  # transitions the likelihood was summed over (all learners)
    free: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"family": self.family, "values": self.values, "variant": self.variant,
                "loglik": self.loglik, "ci": {k: list(v) for k, v in self.ci.items()},
                "identified": self.identified, "variants": self.variants,
                "evaluations": self.evaluations, "seconds": self.seconds, "steps": self.steps,
                "free": self.free}

    @staticmethod
    def from_dict(d: Mapping[str, Any]) -> FitResult:
        return FitResult(d["family"], dict(d["values"]), dict(d["variant"]), float(d["loglik"]),
                         {k: (float(v[0]), float(v[1])) for k, v in d["ci"].items()},
                         dict(d["identified"]), dict(d["variants"]), int(d["evaluations"]),
                         float(d["seconds"]), int(d["steps"]), list(d["free"]))


def variant_text(variant: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(variant.items())) or "(no variants)"


class _Coords:
    """Free parameters in search coordinates (log for log-scaled ones) and back."""

    def __init__(self, fam: LearnerFamily, space: Space):
        self.names = list(space.free)
        self.log = [fam.param(n).log for n in self.names]
        self.lo = np.array([self._to(i, space.free[n][0]) for i, n in enumerate(self.names)])
        self.hi = np.array([self._to(i, space.free[n][1]) for i, n in enumerate(self.names)])

    def _to(self, i: int, v: float) -> float:
        return math.log(v) if self.log[i] else float(v)

    def to_values(self, u: np.ndarray) -> np.ndarray:
        """(C, k) search coordinates -> parameter values."""
        out = np.array(u, dtype=np.float64, copy=True)
        for i, lg in enumerate(self.log):
            if lg:
                out[:, i] = np.exp(out[:, i])
        return out

    def axis(self, i: int, n: int) -> np.ndarray:
        return np.linspace(self.lo[i], self.hi[i], max(n, 2))


def check_space(fam: LearnerFamily, space: Space) -> None:
    """Refuse unknown parameters, a parameter both free and fixed or neither, bad ranges."""
    names = {p.name for p in fam.params}
    for n in [*space.free, *space.fixed]:
        fam.param(n)
    both = set(space.free) & set(space.fixed)
    if both:
        raise ConfigError(f"{', '.join(sorted(both))}: a parameter is either free (a range) or "
                          "fixed (a number), not both")
    missing = names - set(space.free) - set(space.fixed)
    if missing:
        raise ConfigError(f"family {fam.name!r}: give {', '.join(sorted(missing))} a range "
                          "[low, high] to fit or a number to fix")
    for n, (lo, hi) in space.free.items():
        p = fam.param(n)
        if not (p.low <= lo < hi <= p.high) or (p.log and lo <= 0):
            raise ConfigError(f"{n} = [{lo}, {hi}]: need {p.low} <= low < high <= {p.high}"
                              + (" and low > 0 (searched in log space)" if p.log else ""))
    if not space.free:
        raise ConfigError("no free parameter: give at least one parameter a range [low, high]")
    for k, vals in space.variants.items():
        for v in vals:
            fam.check_variant({k: v})


def fit(fam: LearnerFamily, steps: Steps, upto: int | np.ndarray, num_obs: int,
        num_actions: int, space: Space) -> FitResult:
    """The maximum-likelihood member of ``fam`` for ``steps`` (L learners) up to ``upto``."""
    check_space(fam, space)
    first_end = np.argmax(steps.done, axis=1) + 1  # each learner's first episode's end
    if (~steps.done.any(axis=1)).any() or np.any(np.asarray(upto) < first_end):
        raise ConfigError(
            f"a cut at step {np.min(upto)} comes before the end of the first complete "
            f"episode (step {int(first_end.max())} for some learner): the fit would not see "
            "one whole episode. Cut later (a larger fraction of optimal, or more steps)")
    t0 = time.perf_counter()
    co = _Coords(fam, space)
    k = len(co.names)
    n_axis = max(2, int(round(space.grid ** (1.0 / k))))
    grid = np.array(list(itertools.product(*(co.axis(i, n_axis) for i in range(k)))))
    evaluated: list[tuple[np.ndarray, np.ndarray]] = []  # best variant's (coords, loglik)
    counts = [0]

    def loglik(u: np.ndarray, variant: dict[str, Any]) -> np.ndarray:
        vals = co.to_values(u)
        out = []
        for lo in range(0, len(u), CHUNK):
            theta = {n: vals[lo:lo + CHUNK, i] for i, n in enumerate(co.names)}
            c = len(vals[lo:lo + CHUNK])
            theta.update({n: np.full(c, v) for n, v in space.fixed.items()})
            ll = fam.log_likelihood(theta, variant, steps, upto, num_obs, num_actions)
            out.append(ll.sum(axis=0))
        counts[0] += len(u)
        return np.concatenate(out)

    per_variant: dict[str, tuple[float, dict[str, Any], np.ndarray, np.ndarray]] = {}
    for variant in space.combos():
        ll = loglik(grid, variant)
        per_variant[variant_text(variant)] = (float(ll.max()), variant, grid, ll)
    best_text = max(per_variant, key=lambda t: per_variant[t][0])
    _, variant, g, gll = per_variant[best_text]
    evaluated.append((g, gll))
    x = g[int(np.argmax(gll))].copy()
    best = float(gll.max())
    spacing = (co.hi - co.lo) / (n_axis - 1)

    # local refinement: random members in boxes around the best ones, shrinking; the
    # first round starts from the grid's best few (the surface is rugged: the best grid
    # point need not sit on the best ridge)
    rng = np.random.default_rng(space.seed)
    top = g[np.argsort(-gll)[:space.starts]]
    for r in range(space.refine_rounds):
        centres = top if r == 0 else x[None]
        half = spacing / 2 ** r
        n_each = max(1, space.refine_points // len(centres))
        u = np.concatenate([np.clip(c + rng.uniform(-1, 1, (n_each, k)) * half, co.lo, co.hi)
                            for c in centres])
        ll = loglik(u, variant)
        evaluated.append((u, ll))
        j = int(np.argmax(ll))
        if ll[j] > best:
            best, x = float(ll[j]), u[j].copy()

    # profile scans: each parameter's range in bins, walked outward from the best member's
    # bin; a bin's members start from the best member found in the bin before it (so the
    # scan follows a ridge where parameters trade off) with the others drawn around it
    us = np.concatenate([e[0] for e in evaluated])
    lls = np.concatenate([e[1] for e in evaluated])
    bins = space.profile_points
    edges = [np.linspace(co.lo[i], co.hi[i], bins + 1) for i in range(k)]
    home = [int(np.clip(np.searchsorted(edges[i], x[i], side="right") - 1, 0, bins - 1))
            for i in range(k)]
    seeds = {(i, home[i], d): x.copy() for i in range(k) for d in (-1, 1)}
    for step in range(1, bins):
        jobs = [(i, home[i] + d * step, d) for i in range(k) for d in (-1, 1)
                if 0 <= home[i] + d * step < bins]
        if not jobs:
            break
        n = space.profile_others
        u = np.concatenate([np.clip(seeds[i, b - d, d] + rng.uniform(-0.5, 0.5, (n, k)) * spacing,
                                    co.lo, co.hi) for i, b, d in jobs])
        for m, (i, b, _) in enumerate(jobs):
            u[m * n:(m + 1) * n, i] = rng.uniform(edges[i][b], edges[i][b + 1], n)
        ll = loglik(u, variant)
        for m, (i, b, d) in enumerate(jobs):
            j = m * n + int(np.argmax(ll[m * n:(m + 1) * n]))
            seeds[i, b, d] = u[j].copy()
        evaluated.append((u, ll))
        j = int(np.argmax(ll))
        if ll[j] > best:
            best, x = float(ll[j]), u[j].copy()

    us = np.concatenate([e[0] for e in evaluated])
    lls = np.concatenate([e[1] for e in evaluated])
    ci, ident = {}, {}
    for i, name in enumerate(co.names):
        lo, hi, flat = _profile_interval(us[:, i], lls, best, co.lo[i], co.hi[i],
                                         space.profile_points)
        vals = co.to_values(np.array([[lo if m == i else 0.0 for m in range(k)],
                                      [hi if m == i else 0.0 for m in range(k)]]))[:, i]
        ci[name], ident[name] = (float(vals[0]), float(vals[1])), not flat
    values = dict(zip(co.names, co.to_values(x[None])[0].tolist(), strict=True))
    values.update(space.fixed)
    n_steps = int(np.minimum(np.asarray(upto), steps.obs.shape[1]).sum()
                  if np.ndim(upto) else min(int(upto), steps.obs.shape[1]) * steps.obs.shape[0])
    return FitResult(fam.name, values, fam.check_variant(variant), best, ci, ident,
                     {t: v[0] for t, v in per_variant.items()}, counts[0],
                     time.perf_counter() - t0, n_steps, list(co.names))


def _profile_interval(u: np.ndarray, ll: np.ndarray, best: float, lo: float, hi: float,
                      bins: int) -> tuple[float, float, bool]:
    """(low, high, flat) of the profile-likelihood interval of one coordinate ``u`` over
    evaluated members: the range is cut into ``bins`` bins, a bin's profile is the best
    log-likelihood among members evaluated in it, and the interval spans the bins within
    PROFILE_DROP of ``best``, widened by one bin each side (the value between evaluated
    members is unknown). ``flat``: no evaluated bin drops by PROFILE_DROP (the parameter
    is not identified over its range)."""
    edges = np.linspace(lo, hi, bins + 1)
    which = np.clip(np.searchsorted(edges, u, side="right") - 1, 0, bins - 1)
    prof = np.full(bins, -np.inf)
    np.maximum.at(prof, which, ll)
    seen = np.isfinite(prof)
    inside = np.flatnonzero(prof >= best - PROFILE_DROP)
    a, b = max(int(inside.min()) - 1, 0), min(int(inside.max()) + 1, bins - 1)
    flat = bool(np.all(prof[seen] >= best - PROFILE_DROP))
    return float(edges[a]), float(edges[b + 1]), flat


def space_from(fam: LearnerFamily, params: Mapping[str, Any], variants: Mapping[str, Any],
               defaults: Mapping[str, Any] | None = None, **kw: Any) -> Space:
    """A :class:`Space` from config tables: ``params`` maps a name to [low, high] (free) or
    a number (fixed); a parameter not named is fixed at ``defaults`` (the teacher's default
    setting); ``variants`` maps a name to a list of values to compare, or one value."""
    free, fixed = {}, {}
    for n, v in params.items():
        fam.param(n)
        if isinstance(v, Sequence) and not isinstance(v, str):
            if len(v) != 2:
                raise ConfigError(f"params.{n} = {list(v)}: give [low, high] or one number")
            free[n] = (float(v[0]), float(v[1]))
        else:
            fixed[n] = float(v)
    for p in fam.params:
        if p.name not in free and p.name not in fixed and defaults and p.name in defaults:
            fixed[p.name] = float(defaults[p.name])
    var = {n: tuple(v) if isinstance(v, Sequence) and not isinstance(v, str) else (v,)
           for n, v in variants.items()}
    for n, vals in var.items():
        for v in vals:
            fam.check_variant({n: v})
    return Space(free, fixed, var, **kw)
