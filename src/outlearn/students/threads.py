"""Torch's thread count, chosen once for every place that runs a student."""

from __future__ import annotations

import os

import torch


def configure_threads(threads: int | None = None) -> int:
    """Set torch's intra-op threads and return the number.

    Default 1 (or ``$OUTLEARN_TORCH_THREADS``): on a 2-core machine, 2 threads trained the
    default AD student 20x slower than 1 (``benchmarks/train.py``), because torch's pool
    and JAX's oversubscribe the cores and these models are too small to split. On a bigger
    machine, set ``threads`` in the config or the environment variable.
    """
    n = threads or int(os.environ.get("OUTLEARN_TORCH_THREADS", "1"))
    if torch.get_num_threads() != n:
        torch.set_num_threads(n)
    return n
