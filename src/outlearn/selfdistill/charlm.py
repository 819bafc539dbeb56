"""A small causal character transformer (PyTorch, CPU) for the self-distillation loop.

Architecture: token + learned position embeddings (d), ``layers`` pre-norm
``nn.TransformerEncoderLayer`` s with a causal mask, a final LayerNorm and a linear head
to V logits. ``fit`` trains a freshly initialised network (seeded) with AdamW on random
windows of ``context + 1`` characters from the given sequences (each read after a newline
pad, as the n-gram model reads them). Predictions use windows of ``context`` characters.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from outlearn.selfdistill.sampling import Sampler, sample_categorical


class TinyGPT(nn.Module):
    """tokens (B, L) int64 -> logits (B, L, V), L <= context."""

    def __init__(self, vocab: int, context: int, d: int, layers: int, heads: int):
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(context, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(n)
        h = self.tok(x) + self.pos(torch.arange(n))
        return self.head(self.norm(self.body(h, mask=mask, is_causal=True)))


class TransformerLM:
    """The loop's interface (fit / probs / sample) around :class:`TinyGPT`."""

    def __init__(self, vocab_size: int, pad: int, context: int = 64, d: int = 64,
                 layers: int = 2, heads: int = 4, steps: int = 300, batch: int = 32,
                 lr: float = 3e-3, seed: int = 0, threads: int = 1):
        self.v, self.pad, self.context = vocab_size, pad, context
        self.steps, self.batch, self.lr, self.seed = steps, batch, lr, seed
        torch.set_num_threads(threads)
        torch.manual_seed(seed)
        self.net = TinyGPT(vocab_size, context, d, layers, heads)

    def _windows(self, data: np.ndarray, starts: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(data[starts[:, None] + np.arange(self.context + 1)])

    def fit(self, seqs: list[np.ndarray]) -> TransformerLM:
        """Train on windows of the newline-padded sequences (each (L_i,))."""
        data = np.concatenate([np.concatenate([[self.pad], s]) for s in seqs]).astype(np.int64)
        rng = np.random.default_rng(self.seed)
        opt = torch.optim.AdamW(self.net.parameters(), lr=self.lr, weight_decay=0.01)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, self.lr, total_steps=self.steps)
        self.net.train()
        for _ in range(self.steps):
            w = self._windows(data, rng.integers(0, len(data) - self.context - 1, self.batch))
            logits = self.net(w[:, :-1])
            loss = nn.functional.cross_entropy(logits.reshape(-1, self.v), w[:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        self.net.eval()
        return self

    @torch.no_grad()
    def probs(self, seq: np.ndarray) -> np.ndarray:
        """Predictions at every position of ``seq`` (M,) in windows of ``context``: (M, V)."""
        x = np.concatenate([[self.pad], np.asarray(seq, dtype=np.int64)])
        m, c = len(seq), self.context
        n_win = -(-m // c)
        padded = np.full(n_win * c + 1, self.pad, dtype=np.int64)
        padded[: m + 1] = x
        inputs = torch.from_numpy(padded[:-1].reshape(n_win, c))
        logits = torch.cat([self.net(b) for b in inputs.split(256)])
        return torch.softmax(logits.double(), -1).reshape(-1, self.v)[:m].numpy()

    @torch.no_grad()
    def sample(self, streams: int, length: int, sampler: Sampler,
               rng: np.random.Generator) -> np.ndarray:
        """``streams`` texts of ``length`` characters, sliding window: (streams, length)."""
        buf = np.full((streams, length + 1), self.pad, dtype=np.int64)
        for t in range(length):
            lo = max(0, t + 1 - self.context)
            logits = self.net(torch.from_numpy(buf[:, lo : t + 1]))[:, -1]
            p = torch.softmax(logits.double(), -1).numpy()
            buf[:, t + 1] = sample_categorical(sampler(p), rng)
        return buf[:, 1:]
