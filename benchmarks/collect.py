"""Collection speed: teachers fused in ``rollout_scan`` vs a plain-numpy loop.

    .venv/bin/python benchmarks/collect.py [--repeats 3] [--q-steps 2000] [--ppo-steps 1000]

Prints env steps/s (median of ``--repeats``) for 1,024 tabular Q-learners and 256 PPO
learners on 9x9 Dark Room, each beside a numpy implementation of the same learner
(batched over learners with numpy arrays, a Python loop over steps), and the ratio.

Two JAX figures per learner:
* ``rollout_scan (compiled)``: the public API on a repeated call (the program is
  compiled once per (family, learner, chunk length)), including the initial reset and
  the transfer of the trajectory to numpy.
* ``learner alone``: the learner's policy + update in a scan on synthetic
  transitions (no key derivation, no action sampling, no environment): the ceiling.

Issue target (2 shared CPU cores, per CPU-second): Q-learning >= 15M steps/s and >= 3x
numpy; PPO >= 150k steps/s.
"""

from __future__ import annotations

import argparse
import os
import time

import jax
import jax.numpy as jnp
import numpy as np

from outlearn.core import Transition
from outlearn.envs import make_env
from outlearn.rollout import init_learners, rollout_scan
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--q-steps", type=int, default=2000)
    ap.add_argument("--ppo-steps", type=int, default=1000)
    args = ap.parse_args()
    rows = []
    for name, b, steps, np_steps in [("qlearning", 1024, args.q_steps, 400),
                                     ("ppo", 256, args.ppo_steps, 400)]:
        jt = jax_times(name, b, steps, args.repeats)
        nt = np.median([numpy_time(name, b, np_steps) for _ in range(args.repeats)], 0)
        np_rate = b * np_steps / nt
        for label, key in [("rollout_scan (compiled)", "api"), ("learner alone", "alone")]:
            rate = b * steps / jt[key]
            rows.append((name, b, label, rate, np_rate))
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; "
          f"median of {args.repeats}; jax {jax.__version__}. Env steps per second of wall "
          "time, and per CPU-second of this process (the fairer figure on a shared machine).")
    print(f"{'learner':10s} {'B':>5s} {'jax path':24s} {'jax /s':>11s} {'numpy /s':>10s} "
          f"{'ratio':>6s} {'jax /cpu-s':>11s} {'numpy /cpu-s':>12s} {'ratio':>6s}")
    for name, b, label, rate, npr in rows:
        print(f"{name:10s} {b:5d} {label:24s} {rate[0]:11,.0f} {npr[0]:10,.0f} "
              f"{rate[0] / npr[0]:5.1f}x {rate[1]:11,.0f} {npr[1]:12,.0f} {rate[1] / npr[1]:5.1f}x")


if __name__ == "__main__":
    main()
