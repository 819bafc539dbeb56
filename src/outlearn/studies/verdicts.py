"""Verdicts computed from confidence intervals, never typed in.

Every verdict here reads one or two :class:`~outlearn.stats.Estimate` s (a value with
its 95% CI) and a *resolution* ``tol``: the smallest difference, in the estimate's own
units, that the study cares about (e.g. 10% of the optimal return). An interval is read
against 0 in one of four ways (:func:`position`):

* ``"above"``: the whole CI is above 0;
* ``"below"``: the whole CI is below 0;
* ``"zero"``: the CI contains 0 and lies within ``[-tol, tol]`` (equivalent to 0 at this
  resolution);
* ``"wide"``: the CI contains 0 but reaches past ``tol`` or ``-tol``: too wide to tell.

Each verdict returns a :class:`Verdict` whose ``label`` is a short phrase, whose
``reason`` names the numbers that decided it, so a report can show both, and whose
``outcome`` (:class:`Outcome`) is what other code reads: a claim is confirmed, refuted or
inconclusive; a part of one (does the student exceed its data? does it learn in
context?) is answered yes, no or inconclusive. No code matches the words of a label.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from outlearn.report.section import Outcome
from outlearn.stats import Estimate

Position = Literal["above", "below", "zero", "wide"]
INCONCLUSIVE = "inconclusive"


@dataclass(frozen=True)
class Verdict:
    """A verdict phrase, the numbers that decided it, and its :class:`Outcome`."""

    label: str
    reason: str
    outcome: Outcome

    @property
    def inconclusive(self) -> bool:
        return self.outcome is Outcome.INCONCLUSIVE

    def as_dict(self) -> dict[str, str]:
        return {"label": self.label, "reason": self.reason, "outcome": self.outcome.value}


def inconclusive(label: str, reason: str) -> Verdict:
    """An inconclusive verdict (``label`` says what is missing)."""
    return Verdict(label, reason, Outcome.INCONCLUSIVE)


def _check_tol(tol: float) -> None:
    if not np.isfinite(tol) or tol <= 0:
        raise ValueError(f"resolution tol={tol} must be a positive finite number")


def position(est: Estimate, tol: float) -> Position:
    """Where the CI of ``est`` lies relative to 0 at resolution ``tol`` (see module doc)."""
    _check_tol(tol)
    if est.low > 0:
        return "above"
    if est.high < 0:
        return "below"
    if est.low >= -tol and est.high <= tol:
        return "zero"
    return "wide"


def ci_text(est: Estimate) -> str:
    """An estimate as 'value [low, high]', 3 significant digits (verdict reasons)."""
    return f"{est.value:.3g} [{est.low:.3g}, {est.high:.3g}]"


@dataclass(frozen=True)
class Bar:
    """What a student's return is judged against, in a verdict's words: ``above`` ("exceeds
    its data"), ``measure`` (the estimate's name in a reason), ``short`` (what is too wide
    in an inconclusive label)."""

    above: str
    measure: str
    short: str


#: the data ceiling: the best the teacher's kept history shows (claims 1 and 16)
DATA_CEILING = Bar("its data", "exceedance (asymptote - data ceiling)", "exceedance")
#: the teacher at the cut rebuilt from its history, frozen and acting greedily (the data
#: without the teacher's exploration): the cut-off study's stricter bar
GREEDY_TEACHER_BAR = Bar("the teacher's greedy policy at the cut", "student - greedy teacher",
                         "difference from the teacher's greedy policy at the cut")
#: the teacher at the end of its whole history, rebuilt, frozen and acting greedily: the gap
#: study's reference for a student above its data
GREEDY_TEACHER_AT_END = Bar("the teacher's greedy policy at the end of its history",
                            "student - greedy teacher", "difference from the teacher's greedy "
                            "policy at the end of its history")


def exceedance_verdict(exceedance: Estimate, tol: float, bar: Bar = DATA_CEILING) -> Verdict:
    """Does the student's asymptote exceed its data ceiling? (asymptote - ceiling).

    Above 0: "exceeds its data". Below 0, or containing 0 without reaching ``+tol``:
    "plateaus at its data". Containing 0 and reaching past ``+tol``: inconclusive.
    Another ``bar`` (e.g. :data:`GREEDY_TEACHER_BAR`, ``exceedance`` the student's return
    minus it) is judged the same way, in its words.
    """
    pos = position(exceedance, tol)
    why = f"{bar.measure} {ci_text(exceedance)}"
    if pos == "above":
        return Verdict(f"exceeds {bar.above}", f"{why}: the whole CI is above 0", Outcome.YES)
    if pos == "below":
        return Verdict(f"plateaus below {bar.above}", f"{why}: the whole CI is below 0",
                       Outcome.NO)
    if pos == "zero" or exceedance.high <= tol:
        return Verdict(f"plateaus at {bar.above}",
                       f"{why}: the CI contains 0 and rules out an exceedance above {tol:.3g}",
                       Outcome.NO)
    return inconclusive(f"{INCONCLUSIVE} ({bar.short})",
                   f"{why}: the CI contains 0 but reaches {exceedance.high:.3g} > resolution "
                   f"{tol:.3g}; too wide to tell (more tasks or seeds would narrow it)")


def continuation_verdict(gap: Estimate, tol: float) -> Verdict:
    """Does the student reach the teacher's unseen continuation? (teacher - student).

    Below 0, or containing 0 without reaching ``+tol``: "reaches the teacher's
    continuation". Above 0: "falls short of the teacher's continuation". Containing 0
    and reaching past ``+tol``: inconclusive.
    """
    pos = position(gap, tol)
    why = f"continuation gap (teacher at horizon - student) {ci_text(gap)}"
    if pos == "above":
        return Verdict("falls short of the teacher's continuation",
                       f"{why}: the whole CI is above 0", Outcome.NO)
    if pos == "below":
        return Verdict("surpasses the teacher's continuation", f"{why}: the whole CI is below 0",
                       Outcome.YES)
    if pos == "zero" or gap.high <= tol:
        return Verdict("reaches the teacher's continuation",
                       f"{why}: the CI contains 0 and rules out a shortfall above {tol:.3g}",
                       Outcome.YES)
    return inconclusive(f"{INCONCLUSIVE} (continuation)",
                   f"{why}: the CI contains 0 but reaches {gap.high:.3g} > resolution "
                   f"{tol:.3g}; too wide to tell")


def cutoff_verdict(exceedance: Estimate, gap: Estimate, tol: float) -> Verdict:
    """Claim 1 for one cut: the exceedance verdict and the continuation verdict, joined.

    The sceptic is confirmed when the student plateaus at (or below) its data and
    falls short of the teacher; refuted when it exceeds its data and reaches the teacher.
    """
    ex, co = exceedance_verdict(exceedance, tol), continuation_verdict(gap, tol)
    reason = f"{ex.reason}; {co.reason}"
    if ex.inconclusive or co.inconclusive:
        return inconclusive(INCONCLUSIVE, reason)
    label = f"{ex.label}; {co.label}"
    plateau, reaches = ex.outcome is Outcome.NO, co.outcome is Outcome.YES
    if plateau and not reaches:
        return Verdict(label + " (sceptic confirmed)", reason, Outcome.CONFIRMED)
    if not plateau and reaches:
        return Verdict(label + " (sceptic refuted)", reason, Outcome.REFUTED)
    return inconclusive(label + " (neither: the two parts disagree)", reason)


def beyond_greedy_teacher_text(student_minus_greedy: Estimate,
                               bar: Bar = GREEDY_TEACHER_BAR) -> str:
    """For a student that exceeds its data: is it above the teacher acting greedily where
    its data ends (``bar``: at the cut, or at the end of the history; the data without the
    teacher's exploration)? Words for its row's verdict: "above" when the whole CI of
    (student - greedy teacher) is above 0, else "not above" (level, below or unresolved: the
    student may only have dropped the teacher's exploration). The verdict's outcome stays
    the exceedance's: the claim is about the data ceiling."""
    why = ci_text(student_minus_greedy)
    if student_minus_greedy.low > 0:
        return f"above {bar.above} ({why})"
    return f"not above {bar.above} ({why}): it may only drop the teacher's exploration"


def versus_random_verdict(student_minus_random: Estimate, tol: float) -> Verdict:
    """Claim 2 (early-only data): the student's return minus random's, with its CI."""
    pos = position(student_minus_random, tol)
    why = f"student - random {ci_text(student_minus_random)}"
    if pos == "zero":
        return Verdict("no better than random",
                       f"{why}: the CI contains 0 and lies within +-{tol:.3g}", Outcome.CONFIRMED)
    if pos == "above":
        return Verdict("better than random", f"{why}: the whole CI is above 0", Outcome.REFUTED)
    if pos == "below":
        return Verdict("worse than random", f"{why}: the whole CI is below 0", Outcome.CONFIRMED)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI contains 0 but reaches past "
                                      f"+-{tol:.3g}; too wide to tell")


def reference_learns(reference_minus_random: Estimate, tol: float) -> Verdict | None:
    """Guard: does the student trained on the WHOLE history clearly beat random?

    "Clearly": the lower end of the CI of (uncut student - random) exceeds ``tol``.
    Returns None when it does; otherwise an inconclusive :class:`Verdict` saying why a
    plateau (or a tie with random) of the truncated students then says nothing.
    """
    _check_tol(tol)
    if reference_minus_random.low > tol:
        return None
    return inconclusive(
        f"{INCONCLUSIVE}: the student does not learn even from the whole history",
        f"uncut student - random {ci_text(reference_minus_random)} does not clear the resolution "
        f"{tol:.3g}, so the students' failure cannot be blamed on the cut; train longer, on "
        "more tasks (AD needs many training tasks to learn in context), or with a longer "
        "context")


GATE = "inconclusive: the student does not imitate its full data"


def competence_gate(exceedance: Estimate, asymptote: Estimate, ceiling: Estimate,
                    tol: float) -> Verdict | None:
    """Gate: can the reference student (trained on the WHOLE history) imitate its data?

    It passes when it reaches its own data ceiling within the resolution: the upper end
    of its exceedance CI (asymptote - ceiling, on the tasks it is judged on) is at least
    ``-tol``. Returns None when it passes; otherwise an inconclusive :class:`Verdict`: a
    student that cannot match its whole history says nothing about exceeding a cut one,
    so every verdict that judges a student against its data reads this instead.
    """
    _check_tol(tol)
    if exceedance.high >= -tol:
        return None
    return inconclusive(
        f"{GATE} (reaches {asymptote.value:.3g} of {ceiling.value:.3g})",
        f"the full-data student's exceedance {ci_text(exceedance)} lies below -{tol:.3g} (the "
        "resolution): it does not reach the best return of the data it was trained on, so "
        "no verdict about a student exceeding or plateauing at its data can be read here. "
        "Scale the student's recipe until it passes: more training steps, a longer context "
        "(in episodes), more training tasks, or a larger model")


def exceeds_where_baseline_does_not_verdict(
        difference: Estimate, student: Estimate, baseline: Estimate, tol: float,
        gates: dict[str, Verdict | None], names: tuple[str, str] = ("adq", "ad"),
        bar: Bar = DATA_CEILING) -> Verdict:
    """"The student (``names[0]``, the RL student) exceeds its data where the baseline
    (``names[1]``, AD) does not", for one cut.

    ``student`` and ``baseline``: their exceedances (asymptote - data ceiling) with CIs;
    ``difference``: student's minus baseline's, paired by training seed and task
    (:func:`outlearn.evaluation.metrics.exceedance_difference`); ``gates``: each student's
    :func:`competence_gate` (None: passes).

    Gated first: when either student's full-data reference does not imitate its data, the
    verdict is inconclusive and says whose gate failed. Then, with each student's
    :func:`exceedance_verdict`: confirmed when the student exceeds its data (its CI above
    0), the baseline plateaus at or below its own, and the difference's CI lies above 0;
    refuted when the student plateaus at or below its data, or the baseline exceeds its
    data too, or the difference's CI rules out an advantage above ``tol`` (its upper end
    at or below ``tol``, and not above 0); inconclusive otherwise (a CI too wide to tell).

    The same rule against a stricter ``bar`` common to both students of a cell
    (:data:`GREEDY_TEACHER_BAR`): ``student`` and ``baseline`` each student's return minus
    that bar; ``difference`` is unchanged (the bar cancels: student - bar - (baseline -
    bar) is the difference of exceedances).
    """
    _check_tol(tol)
    a, b = names
    failed = {n: g for n, g in gates.items() if g is not None}
    if failed:
        return inconclusive(
            f"{INCONCLUSIVE}: {' and '.join(failed)} "
            f"{'does' if len(failed) == 1 else 'do'} not imitate the full data",
            "; ".join(f"{n}: {g.label}: {g.reason}" for n, g in failed.items()))
    sv, bv = exceedance_verdict(student, tol, bar), exceedance_verdict(baseline, tol, bar)
    is_above = difference.low > 0
    no_gain = not is_above and difference.high <= tol
    why = f"exceedance {a} - {b} {ci_text(difference)}"
    reason = f"{a}: {sv.reason}; {b}: {bv.reason}; {why}"
    if is_above and sv.outcome is Outcome.YES and bv.outcome is Outcome.NO:
        return Verdict(f"{a} exceeds {bar.above} where {b} does not",
                       f"{reason}: the whole CI is above 0", Outcome.CONFIRMED)
    refuting = []
    if sv.outcome is Outcome.NO:
        refuting.append(f"{a} {sv.label}")
    if bv.outcome is Outcome.YES:
        refuting.append(f"{b} exceeds {bar.above} too")
    if no_gain:
        refuting.append(f"{a}'s exceedance is not above {b}'s by more than {tol:.3g}")
    if refuting:
        return Verdict("refuted: " + "; ".join(refuting), reason, Outcome.REFUTED)
    open_parts = [f"{n}'s {bar.short}" for n, v in ((a, sv), (b, bv)) if v.inconclusive]
    if not is_above:
        open_parts.append("the difference")
    return inconclusive(f"{INCONCLUSIVE} ({', '.join(open_parts)} too wide to tell)", reason)


def regret_trend_verdict(drop: Estimate, tol: float) -> Verdict:
    """Claim 3, part 1: per-step regret before T minus after T (positive = still falling)."""
    pos = position(drop, tol)
    why = f"per-step regret before T - after T {ci_text(drop)}"
    if pos == "above":
        return Verdict("per-step regret keeps falling after T", f"{why}: the CI is above 0",
                       Outcome.YES)
    if pos == "wide" and drop.high > tol:
        return inconclusive(INCONCLUSIVE, f"{why}: the CI contains 0 but reaches "
                                          f"{drop.high:.3g} > {tol:.3g}; too wide to tell")
    return Verdict("per-step regret stops falling after T",
                   f"{why}: the CI rules out a drop above {tol:.3g}", Outcome.NO)


def tracks_reference_verdict(ratio: Estimate, within: float = 0.2,
                             reference: str = "UCB") -> Verdict:
    """Claim 3, part 2: student cumulative regret / reference's, at the final step.

    CI entirely at or below ``1 + within``: tracks (or beats) the reference; CI entirely
    above it: does not; otherwise inconclusive.
    """
    bar = 1.0 + within
    why = f"cumulative regret ratio student/{reference} {ci_text(ratio)}, bar {bar:.3g}"
    if ratio.high <= bar:
        return Verdict(f"tracks {reference} within {within:.0%} (or beats it)",
                       f"{why}: the whole CI is at or below the bar", Outcome.YES)
    if ratio.low > bar:
        return Verdict(f"does not track {reference}", f"{why}: the whole CI is above the bar",
                       Outcome.NO)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI straddles the bar; too wide to tell")


def in_context_verdict(improvement: Estimate, tol: float) -> Verdict:
    """Does a learner improve within its run? (last episodes - first episodes, with CI).

    Lower end above ``tol``: "learns in context". Upper end at or below ``tol`` (the CI
    rules out an improvement that matters): "does not learn in context". Else inconclusive.
    """
    _check_tol(tol)
    why = f"improvement (last - first episodes) {ci_text(improvement)}"
    if improvement.low > tol:
        return Verdict("learns in context", f"{why}: the whole CI is above {tol:.3g}",
                       Outcome.YES)
    if improvement.high <= tol:
        return Verdict("does not learn in context",
                       f"{why}: the CI rules out an improvement above {tol:.3g}", Outcome.NO)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI straddles {tol:.3g}; too wide to tell")


def learning_split_verdict(per_setting: dict[float, Verdict], none_side: set[float],
                           learn_side: set[float], need: str, unit: str = "") -> Verdict:
    """A claim that some settings give no in-context learning and others do, from each
    setting's :func:`in_context_verdict`.

    Confirmed when every setting in ``none_side`` does not learn in context and every one
    in ``learn_side`` does; refuted when one of them does the opposite; inconclusive when a
    side is empty (``need`` says which settings to add) or undecided, or when no student
    learns at all (then the training, not the setting, is what failed).
    """
    reason = "; ".join(f"{c:g}{unit}: {v.label}" for c, v in sorted(per_setting.items()))
    if not none_side or not learn_side:
        return inconclusive(INCONCLUSIVE, f"{reason}: {need}")
    if not any(v.outcome is Outcome.YES for v in per_setting.values()):
        return inconclusive(f"{INCONCLUSIVE}: no student learns in context",
                            f"{reason}: train longer or on more tasks before reading the "
                            "setting")
    if any(per_setting[c].outcome is Outcome.YES for c in none_side) or any(
            per_setting[c].outcome is Outcome.NO for c in learn_side):
        return Verdict("refuted", reason, Outcome.REFUTED)
    if any(per_setting[c].inconclusive for c in none_side | learn_side):
        return inconclusive(INCONCLUSIVE, reason)
    return Verdict("confirmed", reason, Outcome.CONFIRMED)


def context_span_verdict(per_context: dict[float, Verdict]) -> Verdict:
    """Claim 9 (contexts in episodes): under one episode no in-context learning, 2 or
    more episodes learn (:func:`learning_split_verdict`)."""
    return learning_split_verdict(
        per_context, {c for c in per_context if c < 1}, {c for c in per_context if c >= 2},
        "the claim needs contexts under 1 episode and of 2 or more; add them to contexts",
        " episodes")


def task_count_verdict(per_count: dict[float, Verdict], none_up_to: int,
                       learns_from: int) -> Verdict:
    """Claim 10 (numbers of training tasks): none at ``<= none_up_to``, learning from
    ``learns_from`` on (:func:`learning_split_verdict`)."""
    return learning_split_verdict(
        per_count, {c for c in per_count if c <= none_up_to},
        {c for c in per_count if c >= learns_from},
        f"the claim needs counts of at most {none_up_to} and of at least {learns_from}; add "
        "them to train_tasks", " tasks")


def action_semantics_verdict(student_drop: Estimate, teacher_drop: Estimate, bar: float,
                             tol: float) -> Verdict:
    """Claim 11 from the relative drops (1 - permuted / original return) with CIs.

    Needs the fresh teacher unaffected: its drop's CI within ``[-tol, tol]``; otherwise the
    permutation changed the tasks, not just the labels, and the test says nothing. Then
    confirmed when the student's drop CI lies at or above ``bar``, refuted when it lies
    below, inconclusive when it straddles it.
    """
    _check_tol(tol)
    why = (f"student's drop {ci_text(student_drop)} (bar {bar:g}); fresh teacher's drop "
           f"{ci_text(teacher_drop)} (must lie within +-{tol:g})")
    teacher = position(teacher_drop, tol)
    if teacher in ("above", "below"):
        return inconclusive(f"{INCONCLUSIVE}: the permutation affects the fresh teacher too",
                            f"{why}: the teacher's CI excludes 0")
    if teacher == "wide":
        return inconclusive(f"{INCONCLUSIVE}: the fresh teacher's drop is too uncertain",
                            f"{why}: the teacher's CI contains 0 but reaches past +-{tol:g}; "
                            "more tasks or seeds would narrow it")
    if student_drop.low >= bar:
        return Verdict("confirmed", f"{why}: the student's whole CI is at or above the bar",
                       Outcome.CONFIRMED)
    if student_drop.high < bar:
        return Verdict("refuted", f"{why}: the student's whole CI is below the bar",
                       Outcome.REFUTED)
    return inconclusive(INCONCLUSIVE, f"{why}: the student's CI straddles the bar")


def beats_data_verdict(ratio: Estimate, bar: float) -> Verdict:
    """Claim 4: student asymptote / best return in its data, with its CI, against ``bar``.

    The whole CI at or above ``bar``: confirmed; the whole CI below it: refuted; else
    inconclusive.
    """
    why = f"student / best in data {ci_text(ratio)}, bar {bar:g}"
    if ratio.low >= bar:
        return Verdict("confirmed", f"{why}: the whole CI is at or above the bar",
                       Outcome.CONFIRMED)
    if ratio.high < bar:
        return Verdict("refuted", f"{why}: the whole CI is below the bar", Outcome.REFUTED)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI straddles the bar; too wide to tell")


def gap_verdict(speedups: dict[int, Estimate], ceilings: dict[int, Verdict],
                reference_episodes: float = float("inf")) -> Verdict:
    """Claim 6 ("time to threshold falls roughly as 1/g, the asymptote never exceeds the
    data") from each g's speed-up over g = 1 and its :func:`exceedance_verdict`.

    "Roughly g times as fast" is :func:`speedup_about_verdict` (g inside the CI), as for
    claim 5's k. ``reference_episodes``: episodes gap 1 takes to the level; a g above it
    asks for under one episode, so a speed-up CI below such a g says nothing about it.
    Refuted when some g exceeds its data, the largest g is not faster (CI at or below 1),
    or some attainable g's CI excludes g; confirmed when every g > 1 is about g, the
    largest is told apart from 1 (CI above 1) and every g plateaus at or below its data;
    inconclusive otherwise.
    """
    about = {g: speedup_about_verdict(sp, g) for g, sp in speedups.items() if g > 1}
    reason = "; ".join(f"gap {g}: speed-up {ci_text(speedups[g])}"
                       + (f" ({about[g].label})" if g in about else "")
                       + f", {ceilings[g].label}" for g in sorted(speedups))
    g = max(speedups)
    sp = speedups[g]
    if any(v.outcome is Outcome.YES for v in ceilings.values()):
        return Verdict("refuted (a gap-g student exceeds its data)", reason, Outcome.REFUTED)
    if np.isnan(sp.value):
        return inconclusive(f"{INCONCLUSIVE}: no student reaches the timing level", reason)
    if sp.high <= 1:
        return Verdict(f"refuted (gap {g} is not faster than gap 1)", reason, Outcome.REFUTED)
    not_about = [k for k, v in about.items() if v.outcome is Outcome.NO]
    # slower than a g that would need under one episode says nothing about that g
    unattainable = [k for k in not_about if speedups[k].low <= k and k > reference_episodes]
    off = [k for k in not_about if k not in unattainable]
    if off:
        return Verdict(f"refuted (gap {', '.join(map(str, off))} not about g times as fast)",
                       reason, Outcome.REFUTED)
    if unattainable:
        return inconclusive(
            f"{INCONCLUSIVE}: gap 1 reaches the level in {reference_episodes:g} episodes, "
            f"too few for {', '.join(map(str, unattainable))}-fold", reason)
    if (sp.low > 1 and all(v.outcome is Outcome.YES for v in about.values())
            and not any(v.inconclusive for v in ceilings.values())):
        return Verdict("confirmed", reason, Outcome.CONFIRMED)
    return inconclusive(INCONCLUSIVE, reason)


def speedup_about_verdict(speedup: Estimate, k: float) -> Verdict:
    """Is a speed-up (with its CI) about ``k``? "About" = ``k`` lies inside the CI.

    Inconclusive when the student never reaches the level (speed-up 0), or when some
    bootstrap resamples never do (a CI reaching 0 or infinity says nothing about k).
    """
    why = f"speed-up {ci_text(speedup)} vs k = {k:g}"
    if np.isnan(speedup.value):
        return inconclusive(f"{INCONCLUSIVE}: neither reaches the level", why)
    if speedup.value == 0:
        return inconclusive(f"{INCONCLUSIVE}: the student never reaches the level", why)
    if speedup.low == 0 or np.isinf(speedup.high):
        return inconclusive(f"{INCONCLUSIVE}: the CI reaches 0 or infinity",
                            f"{why}: some resamples never reach the level")
    if speedup.low <= k <= speedup.high:
        return Verdict(f"about {k:g}x", f"{why}: k lies inside the CI", Outcome.YES)
    side = "faster" if speedup.low > k else "slower"
    return Verdict(f"{side} than {k:g}x", f"{why}: the CI excludes k", Outcome.NO)


def subsample_verdict(speedups: dict[int, Estimate]) -> Verdict:
    """Claim 5: every k's speed-up over the teacher is about k.

    Confirmed when every k lies inside its speed-up's CI and the largest k > 1 is told
    apart from 1 (its CI excludes 1); refuted when some CI excludes its k; inconclusive
    otherwise (a level never reached, or CIs too wide to separate k from 1).
    """
    per = {k: speedup_about_verdict(sp, k) for k, sp in speedups.items()}
    reason = "; ".join(f"k = {k}: {v.reason}" for k, v in sorted(per.items()))
    if any(v.outcome is Outcome.NO for v in per.values()):
        return Verdict("refuted", reason, Outcome.REFUTED)
    if any(v.inconclusive for v in per.values()):
        return inconclusive(INCONCLUSIVE, reason)
    top = max(speedups)
    if top > 1 and speedups[top].low <= 1:
        return inconclusive(f"{INCONCLUSIVE}: k = {top}'s CI does not exclude 1", reason)
    return Verdict("confirmed", reason, Outcome.CONFIRMED)


def about_equal_verdict(ratio: Estimate, within: float, reference: str) -> Verdict:
    """Is a learner's regret about equal to ``reference``'s? ``ratio``: learner's regret /
    reference's, with its CI, against the band ``[1 - within, 1 + within]``.

    The whole CI inside the band: YES ("within 10% of ..."); the whole CI outside it
    (above or below): NO, labelled by the side; otherwise inconclusive.
    """
    _check_tol(within)
    lo, hi = 1.0 - within, 1.0 + within
    why = f"regret ratio to {reference} {ci_text(ratio)}, band [{lo:.3g}, {hi:.3g}]"
    if ratio.low >= lo and ratio.high <= hi:
        return Verdict(f"within {within:.0%} of {reference}",
                       f"{why}: the whole CI lies inside the band", Outcome.YES)
    if ratio.low > hi:
        return Verdict(f"more regret than {reference} (by over {within:.0%})",
                       f"{why}: the whole CI lies above the band", Outcome.NO)
    if ratio.high < lo:
        return Verdict(f"less regret than {reference} (by over {within:.0%})",
                       f"{why}: the whole CI lies below the band", Outcome.NO)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI straddles an end of the band; too wide "
                                      "to tell (more students or tasks would narrow it)")


def matches_source_verdict(ratio: Estimate, within: float, source: str) -> Verdict:
    """Claim 7 for one source: the student's regret / its source's (:func:`about_equal_verdict`).
    Confirmed when the CI lies inside ``1 +- within``, refuted when it lies outside."""
    v = about_equal_verdict(ratio, within, source)
    if v.inconclusive:
        return v
    if v.outcome is Outcome.YES:
        return Verdict(f"{v.label} (confirmed)", v.reason, Outcome.CONFIRMED)
    return Verdict(f"{v.label} (refuted)", v.reason, Outcome.REFUTED)


def all_parts_verdict(parts: dict[str, Verdict]) -> Verdict:
    """A claim judged in several settings: refuted when one is refuted, confirmed when all
    are confirmed, inconclusive otherwise."""
    reason = "; ".join(f"{k}: {v.label}" for k, v in parts.items())
    if any(v.outcome is Outcome.REFUTED for v in parts.values()):
        bad = [k for k, v in parts.items() if v.outcome is Outcome.REFUTED]
        return Verdict(f"refuted ({'; '.join(bad)})", reason, Outcome.REFUTED)
    if parts and all(v.outcome is Outcome.CONFIRMED for v in parts.values()):
        return Verdict("confirmed", reason, Outcome.CONFIRMED)
    return inconclusive(INCONCLUSIVE, reason)


def clearly_below_verdict(ratio: Estimate, within: float, reference: str) -> Verdict:
    """Is a learner's regret clearly below ``reference``'s? ``ratio``: its regret /
    reference's, with its CI. YES when the whole CI lies below ``1 - within`` (less regret
    by more than the resolution); NO when the CI rules that out (its lower end at or above
    ``1 - within``); otherwise inconclusive."""
    _check_tol(within)
    bar = 1.0 - within
    why = f"regret ratio to {reference} {ci_text(ratio)}, bar {bar:.3g}"
    if ratio.high < bar:
        return Verdict(f"clearly below {reference}", f"{why}: the whole CI is below the bar",
                       Outcome.YES)
    if ratio.low >= bar:
        return Verdict(f"not clearly below {reference}",
                       f"{why}: the CI rules out a ratio below the bar", Outcome.NO)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI straddles the bar; too wide to tell")


def privileged_labels_verdict(optimal: Estimate, imitation: Estimate, within: float,
                              source: str) -> Verdict:
    """Claim 8 from the regret ratios to the source of the student trained on optimal-action
    labels (``optimal``) and of the same student trained on the source's actions
    (``imitation``), each with its CI.

    Gated first: an imitation student whose regret is above the source's by more than
    ``within`` (its whole CI) does not imitate its data, so nothing is read
    (inconclusive). Refuted when the optimal-label student is not clearly below the source
    (:func:`clearly_below_verdict` says no) or when imitation alone is (less regret than
    the source by more than ``within``: no privileged label needed); confirmed when the
    optimal-label student is clearly below and the imitation student is within ``within``
    of the source (:func:`about_equal_verdict`); inconclusive otherwise.
    """
    opt, imi = clearly_below_verdict(optimal, within, source), about_equal_verdict(
        imitation, within, source)
    reason = f"optimal labels: {opt.reason}; imitation: {imi.reason}"
    if imitation.low > 1.0 + within:
        return inconclusive(f"{INCONCLUSIVE}: the imitation student does not match its source",
                            f"{reason}: the imitation student's regret is above {source}'s by "
                            f"more than {within:.0%}, so the labels cannot be told from a "
                            "student that fails to learn; train longer or on more tasks")
    if imitation.high < 1.0 - within:
        return Verdict(f"refuted: imitation alone beats {source}", reason, Outcome.REFUTED)
    if opt.outcome is Outcome.NO:
        return Verdict(f"refuted: the optimal-label student is {opt.label}", reason,
                       Outcome.REFUTED)
    if opt.outcome is Outcome.YES and imi.outcome is Outcome.YES:
        return Verdict(f"confirmed: optimal labels {opt.label}, imitation {imi.label}", reason,
                       Outcome.CONFIRMED)
    return inconclusive(INCONCLUSIVE, reason)


__all__ = [
    "Bar",
    "DATA_CEILING",
    "GREEDY_TEACHER_BAR",
    "GREEDY_TEACHER_AT_END",
    "ci_text",
    "INCONCLUSIVE",
    "about_equal_verdict",
    "all_parts_verdict",
    "clearly_below_verdict",
    "matches_source_verdict",
    "privileged_labels_verdict",
    "Outcome",
    "Verdict",
    "GATE",
    "competence_gate",
    "inconclusive",
    "continuation_verdict",
    "cutoff_verdict",
    "exceedance_verdict",
    "exceeds_where_baseline_does_not_verdict",
    "position",
    "reference_learns",
    "regret_trend_verdict",
    "tracks_reference_verdict",
    "versus_random_verdict",
]


def family_verdict(kl: Estimate, kl_tol: float) -> Verdict:
    """Claim 12: does the fitted family contain the teacher? ``kl``: the held-out per-step
    KL from the teacher's logged policy to the fitted member's (nats). Its whole CI at or
    below ``kl_tol``: yes (the member predicts the teacher's next actions); its whole CI
    above ``kl_tol``: no (the family does not contain the teacher); otherwise inconclusive.
    """
    _check_tol(kl_tol)
    why = f"held-out KL(teacher || fitted member) {ci_text(kl)} nats a step, bar {kl_tol:.3g}"
    if kl.high <= kl_tol:
        return Verdict("the family contains the teacher", f"{why}: the whole CI is at or "
                       "below the bar", Outcome.YES)
    if kl.low > kl_tol:
        return Verdict("the family does not contain the teacher", f"{why}: the whole CI is "
                       "above the bar", Outcome.NO)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI straddles the bar")


def within_verdict(ratio: Estimate, within: float, what: str) -> Verdict:
    """``ratio`` (a learner's mean / a reference's, paired by task) within ``1 +- within``:
    yes when the whole CI is inside, no when it lies wholly outside, else inconclusive."""
    _check_tol(within)
    lo, hi = 1.0 - within, 1.0 + within
    why = f"{what} {ci_text(ratio)}, band [{lo:.3g}, {hi:.3g}]"
    if lo <= ratio.low and ratio.high <= hi:
        return Verdict(f"within {within:.0%}", f"{why}: the whole CI is inside", Outcome.YES)
    if ratio.high < lo or ratio.low > hi:
        return Verdict(f"not within {within:.0%}", f"{why}: the whole CI is outside",
                       Outcome.NO)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI crosses the band's edge")


def identify_verdict(family: Verdict, continuation: Verdict, in_family: bool,
                     missed: list[str]) -> Verdict:
    """Claim 12 from its parts. ``in_family``: whether the teacher is a member of the
    fitted family by construction (its kind is the family's), which decides the
    prediction: in family, the held-out KL ~ 0 and the fitted learner's continuation within
    the band (``missed``: parameters whose CI misses the true value, reported); out of
    family, the KL clearly above the in-family bar."""
    reason = f"{family.reason}; continuation: {continuation.reason}"
    if in_family:
        if family.inconclusive or (continuation.inconclusive and family.outcome is Outcome.YES):
            return inconclusive(INCONCLUSIVE, reason)
        miss = f"; true value outside the CI of {', '.join(missed)}" if missed else ""
        if family.outcome is Outcome.YES and continuation.outcome is Outcome.YES:
            return Verdict("in family: identified, and its continuation matches the "
                           f"teacher's (confirmed){miss}", reason + miss, Outcome.CONFIRMED)
        what = ("the fitted member does not predict the teacher past the cut (held-out KL "
                "above the bar)" if family.outcome is Outcome.NO
                else f"its continuation is {continuation.label} of the teacher's")
        return Verdict(f"in family, but {what} (refuted){miss}", reason + miss,
                       Outcome.REFUTED)
    if family.inconclusive:
        return inconclusive(INCONCLUSIVE, reason)
    if family.outcome is Outcome.NO:
        return Verdict(f"out of family: the fit says so (confirmed); its continuation is "
                       f"{continuation.label} of the teacher's", reason, Outcome.CONFIRMED)
    return Verdict("out of family, yet the fitted member predicts the teacher within the bar "
                   "(refuted)", reason, Outcome.REFUTED)
