"""Built-in studies; importing this package registers them (see :mod:`outlearn.studies.base`)."""

import outlearn.studies.actions  # noqa: F401  (actions)
import outlearn.studies.context  # noqa: F401  (context)
import outlearn.studies.cutoff  # noqa: F401  (cutoff)
import outlearn.studies.deep_teacher  # noqa: F401  (deep-teacher)
import outlearn.studies.gap  # noqa: F401  (gap)
import outlearn.studies.identify  # noqa: F401  (identify)
import outlearn.studies.labels  # noqa: F401  (labels)
import outlearn.studies.noise  # noqa: F401  (noise)
import outlearn.studies.selfdistill  # noqa: F401  (selfdistill-categorical, selfdistill-lm)
import outlearn.studies.selftrain  # noqa: F401  (selftrain-addition)
import outlearn.studies.source  # noqa: F401  (source)
import outlearn.studies.subsample  # noqa: F401  (subsample)
import outlearn.studies.taskcount  # noqa: F401  (taskcount)
from outlearn.studies.base import RunContext, Study

__all__ = ["RunContext", "Study"]
