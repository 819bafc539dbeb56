"""Training windows from history files (numpy only, no torch).

A :class:`WindowSampler` draws random windows of ``context_len`` steps from the train-split
learners of a history, reading each window from the file (never loading the file).
Validation uses held-out learners: a deterministic fraction of the train split.
Observations are indices (a window's ``obs`` (T,)) or frames (``obs`` (T, *obs_shape), read
chunk by chunk like every other field): the same windows, tokens and labels either way.

Label options (``labels``), for the sequence students (AD, GRU), at each step ``s``:

* ``"actions"``: the teacher's action at ``s`` (AD's next-action prediction);
* ``"probs"``: the teacher's action probabilities at ``s`` (soft targets, (T, A));
* ``"optimal"``: the task's optimal action at ``obs[s]`` (DPT-style privileged label);
* ``"gap"`` with ``gap_episodes`` = g (GLA): let ``e`` be the episode of step ``s``
  (episodes counted by the learner's own resets, terminated or truncated). The label is
  the action the teacher took at the FIRST step of episode ``e + g`` whose observation
  equals ``obs[s]``. Positions where episode ``e + g`` never visits ``obs[s]`` (or lies
  past the end of the history) are masked out of the loss.

For DPT (set students) the label is always ``"optimal"``: the optimal action of a query
observation drawn from a uniformly random step of the same learner.

``transitions=True`` (a student trained by temporal differences, such as
:mod:`outlearn.students.adq`): a sequence window holds ``context_len + 1`` steps (the
model sees the first ``context_len``; the last is the successor of the window's last step)
and, besides the inputs and labels, each step's own ``reward`` and ``terminated`` flag.
Only ``"actions"`` labels (the action each reward followed) apply.
"""

from __future__ import annotations

import math
from typing import Any, Literal, Protocol

import numpy as np

from outlearn.errors import ConfigError, HistoryFileError
from outlearn.students.tokens import step_inputs

Labels = Literal["actions", "probs", "optimal", "gap"]
Batch = dict[str, np.ndarray]
CACHE_BYTES = 256 * 2**20  # learners' whole rows are kept in memory up to this size


class HistorySource(Protocol):
    """What the sampler needs from a history (the real reader is adapted to this)."""

    num_steps: int
    num_obs: int
    num_actions: int
    episode_len: int
    obs_shape: tuple[int, ...]  # () for index observations
    obs_dtype: np.dtype

    def learners(self, split: str) -> np.ndarray: ...

    def window(self, learner: int, start: int, length: int) -> dict[str, np.ndarray]: ...


class ArraySource:
    """An in-memory history: arrays shaped (L, S) (``probs`` (L, S, A), frames ``obs``
    (L, S, *obs_shape)), ``split`` (L,)."""

    def __init__(self, arrays: dict[str, np.ndarray], num_obs: int, num_actions: int,
                 episode_len: int):
        self.arrays = arrays
        self.num_obs, self.num_actions, self.episode_len = num_obs, num_actions, episode_len
        self.num_steps = int(arrays["obs"].shape[1])
        self.obs_shape = tuple(arrays["obs"].shape[2:])
        self.obs_dtype = arrays["obs"].dtype

    def learners(self, split: str) -> np.ndarray:
        code = {"train": 0, "test": 1}[split]
        return np.flatnonzero(self.arrays["split"] == code)

    def window(self, learner: int, start: int, length: int) -> dict[str, np.ndarray]:
        sl = slice(start, start + length)
        return {k: v[learner, sl] for k, v in self.arrays.items() if np.ndim(v) >= 2}


def gap_labels(
    obs: np.ndarray, actions: np.ndarray, done: np.ndarray, g: int, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Gap-g labels of the first ``n`` steps of a segment (see the module docstring).

    Args:
        obs, actions, done: (M,) arrays of consecutive steps, M >= n; ``done[i]`` means
            the episode ended at step i (the segment may start mid-episode: that partial
            episode counts as episode 0 of the segment).
        g: episodes ahead (>= 1).
    Returns:
        labels int64 (n,) (0 where masked) and mask bool (n,).
    """
    starts = np.concatenate([[False], done[:-1].astype(bool)])
    ep = np.cumsum(starts).astype(np.int64)
    big = int(obs.max(initial=0)) + 1
    keys = ep * big + obs.astype(np.int64)
    uniq, first = np.unique(keys, return_index=True)
    want = (ep[:n] + g) * big + obs[:n].astype(np.int64)
    pos = np.clip(np.searchsorted(uniq, want), 0, len(uniq) - 1)
    mask = uniq[pos] == want
    labels = np.where(mask, actions[first[pos]], 0).astype(np.int64)
    return labels, mask


def check_frame_labels(source: HistorySource, kind: str, labels: str) -> None:
    """Refuse labels (and DPT's sets) that need observation indices on a frame history."""
    if source.obs_shape and (kind == "set" or labels in ("optimal", "gap")):
        what = "a DPT student" if kind == "set" else f"data.labels={labels!r}"
        raise ConfigError(
            f"{what} needs observation indices (the task's optimal action, or a state seen "
            f"again), but the history's observations are frames of shape "
            f"{source.obs_shape}: train AD or the GRU with data.labels = \"actions\" (or "
            "\"probs\")")


def split_train_val(
    train: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic held-out learners: (train learners, val learners), both sorted."""
    n = len(train)
    n_val = int(round(val_fraction * n))
    if val_fraction > 0 and n_val == 0 and n >= 2:
        n_val = 1
    if n_val >= n:
        raise ConfigError(
            f"data.val_fraction={val_fraction} leaves no training learners out of {n}: "
            "lower data.val_fraction (or collect more learners)"
        )
    perm = np.random.Generator(np.random.PCG64([seed, 7])).permutation(train)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


_RANGES = {"obs": "num_obs", "actions": "num_actions", "optimal_actions": "num_actions"}


def step_bytes(src: Any) -> int:
    """Bytes of one step of ``src`` in memory: its observation, the other fields and the
    probabilities (32 + 4 A for an index observation)."""
    obs = math.prod(src.obs_shape) * np.dtype(src.obs_dtype).itemsize
    return 28 + obs + 4 * int(src.num_actions)


def check_ranges(src: Any, learner: int, start: int, w: dict[str, np.ndarray],
                 keys: tuple[str, ...] = tuple(_RANGES)) -> dict[str, np.ndarray]:
    """``w`` (a window of ``src`` from step ``start``) when its fields ``keys``
    (observations, actions, optimal actions) lie in ``[0, num_obs)`` and
    ``[0, num_actions)``; else a HistoryFileError naming the first bad value (the models
    would index past their embedding tables). Frames are not indices and are not checked."""
    for key in keys:
        size_name, a = _RANGES[key], w.get(key)
        if a is None or a.size == 0 or a.ndim > 1:
            continue
        n = int(getattr(src, size_name))
        bad = np.flatnonzero((a < 0) | (a >= n))
        if bad.size:
            i = int(bad[0])
            where = getattr(src, "path", "the history")
            raise HistoryFileError(
                f"history {where}: learner {learner} has {key}={int(a[i])} at step "
                f"{start + i}, outside [0, {size_name}={n}) of the file's metadata. Its "
                f"arrays and {size_name} disagree: re-collect it with `outlearn collect`, "
                "or fix the file's arrays or its num_obs/num_actions attributes")
    return w


class WindowSampler:
    """Random training windows. ``kind``: ``"sequence"`` (AD, GRU) or ``"set"`` (DPT).

    A sequence batch: ``obs``, ``prev_action`` int64, ``prev_reward`` float32,
    ``new_episode`` bool, each (B, T) (frames: ``obs`` (B, T, *obs_shape)); ``target``
    int64 (B, T) (float32 (B, T, A) for ``"probs"``); ``mask`` bool (B, T). A set batch:
    ``ctx_obs``, ``ctx_action``, ``ctx_reward``, ``ctx_next_obs`` (B, N), ``query_obs``
    (B,), ``target`` int64 (B,), ``mask`` bool (B,). With ``transitions`` a sequence batch
    spans T + 1 steps and also holds ``reward`` float32 and ``terminated`` bool (B, T + 1)
    (see the module docstring).
    All randomness comes from ``seed``; :meth:`state` / :meth:`set_state` save and
    restore it exactly.
    """

    def __init__(self, source: HistorySource, *, kind: str, context_len: int, labels: Labels,
                 gap_episodes: int, batch_size: int, val_fraction: float, seed: int,
                 set_start: str = "random", permute_actions: bool = False,
                 transitions: bool = False):
        self.src, self.kind, self.T = source, kind, context_len
        # steps of a sequence window: the successor of its last step with transitions
        self.span = context_len + (1 if transitions else 0)
        self.transitions = transitions
        if transitions and (kind != "sequence" or labels != "actions"):
            raise ConfigError(
                f"this student learns from the history's transitions (the action taken, its "
                f"reward, the next step), so data.labels must be \"actions\", not {labels!r}: "
                "set data.labels = \"actions\" (or remove it)")
        # DPT sets: "first" starts every context at the learner's first step, so a prefix
        # of i transitions is "the first i", as at deployment; "random" starts anywhere
        self.set_start, self.permute = set_start, permute_actions
        if permute_actions and (kind != "set" or source.num_obs != 1):
            raise ConfigError(
                "data.permute_actions relabels arms at random, which is only valid for a DPT "
                "student on a bandit (one observation, interchangeable actions): remove it")
        self.labels, self.g, self.batch_size = labels, gap_episodes, batch_size
        need = context_len + (1 if kind == "set" or transitions else 0)
        if source.num_steps < need:
            raise ConfigError(
                f"data.context_len={context_len} needs histories of >= {need} steps but the "
                f"file has {source.num_steps}: lower data.context_len or collect longer"
            )
        check_frame_labels(source, kind, labels)
        if kind == "set" and labels != "optimal":
            raise ConfigError(
                f"data.labels={labels!r} does not apply to DPT: its label is the optimal "
                "action of the query; set data.labels = \"optimal\""
            )
        train = np.asarray(source.learners("train"))
        if len(train) == 0:
            raise ConfigError("the history has no train-split learners: collect with n_train > 0")
        self.train_learners, self.val_learners = split_train_val(train, val_fraction, seed)
        self.rng = np.random.Generator(np.random.PCG64(seed))
        self._val_seed = seed
        self._val_cache: list[Batch] = []
        self._cache_rows = len(train) * source.num_steps * step_bytes(source) <= CACHE_BYTES
        self._rows: dict[int, dict[str, np.ndarray]] = {}
        # optimal actions are -1 in a family without an oracle: checked where they are labels
        self._checked = (tuple(_RANGES) if labels == "optimal" or kind == "set"
                         else ("obs", "actions"))

    def window(self, learner: int, start: int, length: int) -> dict[str, np.ndarray]:
        """Steps [start, start + length) of one learner, from memory when the train
        learners' rows fit in :data:`CACHE_BYTES` (read once each), else from the source.
        Observations and actions outside the file's ``num_obs`` / ``num_actions`` (a
        hand-made history) raise :class:`HistoryFileError`."""
        if not self._cache_rows:
            return check_ranges(self.src, learner, start,
                                self.src.window(learner, start, length), self._checked)
        row = self._rows.get(learner)
        if row is None:
            row = check_ranges(self.src, learner, 0,
                               self.src.window(learner, 0, self.src.num_steps), self._checked)
            self._rows[learner] = row
        return {k: v[start:start + length] for k, v in row.items()}

    def state(self) -> dict[str, Any]:
        return dict(self.rng.bit_generator.state)

    def set_state(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state

    def sample(self) -> Batch:
        """One training batch drawn from the train learners."""
        return self._batch(self.rng, self.train_learners)

    def val_batches(self, n: int) -> list[Batch]:
        """``n`` fixed validation batches (the same on every call; empty without val)."""
        if len(self.val_learners) == 0:
            return []
        if len(self._val_cache) != n:
            rng = np.random.Generator(np.random.PCG64([self._val_seed, 11]))
            self._val_cache = [self._batch(rng, self.val_learners) for _ in range(n)]
        return self._val_cache

    def _batch(self, rng: np.random.Generator, learners: np.ndarray) -> Batch:
        ls = rng.choice(learners, size=self.batch_size)
        if self.kind == "set":
            hi = self.src.num_steps - self.T - 1
            starts = (np.zeros(self.batch_size, np.int64) if self.set_start == "first"
                      else rng.integers(0, hi + 1, size=self.batch_size))
            queries = rng.integers(0, self.src.num_steps, size=self.batch_size)
            rows = [self.set_example(int(lr), int(s), int(q))
                    for lr, s, q in zip(ls, starts, queries, strict=True)]
            if self.permute:  # one random relabelling of the arms per example
                for r in rows:
                    perm = rng.permutation(self.src.num_actions)
                    r["ctx_action"], r["target"] = perm[r["ctx_action"]], perm[r["target"]]
        else:
            starts = rng.integers(0, self.src.num_steps - self.span + 1, size=self.batch_size)
            rows = [self.sequence_example(int(lr), int(s)) for lr, s in zip(ls, starts,
                                                                            strict=True)]
        return {k: np.stack([r[k] for r in rows]) for k in rows[0]}

    def sequence_example(self, learner: int, start: int) -> Batch:
        """Inputs and labels of steps [start, start + T) of one learner (arrays (T,));
        [start, start + T + 1) with ``transitions``, and each step's reward and
        ``terminated`` flag."""
        T, S = self.span, self.src.num_steps
        r0 = max(0, start - 1)
        off = start - r0
        extra = (self.g + 1) * self.src.episode_len if self.labels == "gap" else 0
        w = self.window(learner, r0, min(S, start + T + extra) - r0)
        done = np.asarray(w["terminated"]) | np.asarray(w["truncated"])
        m = off + T
        ex = step_inputs(w["obs"][:m], w["actions"][:m], w["rewards"][:m], done[:m], off == 1)
        cur = slice(off, off + T)
        mask = np.ones(T, bool)
        if self.labels == "actions":
            target = w["actions"][cur].astype(np.int64)
        elif self.labels == "optimal":
            target = w["optimal_actions"][cur].astype(np.int64)
        elif self.labels == "probs":
            if "probs" not in w:
                raise ConfigError("data.labels=\"probs\" but the history has no teacher "
                                  "probabilities: use labels = \"actions\"")
            target = w["probs"][cur].astype(np.float32)
        else:
            target, mask = gap_labels(w["obs"][off:], w["actions"][off:], done[off:], self.g, T)
        if self.transitions:
            return {**ex, "target": target, "mask": mask,
                    "reward": w["rewards"][cur].astype(np.float32),
                    "terminated": np.asarray(w["terminated"][cur]).astype(bool)}
        return {**ex, "target": target, "mask": mask}

    def set_example(self, learner: int, start: int, query: int) -> Batch:
        """A context set of N transitions from [start, start + N] and one query step."""
        N = self.T
        w = self.window(learner, start, N + 1)
        done = (np.asarray(w["terminated"]) | np.asarray(w["truncated"]))[:N]
        q = self.window(learner, query, 1)
        return {
            "ctx_obs": w["obs"][:N].astype(np.int64),
            "ctx_action": w["actions"][:N].astype(np.int64),
            "ctx_reward": w["rewards"][:N].astype(np.float32),
            "ctx_next_obs": np.where(done, self.src.num_obs, w["obs"][1:]).astype(np.int64),
            "query_obs": np.asarray(q["obs"][0], np.int64),
            "target": np.asarray(q["optimal_actions"][0], np.int64),
            "mask": np.asarray(True),
        }
