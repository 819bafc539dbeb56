"""The AD 9x9 quality bar read off a finished cut-off study: its uncut students' episodes to
0.8 of optimal on the held-out goals (their mean curve, with a two-way bootstrap CI over
students and goals) against 1.5x the teacher's, run fresh on the same goals and seeds.

Run: ``python benchmarks/ad_bar.py RUN_DIR CONFIG`` (e.g. the run directory of
``outlearn run configs/cutoff-full-gpu.toml`` and that config): it reads the stages' results
and trains or evaluates nothing. A run with several students (``[[students]]``) is read for
its uncut AD students only (each acting as the run evaluated it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import jax
import numpy as np

from outlearn.config import parse_config
from outlearn.evaluation.metrics import episodes_to_threshold, episodes_to_threshold_ci
from outlearn.registry import STUDIES
from outlearn.studies.base import stage_key
from outlearn.studies.common import held_out_tasks, make_family
from outlearn.studies.cutoff_config import acting
from outlearn.studies.runner import load_components, read_study_toml
from outlearn.studies.store import read_result


def main(run: Path, config: Path, level: float = 0.8) -> None:
    load_components()
    name, data = read_study_toml(config)
    cfg = parse_config(STUDIES.get(name).config_model, data, str(config))
    stages = run / "stages"
    # the code version the run's evaluations were keyed with (this checkout's may differ)
    version = json.loads(next(stages.glob("evaluate-*/result.json")).read_text())["meta"][
        "code_version"]
    # the evaluation stage's inputs besides the checkpoint: the run's [eval] for one student;
    # with [[students]], each AD section with the mode it acts in (cutoff.evaluate_students)
    named = [(cfg.eval.model_copy(update={"mode": acting(s, cfg.eval.mode)}), [s])
             for s in cfg.students or [] if s.kind == "ad"]
    curves = []
    for train in sorted(stages.glob("train-*")):
        ck = sorted((train / "student" / "checkpoints").glob("*.pt"))[-1]
        student = json.loads((train / "student" / "config.json").read_text())
        if "/cut-" in student["history"] or student["student"]["kind"] != "ad":
            continue  # a cut student (its history is a cut stage's file), or not AD
        for ev, extra in named or [(cfg.eval, [])]:
            key = stage_key("evaluate", [cfg.env, cfg.tasks, ev, [str(ck)], *extra], run,
                            version=version)
            if (stages / f"evaluate-{key}").is_dir():
                curves.append(np.asarray(read_result(stages / f"evaluate-{key}", run))[0])
                break
        else:
            sys.exit(f"{train.name}: no evaluation stage of this uncut student in {run}: is "
                     "the run finished, and is CONFIG the config it ran?")
    family = make_family(cfg.env)
    ids = held_out_tasks(family, cfg.tasks)
    opt = np.asarray(jax.vmap(family.optimal_return)(family.task_params(ids)), np.float64)
    students = np.stack(curves) / opt[None, None, :, None]  # (students, seeds, goals, E)
    teacher = np.asarray(read_result(next(stages.glob("baselines-*")), run)["teacher"])
    t_eps = episodes_to_threshold((teacher / opt[None, :, None]).mean(axis=(0, 1)), level)
    est = episodes_to_threshold_ci(students, level)
    print(f"{len(curves)} uncut students on {ids.size} held-out goals x {len(cfg.eval.seeds)} "
          f"seeds; teacher to {level}: episode {t_eps:g}, budget {1.5 * t_eps:g}")
    print(f"students' mean curve to {level}: episode {est}")
    for i, s in enumerate(students):
        ep = episodes_to_threshold(s.mean(axis=(0, 1)), level)  # NaN: never reaches it
        reach = f"episode {ep:g}" if np.isfinite(ep) else f"never within {s.shape[-1]} episodes"
        print(f"  student {i}: {reach}, "
              f"last 10% of episodes {s[..., -s.shape[-1] // 10:].mean():.3f} of optimal")


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]))
