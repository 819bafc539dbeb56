"""Bad input, damaged files, a full disk, absurd sizes: one clear error, no lost work.

Every test here is marked ``badinput`` (``make test-badinput``; the whole file runs in
well under a minute) and also runs in the default ``make test``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from histories_tiny import synthetic_history

from outlearn.errors import HistoryFileError
from outlearn.histories import History, cut_at_step

pytestmark = pytest.mark.badinput

L, S, A, NOBS, EP = 6, 60, 3, 4, 10


def small_history(path, seed: int = 0):
    """A small valid history (6 learners, 60 steps, 3 actions, 4 observations, a task
    parameter per learner: :mod:`histories_tiny`)."""
    return synthetic_history(path, seed=seed, steps=S, task_params=True)


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


# ------------------------------------------------------------------ shared small runs
def collect_data(out, **over) -> dict:
    """A tiny collection config (3x3 Dark Room, 5 tasks x 2 learners, 20 steps)."""
    data = {
        "seed": 0, "learners_per_task": 2, "num_episodes": 4, "out": str(out),
        "chunk_steps": 20,
        "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
        "teacher": {"name": "qlearning", "kwargs": {}},
        "tasks": {"seed": 1, "n_train": 3, "n_test": 2},
    }
    for k, v in over.items():
        data[k] = {**data[k], **v} if isinstance(v, dict) and k in data else v
    return data


def train_data(tmp_path, history=None, out="run", **over) -> dict:
    """A tiny training config (one-layer AD, 20 steps) on :func:`small_history`."""
    d = {
        "history": str(tmp_path / "h.h5" if history is None else history),
        "env": "toy",
        "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 2, "d_model": 16,
                                            "d_ff": 32}},
        "data": {"context_len": 12, "batch_size": 4, "val_fraction": 0.2, "val_batches": 1},
        "optim": {"lr": 3e-3, "warmup_steps": 3, "total_steps": 20},
        "seed": 3, "out": str(tmp_path / out) if str(out) else "", "checkpoint_every": 5,
        "val_every": 5,
        "threads": 1,
    }
    for k, v in over.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) and k in d else v
    return d


def eval_data(out_dir, **over) -> dict:
    data = {
        "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}},
        "tasks": {"seed": 0, "n_train": 2, "n_test": 2, "split": "test"},
        "learners": [{"name": "random", "kind": "baseline", "baseline": "random"}],
        "num_episodes": 3, "seeds": [0], "out_dir": str(out_dir),
    }
    data.update(over)
    return data


def tcfg(tmp_path, **over):
    from outlearn.config import parse_config
    from outlearn.students.train import TrainConfig

    return parse_config(TrainConfig, train_data(tmp_path, **over))


@pytest.fixture
def hist(tmp_path):
    return small_history(tmp_path / "h.h5")


@pytest.fixture
def no_work(monkeypatch):
    """Make every entry point's real work fail loudly: a refusal must come before it."""
    stop_work(monkeypatch)


def stop_work(monkeypatch) -> None:
    """What :func:`no_work` does, for a test that first does some work of its own."""
    import importlib

    ev = importlib.import_module("outlearn.evaluation.evaluate")
    ro = importlib.import_module("outlearn.rollout")
    tr = importlib.import_module("outlearn.students.train")

    def started(*a, **k):
        raise AssertionError("the work started before the refusal")

    monkeypatch.setattr(ro, "rollout_scan", started)
    monkeypatch.setattr(ev, "_run_all", started)
    monkeypatch.setattr(tr, "_Run", started)


def _lines(path) -> list[dict]:
    import json

    return [json.loads(x) for x in path.read_text().splitlines()]


# ------------------------------------------------------------------ item 4: seeds, paths
SEED_CASES = [
    ("collect", "seed", lambda v: {"seed": v}),
    ("collect", "tasks.seed", lambda v: {"tasks": {"seed": v}}),
    ("train", "seed", lambda v: {"seed": v}),
    ("eval", "seeds.1", lambda v: {"seeds": [0, v]}),
    ("eval", "tasks.seed", lambda v: {"tasks": {"seed": v, "n_train": 2, "n_test": 2}}),
]


@pytest.mark.parametrize("bad", [-1, 2**63, 2**70])
@pytest.mark.parametrize("kind, field, over", SEED_CASES,
                         ids=[f"{k}-{f}" for k, f, _ in SEED_CASES])
def test_seeds_out_of_range_are_refused_at_validation(tmp_path, kind, field, over, bad):
    from outlearn.collect import CollectConfig
    from outlearn.config import parse_config
    from outlearn.errors import ConfigError
    from outlearn.evaluation.evaluate import EvalConfig
    from outlearn.students.train import TrainConfig

    model, data = {"collect": (CollectConfig, collect_data(tmp_path / "h.h5", **over(bad))),
                   "train": (TrainConfig, train_data(tmp_path, **over(bad))),
                   "eval": (EvalConfig, eval_data(tmp_path, **over(bad)))}[kind]
    with pytest.raises(ConfigError, match=rf"key '{field}'"):
        parse_config(model, data)
    ok = {"collect": (CollectConfig, collect_data(tmp_path / "h.h5", **over(2**63 - 1))),
          "train": (TrainConfig, train_data(tmp_path, **over(2**63 - 1))),
          "eval": (EvalConfig, eval_data(tmp_path, **over(2**63 - 1)))}[kind]
    parse_config(*ok)  # the largest seed is fine


def test_eval_seeds_above_32_bits_do_not_alias_small_ones():
    import jax

    from outlearn.rng import unit_keys

    ids = np.arange(3)
    small, big = unit_keys(5, ids), unit_keys(2**32 + 5, ids)
    assert not np.array_equal(jax.random.key_data(small), jax.random.key_data(big))
    assert np.array_equal(jax.random.key_data(unit_keys(5, ids)), jax.random.key_data(small))


def _unwritable(directory, monkeypatch) -> None:
    """Make ``directory`` refuse new files: by its mode, and (root ignores modes) by
    failing the creation of files in it."""
    import errno
    import os

    import outlearn.atomic as at

    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o500)
    if os.geteuid() == 0:
        real = os.open

        def guarded(path, flags, *a, **k):
            if os.path.dirname(os.path.abspath(path)) == str(directory) and flags & os.O_CREAT:
                raise PermissionError(errno.EACCES, "Permission denied", str(path))
            return real(path, flags, *a, **k)

        monkeypatch.setattr(at.os, "open", guarded)


@pytest.mark.parametrize("case", ["parent-is-a-file", "empty", "unwritable", "is-a-dir"])
def test_bad_collect_out_is_refused_before_collecting(tmp_path, monkeypatch, no_work, case):
    from outlearn.collect import CollectConfig, collect
    from outlearn.config import parse_config
    from outlearn.errors import ConfigError

    (tmp_path / "file").write_text("x")
    out = {"parent-is-a-file": tmp_path / "file" / "h.h5", "empty": "",
           "unwritable": tmp_path / "ro" / "sub" / "h.h5", "is-a-dir": tmp_path}[case]
    if case == "unwritable":
        _unwritable(tmp_path / "ro", monkeypatch)
    message = {"parent-is-a-file": "is a file, not a directory", "empty": "empty path",
               "unwritable": "cannot write in directory", "is-a-dir": "is a directory"}[case]
    try:
        with pytest.raises(ConfigError, match=rf"out.*{message}"):
            collect(parse_config(CollectConfig, collect_data(out)), progress=False)
    finally:
        (tmp_path / "ro").chmod(0o700) if (tmp_path / "ro").exists() else None


@pytest.mark.parametrize("case", ["parent-is-a-file", "empty", "unwritable"])
def test_bad_train_and_eval_outputs_are_refused_before_work(tmp_path, hist, monkeypatch,
                                                           no_work, case):
    from outlearn.config import parse_config
    from outlearn.errors import ConfigError
    from outlearn.evaluation.evaluate import EvalConfig, evaluate
    from outlearn.students.train import TrainConfig, train

    (tmp_path / "file").write_text("x")
    out = {"parent-is-a-file": tmp_path / "file" / "run", "empty": "",
           "unwritable": tmp_path / "ro" / "run"}[case]
    if case == "unwritable":
        _unwritable(tmp_path / "ro", monkeypatch)
    message = {"parent-is-a-file": "is a file, not a directory", "empty": "empty path",
               "unwritable": "cannot write in directory"}[case]
    try:
        with pytest.raises(ConfigError, match=rf"out.*{message}"):
            train(parse_config(TrainConfig, train_data(tmp_path, out=out)), quiet=True)
        with pytest.raises(ConfigError, match=rf"out_dir.*{message}"):
            evaluate(parse_config(EvalConfig, eval_data(out)), progress=False)
    finally:
        (tmp_path / "ro").chmod(0o700) if (tmp_path / "ro").exists() else None


# ------------------------------------------------------------------ item 5: full disk
def _enospc(*args):
    import errno

    return OSError(errno.ENOSPC, "No space left on device", *args)


class _FullFile:
    """A file whose writes put part of the data on disk, then fail as a full disk does."""

    def __init__(self, fh):
        self.fh = fh

    def write(self, data):
        self.fh.write(bytes(memoryview(data)[: len(data) // 2]))
        raise _enospc()

    def __getattr__(self, name):
        return getattr(self.fh, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.fh.close()


def _full_disk_for(monkeypatch, suffix: str) -> None:
    """Writes through outlearn.atomic of files whose name ends in ``suffix`` fail."""
    import builtins

    import outlearn.atomic as at

    def fake_open(path, mode="r", *a, **k):
        fh = builtins.open(path, mode, *a, **k)
        if "w" in mode and str(path).split(".tmp-")[0].endswith(suffix):
            return _FullFile(fh)
        return fh

    monkeypatch.setattr(at, "open", fake_open, raising=False)


FULL = r"no space left on device writing {}: free space and re-run; finished work is kept"


def test_full_disk_in_collect_is_one_message_and_a_clean_exit(tmp_path):
    """In a child process, as the CLI runs: exit 2 with the message, no traceback, no
    crash at exit, nothing left behind."""
    import subprocess
    import sys
    import textwrap

    cfg = tmp_path / "c.toml"
    cfg.write_text(textwrap.dedent(f"""\
        seed = 0
        learners_per_task = 2
        num_episodes = 4
        out = "{tmp_path / 'out' / 'h.h5'}"
        chunk_steps = 20
        [env]
        name = "darkroom"
        kwargs = {{ size = 3, episode_len = 5 }}
        [teacher]
        name = "qlearning"
        [tasks]
        seed = 1
        n_train = 3
        n_test = 2
        """))
    script = textwrap.dedent(f"""\
        import pytest, sys
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        import test_bad_input as t
        mp = pytest.MonkeyPatch()
        t._full_disk_for(mp, ".h5")
        from outlearn.cli import app
        app(["collect", {str(cfg)!r}])
        """)
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 2, (r.returncode, r.stderr[-3000:])
    assert "Traceback" not in r.stderr and "Segmentation" not in r.stderr
    assert "no space left on device writing" in r.stderr and "finished work is kept" in r.stderr
    assert list((tmp_path / "out").iterdir()) == []  # no partial file, no .tmp-PID


def test_full_disk_in_train_keeps_checkpoints_and_whole_metric_lines(tmp_path, hist,
                                                                    monkeypatch):
    import errno
    import os

    from outlearn.errors import DiskFullError
    from outlearn.students import load_checkpoint, train

    cfg = tcfg(tmp_path)
    metrics = cfg.out / "metrics.jsonl"
    real = os.write

    def write(fd, data):
        # the 13th record: half of it reaches the file, then the disk is full
        if (os.readlink(f"/proc/self/fd/{fd}") == str(metrics)
                and len(_lines_raw(metrics)) == 12):
            real(fd, bytes(data)[: len(data) // 2])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, data)

    monkeypatch.setattr(os, "write", write)
    with pytest.raises(DiskFullError, match=FULL.format(".*metrics.jsonl")):
        train(cfg, quiet=True)
    monkeypatch.undo()
    assert [r["step"] for r in _lines(metrics)] == list(range(1, 13))  # no torn line
    cks = sorted((cfg.out / "checkpoints").iterdir())
    assert [load_checkpoint(p)["step"] for p in cks] == [5, 10]  # finished work kept
    # a checkpoint that cannot be written: the same message, the earlier ones kept
    _full_disk_for(monkeypatch, ".pt")
    with pytest.raises(DiskFullError, match=FULL.format(".*step-00000015.pt")):
        train(cfg, quiet=True)
    monkeypatch.undo()
    assert sorted((cfg.out / "checkpoints").iterdir()) == cks  # no partial or .tmp file
    # space again: the run resumes and its log has every step once
    train(cfg, quiet=True)
    assert [r["step"] for r in _lines(metrics)] == list(range(1, 21))


def _lines_raw(path) -> list[bytes]:
    return path.read_bytes().splitlines() if path.exists() else []


def test_full_disk_in_train_via_the_cli_is_a_message(tmp_path, hist, monkeypatch):
    from typer.testing import CliRunner

    from outlearn.cli import app

    toml = tmp_path / "t.toml"
    d = train_data(tmp_path)
    toml.write_text("\n".join([f'history = "{d["history"]}"', 'env = "toy"',
                               f'out = "{d["out"]}"', "threads = 1", "[student]",
                               'kind = "ad"', 'model = { n_layers = 1, n_heads = 2, '
                               'd_model = 16, d_ff = 32 }', "[data]", "context_len = 12",
                               "batch_size = 4", "[optim]", "total_steps = 4",
                               "warmup_steps = 1"]) + "\n")
    _full_disk_for(monkeypatch, "config.json")
    r = CliRunner().invoke(app, ["train", str(toml)])
    assert r.exit_code == 2, r.output
    assert "no space left on device writing" in r.output and "Traceback" not in r.output


# ------------------------------------------------------------------ item 6: absurd sizes
@pytest.mark.parametrize("over, field", [
    ({"num_episodes": None, "num_steps": 10**12}, r"num_steps \(1,000,000,000,000\)"),
    ({"num_episodes": 10**11}, r"num_episodes \(100,000,000,000\)"),
    ({"learners_per_task": 10**9}, r"learners_per_task \(1,000,000,000\)"),
    ({"env": {"name": "bernoulli-bandit", "kwargs": {"num_arms": 10**9}},
      "teacher": {"name": "ucb1"}}, r"1,000,000,000 actions, set by env\.kwargs"),
], ids=["num_steps", "num_episodes", "learners", "arms"])
def test_collect_too_big_for_memory_is_refused_before_allocating(tmp_path, no_work, over,
                                                                 field):
    from outlearn.collect import CollectConfig, collect
    from outlearn.config import parse_config
    from outlearn.errors import ResourceError

    data = collect_data(tmp_path / "h.h5")
    data.update(over)
    with pytest.raises(ResourceError, match=rf"(?s)memory.*{field}.*nothing was run"):
        collect(parse_config(CollectConfig, data), progress=False)
    assert not (tmp_path / "h.h5").exists()


def test_eval_too_big_for_memory_is_refused_before_running(tmp_path, no_work):
    from outlearn.config import parse_config
    from outlearn.errors import ResourceError
    from outlearn.evaluation.evaluate import EvalConfig, evaluate

    with pytest.raises(ResourceError, match=r"(?s)memory.*num_episodes \(1,000,000,000,000\)"):
        evaluate(parse_config(EvalConfig, eval_data(tmp_path, num_episodes=10**12)),
                 progress=False)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("over, field", [
    ({"data": {"batch_size": 10**9}, "shards": 1}, r"data\.batch_size \(1,000,000,000\)"),
    ({"student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 2, "d_model": 2**20,
                                          "d_ff": 2**20}}}, r"student\.model"),
], ids=["batch", "model"])
def test_train_too_big_for_memory_is_refused_before_training(tmp_path, hist, no_work, over,
                                                             field):
    from outlearn.errors import ResourceError
    from outlearn.students import train

    with pytest.raises(ResourceError, match=rf"(?s)memory.*{field}"):
        train(tcfg(tmp_path, **over), quiet=True)
    assert not (tmp_path / "run").exists()


def test_memory_check_uses_the_available_memory(tmp_path):
    from outlearn.collect import CollectConfig
    from outlearn.config import parse_config
    from outlearn.errors import ResourceError
    from outlearn.resources import available_memory, check_memory, estimate

    avail = available_memory()
    assert avail is not None and avail > 0
    est = estimate(parse_config(CollectConfig, collect_data(tmp_path / "h.h5")))
    assert 0 < est.total < 2**20  # a tiny collection: well under a MiB of arrays
    check_memory(est)  # fits here
    with pytest.raises(ResourceError, match=r"has 1 KiB available.*num_episodes \(4\)"):
        check_memory(est, available=1024)


# ------------------------------------------------------------------ item 7: the rest
_HOLD = """\
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()} on elsewhere\\n".encode())
print("locked", flush=True)
sys.stdin.read()
"""


def _hold_lock(path):
    """A child process that holds ``path`` locked until its stdin closes."""
    import subprocess
    import sys

    p = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def test_a_second_run_of_a_run_directory_refuses_at_once(tmp_path, monkeypatch):
    from outlearn.config import Config
    from outlearn.errors import RunLockedError
    from outlearn.registry import STUDIES
    from outlearn.studies.base import Study
    from outlearn.studies.runner import load_components, run_lock, run_study

    class Cfg(Config):
        n: int = 1

    calls = []
    load_components()
    monkeypatch.setitem(STUDIES._items, "badinput-dummy",
                        Study("badinput-dummy", "a test study", Cfg,
                              lambda cfg, ctx: calls.append(ctx.run_dir) or []))
    run_dir = tmp_path / f"badinput-dummy-{Cfg().content_hash()}"
    run_dir.mkdir()
    holder = _hold_lock(run_dir / ".lock")
    try:
        with pytest.raises(RunLockedError, match=rf"run directory {run_dir} is in use by "
                           rf"another outlearn run \(pid {holder.pid} on elsewhere\)"):
            run_study("badinput-dummy", {}, tmp_path, quiet=True)
        assert calls == [] and not (run_dir / "config.json").exists()
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)
    run_study("badinput-dummy", {}, tmp_path, quiet=True)  # released with its holder
    assert calls == [run_dir]
    # released on an exception too
    with pytest.raises(KeyError):
        with run_lock(run_dir):
            raise KeyError("boom")
    with run_lock(run_dir):
        with pytest.raises(RunLockedError, match=f"pid {__import__('os').getpid()}"):
            with run_lock(run_dir):
                pass


def test_resume_after_a_kill_logs_every_step_once(tmp_path, hist, monkeypatch):
    import importlib

    from outlearn.students import train

    tr = importlib.import_module("outlearn.students.train")
    cfg = tcfg(tmp_path)
    real = tr._Run.train_step

    def killed_at_8(self):
        if self.step == 7:
            raise KeyboardInterrupt  # as a kill after step 7 (checkpoint at 5)
        return real(self)

    monkeypatch.setattr(tr._Run, "train_step", killed_at_8)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, quiet=True)
    monkeypatch.undo()
    metrics = cfg.out / "metrics.jsonl"
    assert [r["step"] for r in _lines(metrics)] == list(range(1, 8))
    with metrics.open("ab") as fh:
        fh.write(b'{"step": 8, "lo')  # and a torn line, as a crash mid-write leaves
    train(cfg, quiet=True)
    assert [r["step"] for r in _lines(metrics)] == list(range(1, 21))


def test_a_history_replaced_between_kill_and_resume_is_refused(tmp_path, hist):
    from outlearn.errors import CheckpointError
    from outlearn.students import train

    cfg = tcfg(tmp_path)
    train(cfg, stop_after=5, quiet=True)
    small_history(hist, seed=1)  # same sizes, other data, same path
    with pytest.raises(CheckpointError, match=rf"history {hist} changed since the checkpoint "
                       r".*train into a new out dir"):
        train(cfg, quiet=True)
    small_history(hist, seed=0)  # the original bytes again: resumes
    train(cfg, quiet=True)


def _zip_entries(path) -> list[tuple[str, int, int]]:
    """(name, offset of the stored data, size) of each tensor storage in a torch file."""
    import struct
    import zipfile

    raw = path.read_bytes()
    out = []
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            if "/data/" in info.filename and info.compress_type == 0 and info.file_size:
                o = info.header_offset
                n, m = struct.unpack("<HH", raw[o + 26 : o + 30])
                out.append((info.filename, o + 30 + n + m, info.file_size))
    return out


def test_a_flipped_byte_in_any_checkpoint_tensor_is_detected(tmp_path, hist):
    from outlearn.errors import CheckpointError
    from outlearn.students import load_checkpoint, load_student, train

    cfg = tcfg(tmp_path)
    path = train(cfg, stop_after=5, quiet=True)
    good = path.read_bytes()
    entries = _zip_entries(path)
    assert len(entries) > 5
    for name, at, size in entries:
        bad = bytearray(good)
        bad[at + size // 2] ^= 0x04
        path.write_bytes(bytes(bad))
        try:
            load_checkpoint(path)
        except CheckpointError as err:
            assert f"checkpoint {path} is corrupt" in str(err), name
        else:
            pytest.fail(f"a flipped byte in {name} went unnoticed")
    with pytest.raises(CheckpointError, match="is corrupt"):
        load_student(cfg.out)
    with pytest.raises(CheckpointError, match="is corrupt"):
        train(cfg, quiet=True)
    path.write_bytes(good)
    load_student(cfg.out)


def test_a_checkpoint_without_train_config_is_a_message(tmp_path, hist):
    from outlearn.errors import CheckpointError
    from outlearn.students import load_checkpoint, load_student, save_checkpoint, train

    path = train(tcfg(tmp_path), stop_after=2, quiet=True)
    ck = load_checkpoint(path)
    del ck["train_config"]
    save_checkpoint(path, ck)
    with pytest.raises(CheckpointError, match=rf"checkpoint {path} lacks train_config"):
        load_student(path)


@pytest.mark.parametrize("field, value, size", [("obs", NOBS, "num_obs"),
                                                ("obs", -1, "num_obs"),
                                                ("actions", A, "num_actions")])
def test_hand_made_history_out_of_range_is_a_message(tmp_path, field, value, size):
    import h5py

    from outlearn.students import train

    path = small_history(tmp_path / "h.h5")
    with h5py.File(path, "r+") as f:  # a hand edit, valid HDF5 otherwise
        a = f[field][()]
        a[2, 7] = value
        f[field][...] = a
    with pytest.raises(HistoryFileError, match=rf"history {path}: learner 2 has "
                       rf"{field}={value} at step 7, outside \[0, {size}="):
        train(tcfg(tmp_path, data={"batch_size": 32}, shards=1, optim={"total_steps": 40},
                   checkpoint_every=100), quiet=True)


def test_a_config_that_is_not_utf8_is_a_message(tmp_path):
    from typer.testing import CliRunner

    from outlearn.cli import app

    p = tmp_path / "c.toml"
    p.write_bytes(b'out = "caf\xe9.h5"\n')  # Latin-1
    for cmd in ["collect", "train", "eval", "run"]:
        r = CliRunner().invoke(app, [cmd, str(p)])
        assert r.exit_code == 2, (cmd, r.output)
        assert f"config file {p} is not UTF-8 text" in r.output and "save it as UTF-8" in r.output
    r = CliRunner().invoke(app, ["collect", str(tmp_path)])
    assert r.exit_code == 2 and "is a directory" in r.output and "does not exist" not in r.output


def test_registry_messages_say_studies():
    from outlearn.errors import ConfigError
    from outlearn.registry import STUDIES, TEACHERS

    with pytest.raises(ConfigError, match=r"known studies: .*@STUDIES\.register\('nope'\)"):
        STUDIES.get("nope")
    with pytest.raises(ConfigError, match=r"known teachers: .*@TEACHERS\.register"):
        TEACHERS.get("nope")
    assert STUDIES.plural == "studies"  # its entry-point group is outlearn.studies


def test_temp_files_are_removed_when_a_write_fails_or_its_writer_died(tmp_path, monkeypatch):
    import os
    import subprocess
    import sys
    import time

    from outlearn.atomic import atomic_write_bytes, temp_name
    from outlearn.errors import DiskFullError

    dst = tmp_path / "x.bin"
    _full_disk_for(monkeypatch, "x.bin")
    with pytest.raises(DiskFullError):
        atomic_write_bytes(dst, b"0123456789")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []
    # a writer killed mid-write (kill -9) leaves its temp file: the next write removes it
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True).stdout.strip()
    stale = dst.with_name(f"{dst.name}.tmp-{dead}")
    stale.write_bytes(b"half")
    old = time.time() - 3600
    os.utime(stale, (old, old))
    live = temp_name(tmp_path / "other.bin")  # another file's: not ours to remove
    live.write_bytes(b"x")
    atomic_write_bytes(dst, b"ok")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([dst.name, live.name])


def test_strict_types(tmp_path):
    from outlearn.collect import CollectConfig
    from outlearn.config import parse_config
    from outlearn.errors import ConfigError
    from outlearn.students.train import TrainConfig

    for bad in [True, 2.0, "2"]:
        with pytest.raises(ConfigError, match=r"key 'learners_per_task': expected an integer"):
            parse_config(CollectConfig, collect_data(tmp_path / "h.h5", learners_per_task=bad))
    with pytest.raises(ConfigError, match=r"key 'data.permute_actions': expected a boolean"):
        parse_config(TrainConfig, train_data(tmp_path, data={"permute_actions": 1}))
    with pytest.raises(ConfigError, match=r"key 'optim.lr': expected a number"):
        parse_config(TrainConfig, train_data(tmp_path, optim={"lr": True}))
    cfg = parse_config(TrainConfig, train_data(tmp_path, optim={"lr": 1}))  # int for float
    assert cfg.optim.lr == 1.0
    with pytest.raises(ConfigError, match=r"key 'history': an empty path"):
        parse_config(TrainConfig, train_data(tmp_path, history=""))


# ------------------------------------------------------------------ frames vs indices
def _frame_vs_index_runs(tmp_path):
    """(a checkpoint of an index history (darkroom-like), a frame history, a checkpoint
    of that frame history), all tiny."""
    from histories_tiny import synthetic_frames

    from outlearn.students.train import train

    small_history(tmp_path / "h.h5")
    frames = synthetic_frames(tmp_path / "f.h5")
    idx = train(tcfg(tmp_path, out="idx", optim={"total_steps": 3}), quiet=True)
    fr = train(tcfg(tmp_path, history=frames, env="gymnax", out="fr",
                    optim={"total_steps": 3}), quiet=True)
    return idx, frames, fr


def test_frames_and_indices_mixed_up_are_one_message_before_work(tmp_path, monkeypatch):
    """A student built for observation indices given frames (a Dark Room checkpoint on
    gymnax; a frame history with a student forced to indices, or a student that only
    reads indices), and a frame student given indices: one ConfigError naming the
    problem and the fix, before any training or evaluation starts."""
    from outlearn.config import parse_config
    from outlearn.errors import ConfigError
    from outlearn.evaluation.evaluate import EvalConfig, evaluate
    from outlearn.students.train import train

    idx, frames, fr = _frame_vs_index_runs(tmp_path)
    stop_work(monkeypatch)
    gymnax = {"name": "gymnax", "kwargs": {"name": "Breakout-MinAtar", "episode_len": 5}}

    def ev(env, ck):
        learner = {"name": "st", "kind": "student", "checkpoint": str(ck)}
        evaluate(parse_config(EvalConfig, eval_data(tmp_path / "ev", env=env,
                                                    learners=[learner])), progress=False)

    fix = r"evaluate it on the env family \(and settings\) its history came from"
    with pytest.raises(ConfigError, match=rf"learner 'st' \(checkpoint {idx}\) was built for "
                       rf"observation indices, but env 'gymnax' gives frames of shape "
                       rf"\(10, 10, 4\): {fix}"):
        ev(gymnax, idx)
    with pytest.raises(ConfigError, match=r"was built for frames of shape \(10, 10, 4\), but "
                       rf"env 'darkroom' gives observation indices: {fix}"):
        ev({"name": "darkroom", "kwargs": {"size": 3, "episode_len": 5}}, fr)

    def tr(history, env, **model):
        train(tcfg(tmp_path, history=history, env=env, out="new",
                   student={"model": model}), quiet=True)

    with pytest.raises(ConfigError, match=r"student.model.obs_shape=\[\] builds a student for "
                       r"observation indices, but the history holds frames of shape "
                       r"\(10, 10, 4\): remove student.model.obs_shape"):
        tr(frames, "gymnax", obs_shape=[])
    with pytest.raises(ConfigError, match=r"obs_factors embeds observation indices, but this "
                       r"student reads frames of shape \[10, 10, 4\].*remove obs_factors"):
        tr(frames, "gymnax", obs_factors=[5, 8])
    with pytest.raises(ConfigError, match=r"prev_obs embeds observation indices.*remove "
                       "prev_obs"):
        tr(frames, "gymnax", prev_obs=True)
    with pytest.raises(ConfigError, match=r"student kind 'dpt' reads observation indices, "
                       r"but the history holds frames of shape \(10, 10, 4\): train a "
                       r"student that reads frames \(kind 'ad', 'adq' or 'gru'\)"):
        train(tcfg(tmp_path, history=frames, env="gymnax", out="dpt",
                   student={"kind": "dpt", "model": {}}), quiet=True)
    with pytest.raises(ConfigError, match=r"student.model.obs_shape=\[10, 10, 4\] builds a "
                       r"student for frames of shape \(10, 10, 4\), but the history holds "
                       r"observation indices: remove student.model.obs_shape"):
        tr(tmp_path / "h.h5", "toy", obs_shape=[10, 10, 4])
    with pytest.raises(ConfigError, match=r"data.labels='gap' needs observation indices.*"
                       r"frames of shape \(10, 10, 4\): train AD or the GRU with "
                       r'data.labels = "actions"'):
        train(tcfg(tmp_path, history=frames, env="gymnax", out="gap",
                   data={"labels": "gap"}), quiet=True)


def test_a_student_given_other_observations_on_the_step_path_is_a_message():
    """Driven directly (a factory in run_learner), a student built for indices refuses a
    batch of frames at its first step, and a frame student refuses indices."""
    import torch

    from outlearn.errors import ConfigError
    from outlearn.students import ADConfig, ADTransformer, StudentLearner

    idx = ADTransformer(ADConfig(n_layers=1, d_model=16, d_ff=16, context_len=4), NOBS, A)
    fr = ADTransformer(ADConfig(n_layers=1, d_model=16, d_ff=16, context_len=4,
                                obs_shape=[10, 10, 4]), 0, A)
    with torch.no_grad():
        with pytest.raises(ConfigError, match=r"built for observation indices, but the "
                           r"environment gives frames of shape \(10, 10, 4\)"):
            StudentLearner(idx, num_envs=2, context_len=4).policy(np.zeros((2, 10, 10, 4),
                                                                          bool), 0)
        with pytest.raises(ConfigError, match=r"built for frames of shape \(10, 10, 4\), "
                           r"but the environment gives observation indices"):
            StudentLearner(fr, num_envs=2, context_len=4, cache=False).policy(
                np.zeros(2, np.int32), 0)
