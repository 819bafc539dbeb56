"""The identification study (claim 12): fit a family of learners to a black-box history,
and continue the fitted learner past the cut.

Cut the teacher's histories where it first reaches a fraction of optimal; fit the family
by maximum likelihood on the train learners' histories up to the cut (the very data AD
trains on; the teacher's settings are hidden from the fit and used only to score it).
Then, on the held-out tasks:

* the per-action KL from the teacher's logged policy to the fitted member's on the steps
  past the cut (the member replayed along each history): near 0 when the family contains
  the teacher, clearly above 0 when it does not;
* the fitted member continued from the state each held-out history implies at the cut,
  beside the teacher's own recorded continuation of that history: within 5% in family;
* beside them, run fresh from scratch like every learner of the cut-off study: the fitted
  member, AD trained on the same cut, the teacher, random and the optimum (continuation
  gaps over the last episodes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, model_validator

from outlearn.config import Config
from outlearn.errors import ConfigError
from outlearn.evaluation.evaluate import run_learner
from outlearn.histories.io import History
from outlearn.histories.transforms import cut_at_performance
from outlearn.registry import STUDIES
from outlearn.report.section import Section
from outlearn.students.threads import configure_threads
from outlearn.studies.base import RunContext, Study
from outlearn.studies.common import (
    Setting,
    TeacherStudyConfig,
    collect_stage,
    held_out_tasks,
    make_family,
    references_stage,
    students_by_setting,
)


class FitSection(Config):
    """The family fitted to the histories and how it is searched
    (:mod:`outlearn.identify.fit`)."""

    family: str = Field("qlearning", description="a registered learner family: 'qlearning', "
                        "'egreedy', 'ucb1' (outlearn.registry.FAMILIES)")
    params: dict[str, float | list[float]] = Field(
        default_factory=dict, description="each parameter: [low, high] to fit, or a number to "
        "fix; a parameter not named is fixed at its teacher's default")
    variants: dict[str, Any] = Field(
        default_factory=dict, description="each discrete variant: a list of values compared "
        "by likelihood, or one value; a variant not named takes its first value")
    grid: int = Field(10_000, ge=2, description="members of the coarse grid (their product "
                      "over the free parameters)")
    refine_rounds: int = Field(3, ge=0, description="rounds of the local refinement")
    refine_points: int = Field(2_000, ge=1, description="members drawn per refinement round")
    profile_points: int = Field(24, ge=3, description="bins of each parameter's profile")


class IdentifyConfig(TeacherStudyConfig):
    """Teacher histories cut at a fraction of optimal, a family fitted to them, the fitted
    member continued past the cut; AD trained on the same cut beside it."""

    cut: float = Field(0.4, gt=0, le=1, description="cut every history where the teacher's "
                       "smoothed mean return first reaches this fraction of optimal")
    smoothing: int = Field(5, ge=1, description="episodes of the cut's moving average")
    fit: FitSection = Field(default_factory=FitSection, description="the family and its "
                            "search ([fit] table)")
    kl_tol: float = Field(0.02, gt=0, description="held-out KL (nats a step) at or below "
                          "which the fitted member predicts the teacher (in family)")
    within: float = Field(0.05, gt=0, lt=1, description="the fitted member's continuation "
                          "must be within this fraction of the teacher's")

    @model_validator(mode="after")
    def _check_fit(self) -> IdentifyConfig:
        from outlearn.identify import make_learner_family
        from outlearn.identify.fit import check_space

        fam = make_learner_family(self.fit.family)
        env = make_family(self.env)
        fam.check(env.num_obs if env.num_obs else 0, env.num_actions, self.env.name)
        check_space(fam, self.space(fam))
        return self

    def space(self, fam: Any) -> Any:
        from outlearn.identify.fit import space_from

        defaults, _ = fam.truth({})
        return space_from(fam, self.fit.params, self.fit.variants, defaults,
                          grid=self.fit.grid, refine_rounds=self.fit.refine_rounds,
                          refine_points=self.fit.refine_points,
                          profile_points=self.fit.profile_points)


# ------------------------------------------------------------------------------ the study
def run(cfg: IdentifyConfig, ctx: RunContext) -> list[Section]:
    """Collect, cut, fit, replay and continue, train AD, run everyone fresh, judge."""
    configure_threads(cfg.threads)
    family = make_family(cfg.env)
    test_ids = held_out_tasks(family, cfg.tasks)
    full = collect_stage(cfg, ctx, "identify")
    cut = ctx.stage("id-cut", [str(full), cfg.cut, cfg.smoothing],
                    lambda d: cut_history(cfg, full, d))
    fitted = ctx.stage("id-fit", [str(cut["path"]), cfg.fit],
                       lambda d: fit_cut(cfg, Path(cut["path"])))
    held = ctx.stage("id-heldout", [str(full), cut["step"], fitted, cfg.eval.seeds],
                     lambda d: heldout(cfg, family, full, int(cut["step"]), fitted))
    fresh = ctx.stage("id-fresh", [cfg.env, cfg.tasks, cfg.eval, fitted],
                      lambda d: run_learner(family, member(cfg, family, fitted), test_ids,
                                            cfg.eval.seeds, cfg.eval.episodes)[0])
    base = references_stage(cfg, ctx, family, test_ids)
    ad = students_by_setting(cfg, ctx, test_ids, {"ad": Setting(
        Path(cut["path"]), min(cfg.student.context_len, int(cut["step"])))})["ad"]
    from outlearn.studies.identify_report import claim_section, fit_section

    return [fit_section(cfg, cut, fitted),
            claim_section(cfg, family, test_ids, fitted, held, fresh, base, ad, ctx.run_dir)]


def cut_history(cfg: IdentifyConfig, full: Path, d: Path) -> dict[str, Any]:
    h, step = cut_at_performance(full, cfg.cut, d / "cut.h5", window=cfg.smoothing,
                                 split="train")
    with h:
        episodes = int(np.isfinite(h.episode_returns[h.learners("train")]).sum(axis=1).min())
    if episodes < 1:
        raise ConfigError(f"the cut at {cfg.cut} of optimal keeps no complete episode: raise "
                          "cut, or collect histories whose teacher starts slower")
    return {"path": d / "cut.h5", "step": step, "episodes": episodes}


def fit_cut(cfg: IdentifyConfig, path: Path) -> dict[str, Any]:
    """The family fitted jointly to the train learners' cut histories."""
    from outlearn.identify import Steps, make_learner_family
    from outlearn.identify.fit import fit

    fam = make_learner_family(cfg.fit.family)
    with History(path) as h:
        fam.check(h.meta.num_obs, h.meta.num_actions, h.meta.env_name)
        steps = Steps.from_history(h, h.learners("train"))
        res = fit(fam, steps, h.num_steps, h.meta.num_obs, h.meta.num_actions, cfg.space(fam))
    return res.as_dict()


def member(cfg: IdentifyConfig, family: Any, fitted: dict[str, Any]) -> Any:
    """The fitted member, built as the real teacher of its kind."""
    from outlearn.identify import make_learner_family
    from outlearn.teachers import make_teacher

    fam = make_learner_family(cfg.fit.family)
    return make_teacher(fam.teacher, family,
                        **fam.teacher_kwargs(fitted["values"], fitted["variant"]))


def heldout(cfg: IdentifyConfig, family: Any, full: Path, step: int,
            fitted: dict[str, Any]) -> dict[str, np.ndarray]:
    """On the held-out tasks' histories: each learner's held-out KL (L,), the teacher's
    recorded continuation (L, E) and the member's, one per eval seed (seeds, L, E)."""
    import jax

    from outlearn.identify import Steps, make_learner_family
    from outlearn.identify.replay import continue_members, heldout_kl

    fam = make_learner_family(cfg.fit.family)
    with History(full) as h:
        idx = h.learners("test")
        steps = Steps.from_history(h, idx)
        probs = h.read_steps("probs", idx)
        ret, lens = h.episode_returns[idx], h.episode_lengths[idx]
        ids, seeds = h.task_ids[idx], h.learner_seeds[idx]
        num_obs, num_actions = h.meta.num_obs, h.meta.num_actions
    ends = np.cumsum(lens, axis=1)
    first = int(np.argmax(ends[0] >= step)) + 1  # episodes the cut keeps (at a boundary)
    n = int(np.isfinite(ret[:, first:]).sum(axis=1).min())
    if n < 1:
        raise ConfigError(f"the histories end at the cut ({first} episodes): raise "
                          "teacher_episodes so that the teacher's continuation is recorded")
    kl = heldout_kl(fam, fitted["values"], fitted["variant"], steps, probs, step, num_obs,
                    num_actions)
    learner = member(cfg, family, fitted)
    params = family.task_params(jax.numpy.asarray(ids))
    runs = [continue_members(family, learner, jax.vmap(
        lambda s, e=e: jax.random.fold_in(jax.random.key(s), 1_000_003 + e))(
        jax.numpy.asarray(seeds)), params, steps, step, n) for e in cfg.eval.seeds]
    return {"kl": kl, "teacher": ret[:, first:first + n].astype(np.float64),
            "member": np.stack(runs), "task_ids": ids, "cut_episodes": np.int64(first)}


STUDIES.register("identify")(Study(
    name="identify",
    description="family identification: fit a learner family to cut histories and continue "
                "the fitted learner past the cut (claim 12)",
    config_model=IdentifyConfig,
    run=run,
))

__all__ = ["FitSection", "IdentifyConfig", "run"]
