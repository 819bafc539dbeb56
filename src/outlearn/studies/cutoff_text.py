"""The cut-off study's wording about cuts: a cut in words, the headline cut of a verdict.

Report code only (no stage calls it), so an edit here invalidates no cached stage.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from outlearn.studies.cutspec import EPISODES, cut_kind, episodes_fraction
from outlearn.studies.verdicts import Verdict

__all__ = ["ceiling_shares", "cut_text", "cut_what", "headline", "headline_text",
           "headline_verdict", "horizon_problem", "panel_title"]


def horizon_problem(name: str, episodes: int, eval_episodes: int) -> str | None:
    """Why an evaluation of ``eval_episodes`` is too short for a cut that keeps
    ``episodes`` teacher episodes (it must run 3x the cut), or None."""
    if eval_episodes >= 3 * episodes:
        return None
    return (f"cut {cut_text(name)} keeps {episodes} teacher episodes, so the student must run "
            f"for at least 3 x {episodes} = {3 * episodes} episodes, but eval.episodes = "
            f"{eval_episodes}: raise eval.episodes to {3 * episodes} or lower the cut")


def cut_text(name: str) -> str:
    """A cut (by its :func:`cut_name`) as a message names it: its name, or for a cut by
    history length its config spelling (``"episodes:0.33"``)."""
    f = episodes_fraction(name)
    return name if f is None else f'"{EPISODES}{f:g}"'


def cut_what(name: str) -> str:
    """A cut (by its :func:`cut_name`) in words: "uncut", "early only", "cut at 0.4 of
    optimal", "cut at the first 33% of the teacher's episodes"."""
    kind = cut_kind(name)
    if kind == "length":
        return f"cut at the first {100 * (episodes_fraction(name) or 0.0):.3g}% of the " \
               "teacher's episodes"
    return {"uncut": "uncut", "early": "early only"}.get(kind, f"cut at {name} of optimal")


def panel_title(name: str) -> str:
    """A figure panel's title for a cut (shorter than its row label)."""
    f = episodes_fraction(name)
    if f is None:
        return f"cut at {name} of optimal"
    return f"first {100 * f:.3g}% of episodes"


def headline(names: list[str], share: dict[str, float] | None = None) -> str | None:
    """The cut a verdict is headed by: the cut by performance closest to 0.4 of optimal
    (CLAIMS: ~40%), if any; else the cut by history length whose data ceiling is the
    share of optimal closest to 0.4 (``share``: name -> ceiling / optimal; without it,
    the length cut whose fraction of episodes is closest to 0.4); else None."""
    perf = [n for n in names if cut_kind(n) == "performance"]
    if perf:
        return min(perf, key=lambda n: abs(float(n) - 0.4))
    length = [n for n in names if cut_kind(n) == "length"]
    if not length:
        return None
    return min(length, key=lambda n: abs((share or {}).get(n, episodes_fraction(n) or 0.0)
                                         - 0.4))


def headline_verdict(head: str, v: Verdict, share: dict[str, float]) -> Verdict:
    """The section's verdict from its headline cut's: ``cut 0.4: <label>``; a cut by
    history length (no cut by performance) says it is one, and why it was picked."""
    if cut_kind(head) != "length":
        return Verdict(f"cut {head}: {v.label}", v.reason, v.outcome)
    why = (f"No cut by performance, so the headline is the cut by history length whose data "
           f"ceiling is the share of optimal closest to 0.4 ({share.get(head, math.nan):.2g} "
           f"of optimal). {v.reason}")
    return Verdict(f"{cut_what(head)}: {v.label}", why, v.outcome)


def headline_text(head: str) -> str:
    """The headline cut as a verdict's reason names it: "Cut 0.4", "Cut at the first 33% of
    the teacher's episodes"."""
    return f"Cut {head}" if cut_kind(head) != "length" else "C" + cut_what(head)[1:]


def ceiling_shares(cuts: Mapping[str, Any], optimum: float) -> dict[str, float]:
    """Each cut's data ceiling (``cuts``: name -> CutInfo) as a share of ``optimum``, the
    mean optimal return on the held-out tasks."""
    return {n: c.ceiling.best.value / optimum for n, c in cuts.items()}
