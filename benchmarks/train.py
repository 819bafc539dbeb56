"""Training throughput of the default AD student on this CPU: tokens/s at 2 threads vs 1.

Run: ``.venv/bin/python benchmarks/train.py [--steps 5 --reps 5 --context 100 --batch 32]``
GPU: ``... benchmarks/train.py --device cuda --batch 256``: tokens/s on the device against
the CPU at 1 thread, same model and batch, intervals alternating (needs a CUDA build of torch;
the pinned CPU wheel refuses with the fix).

Each interval times ``--steps`` full training steps (forward, backward, clip, AdamW) on
fixed synthetic Dark-Room-sized batches (81 observations, 5 actions); the figure is the
median over ``--reps`` intervals after a warm-up. The reference is the same model and batch
at 1 thread, in intervals alternating with the 2-thread ones; ratio = 2 threads / 1 thread.
On a machine shared with other busy processes, 2 threads can be far slower than 1
(OpenMP workers wait on each other): check ``uptime`` before reading the ratio.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch import nn

from outlearn.students.ad import ADConfig, ADTransformer
from outlearn.students.train import loss_fn


def batch(b: int, t: int, num_obs: int, num_actions: int) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return {
        "obs": torch.randint(0, num_obs, (b, t), generator=g),
        "prev_action": torch.randint(-1, num_actions, (b, t), generator=g),
        "prev_reward": torch.rand(b, t, generator=g),
        "new_episode": torch.rand(b, t, generator=g) < 0.05,
        "target": torch.randint(0, num_actions, (b, t), generator=g),
    }


class Bench:
    """One model, optimiser and batch; :meth:`interval` times ``steps`` training steps."""

    def __init__(self, context: int, bsz: int, device: torch.device | None = None):
        torch.manual_seed(0)
        self.device = device or torch.device("cpu")
        self.model = ADTransformer(ADConfig.preset("small", context_len=context), 81, 5)
        self.model.to(self.device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-4)
        self.x = {k: v.to(self.device) for k, v in batch(bsz, context, 81, 5).items()}
        self.target = self.x.pop("target")
        self.mask = torch.ones_like(self.target, dtype=torch.bool)
        self.tokens = bsz * context

    def interval(self, threads: int, steps: int) -> float:
        """Tokens/s of ``steps`` steps at ``threads`` threads."""
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        for _ in range(steps):
            loss = loss_fn(self.model(**self.x), self.target, self.mask)
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
            self.opt.step()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return steps * self.tokens / (time.perf_counter() - t0)


def measure(steps: int, reps: int, context: int, bsz: int) -> tuple[float, float]:
    """Median tokens/s at 2 and at 1 thread; intervals alternate so that a change in the
    machine's load hits both alike."""
    b = Bench(context, bsz)
    b.interval(2, 1), b.interval(1, 1)  # warm-up
    two, one = [], []
    for _ in range(reps):
        two.append(b.interval(2, steps))
        one.append(b.interval(1, steps))
    return statistics.median(two), statistics.median(one)


def measure_device(device: torch.device, steps: int, reps: int, context: int,
                   bsz: int) -> tuple[float, float]:
    """Median tokens/s on ``device`` and on the CPU at 1 thread (same model and batch)."""
    dev, cpu = Bench(context, bsz, device), Bench(context, bsz)
    dev.interval(1, 3), cpu.interval(1, 1)  # warm-up (kernels, allocator)
    on_dev, on_cpu = [], []
    for _ in range(reps):
        on_dev.append(dev.interval(1, steps))
        on_cpu.append(cpu.interval(1, steps))
    return statistics.median(on_dev), statistics.median(on_cpu)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--context", type=int, default=100)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--device", default=None, help="cuda, cuda:N, mps: compare with the CPU")
    a = ap.parse_args()
    if a.device:
        from outlearn.errors import ConfigError
        from outlearn.students.device import resolve_device

        try:
            device = resolve_device(a.device)
        except ConfigError as err:
            raise SystemExit(f"error: {err}") from None
        on_dev, on_cpu = measure_device(device, a.steps, a.reps, a.context, a.batch)
        print(f"AD small, context {a.context}, batch {a.batch}")
        print(f"{device}: {on_dev:12,.0f} tokens/s")
        print(f"cpu, 1 thread: {on_cpu:12,.0f} tokens/s (reference)")
        print(f"ratio: {on_dev / on_cpu:.1f}x")
        return
    two, one = measure(a.steps, a.reps, a.context, a.batch)
    print(f"AD small (2 layers, d 64, ff 256), context {a.context}, batch {a.batch}")
    print(f"threads 2: {two:10,.0f} tokens/s")
    print(f"threads 1: {one:10,.0f} tokens/s (reference)")
    print(f"ratio 2/1: {two / one:.2f}x")


if __name__ == "__main__":
    main()
