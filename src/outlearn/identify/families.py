"""Parametrised learner families and the likelihood of a history under their members.

A family is a learning algorithm with continuous parameters (a Q-learner's learning rate,
discount, initial value and epsilon schedule) and discrete variants (the schedule's
shape, its clock). The log-likelihood of a recorded history under one member is the sum,
over the history's steps, of the log-probability the member gives the action the history
took, the member having been updated on every earlier transition exactly as the teacher
would have been: a replay of the member's own updates along the history.

Candidates are the last axis of every array of the replayed state (a Q table is
``(num_obs, A, C)``), so one step of ``C`` candidates reads and writes contiguous rows
and a grid of 10,000 members is one ``lax.scan``. Learners are mapped over (``lax.map``)
so memory stays one learner's tables. Each family mirrors its teacher in
:mod:`outlearn.teachers` operation for operation; a test holds the two together (a
history's likelihood under its own teacher's parameters is the sum of its logged action
log-probabilities).

A probability below :data:`FLOOR` counts as :data:`FLOOR`: a member that calls the
history's action impossible pays log(1e-6) = -13.8 for it instead of -inf, so members of a
deterministic family (UCB1, a greedy Q-learner) still have ordered likelihoods.
"""

from __future__ import annotations

import functools
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from outlearn.errors import ConfigError
from outlearn.registry import FAMILIES

#: the smallest probability a member is taken to give any action (see the module doc)
FLOOR = 1e-6


class Steps(NamedTuple):
    """A batch of recorded histories, each (L, S): what a replay reads."""

    obs: np.ndarray  # int32
    actions: np.ndarray  # int32
    rewards: np.ndarray  # float32
    next_obs: np.ndarray  # int32: the observation each step ended in (before a reset)
    terminated: np.ndarray  # bool
    done: np.ndarray  # bool: terminated | truncated (the episode clock ticks)

    @staticmethod
    def from_history(h: Any, learners: np.ndarray, steps: int | None = None) -> Steps:
        """Steps ``[0, steps)`` of ``learners`` of an open :class:`~outlearn.histories.History`.
        Refuses a history this module cannot replay (frames; no ``next_obs`` where the
        family has more than one observation)."""
        if h.has_frames:
            raise ConfigError(
                f"history {h.path} has frame observations; the learner families replay "
                "tabular learners that index by a discrete observation: fit a history of a "
                "discrete family (darkroom, keydoor, a bandit)")
        sel = np.asarray(learners, dtype=np.int64)
        s = slice(0, steps)
        obs = h.read_steps("obs", sel)[:, s]
        if h.has_next_obs:
            nxt = h.read_steps("next_obs", sel)[:, s]
        elif h.meta.num_obs == 1:  # a bandit: every observation is 0
            nxt = np.zeros_like(obs)
        else:
            raise ConfigError(
                f"history {h.path} does not record next_obs (the observation each step ended "
                "in), which a Q-learner's update at an episode's end reads: it was written "
                "before outlearn recorded it. Collect it again with this version")
        term = h.read_steps("terminated", sel)[:, s]
        return Steps(obs.astype(np.int32), h.read_steps("actions", sel)[:, s].astype(np.int32),
                     h.read_steps("rewards", sel)[:, s].astype(np.float32),
                     nxt.astype(np.int32), term.astype(bool),
                     (term | h.read_steps("truncated", sel)[:, s]).astype(bool))


@dataclass(frozen=True)
class Param:
    """A continuous parameter of a family: its valid range and the scale a grid uses."""

    name: str
    low: float
    high: float
    log: bool = False  # grids in log space (a learning rate)
    integer: bool = False  # the teacher takes an int (rounded when the member is built)
    doc: str = ""


class LearnerFamily(ABC):
    """A family: its parameters, its discrete variants, its teacher, and its replay.

    Subclasses define the abstract ``init``, ``probs``, ``update`` (on candidate-last arrays),
    ``teacher_kwargs`` and ``truth``; ``theta``
    maps each parameter name to a float32 (C,) array; ``variant`` maps each variant name
    to one of its values (static: one compiled replay per variant).
    """

    name: str = ""
    teacher: str = ""  # the teacher kind whose members these are
    params: tuple[Param, ...] = ()
    variants: dict[str, tuple[Any, ...]] = {}
    bandit_only = False

    # -- what a subclass defines --------------------------------------------------------
    @abstractmethod
    def init(self, theta: Mapping[str, jax.Array], variant: Mapping[str, Any], num_obs: int,
             num_actions: int, first: tuple[jax.Array, jax.Array]) -> Any:
        """The state before step 0; ``first``: (obs, next_obs) of step 0."""
        ...

    @abstractmethod
    def probs(self, theta: Mapping[str, jax.Array], variant: Mapping[str, Any], state: Any,
              obs: jax.Array, clock: jax.Array) -> jax.Array:
        """(A, C): each candidate's action probabilities in ``obs`` at ``clock``."""
        ...

    @abstractmethod
    def update(self, theta: Mapping[str, jax.Array], variant: Mapping[str, Any], state: Any,
               obs: jax.Array, action: jax.Array, reward: jax.Array, next_obs: jax.Array,
               terminated: jax.Array, upcoming: tuple[jax.Array, jax.Array]) -> Any:
        """The state after the transition; ``upcoming``: (obs, next_obs) of the next step
        (a family may read what it will need from its updated tables now)."""
        ...

    @abstractmethod
    def teacher_kwargs(self, values: Mapping[str, float], variant: Mapping[str, Any]
                       ) -> dict[str, Any]:
        """The teacher's settings of the member ``values`` (one float per parameter)."""
        ...

    @abstractmethod
    def truth(self, teacher_kwargs: Mapping[str, Any]) -> tuple[dict[str, float],
                                                                dict[str, Any]]:
        """(parameter values, variant) of a teacher of this family's kind, configured by
        ``teacher_kwargs``: what a fit should recover (used to score a fit, never by it)."""
        ...

    # -- shared ---------------------------------------------------------------------------
    def param(self, name: str) -> Param:
        for p in self.params:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.params)
        raise ConfigError(f"family {self.name!r} has no parameter {name!r}; its parameters: "
                          f"{known}")

    def episode_clock(self, variant: Mapping[str, Any]) -> bool:
        """Whether the schedule's clock counts episodes (else steps)."""
        return variant.get("eps_unit", "step") == "episode"

    def check(self, num_obs: int, num_actions: int, env: str) -> None:
        """Refuse a history this family cannot express (a ConfigError naming the fix)."""
        if num_obs < 1:
            raise ConfigError(f"env {env!r} has frame observations; family {self.name!r} is a "
                              "tabular learner that indexes by a discrete observation: fit a "
                              "history of a discrete env (darkroom, keydoor, a bandit)")
        if num_actions < 2:
            raise ConfigError(f"env {env!r} has {num_actions} action(s); identification needs "
                              "a choice between at least 2")
        if self.bandit_only and num_obs != 1:
            raise ConfigError(f"family {self.name!r} is a bandit learner (one observation) but "
                              f"env {env!r} has {num_obs} observations: fit it with family "
                              "'qlearning'")

    def check_variant(self, variant: Mapping[str, Any]) -> dict[str, Any]:
        """``variant`` completed with each variant's first value, values checked."""
        out = {}
        for k in variant:
            if k not in self.variants:
                raise ConfigError(f"family {self.name!r} has no variant {k!r}; its variants: "
                                  f"{', '.join(self.variants) or '(none)'}")
        for k, choices in self.variants.items():
            v = variant.get(k, choices[0])
            if v not in choices:
                raise ConfigError(f"family {self.name!r}: {k} = {v!r} is not one of "
                                  f"{list(choices)}")
            out[k] = v
        return out

    def log_likelihood(self, theta: Mapping[str, np.ndarray], variant: Mapping[str, Any],
                       steps: Steps, upto: np.ndarray | int, num_obs: int,
                       num_actions: int) -> np.ndarray:
        """(L, C) float64: each learner's log-likelihood of its steps ``[0, upto)`` under
        each candidate (``upto``: one step count, or one per learner)."""
        fn = _replay(self, _freeze(self.check_variant(variant)), num_obs, num_actions, False)
        up = np.broadcast_to(np.asarray(upto, np.int32), (steps.obs.shape[0],))
        ll, _ = fn(_theta(self, theta), _arrays(steps), jnp.asarray(up))
        return np.asarray(ll, dtype=np.float64)

    def action_probs(self, values: Mapping[str, float], variant: Mapping[str, Any],
                     steps: Steps, num_obs: int, num_actions: int) -> np.ndarray:
        """(L, S, A): one member's action probabilities at every step of each history (the
        member updated on the history's own transitions)."""
        fn = _replay(self, _freeze(self.check_variant(variant)), num_obs, num_actions, True)
        theta = {k: np.asarray([v], np.float32) for k, v in values.items()}
        up = jnp.zeros((steps.obs.shape[0],), jnp.int32)
        _, p = fn(_theta(self, theta), _arrays(steps), up)
        return np.asarray(p)[..., 0]


def _freeze(variant: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted(variant.items()))


def _theta(fam: LearnerFamily, theta: Mapping[str, np.ndarray]) -> dict[str, jax.Array]:
    missing = [p.name for p in fam.params if p.name not in theta]
    if missing:
        raise ConfigError(f"family {fam.name!r}: no value for {', '.join(missing)}")
    sizes = {np.size(theta[p.name]) for p in fam.params}
    if len(sizes) != 1:
        raise ValueError(f"candidate arrays differ in length: {sizes}")
    return {p.name: jnp.asarray(np.ravel(theta[p.name]), jnp.float32) for p in fam.params}


def _arrays(steps: Steps) -> tuple[jax.Array, ...]:
    return tuple(jnp.asarray(a) for a in steps)


@functools.lru_cache(maxsize=32)
def _replay(fam: LearnerFamily, variant: tuple[tuple[str, Any], ...], num_obs: int,
            num_actions: int, want_probs: bool) -> Callable:
    """The jitted replay: ``(theta, steps (L, S) arrays, upto (L,)) -> (loglik (L, C),
    probs (L, S, A, C) or None)``."""
    var = dict(variant)
    per_episode = fam.episode_clock(var)

    def one(theta: dict[str, jax.Array], xs: tuple[jax.Array, ...], upto: jax.Array):
        obs, act, rew, nxt, term, done = xs
        c = next(iter(theta.values())).shape[0]
        state = fam.init(theta, var, num_obs, num_actions, (obs[0], nxt[0]))
        t = jnp.arange(obs.shape[0], dtype=jnp.int32)
        obs1, nxt1 = jnp.append(obs[1:], obs[-1:]), jnp.append(nxt[1:], nxt[-1:])

        def body(carry, x):
            state, episodes, ll = carry
            o, a, r, n, te, d, ti, o1, n1 = x
            p = fam.probs(theta, var, state, o, episodes if per_episode else ti)
            pa = jax.lax.dynamic_index_in_dim(p, a, 0, keepdims=False)
            ll = ll + jnp.where(ti < upto, jnp.log(jnp.maximum(pa, FLOOR)), 0.0)
            state = fam.update(theta, var, state, o, a, r, n, te, (o1, n1))
            return (state, episodes + d.astype(jnp.int32), ll), (p if want_probs else None)

        carry = (state, jnp.int32(0), jnp.zeros((c,), jnp.float32))
        (_, _, ll), probs = jax.lax.scan(
            body, carry, (obs, act, rew, nxt, term, done, t, obs1, nxt1))
        return ll, probs

    def run(theta, xs, upto):
        # one learner at a time: memory is one learner's tables for all candidates
        return jax.lax.map(lambda a: one(theta, a[0], a[1]), (xs, upto))

    return jax.jit(run)


# ------------------------------------------------------------------------------ helpers
def epsilon_schedule(theta: Mapping[str, jax.Array], kind: str, clock: jax.Array) -> jax.Array:
    """(C,) epsilon at ``clock``: :func:`outlearn.teachers.qlearning.epsilon_at`, per
    candidate."""
    start = theta["eps_start"]
    if kind == "constant":
        return start
    frac = jnp.clip(clock.astype(jnp.float32) / jnp.maximum(theta["eps_decay_steps"], 1.0),
                    0.0, 1.0)
    end = theta["eps_end"]
    if kind == "linear":
        return start + (end - start) * frac
    shape = jnp.where(frac >= 1.0, 0.0, jnp.power(0.01, frac))
    return end + (start - end) * shape


def greedy(values: jax.Array, eps: jax.Array) -> jax.Array:
    """(A, C) epsilon-greedy probabilities over ``values`` (A, C), greedy ties split
    uniformly: :func:`outlearn.teachers.qlearning.greedy_probs` per candidate."""
    top = functools.reduce(jnp.maximum, list(values))
    best = (values >= top[None]).astype(jnp.float32)
    n = functools.reduce(jnp.add, list(best))
    a = values.shape[0]
    return eps[None] / a + (1.0 - eps[None]) * best / n[None]


_EPS_PARAMS = (
    Param("eps_start", 0.0, 1.0, doc="epsilon at the start"),
    Param("eps_end", 0.0, 1.0, doc="epsilon after the decay"),
    Param("eps_decay_steps", 1.0, 10_000.0, log=True, integer=True,
          doc="length of the decay (steps, or episodes with eps_unit = 'episode')"),
)
_EPS_VARIANTS: dict[str, tuple[Any, ...]] = {
    "eps_schedule": ("linear", "constant", "exponential"),
    "eps_unit": ("step", "episode"),
}


def _eps_kwargs(values: Mapping[str, float], variant: Mapping[str, Any]) -> dict[str, Any]:
    return {"eps_schedule": variant["eps_schedule"], "eps_unit": variant["eps_unit"],
            "eps_start": float(np.clip(values["eps_start"], 0, 1)),
            "eps_end": float(np.clip(values["eps_end"], 0, 1)),
            "eps_decay_steps": max(1, int(round(values["eps_decay_steps"])))}


def _eps_truth(cfg: Any) -> tuple[dict[str, float], dict[str, Any]]:
    return ({"eps_start": cfg.eps_start, "eps_end": cfg.eps_end,
             "eps_decay_steps": float(cfg.eps_decay_steps)},
            {"eps_schedule": cfg.eps_schedule, "eps_unit": cfg.eps_unit})


# ------------------------------------------------------------------------------ families
class QLearningFamily(LearnerFamily):
    """Tabular Q-learning with an epsilon-greedy policy (:mod:`outlearn.teachers.qlearning`):
    learning rate, discount, initial value (or 'optimistic' = 1 / (1 - discount), a
    variant) and the epsilon schedule."""

    name = "qlearning"
    teacher = "qlearning"
    params = (
        Param("learning_rate", 1e-3, 1.0, log=True, doc="step size of the update"),
        Param("discount", 0.0, 0.999, doc="discount of the bootstrapped target"),
        Param("initial_value", -20.0, 20.0, doc="value every Q entry starts at (unused by "
              "initial = 'optimistic')"),
        *_EPS_PARAMS,
    )
    variants = {**_EPS_VARIANTS, "initial": ("value", "optimistic")}

    # The state is (q (num_obs, A, C), q[obs] and q[next_obs] of the current step): the
    # rows a step reads are read at the end of the step before, after its write. Read in
    # the same step as the write, XLA copies the whole table every step to keep the old
    # values for the readers (100x slower at 10,000 members).
    def init(self, theta, variant, num_obs, num_actions, first):
        q0 = (1.0 / (1.0 - theta["discount"]) if variant["initial"] == "optimistic"
              else theta["initial_value"])
        q = jnp.broadcast_to(q0, (num_obs, num_actions, q0.shape[0])).astype(jnp.float32)
        return q, q[first[0]], q[first[1]]

    def probs(self, theta, variant, state, obs, clock):
        eps = epsilon_schedule(theta, variant["eps_schedule"], clock)
        return greedy(state[1], eps)

    def update(self, theta, variant, state, obs, action, reward, next_obs, terminated,
               upcoming):
        q, row, nxt = state  # (A, C) rows of obs and next_obs
        boot = jnp.where(terminated, 0.0,
                         theta["discount"] * functools.reduce(jnp.maximum, list(nxt)))
        old = jax.lax.dynamic_index_in_dim(row, action, 0, keepdims=False)
        new = old + theta["learning_rate"] * (reward + boot - old)
        q = jax.lax.dynamic_update_slice(q, new[None, None], (obs, action, 0))
        o1, n1 = upcoming
        return (q, jax.lax.dynamic_index_in_dim(q, o1, 0, keepdims=False),
                jax.lax.dynamic_index_in_dim(q, n1, 0, keepdims=False))

    def teacher_kwargs(self, values, variant):
        out = {"learning_rate": float(np.clip(values["learning_rate"], 1e-9, 1.0)),
               "discount": float(np.clip(values["discount"], 0.0, 0.999999)),
               "initial_value": ("optimistic" if variant["initial"] == "optimistic"
                                 else float(values["initial_value"]))}
        return {**out, **_eps_kwargs(values, variant)}

    def truth(self, teacher_kwargs):
        from outlearn.config import parse_config
        from outlearn.teachers.qlearning import QLearningConfig

        cfg = parse_config(QLearningConfig, dict(teacher_kwargs), "teacher 'qlearning'")
        opt = cfg.initial_value == "optimistic"
        values, variant = _eps_truth(cfg)
        values.update(learning_rate=cfg.learning_rate, discount=cfg.discount,
                      initial_value=(1.0 / (1.0 - cfg.discount) if opt
                                     else float(cfg.initial_value)))
        return values, {**variant, "initial": "optimistic" if opt else "value"}


class ArmStats(NamedTuple):
    counts: jax.Array  # (A, C)
    sums: jax.Array  # (A, C)


def _arm_init(theta: Mapping[str, jax.Array], num_actions: int) -> ArmStats:
    c = next(iter(theta.values())).shape[0]
    z = jnp.zeros((num_actions, c), jnp.float32)
    return ArmStats(z, z)


def _arm_add(s: ArmStats, action: jax.Array, reward: jax.Array) -> ArmStats:
    return ArmStats(s.counts.at[action].add(1.0), s.sums.at[action].add(reward))


class EGreedyFamily(LearnerFamily):
    """The epsilon-greedy bandit (:class:`outlearn.teachers.EGreedy`): sample-average arm
    values, uniform with probability epsilon (a schedule), greedy otherwise."""

    name = "egreedy"
    teacher = "egreedy"
    params = _EPS_PARAMS
    variants = {"eps_schedule": ("constant", "linear", "exponential"), "eps_unit": ("step",)}
    bandit_only = True

    def init(self, theta, variant, num_obs, num_actions, first):
        return _arm_init(theta, num_actions)

    def probs(self, theta, variant, state, obs, clock):
        eps = epsilon_schedule(theta, variant["eps_schedule"], clock)
        return greedy(state.sums / jnp.maximum(state.counts, 1.0), eps)

    def update(self, theta, variant, state, obs, action, reward, next_obs, terminated,
               upcoming):
        return _arm_add(state, action, reward)

    def teacher_kwargs(self, values, variant):
        return _eps_kwargs(values, variant)

    def truth(self, teacher_kwargs):
        from outlearn.config import parse_config
        from outlearn.teachers.bandit import EGreedyConfig

        values, variant = _eps_truth(parse_config(EGreedyConfig, dict(teacher_kwargs),
                                                  "teacher 'egreedy'"))
        return values, {**variant, "eps_unit": "step"}


class UCB1Family(LearnerFamily):
    """UCB1 (:class:`outlearn.teachers.UCB1`) with exploration constant ``c``, and a lapse
    rate: the member pulls a uniform arm with probability ``lapse`` (0 is UCB1 itself,
    which is deterministic; a lapse lets a near member explain a surprising pull)."""

    name = "ucb1"
    teacher = "ucb1"
    params = (Param("c", 0.0, 5.0, doc="exploration constant"),
              Param("lapse", 0.0, 1.0, doc="probability of a uniform pull"))
    variants: dict[str, tuple[Any, ...]] = {}
    bandit_only = True

    def init(self, theta, variant, num_obs, num_actions, first):
        return _arm_init(theta, num_actions)

    def probs(self, theta, variant, state, obs, clock):
        a = state.counts.shape[0]
        n = jnp.maximum(jnp.sum(state.counts, axis=0), 1.0)
        safe = jnp.maximum(state.counts, 1.0)
        ucb = state.sums / safe + theta["c"][None] * jnp.sqrt(jnp.log(n)[None] / safe)
        ucb = jnp.where(state.counts == 0, jnp.inf, ucb)
        pick = jax.nn.one_hot(jnp.argmax(ucb, axis=0), a, axis=0, dtype=jnp.float32)
        return (1.0 - theta["lapse"][None]) * pick + theta["lapse"][None] / a

    def update(self, theta, variant, state, obs, action, reward, next_obs, terminated,
               upcoming):
        return _arm_add(state, action, reward)

    def teacher_kwargs(self, values, variant):
        if values["lapse"] > 0:
            raise ConfigError("a UCB1 member with lapse > 0 is not a UCB1 teacher: fix lapse "
                              "at 0 (params.lapse = 0) to run the fitted member")
        return {"c": float(max(values["c"], 0.0))}

    def truth(self, teacher_kwargs):
        from outlearn.config import parse_config
        from outlearn.teachers.bandit import UCB1Config

        cfg = parse_config(UCB1Config, dict(teacher_kwargs), "teacher 'ucb1'")
        return {"c": cfg.c, "lapse": 0.0}, {}


for _fam in (QLearningFamily(), EGreedyFamily(), UCB1Family()):
    FAMILIES.register(_fam.name)(_fam)


def make_learner_family(name: str) -> LearnerFamily:
    """The family registered as ``name`` (a ConfigError naming the known ones otherwise)."""
    fam: LearnerFamily = FAMILIES.get(name)
    return fam
