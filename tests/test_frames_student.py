"""Students that see frames: AD, adq and the GRU on MinAtar histories (env family "gymnax").

One tiny history of a random teacher on Breakout-MinAtar (10x10x4 bool frames) goes
through the same window sampler, tokens, training loop, checkpoints, step-path learner
(with and without the key/value cache) and evaluation as index observations do.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
import torch
from recording import Recording

from outlearn.collect import CollectConfig, collect
from outlearn.config import parse_config
from outlearn.envs import make_env
from outlearn.evaluation.evaluate import LearnerSpec, run_learner
from outlearn.rng import unit_keys
from outlearn.rollout import rollout_steps
from outlearn.students import (
    ADConfig,
    ADTransformer,
    GRUConfig,
    GRUStudent,
    TrainConfig,
    WindowSampler,
    load_student,
    step_inputs,
    train,
)
from outlearn.students.sharded import loss_fn
from outlearn.students.tokens import FrameEncoder
from outlearn.students.train import HistoryAdapter

torch.set_num_threads(1)
EP, C, SHAPE = 8, 6, (10, 10, 4)
GAME = {"name": "Breakout-MinAtar", "episode_len": EP}


@pytest.fixture(scope="module")
def history(tmp_path_factory):
    """Random play on Breakout-MinAtar: 2 train tasks + 1 test task x 2 learners, 48 steps
    (6 episodes of at most 8 steps), frames chunked 16 steps at a time."""
    out = tmp_path_factory.mktemp("frames") / "breakout.h5"
    cfg = parse_config(CollectConfig, {
        "seed": 0, "learners_per_task": 2, "num_steps": 48, "chunk_steps": 16, "out": str(out),
        "env": {"name": "gymnax", "kwargs": GAME}, "teacher": {"name": "random"},
        "tasks": {"seed": 0, "n_train": 2, "n_test": 1}})
    return collect(cfg, progress=False)


@pytest.fixture(scope="module")
def family():
    return make_env("gymnax", **GAME)


def train_cfg(history, out, encoder="linear", kind="ad", steps=6, **over):
    model = ({"d_model": 16, "hidden": 16, "n_layers": 1} if kind == "gru"
             else {"n_layers": 1, "d_model": 16, "d_ff": 32})
    data = {"history": str(history), "env": "gymnax",
            "student": {"kind": kind, "model": {**model, "obs_encoder": encoder}},
            "data": {"context_len": C, "batch_size": 4, "val_fraction": 0.25},
            "optim": {"lr": 3e-3, "warmup_steps": 2, "total_steps": steps},
            "seed": 1, "out": str(out), "checkpoint_every": 3, "val_every": 3, "threads": 1,
            **over}
    return parse_config(TrainConfig, data)


def frame_model(kind="ad", encoder="conv", seed=0):
    torch.manual_seed(seed)
    if kind == "ad":
        cfg = ADConfig(n_layers=2, d_model=32, d_ff=64, context_len=C, obs_shape=list(SHAPE),
                       obs_encoder=encoder)
        return ADTransformer(cfg, 0, 3).eval()
    cfg = GRUConfig(d_model=32, hidden=32, context_len=C, obs_shape=list(SHAPE),
                    obs_encoder=encoder)
    return GRUStudent(cfg, 0, 3).eval()


def test_frame_windows_come_from_the_history_in_chunks(history, monkeypatch):
    """A batch's frames are the history's frames at its steps, bit for bit, whether the
    learners' rows are cached in memory or each window is read from the file's chunks."""
    from outlearn.students import data

    src = HistoryAdapter(history)
    assert src.obs_shape == SHAPE and src.num_obs == 0

    def batch():
        s = WindowSampler(src, kind="sequence", context_len=C, labels="actions",
                          gap_episodes=1, batch_size=5, val_fraction=0.0, seed=2)
        return s, s.sample()

    s, cached = batch()
    assert s._cache_rows
    monkeypatch.setattr(data, "CACHE_BYTES", 0)
    s, read = batch()
    assert not s._cache_rows and not s._rows
    assert read["obs"].shape == (5, C, *SHAPE) and read["obs"].dtype == np.bool_
    for k in cached:
        np.testing.assert_array_equal(read[k], cached[k], err_msg=k)
    assert read["obs"].any()
    full = src.h.read_steps("obs")
    ex = s.sequence_example(2, 9)
    np.testing.assert_array_equal(ex["obs"], full[2, 9:9 + C])
    src.close()


@pytest.mark.parametrize("encoder", ["linear", "conv"])
def test_ad_trains_on_frames_and_resumes_bit_exactly(history, tmp_path, encoder):
    """Each encoder trains (finite losses) and a run stopped and resumed from its
    checkpoint ends with the weights of an uninterrupted one; the loaded student reads
    frames with the chosen encoder."""
    ck = train(train_cfg(history, tmp_path / "full", encoder), quiet=True)
    losses = [json.loads(x)["loss"] for x in (tmp_path / "full" / "metrics.jsonl").open()]
    assert len(losses) == 6 and np.isfinite(losses).all()
    part = train_cfg(history, tmp_path / "part", encoder)
    train(part, stop_after=3, quiet=True)
    ck2 = train(part, quiet=True)
    a, _ = load_student(ck)
    b, _ = load_student(ck2)
    assert a.obs_shape == SHAPE and a.cfg.obs_encoder == encoder
    assert isinstance(a.embed.obs, FrameEncoder)
    assert (a.embed.obs.conv is not None) == (encoder == "conv")
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert torch.equal(x, y), k


@pytest.mark.parametrize(("kind", "encoder"), [("ad", "linear"), ("ad", "conv"),
                                               ("gru", "conv")])
def test_loss_decreases_on_a_repeated_batch(history, kind, encoder):
    src = HistoryAdapter(history)
    s = WindowSampler(src, kind="sequence", context_len=C, labels="actions", gap_episodes=1,
                      batch_size=8, val_fraction=0.0, seed=0)
    b = {k: torch.from_numpy(v) for k, v in s.sample().items()}
    src.close()
    model = frame_model(kind, encoder).train()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(40):
        loss = loss_fn(model(b["obs"], b["prev_action"], b["prev_reward"], b["new_episode"]),
                       b["target"], b["mask"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.5 * losses[0], losses


def test_students_act_on_frames_cache_equals_recompute(family):
    """On Breakout frames, AD's key/value cache gives at every step the logits of a full
    recompute of its stream (across episode ends and window slides), and AD without the
    cache and the GRU give the logits of their recomputed training windows."""
    ids = np.arange(3)
    params = family.task_params(jax.numpy.asarray(ids))
    steps = 3 * C + 2 * EP + 1
    ad = frame_model("ad")
    learners = {"cache": Recording(ad, num_envs=3, context_len=C, seed=0),
                "ad": Recording(ad, num_envs=3, context_len=C, seed=0, cache=False),
                "gru": Recording(frame_model("gru", "linear"), num_envs=3, context_len=C)}
    assert learners["cache"].kv is not None and learners["ad"].kv is None
    for name, lr in learners.items():
        traj = rollout_steps(family, lr.policy, lr.observe, unit_keys(3, ids), params, steps)
        assert traj.obs.shape == (3, steps, *SHAPE)
        done = traj.terminated | traj.truncated
        assert done[:, :-1].sum() >= 3 * (steps // EP)
        got = np.stack(lr.seen, 1)
        with torch.no_grad():
            if name == "cache":
                x = step_inputs(traj.obs, traj.actions, traj.rewards, done, has_prev=False)
                want = ad.forward_stream(*(torch.from_numpy(x[k]) for k in (
                    "obs", "prev_action", "prev_reward", "new_episode"))).numpy()
                np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
                continue
            for t in range(steps):
                lo = max(0, t - C + 1)
                sl = slice(lo - 1 if lo else 0, t + 1)
                x = step_inputs(traj.obs[:, sl], traj.actions[:, sl], traj.rewards[:, sl],
                                done[:, sl], lo > 0)
                want = lr.model(**{k: torch.from_numpy(v) for k, v in x.items()})[:, -1]
                np.testing.assert_allclose(got[:, t], want.numpy(), rtol=1e-5, atol=1e-5,
                                           err_msg=f"{name} step {t}")


def test_run_learner_with_a_trained_frame_student(history, family, tmp_path):
    """A frame student trained by `train` runs in context on Breakout through the
    evaluation's run_learner, on held-out tasks and two seeds."""
    ck = train(train_cfg(history, tmp_path / "run", "conv"), quiet=True)
    spec = LearnerSpec(name="ad", kind="student", checkpoint=ck)
    ret, reg = run_learner(family, spec, np.array([5, 6]), [0, 1], num_episodes=3)
    assert ret.shape == (2, 2, 3) and np.isfinite(ret).all() and (ret >= 0).all()
    assert np.isnan(reg).all()  # no oracle on MinAtar: regret is undefined
