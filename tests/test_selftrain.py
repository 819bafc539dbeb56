"""Self-training on addition with a planted carry mistake (claim 14)."""

import numpy as np
import pytest

from outlearn.errors import ConfigError
from outlearn.selfdistill.addition import (
    LoopSpec,
    accuracy,
    eval_set,
    initial_model,
    keep_mask,
    lock_in_accuracy,
    no_carry_fraction,
    problems,
    refit,
    run_loop,
    sample,
)
from outlearn.selfdistill.sampling import Sampler

SMALL = dict(digits=3, problems=200, samples=3, generations=12, repeats=3, eval_problems=1000)


def test_problems_have_the_right_answers():
    s, truth = problems(50, 3, np.random.default_rng(0))
    assert s.shape == truth.shape == (50, 4) and np.all(s[:, 3] == 0)
    # recompute a + b from the digits' column sums and compare with the answer digits
    total = s @ (10 ** np.arange(4))
    assert np.all(truth @ (10 ** np.arange(4)) == total)


@pytest.mark.parametrize("kind", ["trace", "answer"])
def test_exact_accuracy_matches_sampling(kind):
    spec = LoopSpec(kind=kind, digits=3, eval_problems=400, repeats=2)
    params = initial_model(kind, 0.4, 0.05, 2)
    s, truth = eval_set(spec)
    exact = accuracy(kind, params, s, truth)
    reps = 200
    _, _, digits = sample(kind, params, np.repeat(s, reps, 0), Sampler(), np.random.default_rng(1))
    mc = (digits == np.repeat(truth, reps, 0)).all(-1).mean(-1)
    n = len(s) * reps
    assert np.all(np.abs(mc - exact) < 4 * np.sqrt(exact * (1 - exact) / n))


def test_pure_policies_have_known_accuracy():
    s, truth = problems(3000, 3, np.random.default_rng(2))
    correct = accuracy("trace", initial_model("trace", 0.0, 0.0, 1), s, truth)
    forget = accuracy("trace", initial_model("trace", 1.0, 0.0, 1), s, truth)
    assert correct[0] == 1.0
    assert forget[0] == pytest.approx(no_carry_fraction(s), abs=1e-12)
    assert no_carry_fraction(s) == pytest.approx(lock_in_accuracy(3), abs=4 * np.sqrt(0.25 / 3000))
    answer_best = accuracy("answer", initial_model("answer", 0.0, 0.0, 1), s, truth)[0]
    assert 0.8 < answer_best < 1.0  # carries that ripple through a 9 defeat it


def test_verifier_loop_reaches_99_percent_on_trace_model():
    acc = run_loop(LoopSpec(kind="trace", filter="verifier", temperature=1.0, **SMALL), seed=3)
    assert acc[0].mean() < 0.3
    assert np.all(acc[-1] >= 0.99)


def test_unfiltered_loop_below_t1_locks_in_the_planted_mistake():
    spec = LoopSpec(kind="trace", filter="none", temperature=0.7,
                    **{**SMALL, "problems": 1000, "generations": 30, "repeats": 4})
    acc = run_loop(spec, seed=4)
    s, _ = eval_set(spec)
    target = no_carry_fraction(s)  # always forgetting the carry: right only without carries
    np.testing.assert_allclose(acc[-1], target, atol=1e-4)
    assert acc[-1].mean() < acc[0].mean()


def test_majority_filter_keeps_the_modal_answer():
    digits = np.array([[[1, 0], [2, 0], [1, 0], [3, 0], [3, 0], [3, 0]]])  # R=1, P=2, k=3
    keep = keep_mask("majority", digits, np.zeros((6, 2), dtype=int), 3)
    assert keep.tolist() == [[True, False, True, True, True, True]]
    with pytest.raises(ConfigError, match="unknown filter"):
        keep_mask("best", digits, np.zeros((6, 2)), 3)


def test_refit_counts_and_keeps_unseen_states():
    params = np.full((1, 3, 2), 0.5)
    states = np.array([[[0, 0], [0, 1]]])
    outputs = np.array([[[1, 1], [0, 1]]])
    new = refit(params, states, outputs, np.array([[True, True]]))
    np.testing.assert_allclose(new[0], [[1 / 3, 2 / 3], [0, 1], [0.5, 0.5]])


def test_unknown_model_is_refused():
    with pytest.raises(ConfigError, match="unknown model"):
        run_loop(LoopSpec(kind="tabular"))


def test_same_seed_same_accuracy():
    spec = LoopSpec(kind="answer", filter="majority", temperature=0.9, **{**SMALL,
                                                                           "generations": 3})
    assert np.array_equal(run_loop(spec, seed=9), run_loop(spec, seed=9))
