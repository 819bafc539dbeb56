"""Claim 11: the permuted-actions family, the verdict, and a tiny run of the study."""

from __future__ import annotations

import itertools
from types import SimpleNamespace

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from studies_tiny import check_cells, tiny

from outlearn.config import parse_config
from outlearn.envs import make_env
from outlearn.envs.permuted import PermutedActions, derangement
from outlearn.errors import ConfigError
from outlearn.stats import Estimate
from outlearn.studies.actions import ActionsConfig, relative_drop, run
from outlearn.studies.base import RunContext
from outlearn.studies.verdicts import action_semantics_verdict


def test_derangements_are_uniform_permutations_without_fixed_points():
    keys = jax.random.split(jax.random.key(0), 4000)
    perms = np.asarray(jax.vmap(lambda k: derangement(k, 4))(keys))
    assert (np.sort(perms, axis=1) == np.arange(4)).all()
    assert not (perms == np.arange(4)).any()
    # all 9 derangements of 4 elements appear, each about 1/9 of the time
    seen = {tuple(p) for p in perms}
    every = {p for p in itertools.permutations(range(4)) if all(a != i for i, a in enumerate(p))}
    assert seen == every
    counts = np.array([sum(tuple(p) == d for p in perms) for d in sorted(every)])
    assert np.all(np.abs(counts / 4000 - 1 / 9) < 0.03)


def test_permuted_family_relabels_actions_and_nothing_else():
    base = make_env("darkroom", size=5, episode_len=10)
    fam = make_env("permuted-actions", base="darkroom", size=5, episode_len=10, seed=3)
    assert isinstance(fam, PermutedActions) and fam.name == "darkroom+permuted"
    assert not hasattr(fam, "stay_action")
    ids = jnp.arange(25)
    p, bp = fam.task_params(ids), base.task_params(ids)
    assert (np.asarray(p.base.goal) == np.asarray(bp.goal)).all()
    assert np.allclose(jax.vmap(fam.optimal_return)(p), jax.vmap(base.optimal_return)(bp))
    assert (np.asarray(fam.task_params(ids).perm) == np.asarray(p.perm)).all()  # stable
    other = make_env("permuted-actions", base="darkroom", size=5, episode_len=10, seed=4)
    assert (np.asarray(other.task_params(ids).perm) != np.asarray(p.perm)).any()
    key = jax.random.key(0)
    for i in range(25):
        pi = jax.tree.map(lambda x, i=i: x[i], p)
        obs, st = fam.reset(key, pi)
        for a in range(5):
            mine = fam.step(key, st, jnp.int32(a), pi)
            theirs = base.step(key, st, pi.perm[a], pi.base)
            assert int(mine.obs) == int(theirs.obs) and float(mine.reward) == float(theirs.reward)
        best = fam.optimal_action(obs, pi)
        assert int(pi.perm[best]) == int(base.optimal_action(obs, pi.base))
        assert float(fam.expected_reward(st, best, pi)) == float(
            base.expected_reward(st, base.optimal_action(obs, pi.base), pi.base))


def test_permuted_family_refuses_what_cannot_be_permuted():
    with pytest.raises(ConfigError, match="wrap itself"):
        make_env("permuted-actions", base="permuted-actions")
    with pytest.raises(ConfigError, match=r"env 'permuted-actions':\n  - key 'seed'"):
        make_env("permuted-actions", seed=-1)
    with pytest.raises(ConfigError, match=r"env 'darkroom':\n  - unknown key 'sise'"):
        make_env("permuted-actions", base="darkroom", sise=5)  # the rest goes to the base
    with pytest.raises(ConfigError, match="nothing to permute"):
        PermutedActions(SimpleNamespace(name="one-armed", num_actions=1))


def _est(lo: float, hi: float) -> Estimate:
    return Estimate((lo + hi) / 2, lo, hi)


def test_action_semantics_verdict():
    calm = _est(-0.05, 0.06)
    assert action_semantics_verdict(_est(0.6, 0.9), calm, 0.5, 0.1).label == "confirmed"
    assert action_semantics_verdict(_est(0.1, 0.4), calm, 0.5, 0.1).label == "refuted"
    assert action_semantics_verdict(_est(0.3, 0.7), calm, 0.5, 0.1).inconclusive
    v = action_semantics_verdict(_est(0.6, 0.9), _est(0.2, 0.4), 0.5, 0.1)
    assert v.inconclusive and "affects the fresh teacher" in v.label
    v = action_semantics_verdict(_est(0.6, 0.9), _est(-0.04, 0.29), 0.5, 0.1)
    assert v.inconclusive and "too uncertain" in v.label


def test_relative_drop_is_paired_and_undefined_from_zero():
    orig = np.array([[[2.0, 2.0], [4.0, 4.0]]])  # 1 seed x 2 tasks x 2 episodes
    perm = np.array([[[1.0, 1.0], [1.0, 1.0]]])
    d = relative_drop(orig, perm)
    assert d.value == pytest.approx(1 - 2 / 6) and d.low <= d.value <= d.high
    assert relative_drop(np.zeros_like(orig), perm) is None


TINY = tiny()


def test_tiny_run_reports_original_and_permuted_with_cis(tmp_path):
    cfg = parse_config(ActionsConfig, TINY)
    (section,) = run(cfg, RunContext(tmp_path, quiet=True))
    assert section.key == "actions" and section.figures[0].exists()
    assert [r["learner"] for r in section.rows] == ["student (ad)", "teacher run fresh",
                                                    "random"]
    check_cells(section)
    for row in section.rows:
        if "drop" in row:
            assert row["drop"].value == pytest.approx(
                1 - row["permuted"].value / row["original"].value)
    student, teacher = section.rows[0], section.rows[1]
    if "drop" in student and "drop" in teacher and "does not learn" not in section.verdict:
        assert section.verdict == action_semantics_verdict(
            student["drop"], teacher["drop"], cfg.drop_bar, cfg.resolution).label
