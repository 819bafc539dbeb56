"""Every config shipped in configs/ validates against its model (no stale keys); the configs
that name a claim point to docs/claims.md, which names only configs and studies that exist;
the DPT bandit chain is DPT's setting."""

import re
from pathlib import Path

import pytest

from outlearn.collect import CollectConfig
from outlearn.config import load_toml, parse_config
from outlearn.evaluation.evaluate import EvalConfig
from outlearn.registry import STUDIES
from outlearn.students import TrainConfig
from outlearn.studies.runner import load_components, read_study_toml

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.toml"))
MODELS = {"collect": CollectConfig, "train": TrainConfig, "eval": EvalConfig}


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_config_validates(path):
    kind = path.name.split("-")[0]
    if kind in MODELS:
        load_toml(MODELS[kind], path)
    else:
        load_components()
        name, data = read_study_toml(path)
        parse_config(STUDIES.get(name).config_model, data, str(path))


def test_demo_and_every_stage_have_a_config():
    names = {p.name for p in CONFIGS}
    kinds = {n.split("-")[0] for n in names}
    assert "demo.toml" in names and "cutoff-full.toml" in names
    assert {"collect", "train", "eval", "selfdistill", "selftrain"} <= kinds


ROOT = Path(__file__).resolve().parents[1]


def _header(path: Path) -> str:
    lines = path.read_text(encoding="utf-8").splitlines()
    return " ".join(ln for ln in lines[: next(i for i, ln in enumerate(lines)
                                              if not ln.startswith("#"))])


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_a_config_that_names_a_claim_points_to_docs_claims(path):
    head = _header(path)
    if re.search(r"\bclaims?\b", head, re.IGNORECASE):
        assert "docs/claims.md" in head, f"{path.name}: its header names a claim; point it to " \
            "docs/claims.md"
        assert "CLAIMS" not in head  # the shared list is not part of the repository


def test_docs_claims_states_every_claim_and_names_what_exists():
    """docs/claims.md has claims 1-16, each with how it is decided and what tests it; every
    config it names is shipped and every study it names is registered, and each study's
    claims (as `outlearn explain` gives them) list the study under that claim."""
    from outlearn.explain import STUDY_CLAIMS

    doc = (ROOT / "docs" / "claims.md").read_text(encoding="utf-8")
    parts = re.split(r"^### (\d+)\. ", doc, flags=re.MULTILINE)
    claims = {int(n): body for n, body in zip(parts[1::2], parts[2::2], strict=True)}
    assert sorted(claims) == list(range(1, 17))
    for n, body in claims.items():
        assert "*Claim.*" in body and "*Tested by.*" in body, f"claim {n}"
    for cfg in set(re.findall(r"configs/[\w.-]+\.toml", doc)):
        assert (ROOT / cfg).is_file(), f"docs/claims.md names {cfg}, which does not exist"
    load_components()
    for name in set(re.findall(r"[Ss]tud(?:y|ies) `([\w-]+)`", doc)):
        STUDIES.get(name)  # a ConfigError names an unknown study
    for study, numbers in STUDY_CLAIMS.items():
        for n in re.findall(r"\d+", numbers):
            tested_by = claims[int(n)].split("*Tested by.*")[1]
            assert f"`{study}`" in tested_by, f"claim {n} does not name study {study}"


def test_the_dpt_bandit_chain_is_dpts_setting():
    """collect / train / eval-dpt-gaussian: 5 arms, means uniform on [0, 1], Gaussian noise
    sd 0.3, T = 100; the eval runs the collection's held-out tasks of the same family, and
    Thompson sampling assumes the true noise."""
    from outlearn.envs import make_family

    c = load_toml(CollectConfig, ROOT / "configs" / "collect-dpt-gaussian.toml")
    t = load_toml(TrainConfig, ROOT / "configs" / "train-dpt-gaussian.toml")
    e = load_toml(EvalConfig, ROOT / "configs" / "eval-dpt-gaussian.toml")
    fam = make_family(c.env)
    assert (c.env.name, fam.num_arms, fam.noise_std) == ("gaussian-bandit", 5, 0.3)
    assert fam.cfg.means.model_dump(exclude_unset=True) == {"dist": "uniform", "low": 0.0,
                                                           "high": 1.0}
    assert (e.env.name, e.env.kwargs) == (c.env.name, c.env.kwargs) and t.env == c.env.name
    assert (e.tasks.seed, e.tasks.n_train, e.tasks.n_test, e.tasks.split) == (
        c.tasks.seed, c.tasks.n_train, c.tasks.n_test, "test")
    assert e.num_episodes == 100 == t.data.context_len == c.num_steps - 1
    th = next(lr for lr in e.learners if lr.teacher == "thompson")
    assert th.kwargs["noise_std"] == fam.noise_std and th.kwargs["likelihood"] == "gaussian"
    assert {lr.name for lr in e.learners} >= {"dpt", "thompson", "ucb1", "random", "oracle"}
