"""Training: resume is bit-identical, bad inputs fail clearly, a student learns its teacher."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from histories_tiny import synthetic_history as _tiny_history

from outlearn.config import parse_config
from outlearn.errors import CheckpointError, ConfigError, HistoryFileError
from outlearn.students import (
    StudentLearner,
    TrainConfig,
    latest_checkpoint,
    load_checkpoint,
    load_student,
    save_checkpoint,
    train,
    train_from_toml,
)

L, S, A, NOBS, EP = 6, 120, 3, 4, 10


def synthetic_history(path, env_name="toy", seed=0):
    """A tiny history (:mod:`histories_tiny`): S steps per learner."""
    return _tiny_history(path, env_name, seed, steps=S)


def tiny_cfg(tmp_path, out="run", **over):
    d = {
        "history": str(tmp_path / "h.h5"),
        "env": "toy",
        "student": {"kind": "ad", "model": {"n_layers": 1, "n_heads": 2, "d_model": 16,
                                            "d_ff": 32}},
        "data": {"context_len": 12, "batch_size": 4, "val_fraction": 0.2, "val_batches": 1},
        "optim": {"lr": 3e-3, "warmup_steps": 3, "total_steps": 20},
        "seed": 3, "out": str(tmp_path / out), "checkpoint_every": 100, "val_every": 5,
        "threads": 1,
    }
    for k, v in over.items():
        d[k] = {**d[k], **v} if isinstance(v, dict) else v
    return parse_config(TrainConfig, d)


@pytest.fixture
def hist(tmp_path):
    return synthetic_history(tmp_path / "h.h5")


@pytest.mark.parametrize("kind", ["ad", "dpt", "gru"])
def test_interrupted_resume_is_bit_identical(tmp_path, hist, kind):
    model = {"d_model": 16} if kind == "gru" else {"n_layers": 1, "d_model": 16, "d_ff": 32}
    labels = {"labels": "optimal"} if kind == "dpt" else {}
    student = {"kind": kind, "model": model}
    full = train(tiny_cfg(tmp_path, "full", student=student, data=labels), quiet=True)
    cfg = tiny_cfg(tmp_path, "split", student=student, data=labels)
    first = train(cfg, stop_after=10, quiet=True)
    assert load_checkpoint(first)["step"] == 10
    last = train(cfg, quiet=True)
    a, b = load_checkpoint(full), load_checkpoint(last)
    assert a["step"] == b["step"] == 20
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k]), k
    # a finished run is not trained again
    assert train(cfg, quiet=True) == last


def test_training_lowers_validation_loss(tmp_path, hist):
    cfg = tiny_cfg(tmp_path, optim={"total_steps": 150, "lr": 1e-2}, val_every=150,
                   data={"labels": "probs", "val_batches": 2})
    out = train(cfg, quiet=True)
    rows = [json.loads(x) for x in (cfg.out / "metrics.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 150 and rows[-1]["tokens_per_s"] > 0
    # cross-entropy to the teacher's probs on held-out learners: uniform is log 3 = 1.10,
    # the floor is the teacher's entropy (0.485); the student that learned the rule gets
    # 0.488 here
    assert rows[-1]["val_loss"] < 0.55
    model, cfg2 = load_student(out)
    assert cfg2 == cfg and not any(p.requires_grad for p in model.parameters())


def test_wrong_env_is_refused(tmp_path, hist):
    with pytest.raises(HistoryFileError, match=r"comes from env 'toy'.*env = 'darkroom'"):
        train(tiny_cfg(tmp_path, env="darkroom"), quiet=True)


def test_missing_history_is_refused(tmp_path):
    with pytest.raises(HistoryFileError, match="does not exist"):
        train(tiny_cfg(tmp_path), quiet=True)


def test_incompatible_checkpoint_names_the_fields(tmp_path, hist):
    train(tiny_cfg(tmp_path), stop_after=2, quiet=True)
    with pytest.raises(CheckpointError, match=r"optim\.lr: checkpoint 0\.003 vs config 0\.01.*"
                                              r"new out dir"):
        train(tiny_cfg(tmp_path, optim={"lr": 1e-2}), quiet=True)


def test_checkpoint_from_before_an_option_existed_resumes(tmp_path, hist):
    """A checkpoint written before an option was added (here ``data.set_start``) resumes when
    the option's default is what that version did; any real difference is still refused."""
    cfg = tiny_cfg(tmp_path)
    p = train(cfg, stop_after=10, quiet=True)
    ck = load_checkpoint(p)
    old = json.loads(ck["train_config"])
    del old["data"]["set_start"]
    resume = json.loads(ck["config_json"])
    del resume["data"]["set_start"]
    ck.update(train_config=json.dumps(old), config_json=json.dumps(resume),
              config_hash="0123456789ab")
    save_checkpoint(p, ck)
    full = load_checkpoint(train(tiny_cfg(tmp_path, "full"), quiet=True))
    resumed = load_checkpoint(train(cfg, quiet=True))
    assert resumed["step"] == 20
    for k in full["model"]:
        assert torch.equal(full["model"][k], resumed["model"][k]), k
    last = latest_checkpoint(cfg.out)
    ck = load_checkpoint(last)
    old["data"]["set_start"] = resume["data"]["set_start"] = "first"
    ck.update(train_config=json.dumps(old), config_json=json.dumps(resume),
              config_hash="0123456789ab")
    save_checkpoint(last, ck)
    with pytest.raises(CheckpointError, match=r"data\.set_start: checkpoint 'first' vs config "
                                              r"'random'"):
        train(cfg, quiet=True)


def test_other_checkpoint_format_is_refused(tmp_path, hist):
    p = train(tiny_cfg(tmp_path), stop_after=2, quiet=True)
    ck = load_checkpoint(p)
    save_checkpoint(p, ck)
    raw = torch.load(p, weights_only=True)
    raw["format_version"] = 99
    torch.save(raw, p)
    with pytest.raises(CheckpointError, match=r"format version 99; this code reads version 1"):
        train(tiny_cfg(tmp_path), quiet=True)
    p.write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="cannot be read"):
        load_student(p)


def test_history_of_other_sizes_than_checkpoint(tmp_path, hist):
    train(tiny_cfg(tmp_path), stop_after=2, quiet=True)
    ck_path = latest_checkpoint(tmp_path / "run")
    ck = load_checkpoint(ck_path)
    ck["dims"] = {"num_obs": 81, "num_actions": 5}
    save_checkpoint(ck_path, ck)
    with pytest.raises(HistoryFileError, match=r"model was built for .*num_obs': 81"):
        train(tiny_cfg(tmp_path), quiet=True)


def test_config_errors_name_the_key(tmp_path, hist):
    p = tmp_path / "t.toml"
    p.write_text(f'history = "{hist}"\n[data]\ncontext_len = 8\nlabelz = "actions"\n')
    with pytest.raises(ConfigError, match=r"unknown key 'data.labelz'"):
        train_from_toml(p)
    with pytest.raises(ConfigError, match=r"student.model.context_len=5 differs"):
        train(tiny_cfg(tmp_path, student={"model": {"context_len": 5}}), quiet=True)
    with pytest.raises(ConfigError, match=r"unknown key 'widht'"):
        train(tiny_cfg(tmp_path, student={"model": {"widht": 5}}), quiet=True)
    with pytest.raises(ConfigError, match=r"context_len=500 needs histories of >= 500"):
        train(tiny_cfg(tmp_path, data={"context_len": 500}), quiet=True)
    with pytest.raises(ConfigError, match=r"unknown student 'bert'"):
        train(tiny_cfg(tmp_path, student={"kind": "bert"}), quiet=True)


def test_trained_student_runs_as_learner(tmp_path, hist):
    model, cfg = load_student(train(tiny_cfg(tmp_path), stop_after=3, quiet=True))
    sl = StudentLearner(model, num_envs=2, context_len=cfg.data.context_len, mode="greedy")
    p = sl.policy(np.array([1, 2]), 0)
    assert p.shape == (2, A) and np.all(p.sum(-1) == 1)


def test_repo_configs_parse():
    from outlearn.config import load_toml

    for name in ("train-ad-bandit", "train-ad-darkroom"):
        cfg = load_toml(TrainConfig, f"configs/{name}.toml")
        assert cfg.student.kind == "ad" and cfg.data.labels == "actions"


@pytest.mark.slow
def test_ad_learns_a_bandit_in_context(tmp_path):
    """End to end: UCB histories -> AD -> in-context play on held-out bandits beats random."""
    import jax

    from outlearn.collect import CollectConfig, collect
    from outlearn.envs import make_env
    from outlearn.histories import History
    from outlearn.rollout import rollout_steps

    torch.set_num_threads(1)
    ccfg = parse_config(CollectConfig, {
        "env": {"name": "bernoulli-bandit", "kwargs": {"num_arms": 5}},
        "teacher": {"name": "ucb1", "kwargs": {}}, "tasks": {"n_train": 300, "n_test": 40},
        "num_steps": 100, "out": str(tmp_path / "b.h5"), "chunk_steps": 100})
    hpath = collect(ccfg, progress=False)
    cfg = parse_config(TrainConfig, {
        "history": str(hpath), "env": "bernoulli-bandit", "out": str(tmp_path / "run"),
        "student": {"model": {"dropout": 0.0, "attn_dropout": 0.0}},
        "data": {"context_len": 100, "batch_size": 32}, "threads": 1, "val_every": 200,
        "optim": {"lr": 1e-3, "warmup_steps": 50, "total_steps": 600}})
    model, _ = load_student(train(cfg, quiet=True))
    with History(hpath) as h:
        test_ids = h.task_ids[h.learners("test")]
    fam = make_env("bernoulli-bandit", num_arms=5)
    params = fam.task_params(jax.numpy.asarray(test_ids))
    sl = StudentLearner(model, num_envs=len(test_ids), context_len=100, mode="sample", seed=0)
    keys = jax.random.split(jax.random.key(123), len(test_ids))
    traj = rollout_steps(fam, sl.policy, sl.observe, keys, params, 100)
    late = traj.expected_rewards[:, 50:].mean()
    means = np.asarray(params.means)  # (tasks, arms)
    random_level, best = means.mean(), means.max(-1).mean()
    print(f"AD bandit: late expected reward {late:.3f}, random {random_level:.3f}, "
          f"best arm {best:.3f}")
    # past its first 50 pulls the student closes most of the gap from random to the best arm
    assert late > random_level + 0.5 * (best - random_level), (late, random_level, best)


def _weights(ck):
    return load_checkpoint(ck)["model"]


@pytest.mark.parametrize("dropout", [0.0, 0.1], ids=["parallel-forward", "dropout"])
def test_thread_count_does_not_change_the_weights(tmp_path, hist, dropout):
    """The shards of a batch run on 1 or 2 threads: the same weights, bit for bit (with
    dropout the forward passes run in shard order, the backward passes in parallel)."""
    model = {"n_layers": 1, "n_heads": 2, "d_model": 16, "d_ff": 32, "dropout": dropout,
             "attn_dropout": dropout}
    a = train(tiny_cfg(tmp_path, "one", threads=1, student={"model": model}), quiet=True)
    b = train(tiny_cfg(tmp_path, "two", threads=2, student={"model": model}), quiet=True)
    wa, wb = _weights(a), _weights(b)
    assert wa.keys() == wb.keys()
    for k in wa:
        assert torch.equal(wa[k], wb[k]), k
    c = train(tiny_cfg(tmp_path, "unsharded", shards=1, student={"model": model}), quiet=True)
    assert any(not torch.equal(wa[k], _weights(c)[k]) for k in wa)  # shards: in the identity


def test_shards_must_divide_the_batch(tmp_path, hist):
    with pytest.raises(ConfigError, match=r"shards=3 does not divide data.batch_size=4"):
        tiny_cfg(tmp_path, shards=3)


def _block_losses(out, block=25):
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    loss = np.array([r["loss"] for r in rows])
    return loss.reshape(-1, block).mean(1)


def test_bf16_loss_curve_stays_within_fp32_seed_spread(tmp_path, hist):
    """fp32 is the reference: a bf16 run differs from its fp32 twin (same seed) by no more
    than two fp32 runs of different seeds differ, at every block of 25 steps."""
    over = dict(student={"model": {"n_layers": 2, "d_model": 32, "d_ff": 64, "dropout": 0.0,
                                   "attn_dropout": 0.0}},
                data={"batch_size": 8}, optim={"total_steps": 150, "warmup_steps": 10})
    fp32 = []
    for seed in (0, 1, 2):
        train(tiny_cfg(tmp_path, f"fp32-{seed}", seed=seed, **over), quiet=True)
        fp32.append(_block_losses(tmp_path / f"fp32-{seed}"))
    train(tiny_cfg(tmp_path, "bf16", seed=0, precision="bf16", **over), quiet=True)
    bf16 = _block_losses(tmp_path / "bf16")
    fp32 = np.stack(fp32)
    spread = np.max([np.abs(fp32[i] - fp32[j]) for i in range(3) for j in range(i + 1, 3)], 0)
    assert np.isfinite(bf16).all()
    assert bf16[-1] < bf16[0] - 0.1  # it learns
    assert (np.abs(bf16 - fp32[0]) <= spread).all(), (bf16, fp32)


def test_checkpoint_from_before_relative_positions(tmp_path, hist):
    """An AD checkpoint written before ``positions`` existed (learned absolute positions)
    still evaluates (recomputing its window); training cannot resume it into a new model."""
    cfg = tiny_cfg(tmp_path, student={"model": {"positions": "learned"}})
    p = train(cfg, stop_after=5, quiet=True)
    ck = load_checkpoint(p)
    assert "pos.weight" in ck["model"]
    del ck["model_config"]["positions"]
    save_checkpoint(p, ck)
    model, _ = load_student(p)
    assert model.cfg.positions == "learned" and not model.supports_cache
    sl = StudentLearner(model, num_envs=2, context_len=12)
    assert sl.kv is None and sl.policy(np.array([0, 1]), 0).shape == (2, A)
    with pytest.raises(CheckpointError, match="train into a new out dir"):
        train(cfg, quiet=True)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_inf_and_nan_are_refused_in_any_float_field(tmp_path, hist, value):
    with pytest.raises(ConfigError, match=r"optim\.lr.*finite"):
        tiny_cfg(tmp_path, optim={"lr": value})
    with pytest.raises(ConfigError, match=r"student\.model.*rope_base|rope_base.*finite"):
        train(tiny_cfg(tmp_path, student={"model": {"rope_base": value}}), quiet=True)


def test_a_diverging_run_stops_with_a_message_and_no_nan_checkpoint(tmp_path, hist):
    from outlearn.errors import TrainingError

    cfg = tiny_cfg(tmp_path, optim={"lr": 1e30, "warmup_steps": 0}, checkpoint_every=1)
    with pytest.raises(TrainingError, match=r"diverged. Lower optim\.lr \(now 1e\+30\)"):
        train(cfg, quiet=True)
    last = latest_checkpoint(cfg.out)  # written before the divergence: finite weights
    assert last is not None
    for v in load_checkpoint(last)["model"].values():
        assert torch.isfinite(v).all()
