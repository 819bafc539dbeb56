"""Identifying the learner (claim 12): which member of a parametrised family of learning
algorithms wrote a history, and what that member does past the history's end.

* :mod:`~outlearn.identify.families`: the families (tabular Q-learning, epsilon-greedy and
  UCB1 bandits) and the log-likelihood of a recorded history under each candidate member,
  by replaying the member's own updates along the history (JAX, candidates vectorised);
* :mod:`~outlearn.identify.fit`: maximum likelihood on a history up to a cut: a coarse
  grid, a local refinement, profile-likelihood CIs, discrete variants compared by
  likelihood;
* :mod:`~outlearn.identify.replay`: the fitted member's policy along a history (held-out
  KL to the teacher) and the member continued from the state the history implies at the
  cut, through the ordinary rollout loop.

The study that reads as claim 12 is :mod:`outlearn.studies.identify`.
"""

from outlearn.identify.families import FLOOR, LearnerFamily, Steps, make_learner_family

__all__ = ["FLOOR", "LearnerFamily", "Steps", "make_learner_family"]
