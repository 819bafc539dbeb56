"""Claim 13: a categorical model refitted on its own samples at temperature T.

``selfdistill-categorical``: the exact map p' ∝ p^(1/T), Wright-Fisher drift at T=1 with N
samples per generation, fresh and accumulated real data, and truncated sampling.
``selfdistill-lm``: the same loop on character language models of Python's help text
(its config and sections live in :mod:`outlearn.studies.lmstudy`).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from pydantic import Field, model_validator

from outlearn.config import Config, Seed
from outlearn.registry import STUDIES
from outlearn.report.section import Outcome, Section
from outlearn.selfdistill.categorical import (
    FiniteOptions,
    closed_form,
    entropy,
    expected_heterozygosity,
    ideal_limit,
    ideal_trajectory,
    run_finite,
)
from outlearn.selfdistill.figures import ci, curves_figure, z_score
from outlearn.selfdistill.sampling import Sampler
from outlearn.studies.base import RunContext, Study
from outlearn.studies.lmstudy import LMStudyConfig, run_lm_study

Z_MAX = 4.0  # |mean - theory| within 4 standard errors counts as agreement


class CategoricalConfig(Config):
    """The categorical self-distillation study."""

    vocab: int = Field(20, ge=3, description="outcomes V")
    modes: int = Field(2, ge=1, description="tied most probable outcomes")
    zeros: int = Field(2, ge=0, description="outcomes with p0 = 0 (must stay 0)")
    zipf: float = Field(1.0, gt=0, description="p0 ∝ 1 / rank^zipf")
    temperatures: list[float] = Field(
        default_factory=lambda: [0.5, 0.8, 1.0, 1.25, 2.0],
        description="temperatures of the ideal refit p' ∝ p^(1/T), each > 0, 1.0 included")
    ideal_generations: int = Field(60, ge=1, description="generations of the exact refit (and "
                                   "of the truncated samplers)")
    n_samples: int = Field(50, ge=1, description="N samples per generation")
    repeats: int = Field(1000, ge=2, description="independent runs of every finite-sample "
                         "loop (CIs are over them)")
    generations: int = Field(40, ge=1, description="generations of the finite-sample loops "
                             "(drift, fresh and accumulated data)")
    fixation_samples: int = Field(10, ge=1, description="N for the fixation run")
    fixation_generations: int = Field(400, ge=1, description="generations of the fixation run "
                                      "(long enough for one outcome to take over)")
    fresh: float = Field(0.1, ge=0, le=1, description="share of fresh samples from p0 in every "
                         "generation of the 'fresh' loop")
    top_k: int = Field(5, ge=1, description="k of the top-k sampler")
    top_p: float = Field(0.9, gt=0, lt=1, description="P of the top-p (nucleus) sampler")
    min_p: float = Field(0.1, gt=0, lt=1, description="threshold of the min-p sampler "
                         "(outcomes below min_p x the top probability are dropped)")
    seed: Seed = Field(0, description="seed of the samples (each loop derives its own from it)")

    @model_validator(mode="after")
    def _check(self) -> CategoricalConfig:
        if self.modes + self.zeros >= self.vocab:
            raise ValueError("modes + zeros must be < vocab: raise vocab or lower them")
        if any(t <= 0 for t in self.temperatures) or 1.0 not in self.temperatures:
            raise ValueError("temperatures must be > 0 and include 1.0: e.g. [0.5, 1.0, 2.0]")
        return self

    def p0(self) -> np.ndarray:
        """(V,): `modes` tied top outcomes, then a Zipf tail, then `zeros` zeros."""
        n_tail = self.vocab - self.modes - self.zeros
        ranks = np.concatenate([np.ones(self.modes), 2.0 + np.arange(n_tail)])
        w = np.concatenate([ranks ** -self.zipf, np.zeros(self.zeros)])
        return w / w.sum()


def _ideal_section(cfg: CategoricalConfig, ctx: RunContext) -> Section:
    p0, gens = cfg.p0(), cfg.ideal_generations
    rows, ok, curves = [], [], {}
    for t in cfg.temperatures:
        tr = ideal_trajectory(p0, Sampler(t), gens)
        cf_err = max(np.abs(tr[g] - closed_form(p0, t, g)).max() for g in range(gens + 1))
        dist = np.abs(tr - ideal_limit(p0, t)).sum(axis=-1)
        near = np.flatnonzero(dist < 1e-3)
        reached = int(near[0]) if len(near) else -1
        zeros_ok = bool(np.all(tr[:, p0 == 0] == 0))
        ok.append(cf_err < 1e-9 and reached >= 0 and zeros_ok)
        curves[f"T={t:g}"] = entropy(tr)[:, None]
        rows.append({"T": t, "limit": _limit_name(t), "L1 to limit at G": float(dist[-1]),
                     "generations to 1e-3": reached if reached >= 0 else f"> {gens}",
                     "support at G": int((tr[-1] > 0).sum()),
                     "modal p at G": float(tr[-1].max()), "max |p_t - closed form|": cf_err})
    fig = curves_figure(ctx.run_dir / "selfdistill-ideal.png", {"ideal refit": curves},
                        "generation", "entropy (nats)")
    slow = [r["T"] for r, good in zip(rows, ok, strict=True) if not good]
    verdict = "confirmed" if not slow else "not confirmed"
    reason = ("every T matched p_t ∝ p0^(T^-t) to 1e-9 and came within 1e-3 (L1) of its "
              f"limit within {gens} generations; zeros stayed zero" if not slow else
              f"T in {slow} did not reach their predicted limit within {gens} generations "
              "or left the closed form")
    return Section("sd-ideal", "Ideal refit p' ∝ p^(1/T)", "T=1 leaves p unchanged; T<1 goes "
                   "to uniform over the argmax set; T>1 to uniform over the support of p0.",
                   f"V={cfg.vocab}, {cfg.modes} tied modes, {cfg.zeros} zeros, Zipf "
                   f"{cfg.zipf}, {gens} generations, exact arithmetic (float64).",
                   list(rows[0]), rows, verdict, reason, [fig],
                   outcome=Outcome.REFUTED if slow else Outcome.CONFIRMED)


def _limit_name(t: float) -> str:
    return "p0" if t == 1.0 else ("uniform on argmax" if t < 1 else "uniform on support")


def _drift_section(cfg: CategoricalConfig, ctx: RunContext) -> Section:
    p0 = cfg.p0()
    tr = ctx.stage("drift", cfg, lambda _d: run_finite(
        p0, Sampler(), FiniteOptions(cfg.n_samples), cfg.repeats, cfg.generations, cfg.seed))
    fx = ctx.stage("fixation", cfg, lambda _d: run_finite(
        p0, Sampler(), FiniteOptions(cfg.fixation_samples), cfg.repeats,
        cfg.fixation_generations, cfg.seed + 1))
    theory = expected_heterozygosity(p0, cfg.n_samples, cfg.generations)
    rows, zs = [], []
    for g in sorted({1, cfg.generations // 4, cfg.generations // 2, cfg.generations}):
        het, top = tr.heterozygosity[g], tr.first_outcome[g]
        zs += [z_score(het, theory[g]), z_score(top, p0[0])]
        rows.append({"quantity": f"generation {g}", "1 - Σp² (measured)": ci(het),
                     "1 - Σp² (theory)": float(theory[g]), "p (measured)": ci(top),
                     "p (theory)": float(p0[0]), "support": ci(tr.support[g])})
    fixed = fx.fixed_at >= 0
    for i in range(min(3, cfg.vocab)):
        hit = (fx.fixed_to == i).astype(float)
        zs.append(z_score(hit, p0[i]))
        rows.append({"quantity": f"outcome {i} fixes", "p (measured)": ci(hit),
                     "p (theory)": float(p0[i])})
    worst = max(abs(z) for z in zs)
    good = worst <= Z_MAX and fixed.mean() > 0.99
    fig = curves_figure(ctx.run_dir / "selfdistill-drift.png",
                        {f"T=1, N={cfg.n_samples}": {"measured": tr.heterozygosity,
                                                       "theory": theory[:, None]}},
                        "generation", "1 - Σ p²")
    reason = (f"largest |measured - theory| = {worst:.2f} standard errors (limit {Z_MAX:g}) "
              f"over heterozygosity, the martingale and fixation; {fixed.mean():.1%} of "
              f"repeats fixed within {cfg.fixation_generations} generations")
    nz = p0[(p0 > 0) & (p0 < 1)]
    approx = -2 * cfg.fixation_samples * float(((1 - nz) * np.log(1 - nz)).sum())
    note = (f"Time to fixation (N={cfg.fixation_samples}): "
            f"{ci(fx.fixed_at[fixed]) if fixed.any() else 'none fixed'} generations; the "
            f"diffusion approximation -2N Σ(1-p0)ln(1-p0) gives {approx:.3g} (reference only).")
    return Section("sd-drift", "Finite samples at T=1: Wright-Fisher drift",
                   "p_t is a martingale; E[1-Σp_t²] = (1-Σp0²)(1-1/N)^t; outcome i fixes with "
                   "probability p0(i).",
                   f"N={cfg.n_samples} (fixation: N={cfg.fixation_samples}), {cfg.repeats} "
                   "repeats. Column p: p_t(0) (generation rows; theory p0(0)) or the frequency "
                   "with which outcome i fixes (theory p0(i)).", list(rows[0]), rows,
                   "confirmed" if good else "not confirmed", reason, [fig], [note],
                   outcome=Outcome.CONFIRMED if good else Outcome.REFUTED)


def _diversity_section(cfg: CategoricalConfig, ctx: RunContext) -> Section:
    p0 = cfg.p0()
    settings = {"self only": FiniteOptions(cfg.n_samples),
                f"fresh {cfg.fresh:g}": FiniteOptions(cfg.n_samples, fresh=cfg.fresh),
                "accumulate": FiniteOptions(cfg.n_samples, accumulate=True)}
    runs = ctx.stage_each("diversity", settings, lambda k: [cfg, k],
                          lambda k, _d: run_finite(p0, Sampler(), settings[k], cfg.repeats,
                                                   cfg.generations, cfg.seed + 2))
    het = {k: ci(r.heterozygosity[-1]) for k, r in runs.items()}
    rows = [{"setting": k, "1 - Σp² at G": het[k],
             "entropy at G": ci(r.entropy[-1]), "support at G": ci(r.support[-1])}
            for k, r in runs.items()]
    base = next(iter(het.values()))
    held = [k for k, e in list(het.items())[1:] if e.low > base.high]
    fig = curves_figure(ctx.run_dir / "selfdistill-diversity.png",
                        {"T=1": {k: r.heterozygosity for k, r in runs.items()}},
                        "generation", "1 - Σ p²")
    good = len(held) == len(rows) - 1
    reason = (f"after {cfg.generations} generations 1-Σp² is {base} with self data only; "
              + "; ".join(f"{r['setting']}: {r['1 - Σp² at G']}" for r in rows[1:])
              + (" (CIs above self-only)" if good else f"; only {held} are above self-only"))
    return Section("sd-diversity", "Fresh or accumulated real data hold diversity",
                   "A fraction of fresh real data, or keeping all past data, holds diversity "
                   "that self-sampling alone loses.", f"T=1, N={cfg.n_samples}, "
                   f"{cfg.repeats} repeats, {cfg.generations} generations.", list(rows[0]),
                   rows, "confirmed" if good else "not confirmed", reason, [fig],
                   outcome=Outcome.CONFIRMED if good else Outcome.REFUTED)


def _truncation_section(cfg: CategoricalConfig, ctx: RunContext) -> Section:
    p0, gens = cfg.p0(), cfg.ideal_generations
    samplers = {f"top-k {cfg.top_k}": Sampler(top_k=cfg.top_k),
                f"min-p {cfg.min_p:g}": Sampler(min_p=cfg.min_p),
                f"top-p {cfg.top_p:g}": Sampler(top_p=cfg.top_p)}
    rows: list[dict[str, Any]] = []
    curves: dict[str, np.ndarray] = {}
    shrink_steps: dict[str, int] = {}
    for name, s in samplers.items():
        sup = (ideal_trajectory(p0, s, gens) > 0).sum(axis=-1)
        fin = run_finite(p0, s, FiniteOptions(cfg.n_samples), cfg.repeats, gens, cfg.seed + 3)
        shrink_steps[name] = int((np.diff(sup[1:]) < 0).sum())  # after the first step
        curves[name] = sup[:, None]
        last = ideal_trajectory(p0, s, gens)[-1]
        rows.append({"sampler": name, "support p0": int(sup[0]), "after 1": int(sup[1]),
                     "after 2": int(sup[2]) if gens >= 2 else "", "at G (ideal)": int(sup[-1]),
                     "later shrinking steps": shrink_steps[name],
                     "smallest survivor": float(last[last > 0].min()),
                     "at G (N samples)": ci(fin.support[-1])})
    names = list(samplers)
    k_ok = shrink_steps[names[0]] == 0 and shrink_steps[names[1]] == 0
    p_more = shrink_steps[names[2]] > 0
    p_fix = rows[2]["smallest survivor"] > 1 - cfg.top_p
    fig = curves_figure(ctx.run_dir / "selfdistill-truncation.png", {"ideal, T=1": curves},
                        "generation", "support size")
    good = k_ok and p_more and p_fix
    reason = (f"after the first step the ideal support shrank {shrink_steps[names[0]]} more "
              f"time(s) under top-k, {shrink_steps[names[1]]} under min-p and "
              f"{shrink_steps[names[2]]} under top-p; "
              f"top-p's smallest survivor {rows[2]['smallest survivor']:.3g} vs "
              f"1 - P = {1 - cfg.top_p:.3g}")
    return Section("sd-truncation", "Truncated sampling: top-k, min-p, top-p",
                   "Top-k and min-p stop shrinking the support after one step; top-p keeps "
                   "pruning until every survivor has probability above 1 - P.",
                   f"T=1, V={cfg.vocab}, ideal refit for {gens} generations, and N="
                   f"{cfg.n_samples} with {cfg.repeats} repeats.", list(rows[0]), rows,
                   "confirmed" if good else "not confirmed", reason, [fig],
                   outcome=Outcome.CONFIRMED if good else Outcome.REFUTED)


def run_categorical(cfg: CategoricalConfig, ctx: RunContext) -> list[Section]:
    return [_ideal_section(cfg, ctx), _drift_section(cfg, ctx), _diversity_section(cfg, ctx),
            _truncation_section(cfg, ctx)]


CATEGORICAL_STUDY = STUDIES.register("selfdistill-categorical")(Study(
    "selfdistill-categorical", "Self-distillation of a categorical model at temperature T",
    CategoricalConfig, run_categorical))
LM_STUDY = STUDIES.register("selfdistill-lm")(Study(
    "selfdistill-lm", "Self-distillation of character language models at temperature T",
    LMStudyConfig, run_lm_study))
