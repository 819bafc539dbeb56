"""What a cut of the cut-off study is: its spellings in a config, its name, how many
episodes a cut by history length keeps.

A cut is a fraction of optimal (a number: cut where the teacher's smoothed return first
reaches it), ``"uncut"``, ``"early"``, or a fraction of the teacher's episodes
(``"episodes:0.33"``: its first 33%). The cut stage calls these functions, so this module
is in its code (``STAGE_CODE["cut"]``); the report's wording is in
:mod:`outlearn.studies.cutoff_text`.
"""

from __future__ import annotations

import math
from typing import Literal

__all__ = ["EPISODES", "EPISODES_NAME", "Cut", "cut_kind", "cut_name", "episodes_fraction",
           "kept_episodes", "parse_cut"]

#: a cut as a config gives it: a fraction of optimal (a number), ``"uncut"``, ``"early"``, or
#: a fraction of the teacher's episodes, ``"episodes:F"`` (a string; see :func:`parse_cut`)
Cut = float | Literal["uncut", "early"] | str

#: the spelling of a cut by history length: ``"episodes:0.33"``, the first 33% of episodes
EPISODES = "episodes:"
#: the name (:func:`cut_name`) of a cut by history length: ``"episodes_0.33"``
EPISODES_NAME = "episodes_"


def parse_cut(c: str) -> str:
    """A cut spelt as a string, checked and in its one spelling: ``"uncut"``, ``"early"``,
    or ``"episodes:F"`` with 0 < F < 1 (the first F of the teacher's episodes; F written
    back as Python writes the float, so ``"episodes:0.330"`` is ``"episodes:0.33"``).
    Anything else raises ValueError naming the spellings."""
    if c in ("uncut", "early"):
        return c
    spellings = ("give a fraction of optimal as a number (0.4, not \"0.4\"), \"uncut\", "
                 "\"early\", or the first F of the teacher's episodes as \"episodes:F\" "
                 "(e.g. \"episodes:0.33\", the first 33%)")
    if not c.startswith(EPISODES):
        try:
            float(c)
        except ValueError:
            raise ValueError(f"cut {c!r} is not a cut: {spellings}") from None
        raise ValueError(f"cut {c!r} is a string: write {c.strip()} without quotes for a "
                         f"fraction of optimal, or \"{EPISODES}{c.strip()}\" for that fraction of "
                         "the teacher's episodes")
    text = c[len(EPISODES):]
    try:
        f = float(text)
    except ValueError:
        raise ValueError(f"cut {c!r}: {text!r} after \"{EPISODES}\" is not a number: "
                         f"{spellings}") from None
    if not (math.isfinite(f) and 0.0 < f < 1.0):
        raise ValueError(f"cut {c!r}: the fraction of the teacher's episodes must be in (0, 1): "
                         "e.g. \"episodes:0.33\" keeps the first 33%; for the "
                         "whole history use \"uncut\"")
    return f"{EPISODES}{f!r}"


def episodes_fraction(c: Cut | str) -> float | None:
    """F of a cut by history length (its config spelling ``"episodes:F"`` or its name
    ``"episodes_F"``); None for any other cut."""
    if isinstance(c, str):
        for prefix in (EPISODES, EPISODES_NAME):
            if c.startswith(prefix):
                return float(c[len(prefix):])
    return None


def kept_episodes(fraction: float, teacher_episodes: int) -> int:
    """Episodes a cut by history length keeps: ``fraction x teacher_episodes``, rounded to
    the nearest (halves up): "episodes:0.33" of 120 keeps 40, of 40 keeps 13."""
    return math.floor(fraction * teacher_episodes + 0.5)


def cut_name(c: Cut) -> str:
    """The stable, filename-safe name of a cut (letters, digits, ``.``, ``_``): ``"0.4"``
    (a fraction of optimal), ``"uncut"``, ``"early"``, ``"episodes_0.33"`` (the first 33%
    of the teacher's episodes)."""
    if not isinstance(c, str):
        return f"{c:g}"
    f = episodes_fraction(c)
    return c if f is None else f"{EPISODES_NAME}{f:g}"


def cut_kind(name: str) -> Literal["performance", "length", "uncut", "early"]:
    """What a cut (by its :func:`cut_name`) cuts at: a fraction of optimal
    ("performance"), a fraction of the teacher's episodes ("length"), or neither."""
    if name in ("uncut", "early"):
        return "uncut" if name == "uncut" else "early"
    return "length" if episodes_fraction(name) is not None else "performance"
