"""Bad input, damaged files, a full disk, absurd sizes: one clear error, no lost work.

Every test here is marked ``badinput`` (``make test-badinput``; the whole file runs in
well under a minute) and also runs in the default ``make test``.
"""

from __future__ import annotations

import numpy as np
import pytest

from outlearn.errors import HistoryFileError
from outlearn.histories import History, HistoryMeta, LearnerInfo, cut_at_step, write_history
from outlearn.rollout import Trajectory

pytestmark = pytest.mark.badinput

L, S, A, NOBS, EP = 6, 60, 3, 4, 10


def small_history(path, seed: int = 0):
    """A small valid history (6 learners, 60 steps, 3 actions, 4 observations)."""
    rng = np.random.default_rng(seed)
    obs = rng.integers(0, NOBS, size=(L, S)).astype(np.int32)
    greedy = obs % A
    actions = np.where(rng.random((L, S)) < 0.8, greedy, rng.integers(0, A, (L, S)))
    probs = np.full((L, S, A), 0.2 / A, np.float32)
    np.put_along_axis(probs, greedy[..., None], 0.8 + 0.2 / A, axis=-1)
    rewards = (actions == greedy).astype(np.float32)
    trunc = np.zeros((L, S), bool)
    trunc[:, EP - 1 :: EP] = True
    traj = Trajectory(obs, actions.astype(np.int32), rewards, np.zeros((L, S), bool), trunc,
                      probs, greedy.astype(np.int32), rewards)
    meta = HistoryMeta(env_name="toy", num_actions=A, num_obs=NOBS, episode_len=EP,
                       teacher_name="synthetic", seed=seed)
    info = LearnerInfo(np.arange(L, dtype=np.int64), np.array([0, 0, 0, 0, 0, 1], np.uint8),
                       np.ones(L, np.float32), np.arange(L, dtype=np.uint32),
                       {"goal": np.arange(2 * L, dtype=np.int32).reshape(L, 2)})
    return write_history(path, traj, meta, info, chunk_steps=32)


# ------------------------------------------------------------------ item 2: checksums
def _dataset_names(path) -> list[str]:
    import h5py

    names: list[str] = []
    with h5py.File(path, "r") as f:
        f.visititems(lambda n, o: names.append(n) if isinstance(o, h5py.Dataset) else None)
    return sorted(names)


def _data_offset(path, name: str) -> int:
    """The file offset of the first stored byte of dataset ``name`` (contiguous or chunked)."""
    import h5py

    with h5py.File(path, "r") as f:
        ds = f[name]
        if ds.chunks is None:
            return int(ds.id.get_offset())
        return int(ds.id.get_chunk_info(0).byte_offset)


def _read_everything(h: History) -> None:
    h.learner_info()
    h.load_all()
    h.episode_returns  # noqa: B018
    h.episode_lengths  # noqa: B018


def _same(a: History, b: History) -> None:
    x, y = a.load_all(), b.load_all()
    assert sorted(x) == sorted(y)
    for k in x:
        assert np.array_equal(x[k], y[k], equal_nan=x[k].dtype.kind == "f"), k


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    path = small_history(tmp_path_factory.mktemp("pristine") / "h.h5")
    return path, path.read_bytes()


def test_every_dataset_is_checksummed(pristine):
    import h5py

    path, _ = pristine
    with h5py.File(path, "r") as f:
        for name in _dataset_names(path):
            assert f[name].fletcher32, name


def test_a_flipped_byte_in_any_dataset_is_an_error_never_a_wrong_value(pristine, tmp_path):
    src, data = pristine
    names = _dataset_names(src)
    assert {"task_ids", "split", "optimal_return", "learner_seeds", "task_params/goal",
            "obs", "episode_returns"} <= set(names)
    with History(src) as h:
        good_cut = cut_at_step(h, 30, tmp_path / "good-cut.h5")
    for name in names:
        path = tmp_path / f"{name.replace('/', '_')}.h5"
        damaged = bytearray(data)
        at = _data_offset(src, name)
        damaged[at] ^= 0x5A
        path.write_bytes(bytes(damaged))
        with pytest.raises(HistoryFileError, match="corrupt"):
            History(path)  # small files are verified when opened
        with History(path, verify=False) as h:  # read lazily: the read itself refuses
            with pytest.raises(HistoryFileError, match=f"{path}.*corrupt"):
                _read_everything(h)
        # a transform never copies the damage into a new file: it refuses, or (damage in
        # what it does not read, e.g. the episode arrays it recomputes) writes what the
        # undamaged file gives
        with History(path, verify=False) as h:
            try:
                cut_at_step(h, 30, tmp_path / "cut.h5").close()
            except HistoryFileError as err:
                assert "corrupt" in str(err)
                assert not (tmp_path / "cut.h5").exists(), name
            else:
                assert name.startswith("episode_"), name
                with History(tmp_path / "cut.h5") as got:
                    _same(got, good_cut)
                (tmp_path / "cut.h5").unlink()
    good_cut.close()


def test_files_without_checksums_on_small_datasets_still_load(pristine, tmp_path):
    """Files written before the per-learner datasets had fletcher32 (same schema version)."""
    import h5py

    src, data = pristine
    path = tmp_path / "old.h5"
    path.write_bytes(data)
    with History(src) as h:
        want = h.learner_info()
    with h5py.File(path, "r+") as f:
        for name in ["task_ids", "split", "optimal_return", "learner_seeds", "task_params/goal"]:
            a = f[name][()]
            del f[name]
            f.create_dataset(name, data=a)  # contiguous, no filter: the old layout
            assert not f[name].fletcher32
    with History(path) as h:
        got = h.learner_info()
    for k in ["task_ids", "split", "optimal_return", "learner_seeds"]:
        assert np.array_equal(getattr(got, k), getattr(want, k)), k
    assert np.array_equal(got.task_params["goal"], want.task_params["goal"])
