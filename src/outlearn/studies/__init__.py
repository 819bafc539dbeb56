"""Built-in studies; importing this package registers them (see :mod:`outlearn.studies.base`)."""

from outlearn.studies.base import RunContext, Study

__all__ = ["RunContext", "Study"]
