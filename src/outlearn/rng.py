"""Every PRNG key outlearn derives, in one place.

* **Threefry on a batch of keys**: :func:`fold_in`, :func:`split2`, :func:`uniforms`,
  bit for bit jax's own ``jax.random.fold_in`` / ``split`` / ``uniform``. On CPU jax lowers
  each threefry hash to a rolled 5-iteration while loop (tens of tiny kernels per hash);
  written out here (:func:`threefry2x32`), the hash fuses with its neighbours.
* **Rollout keys** (:mod:`outlearn.rollout`): learner ``b`` at global step ``t`` uses
  ``k = fold_in(keys[b], t)``: its action uniform is ``uniform(k)``, its env and update
  keys ``fold_in(k, 1)`` and ``fold_in(k, 2)`` (:func:`step_keys`). The initial reset and
  learner init use ``fold_in(keys[b], RESET_DATA)`` and ``fold_in(keys[b], INIT_DATA)``.
* **Task keys** (:mod:`outlearn.envs`): a task's parameters come from its id alone,
  :func:`id_key` (low 32 bits) and :func:`id_keys` (all 64 bits of each id).
* **Unit keys** (:mod:`outlearn.evaluation`): learner ``(seed, task)`` of an evaluation
  always runs with :func:`unit_keys`, whatever else runs beside it.
* **Learner keys** (:mod:`outlearn.collect`): ``jax.random.key(seed)`` per learner seed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from outlearn.errors import ConfigError

#: data folded into a learner's root key for its env's first reset, and for its init
RESET_DATA = 2**31 - 1
INIT_DATA = 2**31 - 2

# ----------------------------------------------------------------------------- threefry
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))


def _rotl(x: jax.Array, d: int) -> jax.Array:
    return (x << np.uint32(d)) | (x >> np.uint32(32 - d))


def threefry2x32(k1, k2, x1, x2) -> tuple[jax.Array, jax.Array]:
    """The Threefry-2x32 hash (20 rounds) of counts (x1, x2) under keys (k1, k2); all
    uint32 arrays of one broadcast shape. Equal to jax's ``threefry2x32`` primitive."""
    ks = (k1, k2, k1 ^ k2 ^ np.uint32(0x1BD11BDA))
    x1, x2 = x1 + ks[0], x2 + ks[1]
    for i in range(5):
        for r in _ROTATIONS[i % 2]:
            x1 = x1 + x2
            x2 = _rotl(x2, r) ^ x1
        x1 = x1 + ks[(i + 1) % 3]
        x2 = x2 + ks[(i + 2) % 3] + np.uint32(i + 1)
    return x1, x2


def _fast(keys: jax.Array) -> bool:
    """Whether the unrolled hash reproduces jax for these keys (default threefry keys)."""
    return (str(jax.random.key_impl(keys)) == "threefry2x32"
            and bool(jax.config.jax_threefry_partitionable))  # type: ignore[attr-defined]


def _hash(keys: jax.Array, x1, x2) -> tuple[jax.Array, jax.Array]:
    kd = jax.random.key_data(keys)
    return threefry2x32(kd[..., 0], kd[..., 1], jnp.asarray(x1, jnp.uint32),
                        jnp.asarray(x2, jnp.uint32))


def fold_in(keys: jax.Array, data) -> jax.Array:
    """``jax.random.fold_in(keys[b], data)`` for every key of ``keys`` (B,); data int []."""
    if not _fast(keys):
        return jax.vmap(jax.random.fold_in, in_axes=(0, None))(keys, data)
    h1, h2 = _hash(keys, 0, jnp.asarray(data).astype(jnp.uint32))
    return jax.random.wrap_key_data(jnp.stack([h1, h2], -1), impl="threefry2x32")


def split2(keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``jax.random.split(keys[b])`` (two keys) for every key of ``keys`` (B,)."""
    if not _fast(keys):
        pair = jax.vmap(jax.random.split)(keys)
        return pair[:, 0], pair[:, 1]
    h0, h1 = (_hash(keys, 0, i) for i in (0, 1))
    wrap = lambda h: jax.random.wrap_key_data(jnp.stack(h, -1), impl="threefry2x32")  # noqa: E731
    return wrap(h0), wrap(h1)


def uniforms(keys: jax.Array) -> jax.Array:
    """``jax.random.uniform(keys[b])`` for every key of ``keys`` (B,): float32 (B,)."""
    if not _fast(keys):
        return jax.vmap(jax.random.uniform)(keys)
    h1, h2 = _hash(keys, 0, 0)
    mantissa = ((h1 ^ h2) >> np.uint32(9)) | np.uint32(0x3F800000)  # a float in [1, 2)
    return jax.lax.bitcast_convert_type(mantissa, jnp.float32) - jnp.float32(1.0)


# ----------------------------------------------------------------------------- rollout keys
def step_keys(keys: jax.Array, t: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(act, env, update) keys for every learner at step ``t``; keys: (B,) key array.

    ``k = fold_in(key_b, t)`` is the act key; env and update keys are ``fold_in(k, 1)``
    and ``fold_in(k, 2)``, which XLA drops when a learner or env does not use them.
    """
    k = fold_in(keys, t)
    return k, fold_in(k, 1), fold_in(k, 2)


def action_uniforms(keys: jax.Array, ts: jax.Array) -> jax.Array:
    """The uniform each learner draws its action with at each step of ``ts`` (S,):
    float32 (S, B), row ``i`` is ``uniforms(step_keys(keys, ts[i])[0])``."""
    return jax.vmap(lambda t: uniforms(fold_in(keys, t)))(ts)


def reset_keys(keys: jax.Array) -> jax.Array:
    """The keys (B,) of every learner's first env reset, from its root key (B,)."""
    return fold_in(keys, RESET_DATA)


def init_keys(keys: jax.Array) -> jax.Array:
    """The keys (B,) of every learner's init, from its root key (B,)."""
    return jax.vmap(lambda k: jax.random.fold_in(k, INIT_DATA))(keys)


# ----------------------------------------------------------------------------- task keys
def id_key(task_id: jax.Array, salt: int = 0) -> jax.Array:
    """A PRNG key from the low 32 bits of a task id; callers fold in the high bits
    (which carry the split seed), as :func:`id_keys` does."""
    k = jax.random.key(salt)
    tid = jnp.asarray(task_id, dtype=jnp.uint32)
    return jax.random.fold_in(k, tid)


def id_keys(task_ids: Any, salt: int) -> jax.Array:
    """One PRNG key per task id (n,), from all 64 bits of each (non-negative) id."""
    if isinstance(task_ids, jax.Array):  # int32 unless x64 is on
        lo = task_ids.astype(jnp.uint32)
        wide = task_ids.dtype.itemsize == 8
        hi = (task_ids >> 32).astype(jnp.uint32) if wide else jnp.zeros_like(lo)
    else:
        ids = np.asarray(task_ids)
        if ids.ndim != 1 or not np.issubdtype(ids.dtype, np.integer):
            raise ConfigError(
                f"task_ids must be a 1-d integer array, got {ids.dtype} {ids.shape}; "
                "pass e.g. np.arange(n) or the ids from split_tasks"
            )
        if ids.size and ids.min() < 0:
            raise ConfigError("task ids must be >= 0; use ids from split_tasks(family, ...)")
        ids = ids.astype(np.uint64)
        lo = jnp.asarray((ids & np.uint64(0xFFFFFFFF)).astype(np.uint32))
        hi = jnp.asarray((ids >> np.uint64(32)).astype(np.uint32))
    return _keys_from_halves(lo, hi, salt)


@partial(jax.jit, static_argnums=2)
def _keys_from_halves(lo: jax.Array, hi: jax.Array, salt: int) -> jax.Array:
    """Keys (n,) from the low and high 32 bits (uint32 (n,) each) of task ids."""
    return jax.vmap(lambda lo_, hi_: jax.random.fold_in(id_key(lo_, salt), hi_))(lo, hi)


# ----------------------------------------------------------------------------- unit keys
def unit_keys(seed: int, task_ids: np.ndarray) -> jax.Array:
    """(T,) PRNG keys, one per task, from the seed and the task id only."""
    root = jax.random.key(seed & 0xFFFFFFFF)  # jax keeps the low 32 bits of a seed:
    if seed >> 32:  # fold the high ones in, so seeds >= 2**32 do not alias small ones
        root = jax.random.fold_in(root, seed >> 32)
    ids = np.asarray(task_ids, dtype=np.int64)
    hi = jnp.asarray((ids >> 32).astype(np.uint32))
    lo = jnp.asarray((ids & 0xFFFFFFFF).astype(np.uint32))
    return jax.vmap(lambda h, lo_: jax.random.fold_in(jax.random.fold_in(root, h), lo_))(hi, lo)


def learner_keys(seeds: np.ndarray) -> jax.Array:
    """(L,) jax key array: ``jax.random.key(seeds[l])`` for each learner."""
    return jax.vmap(jax.random.key)(jnp.asarray(np.asarray(seeds, dtype=np.uint32)))
