"""Character language models refitted on their own samples (claim 13, second half)."""

import numpy as np
import pytest
import torch

from outlearn.errors import ConfigError
from outlearn.selfdistill.charlm import TransformerLM
from outlearn.selfdistill.lmloop import LMLoopSpec, heldout_metrics, run_lm_loop
from outlearn.selfdistill.ngram import NGramLM
from outlearn.selfdistill.sampling import Sampler
from outlearn.selfdistill.text import distinct_ngrams, load_corpus


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_corpus_split_is_deterministic_and_encodes(corpus):
    again = load_corpus()
    assert np.array_equal(corpus.train, again.train)
    assert len(corpus.train) > 400_000 and len(corpus.heldout) > 10_000
    assert corpus.vocab[corpus.pad] == "\n"
    assert corpus.decode(corpus.heldout[:5]) in "".join(
        __import__("pydoc_data.topics", fromlist=["topics"]).topics.values())


def test_ngram_hand_computed_value():
    # V=3, pad=2, order 2, beta 1, text 0 1 0 1 (read after one pad)
    m = NGramLM(3, pad=2, order=2, beta=1.0).fit([np.array([0, 1, 0, 1])])
    p = m.probs(np.array([0, 1]))  # position 1 is predicted after context "0"
    unigram = (np.array([2, 2, 0]) + 1 / 3) / 5
    np.testing.assert_allclose(p[1], (np.array([0, 2, 0]) + unigram) / 3)
    assert p[1, 1] == pytest.approx(37 / 45)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)


def test_ngram_samples_follow_the_model():
    m = NGramLM(4, pad=3, order=1, beta=1.0).fit([np.array([0, 0, 0, 1, 2, 0])])
    s = m.sample(500, 40, Sampler(), np.random.default_rng(0))
    freq = np.bincount(s.ravel(), minlength=4) / s.size
    expected = m.probs(np.array([0]))[0]
    assert np.all(np.abs(freq - expected) < 4 * np.sqrt(expected * (1 - expected) / s.size))


def test_ngram_learns_the_real_text(corpus):
    ce = {n: heldout_metrics(NGramLM(corpus.size, corpus.pad, order=n).fit(
        [corpus.train[:100_000]]), corpus.heldout[:3000])[0] for n in (1, 3)}
    assert ce[3] < 3.5 < 4.5 < ce[1] < np.log2(corpus.size)  # uniform: 6.7 bits


def test_distinct_ngrams_hand_example():
    s = np.array([[0, 1, 0, 1, 0], [2, 2, 2, 2, 2]])
    # bigrams: row 0: 01 10 01 10, row 1: 22 22 22 22 -> distinct {01, 10, 22} of 8
    assert distinct_ngrams(s, 2) == pytest.approx(3 / 8)


def test_ngram_loop_temperature_moves_entropy_and_diversity(corpus):
    def make(_g):
        return NGramLM(corpus.size, corpus.pad, order=3)

    res = {t: run_lm_loop(make, corpus, LMLoopSpec(Sampler(t), 3, 8, 300), seed=0)
           for t in (0.8, 1.25)}
    cold, hot = res[0.8], res[1.25]
    assert np.all(np.diff(cold["entropy_bits"]) < 0) and np.all(np.diff(hot["entropy_bits"]) > 0)
    assert cold["distinct"][-1] < cold["distinct"][0]
    assert cold["heldout_bits"][-1] > cold["heldout_bits"][0]


def test_loop_options_are_checked():
    with pytest.raises(ConfigError, match="fresh must be in"):
        LMLoopSpec(fresh=1.5)


def test_transformer_is_causal_and_fits_a_tiny_text():
    seq = np.array([0, 1, 2, 3] * 40)
    lm = TransformerLM(5, pad=4, context=16, d=16, layers=1, heads=2, steps=60, batch=8,
                       lr=1e-2, seed=0)
    p = lm.fit([seq]).probs(seq[:32])
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-9)
    # the cycle 0 1 2 3 is learnt: the next symbol gets most of the mass
    assert np.mean(p[np.arange(1, 32), seq[1:32]]) > 0.8
    x = torch.from_numpy(seq[None, :16])
    y = x.clone()
    y[0, 10] = 4
    with torch.no_grad():
        a, b = lm.net(x), lm.net(y)
    torch.testing.assert_close(a[0, :10], b[0, :10])  # the future does not leak back
    s = lm.sample(3, 12, Sampler(0.5), np.random.default_rng(0))
    assert s.shape == (3, 12) and s.max() < 5
