"""The deep-teacher study's verdicts, tables and figures (:mod:`outlearn.studies.deep_teacher`).

Kept apart from the study's stages so that the report's wording can change without
re-running a stage. Every estimate is a grand mean over (trained student, held-out task)
cells with its crossed 95% CI; "n windows" are the first or last tenth of a run's windows.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from outlearn.evaluation import metrics as M
from outlearn.evaluation.metrics import CurveCI
from outlearn.report.figures import CurvesPanel, panels_figure
from outlearn.report.section import Outcome, Section
from outlearn.stats import Estimate, crossed_mean_ci
from outlearn.studies.verdicts import (
    GATE,
    INCONCLUSIVE,
    Verdict,
    ci_text,
    continuation_verdict,
    in_context_verdict,
    inconclusive,
)

__all__ = ["at_cut_verdict", "past_cut_verdict", "scratch_verdict", "sections",
           "transfer_verdict"]


def last_n(windows: int) -> int:
    """Windows compared at each end of a run: a tenth of them, at least one."""
    return max(1, windows // 10)


# ------------------------------------------------------------------------------ verdicts
def at_cut_verdict(diff: Estimate, tol: float, above_random: Estimate | None = None) -> Verdict:
    """(a) Student's first window after the cut minus the teacher's last before it.

    ``above_random``: the teacher's level at the cut minus random's on the same tasks; a
    teacher not resolved above random there (its CI's lower end at most ``tol``) leaves
    nothing to reproduce, and a student playing like random would pass: inconclusive.
    """
    why = f"student (first window after the cut) - teacher (last window before it) {ci_text(diff)}"
    if above_random is not None and above_random.low <= tol:
        return inconclusive(
            f"{INCONCLUSIVE} (the teacher at the cut is not resolved above random)",
            f"{why}; but the teacher at the cut - random {ci_text(above_random)} does not clear "
            f"the resolution {tol:.3g}, so playing at its level and playing like random "
            "cannot be told apart: cut later, where the teacher is clearly better")
    if diff.high < -tol:
        return Verdict("plays below the teacher's level at the cut",
                       f"{why}: the whole CI is below -{tol:.3g} (the resolution)", Outcome.NO)
    if diff.low >= -tol:
        return Verdict("plays at (or above) the teacher's level at the cut",
                       f"{why}: the CI rules out a shortfall beyond the resolution {tol:.3g}",
                       Outcome.YES)
    return inconclusive(INCONCLUSIVE, f"{why}: the CI reaches below -{tol:.3g} and above it; "
                                      "too wide to tell")


def past_cut_verdict(at_cut: Verdict, gap: Estimate, student_gain: Estimate,
                     teacher_gain: Estimate, tol: float) -> Verdict:
    """(b) Does the student keep improving like the teacher's own continuation?

    Gated on (a): a student not shown to play at the teacher's level at the cut is not
    shown to imitate its data, so its plateau says nothing about learning past the data. Guarded
    by the teacher still improving after the cut (else there is nothing to keep up with).
    """
    if at_cut.outcome is Outcome.NO:
        return inconclusive(f"{GATE} (at the cut)",
                            f"(a): {at_cut.reason}; a student that does not reproduce the "
                            "teacher at the cut cannot show whether it would keep learning "
                            "past it. Scale the student: more training steps, a longer "
                            "context, a larger model, more training learners")
    if at_cut.inconclusive:
        return inconclusive(f"{INCONCLUSIVE} (not shown to imitate at the cut)",
                            f"(a) is {at_cut.label}: {at_cut.reason}; without a student shown "
                            "to reproduce the teacher at the cut, its course past the cut "
                            "says nothing about learning past its data")
    if teacher_gain.low <= tol:
        return inconclusive(f"{INCONCLUSIVE} (the teacher is not shown to improve past the cut)",
                            f"the teacher's own improvement past the cut {ci_text(teacher_gain)} "
                            f"is not above the resolution {tol:.3g}: cut earlier or run longer")
    co = continuation_verdict(gap, tol)
    ic = in_context_verdict(student_gain, tol)
    reason = f"{co.reason}; the student's own {ic.reason}"
    if co.inconclusive:
        return inconclusive(INCONCLUSIVE, reason)
    if co.outcome is Outcome.YES:
        return Verdict("keeps improving like the teacher's continuation", reason, Outcome.YES)
    if ic.outcome is Outcome.YES:
        return Verdict("improves, but falls short of the teacher's continuation", reason,
                       Outcome.NO)
    if ic.outcome is Outcome.NO:
        return Verdict("plateaus: does not improve past the cut, where the teacher does",
                       reason, Outcome.NO)
    return Verdict("falls short of the teacher's continuation", reason, Outcome.NO)


def scratch_verdict(student_gain: Estimate, teacher_gain: Estimate, tol: float | None,
                    game: str, teacher: str) -> Verdict:
    """(c) on one game: does the student learn it from scratch in context? Guarded by the
    teacher run fresh learning it within the same steps."""
    if tol is None or teacher_gain.low <= tol:
        return inconclusive(
            f"{INCONCLUSIVE} (the fresh {teacher} does not learn {game} in this budget)",
            f"the fresh {teacher}'s improvement {ci_text(teacher_gain)} is not above the "
            f"resolution{'' if tol is None else f' {tol:.3g}'}: the run is too short to show "
            "learning on this game; raise scratch_steps")
    return in_context_verdict(student_gain, tol)


def transfer_verdict(per_game: dict[str, Verdict]) -> Verdict:
    """(c) over the unseen games: yes when the student learns every one, no when it learns
    none, else inconclusive (each game's verdict in the reason)."""
    reason = "; ".join(f"{g}: {v.label} ({v.reason})" for g, v in per_game.items())
    if not per_game:
        return inconclusive(f"{INCONCLUSIVE} (no unseen game configured)",
                            "add [[settings.transfer]] games to answer (c)")
    outs = {v.outcome for v in per_game.values()}
    if outs == {Outcome.YES}:
        return Verdict("learns the unseen games from scratch in context", reason, Outcome.YES)
    if outs == {Outcome.NO}:
        return Verdict("does not learn the unseen games from scratch in context", reason,
                       Outcome.NO)
    return inconclusive(INCONCLUSIVE + " (" + "; ".join(
        f"{g}: {v.label}" for g, v in per_game.items()) + ")", reason)


# ------------------------------------------------------------------------------ numbers
def cut_cells(teacher: np.ndarray, cut_window: int) -> np.ndarray:
    """The teacher's level at the cut on each task: its last window before the cut,
    averaged over the task's learners: (T,)."""
    return M.cells(teacher[..., cut_window - 1:cut_window]).mean(axis=(0, 2))


def improvement(curves: np.ndarray) -> Estimate:
    """Last tenth of the windows minus the first tenth, crossed CI."""
    return M.in_context_improvement(curves, last_n(curves.shape[-1]))


def padded(band: CurveCI, before: int) -> CurveCI:
    nan = np.full(before, np.nan)
    return CurveCI(np.concatenate([nan, band.mean]), np.concatenate([nan, band.low]),
                   np.concatenate([nan, band.high]), band.confidence)


def setting_numbers(cfg: Any, r: Any) -> dict[str, Any]:
    """The estimates and verdicts of one setting's three questions."""
    s = r.setting
    W = s.window_steps
    cw = s.cut_steps // W
    ew = s.eval_steps // W
    teacher = r.data["teacher_curves"]  # (T*L, windows of the whole run), task-major
    L = s.learners_per_task
    teacher = teacher.reshape(-1, L, teacher.shape[-1]).transpose(1, 0, 2)  # (L, T, W)
    cont = teacher[..., cw:cw + ew]
    student = r.continue_curves  # (S, K*L, T, ew)
    n = last_n(ew)
    at_teacher = cut_cells(teacher, cw)
    scale = r.optimum if np.isfinite(r.optimum) else float(M.cells(cont)[..., -n:].mean())
    tol = cfg.resolution * abs(scale) if scale else float("nan")
    first = M.cells(student)[..., 0]
    a = crossed_mean_ci(first - at_teacher[None, :])
    # random on the same held-out tasks (its from-scratch run on this game), per task
    rand = M.cells(r.fresh[s.name]["random"]).mean(axis=(0, 2))
    out: dict[str, Any] = {"tol": tol, "scale": scale, "n": n, "teacher": teacher, "cw": cw,
                           "cont": cont, "student": student}
    out["teacher_at_cut"] = crossed_mean_ci(at_teacher[None, :])
    out["student_first"] = crossed_mean_ci(first)
    out["a_diff"] = a
    out["random"] = crossed_mean_ci(rand[None, :])
    out["teacher_vs_random"] = crossed_mean_ci((at_teacher - rand)[None, :])
    out["student_vs_random"] = crossed_mean_ci(first - rand[None, :])
    out["gap"] = M.continuation_gap(cont, student, n)
    out["student_gain"] = improvement(student)
    out["teacher_gain"] = improvement(cont)
    # the data ceiling on each held-out task: the best window of its teachers' mean curve
    # in the kept steps (the teacher is still rising, so mostly its last window)
    ceiling = M.cells(teacher[..., :cw])[0].max(axis=-1)
    out["ceiling"] = crossed_mean_ci(ceiling[None, :])
    out["exceedance"] = crossed_mean_ci(M.asymptote_cells(student, n) - ceiling[None, :])
    if not np.isfinite(tol) or tol <= 0:
        why = (f"the setting's scale is {scale:.3g} (the teacher's level at the end of its "
               "continuation): no resolution to judge by")
        out["a"] = out["b"] = inconclusive(INCONCLUSIVE, why)
    else:
        out["a"] = at_cut_verdict(a, tol, out["teacher_vs_random"])
        out["b"] = past_cut_verdict(out["a"], out["gap"], out["student_gain"],
                                    out["teacher_gain"], tol)
    games: dict[str, dict[str, Any]] = {}
    for g, curves in r.scratch.items():
        fresh = r.fresh[g]
        m = last_n(curves.shape[-1])
        level = float(M.cells(fresh["teacher"])[..., -m:].mean())
        gtol = cfg.resolution * abs(level) if level else None
        sg, tg, rg = (improvement(c) for c in (curves, fresh["teacher"], fresh["random"]))
        games[g] = {"student": curves, **fresh, "gains": {"student": sg, "teacher": tg,
                                                          "random": rg},
                    "tol": gtol, "n": m,
                    "verdict": scratch_verdict(sg, tg, gtol, g, s.teacher.name),
                    "vs_random": crossed_mean_ci(M.asymptote_cells(curves, m) - M.cells(
                        fresh["random"])[..., -m:].mean(axis=(0, 2))[None, :])}
    out["games"] = games
    out["c"] = transfer_verdict({g: v["verdict"] for g, v in games.items() if g != s.name})
    return out


# ------------------------------------------------------------------------------ sections
def setting_text(cfg: Any, r: Any) -> str:
    s, d = r.setting, r.data
    st = s.student
    factor = s.eval_steps / max(d["cut_episodes"] * d["pace"], 1e-9)
    return (f"{s.env.name} {s.env.kwargs or ''}, teacher {s.teacher.name} "
            f"{s.teacher.kwargs or ''}: {s.tasks.n_train} train / {s.tasks.n_test} held-out "
            f"tasks x {s.learners_per_task} teacher learners, {s.cut_steps + s.eval_steps:,} "
            f"steps each. Cut at step {s.cut_steps:,} (the train teachers' first "
            f"{d['cut_episodes']:.0f} episodes, {d['pace']:.1f} steps each at the cut); the "
            f"students play {s.eval_steps:,} steps past it ({factor:.1f}x the cut's episodes "
            f"at that pace) and {s.scratch_steps:,} from scratch. Student {st.kind} "
            f"({st.preset}, {st.model or 'preset model'}), context {st.context_len} steps, "
            f"{st.train_steps} training steps of {st.batch_size} windows, seeds "
            f"{cfg.train_seeds}; eval seeds {cfg.eval_seeds}; windows of {s.window_steps:,} "
            "steps")


def sections(cfg: Any, results: list[Any], run_dir: Path) -> list[Section]:
    nums = {r.setting.name: setting_numbers(cfg, r) for r in results}
    out: list[Section] = []
    for r in results:
        out += setting_sections(cfg, r, nums[r.setting.name], run_dir)
    out.append(contrast_section(cfg, results, nums))
    return out


def _res(x: dict[str, Any]) -> str:
    return (f"Resolution {x['tol']:.3g} = {x['tol'] / max(abs(x['scale']), 1e-12):.2g} x the "
            f"scale {x['scale']:.3g} (the optimal return where the game has one, else the "
            "teacher's return over the last tenth of its continuation). ")


def setting_sections(cfg: Any, r: Any, x: dict[str, Any], run_dir: Path) -> list[Section]:
    s = r.setting
    name, W = s.name, s.window_steps
    text = setting_text(cfg, r)
    n = x["n"]
    a, b, c = x["a"], x["b"], x["c"]
    fig_b = run_dir / f"deep-teacher-{name}-continuation.png"
    cw = x["cw"]
    panels_figure(fig_b, [CurvesPanel(
        f"{name}: the teacher's history and the students continuing it (95% CI)",
        "return per episode",
        {"teacher (its histories)": M.mean_curve_ci(x["teacher"][..., :cw + x["cont"].shape[-1]]),
         f"student ({s.student.kind}) from the cut": padded(M.mean_curve_ci(x["student"]), cw)})],
        f"window of {W:,} steps", {"cut": cw + 0.5})
    fig_c = run_dir / f"deep-teacher-{name}-scratch.png"
    panels_figure(fig_c, [CurvesPanel(
        g, "return per episode",
        {f"student ({s.student.kind})": M.mean_curve_ci(v["student"]),
         f"{s.teacher.name} run fresh": M.mean_curve_ci(v["teacher"]),
         "random": M.mean_curve_ci(v["random"])}) for g, v in x["games"].items()],
        f"window of {W:,} steps")
    sec_a = Section(
        key=f"{name}-at-cut", title=f"{name} (a): at the cut",
        claim="Right after the cut, continuing a held-out teacher's history, the student plays "
              "at the teacher's level at the cut.",
        setting=text, columns=["quantity", "estimate"],
        rows=[{"quantity": "teacher, last window before the cut", "estimate": x["teacher_at_cut"]},
              {"quantity": "student, first window after the cut",
               "estimate": x["student_first"]},
              {"quantity": "student - teacher", "estimate": x["a_diff"]},
              {"quantity": "random (its whole run on the same tasks)", "estimate": x["random"]},
              {"quantity": "teacher at the cut - random", "estimate": x["teacher_vs_random"]},
              {"quantity": "student, first window - random", "estimate": x["student_vs_random"]}],
        verdict=a.label, verdict_reason=a.reason, outcome=a.outcome, figures=[fig_b],
        notes=[_res(x) + "The student's context is primed with each held-out teacher "
               "learner's last steps before the cut (its context length), then it plays on a "
               "fresh episode of that task; teacher and student cells are paired by task."])
    sec_b = Section(
        key=f"{name}-past-cut", title=f"{name} (b): past the cut",
        claim="Run on past the cut, the student keeps improving like the teacher's own unseen "
              "continuation (else: it plateaus at the cut's level).",
        setting=text,
        columns=["learner", f"first {n} windows", f"last {n} windows", "improvement",
                 "continuation gap", "exceedance"],
        rows=[{"learner": f"{s.teacher.name}'s own continuation (held-out histories)",
               f"first {n} windows": M.asymptote(x["cont"][..., :n], n),
               f"last {n} windows": M.asymptote(x["cont"], n),
               "improvement": x["teacher_gain"]},
              {"learner": f"student ({s.student.kind}), cut at step {s.cut_steps}",
               f"first {n} windows": M.asymptote(x["student"][..., :n], n),
               f"last {n} windows": M.asymptote(x["student"], n),
               "improvement": x["student_gain"], "continuation gap": x["gap"],
               "exceedance": x["exceedance"]}],
        verdict=b.label, verdict_reason=b.reason, outcome=b.outcome, figures=[fig_b],
        notes=[_res(x) + f"Improvement: each cell's last {n} windows minus its first {n}. "
               "The teacher's continuation is the held-out teachers' own histories past the "
               "cut, over the same steps as the students' runs. Continuation gap: the "
               f"teacher's continuation - the student, over the last {n} windows. Exceedance: "
               f"the student's last {n} windows - the data ceiling, the best window of the "
               "held-out teachers' mean curve before the cut on the same task "
               f"({ci_text(x['ceiling'])}; their last window before it: "
               f"{ci_text(x['teacher_at_cut'])})."])
    rows = []
    for g, v in x["games"].items():
        m = v["n"]
        for who, label in (("student", f"student ({s.student.kind})"),
                           ("teacher", f"{s.teacher.name} run fresh"), ("random", "random")):
            row: dict[str, Any] = {
                "game": g + (" (trained on)" if g == name else ""), "learner": label,
                f"first {m} windows": M.asymptote(v[who][..., :m], m),
                f"last {m} windows": M.asymptote(v[who], m), "improvement": v["gains"][who]}
            if who == "student":
                row["student - random (last windows)"] = v["vs_random"]
                row["verdict"] = v["verdict"].label
            rows.append(row)
    m = next(iter(x["games"].values()))["n"]
    sec_c = Section(
        key=f"{name}-scratch", title=f"{name} (c): from scratch on unseen games",
        claim="Started with an empty context on a game it never saw in training, the student "
              "learns it in context, as the teacher run fresh does.",
        setting=text,
        columns=["game", "learner", f"first {m} windows", f"last {m} windows", "improvement",
                 "student - random (last windows)", "verdict"],
        rows=rows, verdict=c.label, verdict_reason=c.reason, outcome=c.outcome, figures=[fig_c],
        notes=["Each game's resolution is the setting's resolution x the fresh teacher's "
               "return over its last windows on that game; a game the fresh teacher does not "
               "learn within the run is inconclusive. The game the students trained on (run "
               "from scratch on its held-out tasks) is shown for reference and does not enter "
               "the verdict. " + "; ".join(
                   f"{g}: {cfg_game(s, g)}" for g in x["games"])])
    return [sec_a, sec_b, sec_c]


def game_name(env: Any) -> str:
    """A game's name: the gymnax environment's, else the family's."""
    return str(env.kwargs.get("name", env.name)) + (
        f" {env.kwargs.get('size')}x{env.kwargs.get('size')}" if "size" in env.kwargs else "")


def cfg_game(s: Any, g: str) -> str:
    env = s.env if g == s.name else next(t.env for t in s.transfer if t.name == g)
    return f"{env.name} {env.kwargs or ''}"


def contrast_section(cfg: Any, results: list[Any], nums: dict[str, dict[str, Any]]) -> Section:
    rows = []
    for r in results:
        s, x = r.setting, nums[r.setting.name]
        rows.append({"setting": s.name, "teacher": s.teacher.name, "game": game_name(s.env),
                     "(a) student - teacher at the cut": x["a_diff"], "(a)": x["a"].label,
                     "(b) continuation gap": x["gap"], "(b) student's improvement":
                     x["student_gain"], "(b)": x["b"].label, "(c)": x["c"].label})
    first = nums[results[0].setting.name]
    label = "; ".join(f"{r.setting.name}: {nums[r.setting.name]['b'].label}" for r in results)
    return Section(
        key="contrast", title="Deep vs tabular teacher: the three questions side by side",
        claim=f"The student keeps learning past the cut of a {results[0].setting.teacher.name} "
              "teacher's history (question b, the first setting's verdict), as against the "
              "contrast settings.",
        setting="; ".join(f"{r.setting.name}: {game_name(r.setting.env)} with "
                          f"{r.setting.teacher.name}" for r in results),
        columns=["setting", "teacher", "game", "(a) student - teacher at the cut", "(a)",
                 "(b) continuation gap", "(b) student's improvement", "(b)", "(c)"],
        rows=rows, verdict=label, verdict_reason=first["b"].reason,
        outcome=first["b"].outcome,
        notes=["Each setting's numbers are in its own units (return per episode of its game); "
               "the verdicts are each at that setting's resolution."])
