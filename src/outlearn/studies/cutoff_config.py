"""The cut-off study's config: what to collect, where to cut, how to train and evaluate.

Impossible settings are refused when the config is parsed (before any work); cuts that
only the teacher's curve can rule out are refused after collection, before training
(see :func:`outlearn.studies.cutoff.check_eval_horizon`).

One student or several: ``[student]`` (one section, as always) or ``[[students]]`` (a list
of sections, each with a ``name`` and its own ``kind``): then every student trains on the
same cuts with the same training seeds and runs on the same held-out tasks, and ``compare
= [student, baseline]`` names the two whose exceedances are set against each other (by
default the one ``adq`` student against the one ``ad`` student).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (
    Field,
    SerializerFunctionWrapHandler,
    field_validator,
    model_serializer,
    model_validator,
)

from outlearn.collect import EnvSection, TeacherSection
from outlearn.config import Config
from outlearn.evaluation.baselines import make_teacher
from outlearn.studies.common import (  # noqa: F401  (re-exported: the cut-off config's parts)
    EvalSection,
    StudentSection,
    TeacherStudyConfig,
    make_family,
)
from outlearn.studies.cutoff_text import horizon_problem
from outlearn.studies.cutspec import (  # noqa: F401  (re-exported: cut_name)
    Cut,
    cut_name,
    episodes_fraction,
    kept_episodes,
    parse_cut,
)


class HorizonSection(Config):
    """Claim 3: bandit student trained on ``T`` pulls, run to ``factor * T``."""

    env: EnvSection = Field(EnvSection(name="bernoulli-bandit", kwargs={"num_arms": 5}),
                            description="the bandit family (episode length 1) of this part")
    teacher: TeacherSection = Field(TeacherSection(name="ucb1"), description="the teacher whose "
                                    "T-pull histories the students learn from, and the "
                                    "reference run to factor x T")
    T: int = Field(100, ge=4, description="pulls in each training history; also the "
                   "student's context (a sliding window)")
    factor: int = Field(10, ge=2, description="the students run to factor x T pulls")
    n_train: int = Field(40, ge=1, description="training tasks (bandits) of this part")
    n_test: int = Field(20, ge=1, description="held-out tasks the students and the reference "
                        "run on")
    within: float = Field(0.2, gt=0, description="the claim's tolerance: cumulative regret at "
                          "factor x T within this fraction of the teacher's counts as tracking it")
    student: StudentSection | None = Field(None, description="the student of this part "
                                           "([horizon_extrapolation.student]); unset: the "
                                           "study's [student]")


class NamedStudentSection(StudentSection):
    """One of several students of a study (``[[students]]``): a student section with a
    ``name``, which labels its columns in the report and enters its stages' inputs."""

    name: str = Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$", max_length=40,
                      description="a short label: a letter, then letters, digits, _ . -")
    eval_mode: Literal["sample", "greedy"] | None = Field(
        None, description="how this student acts in the evaluation, over [eval] mode (e.g. AD "
        "greedy beside adq epsilon-greedy); unset: [eval] mode")

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """Without ``eval_mode`` when unset, so a config that does not set it keeps the hash
        (and the stage keys) it had before the key existed."""
        d: dict[str, Any] = handler(self)
        if d.get("eval_mode") is None:
            d.pop("eval_mode", None)
        return d

    def trained(self) -> NamedStudentSection:
        """The section as training sees it: how the student acts later is not part of it, so
        students that differ only in ``eval_mode`` share their training stages."""
        return self.model_copy(update={"eval_mode": None})


def acting(student: StudentSection | None, default: str) -> str:
    """How a student acts in the evaluation: a named student's ``eval_mode`` when set, else
    ``default`` (``[eval] mode``)."""
    return getattr(student, "eval_mode", None) or default


#: the kinds whose pair is compared when ``compare`` is not given: (student, baseline)
DEFAULT_COMPARE = ("adq", "ad")


class CutoffConfig(TeacherStudyConfig):
    """The cut-off study. ``cuts``: fractions of optimal in (0, 1), ``"uncut"`` (the whole
    history, the reference), ``"early"`` (only the episodes where the teacher is no
    better than random) and ``"episodes:F"`` (the first F of the teacher's episodes, F in
    (0, 1), rounded to whole episodes: ``"episodes:0.33"`` of 120 keeps 40; every learner
    cut at the same episode boundary, so the episodes must have a fixed length, as Dark
    Room's and a bandit's do). ``students`` (instead of ``student``): two or more named students
    trained on the same cuts and seeds; ``compare``: [student, baseline], the two names
    whose exceedances are compared (default: the ``adq`` student and the ``ad`` one)."""

    cuts: list[Cut] = Field(min_length=1, description="where to cut the histories: fractions "
                            "of optimal in (0, 1) as numbers (cut when the teacher's smoothed "
                            "return first reaches it), 'uncut' (the whole history), 'early' (only "
                            "episodes no better than random) and 'episodes:F' with F in (0, 1) "
                            "(the first F of the teacher's teacher_episodes, rounded to whole "
                            "episodes, at least one; e.g. 'episodes:0.33'; needs fixed-length "
                            "episodes); one student per cut and train seed")
    smoothing: int = Field(3, ge=1, description="episodes in the teacher's trailing mean")
    horizon_extrapolation: HorizonSection | None = Field(
        None, description="claim 3 on a bandit ([horizon_extrapolation] table); unset: not run")
    students: list[NamedStudentSection] | None = Field(
        None, min_length=2, description="several students side by side (each with a name); "
        "give either this or [student]")
    compare: list[str] | None = Field(
        None, min_length=2, max_length=2, description="[student, baseline]: names of two of "
        "students; the verdict reads student's exceedance - baseline's")

    @field_validator("cuts", mode="before")
    @classmethod
    def _spell(cls, v: Any) -> Any:
        """Strings must be "uncut", "early" or "episodes:F"; the last is written back in
        one spelling (``"episodes:0.330"`` -> ``"episodes:0.33"``)."""
        if not isinstance(v, list):
            return v
        return [parse_cut(c) if isinstance(c, str) else c for c in v]

    @model_serializer(mode="wrap")
    def _dump(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        """The resolved config without the keys a config does not use: ``students`` and
        ``compare`` when unset (so a config of one student keeps the hash, and the run
        directory, it had before they existed), ``student`` when ``students`` is given
        (it is not used then)."""
        d: dict[str, Any] = handler(self)
        for k in ("students", "compare"):
            if d.get(k) is None:
                d.pop(k, None)
        if self.students is not None:
            d.pop("student", None)
        return d

    @model_validator(mode="after")
    def _check(self) -> CutoffConfig:
        for c in self.cuts:
            if isinstance(c, float) and not 0.0 < c < 1.0:
                raise ValueError(f"cut {c} must be a fraction of optimal in (0, 1), or "
                                 "\"uncut\" / \"early\" / \"episodes:F\" (the first F of the "
                                 "teacher's episodes): fix cuts")
        if len({cut_name(c) for c in self.cuts}) != len(self.cuts):
            raise ValueError(f"cuts={self.cuts} has duplicates: remove them")
        self._check_length_cuts()
        if self.horizon_extrapolation is not None:
            h = self.horizon_extrapolation
            if make_family(h.env).episode_len != 1:
                raise ValueError(f"horizon_extrapolation.env {h.env.name!r} is not a bandit "
                                 "(episode_len 1): use e.g. 'bernoulli-bandit'")
            make_teacher(h.teacher.name, make_family(h.env), **h.teacher.kwargs)
        self._check_students()
        return self

    def _check_length_cuts(self) -> None:
        """Cuts by history length keep at least one episode and not all of them, no two
        keep the same episodes, and the evaluation runs for 3x what each keeps (known now:
        a cut by length needs no teacher's curve)."""
        E, kept = self.teacher_episodes, dict[int, Cut]()
        for c in self.cuts:
            f = episodes_fraction(c)
            if f is None:
                continue
            n = kept_episodes(f, E)
            if n < 1:
                raise ValueError(
                    f"cut {c!r} keeps {f:g} x {E} teacher episodes, which rounds to 0: less "
                    f"than one complete episode. Raise the fraction to at least "
                    f"{1 / E:g} (\"episodes:{1 / E:g}\" keeps 1 episode) or raise "
                    "teacher_episodes")
            if n >= E:
                raise ValueError(
                    f"cut {c!r} keeps {f:g} x {E} teacher episodes, which rounds to all {E}: "
                    "that is the whole history. Use \"uncut\" for it, or a smaller fraction "
                    f"(at most {(E - 1) / E:g} keeps {E - 1})")
            if n in kept:
                raise ValueError(f"cuts {kept[n]!r} and {c!r} both keep the first {n} of "
                                 f"{E} teacher episodes: remove one")
            kept[n] = c
            why = horizon_problem(cut_name(c), n, self.eval.episodes)
            if why is not None:
                raise ValueError(why)

    def _check_students(self) -> None:
        if self.students is None:
            if self.compare is not None:
                raise ValueError("compare names two of [[students]], but there is one "
                                 "[student]: remove compare or list the students")
            return
        if "student" in self.model_fields_set:
            raise ValueError("give either [student] (one student) or [[students]] (several, "
                             "each with a name), not both: move [student] into [[students]]")
        names = [s.name for s in self.students]
        if len(set(names)) != len(names):
            raise ValueError(f"students have the names {names}: give each a different name")
        for s in self.students:
            s.check()
        if self.compare is not None:
            a, b = self.compare
            unknown = [n for n in (a, b) if n not in names]
            if unknown or a == b:
                raise ValueError(f"compare = {self.compare}: give two different names of "
                                 f"students ({', '.join(names)})")
        else:
            self.compared()  # refuses an ambiguous default
        if self.horizon_extrapolation is not None and self.horizon_extrapolation.student is None:
            raise ValueError("with [[students]], horizon_extrapolation needs its own student: "
                             "add [horizon_extrapolation.student]")

    def student_sections(self) -> dict[str | None, StudentSection]:
        """The students by name: ``{None: student}`` for a config of one student."""
        if self.students is None:
            return {None: self.student}
        return {s.name: s for s in self.students}

    def compared(self) -> tuple[str, str]:
        """(student, baseline) of the comparison: ``compare``, or else the one student of
        kind ``adq`` and the one of kind ``ad`` (:data:`DEFAULT_COMPARE`)."""
        if self.students is None:
            raise ValueError("a config of one student compares nothing")
        if self.compare is not None:
            return self.compare[0], self.compare[1]
        pair = []
        for kind in DEFAULT_COMPARE:
            of_kind = [s.name for s in self.students if s.kind == kind]
            if len(of_kind) != 1:
                raise ValueError(
                    f"students have {len(of_kind)} of kind {kind!r} ({of_kind}), so which two "
                    "to compare is not clear: set compare = [\"<student>\", \"<baseline>\"]")
            pair.append(of_kind[0])
        return pair[0], pair[1]

    def cut_context(self) -> int:
        """The context (steps) a cut is made for: the student's, or the longest of the
        students' (each student's own is cut from it)."""
        if self.students is None:
            return self.student.context_len
        return max(s.context_len for s in self.students)
