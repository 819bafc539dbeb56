"""Device selection for students: CPU by default, a GPU when asked, a clear refusal when
the asked-for device is not there; the device never changes a run's identity."""

from __future__ import annotations

import json

import pytest
import torch
from test_train import synthetic_history, tiny_cfg

from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.evaluation.evaluate import LearnerSpec
from outlearn.students import load_student, train
from outlearn.students.checkpoint import load_checkpoint
from outlearn.students.device import resolve_device
from outlearn.students.train import TrainConfig


def test_default_is_the_cpu_and_the_environment_can_change_it(monkeypatch):
    monkeypatch.delenv("OUTLEARN_DEVICE", raising=False)
    assert resolve_device() == torch.device("cpu")
    monkeypatch.setenv("OUTLEARN_DEVICE", "auto")
    want = "cuda" if torch.cuda.is_available() else (
        "mps" if torch.backends.mps.is_available() else "cpu")
    assert resolve_device().type == want
    assert resolve_device("cpu") == torch.device("cpu")  # the config wins over the env


def test_a_missing_gpu_is_refused_with_the_fix():
    if torch.cuda.is_available():
        assert resolve_device("cuda").type == "cuda"
        with pytest.raises(ConfigError, match="CUDA device"):
            resolve_device(f"cuda:{torch.cuda.device_count()}")
    else:
        with pytest.raises(ConfigError, match=r"sees no CUDA GPU\. Use device = 'cpu'"):
            resolve_device("cuda")


def test_unknown_device_names_are_refused_in_configs(tmp_path):
    with pytest.raises(ConfigError, match=r"device 'tpu': use 'cpu', 'cuda'"):
        parse_config(TrainConfig, {"history": str(tmp_path / "h.h5"), "device": "tpu"})
    with pytest.raises(ConfigError, match=r"device 'gpu0'"):
        parse_config(LearnerSpec, {"name": "s", "kind": "student", "checkpoint": "x",
                                   "device": "gpu0"})


def test_device_is_not_part_of_the_run_identity(tmp_path):
    """A run started with the default device resumes under device = 'auto' (the CPU here)
    to the same weights, and its checkpoint loads onto the asked-for device."""
    synthetic_history(tmp_path / "h.h5")
    full = load_checkpoint(train(tiny_cfg(tmp_path, "full"), quiet=True))
    cfg = tiny_cfg(tmp_path, "split")
    train(cfg, stop_after=7, quiet=True)
    moved = TrainConfig.model_validate({**json.loads(cfg.to_json()), "device": "auto"})
    assert moved.resume_hash() == cfg.resume_hash()
    last = load_checkpoint(train(moved, quiet=True))
    for k in full["model"]:
        assert torch.equal(full["model"][k].cpu(), last["model"][k].cpu()), k
    model, _ = load_student(tmp_path / "split", device="auto")
    assert next(model.parameters()).device.type == resolve_device("auto").type
