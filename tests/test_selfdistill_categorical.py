"""Self-distillation of a categorical model held to its mathematics (claim 13)."""

import numpy as np
import pytest

from outlearn.errors import ConfigError
from outlearn.selfdistill import (
    FiniteOptions,
    Sampler,
    closed_form,
    expected_heterozygosity,
    ideal_limit,
    ideal_trajectory,
    run_finite,
    run_finite_loop,
)
from outlearn.selfdistill.sampling import min_p, sample_categorical, temper, top_k, top_p

P0 = np.array([0.3, 0.3, 0.2, 0.1, 0.1, 0.0])


def test_ideal_refit_at_t1_is_identity():
    tr = ideal_trajectory(P0, Sampler(1.0), 50)
    np.testing.assert_allclose(tr, np.broadcast_to(P0, tr.shape), rtol=0, atol=1e-15)


@pytest.mark.parametrize("temperature", [0.5, 0.8, 1.25, 2.0])
def test_ideal_refit_matches_closed_form_and_limit(temperature):
    tr = ideal_trajectory(P0, Sampler(temperature), 40)
    for t in range(41):
        np.testing.assert_allclose(tr[t], closed_form(P0, temperature, t), atol=1e-12)
    limit = ideal_limit(P0, temperature)
    np.testing.assert_allclose(tr[-1], limit, atol=1e-3)
    if temperature < 1:  # uniform over the two tied modes
        np.testing.assert_allclose(limit, [0.5, 0.5, 0, 0, 0, 0])
    else:  # uniform over the support; the zero stays zero
        np.testing.assert_allclose(limit, [0.2, 0.2, 0.2, 0.2, 0.2, 0])
        assert np.all(tr[:, -1] == 0)


def test_closed_form_is_stable_far_out():
    np.testing.assert_allclose(closed_form(P0, 0.5, 2000), ideal_limit(P0, 0.5))
    np.testing.assert_allclose(closed_form(P0, 2.0, 2000), ideal_limit(P0, 2.0))


def test_finite_t1_is_a_martingale_with_wright_fisher_heterozygosity():
    p0, n, reps, gens = np.array([0.4, 0.3, 0.2, 0.1]), 20, 20000, 8
    tr = run_finite(p0, Sampler(), FiniteOptions(n), reps, gens, seed=1)
    # mean of p_t equals p_0: within 4 Monte-Carlo standard errors per category and t
    ps_se = np.sqrt(p0 * (1 - p0) / reps)  # upper bound on the std error of the mean of p_t
    assert np.all(np.abs(tr.mean_p - p0) < 4 * ps_se)
    het = tr.heterozygosity
    se = het.std(axis=1) / np.sqrt(reps)
    expected = expected_heterozygosity(p0, n, gens)
    assert np.all(np.abs(het.mean(axis=1) - expected) <= 4 * se + 1e-12)
    assert expected[-1] < 0.7 * expected[0]  # the decay is large enough to be seen


def test_fixation_frequencies_are_p0():
    p0, reps = np.array([0.5, 0.3, 0.2]), 4000
    tr = run_finite(p0, Sampler(), FiniteOptions(10), reps, 400, seed=2)
    assert np.all(tr.fixed_at > 0)
    freq = np.bincount(tr.fixed_to, minlength=3) / reps
    tol = 4 * np.sqrt(p0 * (1 - p0) / reps)  # 4 binomial standard errors (<= 0.032)
    assert np.all(np.abs(freq - p0) < tol), (freq, tol)


def test_fresh_data_and_accumulation_hold_diversity():
    p0 = np.full(10, 0.1)
    runs = {name: run_finite(p0, Sampler(), opts, 400, 30, seed=3).heterozygosity[-1].mean()
            for name, opts in {"self": FiniteOptions(20),
                               "fresh": FiniteOptions(20, fresh=0.2),
                               "accumulate": FiniteOptions(20, accumulate=True)}.items()}
    # drift alone: 0.9 * 0.95^30 = 0.19 expected; fresh data holds it near its equilibrium
    assert runs["self"] < 0.3 and runs["fresh"] > 0.7 and runs["accumulate"] > 0.8


def test_smoothing_prevents_fixation():
    tr = run_finite(np.array([0.9, 0.1]), Sampler(), FiniteOptions(5, alpha=0.5), 200, 100)
    assert np.all(tr.fixed_at == -1) and np.all(tr.support == 2)


def test_top_p_keeps_pruning_until_survivors_exceed_1_minus_p():
    p = 1 / np.arange(1, 21)
    p = p / p.sum()
    mass = 0.9
    tr = ideal_trajectory(p, Sampler(top_p=mass), 20)
    support = (tr > 0).sum(axis=-1)
    assert support[1] > support[2] > support[3]  # still shrinking after the first step
    for t in range(20):
        smallest = tr[t][tr[t] > 0].min()
        if support[t + 1] == support[t]:
            assert smallest > 1 - mass  # fixed point: every survivor above 1 - P
        else:
            assert smallest <= 1 - mass
    assert support[-1] == support[-2] and tr[-1][tr[-1] > 0].min() > 1 - mass


def test_top_k_and_min_p_stop_shrinking_after_one_step():
    p = 1 / np.arange(1, 21) ** 1.5
    p = p / p.sum()
    for sampler in [Sampler(top_k=5), Sampler(min_p=0.1), Sampler(1.0, top_k=7, min_p=0.05)]:
        support = (ideal_trajectory(p, sampler, 10) > 0).sum(axis=-1)
        assert support[0] == 20 and support[1] < 20
        assert np.all(support[1:] == support[1])
    assert (top_k(p, 5) > 0).sum() == 5


def test_truncations_on_a_hand_example():
    p = np.array([0.5, 0.25, 0.15, 0.1])
    np.testing.assert_allclose(top_p(p, 0.7), [0.5 / 0.75, 0.25 / 0.75, 0, 0])
    np.testing.assert_allclose(top_p(p, 0.75), [0.5 / 0.75, 0.25 / 0.75, 0, 0])
    np.testing.assert_allclose(min_p(p, 0.3), [0.5 / 0.9, 0.25 / 0.9, 0.15 / 0.9, 0])
    np.testing.assert_allclose(temper(p, 0.5), p**2 / (p**2).sum())


def test_sample_categorical_frequencies_and_zeros():
    q = np.tile([0.0, 0.7, 0.0, 0.3], (50000, 1))
    x = sample_categorical(q, np.random.default_rng(0))
    freq = np.bincount(x, minlength=4) / len(x)
    assert freq[0] == 0 and freq[2] == 0 and abs(freq[1] - 0.7) < 4 * np.sqrt(0.21 / 50000)


def test_vectorised_and_python_loops_agree_in_distribution():
    p0 = np.array([0.6, 0.4])
    a = run_finite(p0, Sampler(0.8), FiniteOptions(30), 3000, 5, seed=4).final[:, 0]
    b = run_finite_loop(p0, Sampler(0.8), FiniteOptions(30), 3000, 5, seed=5)[:, 0]
    se = np.sqrt(a.var() / 3000 + b.var() / 3000)
    assert abs(a.mean() - b.mean()) < 4 * se
    assert a.mean() > 0.7  # T < 1 pushes mass to the mode


def test_bad_options_name_the_fix():
    with pytest.raises(ConfigError, match="temperature must be > 0"):
        Sampler(0.0)
    with pytest.raises(ConfigError, match="top_p must be in"):
        Sampler(top_p=1.5)
    with pytest.raises(ConfigError, match="fresh must be in"):
        FiniteOptions(fresh=2.0)


def test_same_seed_same_numbers():
    args = (P0, Sampler(0.9, top_p=0.95), FiniteOptions(25, fresh=0.2, alpha=0.1), 50, 6)
    a, b = run_finite(*args, seed=7), run_finite(*args, seed=7)
    assert np.array_equal(a.final, b.final) and np.array_equal(a.entropy, b.entropy)
    assert not np.array_equal(a.final, run_finite(*args, seed=8).final)
