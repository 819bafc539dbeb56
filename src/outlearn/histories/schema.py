"""The history-file schema (version 1): names, dtypes, shapes and file attributes.

One HDF5 file per collection, flat per learner (the XLand-100B layout). ``L`` learners,
``S`` steps each, ``A`` actions, ``E`` completed episodes (the most of any learner):

* per step, chunked ``(1, chunk_steps)`` along S and gzip-compressed: ``obs`` int32
  (L,S), ``actions`` int32 (L,S), ``rewards`` float32 (L,S), ``terminated`` bool (L,S),
  ``truncated`` bool (L,S), ``optimal_actions`` int32 (L,S), ``expected_rewards``
  float32 (L,S), ``probs`` float32 (L,S,A) when the teacher defines them, and
  ``next_obs`` int32 (L,S) for index observations: the observation each step ended in,
  before the auto-reset (where an episode ended, not the next step's ``obs``: a
  Q-learner's bootstrap reads it; files written before it was recorded lack it);
* frames: a family with array observations (``obs_shape``, e.g. env "gymnax") stores
  ``obs`` as (L,S,*obs_shape) in its dtype, one of :data:`FRAME_DTYPES` (bool for binary
  frames: one byte a pixel in memory, shuffled and gzipped to under a bit a pixel on
  disk), chunked ``(1, chunk_steps, *obs_shape)``; it reads back exactly. Readers tell
  the two apart by the rank of ``obs`` (``History.has_frames``);
* per episode: ``episode_returns`` float32 (L,E) NaN-padded, ``episode_lengths`` int32
  (L,E) 0-padded (completed episodes only; a trailing unfinished one is not counted);
* per learner: ``task_ids`` int64 (L,), ``split`` uint8 (L,) 0=train 1=test,
  ``optimal_return`` float32 (L,), ``learner_seeds`` uint32 (L,) (learner ``l`` ran
  with key ``jax.random.key(learner_seeds[l])``);
* group ``task_params/``: each leaf of the task pytree, leading axis L, named by its
  path (``goal``, ``means``, ``a.b``).

Every dataset carries a fletcher32 checksum, so a flipped byte is a read error, never a
wrong value (the per-learner ones and ``task_params/`` as uncompressed chunks of whole
rows). Files written before those had it still read: the layout and the schema version
are unchanged and readers do not depend on the filter.

File attributes: see :class:`HistoryMeta`; ``complete=True`` is written last.
:func:`open_validated` checks a file against this schema when it is opened.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from outlearn.errors import ConfigError, HistoryFileError
from outlearn.provenance import release

__all__ = [
    "COMPLETE_ATTR",
    "DEFAULT_CHUNK_STEPS",
    "EPISODE_DATASETS",
    "FRAME_DTYPES",
    "LEARNER_DATASETS",
    "NEXT_OBS",
    "OPTIONAL_STEP_DATASETS",
    "PROBS",
    "SCHEMA_VERSION",
    "SPLITS",
    "STEP_DATASETS",
    "TASK_PARAMS_GROUP",
    "HistoryMeta",
    "LearnerInfo",
    "code_version",
    "flatten_task_params",
    "open_validated",
    "read_guard",
    "split_code",
]

SCHEMA_VERSION = 1
COMPLETE_ATTR = "complete"
TASK_PARAMS_GROUP = "task_params"
PROBS = "probs"
NEXT_OBS = "next_obs"
#: per-step datasets a file may lack: the teacher's probabilities, the step-ending obs
OPTIONAL_STEP_DATASETS = (PROBS, NEXT_OBS)
DEFAULT_CHUNK_STEPS = 1024
GZIP_LEVEL = 4

STEP_DATASETS: dict[str, type] = {
    "obs": np.int32,
    "actions": np.int32,
    "rewards": np.float32,
    "terminated": np.bool_,
    "truncated": np.bool_,
    "optimal_actions": np.int32,
    "expected_rewards": np.float32,
}
EPISODE_DATASETS: dict[str, type] = {"episode_returns": np.float32, "episode_lengths": np.int32}
LEARNER_DATASETS: dict[str, type] = {
    "task_ids": np.int64,
    "split": np.uint8,
    "optimal_return": np.float32,
    "learner_seeds": np.uint32,
}
SPLITS = {"train": 0, "test": 1}
#: dtypes a frame ``obs`` (L, S, *obs_shape) may have; index observations are int32 (L, S)
FRAME_DTYPES = (np.bool_, np.uint8, np.int32, np.float32)


def split_code(split: str) -> int:
    """0 for "train", 1 for "test"; anything else is a ConfigError naming the choices."""
    if split not in SPLITS:
        raise ConfigError(f"unknown split {split!r}: use one of {sorted(SPLITS)}")
    return SPLITS[split]


def code_version() -> str:
    """The release that writes a history (:func:`outlearn.provenance.release`)."""
    return release()


@dataclass(frozen=True)
class HistoryMeta:
    """File-level attributes of a history (everything but the arrays).

    ``provenance`` lists the transforms that made this file from another, oldest first,
    each a dict ``{"transform", "source", "args"}``; empty for a fresh collection.
    """

    env_name: str
    num_actions: int
    num_obs: int
    episode_len: int
    teacher_name: str
    seed: int
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    teacher_kwargs: dict[str, Any] = field(default_factory=dict)
    config_json: str = "{}"
    created_by: str = ""
    code_version: str = field(default_factory=code_version)
    schema_version: int = SCHEMA_VERSION
    provenance: tuple[dict[str, Any], ...] = ()

    @property
    def config(self) -> dict[str, Any]:
        """The resolved config that produced the collection, as a dict."""
        return json.loads(self.config_json)

    def to_attrs(self) -> dict[str, Any]:
        """HDF5 attribute values (scalars and strings; dicts as canonical JSON)."""
        return {
            "schema_version": np.int64(self.schema_version),
            "code_version": self.code_version,
            "env_name": self.env_name,
            "env_kwargs": _dumps(self.env_kwargs),
            "teacher_name": self.teacher_name,
            "teacher_kwargs": _dumps(self.teacher_kwargs),
            "num_actions": np.int64(self.num_actions),
            "num_obs": np.int64(self.num_obs),
            "episode_len": np.int64(self.episode_len),
            "seed": np.int64(self.seed),
            "config": self.config_json,
            "created_by": self.created_by,
            "provenance": _dumps(list(self.provenance)),
        }

    @classmethod
    def from_attrs(cls, attrs: Any) -> HistoryMeta:
        """Inverse of :meth:`to_attrs`; raises KeyError/ValueError on a malformed set."""
        return cls(
            env_name=_str(attrs["env_name"]),
            num_actions=int(attrs["num_actions"]),
            num_obs=int(attrs["num_obs"]),
            episode_len=int(attrs["episode_len"]),
            teacher_name=_str(attrs["teacher_name"]),
            seed=int(attrs["seed"]),
            env_kwargs=json.loads(_str(attrs["env_kwargs"])),
            teacher_kwargs=json.loads(_str(attrs["teacher_kwargs"])),
            config_json=_str(attrs["config"]),
            created_by=_str(attrs["created_by"]),
            code_version=_str(attrs["code_version"]),
            schema_version=int(attrs["schema_version"]),
            provenance=tuple(json.loads(_str(attrs["provenance"]))),
        )


def _dumps(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True)


def _str(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


@dataclass(frozen=True)
class LearnerInfo:
    """Per-learner arrays written beside the trajectories; every leading axis is L."""

    task_ids: np.ndarray  # int64 (L,)
    split: np.ndarray  # uint8 (L,) 0 train, 1 test
    optimal_return: np.ndarray  # float32 (L,) best expected return of one episode
    learner_seeds: np.ndarray  # uint32 (L,)
    task_params: dict[str, np.ndarray] = field(default_factory=dict)  # leaf -> (L, ...)

    def select(self, idx: np.ndarray | slice) -> LearnerInfo:
        """The same info for a subset of learners (index array or slice)."""
        return LearnerInfo(
            self.task_ids[idx], self.split[idx], self.optimal_return[idx],
            self.learner_seeds[idx], {k: v[idx] for k, v in self.task_params.items()},
        )


def flatten_task_params(params: Any) -> dict[str, np.ndarray]:
    """A task pytree (leading axis L on every leaf) -> ``{leaf path: numpy array}``.

    Leaf paths join attribute names, dict keys and sequence indices with ".";
    a plain ``dict`` of arrays comes back with its own keys.
    """
    import jax

    leaves, _ = jax.tree_util.tree_flatten_with_path(params)
    out: dict[str, np.ndarray] = {}
    for path, leaf in leaves:
        parts = []
        for p in path:
            for attr in ("name", "key", "idx"):
                if hasattr(p, attr):
                    parts.append(str(getattr(p, attr)))
                    break
            else:
                parts.append(str(p))
        name = ".".join(parts) or "value"
        out[name.replace("/", "_")] = np.asarray(leaf)
    return out


# -- validation ---------------------------------------------------------------------
_RECOLLECT = "re-collect it with `outlearn collect <config.toml>` (or restore a good copy)"


@contextmanager
def read_guard(path: Any) -> Iterator[None]:
    """Turn h5py's read failures (a checksum mismatch, a bad chunk) into HistoryFileError."""
    try:
        yield
    except HistoryFileError:
        raise
    except (OSError, RuntimeError) as err:
        raise HistoryFileError(
            f"history file {path} is corrupt: reading it failed ({err}); {_RECOLLECT}"
        ) from err


def open_validated(path: Path | Any) -> tuple[h5py.File, HistoryMeta]:
    """Open a history read-only and check it; ``path`` is a Path or a binary file object.

    Raises HistoryFileError (naming the problem and the fix) for a missing file, a file
    that is not HDF5, a truncated or corrupt file, an interrupted write (no ``complete``
    attribute), another schema version, or missing/misshapen datasets.
    """
    if isinstance(path, Path):
        if not path.exists():
            raise HistoryFileError(f"history file {path} does not exist: check the path, "
                                   "or create it with `outlearn collect <config.toml>`")
        if not path.is_file():
            raise HistoryFileError(f"history path {path} is not a file: give the .h5 file")
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        if isinstance(path, Path) and not h5py.is_hdf5(path):
            empty = " (it is empty)" if path.stat().st_size == 0 else ""
            raise HistoryFileError(f"{path} is not an HDF5 file{empty}: give a history file "
                                   "written by `outlearn collect`") from None
        raise HistoryFileError(f"history file {path} is truncated or corrupt ({err}); "
                               f"{_RECOLLECT}") from None
    try:
        return f, _check_file(f, path)
    except BaseException:
        f.close()
        raise


def _check_file(f: h5py.File, path: Any) -> HistoryMeta:
    try:
        _check_version(f, path)
        _check_datasets(f, path)
        return HistoryMeta.from_attrs(f.attrs)
    except HistoryFileError:
        raise
    except (OSError, RuntimeError, KeyError, ValueError, TypeError) as err:
        raise HistoryFileError(f"history file {path} is corrupt: its metadata cannot be read "
                               f"({type(err).__name__}: {err}); {_RECOLLECT}") from err


def _check_version(f: h5py.File, path: Any) -> None:
    if "schema_version" not in f.attrs:
        raise HistoryFileError(f"{path} is an HDF5 file but not an outlearn history (it has no "
                               "schema_version attribute): give a file written by "
                               "`outlearn collect`")
    version = int(f.attrs["schema_version"])
    if version != SCHEMA_VERSION:
        raise HistoryFileError(
            f"history file {path} has schema_version {version}; this outlearn reads "
            f"schema_version {SCHEMA_VERSION}. Re-collect it with this version "
            "(`outlearn collect <config.toml>`; its config is in the file's 'config' attribute)")
    if not bool(f.attrs.get(COMPLETE_ATTR, False)):
        raise HistoryFileError(
            f"history file {path} is incomplete: its write was interrupted (no '{COMPLETE_ATTR}' "
            f"attribute). Delete it and {_RECOLLECT}")


def _check_datasets(f: h5py.File, path: Any) -> None:
    required = [*STEP_DATASETS, *EPISODE_DATASETS, *LEARNER_DATASETS, TASK_PARAMS_GROUP]
    missing = [k for k in required if k not in f]
    if missing:
        raise HistoryFileError(f"history file {path} lacks {', '.join(missing)}: it is not a "
                               f"complete schema-{SCHEMA_VERSION} history; {_RECOLLECT}")
    shape = f["obs"].shape[:2]
    if len(f["obs"].shape) < 2:
        raise HistoryFileError(f"history file {path}: obs has shape {f['obs'].shape}, not "
                               f"(L, S) or (L, S, *obs_shape); {_RECOLLECT}")
    L = shape[0]
    expect = {k: shape for k in STEP_DATASETS if k != "obs"}
    expect.update({k: (L,) for k in LEARNER_DATASETS})
    if PROBS in f:
        expect[PROBS] = (*shape, int(f.attrs["num_actions"]))
    if NEXT_OBS in f:
        expect[NEXT_OBS] = shape
    E = f["episode_returns"].shape[1:2]
    expect.update({k: (L, *E) for k in EPISODE_DATASETS})
    for k, want in expect.items():
        if f[k].shape != want:
            raise HistoryFileError(f"history file {path}: dataset {k} has shape {f[k].shape}, "
                                   f"expected {want}; {_RECOLLECT}")
