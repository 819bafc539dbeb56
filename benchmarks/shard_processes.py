"""Shards in worker processes instead of Python threads: measured, and not adopted.

Run: ``.venv/bin/python benchmarks/shard_processes.py [--reps 5 --steps 3]``

The README's speed section once named "one process per shard (no GIL)" as what would bring
training to 2x. This measures it on the AD 9x9 recipe's model (context 640, batch 8,
2 shards): :class:`ShardProcesses` runs shard 1 of each batch in a spawned worker process
that holds the model with its weights in shared memory (so the optimiser's in-place step
is what it reads next), writes its gradients into a shared buffer, and the caller adds
them in shard order, exactly as :class:`outlearn.students.sharded.ShardedStep` does with a
thread. Printed: tokens/s of both, fp32 and bf16, interleaved in one run (medians), the
training step before the fast students (``reference``) for scale, and whether three steps
give the same weights bit for bit. Last, for the bound: the whole batch in one process at
one thread, alone and as two independent copies at once (no synchronisation between
them), each copy's tokens/s.

Measured on the idle 2-core machine (README, Speed): no faster than threads (59.6k
against 60.2k tokens/s fp32, 69.0k against 68.8k bf16). Two independent copies of the
whole batch at one thread reach 2.14x (fp32) and 2.22x (bf16) one copy alone, and 2 shards
in lockstep 0.94 and 0.83 of those: what holds them back is waiting for each other every
step, not the GIL.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import statistics
import traceback
from multiprocessing.connection import Connection
from typing import Any

import torch
from train import Row, measure  # benchmarks/train.py: the recipe's model, its timing

from outlearn.students.sharded import ShardedStep
from outlearn.students.threads import one_thread_per_op


class ShardProcesses(ShardedStep):
    """:class:`ShardedStep` with its odd shards computed in one spawned worker process."""

    def __init__(self, model: torch.nn.Module, precision: Any):
        super().__init__(model, 2, 1, precision, torch.device("cpu"))
        one_thread_per_op()  # shard 0 runs on the calling thread, as a pool thread would
        self.sizes = [p.numel() for p in self.params]
        model.share_memory()  # in place: the optimiser keeps its parameters
        self.buf = torch.zeros(sum(self.sizes)).share_memory_()
        ctx = mp.get_context("spawn")
        self.conn, there = ctx.Pipe()
        self.proc = ctx.Process(target=_worker, args=(there, model, self.buf, precision),
                                daemon=True)
        self.proc.start()
        there.close()

    def backward(self, batch: dict[str, torch.Tensor]) -> float:
        mine, theirs = self.split(batch)
        self.conn.send({k: v.numpy() for k, v in theirs.items()})
        total, count = self._forward(mine)
        own = torch.autograd.grad(total, self.params)
        reply = self.conn.recv()
        if isinstance(reply, str):
            raise RuntimeError(f"shard worker failed:\n{reply}")
        t1, c1 = reply
        n = count + c1
        for p, g, g1 in zip(self.params, own, self.buf.split(self.sizes), strict=True):
            p.grad = (g + g1.view_as(g)).div_(n)  # shard order: 0, then 1
        return float((float(total.detach()) + t1) / float(n))

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join()


def _worker(conn: Connection, model: torch.nn.Module, buf: torch.Tensor, precision: Any
            ) -> None:
    one_thread_per_op()
    step = ShardedStep(model, 1, 1, precision, torch.device("cpu"))
    rows = buf.split([p.numel() for p in step.params])  # views of the shared buffer
    while (arrays := conn.recv()) is not None:
        try:
            total, count = step._forward({k: torch.from_numpy(v) for k, v in arrays.items()})
            for g, row in zip(torch.autograd.grad(total, step.params), rows, strict=True):
                row.copy_(g.reshape(-1))
            conn.send((total.item(), count.item()))
        except Exception:
            conn.send(traceback.format_exc())


def _alone(precision: str, reps: int, steps: int) -> float:
    """Median tokens/s of the whole batch, unsharded, at one thread (run in a process)."""
    row = Row("alone", 640, 8, precision=precision, shards=1)
    row.interval(1)
    return statistics.median(row.interval(steps) for _ in range(reps))


def independent(precision: str, copies: int, reps: int, steps: int) -> list[float]:
    """:func:`_alone` in ``copies`` spawned processes at once: each one's tokens/s."""
    with mp.get_context("spawn").Pool(copies) as pool:
        return pool.starmap(_alone, [(precision, reps, steps)] * copies)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--steps", type=int, default=3)
    a = ap.parse_args()
    rows = []
    for precision in ("fp32", "bf16"):
        threads = Row(f"{precision}, 2 shards on 2 threads", 640, 8, precision=precision,
                      threads=2)
        procs = Row(f"{precision}, 2 shards in 2 processes", 640, 8, precision=precision)
        procs.step = ShardProcesses(procs.model, precision)
        rows += [threads, procs]
    rows.append(Row("reference (the step before)", 640, 8, reference=True))
    for name, v in measure(rows, a.steps, a.reps).items():  # interleaved, medians
        print(f"{name:<34}{v:>10,.0f} tokens/s")
    x, y = Row("x", 640, 8, threads=2), Row("y", 640, 8)
    y.step = ShardProcesses(y.model, "fp32")
    for _ in range(3):
        x.one()
        y.one()
    same = all(torch.equal(p, q) for p, q in zip(x.model.state_dict().values(),
                                                 y.model.state_dict().values(), strict=True))
    print(f"weights after 3 steps, threads vs processes: {'identical' if same else 'DIFFER'}")
    for r in [*rows, x, y]:
        r.step.close()
    for precision in ("fp32", "bf16"):
        one = independent(precision, 1, a.reps, a.steps)[0]
        two = independent(precision, 2, a.reps, a.steps)
        print(f"{precision}, whole batch at 1 thread: alone {one:,.0f} tokens/s; two "
              f"independent copies at once {two[0]:,.0f} + {two[1]:,.0f} = {sum(two):,.0f} "
              f"({sum(two) / one:.2f}x)")


if __name__ == "__main__":
    main()
