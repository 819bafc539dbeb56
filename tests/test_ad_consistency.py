"""Train/eval consistency of the sequence students (AD, GRU) on Dark Room.

The student run in context (``StudentLearner.observe`` / ``logits``, driven as the rollout
loop drives it) must see exactly the tokens the training sampler builds for the same
steps of the same history: the same (obs, previous action, previous reward, new-episode
flag) at every position, across episode boundaries (truncated and terminated) and at the
very first step, so its logits at every step equal the model's on the training window.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest
import torch

from outlearn.collect import CollectConfig, EnvSection, TasksSection, TeacherSection, collect
from outlearn.core import Transition
from outlearn.envs.darkroom import make_darkroom
from outlearn.errors import ConfigError
from outlearn.rng import unit_keys
from outlearn.rollout import rollout_steps
from outlearn.students import (
    ADConfig,
    ADTransformer,
    ArraySource,
    GRUConfig,
    GRUStudent,
    StudentLearner,
    WindowSampler,
)
from outlearn.students.tokens import ObsEmbedding, step_inputs
from outlearn.students.train import HistoryAdapter

torch.set_num_threads(1)
C = 6  # context: 1.5 episodes of 4 steps, so windows straddle episode boundaries
ENV = {"size": 3, "episode_len": 4}


def make_model(kind: str, num_obs: int = 9, num_actions: int = 5) -> torch.nn.Module:
    torch.manual_seed(3)
    if kind.startswith("ad"):
        extra = {"prev_obs": True, "obs_factors": [3, 3]} if kind == "ad-grid" else {}
        m = ADTransformer(ADConfig(n_layers=2, d_model=32, d_ff=64, context_len=C, **extra),
                          num_obs, num_actions)
    else:
        m = GRUStudent(GRUConfig(d_model=32, hidden=32, context_len=C), num_obs, num_actions)
    return m.eval()


@pytest.fixture(scope="module", params=[False, True], ids=["truncated", "terminated"])
def history(request, tmp_path_factory):
    """A tiny Q-learning history: 3x3 room, 4-step episodes, 2 train goals x 2 learners."""
    env = {**ENV, "terminate_on_goal": request.param}
    cfg = CollectConfig(env=EnvSection(name="darkroom", kwargs=env),
                        teacher=TeacherSection(name="qlearning"),
                        tasks=TasksSection(seed=0, n_train=2, n_test=1), learners_per_task=2,
                        num_episodes=6, seed=0,
                        out=tmp_path_factory.mktemp("h") / "h.h5")
    return collect(cfg, progress=False)


def sampler_for(src, T: int) -> WindowSampler:
    return WindowSampler(src, kind="sequence", context_len=T, labels="actions",
                         gap_episodes=1, batch_size=1, val_fraction=0.0, seed=0)


def training_logits(model, sampler: WindowSampler, learner: int, t: int) -> np.ndarray:
    """The model's logits (A,) at step ``t`` of a training window ending at ``t``."""
    start = max(0, t - C + 1)
    ex = sampler.sequence_example(learner, start)
    pos = t - start  # a window starting at 0 is causal: its prefix is the short context
    x = {k: torch.from_numpy(np.ascontiguousarray(ex[k][None])) for k in
         ("obs", "prev_action", "prev_reward", "new_episode")}
    with torch.no_grad():
        return model(**x)[0, pos].numpy()


def stream_logits(model, obs, actions, rewards, done) -> np.ndarray:
    """(B, T, A): every step seeing its last C steps at every layer (the cached path)."""
    x = step_inputs(obs, actions, rewards, done, has_prev=False)
    with torch.no_grad():
        return model.forward_stream(*(torch.from_numpy(x[k]) for k in (
            "obs", "prev_action", "prev_reward", "new_episode"))).numpy()


@pytest.mark.parametrize(("kind", "cache"), [
    ("ad", False), ("ad", True), ("ad-grid", False), ("ad-grid", True), ("gru", False)])
def test_replayed_history_matches_training_windows(history, kind, cache):
    """Recomputing its window, the student sees at every step exactly a training window;
    with the key/value cache, exactly a training window until the window first slides
    (t < C), and from then on the stream form (each layer sees its last C steps)."""
    src = HistoryAdapter(history)
    model = make_model(kind, src.num_obs, src.num_actions)
    sampler = sampler_for(src, C)
    learners = src.learners("train")
    w = {k: np.stack([src.window(int(lr), 0, src.num_steps)[k] for lr in learners])
         for k in ("obs", "actions", "rewards", "terminated", "truncated")}
    done = w["terminated"] | w["truncated"]
    assert done[:, :-1].any() and (done.sum(1) >= 3).all()  # boundaries inside windows
    student = StudentLearner(model, num_envs=len(learners), context_len=C, mode="sample",
                             cache=cache)
    assert (student.kv is not None) == cache
    if cache:
        stream = stream_logits(model, w["obs"], w["actions"], w["rewards"], done)
    for t in range(src.num_steps):
        got = student.logits(w["obs"][:, t])
        if cache and t >= C:
            want = stream[:, t]
        else:
            want = np.stack([training_logits(model, sampler, int(lr), t) for lr in learners])
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5, err_msg=f"step {t}")
        nxt = w["obs"][:, min(t + 1, src.num_steps - 1)]
        student.observe(Transition(w["obs"][:, t], w["actions"][:, t], w["rewards"][:, t],
                                   nxt, w["terminated"][:, t], w["truncated"][:, t]))
    src.close()


def test_labels_are_the_action_taken_at_the_token_step(history):
    """Label at position i is a_s; the token of step s holds a_{s-1}, never a_s."""
    src = HistoryAdapter(history)
    sampler = sampler_for(src, C)
    full = src.window(0, 0, src.num_steps)
    for start in (0, 1, 5, src.num_steps - C):
        ex = sampler.sequence_example(0, start)
        s = np.arange(start, start + C)
        np.testing.assert_array_equal(ex["target"], full["actions"][s])
        np.testing.assert_array_equal(ex["obs"], full["obs"][s])
        prev = np.where(s > 0, full["actions"][np.maximum(s - 1, 0)], -1)
        np.testing.assert_array_equal(ex["prev_action"], prev)
        ended = full["terminated"] | full["truncated"]
        np.testing.assert_array_equal(ex["new_episode"],
                                      np.where(s > 0, ended[np.maximum(s - 1, 0)], True))
        prev_r = np.where(s > 0, full["rewards"][np.maximum(s - 1, 0)], 0.0)
        np.testing.assert_array_equal(ex["prev_reward"], prev_r)
    src.close()


@pytest.mark.parametrize("cache", [False, True], ids=["recompute", "cache"])
@pytest.mark.parametrize("terminate", [False, True], ids=["truncated", "terminated"])
@pytest.mark.parametrize("kind", ["ad", "ad-grid"])
def test_rollout_probs_match_training_windows(terminate, kind, cache):
    """End to end: the student driven by the real rollout loop acted with exactly the
    softmax of the model on the training windows of its own trajectory (with the cache:
    until its window first slides, then the softmax of the stream form)."""
    family = make_darkroom(**ENV, terminate_on_goal=terminate)
    model = make_model(kind)
    ids = np.array([2, 6, 8])
    student = StudentLearner(model, num_envs=len(ids), context_len=C, mode="sample",
                             cache=cache)
    traj = rollout_steps(family, student.policy, student.observe, unit_keys(0, ids),
                         family.task_params(jax.numpy.asarray(ids)), 14)
    done = traj.terminated | traj.truncated
    assert done[:, :-1].any()
    src = ArraySource({"obs": traj.obs, "actions": traj.actions, "rewards": traj.rewards,
                       "terminated": traj.terminated, "truncated": traj.truncated,
                       "split": np.zeros(len(ids), np.uint8)}, 9, 5, 4)
    sampler = sampler_for(src, C)
    stream = stream_logits(model, traj.obs, traj.actions, traj.rewards, done)
    for t in range(traj.obs.shape[1]):
        z = (stream[:, t] if cache and t >= C else
             np.stack([training_logits(model, sampler, i, t) for i in range(len(ids))]))
        p = np.exp(z - z.max(-1, keepdims=True))
        np.testing.assert_allclose(traj.probs[:, t], p / p.sum(-1, keepdims=True),
                                   rtol=1e-5, atol=1e-6, err_msg=f"step {t}")


def test_cached_rows_give_the_same_windows(history, monkeypatch):
    """The sampler's in-memory rows give exactly the windows read from the file."""
    import outlearn.students.data as data

    src = HistoryAdapter(history)
    cached = sampler_for(src, C)
    monkeypatch.setattr(data, "CACHE_BYTES", 0)
    direct = sampler_for(src, C)
    assert cached._cache_rows and not direct._cache_rows
    for lr in src.learners("train"):
        for start in (0, 3, src.num_steps - C):
            a, b = cached.sequence_example(int(lr), start), direct.sequence_example(int(lr), start)
            for k in a:
                np.testing.assert_array_equal(a[k], b[k])
    src.close()


def test_grid_embedding_is_the_sum_of_its_coordinates():
    emb = ObsEmbedding(12, 8, factors=[3, 4], extra=1)
    cells = torch.tensor([[0, 5, 11, 12]])  # (0,0), (1,1), (2,3), "none"
    out = emb(cells)[0]
    row, col = emb.digits
    torch.testing.assert_close(out[1], row.weight[1] + col.weight[1])
    torch.testing.assert_close(out[2], row.weight[2] + col.weight[3])
    torch.testing.assert_close(out[3], emb.extra.weight[0])
    with pytest.raises(ConfigError, match=r"obs_factors=\[3, 3\] multiply to 9 .* 12"):
        ObsEmbedding(12, 8, factors=[3, 3])
    with pytest.raises(ConfigError, match="obs_factors"):
        ADTransformer(ADConfig(d_model=8, n_heads=2, context_len=4, obs_factors=[2, 2]), 9, 5)


@pytest.mark.slow
def test_ad_learns_held_out_goals_in_context(tmp_path):
    """configs/demo.toml's setting, one student (about a minute of CPU): on 5x5 Dark Room
    goals it never saw, AD run in context rises from near random to most of optimal."""
    from outlearn.envs.base import split_tasks
    from outlearn.evaluation.baselines import make_baseline
    from outlearn.evaluation.evaluate import run_learner
    from outlearn.students import load_student
    from outlearn.students.train import TrainConfig, train

    env = {"size": 5, "episode_len": 10}
    tkw = {"initial_value": 1.0, "eps_schedule": "linear", "eps_start": 1.0, "eps_end": 0.0,
           "eps_decay_steps": 100}
    hist = collect(CollectConfig(
        env=EnvSection(name="darkroom", kwargs=env), teacher=TeacherSection(name="qlearning",
        kwargs=tkw), tasks=TasksSection(seed=0, n_train=17, n_test=8), learners_per_task=16,
        num_episodes=40, seed=0, out=tmp_path / "h.h5"), progress=False)
    model = {"prev_obs": True, "obs_factors": [5, 5], "dropout": 0.0, "attn_dropout": 0.0}
    ck = train(TrainConfig.model_validate({
        "history": hist, "env": "darkroom", "out": tmp_path / "st", "threads": 1,
        "student": {"kind": "ad", "preset": "small", "model": model},
        "data": {"context_len": 30, "batch_size": 32, "val_fraction": 0.0},
        "optim": {"lr": 3e-3, "total_steps": 2000, "warmup_steps": 50}}), quiet=True)
    student, _ = load_student(ck)
    family = make_darkroom(**env)
    test = split_tasks(family, 0, 17, 8)[1]
    opt = np.asarray(jax.vmap(family.optimal_return)(family.task_params(test)))[None, :, None]
    make = lambda n, seed: StudentLearner(student, num_envs=n, context_len=30, seed=seed)  # noqa: E731
    frac = run_learner(family, make, test, [0, 1], 45)[0] / opt
    rand = run_learner(family, make_baseline("random", family), test, [0, 1], 45)[0] / opt
    first, last = frac[..., :5].mean(), frac[..., -5:].mean()
    print(f"held-out goals: student {first:.3f} -> {last:.3f}, random {rand.mean():.3f}")
    assert last > rand.mean() + 0.4 and last > first + 0.2
