"""The one rollout loop: any learner on a batch of tasks, step by step.

Two paths, same trajectories for the same keys (a test holds them together):

* **fused** (:func:`rollout_scan`): a JAX learner and the environment inside one
  ``lax.scan``, jitted -- collection of teacher histories.
* **step** (:class:`StepEnv` + :func:`rollout_steps`): one batched step at a time from
  Python, so the learner can be anything (a torch student, a baseline) -- evaluation.

Randomness (:mod:`outlearn.rng`): learner ``b`` at global step ``t`` uses
``k = fold_in(keys[b], t)``: its action uniform is ``uniform(k)``, its env and update keys
``fold_in(k, 1)`` and ``fold_in(k, 2)`` (:func:`~outlearn.rng.step_keys`); the initial
reset and learner init fold fixed data into ``keys[b]``. The fused path draws a chunk's
action uniforms at once (:func:`~outlearn.rng.action_uniforms`): the same numbers.
Learners implement :class:`outlearn.core.Learner` (fused) or
:class:`outlearn.core.StepLearner` (step path).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from outlearn.core import Learner, Trajectory, Transition
from outlearn.envs.base import TaskFamily
from outlearn.rng import action_uniforms, init_keys, reset_keys, split2, step_keys, uniforms


def sample_actions(key: jax.Array, probs: jax.Array) -> jax.Array:
    """One action per row of ``probs`` (B, A) by inverse CDF, one uniform per learner
    (``uniforms(key)``). An action with probability 0 is never drawn; rows need not be
    normalised."""
    return sample_with_uniforms(uniforms(key), probs)


def sample_with_uniforms(u: jax.Array, probs: jax.Array) -> jax.Array:
    """Inverse-CDF actions int32 (B,) from uniforms ``u`` (B,) and ``probs`` (B, A)."""
    # column by column: XLA CPU runs a reduction over a short last axis as its own slow
    # kernel, while elementwise ops on (B,) columns fuse into one loop
    cdf = list(itertools.accumulate(probs[:, i] for i in range(probs.shape[-1])))
    thr = u * cdf[-1]
    a = sum((c <= thr).astype(jnp.int32) for c in cdf)
    return jnp.minimum(a, probs.shape[-1] - 1).astype(jnp.int32)


def env_step(family: TaskFamily, env_keys, state, actions, params):
    """Step every env, auto-reset finished episodes.

    Returns (agent_obs, state, next_obs, reward, terminated, truncated, expected_reward)
    where next_obs is the observation that ended the step (before reset) and agent_obs
    the one the learner sees next.
    """
    fam = family

    def one(k_step, k_reset, st, a, p):
        exp_r = fam.expected_reward(st, a, p)
        out = fam.step(k_step, st, a, p)
        done = out.terminated | out.truncated
        r_obs, r_state = fam.reset(k_reset, p)
        new_state = jax.tree.map(lambda r, s: jnp.where(done, r, s), r_state, out.state)
        agent_obs = jnp.where(done, r_obs, out.obs)
        return agent_obs, new_state, out.obs, out.reward, out.terminated, out.truncated, exp_r

    return jax.vmap(one)(*split2(env_keys), state, actions, params)


def _reset(family: TaskFamily, keys: jax.Array, params: Any) -> tuple[jax.Array, Any]:
    """First (obs (B,), env state) of every learner's env, from its root key (B,)."""
    return jax.vmap(family.reset)(reset_keys(keys), params)


class StepEnv:
    """A batch of environments (one per learner), stepped from Python or inside scan.

    ``params`` is a task pytree with leading axis B.
    """

    def __init__(self, family: TaskFamily, params: Any):
        self.family = family
        self.params = params
        self._reset = _cached("reset", family, None, lambda: partial(_reset, family))
        self._step = _cached("step", family, None, lambda: partial(env_step, family))

    def reset(self, keys: jax.Array) -> tuple[jax.Array, Any]:
        return self._reset(keys, self.params)

    def step(self, env_keys, state, actions):
        return self._step(env_keys, state, actions, self.params)

    def optimal_actions(self, obs) -> jax.Array:
        return jax.vmap(self.family.optimal_action)(obs, self.params)


def init_learners(learner: Learner, keys: jax.Array, params: Any) -> Any:
    return jax.vmap(learner.init)(init_keys(keys), params)


def _scan_body(family: TaskFamily, learner: Learner, keys, params):
    """Step ``t`` with the action already drawn (carried), then draw step ``t + 1``'s.

    Carrying the action makes XLA compute it once: computed inside the step, it fuses a
    copy of the policy and sampling into every consumer of the action (about eight).
    """
    policy = jax.vmap(learner.policy, in_axes=(0, 0, None))

    def body(carry, x):
        (state, obs, lstate, probs, actions), (t, u_next) = carry, x
        _, k_env, k_upd = step_keys(keys, t)
        agent_obs, state, next_obs, rew, term, trunc, exp_r = env_step(
            family, k_env, state, actions, params
        )
        tr = Transition(obs, actions, rew, next_obs, term, trunc)
        lstate = jax.vmap(learner.update, in_axes=(0, 0, 0, None))(k_upd, lstate, tr, t)
        # the observation a step ended in: kept for index observations (a Q-learner's
        # replay needs it where an episode ended); a frame family would double its frames
        ended = next_obs if next_obs.ndim == 1 else jnp.zeros((0,), jnp.int32)
        out = (obs, actions, rew, term, trunc, probs, exp_r, ended)
        probs_next = policy(lstate, agent_obs, t + 1)
        actions_next = sample_with_uniforms(u_next, probs_next)
        return (state, agent_obs, lstate, probs_next, actions_next), out

    return body


_COMPILED: dict[tuple[str, int, int], tuple[Any, Any, Callable]] = {}


def _cached(what: str, family: TaskFamily, learner: Any, build: Callable) -> Callable:
    """One jitted function per (what, family, learner), so repeated collections with new
    seeds or tasks reuse the compiled program; holding the objects keeps the ids valid."""
    k = (what, id(family), id(learner))
    if k not in _COMPILED:
        if len(_COMPILED) >= 64:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[k] = (family, learner, jax.jit(build()))
    return _COMPILED[k][2]


def _compiled_scan(family: TaskFamily, learner: Learner) -> Callable:
    """``run((state, obs, lstate), ts, keys, params)``: the fused steps ``ts`` (S,), jitted.
    The returned carry's learner state is the third element."""

    def run(carry, ts, keys, params):
        state, obs, lstate = carry
        # the action uniforms of the chunk (and of the step after it) in one vectorised
        # kernel, rather than a hash in every step
        u = action_uniforms(keys, jnp.append(ts, ts[-1] + 1))
        probs = jax.vmap(learner.policy, in_axes=(0, 0, None))(lstate, obs, ts[0])
        carry = (state, obs, lstate, probs, sample_with_uniforms(u[0], probs))
        body = _scan_body(family, learner, keys, params)
        (state, obs, lstate, _, _), out = jax.lax.scan(body, carry, (ts, u[1:]))
        return (state, obs, lstate), out

    return _cached("scan", family, learner, lambda: run)


def rollout_scan(
    family: TaskFamily, learner: Learner, keys: jax.Array, params: Any, num_steps: int,
    chunk: int | None = None, on_chunk: Callable[[int], None] | None = None,
    start: tuple[Any, int] | None = None,
) -> tuple[Trajectory, Any]:
    """Fused path: run ``learner`` for ``num_steps`` on each task. keys: (B,) key array.

    Runs in jitted chunks of ``chunk`` steps (default: all at once) so that a caller
    can show progress (``on_chunk(steps_done)``); the program is compiled once per
    (family, learner, chunk length). Returns the trajectory (numpy, (B, S)) and the
    final learner states. ``start``: (learner states, global step t0) to carry on from
    instead of ``init`` at step 0 (a learner replayed along a history to its cut), with a
    fresh episode; steps are then ``t0 .. t0 + num_steps - 1`` (``on_chunk`` counts from 0).
    """
    chunk = num_steps if chunk is None else max(1, min(chunk, num_steps))
    run = _compiled_scan(family, learner)
    obs, state = StepEnv(family, params).reset(keys)
    lstate, t0 = (init_learners(learner, keys, params), 0) if start is None else start
    carry = (state, obs, lstate)
    parts = []
    for begin in range(0, num_steps, chunk):
        ts = jnp.arange(t0 + begin, t0 + min(begin + chunk, num_steps), dtype=jnp.int32)
        carry, out = run(carry, ts, keys, params)
        parts.append(jax.tree.map(np.asarray, out))
        if on_chunk is not None:
            on_chunk(int(ts[-1]) + 1 - t0)
    cat = [parts[0][i] if len(parts) == 1 else np.concatenate([p[i] for p in parts], axis=0)
           for i in range(8)]
    # scan stacks time first: (S, B, ...) -> (B, S, ...)
    cols = [np.swapaxes(a, 0, 1) for a in cat]
    # the oracle's labels depend on the observation only: one vectorised pass after the
    # scan is cheaper than a per-step output inside it
    opt = _cached("labels", family, None, lambda: jax.vmap(
        jax.vmap(family.optimal_action, in_axes=(0, None))))(cols[0], params)
    o, a, r, term, trunc, p, expected, nxt = cols
    traj = Trajectory(o, a, r, term, trunc, p, np.asarray(opt), expected,
                      nxt if nxt.size else None)
    return traj, carry[2]


def _world_step(family: TaskFamily):
    """The world's half of one step-path step, fused into one jitted call: draw the
    actions from ``probs`` (B, A), record the oracle's labels, step and auto-reset."""

    def world(keys, t, probs, state, obs, params):
        k_act, k_env, k_upd = step_keys(keys, t)
        actions = sample_actions(k_act, probs)
        opt_a = jax.vmap(family.optimal_action)(obs, params)
        return actions, opt_a, k_upd, env_step(family, k_env, state, actions, params)

    return _cached("world", family, None, lambda: world)


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
    obs, state = StepEnv(family, params).reset(keys)
    world = _world_step(family)
    rec: list[tuple] = []
    for t in range(num_steps):
        probs = jnp.asarray(policy(obs, t), dtype=jnp.float32)
        actions, opt_a, k_upd, out = world(keys, jnp.int32(t), probs, state, obs, params)
        agent_obs, state, next_obs, rew, term, trunc, exp_r = out
        observe(Transition(obs, actions, rew, next_obs, term, trunc), k_upd, t)
        rec.append((obs, actions, rew, term, trunc, probs, opt_a, exp_r, next_obs))
        obs = agent_obs
        if on_step is not None:
            on_step(t + 1)
    cols = [np.stack([np.asarray(r[i]) for r in rec], axis=1) for i in range(9)]
    # next_obs of frames is not kept (see the fused path)
    return Trajectory._make([*cols[:8], cols[8] if cols[8].ndim == 2 else None])


class JaxLearnerAdapter:
    """Wrap a JAX :class:`Learner` into a :class:`~outlearn.core.StepLearner` (the step
    path's ``policy``/``observe`` pair)."""

    def __init__(self, learner: Learner, keys: jax.Array, params: Any):
        self.learner = learner
        self.lstate = init_learners(learner, keys, params)
        self._policy = jax.jit(jax.vmap(learner.policy, in_axes=(0, 0, None)))
        self._update = jax.jit(jax.vmap(learner.update, in_axes=(0, 0, 0, None)))

    def policy(self, obs: jax.Array, t: int) -> jax.Array:
        return self._policy(self.lstate, obs, jnp.int32(t))

    def observe(self, tr: Transition, keys: jax.Array, t: int) -> None:
        self.lstate = self._update(keys, self.lstate, tr, jnp.int32(t))
