"""The one rollout loop: any learner on a batch of tasks, step by step.

Two paths, same trajectories for the same keys (a test holds them together):

* **fused** (:func:`rollout_scan`): a JAX learner and the environment inside one
  ``lax.scan``, jitted -- collection of teacher histories.
* **step** (:class:`StepEnv` + :func:`rollout_steps`): one batched step at a time from
  Python, so the learner can be anything (a torch student, a baseline) -- evaluation.

Randomness: learner ``b`` at global step ``t`` uses ``fold_in(keys[b], t)`` split into
(act, env, update) keys. Initial reset uses ``fold_in(keys[b], -1)``-style split of the
root key (see :func:`init_keys`).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from outlearn.envs.base import TaskFamily
from outlearn.teachers.base import Learner, Transition


class Trajectory(NamedTuple):
    """Arrays of a batch of learners, each (B, S) unless stated."""

    obs: np.ndarray  # int32, the observation each action was taken in
    actions: np.ndarray  # int32
    rewards: np.ndarray  # float32
    terminated: np.ndarray  # bool
    truncated: np.ndarray  # bool
    probs: np.ndarray  # float32 (B, S, A): the learner's action probabilities
    optimal_actions: np.ndarray  # int32: an optimal action in that state (oracle label)
    expected_rewards: np.ndarray  # float32: expected reward of the action taken


def step_keys(keys: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(act, env, update) keys for every learner at step ``t``; keys: (B,) key array.

    ``k = fold_in(key_b, t)`` is the act key; env and update keys are ``fold_in(k, 1)``
    and ``fold_in(k, 2)``, which XLA drops when a learner or env does not use them.
    """
    k = jax.vmap(lambda k: jax.random.fold_in(k, t))(keys)
    fold = jax.vmap(jax.random.fold_in, in_axes=(0, None))
    return k, fold(k, 1), fold(k, 2)


def sample_actions(key: jax.Array, probs: jax.Array) -> jax.Array:
    """One action per row of ``probs`` (B, A) by inverse CDF, one uniform per learner.

    An action with probability 0 is never drawn; rows need not be normalised.
    """
    u = jax.vmap(jax.random.uniform)(key)  # (B,)
    cdf = jnp.cumsum(probs, axis=-1)
    a = jnp.sum(cdf <= (u * cdf[:, -1])[:, None], axis=-1)
    return jnp.minimum(a, probs.shape[-1] - 1).astype(jnp.int32)


def env_step(family: TaskFamily, env_keys, state, actions, params):
    """Step every env, auto-reset finished episodes.

    Returns (agent_obs, state, next_obs, reward, terminated, truncated, expected_reward)
    where next_obs is the observation that ended the step (before reset) and agent_obs
    the one the learner sees next.
    """
    fam = family

    def one(key, st, a, p):
        k_step, k_reset = jax.random.split(key)
        exp_r = fam.expected_reward(st, a, p)
        out = fam.step(k_step, st, a, p)
        done = out.terminated | out.truncated
        r_obs, r_state = fam.reset(k_reset, p)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), r_state, out.state)
        agent_obs = jnp.where(done, r_obs, out.obs)
        return agent_obs, new_state, out.obs, out.reward, out.terminated, out.truncated, exp_r

    return jax.vmap(one)(env_keys, state, actions, params)


class StepEnv:
    """A batch of environments (one per learner), stepped from Python or inside scan.

    ``params`` is a task pytree with leading axis B.
    """

    def __init__(self, family: TaskFamily, params: Any):
        self.family = family
        self.params = params
        self._reset = jax.jit(jax.vmap(family.reset))
        self._step = jax.jit(partial(env_step, family))

    def reset(self, keys: jax.Array) -> tuple[jax.Array, Any]:
        rkeys = jax.vmap(lambda k: jax.random.fold_in(k, 2**31 - 1))(keys)
        return self._reset(rkeys, self.params)

    def step(self, env_keys, state, actions):
        return self._step(env_keys, state, actions, self.params)

    def optimal_actions(self, obs) -> jax.Array:
        return jax.vmap(self.family.optimal_action)(obs, self.params)


def init_learners(learner: Learner, keys: jax.Array, params: Any) -> Any:
    ikeys = jax.vmap(lambda k: jax.random.fold_in(k, 2**31 - 2))(keys)
    return jax.vmap(learner.init)(ikeys, params)


def _scan_body(family: TaskFamily, learner: Learner, keys, params):
    def body(carry, t):
        state, obs, lstate = carry
        k_act, k_env, k_upd = step_keys(keys, t)
        probs = jax.vmap(learner.policy, in_axes=(0, 0, None))(lstate, obs, t)
        actions = sample_actions(k_act, probs)
        opt_a = jax.vmap(family.optimal_action)(obs, params)
        agent_obs, state, next_obs, rew, term, trunc, exp_r = env_step(
            family, k_env, state, actions, params
        )
        tr = Transition(obs, actions, rew, next_obs, term, trunc)
        lstate = jax.vmap(learner.update, in_axes=(0, 0, 0, None))(k_upd, lstate, tr, t)
        out = (obs, actions, rew, term, trunc, probs, opt_a, exp_r)
        return (state, agent_obs, lstate), out

    return body


_COMPILED: dict[tuple[int, int], tuple[Any, Any, Callable]] = {}


def _compiled_scan(family: TaskFamily, learner: Learner) -> Callable:
    """One jitted scan per (family, learner) pair, taking keys and params as arguments,
    so repeated collections with new seeds or tasks reuse the compiled program."""
    k = (id(family), id(learner))
    if k not in _COMPILED:
        if len(_COMPILED) >= 64:
            _COMPILED.pop(next(iter(_COMPILED)))

        @jax.jit
        def run(carry, ts, keys, params):
            return jax.lax.scan(_scan_body(family, learner, keys, params), carry, ts)

        _COMPILED[k] = (family, learner, run)  # holding the objects keeps the ids valid
    return _COMPILED[k][2]


def rollout_scan(
    family: TaskFamily, learner: Learner, keys: jax.Array, params: Any, num_steps: int,
    chunk: int | None = None, on_chunk: Callable[[int], None] | None = None,
) -> tuple[Trajectory, Any]:
    """Fused path: run ``learner`` for ``num_steps`` on each task. keys: (B,) key array.

    Runs in jitted chunks of ``chunk`` steps (default: all at once) so that a caller
    can show progress (``on_chunk(steps_done)``); the program is compiled once per
    (family, learner, chunk length). Returns the trajectory (numpy, (B, S)) and the
    final learner states.
    """
    env = StepEnv(family, params)
    obs, state = env.reset(keys)
    lstate = init_learners(learner, keys, params)
    chunk = num_steps if chunk is None else max(1, min(chunk, num_steps))
    run = _compiled_scan(family, learner)
    carry = (state, obs, lstate)
    parts = []
    for start in range(0, num_steps, chunk):
        ts = jnp.arange(start, min(start + chunk, num_steps), dtype=jnp.int32)
        carry, out = run(carry, ts, keys, params)
        parts.append(jax.tree.map(np.asarray, out))
        if on_chunk is not None:
            on_chunk(int(ts[-1]) + 1)
    cat = [np.concatenate([p[i] for p in parts], axis=0) for i in range(8)]
    # scan stacks time first: (S, B, ...) -> (B, S, ...)
    traj = Trajectory(*[np.swapaxes(a, 0, 1) for a in cat])
    return traj, carry[2]


def rollout_steps(
    family: TaskFamily,
    policy: Callable[[jax.Array, int], jax.Array],
    observe: Callable[[Transition, jax.Array, int], None],
    keys: jax.Array,
    params: Any,
    num_steps: int,
    on_step: Callable[[int], None] | None = None,
) -> Trajectory:
    """Step path: drive any learner one batched step at a time.

    ``policy(obs (B,), t) -> probs (B, A)`` and ``observe(transition, update_keys, t)``
    are the learner's two halves; a torch student implements them with its context
    window, a JAX learner with :class:`JaxLearnerAdapter`.
    """
    env = StepEnv(family, params)
    obs, state = env.reset(keys)
    opt_fn = jax.jit(env.optimal_actions)
    rec: list[tuple] = []
    for t in range(num_steps):
        k_act, k_env, k_upd = step_keys(keys, jnp.int32(t))
        probs = jnp.asarray(policy(obs, t), dtype=jnp.float32)
        actions = sample_actions(k_act, probs)
        opt_a = opt_fn(obs)
        agent_obs, state, next_obs, rew, term, trunc, exp_r = env.step(k_env, state, actions)
        observe(Transition(obs, actions, rew, next_obs, term, trunc), k_upd, t)
        rec.append((obs, actions, rew, term, trunc, probs, opt_a, exp_r))
        obs = agent_obs
        if on_step is not None:
            on_step(t + 1)
    cols = [np.stack([np.asarray(r[i]) for r in rec], axis=1) for i in range(8)]
    return Trajectory(*cols)


class JaxLearnerAdapter:
    """Wrap a JAX :class:`Learner` into the (policy, observe) pair of the step path."""

    def __init__(self, learner: Learner, keys: jax.Array, params: Any):
        self.learner = learner
        self.lstate = init_learners(learner, keys, params)
        self._policy = jax.jit(jax.vmap(learner.policy, in_axes=(0, 0, None)))
        self._update = jax.jit(jax.vmap(learner.update, in_axes=(0, 0, 0, None)))

    def policy(self, obs: jax.Array, t: int) -> jax.Array:
        return self._policy(self.lstate, obs, jnp.int32(t))

    def observe(self, tr: Transition, keys: jax.Array, t: int) -> None:
        self.lstate = self._update(keys, self.lstate, tr, jnp.int32(t))
