"""The identification study's report: its two sections from the stages' results.

Kept apart from :mod:`outlearn.studies.identify` (whose stage functions are part of the
stages' code versions) so that the wording of a report can change without re-running a
stage.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from outlearn.evaluation import metrics as M
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate, crossed_mean_ci, crossed_ratio_ci
from outlearn.studies.common import data_text
from outlearn.studies.verdicts import family_verdict, identify_verdict, within_verdict

if TYPE_CHECKING:
    from outlearn.studies.identify import IdentifyConfig


# ------------------------------------------------------------------------------ the numbers
def by_task(x: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Per-learner values (..., L, *rest) regrouped as (K, T, *rest): the K learners of each
    held-out task, tasks in order (every task has the same number of learners)."""
    tasks = np.unique(ids)
    return np.stack([x[..., ids == t, :] if x.ndim > 1 else x[ids == t] for t in tasks],
                    axis=-2 if x.ndim > 1 else -1)


def _cells(x: np.ndarray) -> np.ndarray:
    """(K, T[, E]) learners nested in tasks -> (1, T) task means (as a fresh learner)."""
    y = x.mean(axis=-1) if x.ndim == 3 else x
    return y.mean(axis=0, keepdims=True)


def fit_section(cfg: IdentifyConfig, cut: dict[str, Any], fitted: dict[str, Any]) -> Section:
    from outlearn.identify import make_learner_family
    from outlearn.identify.fit import variant_text

    fam = make_learner_family(cfg.fit.family)
    in_family = cfg.teacher.name == fam.teacher
    truth, true_var = fam.truth(cfg.teacher.kwargs) if in_family else ({}, {})
    rows: list[dict[str, Any]] = []
    missed = recovery(cfg, fitted)
    space = cfg.space(fam)
    for name in fitted["free"]:
        lo, hi = fitted["ci"][name]
        rows.append({"parameter": name,
                     "fitted (95% profile CI)": Estimate(fitted["values"][name], lo, hi),
                     "CI / range":
                         f"{ci_share(fam.param(name).log, (lo, hi), space.free[name]):.0%}",
                     "true value": f"{truth[name]:.4g}" if name in truth else "(not a member)",
                     "recovered": ("" if name not in truth else
                                   "no" if name in missed else "yes")
                     + ("" if fitted["identified"][name] else " (not identified)")})
    for text, ll in sorted(fitted["variants"].items(), key=lambda kv: -kv[1]):
        rows.append({"parameter": f"variant {text}",
                     "fitted (95% profile CI)": f"log-likelihood {ll:.1f}",
                     "true value": ("(the teacher's)" if in_family and text == variant_text(
                         {k: true_var[k] for k in cfg.space(fam).variants}) else "")})
    if not in_family:
        verdict, reason, outcome = ("fitted (the teacher is not a member: nothing to recover)",
                                    "see the next section for what the member predicts",
                                    Outcome.YES)
    elif missed:
        verdict, reason, outcome = (f"true value outside the CI of {', '.join(missed)}",
                                    "profile-likelihood CIs", Outcome.NO)
    else:
        verdict, reason, outcome = ("every free parameter's CI holds its true value",
                                    "profile-likelihood CIs", Outcome.YES)
    return Section(
        key="identify-fit", title="Claim 12: the fitted member",
        claim="Maximum likelihood on the histories up to the cut recovers the teacher's "
              "parameters when the teacher is a member of the family.",
        setting=(f"{data_text(cfg)}; cut at {cfg.cut} of optimal (step {cut['step']}, "
                 f"{cut['episodes']} episodes). Family {cfg.fit.family}, fitted jointly to "
                 f"the {cfg.tasks.n_train} x {cfg.learners_per_task} train learners' cut "
                 f"histories ({fitted['steps']} transitions): {fitted['evaluations']} members "
                 f"evaluated in {fitted['seconds']:.1f} s."),
        columns=["parameter", "fitted (95% profile CI)", "CI / range", "true value",
                 "recovered"], rows=rows,
        verdict=verdict, verdict_reason=reason, outcome=outcome,
        notes=["Profile CI: the values whose best log-likelihood is within 1.92 of the "
               "maximum (chi-square, 1 df, 95%), on bins of the range widened by one bin; "
               "'not identified': the likelihood never drops that far over the range. "
               "CI / range: the CI's share of the searched range (log scale for a log-scaled "
               "parameter): a wide CI that holds the true value says the data up to the cut "
               "barely constrain that parameter. "
               "Parameters not listed are fixed (the config's values, else the teacher's "
               "defaults). Variants are compared by their best log-likelihood."])


def ci_share(log: bool, ci: tuple[float, float], rng: tuple[float, float]) -> float:
    """The share of the searched range ``rng`` a CI spans (in log space for ``log``)."""
    f = (lambda v: math.log(max(v, 1e-300))) if log else (lambda v: v)
    return (f(ci[1]) - f(ci[0])) / (f(rng[1]) - f(rng[0]))


def recovery(cfg: IdentifyConfig, fitted: dict[str, Any]) -> list[str]:
    """Free parameters whose CI misses the teacher's true value (in family only)."""
    from outlearn.identify import make_learner_family

    fam = make_learner_family(cfg.fit.family)
    if cfg.teacher.name != fam.teacher:
        return []
    truth, _ = fam.truth(cfg.teacher.kwargs)
    return [n for n in fitted["free"]
            if not fitted["ci"][n][0] <= truth[n] <= fitted["ci"][n][1]]


def claim_section(cfg: IdentifyConfig, family: Any, ids: np.ndarray,
                  fitted: dict[str, Any], held: dict[str, np.ndarray], fresh: np.ndarray,
                  base: dict[str, np.ndarray], ad: np.ndarray, run_dir: Path) -> Section:
    from outlearn.identify import make_learner_family
    from outlearn.report.figures import curves_figure

    fam = make_learner_family(cfg.fit.family)
    in_family = cfg.teacher.name == fam.teacher
    hid = held["task_ids"]
    kl = crossed_mean_ci(_cells(by_task(held["kl"], hid)))
    teacher_c = by_task(held["teacher"], hid)  # (K, T, E)
    member_c = np.concatenate(list(by_task(held["member"], hid)))  # (seeds * K, T, E)
    ratio = crossed_ratio_ci(_cells(member_c), _cells(teacher_c))
    fv = family_verdict(kl, cfg.kl_tol)
    cv = within_verdict(ratio, cfg.within, "fitted continuation / teacher's")
    v = identify_verdict(fv, cv, in_family, recovery(cfg, fitted))
    last = M.last_episodes(cfg.eval.episodes, cfg.eval.last_n)

    e = teacher_c.shape[-1]
    rows: list[dict[str, Any]] = [
        {"learner": f"teacher's recorded continuation ({e} episodes past the cut)",
         "return past the cut": M.asymptote(teacher_c, e)},
        {"learner": "fitted member, carried on from each history's cut",
         "return past the cut": M.asymptote(member_c, e), "member / teacher": ratio,
         "held-out KL": kl, "verdict": v.label}]
    for label, curves in [("fitted member run fresh", fresh), ("AD trained on the cut", ad)]:
        rows.append({"learner": label, f"asymptote (last {last})": M.asymptote(curves, last),
                     "gap to the teacher run fresh":
                         M.continuation_gap(base["teacher"], curves, last)})
    rows += [{"learner": label, f"asymptote (last {last})": M.asymptote(base[n], last)}
             for n, label in (("teacher", "teacher run fresh"), ("random", "random"),
                              ("optimum", "optimum (oracle)")) if n in base]
    fig = curves_figure(run_dir / "identify.png", {
        "teacher's continuation": M.mean_curve_ci(teacher_c),
        "fitted member's continuation": M.mean_curve_ci(member_c)},
        "episode past the cut", "return", None,
        f"{cfg.env.name}, teacher {cfg.teacher.name}, family {cfg.fit.family}: past the cut")
    return Section(
        key="identify", title="Claim 12: family identification",
        claim="A learner fitted by maximum likelihood in a family that contains the teacher "
              "predicts its next actions (held-out KL ~ 0) and continues its curve within "
              f"{cfg.within:.0%}; a family that does not contain it keeps the KL clearly "
              "above 0.",
        setting=(f"{data_text(cfg)}; cut at {cfg.cut} of optimal ({int(held['cut_episodes'])}"
                 f" episodes). Held-out: the {cfg.tasks.n_test} x {cfg.learners_per_task} "
                 f"test learners' histories past the cut; eval seeds {cfg.eval.seeds}. AD: "
                 f"{cfg.student.preset} preset, context {cfg.student.context_len}, "
                 f"{cfg.student.train_steps} steps, seeds {cfg.train_seeds}. The teacher is "
                 f"{'' if in_family else 'not '}a member of family {cfg.fit.family}."),
        columns=["learner", "return past the cut", "member / teacher", "held-out KL",
                 f"asymptote (last {last})", "gap to the teacher run fresh", "verdict"],
        rows=rows, verdict=v.label, verdict_reason=v.reason, outcome=v.outcome, figures=[fig],
        notes=[f"Held-out KL: KL(teacher's logged policy || fitted member's) in nats, averaged "
               "over each held-out history's steps past the cut, the member updated on the "
               f"history's own transitions; bar {cfg.kl_tol:g}. Carried on: the member's "
               "state replayed along each held-out history to the cut, then run on the same "
               "task from a fresh episode for as many episodes as the history records past "
               "the cut; member / teacher: the ratio of mean returns over those episodes, "
               f"paired by task, band 1 +- {cfg.within:g}. Run fresh: from scratch on the "
               f"held-out tasks for {cfg.eval.episodes} episodes, gap over the last {last}. "
               "CIs: 95%, crossed over students (AD's training seeds) and tasks; learners and "
               "eval seeds nested in tasks. The fit is deterministic given the data (one "
               "member, no training seeds): its rows' CIs are over tasks, and the fit's own "
               "uncertainty is in the parameters' profile CIs above.",
               "AD is trained on the same cut histories as a point of comparison only: this "
               "study trains no uncut reference, so no competence gate says whether AD of this "
               "size can imitate the full history (the cut-off study's question); a low AD "
               "row here is not evidence about imitation past the cut."])
