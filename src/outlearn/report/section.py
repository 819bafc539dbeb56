"""What a study hands to the report: one :class:`Section` per claim it tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from outlearn.stats import Estimate

Cell = Estimate | float | int | str


class Outcome(StrEnum):
    """What a verdict decided: a claim's (confirmed / refuted) or a question's (yes / no)."""

    CONFIRMED = "confirmed"
    REFUTED = "refuted"
    YES = "yes"
    NO = "no"
    INCONCLUSIVE = "inconclusive"


@dataclass
class Section:
    """One claim's part of a report.

    ``rows``: the table, one dict per row, columns in ``columns`` order; a number that
    is an estimate must be an :class:`Estimate` (value with its CI), so the report can
    show every CI. ``verdict`` is computed by the study from the numbers, never typed in;
    ``verdict_reason`` says which numbers decided it; ``outcome`` (:class:`Outcome`) is
    what code and ``results.json`` read (never the words of ``verdict``).
    """

    key: str
    title: str
    claim: str
    setting: str
    columns: list[str]
    rows: list[dict[str, Any]]  # column -> Cell (None or absent: an empty cell)
    verdict: str
    verdict_reason: str
    figures: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    outcome: Outcome | None = None

    def __post_init__(self) -> None:
        if self.outcome is None:
            raise ValueError(f"section {self.key!r}: give its verdict's outcome (an Outcome)")
        self.outcome = Outcome(self.outcome)


def without_empty_columns(columns: list[str], rows: list[dict[str, Any]], optional: list[str]
                          ) -> tuple[list[str], list[dict[str, Any]]]:
    """``columns`` and ``rows`` without those of ``optional`` that no row has a value in
    (a reference this run did not measure, e.g. the greedy teacher)."""
    empty = {c for c in optional if not any(r.get(c) is not None for r in rows)}
    return ([c for c in columns if c not in empty],
            [{k: x for k, x in r.items() if k not in empty} for r in rows])
