"""Self-distillation loop for character language models (claim 13, second half).

Generation 0 is fitted on real training text of the same size as every later corpus
(``streams`` random windows of ``length`` characters), so that only the source of the
data changes between generations. Generation t+1 is fitted on a corpus
of ``streams`` x ``length`` characters sampled from generation t at the loop's sampler
(temperature, truncation), where a fraction ``fresh`` of the streams is replaced by
real training text (random windows of the same length), and, with ``accumulate``, on
every corpus so far, the real text included.

Measured on every generation's model (arrays of shape (G + 1,)):
``heldout_bits``: cross-entropy on the real held-out text, bits per character;
``entropy_bits``: mean entropy of the model's next-character distribution over the
held-out contexts, bits; ``distinct``: distinct ``ngram``-grams / all in a corpus the
model samples at the loop's sampler.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from outlearn.errors import ConfigError
from outlearn.selfdistill.sampling import Sampler
from outlearn.selfdistill.text import Corpus, distinct_ngrams


class CharLM(Protocol):
    """What the loop needs of a character model."""

    def fit(self, seqs: list[np.ndarray]) -> CharLM: ...

    def probs(self, seq: np.ndarray) -> np.ndarray: ...

    def sample(self, streams: int, length: int, sampler: Sampler,
               rng: np.random.Generator) -> np.ndarray: ...


@dataclass(frozen=True)
class LMLoopSpec:
    """One loop setting."""

    sampler: Sampler = Sampler()
    generations: int = 5
    streams: int = 32
    length: int = 1000
    fresh: float = 0.0
    accumulate: bool = False
    ngram: int = 4

    def __post_init__(self) -> None:
        if not 0.0 <= self.fresh <= 1.0:
            raise ConfigError(f"fresh must be in [0, 1] (got {self.fresh}): it is a fraction")
        if self.generations < 1 or self.streams < 1 or self.length < self.ngram:
            raise ConfigError("generations and streams must be >= 1 and length >= ngram: "
                              "raise them")


def heldout_metrics(model: CharLM, heldout: np.ndarray) -> tuple[float, float]:
    """(cross-entropy, mean predictive entropy), both bits per character."""
    p = model.probs(heldout)
    ce = -np.log2(np.maximum(p[np.arange(len(heldout)), heldout], 1e-300)).mean()
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = np.where(p > 0, -p * np.log2(p), 0.0).sum(axis=1).mean()
    return float(ce), float(ent)


def real_windows(train: np.ndarray, n: int, length: int,
                 rng: np.random.Generator) -> np.ndarray:
    """``n`` random windows of the real text: (n, length)."""
    starts = rng.integers(0, len(train) - length, size=n)
    return train[starts[:, None] + np.arange(length)]


def run_lm_loop(make_model: Callable[[int], CharLM], corpus: Corpus, spec: LMLoopSpec,
                seed: int = 0) -> dict[str, np.ndarray]:
    """Run one loop; ``make_model(generation)`` returns a fresh, unfitted model."""
    rng = np.random.default_rng(seed)
    data = list(real_windows(corpus.train, spec.streams, spec.length, rng))
    model = make_model(0).fit(data)
    out: dict[str, list[float]] = {"heldout_bits": [], "entropy_bits": [], "distinct": []}
    n_fresh = int(round(spec.fresh * spec.streams))
    for t in range(spec.generations + 1):
        ce, ent = heldout_metrics(model, corpus.heldout)
        sample = model.sample(spec.streams, spec.length, spec.sampler, rng)
        out["heldout_bits"].append(ce)
        out["entropy_bits"].append(ent)
        out["distinct"].append(distinct_ngrams(sample, spec.ngram))
        if t == spec.generations:
            break
        if n_fresh:
            sample[:n_fresh] = real_windows(corpus.train, n_fresh, spec.length, rng)
        new = list(sample)
        data = data + new if spec.accumulate else new
        model = make_model(t + 1).fit(data)
    return {k: np.asarray(v) for k, v in out.items()}
