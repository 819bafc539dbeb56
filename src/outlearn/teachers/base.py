"""The JAX learner protocol, for teachers: :class:`outlearn.core.Learner`.

Defined in :mod:`outlearn.core` with :class:`~outlearn.core.Transition`; re-exported here,
where the README has always named it (``outlearn.teachers.base.Learner``).
"""

from __future__ import annotations

from outlearn.core import Learner, LState, Transition

__all__ = ["LState", "Learner", "Transition"]
