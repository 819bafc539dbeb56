"""`outlearn explain` and docs/config.md: every config field documented, from the models.

Every field of every config model has a description; docs/config.md is what the generator
writes today; the command finds sections by name and says what it cannot find; the settings
models registered for each env and teacher are the ones their factories parse.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path
from typing import Literal

import pytest
from pydantic import Field
from typer.testing import CliRunner

import outlearn
from outlearn import explain
from outlearn.cli import app
from outlearn.config import Config, Seed
from outlearn.errors import ConfigError

DOC = Path(__file__).resolve().parents[1] / "docs" / "config.md"

run_cli = lambda *args: CliRunner().invoke(app, [str(a) for a in args],  # noqa: E731
                                           env={"COLUMNS": "200"})


def _all_config_models() -> list[type[Config]]:
    """Every config model outlearn defines (all its modules imported)."""
    for m in pkgutil.walk_packages(outlearn.__path__, "outlearn."):
        importlib.import_module(m.name)
    out, todo = [], list(Config.__subclasses__())
    while todo:
        c = todo.pop()
        todo += c.__subclasses__()
        if c.__module__.startswith("outlearn.") and c not in out:
            out.append(c)
    return sorted(out, key=lambda c: f"{c.__module__}.{c.__qualname__}")


def test_every_field_of_every_config_model_has_a_description():
    models = _all_config_models()
    assert len(models) >= 40  # commands, studies, envs, teachers, students and their parts
    missing = [f"{c.__module__}.{c.__qualname__}.{name}" for c in models
               for name, f in c.model_fields.items() if not (f.description or "").strip()]
    assert not missing, "fields without a description (add Field(description=...)):\n  " + \
        "\n  ".join(missing)


def test_docs_config_md_is_up_to_date():
    want = explain.markdown()
    have = DOC.read_text(encoding="utf-8") if DOC.exists() else ""
    assert have == want, (f"docs/config.md differs from the config models: regenerate it with "
                          f"`{explain.REGENERATE}`")


def test_the_reference_covers_every_field_of_every_model():
    """Each command, study, env, teacher and student has a section, and every field of every
    config model is a row of some table: its own model's, or (an inherited field, or the
    field of a base such as the epsilon settings) a table of a model it shares the field with
    by inheritance."""
    from outlearn.registry import ENVS, STUDENTS, STUDIES, TEACHERS

    every = explain.topics(builtin_only=True)
    keys = {t.key for t in every}
    assert {"collect", "train", "eval", "run"} <= keys
    for group, reg in (("studies", STUDIES), ("envs", ENVS), ("teachers", TEACHERS),
                       ("students", STUDENTS)):
        own = [n for n in reg.names()  # (a test may have registered one of its own)
               if getattr(reg.get(n), "config_model", reg.get(n)).__module__.startswith(
                   "outlearn.")]
        assert {f"{group}/{n}" for n in own} <= keys
    shown = {(t.model, r.key) for topic in every for t in topic.tables for r in explain.rows(t)}
    related = lambda a, b: issubclass(a, b) or issubclass(b, a)  # noqa: E731
    lost = [f"{c.__qualname__}.{f}" for c in _all_config_models() for f in c.model_fields
            if not any(related(m, c) and k == f for m, k in shown)]
    assert not lost, f"fields in no table of the reference: {lost}"
    assert '| `eps_unit` | "step" / "episode" | "step" |' in explain.markdown()


def test_teacher_and_env_defaults_come_from_their_registrations():
    """A teacher's kwargs and their defaults, and a preset's changed defaults, are shown."""
    (topic,) = explain.select("teachers/qlearning")
    rows = {r.key: r for r in explain.rows(topic.tables[0])}
    assert rows["eps_start"].default == "0.0" and rows["eps_start"].bounds == ">= 0.0, <= 1.0"
    assert rows["initial_value"].type == 'float or "optimistic"'
    assert rows["initial_value"].default == '"optimistic"'
    hard = {r.key: r.default for r in explain.rows(explain.select("darkroom-hard")[0].tables[0])}
    assert hard["size"] == "17" and hard["terminate_on_goal"] == "true"
    room = {r.key: r.default for r in explain.rows(explain.select("envs/darkroom")[0].tables[0])}
    assert room["size"] == "9" and room["terminate_on_goal"] == "false"
    ucb = explain.rows(explain.select("ucb1")[0].tables[0])
    assert [(r.key, r.default) for r in ucb] == [("c", "1.4142135623730951")]
    assert explain.select("oracle")[0].tables[0].model.model_fields == {}


@pytest.mark.parametrize("group", ["envs", "teachers"])
def test_registered_settings_models_are_what_the_factories_parse(group):
    """Each built-in env and teacher is registered with its settings model; its factory takes
    every field of that model by name and refuses a key the model does not have."""
    from outlearn.envs import make_env
    from outlearn.registry import ENVS, TEACHERS
    from outlearn.studies.runner import load_components

    load_components()
    reg = ENVS if group == "envs" else TEACHERS
    families = [make_env("bernoulli-bandit", num_arms=3), make_env("darkroom", size=3)]
    for name in reg.names():
        if not reg.get(name).__module__.startswith("outlearn."):
            continue
        found = reg.config(name)
        assert found is not None, f"{group} {name!r} registered without its settings model"
        model, preset = found
        assert set(preset) <= set(model.model_fields)
        defaults = model()
        build = (lambda kw, n=name: reg.get(n)(**kw)) if group == "envs" else None
        if build is None:  # a teacher: on the first family it runs on
            fam = next(f for f in families if _accepts(reg.get(name), f))
            build = lambda kw, n=name, f=fam: reg.get(n)(f, **kw)  # noqa: E731
        for field in model.model_fields:
            build({field: getattr(defaults, field)})
        with pytest.raises(ConfigError, match="unknown key 'not_a_setting'"):
            build({"not_a_setting": 1})


def _accepts(factory, family) -> bool:
    try:
        factory(family)
    except ConfigError:
        return False
    return True


class _Toy(Config):
    """A toy."""

    mode: Literal["a", "b"] = Field("a", description="m")
    rate: float | None = Field(None, gt=0, le=1, description="r")
    seeds: list[Seed] = Field(default=[0], min_length=1, description="s")
    sizes: list[int | Literal["auto"]] = Field(default_factory=lambda: [2, "auto"],
                                               description="z")


def test_types_defaults_and_bounds_as_a_config_writes_them():
    rows = {r.key: r for r in explain.rows(explain.Table("t", _Toy))}
    assert (rows["mode"].type, rows["mode"].default) == ('"a" / "b"', '"a"')
    assert (rows["rate"].type, rows["rate"].default, rows["rate"].bounds) == (
        "float", "unset", "> 0, <= 1")
    assert rows["seeds"].bounds == "at least 1 item, each >= 0, <= 2^63 - 1"
    assert (rows["sizes"].type, rows["sizes"].default) == (
        'list of (int or "auto")', '[2, "auto"]')


def test_explain_lists_sections_and_shows_one():
    r = run_cli("explain")
    assert r.exit_code == 0
    for key in ("collect", "studies/cutoff", "envs/gaussian-bandit", "teachers/thompson",
                "students/dpt"):
        assert key in r.output
    r = run_cli("explain", "teachers/egreedy")
    assert r.exit_code == 0
    assert re.search(r"eps_start\s*│\s*float\s*│\s*0\.3\s*│\s*>= 0\.0, <= 1\.0", r.output)
    assert "eps_unit" in r.output and "constant within an episode" in " ".join(r.output.split())
    r = run_cli("explain", "gaussian-bandit", "--markdown")
    assert r.exit_code == 0 and r.output.startswith('<a id="envs-gaussian-bandit"></a>')
    assert '| `noise_std` | float | 1.0 | >= 0.0 |' in r.output
    assert "### envs/gaussian-bandit: [env.kwargs.means]" in r.output


@pytest.mark.parametrize("section,message", [
    ("noise", r"'noise' names several sections: studies/noise, teachers/noise; give one of "
              r"them"),
    ("darkrom", r"unknown section 'darkrom' \(did you mean envs/darkroom\?\)"),
    ("nothing-like-it", r"unknown section 'nothing-like-it': give a command"),
])
def test_explain_names_what_it_cannot_find(section, message):
    r = run_cli("explain", section)
    assert r.exit_code == 2
    assert re.search(message, " ".join(r.output.split()))


def test_a_family_registered_from_outside_is_explained_but_not_in_docs():
    """A user's family registered with its settings model (examples/my_env.py) shows in
    `outlearn explain`; docs/config.md documents outlearn's own components only."""
    from outlearn.registry import ENVS

    if "corridor" not in ENVS:
        from test_extension import _load_example

        _load_example()
    (topic,) = explain.select("corridor")
    assert topic.key == "envs/corridor" and not topic.builtin
    assert [(r.key, r.default, r.bounds) for r in explain.rows(topic.tables[0])] == [
        ("length", "7", ">= 2"), ("episode_len", "12", ">= 1")]
    r = run_cli("explain", "envs/corridor")
    assert r.exit_code == 0 and "cells in the corridor" in r.output
    assert "corridor" not in explain.markdown()
