"""How students use the CPU's cores: one thread per op, and shards of a batch in parallel.

Why not torch's own intra-op threads: torch's OpenMP workers spin while they wait for each
other, hundreds of times per training step. When every core they run on is free this
pays (2 threads: about 1.3-1.6x one on this 2-core machine), but as soon as another busy
process holds a core (a second student under ``--workers 2``, JAX, any job) the waiting
threads and that process take turns on the core and each barrier costs a time slice:
measured here (``benchmarks/threads.py``), two students of 2 torch threads each trained at
4.1k tokens/s each, against 36-39k each at 1 thread. This is the "2 threads 20x slower
when JAX shared the process" seen before.

So torch runs every op on one thread, and training gets its parallelism from data: the
batch is cut into ``shards`` fixed slices whose gradients are computed on up to
``threads`` Python threads at once (torch releases the GIL inside ops) and summed in shard
order. The sum is the same whichever thread computed which shard and however many ran at
once, so the weights are bit-identical for 1 or N threads (only ``shards`` enters a run's
identity), and a busy core costs its share of the work, not a collapse. Measured
(``benchmarks/train.py``, ``benchmarks/threads.py``): see the README's speed section.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import torch


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - macOS, Windows
        return os.cpu_count() or 1


def configure_threads(threads: int | None = None) -> int:
    """Set torch to one thread per op and return how many shards may run at once:
    ``threads``, else ``$OUTLEARN_TORCH_THREADS``, else :func:`available_cores`."""
    n = threads or int(os.environ.get("OUTLEARN_TORCH_THREADS", "0")) or available_cores()
    one_thread_per_op()
    return max(1, n)


def one_thread_per_op() -> None:
    """torch's thread count is per OS thread under OpenMP: call in every thread that runs
    torch ops (the main one and each pool worker)."""
    if torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def shard_pool(threads: int) -> ThreadPoolExecutor | None:
    """A pool of ``threads`` workers that each run torch ops on one thread (None for 1)."""
    if threads <= 1:
        return None
    return ThreadPoolExecutor(threads, thread_name_prefix="outlearn-shard",
                              initializer=one_thread_per_op)
