"""Two ways to use 2 cores for one student, alone and with another job on the machine.

Run: ``.venv/bin/python benchmarks/threads.py [--steps 10]``

* ``torch threads``: the training step before this version (one batch, ``loss.backward()``)
  with torch's own OpenMP threads set to 1 or 2;
* ``shards``: the current step (:class:`outlearn.students.sharded.ShardedStep`: one torch
  thread per op, the batch's 2 shards on 1 or 2 Python threads).

Each setting trains the AD 9x9 recipe's model (context 640, batch 8) for ``--steps`` steps
in a fresh process, in three situations: alone; beside a busy process holding a core (a
pure-Python loop); and as two identical copies at once (two students under
``--workers 2``). Figures are tokens/s per process (for two copies, each copy's; their
sum is what the machine delivers). On a machine with more than 2 cores the situations
change meaning: the numbers are for a 2-core machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

CHILD = r"""
import json, sys, time
import torch
from torch import nn
sys.path.insert(0, "benchmarks")
from train import Row
mode, threads, steps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(1)
row = Row("x", 640, 8, threads=threads if mode == "shards" else 1,
          reference=(mode == "torch"), positions="learned" if mode == "torch" else "rope")
if mode == "torch":
    torch.set_num_threads(threads)
    row.interval = lambda n, r=row: _interval(r, n)
def _interval(r, n):
    t0 = time.perf_counter()
    for _ in range(n):
        r.one()
    return n * r.tokens / (time.perf_counter() - t0)
row.interval(1)
print(json.dumps(row.interval(steps)))
"""

BUSY = "import time\nt = time.time() + 3600\nwhile time.time() < t: pass\n"


def run(mode: str, threads: int, steps: int, copies: int) -> list[float]:
    procs = [subprocess.Popen([sys.executable, "-c", CHILD, mode, str(threads), str(steps)],
                              stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    return [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=10)
    a = ap.parse_args()
    settings = [("torch", 1), ("torch", 2), ("shards", 1), ("shards", 2)]
    print(f"AD 9x9 recipe model, context 640, batch 8, {a.steps} steps; tokens/s per process")
    print(f"{'setting':<22}{'alone':>10}{'busy core':>11}{'two copies (each)':>22}")
    for mode, th in settings:
        alone = run(mode, th, a.steps, 1)[0]
        busy = subprocess.Popen([sys.executable, "-c", BUSY])
        time.sleep(0.5)
        try:
            beside = run(mode, th, a.steps, 1)[0]
        finally:
            busy.kill()
        two = run(mode, th, a.steps, 2)
        name = f"{'torch threads' if mode == 'torch' else 'shards on threads'} {th}"
        print(f"{name:<22}{alone:>10,.0f}{beside:>11,.0f}"
              f"{' / '.join(f'{x:,.0f}' for x in two):>22}")


if __name__ == "__main__":
    main()
