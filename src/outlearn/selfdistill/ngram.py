"""A character n-gram model with hierarchical (Dirichlet-prior) smoothing.

Order n means the model reads the previous n-1 characters. With c_k(h, x) the count of
character x after the k-character context h (k = 0..n-1), the prediction is built up
from the uniform distribution over the V characters::

    p_{-1}(x) = 1 / V
    p_k(x | h) = (c_k(h, x) + beta * p_{k-1}(x | h')) / (c_k(h) + beta)

where h' drops the oldest character of h; the model's p is p_{n-1}. Every sequence it
is fitted on, or asked about, is read after n-1 newline characters of padding.
"""

from __future__ import annotations

import numpy as np

from outlearn.errors import ConfigError
from outlearn.selfdistill.sampling import Sampler, sample_categorical


class NGramLM:
    """Character n-gram LM over ``vocab_size`` characters; ``pad`` is the padding index."""

    def __init__(self, vocab_size: int, pad: int, order: int = 3, beta: float = 1.0):
        if order < 1 or vocab_size ** max(order - 1, 1) >= 2**62:
            raise ConfigError(f"n-gram order {order} is impossible for V={vocab_size}: use 1-6")
        if beta <= 0:
            raise ConfigError(f"n-gram beta must be > 0 (got {beta}): use e.g. 1.0")
        self.v, self.pad, self.order, self.beta = vocab_size, pad, order, beta
        self.keys: list[np.ndarray] = []  # per k: sorted context ids (n_ctx_k,)
        self.counts: list[np.ndarray] = []  # per k: counts (n_ctx_k, V)

    def _padded(self, seq: np.ndarray) -> np.ndarray:
        return np.concatenate([np.full(self.order - 1, self.pad, dtype=np.int64), seq])

    def _context_ids(self, padded: np.ndarray, k: int) -> np.ndarray:
        """Context ids of order k for every position after the padding: (len - n + 1,)."""
        m = len(padded) - (self.order - 1)
        ids = np.zeros(m, dtype=np.int64)
        for j in range(1, k + 1):
            ids = ids * self.v + padded[self.order - 1 - j : self.order - 1 - j + m]
        return ids

    def fit(self, seqs: list[np.ndarray]) -> NGramLM:
        """Count every context/next-character pair of the sequences (each (L_i,))."""
        self.keys, self.counts = [], []
        padded = [self._padded(np.asarray(s, dtype=np.int64)) for s in seqs]
        targets = np.concatenate([p[self.order - 1 :] for p in padded])
        for k in range(self.order):
            ctx = np.concatenate([self._context_ids(p, k) for p in padded])
            keys, inv = np.unique(ctx, return_inverse=True)
            counts = np.zeros((len(keys), self.v))
            np.add.at(counts, (inv, targets), 1.0)
            self.keys.append(keys)
            self.counts.append(counts)
        return self

    def _rows(self, k: int, ids: np.ndarray) -> np.ndarray:
        """Count rows (B, V) for context ids (B,); zeros for unseen contexts."""
        keys = self.keys[k]
        pos = np.minimum(np.searchsorted(keys, ids), len(keys) - 1)
        found = keys[pos] == ids
        return np.where(found[:, None], self.counts[k][pos], 0.0)

    def predict(self, ctx_ids: list[np.ndarray]) -> np.ndarray:
        """Predictive probabilities (B, V) from context ids per order k (each (B,))."""
        p = np.full((len(ctx_ids[0]), self.v), 1.0 / self.v)
        for k in range(self.order):
            c = self._rows(k, ctx_ids[k])
            p = (c + self.beta * p) / (c.sum(axis=1, keepdims=True) + self.beta)
        return p

    def probs(self, seq: np.ndarray) -> np.ndarray:
        """Teacher-forced predictions at every position of ``seq`` (M,): (M, V)."""
        padded = self._padded(np.asarray(seq, dtype=np.int64))
        return self.predict([self._context_ids(padded, k) for k in range(self.order)])

    def sample(self, streams: int, length: int, sampler: Sampler,
               rng: np.random.Generator) -> np.ndarray:
        """``streams`` independent texts of ``length`` characters: (streams, length)."""
        n = self.order - 1
        buf = np.full((streams, n + length), self.pad, dtype=np.int64)
        for t in range(length):
            ids = [np.zeros(streams, dtype=np.int64)]
            for j in range(1, n + 1):
                ids.append(ids[-1] * self.v + buf[:, n + t - j])
            buf[:, n + t] = sample_categorical(sampler(self.predict(ids)), rng)
        return buf[:, n:]
