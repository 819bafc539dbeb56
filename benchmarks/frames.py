"""Which frame encoder a student should use: ``linear`` against ``conv`` on MinAtar.

    .venv/bin/python benchmarks/frames.py [--steps 600] [--seeds 0 1] [--kinds ad gru]

Collects (once, into ``--history``) DQN histories on Breakout-MinAtar (4 train tasks +
1 test task x 2 learners, ``--collect-steps`` steps each; DQN's epsilon falls from 1 to
0.1 over its first 10,000 steps, so most actions are its greedy choice on the frame: the
part an encoder can predict; random play is log 3 = 1.099 nats an action), then trains
each student kind with each ``obs_encoder`` for ``--steps`` optimiser steps on the same
windows (same seeds, same data) and prints, per encoder: the validation loss on held-out
learners at the end (cross-entropy to the teacher's actions), the mean training loss of
the last 10% of steps, and training tokens/s (median over the run).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from outlearn.collect import CollectConfig, collect
from outlearn.config import parse_config
from outlearn.students.train import TrainConfig, train

ROOT = Path(__file__).resolve().parent.parent


def history(path: Path, steps: int) -> Path:
    if path.exists():
        return path
    cfg = parse_config(CollectConfig, {
        "seed": 0, "learners_per_task": 2, "num_steps": steps, "chunk_steps": 1000,
        "out": str(path), "env": {"name": "gymnax", "kwargs": {"name": "Breakout-MinAtar"}},
        "teacher": {"name": "dqn", "kwargs": {"eps_decay_steps": 10_000}},
        "tasks": {"seed": 0, "n_train": 4, "n_test": 1}})
    t0 = time.perf_counter()
    out = collect(cfg)
    print(f"collected {path} in {time.perf_counter() - t0:.0f} s")
    return out


def run(hist: Path, kind: str, encoder: str, seed: int, steps: int, out: Path) -> dict:
    cfg = parse_config(TrainConfig, {
        "history": str(hist), "student": {"kind": kind, "model": {"obs_encoder": encoder}},
        "data": {"context_len": 50, "batch_size": 16, "val_fraction": 0.25, "val_batches": 8},
        "optim": {"lr": 1e-3, "warmup_steps": 50, "total_steps": steps},
        "seed": seed, "out": str(out), "checkpoint_every": steps, "val_every": steps})
    t0 = time.perf_counter()
    train(cfg, quiet=True)
    recs = [json.loads(x) for x in (out / "metrics.jsonl").open()]
    tail = recs[-max(1, steps // 10):]
    return {"val": recs[-1]["val_loss"], "train": float(np.mean([r["loss"] for r in tail])),
            "tok_s": float(np.median([r["tokens_per_s"] for r in recs[5:]])),
            "wall": time.perf_counter() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--history", type=Path,
                    default=ROOT / "data" / "histories" / "minatar-breakout-dqn-10k.h5")
    ap.add_argument("--collect-steps", type=int, default=30_000)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    ap.add_argument("--kinds", nargs="+", default=["ad"])
    a = ap.parse_args()
    hist = history(a.history, a.collect_steps)
    print("| student | obs_encoder | val loss (end) | train loss (last 10%) | tokens/s |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for kind in a.kinds:
            for enc in ("linear", "conv"):
                rs = [run(hist, kind, enc, s, a.steps, Path(tmp) / f"{kind}-{enc}-{s}")
                      for s in a.seeds]
                cell = {k: [r[k] for r in rs] for k in rs[0]}
                fmt = lambda v: " / ".join(f"{x:.3f}" for x in v)  # noqa: E731
                print(f"| {kind} | {enc} | {fmt(cell['val'])} | {fmt(cell['train'])} | "
                      f"{' / '.join(f'{x:,.0f}' for x in cell['tok_s'])} |", flush=True)


if __name__ == "__main__":
    main()
