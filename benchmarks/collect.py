"""Collection speed: teachers fused in ``rollout_scan`` vs a plain-numpy / PyTorch loop.

    .venv/bin/python benchmarks/collect.py [--repeats 3] [--q-steps 2000] [--ppo-steps 1000]
    .venv/bin/python benchmarks/collect.py --only dqn [--dqn-repeats 7]

**Dark Room** (``--only darkroom``): env steps/s (median of ``--repeats``) for 1,024
tabular Q-learners and 256 PPO learners on 9x9 Dark Room, each beside a numpy
implementation of the same learner (batched over learners with numpy arrays, a Python
loop over steps), and the ratio.

Two JAX figures per learner:
* ``rollout_scan (compiled)``: the public API on a repeated call (the program is
  compiled once per (family, learner, chunk length)), including the initial reset and
  the transfer of the trajectory to numpy.
* ``learner alone``: the learner's policy + update in a scan on synthetic
  transitions (no key derivation, no action sampling, no environment): the ceiling.

Issue target (2 shared CPU cores, per CPU-second): Q-learning >= 15M steps/s and >= 3x
numpy; PPO >= 150k steps/s.

**DQN on Breakout-MinAtar** (``--only dqn``; issue 16 item 5). What is measured:
* JAX: the DQN teacher (teachers/dqn.py, default config: MLP 400-128-128-3, buffer
  10,000, batch 32, a gradient step every env step from step 1,000, target every 1,000
  steps, epsilon 1 -> 0.1 over 25,000 steps, Adam 2.5e-4) for 1, 8 and 64 vmapped
  learners on the gymnax family, run chunk by chunk (``--dqn-chunk`` steps) through the
  program ``rollout_scan`` compiles (env step + auto-reset, policy, action sampling,
  replay write, gradient step, target copy, all in one scan), each chunk's trajectory
  copied to numpy as ``rollout_scan`` does. Only chunks after ``learning_starts`` are
  timed, so every learner-step is one env step and one gradient update: env steps/s =
  gradient updates/s.
* PyTorch: one learner in a plain Python loop, 1 torch thread, the same network, loss
  (Huber on the target network's TD targets), Adam settings, buffer, batch, schedule and
  epsilon, on :class:`NumpyBreakout`, a 60-line numpy re-implementation of gymnax's
  Breakout-MinAtar (the only randomness is the ball's start, so exact agreement is
  possible: :func:`check_breakout` compares frames, rewards and terminations step by step
  on random and ball-following actions, across resets, brick hits and a rebuilt wall, at
  the start of every run and in tests/test_dqn_bench.py). Its weights are copied from a
  JAX teacher's; the same test checks that one Adam step of each on one batch from the
  same weights gives the same loss and weights. The environment's share of the loop's
  wall time is timed and printed (about 2%). Adam: torch's fused CPU kernel (the fastest
  torch option here, the reference for the ratio) and, as a second row, torch's default.
* Per learner-step ratio = JAX learner-steps/s (B learners x steps / s) over the torch
  loop's steps/s: B torch learners would be B such loops. Wall and per CPU-second of
  this process (XLA may use both cores; torch uses one).
Both sides interleaved in one run (per repeat: each JAX batch size's chunk, each followed
by a torch run), medians over repeats; the load average is printed. Issue target: JAX
>= 5x the torch loop per learner-step at 8 learners.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np
import torch

from outlearn.core import Transition
from outlearn.envs import make_env
from outlearn.envs.gymnax_env import make_gymnax_env
from outlearn.rollout import StepEnv, _compiled_scan, init_learners, rollout_scan
from outlearn.teachers import make_teacher

SIZE, EP_LEN, A = 9, 20, 5
DR = np.array([0, -1, 0, 1, 0])
DC = np.array([0, 0, 1, 0, -1])


class NumpyDarkRoom:
    """9x9 Dark Room (centre start, reward 1 per step on the goal), B rooms at once."""

    def __init__(self, goals: np.ndarray):
        self.goals = goals
        self.centre = (SIZE // 2) * SIZE + SIZE // 2
        self.pos = np.full(goals.shape, self.centre)
        self.t = 0

    def step(self, a: np.ndarray):
        """Actions (B,) -> (agent obs (B,), next obs (B,), reward (B,), truncated bool)."""
        r = np.clip(self.pos // SIZE + DR[a], 0, SIZE - 1)
        c = np.clip(self.pos % SIZE + DC[a], 0, SIZE - 1)
        nxt = r * SIZE + c
        rew = (nxt == self.goals).astype(np.float32)
        self.t += 1
        trunc = self.t == EP_LEN
        if trunc:
            self.t = 0
        self.pos = np.full_like(nxt, self.centre) if trunc else nxt
        return self.pos, nxt, rew, trunc


def sample(rng: np.random.Generator, probs: np.ndarray) -> np.ndarray:
    """One action per row of probs (B, A) by inverse CDF."""
    u = rng.random((probs.shape[0], 1))
    return np.minimum((probs.cumsum(1) < u).sum(1), probs.shape[1] - 1)


def numpy_qlearning(b: int, steps: int, lr=1.0, discount=0.9, eps=0.0) -> np.ndarray:
    """(wall, CPU) seconds for ``steps`` steps of b Q-learners (teachers/qlearning.py rule)."""
    rng = np.random.default_rng(0)
    env = NumpyDarkRoom(np.arange(b) % (SIZE * SIZE))
    q = np.full((b, SIZE * SIZE, A), 1.0 / (1.0 - discount), np.float32)
    obs, rows = env.pos.copy(), np.arange(b)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        qo = q[rows, obs]
        best = (qo >= qo.max(1, keepdims=True)).astype(np.float32)
        probs = eps / A + (1 - eps) * best / best.sum(1, keepdims=True)
        a = sample(rng, probs)
        agent_obs, nxt, rew, _ = env.step(a)  # no termination in Dark Room
        target = rew + discount * q[rows, nxt].max(1)
        q[rows, obs, a] += lr * (target - q[rows, obs, a])
        obs = agent_obs
    return np.array([time.perf_counter() - t0, time.process_time() - c0])


class NumpyPPO:
    """The PPO of teachers/ppo.py for b learners, with hand-written gradients and Adam."""

    def __init__(self, b: int, cfg, rng: np.random.Generator):
        h, o = cfg.hidden, SIZE * SIZE
        self.cfg, self.rng, self.b = cfg, rng, b
        self.p = {
            "w1": rng.standard_normal((b, o, 2 * h)).astype(np.float32),
            "b1": np.zeros((b, 2 * h), np.float32),
            "wp": (0.01 * rng.standard_normal((b, h, A)) / np.sqrt(h)).astype(np.float32),
            "bp": np.zeros((b, A), np.float32),
            "wv": (rng.standard_normal((b, h)) / np.sqrt(h)).astype(np.float32),
            "bv": np.zeros((b,), np.float32),
        }
        self.m = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: np.zeros_like(v) for k, v in self.p.items()}
        self.k = 0

    def forward(self, obs: np.ndarray):
        """obs (b, n) -> hidden (b, n, 2H), logits (b, n, A), value (b, n)."""
        p, h = self.p, self.cfg.hidden
        hid = np.tanh(np.take_along_axis(p["w1"], obs[..., None], 1) + p["b1"][:, None])
        logits = np.einsum("bnh,bha->bna", hid[..., :h], p["wp"]) + p["bp"][:, None]
        value = np.einsum("bnh,bh->bn", hid[..., h:], p["wv"]) + p["bv"][:, None]
        return hid, logits, value

    def policy(self, obs: np.ndarray) -> np.ndarray:
        logits = self.forward(obs[:, None])[1][:, 0]
        e = np.exp(logits - logits.max(1, keepdims=True))
        return e / e.sum(1, keepdims=True)

    def train(self, obs, act, rew, nxt, done):
        """One PPO update from buffers (b, n); no terminations in Dark Room."""
        c = self.cfg
        _, logits, val = self.forward(obs)
        old = log_softmax(logits)
        old = np.take_along_axis(old, act[..., None], 2)[..., 0]
        delta = rew + c.discount * self.forward(nxt)[2] - val
        adv, run = np.zeros_like(delta), np.zeros(self.b, np.float32)
        for i in range(delta.shape[1] - 1, -1, -1):
            run = delta[:, i] + c.discount * c.gae_lambda * np.where(done[:, i], 0.0, run)
            adv[:, i] = run
        ret, n = adv + val, obs.shape[1]
        mb = n // c.num_minibatches
        for _ in range(c.epochs):
            perm = self.rng.permutation(n)
            for j in range(c.num_minibatches):
                i = perm[j * mb : (j + 1) * mb]
                self.adam(self.grads(obs[:, i], act[:, i], old[:, i], adv[:, i], ret[:, i]))

    def grads(self, obs, act, old, adv, ret):
        c, h, p = self.cfg, self.cfg.hidden, self.p
        hid, logits, value = self.forward(obs)
        n = obs.shape[1]
        logp_all = log_softmax(logits)
        pi = np.exp(logp_all)
        onehot = np.eye(A, dtype=np.float32)[act]
        adv = (adv - adv.mean(1, keepdims=True)) / (adv.std(1, keepdims=True) + 1e-8)
        ratio = np.exp((logp_all * onehot).sum(2) - old)
        unclipped = ratio * adv <= np.clip(ratio, 1 - c.clip, 1 + c.clip) * adv
        dlogp = -adv * ratio * unclipped / n
        ent = -(pi * logp_all).sum(2, keepdims=True)
        dlogits = dlogp[..., None] * (onehot - pi) + c.ent_coef / n * pi * (logp_all + ent)
        dv = 2 * c.vf_coef * (value - ret) / n
        dhid = np.concatenate([np.einsum("bna,bha->bnh", dlogits, p["wp"]),
                               dv[..., None] * p["wv"][:, None]], 2) * (1 - hid**2)
        dw1 = np.zeros_like(p["w1"])
        for b in range(self.b):
            np.add.at(dw1[b], obs[b], dhid[b])
        return {"w1": dw1, "b1": dhid.sum(1),
                "wp": np.einsum("bnh,bna->bha", hid[..., :h], dlogits), "bp": dlogits.sum(1),
                "wv": np.einsum("bnh,bn->bh", hid[..., h:], dv), "bv": dv.sum(1)}

    def adam(self, g, b1=0.9, b2=0.999, eps=1e-8):
        norm = np.sqrt(sum((x.reshape(self.b, -1) ** 2).sum(1) for x in g.values()))
        scale = np.minimum(1.0, self.cfg.max_grad_norm / np.maximum(norm, 1e-12))
        self.k += 1
        for key, x in g.items():
            x = x * scale.reshape((-1,) + (1,) * (x.ndim - 1))
            self.m[key] = b1 * self.m[key] + (1 - b1) * x
            self.v[key] = b2 * self.v[key] + (1 - b2) * x * x
            mh, vh = self.m[key] / (1 - b1**self.k), self.v[key] / (1 - b2**self.k)
            self.p[key] -= self.cfg.learning_rate * mh / (np.sqrt(vh) + eps)


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def numpy_ppo(b: int, steps: int, cfg) -> np.ndarray:
    """(wall, CPU) seconds for ``steps`` steps of b numpy PPO learners on Dark Room."""
    rng = np.random.default_rng(0)
    env, ppo, n = NumpyDarkRoom(np.arange(b) % (SIZE * SIZE)), NumpyPPO(b, cfg, rng), cfg.n_steps
    buf = {k: np.zeros((b, n), d) for k, d in
           [("obs", int), ("act", int), ("rew", np.float32), ("nxt", int), ("done", bool)]}
    obs = env.pos.copy()
    t0, c0 = time.perf_counter(), time.process_time()
    for t in range(steps):
        a = sample(rng, ppo.policy(obs))
        agent_obs, nxt, rew, trunc = env.step(a)
        for k, v in zip(buf, (obs, a, rew, nxt, trunc), strict=True):
            buf[k][:, t % n] = v
        if (t + 1) % n == 0:
            ppo.train(buf["obs"], buf["act"], buf["rew"], buf["nxt"], buf["done"])
        obs = agent_obs
    return np.array([time.perf_counter() - t0, time.process_time() - c0])


def jax_times(name: str, b: int, steps: int, repeats: int) -> dict[str, np.ndarray]:
    """(wall, CPU) seconds per figure (medians of repeats), teacher ``name`` on b rooms."""
    fam = make_env("darkroom")
    learner = make_teacher(name, fam)
    params = fam.task_params(jnp.arange(b) % fam.num_tasks)
    keys = jax.random.split(jax.random.key(0), b)
    rollout_scan(fam, learner, keys, params, steps)  # first call: compile
    api = [timed(lambda: rollout_scan(fam, learner, keys, params, steps)) for _ in range(repeats)]
    ts = jnp.arange(steps, dtype=jnp.int32)
    ls0 = init_learners(learner, keys, params)
    alone = jax.jit(lambda ls: jax.lax.scan(learner_body(learner, keys, fam.num_obs), ls, ts))
    jax.block_until_ready(alone(ls0))
    la = [timed(lambda: jax.block_until_ready(alone(ls0))) for _ in range(repeats)]
    return {"api": np.median(api, 0), "alone": np.median(la, 0)}


def learner_body(learner, keys, num_obs):
    """Scan body: policy + update on synthetic transitions (B learners)."""
    b = keys.shape[0]

    def body(ls, t):
        o = (t * 7 + jnp.arange(b)) % num_obs
        probs = jax.vmap(learner.policy, in_axes=(0, 0, None))(ls, o, t)
        a = jnp.argmax(probs, -1).astype(jnp.int32)
        tr = Transition(o, a, (a == 2).astype(jnp.float32), (o + 1) % num_obs,
                        jnp.zeros(b, bool), o == 4)
        return jax.vmap(learner.update, in_axes=(0, 0, 0, None))(keys, ls, tr, t), probs[:, 0]

    return body


def timed(f) -> np.ndarray:
    """(wall seconds, CPU seconds of this process) of one call of f."""
    t0, c0 = time.perf_counter(), time.process_time()
    f()
    return np.array([time.perf_counter() - t0, time.process_time() - c0])


def numpy_time(name: str, b: int, steps: int) -> np.ndarray:
    """(wall, CPU) seconds for the numpy reference of teacher ``name`` (default config)."""
    if name == "qlearning":
        return numpy_qlearning(b, steps)
    return numpy_ppo(b, steps, make_teacher("ppo", make_env("darkroom")).cfg)


# --- DQN on Breakout-MinAtar: the JAX teacher vs a plain PyTorch loop ------------------

#: Breakout-MinAtar ball directions 0-3: (dx, dy) and the reflections of gymnax's MinBreakout
BALL_DX, BALL_DY = (-1, 1, 1, -1), (-1, -1, 1, 1)
FLIP_X, FLIP_Y, PADDLE = (1, 0, 3, 2), (3, 2, 1, 0), (2, 3, 0, 1)


class NumpyBreakout:
    """One Breakout-MinAtar game in plain Python + numpy: gymnax 1.0.1's ``MinBreakout``
    (minimal actions: 0 none, 1 left, 2 right) rule for rule, frames (10, 10, 4) bool.

    Its only randomness is the ball's start (left or right), an argument of :meth:`reset`;
    :func:`check_breakout` holds it to gymnax frame by frame."""

    def reset(self, ball_start: int) -> np.ndarray:
        self.ball_y, self.ball_x, self.ball_dir = 3, (0, 9)[ball_start], (2, 3)[ball_start]
        self.last_y, self.last_x, self.pos, self.strike = 3, self.ball_x, 4, False
        self.bricks = np.zeros((10, 10), bool)
        self.bricks[1:4] = True
        return self.frame()

    def frame(self) -> np.ndarray:
        f = np.zeros((10, 10, 4), bool)
        f[9, self.pos, 0] = f[self.ball_y, self.ball_x, 1] = f[self.last_y, self.last_x, 2] = 1
        f[:, :, 3] = self.bricks
        return f

    def step(self, action: int) -> tuple[np.ndarray, float, bool]:
        """(frame, reward, terminated); gymnax's step_agent then step_ball_brick."""
        if action == 1:
            self.pos = max(0, self.pos - 1)
        elif action == 2:
            self.pos = min(9, self.pos + 1)
        old_x, d = self.ball_x, self.ball_dir
        self.last_x, self.last_y = self.ball_x, self.ball_y
        x, y = self.ball_x + BALL_DX[d], self.ball_y + BALL_DY[d]
        if not 0 <= x <= 9:
            x, d = min(max(x, 0), 9), FLIP_X[d]
        if y < 0:
            y, d = 0, FLIP_Y[d]
            toggle = False
        else:
            toggle = bool(self.bricks[min(y, 9), x])  # (JAX clamps the index)
        reward = 0.0
        if toggle and not self.strike:  # a brick: remove it, bounce back
            reward, self.bricks[y, x], y, d = 1.0, False, self.last_y, FLIP_Y[d]
        bottom = not toggle and y == 9
        if bottom and not self.bricks.any():
            self.bricks[1:4] = True
        hit_old = bottom and old_x == self.pos
        hit_new = bottom and not hit_old and x == self.pos
        if hit_old:
            y, d = self.last_y, FLIP_Y[d]
        elif hit_new:
            y, d = self.last_y, PADDLE[d]
        self.ball_x, self.ball_y, self.ball_dir, self.strike = x, y, d, toggle
        return self.frame(), reward, bottom and not (hit_old or hit_new)


def check_breakout(steps: int, track: float, seed: int = 0) -> tuple[int, int, int]:
    """Play gymnax's Breakout-MinAtar (jitted ``step_env``) and :class:`NumpyBreakout`
    side by side for ``steps`` steps, resetting both on termination with gymnax's ball
    start; actions follow the ball with probability ``track`` (so bricks get cleared and
    the paddle bounces the ball), else uniform. Raises AssertionError at the first
    frame, reward or termination that differs; returns (episodes, bricks hit, walls of
    bricks rebuilt)."""
    env, params = make_gymnax_env("Breakout-MinAtar")
    reset = jax.jit(lambda k: env.reset_env(k, params))
    step = jax.jit(lambda k, s, a: env.step_env(k, s, a, params)[:4])
    rng, ref, episodes, hits, walls = np.random.default_rng(seed), NumpyBreakout(), 1, 0, 0
    key, k_reset = jax.random.split(jax.random.key(seed))
    obs, state = reset(jax.random.fold_in(k_reset, 0))
    mine = ref.reset(int(state.ball_x) // 9)
    for t in range(steps):
        assert np.array_equal(np.asarray(obs, bool), mine), f"frames differ at step {t}"
        if rng.random() < track:
            a = 0 if ref.ball_x == ref.pos else (1 if ref.ball_x < ref.pos else 2)
        else:
            a = int(rng.integers(3))
        bricks = ref.bricks.sum()
        obs, state, r, term = step(jax.random.fold_in(key, t), state, a)
        mine, r2, term2 = ref.step(a)
        assert (float(r), bool(term)) == (r2, term2), f"reward/termination differ at step {t}"
        hits, walls = hits + int(r2), walls + int(ref.bricks.sum() > bricks)
        if term2:
            assert np.array_equal(np.asarray(obs, bool), mine), f"frames differ at step {t}"
            obs, state = reset(jax.random.fold_in(k_reset, t + 1))
            mine, episodes = ref.reset(int(state.ball_x) // 9), episodes + 1
    return episodes, hits, walls


class TorchQNet(torch.nn.Module):
    """The DQN teacher's Q-network (teachers/dqn.py ``q_values``) in torch: D -> H -> H -> A
    with ReLU; :meth:`load_jax` copies a JAX teacher's weights."""

    def __init__(self, in_dim: int, hidden: int, actions: int):
        super().__init__()
        self.l1 = torch.nn.Linear(in_dim, hidden)
        self.l2 = torch.nn.Linear(hidden, hidden)
        self.l3 = torch.nn.Linear(hidden, actions)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.l3(torch.relu(self.l2(torch.relu(self.l1(x)))))

    def load_jax(self, net: dict) -> TorchQNet:
        """JAX weights (w (in, out), b) -> torch Linear (weight (out, in), bias)."""
        with torch.no_grad():
            for i, lin in enumerate((self.l1, self.l2, self.l3), 1):
                lin.weight.copy_(torch.from_numpy(np.asarray(net[f"w{i}"]).T.copy()))
                lin.bias.copy_(torch.from_numpy(np.array(net[f"b{i}"])))
        return self


class TorchDQN:
    """One DQN learner as a plain PyTorch loop would write it, with the JAX teacher's
    config (``cfg``: a DQNConfig) and schedule: a replay buffer of ``buffer_size`` bool
    frames (slot ``t % buffer_size``), from ``t + 1 >= learning_starts`` one Adam step
    every ``train_every`` steps on the mean Huber loss over ``batch_size`` uniform draws,
    the target copied every ``target_every`` steps, epsilon linear over
    ``eps_decay_steps``; Adam with optax's defaults (betas 0.9, 0.999, eps 1e-8), torch's
    fused CPU kernel (1.4x torch's default ``foreach`` Adam here) unless ``fused=False``."""

    def __init__(self, cfg, net: dict, in_dim: int, actions: int, seed: int = 0,
                 fused: bool = True):
        self.cfg, self.actions, self.rng = cfg, actions, np.random.default_rng(seed)
        self.q = TorchQNet(in_dim, cfg.hidden, actions).load_jax(net)
        self.target = TorchQNet(in_dim, cfg.hidden, actions).load_jax(net)
        self.opt = torch.optim.Adam(self.q.parameters(), lr=cfg.learning_rate,
                                    betas=(0.9, 0.999), eps=1e-8, fused=fused or None)
        n = cfg.buffer_size
        self.obs = torch.zeros((n, in_dim), dtype=torch.bool)
        self.next_obs = torch.zeros((n, in_dim), dtype=torch.bool)
        self.act = torch.zeros(n, dtype=torch.long)
        self.rew = torch.zeros(n)
        self.term = torch.zeros(n, dtype=torch.bool)

    def epsilon(self, t: int) -> float:
        c = self.cfg
        return c.eps_start + (c.eps_end - c.eps_start) * min(t / c.eps_decay_steps, 1.0)

    def policy(self, obs: torch.Tensor, t: int) -> int:
        if self.rng.random() < self.epsilon(t):
            return int(self.rng.integers(self.actions))
        with torch.no_grad():
            return int(self.q(obs.float()).argmax())

    def loss(self, obs, act, rew, next_obs, term) -> torch.Tensor:
        q_a = self.q(obs.float()).gather(1, act[:, None])[:, 0]
        with torch.no_grad():
            q_next = self.target(next_obs.float()).max(1).values
            y = rew + self.cfg.discount * torch.where(term, 0.0, q_next)
        return torch.nn.functional.huber_loss(q_a, y, delta=self.cfg.huber_delta)

    def train_step(self, batch) -> float:
        loss = self.loss(*batch)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return float(loss.detach())

    def update(self, obs, a: int, r: float, next_obs, term: bool, t: int) -> None:
        c, i = self.cfg, t % self.cfg.buffer_size
        self.obs[i], self.act[i], self.rew[i] = obs, a, r
        self.next_obs[i], self.term[i] = next_obs, term
        if t + 1 >= c.learning_starts and (t + 1) % c.train_every == 0:
            idx = torch.from_numpy(self.rng.integers(0, min(t + 1, c.buffer_size),
                                                     c.batch_size))
            self.train_step((self.obs[idx], self.act[idx], self.rew[idx],
                             self.next_obs[idx], self.term[idx]))
        if (t + 1) % c.target_every == 0:
            self.target.load_state_dict(self.q.state_dict())


class TorchDQNLoop:
    """One TorchDQN learner on a NumpyBreakout game (truncated after ``episode_len``
    steps, as the gymnax family does); :meth:`run` advances it and times its parts."""

    def __init__(self, cfg, net: dict, episode_len: int, seed: int = 0, fused: bool = True):
        self.env, self.episode_len = NumpyBreakout(), episode_len
        self.rng = np.random.default_rng(seed)
        self.dqn = TorchDQN(cfg, net, 400, 3, seed, fused)
        self.obs = self._tensor(self.env.reset(int(self.rng.integers(2))))
        self.t = self.ep_t = 0

    @staticmethod
    def _tensor(frame: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(frame.reshape(-1))

    def run(self, steps: int) -> np.ndarray:
        """(wall, CPU, env wall) seconds for ``steps`` steps; env = stepping and resetting
        the game and turning frames into tensors."""
        env_s, t0, c0 = 0.0, time.perf_counter(), time.process_time()
        for _ in range(steps):
            a = self.dqn.policy(self.obs, self.t)
            e0 = time.perf_counter()
            frame, r, term = self.env.step(a)
            self.ep_t += 1
            nxt = self._tensor(frame)
            done = term or self.ep_t >= self.episode_len
            agent = self._tensor(self.env.reset(int(self.rng.integers(2)))) if done else nxt
            env_s += time.perf_counter() - e0
            self.dqn.update(self.obs, a, r, nxt, term, self.t)
            self.obs, self.t, self.ep_t = agent, self.t + 1, 0 if done else self.ep_t
        return np.array([time.perf_counter() - t0, time.process_time() - c0, env_s])


class JaxDQNBatch:
    """B DQN teachers (default config) on Breakout-MinAtar, advanced chunk by chunk with
    the program ``rollout_scan`` runs per chunk (the fused env + policy + update scan),
    including the transfer of the chunk's trajectory to numpy."""

    def __init__(self, b: int, chunk: int):
        self.fam = make_env("gymnax", name="Breakout-MinAtar")
        self.learner = make_teacher("dqn", self.fam)
        self.b, self.chunk, self.t = b, chunk, 0
        self.keys = jax.random.split(jax.random.key(1), b)
        self.params = self.fam.task_params(jnp.arange(b))
        self.run_chunk = _compiled_scan(self.fam, self.learner)
        obs, state = StepEnv(self.fam, self.params).reset(self.keys)
        self.carry = (state, obs, init_learners(self.learner, self.keys, self.params))

    def run(self, chunks: int = 1) -> np.ndarray:
        """(wall, CPU) seconds for ``chunks`` chunks of steps of all B learners."""
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(chunks):
            ts = jnp.arange(self.t, self.t + self.chunk, dtype=jnp.int32)
            self.carry, out = self.run_chunk(self.carry, ts, self.keys, self.params)
            jax.tree.map(np.asarray, out)
            self.t += self.chunk
        return np.array([time.perf_counter() - t0, time.process_time() - c0])


#: multiply-adds x 2 of one learner-step of the default DQN (batch 32, 400-128-128-3):
#: online and target forward on the batch, the backward (weight gradients of 3 layers,
#: input gradients of layers 2-3) and the acting forward on one frame
_FWD = 2 * (400 * 128 + 128 * 128 + 128 * 3)
DQN_FLOPS = 32 * (3 * _FWD + 2 * (128 * 128 + 128 * 3)) + _FWD


def dqn_bench(learners: list[int], chunk: int, torch_steps: int, repeats: int) -> dict:
    """Steady-state timings (every step a gradient step), interleaved: per repeat, one
    chunk of each JAX batch, each followed by ``torch_steps`` steps of the torch loop
    (fused Adam), then ``torch_steps`` of the torch loop with torch's default Adam."""
    jaxs = {b: JaxDQNBatch(b, chunk) for b in learners}
    some = jaxs[learners[0]]
    cfg, net = some.learner.cfg, some.learner.init_net(jax.random.key(2))
    loops = {k: TorchDQNLoop(cfg, net, some.fam.episode_len, fused=k == "torch")
             for k in ("torch", "torch_default")}
    warm = -(-cfg.learning_starts // chunk)  # chunks before every step trains
    out: dict = {"jax": {b: [] for b in learners}, "torch": [], "torch_default": [],
                 "compile_warmup_s": {b: jx.run(warm)[0] for b, jx in jaxs.items()}}
    for loop in loops.values():
        loop.run(cfg.learning_starts + 50)
    for _ in range(repeats):
        for b, jx in jaxs.items():
            out["jax"][b].append(jx.run())
            out["torch"].append(loops["torch"].run(torch_steps))
        out["torch_default"].append(loops["torch_default"].run(torch_steps))
    return out


def print_dqn(res: dict, chunk: int, torch_steps: int) -> None:
    n_jax = len(next(iter(res["jax"].values())))
    print(f"\nDQN on Breakout-MinAtar (teachers/dqn.py defaults: MLP 400-128-128-3, batch 32, "
          f"a gradient step every env step, buffer 10,000, target every 1,000, Adam 2.5e-4), "
          f"steady state (after learning_starts); medians of {n_jax} "
          f"JAX chunks of {chunk} steps and {len(res['torch'])} (fused Adam) / "
          f"{len(res['torch_default'])} (default Adam) torch runs of {torch_steps} steps, "
          "interleaved. A learner-step = one env step + one gradient update, so env steps/s "
          "= gradient updates/s (per learner x learners).")
    print(f"{'':36s} {'env steps/s':>11s} {'updates/s':>10s} {'per CPU-s':>10s} "
          f"{'GFLOP/CPU-s':>11s} {'per learner-step vs torch (fused)':>34s}")
    tq = np.median(res["torch"], 0)
    t_rate, t_cpu = torch_steps / tq[0], torch_steps / tq[1]
    rows = [("torch loop, 1 learner, fused Adam", 1, tq, torch_steps),
            ("torch loop, 1 learner, default Adam", 1, np.median(res["torch_default"], 0),
             torch_steps)]
    rows += [(f"jax rollout_scan, {b} learner{'s' * (b > 1)}", b, np.median(runs, 0), chunk)
             for b, runs in res["jax"].items()]
    for label, b, m, steps in rows:
        rate, cpu = b * steps / m[0], b * steps / m[1]
        vs = f"{rate / t_rate:.2f}x (per CPU-s {cpu / t_cpu:.2f}x)"
        print(f"{label:36s} {rate:11,.0f} {rate:10,.0f} {cpu:10,.0f} "
              f"{cpu * DQN_FLOPS / 1e9:11.1f} {vs:>34s}")
    print(f"the torch loop's environment (numpy Breakout, frames to tensors): "
          f"{tq[2] / tq[0]:.1%} of its wall time; without it "
          f"{torch_steps / (tq[0] - tq[2]):,.0f} learner-steps/s")
    print("JAX compile + warm-up chunks before learning_starts (s): " + ", ".join(
        f"{b} learners {s:.1f}" for b, s in res["compile_warmup_s"].items()))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--q-steps", type=int, default=2000)
    ap.add_argument("--ppo-steps", type=int, default=1000)
    ap.add_argument("--only", choices=["all", "darkroom", "dqn"], default="all")
    ap.add_argument("--dqn-learners", default="1,8,64")
    ap.add_argument("--dqn-chunk", type=int, default=200, help="JAX steps per timed chunk")
    ap.add_argument("--dqn-torch-steps", type=int, default=300,
                    help="torch loop steps per timed run")
    ap.add_argument("--dqn-repeats", type=int, default=7)
    args = ap.parse_args()
    torch.set_num_threads(1)
    load0 = os.getloadavg()
    if args.only in ("all", "dqn"):
        runs = [check_breakout(300, 0.0), check_breakout(1200, 0.97, seed=1),
                check_breakout(800, 1.0, seed=2)]
        ep, hits, walls = np.sum(runs, 0)
        print(f"numpy Breakout == gymnax Breakout-MinAtar frame by frame: 2,300 steps "
              f"(random, 97% and 100% ball-following actions), {ep} episodes, {hits} bricks "
              f"hit, {walls} walls rebuilt")
    if args.only in ("all", "darkroom"):
        darkroom(args)
    if args.only in ("all", "dqn"):
        learners = [int(b) for b in args.dqn_learners.split(",")]
        res = dqn_bench(learners, args.dqn_chunk, args.dqn_torch_steps, args.dqn_repeats)
        print_dqn(res, args.dqn_chunk, args.dqn_torch_steps)
    load1 = os.getloadavg()
    print(f"load average (1 min) {load0[0]:.2f} at the start, {load1[0]:.2f} at the end "
          f"(5 min: {load1[1]:.2f}) on {os.cpu_count()} CPUs; jax {jax.__version__}, "
          f"torch {torch.__version__} on {torch.get_num_threads()} thread")


def darkroom(args) -> None:
    rows = []
    for name, b, steps, np_steps in [("qlearning", 1024, args.q_steps, 400),
                                     ("ppo", 256, args.ppo_steps, 400)]:
        jt = jax_times(name, b, steps, args.repeats)
        nt = np.median([numpy_time(name, b, np_steps) for _ in range(args.repeats)], 0)
        np_rate = b * np_steps / nt
        for label, key in [("rollout_scan (compiled)", "api"), ("learner alone", "alone")]:
            rate = b * steps / jt[key]
            rows.append((name, b, label, rate, np_rate))
    print(f"Dark Room 9x9; median of {args.repeats}. Env steps per second of wall "
          "time, and per CPU-second of this process (the fairer figure on a shared machine).")
    print(f"{'learner':10s} {'B':>5s} {'jax path':24s} {'jax /s':>11s} {'numpy /s':>10s} "
          f"{'ratio':>6s} {'jax /cpu-s':>11s} {'numpy /cpu-s':>12s} {'ratio':>6s}")
    for name, b, label, rate, npr in rows:
        print(f"{name:10s} {b:5d} {label:24s} {rate[0]:11,.0f} {npr[0]:10,.0f} "
              f"{rate[0] / npr[0]:5.1f}x {rate[1]:11,.0f} {npr[1]:12,.0f} {rate[1] / npr[1]:5.1f}x")


if __name__ == "__main__":
    main()
