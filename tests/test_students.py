"""Student models, windows and labels, and the student as a learner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from outlearn.core import Transition
from outlearn.errors import ConfigError
from outlearn.students import (
    ADConfig,
    ADTransformer,
    ArraySource,
    DPTConfig,
    DPTTransformer,
    GRUConfig,
    GRUStudent,
    StudentLearner,
    WindowSampler,
    count_params,
    gap_labels,
    split_train_val,
    step_inputs,
)
from outlearn.students.train import loss_fn

torch.set_num_threads(1)
A, NOBS = 3, 5


def tokens(b, t, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {
        "obs": torch.randint(0, NOBS, (b, t), generator=g),
        "prev_action": torch.randint(-1, A, (b, t), generator=g),
        "prev_reward": torch.rand(b, t, generator=g),
        "new_episode": torch.rand(b, t, generator=g) < 0.2,
    }


def seq_models():
    torch.manual_seed(0)
    ad = ADTransformer(ADConfig(n_layers=2, d_model=32, d_ff=64, context_len=16), NOBS, A)
    gru = GRUStudent(GRUConfig(d_model=32, hidden=32, context_len=16), NOBS, A)
    return [ad.eval(), gru.eval()]


@pytest.mark.parametrize("idx", [0, 1], ids=["ad", "gru"])
def test_causal_masking(idx):
    model = seq_models()[idx]
    x = tokens(2, 12)
    base = model(**x)
    for t in (0, 5, 10):
        y = {k: v.clone() for k, v in x.items()}
        y["obs"][:, t + 1] = (y["obs"][:, t + 1] + 1) % NOBS
        y["prev_reward"][:, t + 1] += 3.0
        out = model(**y)
        assert torch.equal(out[:, : t + 1], base[:, : t + 1])
        assert not torch.allclose(out[:, t + 1], base[:, t + 1])


def test_gru_and_ad_have_similar_size():
    ad = ADTransformer(ADConfig(context_len=100), 81, 5)
    gru = GRUStudent(GRUConfig(context_len=100), 81, 5)
    assert 0.8 < count_params(gru) / count_params(ad) < 1.25


def test_presets():
    p = ADConfig.preset("paper", context_len=60)
    assert (p.n_layers, p.n_heads, p.d_model, p.d_ff, p.dropout, p.attn_dropout) == (
        4, 4, 64, 2048, 0.1, 0.5)
    with pytest.raises(ConfigError, match="known: paper, small"):
        ADConfig.preset("huge")
    with pytest.raises(ConfigError, match="not divisible by n_heads=3"):
        ADConfig.preset("small", n_heads=3)


def dpt_inputs(b=3, n=10, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randint(0, NOBS, (b, n), generator=g), torch.randint(0, A, (b, n), generator=g),
            torch.rand(b, n, generator=g), torch.randint(0, NOBS + 1, (b, n), generator=g),
            torch.randint(0, NOBS, (b,), generator=g))


def test_dpt_is_invariant_to_permuting_its_context():
    torch.manual_seed(0)
    m = DPTTransformer(DPTConfig(d_model=32, d_ff=64, context_len=10), NOBS, A).eval()
    ctx = dpt_inputs()
    perm = torch.randperm(10)
    out, out_p = m(*ctx), m(*[c[:, perm] for c in ctx[:4]], ctx[4])
    assert out.shape == (3, 1, A)
    torch.testing.assert_close(out, out_p, rtol=1e-5, atol=1e-6)
    other = m(*ctx[:4], (ctx[4] + 1) % NOBS)  # the query matters
    assert not torch.allclose(out, other)
    assert m(*[c[:, :0] for c in ctx[:4]], ctx[4]).shape == (3, 1, A)  # empty context


def test_dpt_prefix_mode_predicts_from_each_prefix():
    torch.manual_seed(0)
    m = DPTTransformer(DPTConfig(d_model=32, d_ff=64, context_len=10, predict_prefixes=True),
                       NOBS, A).eval()
    ctx = dpt_inputs()
    out = m(*ctx)
    assert out.shape == (3, 11, A)
    short = m(*[c[:, :4] for c in ctx[:4]], ctx[4])  # position i sees transitions < i
    torch.testing.assert_close(out[:, :5], short, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("kind", ["ad", "gru", "dpt"])
def test_student_overfits_one_batch(kind):
    torch.manual_seed(0)
    if kind == "dpt":
        m = DPTTransformer(DPTConfig(d_model=32, d_ff=64, dropout=0.0, attn_dropout=0.0,
                                     context_len=10), NOBS, A)
        x = dpt_inputs(b=8)
        target = torch.randint(0, A, (8,))
    else:
        m = seq_models()[0 if kind == "ad" else 1]
        x = tuple(tokens(4, 16).values())
        target = torch.randint(0, A, (4, 16))
    m.train()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    mask = torch.ones_like(target, dtype=torch.bool)
    for _ in range(200):
        loss = loss_fn(m(*x), target, mask)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.05


def test_loss_fn_hand_values():
    logits = torch.zeros(1, 2, 2)
    assert float(loss_fn(logits, torch.tensor([[0, 1]]), torch.tensor([[True, False]]))) == (
        pytest.approx(np.log(2)))
    soft = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    assert float(loss_fn(logits, soft, torch.ones(1, 2, dtype=torch.bool))) == pytest.approx(
        np.log(2))


def test_step_inputs_hand_made():
    obs, act = np.array([7, 8, 9, 1]), np.array([0, 1, 2, 0])
    rew, done = np.array([0.0, 1.0, 0.5, 0.0]), np.array([False, True, False, False])
    a = step_inputs(obs, act, rew, done, has_prev=False)
    assert a["obs"].tolist() == [7, 8, 9, 1] and a["prev_action"].tolist() == [-1, 0, 1, 2]
    assert a["prev_reward"].tolist() == [0.0, 0.0, 1.0, 0.5]
    assert a["new_episode"].tolist() == [True, False, True, False]
    b = step_inputs(obs, act, rew, done, has_prev=True)
    assert b["obs"].tolist() == [8, 9, 1] and b["prev_action"].tolist() == [0, 1, 2]
    assert b["new_episode"].tolist() == [False, True, False]


def test_gap_labels_hand_made():
    # three episodes of 3 steps: ep0 obs [0,1,2], ep1 obs [1,1,3], ep2 obs [0,2,1]
    obs = np.array([0, 1, 2, 1, 1, 3, 0, 2, 1])
    act = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8])
    done = np.array([0, 0, 1, 0, 0, 1, 0, 0, 1], bool)
    lab, mask = gap_labels(obs, act, done, g=1, n=9)
    # step 0 (obs 0): ep1 never sees 0; step 1 (obs 1): first obs 1 in ep1 is step 3
    # step 2 (obs 2): none; steps 3,4 (obs 1): ep2's obs 1 at step 8; step 5 (obs 3): none
    assert mask.tolist() == [False, True, False, True, True, False, False, False, False]
    assert lab[mask].tolist() == [3, 8, 8]
    lab2, mask2 = gap_labels(obs, act, done, g=2, n=3)
    assert mask2.tolist() == [True, True, True] and lab2.tolist() == [6, 8, 7]


def array_source(L=5, S=40, ep=4, seed=0):
    rng = np.random.default_rng(seed)
    arr = {
        "obs": rng.integers(0, NOBS, (L, S)), "actions": rng.integers(0, A, (L, S)),
        "rewards": rng.random((L, S)).astype(np.float32),
        "terminated": np.zeros((L, S), bool), "truncated": np.zeros((L, S), bool),
        "optimal_actions": rng.integers(0, A, (L, S)),
        "probs": rng.dirichlet(np.ones(A), (L, S)).astype(np.float32),
        "split": np.array([0] * (L - 1) + [1]),
    }
    arr["truncated"][:, ep - 1 :: ep] = True
    return ArraySource(arr, NOBS, A, ep)


def test_window_sampler_examples_and_labels():
    src = array_source()
    mk = lambda labels, kind="sequence", g=1: WindowSampler(  # noqa: E731
        src, kind=kind, context_len=6, labels=labels, gap_episodes=g, batch_size=3,
        val_fraction=0.25, seed=1)
    s = mk("actions")
    ex = s.sequence_example(2, 5)
    a = src.arrays
    assert ex["obs"].tolist() == a["obs"][2, 5:11].tolist()
    assert ex["prev_action"].tolist() == a["actions"][2, 4:10].tolist()
    assert ex["new_episode"].tolist() == a["truncated"][2, 4:10].tolist()
    assert ex["target"].tolist() == a["actions"][2, 5:11].tolist() and ex["mask"].all()
    assert mk("optimal").sequence_example(2, 0)["target"].tolist() == (
        a["optimal_actions"][2, :6].tolist())
    assert mk("probs").sequence_example(1, 3)["target"].shape == (6, A)
    g = mk("gap", g=2).sequence_example(2, 5)
    lab, mask = gap_labels(a["obs"][2, 5:], a["actions"][2, 5:],
                           a["truncated"][2, 5:], 2, 6)
    assert g["target"].tolist() == lab.tolist() and g["mask"].tolist() == mask.tolist()
    d = mk("optimal", kind="set").set_example(0, 2, 30)
    assert d["ctx_next_obs"][1] == NOBS  # step 3 ends an episode: next obs unknown
    assert d["ctx_next_obs"][0] == a["obs"][0, 3] and d["target"] == a["optimal_actions"][0, 30]


def test_sampler_is_reproducible_and_val_is_held_out():
    src = array_source(L=9)
    s1 = WindowSampler(src, kind="sequence", context_len=6, labels="actions", gap_episodes=1,
                       batch_size=4, val_fraction=0.25, seed=5)
    assert set(s1.val_learners).isdisjoint(s1.train_learners) and len(s1.val_learners) == 2
    assert 8 not in set(s1.train_learners) | set(s1.val_learners)  # the test learner
    st = s1.state()
    b1 = s1.sample()
    s1.set_state(st)
    b2 = s1.sample()
    assert all(np.array_equal(b1[k], b2[k]) for k in b1)
    v1, v2 = s1.val_batches(2), s1.val_batches(2)
    assert np.array_equal(v1[1]["obs"], v2[1]["obs"])
    tr, va = split_train_val(np.arange(10), 0.3, seed=0)
    assert len(va) == 3 and np.array_equal(np.sort(np.r_[tr, va]), np.arange(10))
    with pytest.raises(ConfigError, match="leaves no training learners"):
        split_train_val(np.arange(2), 0.9, seed=0)
    with pytest.raises(ConfigError, match="does not apply to DPT"):
        WindowSampler(src, kind="set", context_len=6, labels="actions", gap_episodes=1,
                      batch_size=4, val_fraction=0.25, seed=5)


def run_learner(model, C, T=23, B=2, seed=0):
    """Drive a StudentLearner that recomputes its window (no cache) on random transitions;
    return (records, logits)."""
    rng = np.random.default_rng(seed)
    sl = StudentLearner(model, num_envs=B, context_len=C, mode="sample", seed=0, cache=False)
    rec, outs = [], []
    obs = rng.integers(0, NOBS, B)
    for t in range(T):
        outs.append(sl.logits(obs))
        p = sl.policy(obs, t)
        assert np.allclose(p.sum(-1), 1, atol=1e-5)
        act = rng.integers(0, A, B)
        rew = rng.random(B).astype(np.float32)
        nxt = rng.integers(0, NOBS, B)
        done = np.full(B, t % 5 == 4)
        sl.observe(Transition(obs, act, rew, nxt, np.zeros(B, bool), done), None, t)
        rec.append((obs, act, rew, nxt, done))
        obs = np.where(done, rng.integers(0, NOBS, B), nxt)
    return rec, outs


@pytest.mark.parametrize("idx", [0, 1], ids=["ad", "gru"])
def test_sliding_window_equals_recompute(idx):
    model, C = seq_models()[idx], 6
    rec, outs = run_learner(model, C)
    cols = [np.stack([r[i] for r in rec], 1) for i in range(5)]  # (B, T)
    obs, act, rew, _, done = cols
    for t in range(len(rec)):
        lo = max(0, t - C + 1)
        has_prev = lo > 0
        s = slice(lo - 1 if has_prev else 0, t + 1)
        x = step_inputs(obs[:, s], act[:, s], rew[:, s], done[:, s], has_prev)
        with torch.no_grad():
            ref = model(**{k: torch.from_numpy(v) for k, v in x.items()})[:, -1].numpy()
        np.testing.assert_allclose(outs[t], ref, rtol=1e-5, atol=1e-6)


def test_dpt_learner_context_is_its_recent_transitions():
    torch.manual_seed(0)
    m = DPTTransformer(DPTConfig(d_model=32, d_ff=64, context_len=8), NOBS, A)
    C = 5
    rec, outs = run_learner(m, C)
    obs, act, rew, nxt, done = [np.stack([r[i] for r in rec], 1) for i in range(5)]
    nxt = np.where(done, NOBS, nxt)
    cur = [r[0] for r in rec]
    for t in (0, 3, 12, 22):
        s = slice(max(0, t - C), t)
        ctx = [torch.from_numpy(np.ascontiguousarray(a[:, s])) for a in (obs, act, rew, nxt)]
        with torch.no_grad():
            ref = m.eval()(*ctx, torch.from_numpy(cur[t]))[:, -1].numpy()
        np.testing.assert_allclose(outs[t], ref, rtol=1e-5, atol=1e-6)


def test_greedy_mode_and_own_sampling():
    model = seq_models()[0]
    sl = StudentLearner(model, num_envs=3, context_len=4, mode="greedy", seed=1)
    obs = np.array([0, 1, 2])
    p = sl.policy(obs, 0)
    assert np.array_equal(p.argmax(-1), sl.logits(obs).argmax(-1)) and p.max() == 1.0
    assert np.array_equal(sl.act(obs, 0), p.argmax(-1))
    with pytest.raises(ValueError, match="exceeds the model's context_len"):
        StudentLearner(model, num_envs=1, context_len=99)


def test_check_family_refuses_other_sizes():
    from types import SimpleNamespace

    from outlearn.students import check_family

    model = seq_models()[0]
    check_family(model, SimpleNamespace(name="toy", num_obs=NOBS, num_actions=A))
    with pytest.raises(ConfigError, match=r"trained with \(num_obs, num_actions\)=\(5, 3\) "
                                          r"but env 'darkroom' has \(81, 5\)"):
        check_family(model, SimpleNamespace(name="darkroom", num_obs=81, num_actions=5))
