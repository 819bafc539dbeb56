"""Self-training on multi-digit addition with a planted "forgot the carry" error (claim 14).

Problems: a + b with D random digits each (leading zeros allowed); the answer has
L = D + 1 digits, column 0 the least significant, column D a padding column (a=b=0).
s_i = a_i + b_i in 0..18.

Two tabular models, R independent copies of each (parameters (R, S, O)):

- **trace** writes its carries: at column i, in state (s_i, c_i) with c_i the carry it
  wrote at column i-1 (c_0 = 0), it emits (digit, carry-out): S = 19*2 states,
  O = 10*2 outputs. Correct: ((s+c) mod 10, (s+c) >= 10).
- **answer** writes only the answer digits: at column i it sees (s_i, s_{i-1})
  (s_{-1} = 0) and emits a digit: S = 19*19, O = 10. Its best rule adds a carry when
  s_{i-1} >= 10; it cannot see a carry rippling through a 9, so it cannot reach 100%.

Initial model at every state: (1 - noise) * [(1 - w) correct + w forget] + noise * uniform,
where the planted mistake "forget" ignores carries (trace: digit s mod 10, carry 0;
answer: digit s_i mod 10). With w > 1/2 the mistake is the mode wherever it differs
from the correct output, so a model that always makes it is right only on problems
with no carry at all: accuracy (55/100)^D (:func:`lock_in_accuracy`).

A generation samples k answers (at temperature T, per-state) to each of P fresh
problems, keeps them by a filter (``none``; ``majority``: the samples that agree with
the most common answer; ``verifier``: the correct ones, STaR-like) and refits each
state's distribution to the kept (state, output) counts; a state with no kept data keeps
its old distribution. Accuracy is exact: the probability that the model, sampling at
T = 1, writes the right answer, averaged over a fixed evaluation set (:func:`accuracy`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from outlearn.errors import ConfigError
from outlearn.selfdistill.sampling import Sampler, sample_categorical

MODELS = ("trace", "answer")
FILTERS = ("none", "majority", "verifier")


def problems(n: int, digits: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Column sums s (n, D+1) and the true answer digits (n, D+1) of n random problems."""
    a = rng.integers(0, 10, size=(n, digits))
    b = rng.integers(0, 10, size=(n, digits))
    s = np.concatenate([a + b, np.zeros((n, 1), dtype=a.dtype)], axis=1)
    value = (a + b) @ (10 ** np.arange(digits))
    truth = (value[:, None] // 10 ** np.arange(digits + 1)) % 10
    return s, truth


def lock_in_accuracy(digits: int) -> float:
    """Accuracy of always forgetting the carry: P(no column sums to 10 or more)."""
    return 0.55**digits


def no_carry_fraction(s: np.ndarray) -> float:
    """The same on a given problem set: the fraction of rows of s (n, L) with no s_i >= 10."""
    return float((s < 10).all(axis=1).mean())


def eval_set(spec: LoopSpec) -> tuple[np.ndarray, np.ndarray]:
    """The fixed evaluation problems of a loop (seeded apart from the loop's own seed)."""
    return problems(spec.eval_problems, spec.digits, np.random.default_rng(12345))


def _trace_table(forget: bool) -> np.ndarray:
    """Deterministic trace policy as (38, 20) one-hot rows."""
    s, c = np.divmod(np.arange(38), 2)
    digit, carry = (s % 10, np.zeros_like(s)) if forget else ((s + c) % 10, (s + c) // 10)
    return np.eye(20)[digit * 2 + carry]


def _answer_table(forget: bool) -> np.ndarray:
    """Deterministic answer-only policy as (361, 10) one-hot rows."""
    s, prev = np.divmod(np.arange(361), 19)
    digit = s % 10 if forget else (s + (prev >= 10)) % 10
    return np.eye(10)[digit]


def initial_model(kind: str, forget_weight: float, noise: float, repeats: int) -> np.ndarray:
    """The planted mixture, tiled to (R, S, O)."""
    table = {"trace": _trace_table, "answer": _answer_table}[check_kind(kind)]
    mix = (1 - forget_weight) * table(False) + forget_weight * table(True)
    p = (1 - noise) * mix + noise / mix.shape[1]
    return np.tile(p, (repeats, 1, 1))


def check_kind(kind: str) -> str:
    if kind not in MODELS:
        raise ConfigError(f"unknown model {kind!r}: use one of {', '.join(MODELS)}")
    return kind


def check_filter(filt: str) -> str:
    if filt not in FILTERS:
        raise ConfigError(f"unknown filter {filt!r}: use one of {', '.join(FILTERS)}")
    return filt


def _gather(params: np.ndarray, states: np.ndarray) -> np.ndarray:
    """params (R, S, O), states (R, M) -> rows (R, M, O)."""
    return np.take_along_axis(params, states[..., None], axis=1)


def sample(kind: str, params: np.ndarray, s: np.ndarray, sampler: Sampler,
           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sample one answer per row of s (M, L) for each of R models.

    Returns (states, outputs, digits), each (R, M, L).
    """
    r, (m, n_col) = params.shape[0], s.shape
    states = np.empty((r, m, n_col), dtype=np.int64)
    outputs = np.empty_like(states)
    carry = np.zeros((r, m), dtype=np.int64)
    prev = np.zeros(m, dtype=np.int64)
    table = sampler(params)  # the sampling distribution of every state, (R, S, O)
    for i in range(n_col):
        if kind == "trace":
            st = s[:, i] * 2 + carry
        else:
            st = np.broadcast_to(s[:, i] * 19 + prev, (r, m))
        out = sample_categorical(_gather(table, st), rng)
        states[:, :, i], outputs[:, :, i] = st, out
        if kind == "trace":
            carry = out % 2
        prev = s[:, i]
    digits = outputs // 2 if kind == "trace" else outputs
    return states, outputs, digits


def keep_mask(filt: str, digits: np.ndarray, truth: np.ndarray, k: int) -> np.ndarray:
    """Which samples to train on. digits (R, P*k, L), truth (P*k, L) -> (R, P*k) bool."""
    if filt == "none":
        return np.ones(digits.shape[:2], dtype=bool)
    if filt == "verifier":
        return (digits == truth).all(axis=-1)
    check_filter(filt)
    code = digits @ (10 ** np.arange(digits.shape[-1]))  # majority vote
    code = code.reshape(code.shape[0], -1, k)  # (R, P, k)
    votes = (code[..., :, None] == code[..., None, :]).sum(axis=-1)
    winner = np.take_along_axis(code, votes.argmax(axis=-1)[..., None], axis=-1)
    return (code == winner).reshape(code.shape[0], -1)


def refit(params: np.ndarray, states: np.ndarray, outputs: np.ndarray,
          keep: np.ndarray) -> np.ndarray:
    """Maximum-likelihood refit of each state on kept data; unseen states unchanged.

    params (R, S, O); states, outputs (R, M, L); keep (R, M).
    """
    r, n_s, n_o = params.shape
    flat = (np.arange(r)[:, None, None] * n_s + states) * n_o + outputs
    w = np.broadcast_to(keep[..., None], flat.shape).astype(np.float64)
    counts = np.bincount(flat.ravel(), weights=w.ravel(), minlength=r * n_s * n_o)
    counts = counts.reshape(r, n_s, n_o)
    total = counts.sum(axis=-1, keepdims=True)
    return np.where(total > 0, counts / np.maximum(total, 1), params)


def accuracy(kind: str, params: np.ndarray, s: np.ndarray, truth: np.ndarray) -> np.ndarray:
    """Exact P(correct answer) sampling at T=1, averaged over problems: (R,).

    s, truth: (E, L). The trace model sums over its written carries (forward pass).
    """
    if kind == "answer":
        prev = np.concatenate([np.zeros_like(s[:, :1]), s[:, :-1]], axis=1)
        st = s * 19 + prev  # (E, L)
        probs = params[:, st, truth]  # (R, E, L)
        return probs.prod(axis=-1).mean(axis=-1)
    alive = np.zeros((params.shape[0], s.shape[0], 2))
    alive[..., 0] = 1.0
    for i in range(s.shape[1]):
        new = np.zeros_like(alive)
        for c in (0, 1):
            rows = params[:, s[:, i] * 2 + c]  # (R, E, 20)
            for c_out in (0, 1):
                out = truth[:, i] * 2 + c_out
                new[..., c_out] += alive[..., c] * np.take_along_axis(
                    rows, np.broadcast_to(out[None, :, None], rows.shape[:2] + (1,)), -1)[..., 0]
        alive = new
    return alive.sum(axis=-1).mean(axis=-1)


@dataclass(frozen=True)
class LoopSpec:
    """One self-training loop setting."""

    kind: str = "trace"
    filter: str = "none"
    temperature: float = 1.0
    digits: int = 4
    forget_weight: float = 0.6
    noise: float = 0.05
    problems: int = 500
    samples: int = 4
    generations: int = 15
    repeats: int = 8
    eval_problems: int = 2000


def run_loop(spec: LoopSpec, seed: int = 0) -> np.ndarray:
    """Run R repeats of the loop; returns exact accuracy per generation, (G + 1, R)."""
    check_kind(spec.kind)
    check_filter(spec.filter)
    rng = np.random.default_rng(seed)
    eval_s, eval_truth = eval_set(spec)
    params = initial_model(spec.kind, spec.forget_weight, spec.noise, spec.repeats)
    sampler = Sampler(spec.temperature)
    acc = [accuracy(spec.kind, params, eval_s, eval_truth)]
    for _ in range(spec.generations):
        s, truth = problems(spec.problems, spec.digits, rng)
        s, truth = np.repeat(s, spec.samples, axis=0), np.repeat(truth, spec.samples, axis=0)
        states, outputs, digits = sample(spec.kind, params, s, sampler, rng)
        keep = keep_mask(spec.filter, digits, truth, spec.samples)
        params = refit(params, states, outputs, keep)
        acc.append(accuracy(spec.kind, params, eval_s, eval_truth))
    return np.stack(acc)


__all__ = ["FILTERS", "MODELS", "LoopSpec", "accuracy", "check_filter", "check_kind",
           "initial_model", "keep_mask",
           "eval_set", "lock_in_accuracy", "no_carry_fraction", "problems", "refit", "run_loop",
           "sample"]
