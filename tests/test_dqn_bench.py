"""The DQN speed benchmark compares like with like: its PyTorch reference (in
benchmarks/collect.py) is the JAX teacher's network, loss and Adam step, and its numpy
Breakout is gymnax's Breakout-MinAtar frame for frame."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

from outlearn.envs import make_env
from outlearn.teachers import make_teacher
from outlearn.teachers.dqn import Replay, q_values


@pytest.fixture(scope="module")
def bench():
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "collect.py"
    spec = importlib.util.spec_from_file_location("outlearn_bench_collect", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    yield mod
    sys.modules.pop(spec.name, None)


def test_torch_reference_is_the_teachers_network_loss_and_adam_step(bench):
    fam = make_env("gymnax", name="Breakout-MinAtar")
    dqn = make_teacher("dqn", fam)
    init = jax.jit(dqn.init_net)  # one compile, not op-by-op dispatch
    online, target = init(jax.random.key(0)), init(jax.random.key(1))
    ref = bench.TorchDQN(dqn.cfg, online, dqn.in_dim, dqn.num_actions)
    ref.target.load_jax(target)
    # the same architecture: layer by layer shapes, and the parameter count
    shapes = [tuple(p.shape) for p in ref.q.parameters()]
    assert shapes == [np.shape(online[k].T) for k in ("w1", "b1", "w2", "b2", "w3", "b3")]
    assert shapes[0] == (128, 400) and shapes[-1] == (3,)
    n_jax = sum(x.size for x in jax.tree.leaves(online))
    assert sum(p.numel() for p in ref.q.parameters()) == n_jax == 68_227

    rng = np.random.default_rng(0)
    n = dqn.cfg.batch_size
    frames = rng.random((2, n, 10, 10, 4)) < 0.1
    act, rew = rng.integers(0, 3, n), rng.integers(0, 2, n).astype(np.float32)
    term = rng.random(n) < 0.3
    batch = Replay(jnp.asarray(frames[0]), jnp.asarray(act, jnp.int32), jnp.asarray(rew),
                   jnp.asarray(frames[1]), jnp.asarray(term))
    tbatch = (torch.from_numpy(frames[0].reshape(n, -1)), torch.from_numpy(act),
              torch.from_numpy(rew), torch.from_numpy(frames[1].reshape(n, -1)),
              torch.from_numpy(term))
    with torch.no_grad():
        q_t = ref.q(tbatch[0].float()).numpy()
    q_j = jax.jit(lambda net, x: q_values(net, dqn.features(x)))(online, batch.obs)
    np.testing.assert_allclose(q_t, q_j, rtol=1e-5, atol=1e-5)

    # one Adam step of each from the same weights on the same batch
    @jax.jit
    def adam_step(online, target, batch):
        loss, grads = jax.value_and_grad(dqn.loss)(online, target, batch)
        upd, _ = dqn.tx.update(grads, dqn.tx.init(online), online)
        stepped = jax.tree.map(lambda p, u: p + u, online, upd)
        return loss, stepped, dqn.loss(stepped, target, batch)

    loss_j, stepped, after_j = adam_step(online, target, batch)
    loss_t = ref.train_step(tbatch)
    assert loss_t == pytest.approx(float(loss_j), rel=1e-5)
    for i, lin in enumerate((ref.q.l1, ref.q.l2, ref.q.l3), 1):
        np.testing.assert_allclose(lin.weight.detach().numpy().T, stepped[f"w{i}"], atol=1e-6)
        np.testing.assert_allclose(lin.bias.detach().numpy(), stepped[f"b{i}"], atol=1e-6)
    assert not np.allclose(stepped["w3"], online["w3"])  # the step did move the weights
    with torch.no_grad():
        after_t = float(ref.loss(*tbatch))
    assert after_t == pytest.approx(float(after_j), rel=1e-5)
    assert after_t != pytest.approx(loss_t, rel=1e-6)


def test_numpy_breakout_is_gymnax_frame_by_frame(bench):
    episodes, hits, _ = bench.check_breakout(200, 0.0)  # random actions: short episodes
    assert episodes >= 5 and hits >= 1
    # following the ball: long episodes, paddle bounces, a wall of bricks cleared and rebuilt
    episodes, hits, walls = bench.check_breakout(450, 1.0, seed=2)
    assert walls >= 1 and hits > 30
