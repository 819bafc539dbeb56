"""Generations per second of the finite-sample categorical loop, vectorised vs plain Python.

Setting (the issue's): V=50 outcomes, N=1,000 samples per generation, 1,000 repeats, T=1.
The vectorised loop (:func:`outlearn.selfdistill.run_finite`) draws all repeats as one
(R, V) multinomial and computes the metrics on (G + 1, R, V) arrays; the reference
(:func:`outlearn.selfdistill.run_finite_loop`) runs one repeat at a time in a Python loop.
Both are timed in the same run; the figure is the median over ``--trials``.

    .venv/bin/python benchmarks/selfdistill.py [--generations 10] [--trials 5]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from outlearn.selfdistill import FiniteOptions, Sampler, run_finite, run_finite_loop


def timed(fn, *args) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--vocab", type=int, default=50)
    ap.add_argument("--samples", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=1000)
    ap.add_argument("--generations", type=int, default=10)
    ap.add_argument("--trials", type=int, default=5)
    a = ap.parse_args()
    p0 = np.random.default_rng(0).dirichlet(np.ones(a.vocab))
    args = (p0, Sampler(), FiniteOptions(a.samples), a.repeats, a.generations)
    vec = [a.generations / timed(run_finite, *args) for _ in range(a.trials)]
    loop = [a.generations / timed(run_finite_loop, *args) for _ in range(a.trials)]
    v, lo = statistics.median(vec), statistics.median(loop)
    print(f"V={a.vocab} N={a.samples} R={a.repeats} G={a.generations}, median of {a.trials}")
    print(f"vectorised : {v:8.2f} generations/s ({v * a.repeats:,.0f} repeat-generations/s)")
    print(f"python loop: {lo:8.2f} generations/s ({lo * a.repeats:,.0f} repeat-generations/s)")
    print(f"ratio      : {v / lo:8.2f}x")


if __name__ == "__main__":
    main()
