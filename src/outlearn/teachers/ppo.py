"""PPO-clip with GAE: a small MLP on one-hot observations (one learner, one task).

The state holds the network weights, the optax Adam state and a rollout buffer of the
last ``n_steps`` transitions. ``update`` writes transition ``t`` into slot ``t % n_steps``
and, when the buffer is full (``(t + 1) % n_steps == 0``, a real ``lax.cond`` since
``t`` is shared by every learner), runs ``epochs`` passes of ``num_minibatches``
minibatches of the clipped PPO loss. The weights do not change while the buffer fills,
so the old log-probabilities and values are recomputed from them at training time.

Network: actor and critic each have one tanh hidden layer of ``hidden`` units on the
one-hot observation (a row lookup), then a linear head: logits (A,), value [].
GAE: ``delta_i = r_i + gamma * (1 - terminated_i) * V(next_obs_i) - V(obs_i)`` (a
truncated step bootstraps from the observation that ended it) and the advantage chain
is cut at every episode end (terminated or truncated).
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from pydantic import Field, model_validator

from outlearn.config import Config, parse_config
from outlearn.core import Transition
from outlearn.envs.base import TaskFamily, require_discrete_obs
from outlearn.registry import TEACHERS


class PPOConfig(Config):
    """PPO settings. Defaults learn 9x9 Dark Room (see tests/test_teachers.py)."""

    hidden: int = Field(32, ge=1, description="units of the actor's and of the critic's "
                        "tanh hidden layer (each has its own)")
    learning_rate: float = Field(0.01, gt=0.0, description="Adam's learning rate")
    n_steps: int = Field(200, ge=2, description="transitions per rollout buffer: the learner "
                         "trains every n_steps steps (multiple of num_minibatches)")
    epochs: int = Field(4, ge=1, description="passes over the buffer per training round")
    num_minibatches: int = Field(4, ge=1, description="minibatches per pass (each "
                                 "n_steps / num_minibatches transitions, shuffled)")
    clip: float = Field(0.2, gt=0.0, description="PPO's ratio clip: the probability ratio "
                        "is clipped to [1 - clip, 1 + clip]")
    discount: float = Field(0.95, ge=0.0, le=1.0, description="discount of returns and of "
                            "the TD errors in GAE")
    gae_lambda: float = Field(0.9, ge=0.0, le=1.0, description="GAE's lambda (0: one-step "
                              "TD advantages, 1: Monte Carlo)")
    ent_coef: float = Field(0.01, ge=0.0, description="weight of the entropy bonus in the "
                            "loss")
    vf_coef: float = Field(0.5, ge=0.0, description="weight of the critic's squared error "
                           "in the loss")
    max_grad_norm: float = Field(1.0, gt=0.0, description="gradients are clipped to this "
                                 "global norm before Adam")

    @model_validator(mode="after")
    def _check(self) -> PPOConfig:
        if self.n_steps % self.num_minibatches:
            raise ValueError(
                f"n_steps ({self.n_steps}) must be a multiple of num_minibatches "
                f"({self.num_minibatches}): change one of them"
            )
        return self


class Buffer(NamedTuple):
    """The last n_steps transitions: int32/float32/bool arrays of shape (n,)."""

    obs: jax.Array
    actions: jax.Array
    rewards: jax.Array
    next_obs: jax.Array
    terminated: jax.Array
    truncated: jax.Array


class PPOState(NamedTuple):
    net: dict  # w1 (O, 2H), b1 (2H,), wp (H, A), bp (A,), wv (H,), bv []
    opt: Any
    buf: Buffer


def forward(net: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Logits (..., A) and value (...) for int observations of any shape (...)."""
    h = jnp.tanh(net["w1"][obs] + net["b1"])
    half = net["wp"].shape[0]
    logits = h[..., :half] @ net["wp"] + net["bp"]
    value = h[..., half:] @ net["wv"] + net["bv"]
    return logits, value


def gae(rew, val, next_val, term, done, discount: float, lam: float):
    """Advantages (n,) by GAE over a buffer; all inputs (n,)."""
    delta = rew + discount * jnp.where(term, 0.0, next_val) - val

    def back(carry, x):
        d, dn = x
        adv = d + discount * lam * jnp.where(dn, 0.0, carry)
        return adv, adv

    _, adv = jax.lax.scan(back, jnp.float32(0.0), (delta, done), reverse=True)
    return adv


class PPO:
    """PPO-clip learner; see the module docstring for the schedule and the loss."""

    name = "ppo"

    def __init__(self, num_obs: int, num_actions: int, cfg: PPOConfig):
        self.num_obs, self.num_actions, self.cfg = num_obs, num_actions, cfg
        self.tx = optax.chain(
            optax.clip_by_global_norm(cfg.max_grad_norm), optax.adam(cfg.learning_rate)
        )

    def init(self, key: jax.Array, params: Any) -> PPOState:
        h, o, a, n = self.cfg.hidden, self.num_obs, self.num_actions, self.cfg.n_steps
        k1, k2, k3 = jax.random.split(key, 3)
        net = {
            "w1": jax.random.normal(k1, (o, 2 * h), jnp.float32),
            "b1": jnp.zeros((2 * h,), jnp.float32),
            "wp": 0.01 * jax.random.normal(k2, (h, a), jnp.float32) / jnp.sqrt(h),
            "bp": jnp.zeros((a,), jnp.float32),
            "wv": jax.random.normal(k3, (h,), jnp.float32) / jnp.sqrt(h),
            "bv": jnp.zeros((), jnp.float32),
        }
        zi, zf, zb = (jnp.zeros((n,), d) for d in (jnp.int32, jnp.float32, jnp.bool_))
        return PPOState(net, self.tx.init(net), Buffer(zi, zi, zf, zi, zb, zb))

    def policy(self, s: PPOState, obs: jax.Array, t: jax.Array) -> jax.Array:
        """(A,) float32 softmax of the actor's logits."""
        return jax.nn.softmax(forward(s.net, obs)[0])

    def update(self, key: jax.Array, s: PPOState, tr: Transition, t: jax.Array) -> PPOState:
        """Store ``tr`` in slot t % n_steps; train when the buffer is full."""
        i = t % self.cfg.n_steps
        buf = Buffer(*(b.at[i].set(x) for b, x in zip(s.buf, tr, strict=True)))
        s = s._replace(buf=buf)
        full = (t + 1) % self.cfg.n_steps == 0
        return jax.lax.cond(full, lambda s: self._train(key, s), lambda s: s, s)

    def _loss(self, net, obs, act, old_logp, adv, ret):
        c = self.cfg
        logits, value = forward(net, obs)
        logp_all = jax.nn.log_softmax(logits)
        logp = jnp.take_along_axis(logp_all, act[:, None], axis=1)[:, 0]
        adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        ratio = jnp.exp(logp - old_logp)
        pg = -jnp.minimum(ratio * adv, jnp.clip(ratio, 1 - c.clip, 1 + c.clip) * adv).mean()
        ent = -(jnp.exp(logp_all) * logp_all).sum(-1).mean()
        return pg + c.vf_coef * ((value - ret) ** 2).mean() - c.ent_coef * ent

    def _train(self, key: jax.Array, s: PPOState) -> PPOState:
        c, b = self.cfg, s.buf
        logits, val = forward(s.net, b.obs)
        old_logp = jnp.take_along_axis(jax.nn.log_softmax(logits), b.actions[:, None], 1)[:, 0]
        next_val = forward(s.net, b.next_obs)[1]
        adv = gae(b.rewards, val, next_val, b.terminated, b.terminated | b.truncated,
                  c.discount, c.gae_lambda)
        data = (b.obs, b.actions, old_logp, adv, adv + val)
        mb = c.n_steps // c.num_minibatches

        def minibatch(carry, idx):
            net, opt = carry
            grads = jax.grad(self._loss)(net, *(x[idx] for x in data))
            upd, opt = self.tx.update(grads, opt, net)
            return (optax.apply_updates(net, upd), opt), None

        def epoch(carry, k):
            idx = jax.random.permutation(k, c.n_steps).reshape(c.num_minibatches, mb)
            return jax.lax.scan(minibatch, carry, idx)[0], None

        keys = jax.random.split(key, c.epochs)
        (net, opt), _ = jax.lax.scan(epoch, (s.net, s.opt), keys)
        return PPOState(net, opt, s.buf)


@TEACHERS.register("ppo", config=PPOConfig)
def make_ppo(family: TaskFamily, **kwargs: Any) -> PPO:
    """A PPO learner for ``family``; kwargs are :class:`PPOConfig` fields."""
    require_discrete_obs(family, "teacher 'ppo'")
    return PPO(family.num_obs, family.num_actions, parse_config(PPOConfig, kwargs, "teacher 'ppo'"))
