"""A student against the greedy teacher (:mod:`outlearn.studies.greedy_teacher`'s returns):
what the cut-off and gap studies' tables read off that reference. Here, not in
``greedy_teacher`` (the stage's code) or ``evaluation.metrics`` (every stage's), so that a
change to a table leaves the stages' cached results valid."""

from __future__ import annotations

import numpy as np

from outlearn.evaluation import metrics as M
from outlearn.stats import Estimate, crossed_mean_ci

__all__ = ["greedy_asymptote", "greedy_exceedance", "student_minus_greedy"]


def greedy_asymptote(returns: np.ndarray) -> Estimate:
    """The greedy teacher's mean return over all its episodes (it is frozen: no curve to
    take the end of), CI over tasks; ``returns``: (learners per task, tasks, episodes)."""
    return M.asymptote(returns, returns.shape[-1])


def greedy_exceedance(returns: np.ndarray, ceiling: M.DataCeiling) -> Estimate:
    """The greedy teacher's mean return (all its episodes) minus the data ceiling, task for
    task, CI over tasks: how far dropping the teacher's exploration alone goes past its
    data."""
    return M.exceedance(returns, ceiling, returns.shape[-1])


def student_minus_greedy(students: np.ndarray, returns: np.ndarray, last_n: int) -> Estimate:
    """A student's asymptote (its last ``last_n`` episodes; curves (students, eval seeds,
    tasks, episodes)) minus the greedy teacher's mean return, task for task (``returns``:
    (learners per task, tasks, episodes), the same tasks in the same order), with a CI over
    students and tasks, crossed (as :func:`~outlearn.evaluation.metrics.versus`, but the
    frozen teacher's mean counts all its episodes)."""
    teacher = M.asymptote_cells(returns, returns.shape[-1]).mean(axis=0)  # (tasks,)
    cells = M.asymptote_cells(students, last_n)
    if cells.shape[1] != teacher.size:
        raise ValueError(f"the greedy teacher ran on {teacher.size} tasks, the student on "
                         f"{cells.shape[1]}")
    return crossed_mean_ci(cells - teacher[None, :])
