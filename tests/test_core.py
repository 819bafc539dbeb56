"""The core: one definition of each shared type and key, the two learner protocols that the
rollout loop and evaluation dispatch on, and the layering (storage and students need
neither the rollout loop nor the teachers, nor even JAX)."""

from __future__ import annotations

import importlib
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import outlearn.collect
import outlearn.envs
import outlearn.evaluation
import outlearn.rollout
import outlearn.studies.common
import outlearn.teachers
import outlearn.teachers.base
from outlearn import core, rng
from outlearn.envs import make_env
from outlearn.evaluation.evaluate import run_learner
from outlearn.registry import TEACHERS
from outlearn.rollout import JaxLearnerAdapter
from outlearn.students import ADConfig, ADTransformer, StudentLearner


def test_old_import_locations_are_the_core_definitions():
    assert outlearn.teachers.base.Learner is core.Learner is outlearn.teachers.Learner
    assert outlearn.teachers.base.Transition is core.Transition is outlearn.teachers.Transition
    assert outlearn.rollout.Trajectory is core.Trajectory
    assert outlearn.envs.id_key is rng.id_key
    assert outlearn.evaluation.unit_keys is rng.unit_keys
    assert outlearn.collect.learner_keys is rng.learner_keys
    evaluate_module = importlib.import_module("outlearn.evaluation.evaluate")
    assert (outlearn.studies.common.make_family is evaluate_module.make_family
            is outlearn.envs.make_family)


@pytest.mark.parametrize("name", sorted(TEACHERS.names()))
def test_every_teacher_is_a_jax_learner_and_its_adapter_a_step_learner(name):
    fam = make_env("bernoulli-bandit", num_arms=3)
    teacher = TEACHERS.get(name)(fam)
    assert isinstance(teacher, core.Learner) and not isinstance(teacher, core.StepLearner)
    ids = np.arange(2)
    adapter = JaxLearnerAdapter(teacher, rng.unit_keys(0, ids), fam.task_params(ids))
    assert isinstance(adapter, core.StepLearner) and not isinstance(adapter, core.Learner)


def test_a_student_is_a_step_learner():
    torch.manual_seed(0)
    cfg = ADConfig(n_layers=1, n_heads=2, d_model=16, d_ff=32, context_len=4)
    student = StudentLearner(ADTransformer(cfg, 1, 3), num_envs=2, context_len=4)
    assert isinstance(student, core.StepLearner) and not isinstance(student, core.Learner)


def _tiled(fam, ids, seeds):
    keys = jnp.concatenate([rng.unit_keys(s, ids) for s in seeds])
    params = jax.tree.map(lambda x: jnp.concatenate([x] * len(seeds)),
                          fam.task_params(jnp.asarray(ids)))
    return keys, params


def test_run_learner_dispatches_on_the_protocols():
    """A JAX learner runs fused; a factory of StepLearners runs on the step path: the same
    learner both ways gives the same returns. A factory of anything else is refused."""
    fam = make_env("darkroom", size=3, episode_len=5)
    ids, seeds = np.arange(3), [0, 7]
    teacher = TEACHERS.get("qlearning")(fam)
    made: list[int] = []

    def factory(n, seed):
        made.append(n)
        return JaxLearnerAdapter(teacher, *_tiled(fam, ids, seeds))

    fused = run_learner(fam, teacher, ids, seeds, 4)
    stepped = run_learner(fam, factory, ids, seeds, 4)
    assert made == [len(ids) * len(seeds)]
    for a, b in zip(fused, stepped, strict=True):
        np.testing.assert_array_equal(a, b)

    with pytest.raises(TypeError, match="not a StepLearner"):
        run_learner(fam, lambda n, seed: object(), ids, seeds, 1)


def test_storage_and_students_import_neither_rollout_nor_teachers_nor_jax():
    code = ("import sys, outlearn.histories, outlearn.histories.transforms, outlearn.students;"
            "bad = [m for m in sys.modules if m in ('jax', 'optax') or m.split('.')[:2] in "
            "(['outlearn', 'rollout'], ['outlearn', 'teachers'], ['outlearn', 'envs'])];"
            "print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
