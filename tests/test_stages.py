"""Stage results are data (never pickles), keyed by inputs and code version, relocatable."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import pickle
import re
import shutil
import struct
from collections import OrderedDict, namedtuple
from pathlib import Path

import numpy as np
import pytest

import outlearn
import outlearn.studies.base as base
from outlearn import provenance
from outlearn.evaluation.metrics import DataCeiling
from outlearn.selfdistill.categorical import FiniteOptions, Trajectory
from outlearn.stats import Estimate
from outlearn.studies.base import RunContext, inputs_hash, run_stage
from outlearn.studies.common import Setting
from outlearn.studies.cutoff import CutInfo
from outlearn.studies.store import (
    RESULT_JSON,
    RESULT_NPZ,
    StageResultError,
    read_result,
    write_result,
)


# ------------------------------------------------------------------------------ helpers
def same(a, b, where="result") -> None:
    """Exact equality: same types all the way down, arrays bit for bit, floats by bits."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.dtype.str == b.dtype.str, f"{where}: dtype"
        assert a.shape == b.shape and a.tobytes() == b.tobytes(), f"{where}: values"
    elif isinstance(a, np.generic):
        assert a.dtype.str == b.dtype.str and a.tobytes() == b.tobytes(), where
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b) or (math.isnan(a) and
                                                                 math.isnan(b)), where
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            same(x, y, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for (ka, va), (kb, vb) in zip(a.items(), b.items(), strict=True):
            same(ka, kb, f"key of {where}")
            same(va, vb, f"{where}[{ka!r}]")
    elif dataclasses.is_dataclass(a):
        for f in dataclasses.fields(a):
            same(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def round_trip(value, tmp_path: Path, run_dir: Path | None = None):
    run_dir = run_dir or tmp_path
    d = run_dir / "stages" / "s-0"
    d.mkdir(parents=True, exist_ok=True)
    write_result(d, value, run_dir)
    return read_result(d, run_dir)


def cut_info(run_dir: Path) -> CutInfo:
    ceiling = DataCeiling(curve=np.array([0.0, 0.5, np.nan, 1.0]), best_episode=3,
                          units=np.array([0.9, 1.1, 1.0], dtype=np.float32),
                          best=Estimate(np.float64(1.0), 0.9, 1.1))
    return CutInfo("0.5", run_dir / "stages" / "cut-1" / "cut.h5", 120, 8, 15, ceiling)


@dataclasses.dataclass(frozen=True)
class NotOutlearn:  # a dataclass outside outlearn: never written, never read back
    x: int = 1


# ------------------------------------------------------------------------------ codec
def test_codec_round_trips_every_supported_type(tmp_path):
    floats32 = np.array([1.5, np.nan, -0.0, np.inf], dtype=np.float32)
    floats32.view(np.uint32)[1] = 0x7FC00123  # a NaN with a payload: kept bit for bit
    value = {
        "none": None, "bools": [True, False], "ints": [0, -7, 2**80],
        "floats": [0.1, -0.0, math.inf, -math.inf, math.nan, 1e-310, 1e308],
        "text": "héllo \u2603 \"quoted\" \n", "empty": ["", [], (), {}],
        "tuples": (1, (2.0, "x"), [3, (None,)]),
        "keys": {1: "int", 2.5: "float", "s": "str", False: "bool", (1, "a"): "tuple",
                 None: "none", "$dollar": "a key that looks like a tag"},
        "$": {"nested": {"deeper": [{"$": "not a tag"}]}},
        "arrays": [np.arange(6, dtype=np.int8).reshape(2, 3), np.array([True, False]),
                   np.array([2**64 - 1], dtype=np.uint64), np.float16([1.5, -2.25]),
                   floats32, np.linspace(0, 1, 7), np.array([1 + 2j], dtype=np.complex128),
                   np.array([1.0, 2.0], dtype=">f8"), np.array(3.25), np.zeros((0, 3)),
                   np.arange(20.0).reshape(4, 5)[:, ::2],  # not contiguous
                   np.ones((2, 1, 3), dtype=np.int32)],
        "scalars": (np.float32(0.1), np.int64(-3), np.bool_(True), np.uint8(255),
                    np.complex64(1 - 1j), np.float64(np.nan)),
        "paths": [tmp_path / "stages" / "x" / "a.h5", Path("/elsewhere/b.h5"),
                  Path("relative/c.h5"), tmp_path],
        "path strings": [str(tmp_path / "stages" / "x" / "a.h5"), "/elsewhere/b.h5",
                         "relative/c.h5"],
        "dataclasses": [cut_info(tmp_path), FiniteOptions(50, fresh=0.25),
                        Setting(tmp_path / "h.h5", 12, 2, ("k", 3)),
                        Trajectory(*[np.arange(3.0)] * 9)],
    }
    got = round_trip(value, tmp_path)
    same(value, got)
    assert isinstance(got["dataclasses"][0], CutInfo) and got["dataclasses"][0].path.exists() \
        is False  # rebuilt, not touched on disk
    doc = json.loads((tmp_path / "stages" / "s-0" / RESULT_JSON).read_text())
    text = json.dumps(doc)
    assert str(tmp_path) not in text  # paths inside the run directory are stored relative
    with np.load(tmp_path / "stages" / "s-0" / RESULT_NPZ, allow_pickle=False) as z:
        assert len(z.files) == len(value["arrays"]) + 2 + 9  # + the dataclasses' arrays


@pytest.mark.badinput
def test_results_that_are_not_data_are_refused_when_written(tmp_path):
    Pair = namedtuple("Pair", "a b")
    bad = [object(), {1, 2}, Pair(1, 2), OrderedDict(a=1), lambda: 1, NotOutlearn(),
           np.array([object()]), np.array(["text"]), {"k": [1, {"deep": set()}]}]
    for i, value in enumerate(bad):
        d = tmp_path / "stages" / f"s-{i}"
        d.mkdir(parents=True)
        with pytest.raises(TypeError, match=rf"stage s-{i}: cannot store result"):
            write_result(d, value, tmp_path)
        assert not list(d.iterdir())  # nothing written
    with pytest.raises(TypeError, match=r"result\['k'\]\[1\]\['deep'\] of type set"):
        write_result(tmp_path / "stages" / "s-8", bad[-1], tmp_path)
    cyclic: list = []
    cyclic.append(cyclic)
    with pytest.raises(TypeError, match="contains itself"):
        write_result(tmp_path / "stages" / "s-9", cyclic, tmp_path)

    ctx = RunContext(tmp_path / "run", quiet=True)  # through a stage: named, not cached
    calls = []
    with pytest.raises(TypeError, match=r"stage odd-[0-9a-f]{16}: .* of type set"):
        ctx.stage("odd", [1], lambda d: calls.append(1) or {1})
    assert ctx.stage("odd", [1], lambda d: calls.append(1) or [1]) == [1] and len(calls) == 2
    assert (ctx.stage_dir("odd", [1]) / "seconds.txt").exists()


def _craft(d: Path, module: str, qualname: str, fields: dict | None = None) -> None:
    d.mkdir(parents=True, exist_ok=True)
    doc = {"format": "outlearn-stage-result", "version": 1, "stage": d.name, "arrays": None,
           "result": {"a": [1, {"$": "dataclass", "module": module, "qualname": qualname,
                                "fields": fields or {}}]}}
    (d / RESULT_JSON).write_text(json.dumps(doc))


@pytest.mark.badinput
def test_reading_refuses_classes_outside_outlearn_and_imports_nothing(tmp_path, monkeypatch):
    marker = tmp_path / "imported"
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "planted.py").write_text(
        f"open({str(marker)!r}, 'w').close()\n"
        "import dataclasses\n@dataclasses.dataclass\nclass Evil:\n    x: int = 0\n")
    monkeypatch.syspath_prepend(str(pkg))
    run = tmp_path / "run"
    cases = [("planted", "Evil"), ("tests.test_stages", "NotOutlearn"),
             ("outlearn_planted", "Evil"), ("os", "system"), ("outlearn.stats", "bootstrap_ci"),
             ("outlearn.studies.base", "Path"), ("outlearn.studies.base", "os.system"),
             ("outlearn.studies.cutoff", "np.lib.npyio.NpzFile")]
    for i, (module, qualname) in enumerate(cases):
        d = run / "stages" / f"s-{i}"
        _craft(d, module, qualname)
        with pytest.raises(StageResultError, match=rf"{re.escape(str(d / RESULT_JSON))}: "
                                                   r"refusing to construct"):
            read_result(d, run)
    assert not marker.exists()
    d = run / "stages" / "ok"  # an outlearn dataclass is rebuilt from its fields
    _craft(d, "outlearn.stats", "Estimate",
           {"value": 1.0, "low": 0.5, "high": 2.0, "confidence": 0.9})
    assert read_result(d, run) == {"a": [1, Estimate(1.0, 0.5, 2.0, 0.9)]}
    _craft(d, "outlearn.stats", "Estimate", {"value": 1.0})  # fields must match
    with pytest.raises(StageResultError, match="has fields"):
        read_result(d, run)


@pytest.mark.badinput
def test_a_changed_array_file_is_refused(tmp_path):
    d = tmp_path / "stages" / "s-0"
    d.mkdir(parents=True)
    write_result(d, {"a": np.arange(3)}, tmp_path)
    np.savez(d / RESULT_NPZ, a0=np.arange(4))
    with pytest.raises(StageResultError, match="checksum"):
        read_result(d, tmp_path)


# ------------------------------------------------------------------------------ stages
class _Planted:
    """Unpickling it creates ``path`` (what a planted result.pkl could do)."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return open, (str(self.path), "w")


@pytest.mark.badinput
def test_a_planted_result_pkl_is_never_unpickled(tmp_path, capsys):
    marker = tmp_path / "code-ran"
    probe = tmp_path / "probe"
    pickle.loads(pickle.dumps(_Planted(probe))).close()  # the payload does run when unpickled
    assert probe.exists()

    ctx = RunContext(tmp_path / "run")
    d = ctx.stage_dir("s", [1])
    (d / "result.pkl").write_bytes(pickle.dumps(_Planted(marker)))
    calls = []
    assert ctx.stage("s", [1], lambda d: calls.append(d) or {"x": 2}) == {"x": 2}
    assert calls == [d] and not marker.exists()
    err = " ".join(capsys.readouterr().err.split())  # (the console wraps lines)
    assert err.count("result.pkl") == 1 and "never loaded" in err
    assert ctx.stage("s", [1], lambda d: calls.append(d) or {"x": 3}) == {"x": 2}
    assert len(calls) == 1 and "result.pkl" not in capsys.readouterr().err
    assert not marker.exists()


def test_run_stage_writes_data_in_its_directory(tmp_path):
    """The Ray path: run_stage runs in a worker, writes the result there, returns it."""
    d = tmp_path / "stages" / "s-1"
    d.mkdir(parents=True)
    out = run_stage(d, lambda d: (d / "f.bin", np.arange(3)))
    assert out[0] == d / "f.bin" and (d / RESULT_JSON).exists() and (d / "seconds.txt").exists()
    same(read_result(d, tmp_path), out)
    assert "result.pkl" not in os.listdir(d)


def _digest_with_changed(part: str, real):
    return lambda path: real(path) + ("-edited" if part in path.parts else "")


def test_a_stage_whose_code_changed_runs_again(tmp_path, monkeypatch):
    ctx = RunContext(tmp_path, quiet=True)
    calls: dict[str, int] = {}

    def run_all():
        out = {}
        for name in ("train", "subset", "drift", "my-own-stage"):
            out[name] = ctx.stage(name, [1], lambda d, n=name: calls.update(
                {n: calls.get(n, 0) + 1}) or n)
        out["pinned"] = ctx.stage("train", [2], lambda d: calls.update(
            {"pinned": calls.get("pinned", 0) + 1}) or "p", code=["outlearn.stats"])
        return out

    run_all()
    run_all()
    assert calls == {"train": 1, "subset": 1, "drift": 1, "my-own-stage": 1, "pinned": 1}
    # an edit under outlearn/students: train (and an unlisted stage, which depends on all of
    # outlearn) run again; subset, drift and the stage pinned to outlearn.stats do not
    monkeypatch.setattr(base, "file_digest", _digest_with_changed("students", base.file_digest))
    run_all()
    assert calls == {"train": 2, "subset": 1, "drift": 1, "my-own-stage": 2, "pinned": 1}
    assert len(list((tmp_path / "stages").glob("train-*"))) == 3  # a new directory
    monkeypatch.setattr(base, "file_digest", _digest_with_changed("stats.py", base.file_digest))
    run_all()  # the edit to students is undone; stats.py changes
    assert calls == {"train": 2, "subset": 1, "drift": 1, "my-own-stage": 3, "pinned": 2}


def test_stage_each_runs_one_stage_per_key_and_returns_them_by_key(tmp_path):
    """Per key: inputs(key) keys the stage, fn(key, stage_dir) runs once, then is cached."""
    calls = []

    def work(k, d):
        calls.append((k, d.name.split("-")[0]))
        return {"key": k, "square": k * k}

    ctx = RunContext(tmp_path, quiet=True)
    first = ctx.stage_each("loops", [3, 1, 2], lambda k: ["x", k], work)
    assert list(first) == [3, 1, 2] and first[2] == {"key": 2, "square": 4}
    assert calls == [(3, "loops"), (1, "loops"), (2, "loops")]
    again = ctx.stage_each("loops", [2, 3], lambda k: ["x", k], work)
    assert again == {2: first[2], 3: first[3]} and len(calls) == 3  # all cached


def test_code_versions_hash_source_files():
    files = provenance.module_files("outlearn.histories")
    assert files and all(f.suffix == ".py" for f in files)
    assert provenance.module_files("outlearn.stats") == (Path(outlearn.__file__).resolve()
                                                   .parent / "stats.py",)
    v = base.code_version(["outlearn.histories", "outlearn.stats"])
    assert v == base.code_version(["outlearn.stats", "outlearn.histories", "outlearn.stats"])
    assert v != base.code_version(["outlearn.histories"])
    assert base.stage_modules("diversity") == base.STAGE_CODE["diversity"]
    assert base.stage_modules("somebody-elses") == ("outlearn",)
    with pytest.raises(ValueError, match="no module outlearn.nothing"):
        provenance.module_files("outlearn.nothing")


def test_every_stage_of_the_studies_has_a_code_entry():
    """Each stage name under src/outlearn is in STAGE_CODE, naming modules that exist."""
    root = Path(outlearn.__file__).resolve().parent
    call = re.compile(r"""ctx\.stage(?:s|_each)?\(\s*f?["']([^"']+)["']""")
    names = {m for f in root.rglob("*.py") for m in call.findall(f.read_text())}
    assert {"collect", "cut", "train", "evaluate", "h-train", "loops", "lm-ngram",
            "lm-transformer", "diversity", "subset", "subsample"} <= names
    for n in names:
        assert base.stage_modules(n) != base.WHOLE_PACKAGE, f"stage {n} is not in STAGE_CODE"
    for modules in base.STAGE_CODE.values():
        for m in modules:
            assert provenance.module_files(m)


# ------------------------------------------------------------------------------ relocation
def _pipeline(ctx: RunContext, calls: list[str]) -> dict:
    """collect -> cut (inputs: the str of a file in the run dir) -> train x 2 -> evaluate."""
    def collect(d: Path) -> Path:
        calls.append("collect")
        (d / "full.txt").write_text("history")
        return d / "full.txt"

    full = ctx.stage("collect", [1], collect)
    cut = ctx.stage("cut", [str(full), 0.5], lambda d: calls.append("cut") or cut_info(
        ctx.run_dir))
    ckpts = ctx.stages("train", [[str(cut.path), s] for s in (0, 1)],
                       [lambda d, s=s: calls.append("train") or (d / f"ck{s}", str(d))
                        for s in (0, 1)])
    ev = ctx.stage("evaluate", [[str(p) for p, _ in ckpts]], lambda d: calls.append(
        "evaluate") or {"curves": np.arange(4.0), "from": [p for p, _ in ckpts]})
    return {"full": full, "cut": cut, "ckpts": ckpts, "eval": ev}


def test_a_moved_run_directory_resumes_with_every_stage_cached(tmp_path):
    run = tmp_path / "a" / "run"
    calls: list[str] = []
    first = _pipeline(RunContext(run, quiet=True), calls)
    assert calls == ["collect", "cut", "train", "train", "evaluate"]
    assert first["full"].read_text() == "history"

    moved = tmp_path / "b" / "moved"
    moved.parent.mkdir()
    shutil.move(run, moved)
    calls.clear()
    again = _pipeline(RunContext(moved, quiet=True), calls)
    assert calls == []  # nothing recomputed
    assert again["full"] == moved / first["full"].relative_to(run)
    assert again["full"].read_text() == "history"  # a path into the moved directory
    assert again["cut"].path == moved / "stages" / "cut-1" / "cut.h5"
    assert again["ckpts"][1] == (moved / first["ckpts"][1][0].relative_to(run),
                                 str(moved / Path(first["ckpts"][1][1]).relative_to(run)))
    assert again["eval"]["from"] == [p for p, _ in again["ckpts"]]

    copy = tmp_path / "c" / "copy"  # a copy resumes too, and points into itself
    shutil.copytree(moved, copy)
    third = _pipeline(RunContext(copy, quiet=True), calls)
    assert calls == [] and third["full"] == copy / first["full"].relative_to(run)


def test_a_relative_run_directory_moves_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    calls: list[str] = []
    first = _pipeline(RunContext(Path("runs/x"), quiet=True), calls)
    assert first["full"] == Path("runs/x") / first["full"].relative_to("runs/x")
    shutil.move("runs", "elsewhere")
    calls.clear()
    again = _pipeline(RunContext(Path("elsewhere/x"), quiet=True), calls)
    assert calls == [] and again["full"].read_text() == "history"
    assert again["full"].parts[:2] == ("elsewhere", "x")


def test_inputs_with_paths_in_the_run_directory_hash_the_same_after_a_move(tmp_path):
    a, b = tmp_path / "a" / "run", tmp_path / "b" / "run2"

    def inputs(run: Path) -> list:
        return [str(run / "stages" / "collect-1" / "full.h5"), run / "cut.h5",
                {"ckpts": [str(run / "stages" / f"train-{s}" / "student") for s in (0, 1)]},
                "/outside/file.h5", 3, str(run)]

    assert inputs_hash(inputs(a), a) == inputs_hash(inputs(b), b)
    assert inputs_hash(inputs(a), a) != inputs_hash(inputs(b), a)  # b is not inside a
    assert inputs_hash(inputs(a)) != inputs_hash(inputs(b))  # without a run dir: as before
    other = inputs(b)
    other[3] = "/outside/other.h5"  # a path outside the run directory still counts
    assert inputs_hash(other, b) != inputs_hash(inputs(b), b)
    assert inputs_hash(["runs/x/stages/c/f.h5", 1], Path("runs/x")) == inputs_hash(
        ["other/y/stages/c/f.h5", 1], Path("other/y"))
    # without a run directory the hash is the one of earlier versions (values from before)
    assert inputs_hash([1]) == "080a9ed428559ef6"
    assert inputs_hash({"a": Path("/x/y"), "b": ["/x/y", 2.5, None]}) != inputs_hash([1])


def test_a_tiny_real_study_moved_resumes_without_running_a_stage(tmp_path, monkeypatch):
    from studies_tiny import tiny

    from outlearn.studies.runner import run_study

    data = tiny(train_tasks=[5, 2], none_up_to=2, learns_from=5)
    run = run_study("taskcount", data, tmp_path / "out", quiet=True).parent
    stages = {p.name for p in (run / "stages").iterdir()}
    assert {n.split("-")[0] for n in stages} == {"collect", "subset", "train", "evaluate",
                                                  "baselines"}
    assert not list(run.glob("stages/*/result.pkl")) and list(run.glob("stages/*/result.npz"))
    summary = (run / "summary.txt").read_text()
    shutil.move(tmp_path / "out", tmp_path / "moved")
    ran = []
    real = base.run_stage
    monkeypatch.setattr(base, "run_stage", lambda d, *a, **k: ran.append(d) or real(d, *a, **k))
    moved = run_study("taskcount", data, tmp_path / "moved", quiet=True).parent
    assert ran == [] and moved == tmp_path / "moved" / run.name
    assert {p.name for p in (moved / "stages").iterdir()} == stages
    assert (moved / "summary.txt").read_text() == summary


def test_a_run_reuses_another_runs_finished_stages_and_gets_the_same_results(tmp_path,
                                                                             monkeypatch):
    """--reuse: an ablation that changes only the evaluation copies the other run's
    collection and trained students (same name, inputs and code) and computes the rest; its
    results equal a run that computed everything itself."""
    from studies_tiny import tiny

    from outlearn.errors import ConfigError
    from outlearn.studies.runner import run_study

    data = tiny(train_tasks=[5, 2], none_up_to=2, learns_from=5)
    first = run_study("taskcount", data, tmp_path / "a", quiet=True).parent
    greedy = tiny(train_tasks=[5, 2], none_up_to=2, learns_from=5,
                  eval={"episodes": 10, "seeds": [0], "mode": "greedy"})
    alone = run_study("taskcount", greedy, tmp_path / "alone", quiet=True).parent
    ran = []
    real = base.run_stage
    monkeypatch.setattr(base, "run_stage", lambda d, *a, **k: ran.append(d) or real(d, *a, **k))
    reused = run_study("taskcount", greedy, tmp_path / "b", quiet=True, reuse=[first]).parent
    # the evaluations (and the references, whose stage is keyed by the eval section) run
    assert ran and {d.name.split("-")[0] for d in ran} == {"evaluate", "baselines"}
    assert {p.name for p in (reused / "stages").iterdir()} == {
        p.name for p in (alone / "stages").iterdir()}
    assert (reused / "summary.txt").read_text() == (alone / "summary.txt").read_text()
    for d in (reused / "stages").iterdir():  # copied whole, the result file last
        assert (d / RESULT_JSON).is_file() and not list(d.glob("*.part"))
    with pytest.raises(ConfigError, match="not a run directory"):
        run_study("taskcount", greedy, tmp_path / "c", quiet=True, reuse=[tmp_path / "nope"])
    with pytest.raises(ConfigError, match="this run's own directory"):
        run_study("taskcount", greedy, tmp_path / "b", quiet=True, reuse=[reused])
