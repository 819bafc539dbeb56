"""Write and read history files (see :mod:`outlearn.histories.schema` for the layout).

``L`` learners, ``S`` steps, ``A`` actions, ``E`` completed episodes.

* :func:`write_history` writes a :class:`~outlearn.core.Trajectory` atomically, in a
  deterministic byte layout (no timestamps, a fixed HDF5 format version), so the same
  arrays and meta give a byte-identical file.
* :class:`History` opens one read-only, validates it (missing, not HDF5, truncated or
  corrupt, interrupted write, other schema version, missing datasets) and reads lazily.
* :func:`episode_returns` turns per-step rewards into per-episode returns.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, Any

import h5py
import numpy as np

from outlearn.atomic import atomic_write_bytes, disk_full_error, is_disk_full, temp_name
from outlearn.core import Trajectory
from outlearn.errors import HistoryFileError
from outlearn.histories.schema import (
    COMPLETE_ATTR,
    DEFAULT_CHUNK_STEPS,
    EPISODE_DATASETS,
    FRAME_DTYPES,
    GZIP_LEVEL,
    LEARNER_DATASETS,
    NEXT_OBS,
    OPTIONAL_STEP_DATASETS,
    PROBS,
    STEP_DATASETS,
    TASK_PARAMS_GROUP,
    HistoryMeta,
    LearnerInfo,
    open_validated,
    read_guard,
    split_code,
)

__all__ = ["History", "episode_returns", "write_history"]

LIBVER = ("v110", "v110")  # fixed on-disk format: files do not change with the HDF5 version
VERIFY_AUTO_BYTES = 32 * 2**20  # History(verify="auto") checksums files up to this size
_ROW_BLOCK = 256
_SMALL_CHUNK_BYTES = 64 * 2**20
_CORE_BLOCK = 4 * 2**20  # the in-memory file grows by this much at a time


def episode_returns(
    rewards: np.ndarray, terminated: np.ndarray, truncated: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-episode returns and lengths from per-step arrays, each (L, S).

    An episode ends at a step where ``terminated | truncated``; steps after a learner's
    last such step (an unfinished episode) are not counted. Returns ``(returns (L,E)
    float32, NaN-padded; lengths (L,E) int32, 0-padded)`` with ``E`` the largest number
    of completed episodes of any learner. Sums accumulate in float64, in step order.
    """
    r = np.asarray(rewards)
    done = np.asarray(terminated, dtype=bool) | np.asarray(truncated, dtype=bool)
    if r.ndim != 2 or r.shape != done.shape:
        raise ValueError(f"rewards {r.shape} and terminated/truncated {done.shape} must be (L, S)")
    L = r.shape[0]
    n = done.sum(axis=1)
    E = int(n.max()) if L else 0
    returns = np.full((L, E), np.nan, dtype=np.float32)
    lengths = np.zeros((L, E), dtype=np.int32)
    for lo in range(0, L, _ROW_BLOCK):
        d, nb = done[lo : lo + _ROW_BLOCK], n[lo : lo + _ROW_BLOCK]
        ep = np.cumsum(d, axis=1) - d  # episode index of every step
        keep = ep < nb[:, None]
        flat = (np.arange(d.shape[0])[:, None] * E + ep)[keep]
        size = d.shape[0] * E
        sums = np.bincount(flat, weights=r[lo : lo + _ROW_BLOCK][keep].astype(np.float64),
                           minlength=size).reshape(-1, E)
        lens = np.bincount(flat, minlength=size).reshape(-1, E)
        valid = np.arange(E)[None, :] < nb[:, None]
        returns[lo : lo + _ROW_BLOCK] = np.where(valid, sums, np.nan)
        lengths[lo : lo + _ROW_BLOCK] = lens
    return returns, lengths


def _obs_array(obs: Any) -> np.ndarray:
    """Index observations (L, S) as int32; frames (L, S, *obs_shape) keep their dtype,
    which must be one of :data:`FRAME_DTYPES` (bool frames are stored one byte a pixel)."""
    a = np.asarray(obs)
    if a.ndim <= 2:
        return a.astype(np.int32)
    if a.dtype not in [np.dtype(d) for d in FRAME_DTYPES]:
        names = ", ".join(np.dtype(d).name for d in FRAME_DTYPES)
        raise HistoryFileError(f"trajectory obs frames have dtype {a.dtype}; a history stores "
                               f"frames as one of {names}: cast them before writing")
    return a


def _step_arrays(traj: Trajectory, meta: HistoryMeta) -> dict[str, np.ndarray]:
    """Validated, dtype-cast per-step arrays of ``traj``; probs only when not None."""
    arrays: dict[str, np.ndarray] = {k: np.asarray(getattr(traj, k), dtype=dt)
                                     for k, dt in STEP_DATASETS.items() if k != "obs"}
    arrays = {"obs": _obs_array(traj.obs), **arrays}
    shape = arrays["obs"].shape[:2]
    if len(shape) != 2 or shape[0] < 1 or shape[1] < 1:
        raise HistoryFileError(
            f"trajectory obs has shape {shape}; a history needs (L, S) with L, S >= 1: "
            "collect at least one learner for at least one step"
        )
    for k, a in arrays.items():
        if a.shape[:2] != shape or (k != "obs" and a.ndim != 2):
            raise HistoryFileError(f"trajectory {k} has shape {a.shape}, obs has {shape}: "
                                   "pass arrays from one rollout")
    if traj.probs is not None:
        p = np.asarray(traj.probs, dtype=np.float32)
        if p.shape != (*shape, meta.num_actions):
            raise HistoryFileError(
                f"trajectory probs has shape {p.shape}, expected {(*shape, meta.num_actions)} "
                "(L, S, num_actions): check meta.num_actions")
        arrays[PROBS] = p
    if traj.next_obs is not None and arrays["obs"].ndim == 2:
        n = np.asarray(traj.next_obs, dtype=np.int32)
        if n.shape != shape:
            raise HistoryFileError(f"trajectory next_obs has shape {n.shape}, obs has {shape}: "
                                   "pass arrays from one rollout")
        arrays[NEXT_OBS] = n
    return arrays


def _learner_arrays(learners: LearnerInfo, L: int) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {k: np.asarray(getattr(learners, k), dtype=dt)
                                  for k, dt in LEARNER_DATASETS.items()}
    for k, a in out.items():
        if a.shape != (L,):
            raise HistoryFileError(f"learner info {k} has shape {a.shape}, expected ({L},): "
                                   "give one entry per learner (row of the trajectory)")
    for k, a in learners.task_params.items():
        if np.ndim(a) < 1 or np.shape(a)[0] != L:
            raise HistoryFileError(f"task_params leaf {k!r} has shape {np.shape(a)}; "
                                   f"its leading axis must be L={L}")
    return out


def _dataset(f: h5py.Group, name: str, a: np.ndarray, chunk_steps: int | None) -> None:
    """Create one dataset, always with a fletcher32 checksum (a flipped byte is an error
    on read, never a wrong value): chunked (1, chunk_steps, ...) and compressed when
    ``chunk_steps`` is given, else one uncompressed chunk (the small per-learner arrays)."""
    kw: dict[str, Any] = {"track_times": False}
    if a.size > 0 and a.ndim >= 1:
        if chunk_steps is not None:
            chunks = (1, min(chunk_steps, a.shape[1]), *a.shape[2:])
            kw.update(chunks=chunks, compression="gzip", compression_opts=GZIP_LEVEL,
                      shuffle=True)
        else:  # whole rows, at most ~64 MiB a chunk (HDF5 caps a chunk at 4 GiB)
            row = max(1, a.nbytes // a.shape[0])
            kw.update(chunks=(max(1, min(a.shape[0], _SMALL_CHUNK_BYTES // row)), *a.shape[1:]))
        kw.update(fletcher32=True)
    f.create_dataset(name, data=a, **kw)


def _group(f: h5py.File, name: str) -> h5py.Group:
    """A group without timestamps (h5py's create_group always records them)."""
    gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
    gcpl.set_obj_track_times(False)
    return h5py.Group(h5py.h5g.create(f.id, name.encode(), gcpl=gcpl))


def write_history(
    path: str | Path,
    traj: Trajectory,
    meta: HistoryMeta,
    learners: LearnerInfo,
    *,
    chunk_steps: int = DEFAULT_CHUNK_STEPS,
) -> Path:
    """Write one history file atomically; returns its path.

    ``traj``: arrays (L, S) (``probs`` (L, S, A), or None when the teacher has none);
    ``learners``: per-learner info, leading axis L. Episode arrays are computed here.
    Nothing appears at ``path`` unless the whole file was written, flushed and fsynced.

    HDF5 builds the file in memory (the same bytes its disk driver writes) and
    :func:`~outlearn.atomic.atomic_write_bytes` writes them: a full disk is then one
    :class:`~outlearn.errors.DiskFullError`, never an HDF5 library left in a broken state
    (which crashed the process at exit).
    """
    if chunk_steps < 1:
        raise HistoryFileError(f"chunk_steps={chunk_steps}: use a positive chunk length")
    arrays = _step_arrays(traj, meta)
    L = arrays["obs"].shape[0]
    per_learner = _learner_arrays(learners, L)
    ret, lens = episode_returns(arrays["rewards"], arrays["terminated"], arrays["truncated"])
    path = Path(path)
    try:
        with h5py.File(str(temp_name(path)), "w", driver="core", backing_store=False,
                       block_size=_CORE_BLOCK, libver=LIBVER) as f:
            for name, a in arrays.items():
                _dataset(f, name, a, chunk_steps)
            _dataset(f, "episode_returns", ret, chunk_steps)
            _dataset(f, "episode_lengths", lens, chunk_steps)
            for name, a in per_learner.items():
                _dataset(f, name, a, None)
            g = _group(f, TASK_PARAMS_GROUP)
            for name in sorted(learners.task_params):
                _dataset(g, name, np.asarray(learners.task_params[name]), None)
            for k, v in meta.to_attrs().items():
                f.attrs[k] = v
            f.flush()
            f.attrs[COMPLETE_ATTR] = True  # last: a file without it was interrupted
            f.flush()
            image = f.id.get_file_image()
    except (OSError, RuntimeError) as err:
        if is_disk_full(err):
            raise disk_full_error(path) from err
        raise HistoryFileError(f"cannot build history file {path} in memory: {err}") from err
    try:
        atomic_write_bytes(path, image)
    except OSError as err:
        raise HistoryFileError(f"cannot write history file {path}: {err}. "
                               "Check that its directory is writable.") from err
    return path


class History:
    """A read-only history file. Use as a context manager; datasets are read lazily.

    ``History(path)`` validates the file (see :mod:`outlearn.histories.validate`);
    ``verify`` ("auto", True, False) also reads every chunk and checks its checksum
    ("auto": files up to 32 MiB). ``path`` may be an open binary file object.
    """

    def __init__(self, path: str | Path | IO[bytes], *, verify: bool | str = "auto"):
        # a Path, or the file object it was opened from
        self.path: Any = path if hasattr(path, "read") else Path(path)
        self._f, self.meta = open_validated(self.path)
        self._cache: dict[str, np.ndarray] = {}
        names = [*STEP_DATASETS, *(k for k in OPTIONAL_STEP_DATASETS if k in self._f)]
        self._steps = {k: self._f[k] for k in names}  # handles: looking them up is slow
        self._shape = tuple(int(n) for n in self._steps["obs"].shape[:2])
        if verify is True or (verify == "auto" and self._size() <= VERIFY_AUTO_BYTES):
            try:
                self.verify()
            except BaseException:
                self.close()
                raise

    # -- lifecycle ---------------------------------------------------------------
    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None

    def __enter__(self) -> History:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _size(self) -> int:
        return os.path.getsize(self.path) if isinstance(self.path, Path) else 0

    @property
    def file(self) -> h5py.File:
        if self._f is None:
            raise HistoryFileError(f"history {self.path} is closed: open it again with History()")
        return self._f

    # -- shape and small arrays --------------------------------------------------
    @property
    def num_learners(self) -> int:
        return self._shape[0]

    @property
    def num_steps(self) -> int:
        return self._shape[1]

    @property
    def num_episodes(self) -> int:
        """E: the largest number of completed episodes of any learner."""
        return int(self.file["episode_returns"].shape[1])

    @property
    def obs_shape(self) -> tuple[int, ...]:
        """Shape of one observation: () for index observations, the frame's otherwise."""
        return tuple(int(n) for n in self._steps["obs"].shape[2:])

    @property
    def has_frames(self) -> bool:
        """True when the observations are frames (L, S, *obs_shape), not indices (L, S)."""
        return self.obs_shape != ()

    @property
    def has_probs(self) -> bool:
        return PROBS in self._steps

    @property
    def has_next_obs(self) -> bool:
        """Whether the file records the observation each step ended in (``next_obs``)."""
        return NEXT_OBS in self._steps

    def _small(self, name: str) -> np.ndarray:
        if name not in self._cache:
            with read_guard(self.path):
                self._cache[name] = self.file[name][()]
        return self._cache[name]

    @property
    def task_ids(self) -> np.ndarray:
        """int64 (L,)"""
        return self._small("task_ids")

    @property
    def split(self) -> np.ndarray:
        """uint8 (L,): 0 train, 1 test"""
        return self._small("split")

    @property
    def optimal_return(self) -> np.ndarray:
        """float32 (L,)"""
        return self._small("optimal_return")

    @property
    def learner_seeds(self) -> np.ndarray:
        """uint32 (L,)"""
        return self._small("learner_seeds")

    @property
    def episode_returns(self) -> np.ndarray:
        """float32 (L, E), NaN after a learner's last completed episode"""
        return self._small("episode_returns")

    @property
    def episode_lengths(self) -> np.ndarray:
        """int32 (L, E), 0 after a learner's last completed episode"""
        return self._small("episode_lengths")

    @property
    def task_params(self) -> dict[str, np.ndarray]:
        """Each task-pytree leaf by its path, leading axis L."""
        with read_guard(self.path):
            return {k: v[()] for k, v in self.file[TASK_PARAMS_GROUP].items()}

    def learner_info(self) -> LearnerInfo:
        return LearnerInfo(self.task_ids, self.split, self.optimal_return,
                           self.learner_seeds, self.task_params)

    def learners(self, split: str | None = None) -> np.ndarray:
        """Indices (int64) of the learners on ``split`` ("train", "test" or None: all)."""
        if split is None:
            return np.arange(self.num_learners, dtype=np.int64)
        return np.flatnonzero(self.split == split_code(split)).astype(np.int64)

    # -- step data ---------------------------------------------------------------
    @property
    def step_fields(self) -> list[str]:
        """Names of the per-step datasets in this file (probs, next_obs only when present)."""
        return list(self._steps)

    def dataset(self, name: str) -> h5py.Dataset:
        """The lazy h5py dataset ``name`` (slice it to read)."""
        if name not in self.file:
            raise HistoryFileError(f"history {self.path} has no dataset {name!r}; "
                                   f"it has {sorted(self.file)}")
        return self.file[name]

    def window(self, learner: int, start: int, length: int) -> dict[str, np.ndarray]:
        """Steps ``[start, start + length)`` of one learner: each field (length,),
        probs (length, A), frames (length, *obs_shape). Reads only the chunks those steps lie in."""
        self.file  # noqa: B018  (raises a clear error once closed)
        L, S = self._shape
        if not 0 <= learner < L:
            raise HistoryFileError(f"learner {learner} out of range: this history has {L}")
        if length < 1 or start < 0 or start + length > S:
            raise HistoryFileError(
                f"window start={start} length={length} does not fit in num_steps={S}: "
                f"need 0 <= start and start + length <= {S}")
        with read_guard(self.path):
            return {k: ds[learner, start : start + length] for k, ds in self._steps.items()}

    def read_steps(self, name: str, learners: np.ndarray | slice | None = None) -> np.ndarray:
        """A whole per-step dataset for some learners (sorted indices or a slice)."""
        sel = slice(None) if learners is None else learners
        with read_guard(self.path):
            return self.dataset(name)[sel]

    def trajectory(self) -> Trajectory:
        """All per-step arrays as a Trajectory (probs None when absent). Small files."""
        a = {k: self.read_steps(k) for k in self.step_fields}
        return Trajectory(a["obs"], a["actions"], a["rewards"], a["terminated"],
                          a["truncated"], a.get(PROBS), a["optimal_actions"],
                          a["expected_rewards"], a.get(NEXT_OBS))

    def load_all(self) -> dict[str, np.ndarray]:
        """Every dataset in memory, task params as ``task_params/<leaf>``. Small files."""
        names = [*self.step_fields, *EPISODE_DATASETS, *LEARNER_DATASETS]
        out = {k: self.read_steps(k) for k in names}
        out.update({f"{TASK_PARAMS_GROUP}/{k}": v for k, v in self.task_params.items()})
        return out

    def verify(self) -> None:
        """Read every dataset (blocks of learners, checksums included); raise on damage."""
        found: list[str] = []
        self.file.visititems(lambda n, o: found.append(n) if isinstance(o, h5py.Dataset) else None)
        with read_guard(self.path):
            for name in found:
                ds = self.file[name]
                if ds.ndim == 0 or ds.size == 0:
                    ds[()]
                    continue
                row = max(1, ds.size // ds.shape[0] * ds.dtype.itemsize)
                block = max(1, (64 * 2**20) // row)
                for lo in range(0, ds.shape[0], block):
                    ds[lo : lo + block]

    def __repr__(self) -> str:
        state = "closed" if self._f is None else f"L={self.num_learners} S={self.num_steps}"
        who = f"{self.meta.env_name}/{self.meta.teacher_name}"
        return f"History({str(self.path)!r}, {who}, {state})"
