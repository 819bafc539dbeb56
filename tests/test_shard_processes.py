"""benchmarks/shard_processes.py measures shards in worker processes against shards on
threads; its comparison means something only if both compute the same step: the same
weights, bit for bit, after several updates."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


@pytest.fixture(scope="module")
def bench():
    sys.path.insert(0, str(BENCH))  # spawned workers import it by name, as the script runs
    threads = torch.get_num_threads()  # ShardProcesses sets this process to one per op
    try:
        import shard_processes
        yield shard_processes
    finally:
        sys.path.remove(str(BENCH))
        torch.set_num_threads(threads)


def test_processes_and_threads_give_the_same_weights(bench):
    threads = bench.Row("threads", 64, 4, threads=2)
    procs = bench.Row("processes", 64, 4)
    procs.step = bench.ShardProcesses(procs.model, "fp32")
    try:
        before = [p.detach().clone() for p in procs.model.parameters()]
        for _ in range(3):
            threads.one()
            procs.one()
        moved = [not torch.equal(a, b) for a, b in zip(before, procs.model.parameters(),
                                                       strict=True)]
        assert sum(moved) > len(moved) // 2  # the worker saw each update: weights moved
        for a, b in zip(threads.model.state_dict().values(),
                        procs.model.state_dict().values(), strict=True):
            assert torch.equal(a, b)
    finally:
        threads.step.close()
        procs.step.close()


def test_a_worker_error_is_raised_with_its_traceback(bench):
    row = bench.Row("processes", 64, 4)
    row.step = bench.ShardProcesses(row.model, "fp32")
    try:
        obs = row.x["obs"].clone()
        obs[2:] += 10_000  # shard 1 (the worker's) has no such cell: its embedding fails
        bad = dict(row.x, obs=obs)
        with pytest.raises(RuntimeError, match="shard worker failed:(.|\n)*IndexError"):
            row.step.backward(bad)
    finally:
        row.step.close()
