"""A trained student as a learner in the step rollout loop (:func:`outlearn.rollout.rollout_steps`).

Its weights are frozen: it learns only through its context, a sliding window of its own
last ``context_len`` steps per environment, for all environments as one batch.

* AD with relative positions (the default): a per-layer key/value cache
  (:meth:`~outlearn.students.ad.ADTransformer.step`); each step computes one new token,
  which sees the last ``context_len`` steps at every layer, exactly as
  :meth:`~outlearn.students.ad.ADTransformer.forward_stream` over the whole rollout would.
* ``cache=False``, AD with learned positions, GRU: the window is kept in ring buffers and
  recomputed in full every step. The window holds the step tokens (obs, previous action,
  previous reward, new-episode flag) of the last ``context_len`` steps, the current one
  included, exactly as :func:`outlearn.students.tokens.step_inputs` builds them from a
  history.
* Frames (a model with ``obs_shape``, env family "gymnax"): observations come as arrays
  (B, *obs_shape) and enter the same tokens; the ring buffers hold them as float32.
* DPT: the context is the set of the student's own most recent ``context_len``
  transitions (obs, action, reward, next_obs; next_obs is "unknown" = ``num_obs`` where
  the episode ended, as in training) and the query is the current observation.
"""

from __future__ import annotations

from typing import Any, Protocol, cast

import numpy as np
import torch
from torch import nn

from outlearn.core import Transition
from outlearn.errors import ConfigError
from outlearn.students.tokens import describe_obs


def check_obs(want: tuple[int, ...], given: tuple[int, ...], source: str,
              who: str = "the student") -> None:
    """Refuse observations of shape ``given`` (``()``: indices) from ``source`` (e.g. "env
    'gymnax'") for a student built for ``want`` (frames for indices, or the reverse)."""
    if tuple(given) != tuple(want):
        raise ConfigError(
            f"{who} was built for {describe_obs(want)}, but {source} gives "
            f"{describe_obs(given)}: evaluate it on the env family (and settings) its "
            f"history came from, or train a student on a history of this env (a student "
            f"trained on frames reads frames)")


class InContextModel(Protocol):
    """What :class:`StudentLearner` reads off a student model: every kind in
    ``outlearn.students`` sets these (a model with ``supports_cache`` also has
    ``init_cache`` and ``step``)."""

    context_len: int
    num_actions: int
    num_obs: int
    inputs: str

    def init_cache(self, batch: int, context_len: int) -> Any: ...

    def step(self, cache: Any, *inputs: torch.Tensor | None) -> torch.Tensor: ...


def check_family(model: nn.Module, family: Any) -> None:
    """Refuse to run ``model`` on a task family whose observations it cannot read, or of
    other observation/action counts."""
    # the family's obs_shape attribute (envs.base.obs_shape), read here so that students
    # import no JAX
    check_obs(tuple(getattr(model, "obs_shape", ())), tuple(getattr(family, "obs_shape", ())),
              f"env {getattr(family, 'name', '?')!r}")
    have = (family.num_obs, family.num_actions)
    want = (model.num_obs, model.num_actions)
    if have != want:
        raise ConfigError(
            f"the student was trained with (num_obs, num_actions)={want} but env "
            f"{getattr(family, 'name', '?')!r} has {have}: evaluate it on the env family "
            "(and settings) its history came from"
        )


class _Ring:
    """Per-env ring buffers of named fields, shape (B, C, *shape); ``ordered()`` oldest
    first. ``fields``: name -> dtype, or (dtype, shape) for a field of arrays (frames)."""

    def __init__(self, num_envs: int, cap: int, fields: dict[str, Any]):
        self.cap, self.n, self.ptr = cap, 0, 0
        self.buf = {k: np.zeros((num_envs, cap, *f[1]), f[0]) if isinstance(f, tuple)
                    else np.zeros((num_envs, cap), f) for k, f in fields.items()}

    def push(self, **cols: np.ndarray) -> None:
        for k, v in cols.items():
            self.buf[k][:, self.ptr] = v
        self.ptr = (self.ptr + 1) % self.cap
        self.n = min(self.n + 1, self.cap)

    def ordered(self, last: int) -> dict[str, np.ndarray]:
        """The ``last`` most recent entries per env (oldest first), (B, min(last, n))."""
        k = min(last, self.n)
        idx = (self.ptr - k + np.arange(k)) % self.cap
        return {name: b[:, idx] for name, b in self.buf.items()}


class StudentLearner:
    """``policy(obs (B,), t) -> probs (B, A)`` and ``observe(transition, keys, t)``
    (frames: ``obs`` (B, *obs_shape); observations the model was not built for raise
    :class:`~outlearn.errors.ConfigError`).

    ``mode``: "sample" returns the model's softmax; "greedy" a one-hot of its argmax. A
    model whose outputs are not logits (adq's action values) says how it acts with its own
    ``action_probs(outputs, mode)`` (adq: "greedy" the argmax, "sample" epsilon-greedy).
    ``seed`` seeds :meth:`act` (sampling outside the rollout loop, which samples itself).
    ``cache``: use the model's key/value cache where it has one (``supports_cache``).
    :meth:`policy` advances the context by the step it is called for; a second call for
    the same ``t`` returns the same probabilities.
    """

    def __init__(self, model: nn.Module, num_envs: int, context_len: int,
                 mode: str = "sample", seed: int = 0, cache: bool = True):
        if mode not in ("sample", "greedy"):
            raise ValueError(f"mode={mode!r}: use 'sample' or 'greedy'")
        spec = self.spec = cast(InContextModel, model)
        if context_len > spec.context_len:
            raise ValueError(
                f"context_len={context_len} exceeds the model's context_len="
                f"{spec.context_len}: use at most that many steps")
        self.model = model.eval().requires_grad_(False)
        self.B, self.C, self.mode = num_envs, context_len, mode
        self.A = spec.num_actions
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self.set = spec.inputs == "set"
        self.kv = spec.init_cache(num_envs, context_len) if (
            cache and getattr(model, "supports_cache", False)) else None
        self._last: tuple[int, np.ndarray] | None = None
        self.obs_shape = tuple(getattr(model, "obs_shape", ()))
        self.prev_obs = (np.full(num_envs, spec.num_obs, np.int64)  # "none"
                         if self.kv is not None and not self.obs_shape else None)
        f: dict[str, Any]
        if self.set:
            f = {"obs": np.int64, "action": np.int64, "reward": np.float32, "next_obs": np.int64}
            self.ring = _Ring(num_envs, context_len, f)
        else:
            f = {"obs": (np.float32, self.obs_shape) if self.obs_shape else np.int64,
                 "prev_action": np.int64, "prev_reward": np.float32, "new_episode": bool}
            self.ring = _Ring(num_envs, max(1, context_len - 1), f)
            self.prev_action = np.full(num_envs, -1, np.int64)  # "none" before the 1st step
            self.prev_reward = np.zeros(num_envs, np.float32)
            self.new_episode = np.ones(num_envs, bool)

    def _obs(self, obs: Any) -> np.ndarray:
        """Observations as the model reads them: int64 (B,), or frames (B, *obs_shape)."""
        a = np.asarray(obs)
        check_obs(self.obs_shape, a.shape[1:] if a.size != self.B else (), "the environment")
        return np.array(a) if self.obs_shape else a.astype(np.int64).reshape(self.B)

    def window(self, obs: Any) -> dict[str, np.ndarray]:
        """The model inputs for the current step (arrays (B, T) (frames: (B, T, *obs_shape))
        or, for DPT, (B, N)/(B,))."""
        obs = self._obs(obs)
        if self.set:
            ctx = self.ring.ordered(self.C)
            return {"ctx_obs": ctx["obs"], "ctx_action": ctx["action"],
                    "ctx_reward": ctx["reward"], "ctx_next_obs": ctx["next_obs"],
                    "query_obs": obs}
        past = self.ring.ordered(self.C - 1) if self.C > 1 else {
            k: v[:, :0] for k, v in self.ring.buf.items()}
        cur = {"obs": obs, "prev_action": self.prev_action, "prev_reward": self.prev_reward,
               "new_episode": self.new_episode}
        return {k: np.concatenate([past[k], cur[k][:, None]], axis=1) for k in cur}

    @torch.no_grad()
    def logits(self, obs: Any) -> np.ndarray:
        """Logits (B, A) at the current step."""
        dev = next(self.model.parameters()).device
        if self.kv is not None:
            obs = self._obs(obs)
            x = [None if v is None else torch.from_numpy(np.ascontiguousarray(v)).to(dev)
                 for v in (obs, self.prev_action, self.prev_reward, self.new_episode,
                           self.prev_obs)]
            out = self.spec.step(self.kv, *x)
            if self.prev_obs is not None:
                self.prev_obs = obs
            return out.float().cpu().numpy()
        w = {k: torch.from_numpy(np.ascontiguousarray(v)).to(dev)
             for k, v in self.window(obs).items()}
        if self.set:
            out = self.model(w["ctx_obs"], w["ctx_action"], w["ctx_reward"],
                             w["ctx_next_obs"], w["query_obs"])
        else:
            out = self.model(w["obs"], w["prev_action"], w["prev_reward"], w["new_episode"])
        return out[:, -1].float().cpu().numpy()

    def policy(self, obs: Any, t: int) -> np.ndarray:
        """Action probabilities (B, A), float32, at step ``t``."""
        if self._last is not None and self._last[0] == t:
            z = self._last[1]
        else:
            z = self.logits(obs)
            self._last = (t, z)
        own = getattr(self.model, "action_probs", None)
        if own is not None:
            return np.asarray(own(z, self.mode), dtype=np.float32)
        if self.mode == "greedy":
            return np.eye(self.A, dtype=np.float32)[z.argmax(-1)]
        z = z - z.max(-1, keepdims=True)
        p = np.exp(z)
        return (p / p.sum(-1, keepdims=True)).astype(np.float32)

    def act(self, obs: Any, t: int) -> np.ndarray:
        """Actions (B,) int32 drawn from :meth:`policy` with this learner's own seed."""
        p = self.policy(obs, t).astype(np.float64)
        u = self.rng.random((self.B, 1))
        return np.minimum((p.cumsum(-1) < u).sum(-1), self.A - 1).astype(np.int32)

    def observe(self, tr: Transition, keys: Any = None, t: int = 0) -> None:
        """Append the transition of the current step to the context."""
        act = np.asarray(tr.action).astype(np.int64)
        rew = np.asarray(tr.reward).astype(np.float32)
        done = np.asarray(tr.terminated) | np.asarray(tr.truncated)
        if self.set:
            nxt = np.where(done, self.spec.num_obs, np.asarray(tr.next_obs)).astype(np.int64)
            self.ring.push(obs=self._obs(tr.obs), action=act, reward=rew, next_obs=nxt)
            return
        if self.kv is None and self.C > 1:
            self.ring.push(obs=self._obs(tr.obs), prev_action=self.prev_action,
                           prev_reward=self.prev_reward, new_episode=self.new_episode)
        self.prev_action, self.prev_reward, self.new_episode = act, rew, done.astype(bool)
