"""History files: exact round trip, determinism, validation, atomic writes, transforms."""

from __future__ import annotations

import errno
import io
import time

import h5py
import numpy as np
import pytest

import outlearn.histories.io as hio
from outlearn.core import Trajectory
from outlearn.errors import ConfigError, DiskFullError, HistoryFileError
from outlearn.histories import (
    SCHEMA_VERSION,
    History,
    HistoryMeta,
    LearnerInfo,
    cut_at_performance,
    cut_at_step,
    episode_returns,
    keep_every_kth_episode,
    keep_train_tasks,
    write_history,
)

A = 5


def make_traj(seed: int, L: int = 4, S: int = 40, ep_len: int = 8, probs: bool = True):
    """Random arrays; learner 0 also terminates early at some steps (varying lengths)."""
    rng = np.random.default_rng(seed)
    t = np.arange(S)
    trunc = np.broadcast_to((t % ep_len) == ep_len - 1, (L, S)).copy()
    term = np.zeros((L, S), bool)
    term[0, [2, 13]] = True
    return Trajectory(
        obs=rng.integers(0, 81, (L, S)).astype(np.int32),
        actions=rng.integers(0, A, (L, S)).astype(np.int32),
        rewards=rng.random((L, S)).astype(np.float32),
        terminated=term,
        truncated=trunc & ~term,
        probs=rng.dirichlet(np.ones(A), (L, S)).astype(np.float32) if probs else None,
        optimal_actions=rng.integers(0, A, (L, S)).astype(np.int32),
        expected_rewards=rng.random((L, S)).astype(np.float32),
        next_obs=rng.integers(0, 81, (L, S)).astype(np.int32),
    )


def make_meta(**kw) -> HistoryMeta:
    base = dict(env_name="darkroom", num_actions=A, num_obs=81, episode_len=8,
                teacher_name="qlearning", seed=3, env_kwargs={"size": 9, "start": "centre"},
                teacher_kwargs={"learning_rate": 0.5, "eps": [1.0, 0.1]},
                config_json='{"a": 1}', created_by="pytest", code_version="0.1.0+test")
    base.update(kw)
    return HistoryMeta(**base)


def make_info(L: int = 4) -> LearnerInfo:
    return LearnerInfo(
        task_ids=np.arange(10, 10 + L, dtype=np.int64),
        split=(np.arange(L) >= L // 2).astype(np.uint8),
        optimal_return=np.linspace(1.0, 2.0, L).astype(np.float32),
        learner_seeds=np.arange(L, dtype=np.uint32) * 7,
        task_params={"goal": np.arange(L, dtype=np.int32),
                     "pair.key": np.arange(2 * L, dtype=np.float32).reshape(L, 2)},
    )


@pytest.fixture
def written(tmp_path):
    traj = make_traj(0)
    path = write_history(tmp_path / "h.h5", traj, make_meta(), make_info(), chunk_steps=16)
    return path, traj


def test_round_trip_is_exact(written):
    path, traj = written
    with History(path) as h:
        assert (h.num_learners, h.num_steps, h.has_probs) == (4, 40, True)
        assert h.meta == make_meta()
        assert h.meta.schema_version == SCHEMA_VERSION and h.meta.config == {"a": 1}
        for name in Trajectory._fields:
            got, want = getattr(h.trajectory(), name), getattr(traj, name)
            assert got.dtype == want.dtype and np.array_equal(got, want), name
        info = make_info()
        for name in ("task_ids", "split", "optimal_return", "learner_seeds"):
            got = getattr(h, name)
            assert got.dtype == getattr(info, name).dtype
            assert np.array_equal(got, getattr(info, name))
        assert h.task_params.keys() == info.task_params.keys()
        for k, v in info.task_params.items():
            assert np.array_equal(h.task_params[k], v) and h.task_params[k].dtype == v.dtype
        ret, lens = episode_returns(traj.rewards, traj.terminated, traj.truncated)
        assert np.array_equal(h.episode_returns, ret, equal_nan=True)
        assert np.array_equal(h.episode_lengths, lens)
        assert list(h.learners("train")) == [0, 1] and list(h.learners("test")) == [2, 3]
        assert bool(h.file.attrs["complete"]) and h.file["obs"].chunks == (1, 16)
        w = h.window(2, 5, 11)
        assert set(w) == set(Trajectory._fields) and w["probs"].shape == (11, A)
        assert np.array_equal(w["rewards"], traj.rewards[2, 5:16])
        all_ = h.load_all()
        assert np.array_equal(all_["task_params/goal"], info.task_params["goal"])


def test_probs_are_optional(tmp_path):
    traj = make_traj(1, probs=False)
    with History(write_history(tmp_path / "n.h5", traj, make_meta(), make_info())) as h:
        assert not h.has_probs and "probs" not in h.window(0, 0, 3)
        assert h.trajectory().probs is None


def test_same_input_gives_byte_identical_file_and_other_seed_differs(tmp_path):
    a = write_history(tmp_path / "a.h5", make_traj(0), make_meta(), make_info())
    time.sleep(1.1)  # a timestamp anywhere in the file would now differ
    b = write_history(tmp_path / "b.h5", make_traj(0), make_meta(), make_info())
    c = write_history(tmp_path / "c.h5", make_traj(1), make_meta(), make_info())
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()


def test_episode_returns_by_hand():
    rewards = np.array([[1, 2, 3, 4, 5], [1, 1, 1, 1, 1]], np.float32)
    term = np.array([[0, 1, 0, 0, 0], [0, 0, 0, 0, 0]], bool)
    trunc = np.array([[0, 0, 0, 0, 1], [0, 0, 1, 0, 0]], bool)
    ret, lens = episode_returns(rewards, term, trunc)
    assert ret.dtype == np.float32 and lens.dtype == np.int32
    assert np.array_equal(ret, [[3, 12], [3, np.nan]], equal_nan=True)
    assert np.array_equal(lens, [[2, 3], [3, 0]])  # learner 1's last 2 steps: unfinished


def _edit(path, fn):
    with h5py.File(path, "r+") as f:
        fn(f)


@pytest.mark.parametrize(
    "damage, message",
    [
        (lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
         "truncated or corrupt"),
        (lambda p: p.write_bytes(b"hello, not hdf5"), "not an HDF5 file"),
        (lambda p: p.write_bytes(b""), "not an HDF5 file \\(it is empty\\)"),
        (lambda p: _edit(p, lambda f: f.attrs.__delitem__("complete")),
         "incomplete: its write was interrupted"),
        (lambda p: _edit(p, lambda f: f.attrs.__setitem__("schema_version", 999)),
         "has schema_version 999; this outlearn reads schema_version 1. Re-collect"),
        (lambda p: _edit(p, lambda f: f.__delitem__("rewards")), "lacks rewards"),
        (lambda p: p.unlink(), "does not exist"),
    ],
    ids=["truncated", "not-hdf5", "empty", "no-complete", "schema-999", "no-dataset", "missing"],
)
def test_bad_files_give_one_clear_error(written, damage, message):
    path, _ = written
    damage(path)
    with pytest.raises(HistoryFileError, match=message):
        History(path)


def test_corrupted_bytes_are_detected(written):
    path, _ = written
    data = bytearray(path.read_bytes())
    mid = len(data) // 2
    data[mid : mid + 64] = bytes((b + 1) % 256 for b in data[mid : mid + 64])
    path.write_bytes(bytes(data))
    with pytest.raises(HistoryFileError, match="corrupt"):
        History(path)  # small files are checksummed on open
    with pytest.raises(HistoryFileError, match="corrupt"):
        with History(path, verify=False) as h:
            h.load_all()


def test_interrupt_inside_the_write_leaves_nothing(tmp_path, monkeypatch):
    dst = tmp_path / "h.h5"
    calls = {"n": 0}
    real = hio._dataset

    def flaky(*args, **kw):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(*args, **kw)

    monkeypatch.setattr(hio, "_dataset", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_history(dst, make_traj(0), make_meta(), make_info())
    assert list(tmp_path.iterdir()) == []
    # an existing file at the destination survives an interrupted rewrite untouched
    monkeypatch.setattr(hio, "_dataset", real)
    write_history(dst, make_traj(0), make_meta(), make_info())
    before = dst.read_bytes()
    calls["n"] = 0
    monkeypatch.setattr(hio, "_dataset", flaky)
    with pytest.raises(KeyboardInterrupt):
        write_history(dst, make_traj(1), make_meta(), make_info())
    assert list(tmp_path.iterdir()) == [dst] and dst.read_bytes() == before


def test_full_disk_is_a_clear_error(tmp_path, monkeypatch):
    def full(*args, **kw):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(hio, "_dataset", full)
    with pytest.raises(DiskFullError, match="no space left on device writing .*h.h5: free "
                       "space and re-run; finished work is kept"):
        write_history(tmp_path / "h.h5", make_traj(0), make_meta(), make_info())
    assert list(tmp_path.iterdir()) == []


class CountingFile(io.FileIO):
    """A file object that counts the bytes HDF5 reads through it."""

    nread = 0

    def readinto(self, b):
        n = super().readinto(b)
        self.nread += n or 0
        return n

    def read(self, size=-1):
        out = super().read(size)
        self.nread += len(out)
        return out


def test_window_reads_only_the_chunks_it_touches(tmp_path):
    L, S, chunk = 2, 32768, 512
    traj = make_traj(2, L=L, S=S)
    path = write_history(tmp_path / "big.h5", traj, make_meta(), make_info(L), chunk_steps=chunk)
    start, length = 1000, 100  # steps 1000..1099: chunks 1 and 2 of learner 1
    with h5py.File(path, "r") as f:
        touched = sum(
            f[k].id.get_chunk_info_by_coord((1, c * chunk) + (0,) * (f[k].ndim - 2)).size
            for k in Trajectory._fields for c in (1, 2))
    fh = CountingFile(path, "r")
    with History(fh, verify=False) as h:
        fh.nread = 0
        w = h.window(1, start, length)
        assert np.array_equal(w["probs"], traj.probs[1, start : start + length])
        assert np.array_equal(w["obs"], traj.obs[1, start : start + length])
        nread = fh.nread
    fh.close()
    size = path.stat().st_size
    assert nread <= touched + 32 * 1024, (nread, touched)  # + B-tree nodes
    assert nread < size / 20, (nread, size)


def test_window_out_of_range_names_the_limit(written):
    path, _ = written
    with History(path) as h:
        with pytest.raises(HistoryFileError, match="num_steps=40"):
            h.window(0, 35, 10)
        with pytest.raises(HistoryFileError, match="this history has 4"):
            h.window(4, 0, 1)
    with pytest.raises(HistoryFileError, match="is closed"):
        h.window(0, 0, 1)


# --------------------------------------------------------------------- transforms


def fixed_traj(L: int, n_ep: int, ep_len: int, returns: np.ndarray) -> Trajectory:
    """Fixed-length episodes; obs = step index; reward on an episode's last step only,
    so episode ``e`` of learner ``l`` returns ``returns[l, e]``."""
    S = n_ep * ep_len
    t = np.arange(S)
    trunc = np.broadcast_to(t % ep_len == ep_len - 1, (L, S)).copy()
    rew = np.zeros((L, S), np.float32)
    rew[:, ep_len - 1 :: ep_len] = returns
    z = np.zeros((L, S), np.int32)
    return Trajectory(np.broadcast_to(t, (L, S)).astype(np.int32), z, rew, np.zeros((L, S), bool),
                      trunc, np.full((L, S, A), 1 / A, np.float32), z, rew)


def write_fixed(tmp_path, returns, ep_len=4, name="src.h5", opt=10.0):
    L, n_ep = returns.shape
    info = make_info(L)
    info = LearnerInfo(info.task_ids, info.split, np.full(L, opt, np.float32),
                       info.learner_seeds, info.task_params)
    traj = fixed_traj(L, n_ep, ep_len, returns)
    return write_history(tmp_path / name, traj, make_meta(episode_len=ep_len), info)


def test_cut_at_step(tmp_path):
    src = write_fixed(tmp_path, np.array([[1, 2, 3], [4, 5, 6]], np.float32))
    with cut_at_step(src, 6, tmp_path / "cut.h5") as h:
        assert h.num_steps == 6 and list(h.window(0, 0, 6)["obs"]) == [0, 1, 2, 3, 4, 5]
        assert np.array_equal(h.episode_returns, [[1], [4]])  # episode 2 is unfinished
        assert np.array_equal(h.episode_lengths, [[4], [4]])
        (prov,) = h.meta.provenance
        assert prov["transform"] == "cut_at_step" and prov["args"] == {"step": 6}
        assert prov["source"] == str(src.resolve())
        assert np.array_equal(h.task_ids, make_info(2).task_ids)
    with pytest.raises(ConfigError, match="num_steps=12"):
        cut_at_step(src, 13, tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="num_steps=12"):
        cut_at_step(src, 0, tmp_path / "x.h5")
    with pytest.raises(ConfigError, match="is the source file"):
        cut_at_step(src, 4, src)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.h5", "src.h5"]


def test_cut_at_performance_uses_the_smoothed_mean_curve(tmp_path):
    # mean across the two learners per episode: 0, 1, 2, 3, 4, 5; optimal 10
    returns = np.array([[0, 0, 2, 2, 4, 4], [0, 2, 2, 4, 4, 6]], np.float32)
    src = write_fixed(tmp_path, returns, ep_len=4)
    h, step = cut_at_performance(src, 0.3, tmp_path / "w1.h5", window=1)
    with h:  # first mean >= 3 at episode 3 -> cut after it
        assert step == 16 and h.num_steps == 16 and h.num_episodes == 4
        assert h.meta.provenance[0]["args"]["episode"] == 3
    h, step = cut_at_performance(src, 0.3, tmp_path / "w2.h5", window=2)
    with h:  # smoothed (j + 0.5) >= 3 first at j=3, i.e. episodes 3..4 -> cut after 4
        assert step == 20
    with pytest.raises(ConfigError, match="never reached.*0.5 of optimal"):
        cut_at_performance(src, 0.9, tmp_path / "x.h5", window=1)
    with pytest.raises(ConfigError, match="window=7"):
        cut_at_performance(src, 0.1, tmp_path / "x.h5", window=7)


def test_cut_at_performance_with_varying_episode_lengths(tmp_path):
    # learner 0 episodes end at steps 2, 6, 9; learner 1 at steps 4, 8 (1-based)
    S = 10
    term = np.zeros((2, S), bool)
    term[0, [1, 5, 8]] = True
    term[1, [3, 7]] = True
    rew = np.where(term, np.float32(1.0), np.float32(0.0)).astype(np.float32)
    rew[0, 5] = 5.0
    rew[1, 7] = 5.0
    z = np.zeros((2, S), np.int32)
    traj = Trajectory(z, z, rew, term, np.zeros((2, S), bool), None, z, rew)
    src = write_history(tmp_path / "v.h5", traj, make_meta(), make_info(2))
    h, step = cut_at_performance(src, 0.5, tmp_path / "c.h5", window=1)
    with h:  # mean curve 1, 5, 1; optimal mean 1.5 -> target 0.75 -> episode 0
        assert step == 3  # ceil(mean(2, 4))
    h, step = cut_at_performance(src, 2.0, tmp_path / "d.h5", window=1)
    with h:  # target 3 -> episode 1, ends at steps 6 and 8
        assert step == 7 and np.array_equal(h.episode_returns, [[1, 5], [1, np.nan]],
                                            equal_nan=True)


def test_keep_every_kth_episode(tmp_path):
    returns = np.array([[0, 1, 2, 3, 4, 5], [10, 11, 12, 13, 14, 15]], np.float32)
    src = write_fixed(tmp_path, returns, ep_len=2)
    with keep_every_kth_episode(src, 2, tmp_path / "k2.h5") as h:
        assert h.num_steps == 6
        assert list(h.window(0, 0, 6)["obs"]) == [0, 1, 4, 5, 8, 9]
        assert np.array_equal(h.episode_returns, returns[:, ::2])
        assert np.array_equal(h.episode_lengths, np.full((2, 3), 2))
        assert h.meta.provenance[0]["args"] == {"k": 2, "offset": 0}
    with keep_every_kth_episode(src, 3, tmp_path / "k3.h5", offset=2) as h:
        assert np.array_equal(h.episode_returns, returns[:, 2::3])
    with keep_every_kth_episode(src, 1, tmp_path / "k1.h5") as h:
        assert np.array_equal(h.episode_returns, returns) and h.num_steps == 12
    with pytest.raises(ConfigError, match="keeps no complete episode"):
        keep_every_kth_episode(src, 7, tmp_path / "x.h5", offset=6)
    with pytest.raises(ConfigError, match="k >= 1"):
        keep_every_kth_episode(src, 0, tmp_path / "x.h5")


def test_keep_every_kth_with_varying_lengths_cuts_to_the_fewest_steps(tmp_path):
    S = 8
    term = np.zeros((2, S), bool)
    term[0, [0, 2, 5, 7]] = True  # episode lengths 1, 2, 3, 2
    term[1, [1, 3, 5, 7]] = True  # 2, 2, 2, 2
    rew = np.arange(2 * S, dtype=np.float32).reshape(2, S)
    z = np.zeros((2, S), np.int32)
    traj = Trajectory(z, z, rew, term, np.zeros((2, S), bool), None, z, rew)
    src = write_history(tmp_path / "v.h5", traj, make_meta(), make_info(2))
    with keep_every_kth_episode(src, 2, tmp_path / "k.h5") as h:
        # learner 0 keeps episodes 0, 2 (steps 0, 3, 4, 5); learner 1 keeps 0, 2 (0, 1, 4, 5)
        assert h.num_steps == 4
        assert np.array_equal(h.window(0, 0, 4)["rewards"], [0, 3, 4, 5])
        assert np.array_equal(h.window(1, 0, 4)["rewards"], [8, 9, 12, 13])
        assert np.array_equal(h.episode_returns, [[0, 12], [17, 25]])


def test_keep_train_tasks_keeps_the_first_train_tasks_and_every_test_learner(tmp_path):
    # 6 learners: train tasks 10, 10, 11, 12 (two learners on task 10), test tasks 20, 21
    info = LearnerInfo(
        task_ids=np.array([10, 10, 11, 12, 20, 21], np.int64),
        split=np.array([0, 0, 0, 0, 1, 1], np.uint8),
        optimal_return=np.arange(6, dtype=np.float32), learner_seeds=np.arange(6, dtype=np.uint32),
        task_params={"goal": np.arange(6, dtype=np.int32)})
    traj = make_traj(1, L=6)
    src = write_history(tmp_path / "src.h5", traj, make_meta(), info, chunk_steps=16)
    with keep_train_tasks(src, 2, tmp_path / "k.h5") as h:
        assert list(h.task_ids) == [10, 10, 11, 20, 21] and list(h.split) == [0, 0, 0, 1, 1]
        assert list(h.task_params["goal"]) == [0, 1, 2, 4, 5]
        kept = [0, 1, 2, 4, 5]
        assert np.array_equal(h.dataset("obs")[:], traj.obs[kept])
        assert np.array_equal(h.dataset("probs")[:], traj.probs[kept])
        with History(src) as full:
            assert np.array_equal(h.episode_returns, full.episode_returns[kept], equal_nan=True)
        (prov,) = h.meta.provenance
        assert prov["transform"] == "keep_train_tasks" and prov["args"] == {"n": 2}
    with pytest.raises(ConfigError, match="has 3 train tasks"):
        keep_train_tasks(src, 4, tmp_path / "x.h5")
