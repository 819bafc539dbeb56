"""A researcher's own task family, registered from outside outlearn, runs end to end."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

from outlearn.collect import CollectConfig, collect
from outlearn.config import parse_config
from outlearn.histories import History
from outlearn.registry import ENVS, STUDENTS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "my_env.py"


def _load_example(path: Path = EXAMPLE):
    """Import an example from its file (once), as a researcher's own module would be."""
    name = path.stem
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod
    spec.loader.exec_module(mod)
    return mod


def test_user_env_collects_and_the_teacher_learns(tmp_path):
    if "corridor" not in ENVS:
        _load_example()
    cfg = parse_config(CollectConfig, {
        "env": {"name": "corridor", "kwargs": {"length": 7}},
        "teacher": {"name": "qlearning"},
        "tasks": {"seed": 0, "n_train": 2, "n_test": 0},
        "learners_per_task": 4, "num_episodes": 30, "out": str(tmp_path / "c.h5"),
    })
    path = collect(cfg, progress=False)
    with History(path) as h:
        rets = h.episode_returns  # (L, E)
        opt = h.optimal_return  # (L,)
        assert h.meta.env_name == "corridor" and rets.shape == (8, 30)
    # the optimistic Q-learner explores first, then goes straight to the goal: optimal
    assert np.allclose(rets[:, -5:], opt[:, None])
    assert rets[:, 0].mean() < opt.mean()


STUDENT_EXAMPLE = EXAMPLE.parent / "my_student.py"


def _load_student_example():
    return _load_example(STUDENT_EXAMPLE)


def test_user_student_trains_acts_in_context_and_is_causal(tmp_path):
    """examples/my_student.py's convolutional student, registered from outside outlearn:
    trained by the ordinary training path on Q-learning histories (its loss falls), loaded
    back from its checkpoint as what it is, acting in context through the rollout loop,
    and causal (a step's logits do not move when a later step changes)."""
    import json

    import torch

    from outlearn.envs import make_env
    from outlearn.evaluation.evaluate import LearnerSpec, run_learner
    from outlearn.students import TrainConfig, load_student, train

    mod = _load_student_example()
    cfg = parse_config(CollectConfig, {
        "env": {"name": "darkroom", "kwargs": {"size": 3, "episode_len": 6}},
        "teacher": {"name": "qlearning"}, "tasks": {"seed": 0, "n_train": 5, "n_test": 2},
        "learners_per_task": 4, "num_episodes": 20, "out": str(tmp_path / "h.h5")})
    history = collect(cfg, progress=False)
    tc = parse_config(TrainConfig, {
        "history": str(history), "student": {"kind": "tcn", "model": {"d_model": 16}},
        "data": {"context_len": 24, "batch_size": 16},
        "optim": {"lr": 3e-3, "warmup_steps": 10, "total_steps": 150},
        "out": str(tmp_path / "train"), "checkpoint_every": 150, "val_every": 50})
    ckpt = train(tc, quiet=True)
    losses = [json.loads(line)["loss"] for line in
              (tmp_path / "train" / "metrics.jsonl").read_text().splitlines()
              if '"loss"' in line]
    assert losses[-1] < 0.8 * losses[0]
    model, _ = load_student(ckpt)
    assert isinstance(model, mod.TCNStudent) and model.context_len == 24
    # causal: change the last step's tokens, and every earlier step's logits stay put
    g = torch.Generator().manual_seed(0)
    obs = torch.randint(0, 9, (2, 24), generator=g)
    act = torch.randint(-1, 4, (2, 24), generator=g).clamp(min=0)
    rew, new = torch.rand(2, 24, generator=g), torch.zeros(2, 24, dtype=torch.long)
    with torch.no_grad():
        a = model(obs, act, rew, new)
        obs2 = obs.clone()
        obs2[:, -1] = (obs2[:, -1] + 1) % 9
        b = model(obs2, act, rew, new)
    torch.testing.assert_close(a[:, :-1], b[:, :-1])
    assert not torch.allclose(a[:, -1], b[:, -1])
    family = make_env("darkroom", size=3, episode_len=6)
    ids = np.array([0, 4])
    returns, _ = run_learner(family, LearnerSpec(name="tcn", kind="student", checkpoint=ckpt),
                             ids, [0, 1], 5, "greedy")
    assert returns.shape == (2, 2, 5) and np.isfinite(returns).all()


def test_user_student_runs_in_a_study_on_worker_processes(tmp_path):
    """A study names the registered student; its stages run on two spawned worker processes
    (`--workers 2 --backend processes`), which import the module that registered it (here
    from its file: it is not on the workers' path) before they train and evaluate."""
    from studies_tiny import tiny

    from outlearn.students import load_student
    from outlearn.studies.runner import run_study

    mod = _load_student_example()
    data = tiny(gaps=[1, 2], student={"kind": "tcn", "model": {"d_model": 8, "n_layers": 2},
                                      "context_len": 15, "train_steps": 20, "batch_size": 8,
                                      "warmup_steps": 5, "checkpoint_every": 10})
    run_study("gap", data, tmp_path / "runs", quiet=True, workers=2, backend="processes")
    (run,) = (tmp_path / "runs").glob("gap-*")
    students = sorted(run.glob("stages/train-*/student"))
    assert len(students) == 4  # 2 gaps x 2 seeds
    assert all(isinstance(load_student(s)[0], mod.TCNStudent) for s in students)
    assert (run / "results.json").exists()


def test_workers_are_told_which_modules_registered_components():
    """user_modules lists the modules outside outlearn that called ``register`` (with their
    files, for a module a worker cannot import by name, and what each registered); a
    registration a worker cannot get is reported when the run asks for it, with the fix."""
    import pytest

    from outlearn import registry
    from outlearn.errors import ConfigError

    _load_student_example()
    mods = {m: (f, names) for m, f, names in registry.user_modules()}
    assert mods["my_student"] == (str(STUDENT_EXAMPLE), ["students/tcn"])
    assert not any(m == "outlearn" or m.startswith("outlearn.") for m in mods)
    registry.import_user_modules([("my_student", None, ["students/tcn"])])  # has it: no-op
    try:
        registry.import_user_modules([("no_such_module_of_outlearn_tests", None,
                                       ["students/zz-missing"])])
        with pytest.raises(ConfigError, match="registered in the run's driver, but this worker "
                                              "cannot import module 'no_such_module_of_outlearn"
                                              "_tests'.*install it"):
            STUDENTS.get("zz-missing")
        registry.import_user_modules([("__main__", None, ["students/zz-main"])])
        with pytest.raises(ConfigError, match="cannot run the driver's main script: move the "
                                              "registration into a module"):
            STUDENTS.get("zz-main")
    finally:
        registry._UNREACHABLE.pop("students/zz-missing", None)
        registry._UNREACHABLE.pop("students/zz-main", None)


def test_a_fresh_worker_imports_a_registering_module_from_its_file(tmp_path):
    """In a new process (as a worker is) that cannot import examples/my_student.py by name,
    the module is loaded from its file and its student is there; a module whose own code
    fails raises that error and is not left half-loaded."""
    import subprocess

    bad = tmp_path / "broken_student.py"
    bad.write_text("raise RuntimeError('boom in the module')\n")
    code = f"""
import sys
from outlearn.registry import STUDENTS, import_user_modules
assert 'tcn' not in STUDENTS
import_user_modules([('my_student', {str(STUDENT_EXAMPLE)!r}, ['students/tcn'])])
assert 'tcn' in STUDENTS and STUDENTS.get('tcn').__name__ == 'TCNStudent'
try:
    import_user_modules([('broken_student', {str(bad)!r}, ['students/broken'])])
except RuntimeError as err:
    assert 'boom' in str(err) and 'broken_student' not in sys.modules
else:
    raise AssertionError('no error')
print('ok')
"""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
