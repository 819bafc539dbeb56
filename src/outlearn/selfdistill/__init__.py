"""Self-distillation and self-training (claims 13 and 14).

Categorical models refitted on their own samples (exact and finite-sample), character
language models refitted on their own text, and a self-training loop on addition. The
transformer (:mod:`outlearn.selfdistill.charlm`, needs torch) is not imported here.
"""

from outlearn.selfdistill.addition import LoopSpec, lock_in_accuracy, no_carry_fraction, run_loop
from outlearn.selfdistill.categorical import (
    FiniteOptions,
    Trajectory,
    closed_form,
    entropy,
    expected_heterozygosity,
    heterozygosity,
    ideal_limit,
    ideal_refit,
    ideal_trajectory,
    run_finite,
    run_finite_loop,
    summarise,
)
from outlearn.selfdistill.lmloop import LMLoopSpec, run_lm_loop
from outlearn.selfdistill.ngram import NGramLM
from outlearn.selfdistill.sampling import Sampler, min_p, sample_categorical, temper, top_k, top_p
from outlearn.selfdistill.text import Corpus, distinct_ngrams, load_corpus

__all__ = [
    "Corpus",
    "FiniteOptions",
    "LMLoopSpec",
    "LoopSpec",
    "NGramLM",
    "Sampler",
    "Trajectory",
    "closed_form",
    "distinct_ngrams",
    "entropy",
    "expected_heterozygosity",
    "heterozygosity",
    "ideal_limit",
    "ideal_refit",
    "ideal_trajectory",
    "load_corpus",
    "lock_in_accuracy",
    "min_p",
    "no_carry_fraction",
    "run_finite",
    "run_finite_loop",
    "run_lm_loop",
    "run_loop",
    "sample_categorical",
    "summarise",
    "temper",
    "top_k",
    "top_p",
]
