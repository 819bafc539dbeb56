"""The real text for the language-model studies: Python's own help topics.

``pydoc_data.topics.topics`` ships with every Python (a dict of about 80 help pages,
about 465k characters). Pages are taken in sorted-key order; every 10th page (index
9, 19, ...) is held out, the rest is the training text. The vocabulary is every
character of the whole text, so held-out text always encodes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PAD = "\n"  # streams and sequences start from a context of newlines


@dataclass(frozen=True)
class Corpus:
    """Encoded train (N,) and held-out (M,) text, int64 indices into ``vocab``."""

    vocab: str
    train: np.ndarray
    heldout: np.ndarray

    @property
    def size(self) -> int:
        return len(self.vocab)

    @property
    def pad(self) -> int:
        return self.vocab.index(PAD)

    def decode(self, ids: np.ndarray) -> str:
        return "".join(self.vocab[i] for i in np.asarray(ids).ravel())


def load_corpus(max_train: int | None = None, max_heldout: int | None = None) -> Corpus:
    """The deterministic split; optionally the first ``max_*`` characters of each part."""
    from pydoc_data.topics import topics

    pages = [topics[k] for k in sorted(topics)]
    train = "".join(p for i, p in enumerate(pages) if i % 10 != 9)
    heldout = "".join(p for i, p in enumerate(pages) if i % 10 == 9)
    vocab = "".join(sorted(set(train + heldout) | {PAD}))
    lookup = {c: i for i, c in enumerate(vocab)}

    def enc(s: str, n: int | None) -> np.ndarray:
        s = s[:n] if n else s
        return np.fromiter((lookup[c] for c in s), dtype=np.int64, count=len(s))

    return Corpus(vocab, enc(train, max_train), enc(heldout, max_heldout))


def distinct_ngrams(streams: np.ndarray, n: int) -> float:
    """Distinct n-grams / all n-grams within the rows of ``streams`` (B, L)."""
    b, length = streams.shape
    if length < n:
        return 0.0
    base = int(streams.max()) + 1
    codes = np.zeros((b, length - n + 1), dtype=np.int64)
    for j in range(n):
        codes = codes * base + streams[:, j : length - n + 1 + j]
    return float(np.unique(codes).size / codes.size)
