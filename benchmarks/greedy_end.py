"""The teacher as its whole history leaves it, acting greedily, against the best in its data,
on the tasks a gap study judges its students on, without training a student.

Run: ``python benchmarks/greedy_end.py CONFIG [RUNS]`` with a gap-study config (e.g.
``configs/gap-darkroom-full.toml``): in that config's run directory under RUNS (default
``runs``) it runs the study's own collect and greedy-teacher stages (so a later ``outlearn
run CONFIG --out RUNS`` reuses both): each judged teacher learner rebuilt from its history,
frozen and run greedily for as many episodes as the study's asymptote averages. It prints
that return and its difference from the best in the data, both task for task with CIs over
tasks: the gap study's "teacher at the end of its history, greedy" row, in the minutes of a
collection instead of the hours of the students.
"""

from __future__ import annotations

import sys
from pathlib import Path

from outlearn.config import parse_config
from outlearn.registry import STUDIES
from outlearn.studies.base import RunContext
from outlearn.studies.common import collect_stage, make_family, mean_optimum
from outlearn.studies.gap import greedy_stage, judged, judged_ceiling
from outlearn.studies.greedy_measures import greedy_asymptote, greedy_exceedance
from outlearn.studies.runner import load_components, read_study_toml
from outlearn.studies.verdicts import ci_text


def main(config: Path, runs: Path = Path("runs")) -> None:
    load_components()
    name, data = read_study_toml(config)
    if name != "gap":
        sys.exit(f"{config}: a {name!r} study; this reads a gap study's config (study = "
                 "\"gap\"), e.g. configs/gap-darkroom-full.toml")
    cfg = parse_config(STUDIES.get(name).config_model, data, str(config))
    run_dir = runs / f"{name}-{cfg.content_hash()}"
    ctx = RunContext(run_dir, quiet=False)
    family = make_family(cfg.env)
    ids, split, _ = judged(cfg, family)
    history = collect_stage(cfg, ctx, "gap")
    out = greedy_stage(cfg, ctx, family, history)  # the study's own stages: a run reuses them
    if out["returns"] is None:
        sys.exit(f"the teacher cannot be rebuilt from its history: {out['why']}")
    ret = out["returns"]
    ceiling = judged_ceiling(cfg, family, history)
    train = split == "train"
    print(f"{config}: {ids.size} {'training' if train else 'held-out'} tasks x "
          f"{ret.shape[0]} teacher learners, {cfg.teacher_episodes} teacher episodes")
    print(f"best in data (episode {ceiling.best_episode + 1}, smoothed over "
          f"{cfg.smoothing}): {ci_text(ceiling.best)}")
    print(f"teacher at the end of its history, greedy ({ret.shape[-1]} episodes): "
          f"{ci_text(greedy_asymptote(ret))}")
    print(f"  minus the best in data: {ci_text(greedy_exceedance(ret, ceiling))}")
    print(f"mean optimal return: {mean_optimum(family, ids):.3g}")


if __name__ == "__main__":
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    main(Path(sys.argv[1]), *(Path(a) for a in sys.argv[2:]))
