"""Claim 14: self-training on its own final answers locks in a planted mistake.

``selftrain-addition`` runs the loop of :mod:`outlearn.selfdistill.addition` (tabular models
of multi-digit addition, initialised with a modal "forgot the carry" mistake) for every
model x filter x temperature, with R repeats each, and reports the exact accuracy per
generation with bootstrap CIs over repeats.
"""

from __future__ import annotations

import numpy as np
from pydantic import Field, model_validator

from outlearn.config import Config, Seed
from outlearn.registry import STUDIES
from outlearn.report.section import Outcome, Section
from outlearn.selfdistill.addition import (
    FILTERS,
    MODELS,
    LoopSpec,
    eval_set,
    lock_in_accuracy,
    no_carry_fraction,
    run_loop,
)
from outlearn.selfdistill.figures import ci, curves_figure
from outlearn.studies.base import RunContext, Study

LOCK_TOL = 0.005  # final accuracy within this of the lock-in value counts as locked in


class SelfTrainConfig(Config):
    """The addition self-training study."""

    digits: int = Field(4, ge=1, le=12, description="digits of each addend (D)")
    forget_weight: float = Field(0.6, ge=0, le=1, description="weight of the planted mistake")
    noise: float = Field(0.05, ge=0, le=1, description="share of uniform noise in the initial "
                         "model at every state")
    problems: int = Field(500, ge=1, description="fresh problems per generation")
    samples: int = Field(4, ge=1, description="samples per problem (majority vote: k)")
    generations: int = Field(15, ge=1, description="refits of the model on its own kept "
                             "answers")
    repeats: int = Field(8, ge=2, description="independent copies of every loop (CIs are over "
                         "them)")
    eval_problems: int = Field(10000, ge=10, description="fixed problems the exact accuracy is "
                               "averaged over")
    temperatures: list[float] = Field(default_factory=lambda: [0.7, 1.0, 1.3],
                                      description="sampling temperatures, one loop each (> 0)")
    filters: list[str] = Field(default_factory=lambda: list(FILTERS),
                               description="which answers are kept for the refit: 'none' (all), "
                               "'majority' (those agreeing with the most common answer), "
                               "'verifier' (the correct ones, STaR-like)")
    models: list[str] = Field(default_factory=lambda: list(MODELS),
                              description="'trace' (writes its carries; required) and/or "
                              "'answer' (writes only the digits)")
    seed: Seed = Field(0, description="seed of the problems and samples")

    @model_validator(mode="after")
    def _check(self) -> SelfTrainConfig:
        bad = [f for f in self.filters if f not in FILTERS]
        if bad:
            raise ValueError(f"unknown filters {bad}: use some of {list(FILTERS)}")
        bad = [m for m in self.models if m not in MODELS]
        if bad:
            raise ValueError(f"unknown models {bad}: use some of {list(MODELS)}")
        if "trace" not in self.models:
            raise ValueError("models must include 'trace' (the claim is tested on it): add it")
        if any(t <= 0 for t in self.temperatures):
            raise ValueError("temperatures must be > 0: e.g. [0.7, 1.0, 1.3]")
        return self

    def spec(self, kind: str, filt: str, temperature: float) -> LoopSpec:
        return LoopSpec(kind, filt, temperature, self.digits, self.forget_weight, self.noise,
                        self.problems, self.samples, self.generations, self.repeats,
                        self.eval_problems)


def run_one(cfg: SelfTrainConfig, kind: str, filt: str, t: float) -> np.ndarray:
    """One (model, filter, T): accuracy per generation and repeat, (G + 1, R); its seed is
    its own, so the result does not depend on which others run."""
    i, j, k = cfg.models.index(kind), cfg.filters.index(filt), cfg.temperatures.index(t)
    return run_loop(cfg.spec(kind, filt, t), seed=cfg.seed + 1000 * i + 100 * j + k)


def run_all(cfg: SelfTrainConfig, ctx: RunContext) -> dict[tuple[str, str, float], np.ndarray]:
    """(model, filter, T) -> :func:`run_one`, each a stage (side by side with ``--workers``)."""
    keys = [(kind, filt, t) for kind in cfg.models for filt in cfg.filters
            for t in cfg.temperatures]
    return ctx.stage_each("loops", keys, lambda key: [cfg, *key],
                          lambda key, _d: run_one(cfg, *key))


def _rows(res: dict, kind: str) -> list[dict]:
    return [{"model": kind, "filter": f, "T": t, "accuracy @0": ci(a[0]),
             "accuracy @1": ci(a[1]), "accuracy @G": ci(a[-1])}
            for (m, f, t), a in res.items() if m == kind]


def _lock_section(cfg: SelfTrainConfig, res: dict, fig) -> Section:
    target = no_carry_fraction(eval_set(cfg.spec("trace", "none", 1.0))[0])
    rows = _rows(res, "trace")
    checks, words = [], []
    for (m, f, t), a in res.items():
        if m != "trace":
            continue
        final, start = ci(a[-1]), ci(a[0])
        if f == "verifier":
            checks.append(final.low > start.high)
            words.append(f"verifier T={t:g}: {start.value:.3f} -> {final.value:.3f}")
        if f == "none" and t < 1:
            checks.append(abs(final.value - target) < LOCK_TOL and final.value < start.value)
            words.append(f"no filter T={t:g}: {start.value:.3f} -> {final.value:.3f} "
                         f"(always-forget accuracy {target:.3f})")
    tested = any(f == "verifier" for _, f, _ in res) and any(
        f == "none" and t < 1 for _, f, t in res)
    verdict = ("not tested" if not tested else "confirmed" if all(checks) else "not confirmed")
    reason = "; ".join(words) or "needs the 'verifier' filter and 'none' at some T < 1"
    return Section(
        "st-lock-in", "Self-training locks in the planted mistake (trace model)",
        "Trained on its own final answers without a filter at T<1, the model locks in its "
        "modal mistake (accuracy falls to that of always forgetting the carry); with a "
        "ground-truth verifier (STaR-like) it climbs.",
        f"{cfg.digits}-digit addition; initial model: mistake weight {cfg.forget_weight}, "
        f"noise {cfg.noise}; {cfg.problems} problems x {cfg.samples} samples per generation; "
        f"{cfg.generations} generations; {cfg.repeats} repeats; exact accuracy (sampling at T=1) "
        f"on {cfg.eval_problems} fixed problems. Always forgetting the carry is right on "
        f"{target:.4f} of them (0.55^{cfg.digits} = {lock_in_accuracy(cfg.digits):.4f} in "
        f"expectation); 'locked in' means within {LOCK_TOL} of that.",
        list(rows[0]), rows, verdict, reason, [fig],
        outcome=(Outcome.INCONCLUSIVE if not tested else Outcome.CONFIRMED if all(checks)
                 else Outcome.REFUTED))


def _trace_vs_answer(cfg: SelfTrainConfig, res: dict, fig) -> Section | None:
    if "answer" not in cfg.models or "verifier" not in cfg.filters:
        return None
    rows = _rows(res, "answer")
    t = min(cfg.temperatures, key=lambda x: abs(x - 1.0))
    tr, an = ci(res[("trace", "verifier", t)][-1]), ci(res[("answer", "verifier", t)][-1])
    good = an.high < tr.low
    return Section(
        "st-trace", "Writing the carries: trace model vs answer-only model",
        "A model that writes its reasoning (the carries) can be self-trained to the right "
        "answer with a verifier; one that writes only the answer stays below it, capped by "
        "what it can see.",
        "As above; the answer-only model sees the column sum and the previous column's sum.",
        list(rows[0]), rows, "confirmed" if good else "not confirmed",
        f"verifier loop at T={t:g} after {cfg.generations} generations: trace {tr}, "
        f"answer-only {an}", [fig], outcome=Outcome.CONFIRMED if good else Outcome.REFUTED)


def run_selftrain(cfg: SelfTrainConfig, ctx: RunContext) -> list[Section]:
    res = run_all(cfg, ctx)
    panels = {kind: {f"{f} T={t:g}": a for (m, f, t), a in res.items() if m == kind}
              for kind in cfg.models}
    fig = curves_figure(ctx.run_dir / "selftrain-accuracy.png", panels, "generation",
                        "accuracy")
    sections = [_lock_section(cfg, res, fig)]
    extra = _trace_vs_answer(cfg, res, fig)
    return sections + ([extra] if extra else [])


SELFTRAIN_STUDY = STUDIES.register("selftrain-addition")(Study(
    "selftrain-addition", "Self-training on addition with a planted carry mistake",
    SelfTrainConfig, run_selftrain))
