"""DQN: a Q-network on the flattened observation, a replay buffer, a target network
(one learner, one task; the rollout loop vmaps it over learners).

Network: an MLP, ``input -> hidden -> hidden -> A`` with ReLU. The input is the
flattened frame as float32 (a MinAtar frame: 10x10x4 = 400 bits), or the one-hot of an
index observation (Dark Room, bandits), so the teacher runs on every family. An MLP and
not MinAtar's convolution (16 3x3 filters, then 128 units): the frames are 10x10, small
enough for a dense layer to see all of them, and under ``vmap`` over learners on CPU a
dense layer is one batched matmul where a convolution is a slow grouped kernel; the
PureJaxRL DQN baseline on gymnax MinAtar uses an MLP for the same reason.

State (:class:`DQNState`): the online and target weights, optax's Adam state and a
replay buffer of the last ``buffer_size`` transitions. Every learner of a batch writes
one transition per step, so transition ``t`` goes to slot ``t % buffer_size`` and the
buffer holds ``min(t + 1, buffer_size)`` of them: no pointer is stored. Observations are
kept in the family's dtype (bool frames: a byte a pixel).

``update`` at global step ``t`` (shared by the batch, so the schedule is a real
``lax.cond``): store ``tr``; from ``t + 1 >= learning_starts`` on, every
``train_every`` steps, one Adam step on the Huber loss of ``Q(obs, a)`` against
``r + discount * (1 - terminated) * max_a' Q_target(next_obs, a')`` over ``batch_size``
transitions drawn uniformly from the buffer (a truncated step bootstraps: the episode
was cut, the task did not end); every ``target_every`` steps the target takes the
online weights. The policy is epsilon-greedy on ``Q(obs)`` with greedy ties split
uniformly, epsilon on a linear schedule (:func:`~outlearn.teachers.qlearning.epsilon_at`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from pydantic import Field, model_validator

from outlearn.config import Config, parse_config
from outlearn.core import Transition
from outlearn.envs.base import TaskFamily, has_discrete_obs, obs_dtype, obs_shape
from outlearn.registry import TEACHERS
from outlearn.teachers.qlearning import epsilon_at, greedy_probs


class DQNConfig(Config):
    """DQN settings. Defaults: the MinAtar paper's DQN (Young & Tian 2019: step 2.5e-4
    (RMSProp there, Adam here), batch 32, discount 0.99, a gradient step every step,
    target every 1,000 steps, epsilon 1 -> 0.1) scaled down to the short runs of a CPU
    testbed (a 10,000-step buffer, learning from step 1,000, epsilon decayed over 25,000
    steps)."""

    hidden: int = Field(128, ge=1, description=(
        "units of each of the two hidden layers (MinAtar's DQN has one of 128)"))
    learning_rate: float = Field(2.5e-4, gt=0.0, description=(
        "Adam step size (MinAtar's DQN: 2.5e-4)"))
    discount: float = Field(0.99, ge=0.0, lt=1.0, description="discount of the TD target")
    buffer_size: int = Field(10_000, ge=1, description=(
        "transitions kept per learner (MinAtar: 100,000; 10,000 bool frames is 8 MB a "
        "learner, so batches of learners fit in memory)"))
    batch_size: int = Field(32, ge=1, description="transitions per gradient step (MinAtar: 32)")
    learning_starts: int = Field(1_000, ge=1, description=(
        "steps of experience before the first gradient step (MinAtar: 5,000, for a 20x "
        "larger buffer)"))
    train_every: int = Field(1, ge=1, description=(
        "environment steps per gradient step (MinAtar: 1)"))
    target_every: int = Field(1_000, ge=1, description=(
        "steps between copies of the online weights to the target (MinAtar: 1,000)"))
    eps_start: float = Field(1.0, ge=0.0, le=1.0, description="epsilon at step 0")
    eps_end: float = Field(0.1, ge=0.0, le=1.0, description=(
        "epsilon after eps_decay_steps (MinAtar: 0.1)"))
    eps_decay_steps: int = Field(25_000, ge=1, description=(
        "steps of the linear decay from eps_start to eps_end (MinAtar: 100,000 of 5M)"))
    huber_delta: float = Field(1.0, gt=0.0, description=(
        "the Huber loss is quadratic within this TD error, linear beyond (DQN's error "
        "clipping)"))

    @model_validator(mode="after")
    def _check(self) -> DQNConfig:
        if self.batch_size > self.buffer_size:
            raise ValueError(f"batch_size ({self.batch_size}) must be <= buffer_size "
                             f"({self.buffer_size}): lower batch_size or raise buffer_size")
        return self


class Replay(NamedTuple):
    """The last buffer_size transitions: obs/next_obs (N, *obs_shape), the rest (N,)."""

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_obs: jax.Array
    terminated: jax.Array


class DQNState(NamedTuple):
    online: dict  # w1 (D, H), b1 (H,), w2 (H, H), b2 (H,), w3 (H, A), b3 (A,)
    target: dict
    opt: Any
    buf: Replay


def q_values(net: dict, x: jax.Array) -> jax.Array:
    """Q-values (..., A) of features x (..., D)."""
    h = jax.nn.relu(x @ net["w1"] + net["b1"])
    h = jax.nn.relu(h @ net["w2"] + net["b2"])
    return h @ net["w3"] + net["b3"]


def td_targets(q_next: jax.Array, rewards: jax.Array, terminated: jax.Array,
               discount: float) -> jax.Array:
    """``r + discount * max_a' q_next`` ((B, A) -> (B,)), no bootstrap past a terminal step."""
    return rewards + discount * jnp.where(terminated, 0.0, q_next.max(axis=-1))


class DQN:
    """DQN learner; see the module docstring for the schedule and the loss."""

    name = "dqn"

    def __init__(self, family: TaskFamily, cfg: DQNConfig):
        self.cfg, self.num_actions = cfg, int(family.num_actions)
        self.discrete = has_discrete_obs(family)
        self.num_obs = int(family.num_obs)
        self.obs_shape, self.obs_dtype = obs_shape(family), obs_dtype(family)
        self.in_dim = self.num_obs if self.discrete else math.prod(self.obs_shape)
        self.tx = optax.adam(cfg.learning_rate)

    def features(self, obs: jax.Array) -> jax.Array:
        """float32 (..., D): one-hot of index observations, else the flattened frame."""
        if self.discrete:
            return jax.nn.one_hot(obs, self.num_obs, dtype=jnp.float32)
        lead = obs.shape[: obs.ndim - len(self.obs_shape)]
        return obs.reshape(*lead, self.in_dim).astype(jnp.float32)

    def init_net(self, key: jax.Array) -> dict:
        """He-normal weights, zero biases."""
        d, h, a = self.in_dim, self.cfg.hidden, self.num_actions
        k1, k2, k3 = jax.random.split(key, 3)
        he = jax.nn.initializers.he_normal()
        return {"w1": he(k1, (d, h), jnp.float32), "b1": jnp.zeros((h,), jnp.float32),
                "w2": he(k2, (h, h), jnp.float32), "b2": jnp.zeros((h,), jnp.float32),
                "w3": he(k3, (h, a), jnp.float32), "b3": jnp.zeros((a,), jnp.float32)}

    def init(self, key: jax.Array, params: Any) -> DQNState:
        net = self.init_net(key)
        n = self.cfg.buffer_size
        odt = jnp.int32 if self.discrete else self.obs_dtype
        obs = jnp.zeros((n, *self.obs_shape), odt)
        buf = Replay(obs, jnp.zeros((n,), jnp.int32), jnp.zeros((n,), jnp.float32), obs,
                     jnp.zeros((n,), jnp.bool_))
        return DQNState(net, net, self.tx.init(net), buf)

    def epsilon(self, t: jax.Array) -> jax.Array:
        c = self.cfg
        return epsilon_at(t, c.eps_start, c.eps_end, c.eps_decay_steps, "linear")

    def policy(self, s: DQNState, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32: epsilon-greedy on the online network's Q(obs)."""
        return greedy_probs(q_values(s.online, self.features(obs)), self.epsilon(t))

    def loss(self, net: dict, target: dict, batch: Replay) -> jax.Array:
        """Mean Huber loss of Q(obs, a) against the target network's TD targets."""
        q = q_values(net, self.features(batch.obs))
        q_a = jnp.take_along_axis(q, batch.actions[:, None], axis=1)[:, 0]
        q_next = q_values(target, self.features(batch.next_obs))
        y = jax.lax.stop_gradient(td_targets(q_next, batch.rewards, batch.terminated,
                                             self.cfg.discount))
        return optax.huber_loss(q_a, y, delta=self.cfg.huber_delta).mean()

    def _train(self, key: jax.Array, s: DQNState, t: jax.Array) -> DQNState:
        c = self.cfg
        size = jnp.minimum(t + 1, c.buffer_size)
        idx = jax.random.randint(key, (c.batch_size,), 0, size)
        batch = Replay(*(x[idx] for x in s.buf))
        grads = jax.grad(self.loss)(s.online, s.target, batch)
        upd, opt = self.tx.update(grads, s.opt, s.online)
        return s._replace(online=optax.apply_updates(s.online, upd), opt=opt)

    def update(self, key: jax.Array, s: DQNState, tr: Transition, t: jax.Array) -> DQNState:
        """Store ``tr`` in slot t % buffer_size; train and copy the target on schedule."""
        c = self.cfg
        i = t % c.buffer_size
        row = (tr.obs, tr.action, tr.reward, tr.next_obs, tr.terminated)
        s = s._replace(buf=Replay(*(b.at[i].set(x.astype(b.dtype))
                                    for b, x in zip(s.buf, row, strict=True))))
        train = (t + 1 >= c.learning_starts) & ((t + 1) % c.train_every == 0)
        s = jax.lax.cond(train, lambda s: self._train(key, s, t), lambda s: s, s)
        sync = (t + 1) % c.target_every == 0
        return jax.lax.cond(sync, lambda s: s._replace(target=s.online), lambda s: s, s)


@TEACHERS.register("dqn", config=DQNConfig)
def make_dqn(family: TaskFamily, **kwargs: Any) -> DQN:
    """A DQN learner for ``family``; kwargs are :class:`DQNConfig` fields."""
    return DQN(family, parse_config(DQNConfig, kwargs, "teacher 'dqn'"))
