"""Tiny runs of the self-distillation and self-training studies: verdicts follow the numbers."""

import numpy as np
import pytest

import outlearn.studies.selfdistill  # noqa: F401  (registers; also via outlearn.studies)
import outlearn.studies.selftrain  # noqa: F401
from outlearn.config import parse_config
from outlearn.errors import ConfigError
from outlearn.registry import STUDIES
from outlearn.selfdistill.addition import eval_set, no_carry_fraction
from outlearn.studies.base import RunContext
from outlearn.studies.runner import run_study

CAT = dict(vocab=8, repeats=300, generations=10, ideal_generations=40, fixation_samples=4,
           fixation_generations=200, n_samples=30)
TRAIN = dict(digits=3, problems=300, samples=3, generations=10, repeats=3, eval_problems=500,
             temperatures=[0.7, 1.0])
LM = dict(generations=2, streams=6, length=300, order=3, seeds=2, heldout_chars=2000,
          transformer=dict(context=16, d=16, layers=1, heads=2, steps=5, batch=4, generations=1,
                           streams=2, length=20))


def sections(name, data, tmp_path):
    """Run through the runner (writes the report), then read the cached sections back."""
    report = run_study(name, data, tmp_path, quiet=True)
    text = report.read_text()
    study = STUDIES.get(name)
    cfg = parse_config(study.config_model, data)
    out = {s.key: s for s in study.run(cfg, RunContext(report.parent, quiet=True))}
    for s in out.values():
        assert f"Verdict: {s.verdict}" in text and s.figures and all(f.exists() for f in s.figures)
    return out


def test_categorical_study_verdicts_follow_numbers(tmp_path):
    s = sections("selfdistill-categorical", CAT, tmp_path)
    ideal = s["sd-ideal"]
    assert ideal.verdict == "confirmed"
    assert all(r["L1 to limit at G"] < 1e-3 for r in ideal.rows)
    trunc = {r["sampler"].split()[0]: r for r in s["sd-truncation"].rows}
    assert trunc["top-k"]["after 1"] == trunc["top-k"]["at G (ideal)"]
    assert trunc["min-p"]["after 1"] == trunc["min-p"]["at G (ideal)"]
    assert trunc["top-p"]["later shrinking steps"] > 0
    assert s["sd-truncation"].verdict == "confirmed"
    div = s["sd-diversity"].rows
    held = all(r["1 - Σp² at G"].low > div[0]["1 - Σp² at G"].high for r in div[1:])
    assert (s["sd-diversity"].verdict == "confirmed") == held
    assert s["sd-drift"].verdict in {"confirmed", "not confirmed"}


def test_categorical_verdict_can_fail(tmp_path):
    s = sections("selfdistill-categorical", {**CAT, "ideal_generations": 2}, tmp_path)
    assert s["sd-ideal"].verdict == "not confirmed"  # 2 generations cannot reach the limits


def test_selftrain_study_verdicts_follow_numbers(tmp_path):
    s = sections("selftrain-addition", TRAIN, tmp_path)
    lock = s["st-lock-in"]
    target = no_carry_fraction(eval_set(parse_config(
        STUDIES.get("selftrain-addition").config_model, TRAIN).spec("trace", "none", 1))[0])
    rows = {(r["filter"], r["T"]): r for r in lock.rows}
    locked = abs(rows[("none", 0.7)]["accuracy @G"].value - target) < 0.005
    climbed = all(rows[("verifier", t)]["accuracy @G"].low > rows[("verifier", t)][
        "accuracy @0"].high for t in (0.7, 1.0))
    assert (lock.verdict == "confirmed") == (locked and climbed)
    assert lock.verdict == "confirmed"
    assert s["st-trace"].verdict == "confirmed"


def test_selftrain_verdict_can_fail_when_the_mistake_is_not_modal(tmp_path):
    s = sections("selftrain-addition", {**TRAIN, "forget_weight": 0.3}, tmp_path)
    assert s["st-lock-in"].verdict == "not confirmed"
    assert np.isclose([r["accuracy @G"].value for r in s["st-lock-in"].rows
                       if r["filter"] == "none" and r["T"] == 0.7], 1.0, atol=0.01).all()


def test_lm_study_runs_and_its_verdict_reads_its_rows(tmp_path):
    s = sections("selfdistill-lm", LM, tmp_path)
    ng = s["sd-lm-ngram"]
    rows = {r["setting"]: r for r in ng.rows}
    cold = rows["T=0.8"]["entropy bits/char @G"].high < rows["T=0.8"]["entropy bits/char @0"].low
    hot = rows["T=1.25"]["entropy bits/char @G"].low > rows["T=1.25"]["entropy bits/char @0"].high
    real = all(rows[k]["held-out bits/char @G"].high < rows["T=1"]["held-out bits/char @G"].low
               for k in ("T=1, fresh 0.2", "T=1, accumulate"))
    assert (ng.verdict == "confirmed") == (cold and hot and real)
    assert "sd-lm-transformer" in s


def test_study_configs_refuse_bad_values():
    with pytest.raises(ConfigError, match="modes"):
        run_study("selfdistill-categorical", {"vocab": 4, "modes": 2, "zeros": 2}, "/tmp")
    with pytest.raises(ConfigError, match="unknown filters"):
        run_study("selftrain-addition", {"filters": ["oracle"]}, "/tmp")
    with pytest.raises(ConfigError, match="unknown key 'transformer.width'"):
        run_study("selfdistill-lm", {"transformer": {"width": 3}}, "/tmp")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["selfdistill-categorical", "selftrain-addition"])
def test_default_configs_confirm_the_claims(name, tmp_path):
    import tomllib
    from pathlib import Path

    data = tomllib.loads((Path(__file__).parents[1] / f"configs/{name}.toml").read_text())
    assert data.pop("study") == name
    s = sections(name, data, tmp_path)
    assert all(sec.verdict == "confirmed" for sec in s.values()), {
        k: (v.verdict, v.verdict_reason) for k, v in s.items()}
