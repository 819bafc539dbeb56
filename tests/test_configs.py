"""Every config shipped in configs/ validates against its model (no stale keys)."""

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
