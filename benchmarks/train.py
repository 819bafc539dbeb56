"""Training throughput of AD on this CPU, against the matmul peak measured in the same run.

Run: ``.venv/bin/python benchmarks/train.py [--context 640 --batch 8 --steps 3 --reps 5]``
GPU: ``... benchmarks/train.py --device cuda --batch 64``: tokens/s and achieved FLOP/s on
the device against the CPU (needs a CUDA build of torch; the pinned CPU wheel refuses
with the fix).

The model is the AD 9x9 Dark Room recipe's (2 layers, 2 heads, d 64, ff 256, no dropout,
(row, col) cell embeddings, previous observation in each token; context 640 steps, batch
8). Each row times ``--steps`` full training steps (forward, backward, clip, AdamW) on a
fixed synthetic batch; the figure is the median over ``--reps`` intervals after a warm-up,
intervals of all rows alternating so that a change in the machine's load hits all alike.

* ``reference``: the training step before this version (learned positions, one batch,
  ``loss.backward()``, torch at 1 thread, fp32): what "today's tokens/s" means.
* ``rope``/``alibi``, ``fp32``/``bf16``, ``threads`` 1/2: the current step
  (:class:`outlearn.students.sharded.ShardedStep`, 2 shards; threads = shards run at once;
  AdamW's default foreach implementation, and once its fused one).
* ``adq``: the RL student (:mod:`outlearn.students.adq`: the same model, a TD loss and
  a target network's forward pass on windows one step longer) beside AD at 1 and 2
  threads; the last lines give its cost per step as a multiple of AD's. ``--students``
  times only those four rows.

FLOP per token come from torch's FLOP counter on one step (forward and backward, attention
counted in full as the counter does). The peak is a 2048x2048 matmul in the same precision,
at 1 thread and at 2 (torch's own threads, the machine's best case); achieved / peak is
the fraction of that peak a training step reaches at the same thread count.
"""

from __future__ import annotations

import argparse
import statistics
import time
from contextlib import nullcontext
from typing import Any

import torch
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from outlearn.students.ad import ADConfig, ADTransformer
from outlearn.students.adq import ADQConfig, ADQTransformer
from outlearn.students.sharded import ShardedStep, bf16_native, loss_fn

RECIPE = dict(n_layers=2, n_heads=2, d_model=64, d_ff=256, dropout=0.0, attn_dropout=0.0,
              obs_factors=[9, 9], prev_obs=True)


def batch(b: int, t: int, num_obs: int = 81, num_actions: int = 5,
          device: torch.device | None = None) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = {
        "obs": torch.randint(0, num_obs, (b, t), generator=g),
        "prev_action": torch.randint(-1, num_actions, (b, t), generator=g),
        "prev_reward": torch.rand(b, t, generator=g),
        "new_episode": torch.rand(b, t, generator=g) < 0.05,
        "target": torch.randint(0, num_actions, (b, t), generator=g),
    }
    x["mask"] = torch.ones_like(x["target"], dtype=torch.bool)
    # adq's windows: each step's own reward and end (the sampler's ``transitions``)
    x["reward"] = (torch.rand(b, t, generator=g) < 0.1).float()
    x["terminated"] = torch.zeros(b, t, dtype=torch.bool)
    return {k: v.to(device or "cpu") for k, v in x.items()}


def model(context: int, positions: str, device: torch.device, kind: str = "ad",
          **size: Any) -> ADTransformer:
    torch.manual_seed(0)
    if kind == "adq":
        qcfg = ADQConfig(**{**RECIPE, **size}, context_len=context, positions=positions)
        return ADQTransformer(qcfg, 81, 5).to(device)
    cfg = ADConfig(**{**RECIPE, **size}, context_len=context, positions=positions)
    return ADTransformer(cfg, 81, 5).to(device)


class Row:
    """One training setting; :meth:`interval` returns tokens/s over ``steps`` steps."""

    def __init__(self, name: str, context: int, bsz: int, positions: str = "rope",
                 precision: str = "fp32", threads: int = 1, reference: bool = False,
                 device: torch.device | None = None, shards: int = 2, fused: bool = False,
                 kind: str = "ad", **size: Any):
        self.name, self.threads, self.reference = name, threads, reference
        self.device = device or torch.device("cpu")
        self.model = model(context, positions, self.device, kind, **size)
        self.opt = torch.optim.AdamW([p for p in self.model.parameters() if p.requires_grad],
                                     lr=3e-4, **({"fused": True} if fused else {}))
        self.updates = 0
        # adq trains on ``context`` steps and reads one more (the last step's successor)
        self.x = batch(bsz, context + (kind == "adq"), device=self.device)
        self.tokens = bsz * context
        self.precision = precision
        self.step = ShardedStep(self.model, shards, threads, precision,  # type: ignore[arg-type]
                                self.device)

    def one(self) -> None:
        if self.reference:
            x = self.x
            out = self.model(x["obs"], x["prev_action"], x["prev_reward"], x["new_episode"])
            loss = loss_fn(out, x["target"], x["mask"])
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
        else:
            self.step.backward(self.x)
        nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        self.updates += 1
        after = getattr(self.model, "after_update", None)
        if after is not None:  # adq's target-network copies, on their schedule
            after(self.updates)

    def interval(self, steps: int) -> float:
        torch.set_num_threads(1)
        t0 = time.perf_counter()
        for _ in range(steps):
            self.one()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return steps * self.tokens / (time.perf_counter() - t0)

    def flops_per_token(self) -> float:
        """Counted on one step run on this thread (the counter does not see the pool's
        threads); on CPU with attention decomposed into matmuls, as torch counts no FLOP
        for its fused CPU attention kernel (attention counted in full, as for CUDA)."""
        pool, self.step.pool = self.step.pool, None
        math = sdpa_kernel(SDPBackend.MATH) if self.device.type == "cpu" else nullcontext()
        try:
            with math, FlopCounterMode(display=False) as fc:
                self.one()
        finally:
            self.step.pool = pool
        return fc.get_total_flops() / self.tokens


def matmul_peak(threads: int, dtype: torch.dtype, n: int = 2048, reps: int = 5,
                device: torch.device | None = None) -> float:
    """FLOP/s of an n x n matmul at ``threads`` torch threads (median of ``reps``)."""
    device = device or torch.device("cpu")
    torch.set_num_threads(threads)
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append((time.perf_counter() - t0) / 4)
    torch.set_num_threads(1)
    return 2 * n**3 / statistics.median(times)


def measure(rows: list[Row], steps: int, reps: int) -> dict[str, float]:
    for r in rows:
        r.interval(1)  # warm-up
    got: dict[str, list[float]] = {r.name: [] for r in rows}
    for _ in range(reps):
        for r in rows:
            got[r.name].append(r.interval(steps))
    return {k: statistics.median(v) for k, v in got.items()}


def profile(a: argparse.Namespace) -> None:
    """``--profile``: torch's profiler table of the current step (fp32, 1 thread)."""
    from torch.profiler import ProfilerActivity
    from torch.profiler import profile as prof

    row = Row("rope, fp32, 1 thread", a.context, a.batch)
    row.interval(2)
    with prof(activities=[ProfilerActivity.CPU]) as p:
        row.interval(a.steps)
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


def compiled(a: argparse.Namespace) -> None:
    """``--compile``: the current step eager vs ``torch.compile``d (fp32, 1 and 2 threads)."""
    rows = []
    for th in (1, 2):
        eager = Row(f"eager, {th} thread{'s' * (th > 1)}", a.context, a.batch, threads=th)
        comp = Row(f"compiled, {th} thread{'s' * (th > 1)}", a.context, a.batch, threads=th)
        t0 = time.perf_counter()
        comp.model.compile(dynamic=False)
        comp.interval(1)
        print(f"compile + first step ({th} thread{'s' * (th > 1)}): "
              f"{time.perf_counter() - t0:.0f} s")
        rows += [eager, comp]
    for k, v in measure(rows, a.steps, a.reps).items():
        print(f"{k:<22}{v:>10,.0f} tokens/s")


def student_rows(ctx: int, bsz: int) -> list[Row]:
    """AD and adq, rope, fp32, at 1 and 2 threads."""
    return [Row(f"{kind}, rope, fp32, {th} thread{'s' * (th > 1)}", ctx, bsz, threads=th,
                kind=kind) for th in (1, 2) for kind in ("ad", "adq")]


def print_rl_cost(rates: dict[str, float]) -> None:
    """adq's cost per step (time per trained token) as a multiple of AD's."""
    import os

    for th in ("1 thread", "2 threads"):
        ad, adq = rates[f"ad, rope, fp32, {th}"], rates[f"adq, rope, fp32, {th}"]
        print(f"adq cost per step, {th}: {ad / adq:.2f}x AD's "
              f"({adq:,.0f} vs {ad:,.0f} tokens/s)")
    print("load average (1, 5, 15 min): " + ", ".join(f"{x:.2f}" for x in os.getloadavg()))


def students_main(a: argparse.Namespace) -> None:
    rows = student_rows(a.context, a.batch)
    rates = measure(rows, a.steps, a.reps)
    print(f"AD vs adq, 9x9 recipe model, context {a.context}, batch {a.batch}")
    for r in rows:
        print(f"{r.name:<54}{rates[r.name]:>10,.0f} tokens/s")
    print_rl_cost(rates)


def cpu_main(a: argparse.Namespace) -> None:
    if a.profile:
        return profile(a)
    if a.compile:
        return compiled(a)
    if a.students:
        return students_main(a)
    ctx, bsz = a.context, a.batch
    rows = [Row("reference (learned positions, fp32, 1 torch thread)", ctx, bsz,
                positions="learned", reference=True)]
    for th in (1, 2):
        for prec in ("fp32", "bf16"):
            rows.append(Row(f"rope, {prec}, {th} thread{'s' * (th > 1)}", ctx, bsz,
                            precision=prec, threads=th))
    rows.append(Row("rope, fp32, 2 threads, fused AdamW", ctx, bsz, threads=2, fused=True))
    rows.append(Row("alibi, fp32, 2 threads", ctx, bsz, positions="alibi", threads=2))
    rows += student_rows(ctx, bsz)  # AD beside adq (the "rope, fp32" rows once more)
    flops = {r.name: r.flops_per_token() for r in rows}
    peaks = {(th, p): matmul_peak(th, torch.float32 if p == "fp32" else torch.bfloat16)
             for th in (1, 2) for p in ("fp32", "bf16")}
    rates = measure(rows, a.steps, a.reps)
    ref = rates[rows[0].name]
    print(f"AD, 9x9 recipe model, context {ctx}, batch {bsz} "
          f"(bf16 native on this CPU: {bf16_native()})")
    print("matmul peak 2048^3 (GFLOP/s): " + ", ".join(
        f"{p} {th} thread{'s' * (th > 1)} {v / 1e9:.0f}" for (th, p), v in peaks.items()))
    print(f"{'setting':<54}{'tokens/s':>10}{'x ref':>7}{'MFLOP/tok':>10}{'GFLOP/s':>9}"
          f"{'of peak':>8}")
    for r in rows:
        rate, f = rates[r.name], flops[r.name]
        peak = peaks[(r.threads, r.precision)]
        print(f"{r.name:<54}{rate:>10,.0f}{rate / ref:>7.2f}{f / 1e6:>10.2f}"
              f"{rate * f / 1e9:>9.1f}{rate * f / peak:>8.2f}")
    print_rl_cost(rates)


def device_main(a: argparse.Namespace) -> None:
    from outlearn.errors import ConfigError
    from outlearn.students.device import resolve_device

    try:
        device = resolve_device(a.device)
    except ConfigError as err:
        raise SystemExit(f"error: {err}") from None
    from outlearn.students.threads import available_cores

    size = dict(d_model=a.d_model, d_ff=4 * a.d_model, n_heads=max(2, a.d_model // 64))
    cores = min(available_cores(), 8)
    rows = [Row(f"{device}, d {a.d_model}, bf16", a.context, a.batch, precision="bf16",
                device=device, **size),
            Row(f"cpu, d {a.d_model}, fp32, {cores} threads", a.context, cores, threads=cores,
                shards=cores, **size)]
    flops = {r.name: r.flops_per_token() for r in rows}
    peak = matmul_peak(1, torch.bfloat16, n=a.peak_n, device=device)
    rates = measure(rows, a.steps, a.reps)
    print(f"AD (2 layers), context {a.context}, batch {a.batch} on {device}; {device} bf16 "
          f"matmul peak {peak / 1e12:.1f} TFLOP/s")
    for r in rows:
        rate, f = rates[r.name], flops[r.name]
        mfu = f" MFU {rate * f / peak:.3f}" if r.device.type != "cpu" else ""
        print(f"{r.name:<36}{rate:>14,.0f} tokens/s {rate * f / 1e12:8.3f} TFLOP/s{mfu}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--context", type=int, default=640)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--device", default=None, help="cuda, cuda:N, mps: compare with the CPU")
    ap.add_argument("--d-model", type=int, default=256, help="with --device")
    ap.add_argument("--peak-n", type=int, default=8192, help="with --device: matmul size")
    ap.add_argument("--profile", action="store_true", help="profile one setting instead")
    ap.add_argument("--compile", action="store_true",
                    help="eager vs torch.compile instead (1 and 2 threads)")
    ap.add_argument("--students", action="store_true",
                    help="only AD and the RL student (adq), fp32, 1 and 2 threads")
    a = ap.parse_args()
    if a.device:
        device_main(a)
    else:
        cpu_main(a)


if __name__ == "__main__":
    main()
