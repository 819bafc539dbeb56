"""``outlearn explain``: every config field of every config model, read from the models.

A *topic* documents one thing a user writes a config for: a command (``collect``,
``train``, ``eval``, ``run``), a study (``studies/cutoff``), or the settings of a task
family, a teacher or a student (``envs/darkroom``, ``teachers/qlearning``,
``students/ad``: what goes in ``env.kwargs``, ``teacher.kwargs``, ``student.model``). Each
topic is a list of tables, one per config model, one row per field: its key, type, default,
bounds and description, all taken from the pydantic models (a preset's changed defaults
from its registration), so the reference cannot drift from the code.

:func:`markdown` renders the reference of outlearn's own components (docs/config.md is
its output: ``make docs``); :func:`render` gives rich tables for the terminal, plugins'
components included.
"""

from __future__ import annotations

import difflib
import inspect
import re
import types
import typing
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, Union

import annotated_types as at
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from outlearn.config import MAX_SEED, Config
from outlearn.errors import ConfigError

#: the command that regenerates docs/config.md (the test that keeps it current names it)
REGENERATE = "make docs  (= outlearn explain --markdown > docs/config.md)"

GROUPS = {
    "commands": "the configs of outlearn collect, train, eval and run",
    "studies": "each study's own keys, for a run config with study = NAME",
    "envs": "task families, the keys of env.kwargs",
    "teachers": "the keys of teacher.kwargs, and of an eval learner's kwargs",
    "students": "the keys of student.model",
}

#: the claims of docs/claims.md each study tests
STUDY_CLAIMS = {
    "cutoff": "1, 2 and 3", "noise": "4", "subsample": "5", "gap": "6", "source": "7",
    "labels": "8", "context": "9", "identify": "12",
    "taskcount": "10", "actions": "11", "selfdistill-categorical": "13",
    "selfdistill-lm": "13", "selftrain-addition": "14",
}


@dataclass
class Table:
    """One config model's fields, under a title (a TOML table, e.g. ``[env]``)."""

    title: str
    model: type[Config]
    defaults: dict[str, Any] = field(default_factory=dict)  # a preset's changed defaults
    only: tuple[str, ...] | None = None  # the fields shown (None: all)
    note: str = ""


@dataclass
class Topic:
    key: str  # "collect", "envs/darkroom"
    group: str
    summary: str  # one line
    intro: str = ""
    tables: list[Table] = field(default_factory=list)
    builtin: bool = True


@dataclass
class Row:
    key: str
    type: str
    default: str
    bounds: str
    description: str


# ----------------------------------------------------------------------------- formatting


def text(doc: str | None) -> str:
    """A docstring as one paragraph of plain text with `code` spans (reST markup removed)."""
    doc = inspect.cleandoc(doc or "")
    doc = re.sub(r":\w+:`~?(?:[\w.]*\.)?([^`]+)`", r"`\1`", doc)
    doc = re.sub(r"``([^`]*)``", r"`\1`", doc)
    return re.sub(r"\s+", " ", doc).strip()


def _unwrap(ann: Any) -> tuple[Any, list[Any]]:
    """(the annotation without Annotated, the metadata it carried)."""
    meta: list[Any] = []
    while typing.get_origin(ann) is Annotated:
        args = typing.get_args(ann)
        ann, meta = args[0], meta + list(args[1:])
    return ann, meta


def _members(ann: Any) -> list[Any]:
    ann, _ = _unwrap(ann)
    if typing.get_origin(ann) in (Union, types.UnionType):
        return [m for a in typing.get_args(ann) for m in _members(a)]
    return [ann]


def _is_model(ann: Any) -> bool:
    return isinstance(ann, type) and issubclass(ann, Config)


def type_name(ann: Any) -> str:
    """A TOML-minded name of an annotation: int, float, path, "a" / "b", list of int..."""
    names = []
    for m in _members(ann):
        if m is type(None):
            continue
        origin = typing.get_origin(m)
        if origin is Literal:
            names.append(" / ".join(f'"{a}"' if isinstance(a, str) else str(a)
                                    for a in typing.get_args(m)))
        elif origin in (list, tuple, set, frozenset):
            inner = [a for a in typing.get_args(m) if a is not Ellipsis]
            item = type_name(inner[0]) if inner else "values"
            names.append("list of " + ("tables" if item == "table" else
                                       f"({item})" if " or " in item else item))
        elif origin is dict:
            names.append("table")
        elif _is_model(m):
            names.append("table")
        elif isinstance(m, type) and issubclass(m, Path):
            names.append("path")
        elif isinstance(m, type):
            names.append({"str": "string"}.get(m.__name__, m.__name__))
        else:
            names.append(str(m))
    return " or ".join(dict.fromkeys(names))


def _number(v: Any) -> str:
    return "2^63 - 1" if v == MAX_SEED else toml(v)


def _bounds(meta: Iterable[Any]) -> list[str]:
    out = []
    for m in meta:
        if isinstance(m, FieldInfo):
            out += _bounds(m.metadata)
        elif isinstance(m, at.Ge):
            out.append(f">= {_number(m.ge)}")
        elif isinstance(m, at.Gt):
            out.append(f"> {_number(m.gt)}")
        elif isinstance(m, at.Le):
            out.append(f"<= {_number(m.le)}")
        elif isinstance(m, at.Lt):
            out.append(f"< {_number(m.lt)}")
        elif isinstance(m, at.MinLen):
            out.append(f"at least {m.min_length} item{'s' if m.min_length != 1 else ''}")
        elif isinstance(m, at.MaxLen):
            out.append(f"at most {m.max_length} items")
    return out


def bounds(info: FieldInfo) -> str:
    """The field's bounds (ge/gt/le/lt, list lengths) and its items' bounds, as text."""
    out = _bounds(info.metadata)
    for m in _members(info.annotation):
        if typing.get_origin(m) in (list, tuple, set, frozenset):
            for a in typing.get_args(m):
                inner = _bounds(_unwrap(a)[1])
                if inner:
                    out.append("each " + ", ".join(inner))
    return ", ".join(dict.fromkeys(out))


def toml(v: Any) -> str:
    """A value as it is written in a TOML config."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str | Path):
        return f'"{v}"'
    if isinstance(v, int | float):
        return repr(v)
    if isinstance(v, list | tuple):
        return "[" + ", ".join(toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {toml(x)}" for k, x in v.items()) + " }" if v else "{}"
    if isinstance(v, Config):  # as it would be written: the keys given to make it
        return toml(v.model_dump(mode="json", exclude_unset=True))
    return str(v)


def default_text(info: FieldInfo, preset: dict[str, Any], name: str) -> str:
    if name in preset:
        return toml(preset[name])
    if info.default is PydanticUndefined and info.default_factory is None:
        return "required"
    v = info.get_default(call_default_factory=True, validated_data={})
    if v is None:
        return "unset"
    if isinstance(v, Config) and not v.model_dump(exclude_unset=True):
        return "(its defaults)"
    return toml(v)


def rows(table: Table) -> list[Row]:
    out = []
    for name, info in table.model.model_fields.items():
        if table.only is not None and name not in table.only:
            continue
        out.append(Row(name, type_name(info.annotation),
                       default_text(info, table.defaults, name), bounds(info),
                       info.description or ""))
    return out


# ----------------------------------------------------------------------------- topics


def _nested(model: type[Config], path: str, skip: set[type], only: Iterable[str] | None = None
            ) -> list[Table]:
    """Tables of the config models inside ``model``'s fields (recursively), each once."""
    out: list[Table] = []
    for name, info in model.model_fields.items():
        if only is not None and name not in only:
            continue
        for m in _members(info.annotation):
            many = typing.get_origin(m) is list
            sub = typing.get_args(m)[0] if many else m
            if not _is_model(sub):
                continue
            key = f"{path}.{name}" if path else name
            if sub in skip:
                continue
            skip.add(sub)
            title = f"[[{key}]]" if many else f"[{key}]"
            out.append(Table(title, sub, note=text(sub.__doc__)))
            out += _nested(sub, key, skip)
    return out


def _model_topic(key: str, group: str, summary: str, intro: str, model: type[Config],
                 title: str, skip: Iterable[type] = (), only: Iterable[str] | None = None,
                 note: str = "") -> Topic:
    only_t = tuple(only) if only is not None else None
    tables = [Table(title, model, only=only_t, note=note or text(model.__doc__))]
    tables += _nested(model, "", {model, *skip}, only_t)
    return Topic(key, group, summary, intro, tables)


def _own_fields(model: type[Config], base: type[Config]) -> list[str]:
    """Fields ``model`` adds to ``base`` or redefines."""
    return [n for n, f in model.model_fields.items()
            if n not in base.model_fields or f is not base.model_fields[n]
            and repr(f) != repr(base.model_fields[n])]


def _is_builtin(obj: Any) -> bool:
    return getattr(obj, "__module__", "").startswith("outlearn.")


def command_topics() -> list[Topic]:
    from outlearn.collect import CollectConfig
    from outlearn.evaluation.evaluate import EvalConfig
    from outlearn.students.train import TrainConfig
    from outlearn.studies.common import TeacherStudyConfig

    rel = ("Relative paths resolve from the config file's folder; unknown keys, wrong types "
           "and values outside the bounds are refused before any work, naming the key.")
    return [
        _model_topic("collect", "commands", "outlearn collect CONFIG: teacher histories -> one "
                     "HDF5 file", f"`outlearn collect CONFIG`. {rel} Example: "
                     "configs/collect-darkroom-q.toml.", CollectConfig, "top level"),
        _model_topic("train", "commands", "outlearn train CONFIG: a student on a history file",
                     f"`outlearn train CONFIG`. {rel} Example: configs/train-ad-darkroom.toml.",
                     TrainConfig, "top level"),
        _model_topic("eval", "commands", "outlearn eval CONFIG: learners in context on tasks, "
                     "with CIs", f"`outlearn eval CONFIG`. {rel} Example: "
                     "configs/eval-bandit.toml.", EvalConfig, "top level"),
        _model_topic("run", "commands", "outlearn run CONFIG: a study; the keys every study of "
                     "teacher histories shares",
                     "`outlearn run CONFIG`: the config names its study at the top level "
                     "(`study = \"cutoff\"`, `outlearn explain studies` lists them); every other "
                     "key belongs to that study's model. The studies of teacher histories "
                     "(actions, context, cutoff, gap, labels, noise, source, subsample, "
                     "taskcount) share the "
                     "keys below and add their own (`outlearn explain studies/NAME`). The run "
                     "goes to <--out, default runs>/<study>-<config hash>, so the same config "
                     "resumes the same run.", TeacherStudyConfig, "top level"),
    ]


def study_topics() -> list[Topic]:
    from outlearn.registry import STUDIES
    from outlearn.studies.common import EnvSection, TasksSection, TeacherSection
    from outlearn.studies.common import TeacherStudyConfig as Base

    out = []
    for name in STUDIES.names():
        st = STUDIES.get(name)
        model = st.config_model
        claims = STUDY_CLAIMS.get(name)
        desc = st.description if st.description.endswith((".", "?")) else st.description + "."
        intro = (f"`outlearn run CONFIG` with `study = \"{name}\"`: {desc}"
                 + (f" Tests claim{'s' if ',' in claims or 'and' in claims else ''} {claims} "
                    "(docs/claims.md)." if claims else ""))
        if issubclass(model, Base):
            intro += (" Besides the keys below it takes every key of `outlearn explain run` "
                      "(env, teacher, tasks, student, eval, train_seeds...).")
            skip = {EnvSection, TeacherSection, TasksSection, *(
                m for f in Base.model_fields.values() for m in _members(f.annotation)
                if _is_model(m))}
            t = _model_topic(f"studies/{name}", "studies", st.description, intro, model,
                             "top level (its own keys)", skip=skip,
                             only=_own_fields(model, Base))
        else:
            t = _model_topic(f"studies/{name}", "studies", st.description, intro, model,
                             "top level")
        t.builtin = _is_builtin(model)
        out.append(t)
    return out


def _registered_topics(group: str, registry: Any, where: str) -> list[Topic]:
    from outlearn.studies.runner import summary_line

    out = []
    for name in registry.names():
        factory = registry.get(name)
        summary = summary_line(factory)
        found = registry.config(name)
        if found is None:
            out.append(Topic(f"{group}/{name}", group, summary,
                             f"{summary} Its settings ({where}) have no registered model: see "
                             "its own documentation.", builtin=_is_builtin(factory)))
            continue
        model, preset = found
        intro = f"{text(factory.__doc__) or summary} Settings: {where}."
        if preset:
            intro += (" A preset: its defaults differ from the model's in "
                      + ", ".join(f"{k} = {toml(v)}" for k, v in preset.items()) + ".")
        t = Topic(f"{group}/{name}", group, summary, intro,
                  [Table(where, model, preset, note=text(model.__doc__))]
                  + _nested(model, where.split(" ")[0], {model}))
        t.builtin = _is_builtin(factory)
        out.append(t)
    return out


def student_topics() -> list[Topic]:
    from outlearn.registry import STUDENTS
    from outlearn.studies.runner import summary_line

    out = []
    for kind in STUDENTS.names():
        cls = STUDENTS.get(kind)
        model = cls.config_class
        about = text((inspect.getmodule(cls).__doc__ or "").split("\n\n")[0]) or text(cls.__doc__)
        over = " (over the preset's)" if hasattr(model, "preset") else ""
        intro = (f"{about} `student.kind = \"{kind}\"`; its settings go in `student.model`"
                 f"{over}; `context_len` follows `data.context_len`.")
        tables = [Table("student.model", model, note=text(model.__doc__))]
        if hasattr(model, "preset"):
            from outlearn.students.ad import PRESETS

            intro += " Presets (`student.preset`): " + "; ".join(
                f"\"{p}\": " + ", ".join(f"{k} = {toml(v)}" for k, v in vals.items())
                for p, vals in sorted(PRESETS.items())) + (". The defaults below are "
                                                           "\"small\"'s.")
        t = Topic(f"students/{kind}", "students", summary_line(cls), intro,
                  tables + _nested(model, "student.model", {model}))
        t.builtin = _is_builtin(cls)
        out.append(t)
    return out


def topics(builtin_only: bool = False) -> list[Topic]:
    """Every topic, in the reference's order; ``builtin_only``: outlearn's own components
    (not those registered by plugins or in this process by user code)."""
    from outlearn.registry import ENVS, TEACHERS
    from outlearn.studies.runner import load_components

    load_components()
    out = (command_topics() + study_topics()
           + _registered_topics("envs", ENVS, "env.kwargs")
           + _registered_topics("teachers", TEACHERS, "teacher.kwargs")
           + student_topics())
    return [t for t in out if t.builtin or not builtin_only]


def select(key: str | None, builtin_only: bool = False) -> list[Topic]:
    """The topics a SECTION names: a topic key (``teachers/qlearning``), a group
    (``teachers``) or a name that only one group has (``qlearning``); None: every topic."""
    every = topics(builtin_only)
    if key is None:
        return every
    key = key.strip().strip("/")
    if key in GROUPS:
        return [t for t in every if t.group == key]
    exact = [t for t in every if t.key == key]
    if exact:
        return exact
    named = [t for t in every if t.key.split("/")[-1] == key]
    if len(named) == 1:
        return named
    if len(named) > 1:
        raise ConfigError(f"'{key}' names several sections: "
                          f"{', '.join(t.key for t in named)}; give one of them, e.g. "
                          f"`outlearn explain {named[0].key}`")
    keys = [t.key for t in every]
    close = [k for k in keys if key in k] or [
        k for k in keys if k.split("/")[-1] in difflib.get_close_matches(
            key, [x.split("/")[-1] for x in keys], n=3, cutoff=0.75)]
    hint = f" (did you mean {', '.join(close)}?)" if close else ""
    raise ConfigError(f"unknown section '{key}'{hint}: give a command (collect, train, eval, "
                      f"run), a group ({', '.join(GROUPS)}) or one of its entries, e.g. "
                      "`outlearn explain teachers/qlearning`; `outlearn explain` lists them all")


# ----------------------------------------------------------------------------- Markdown


def _cell(s: str) -> str:
    return s.replace("|", "\\|").replace("\n", " ") or " "


def topic_markdown(t: Topic, level: int = 2) -> str:
    h = "#" * level
    lines = [f'<a id="{t.key.replace("/", "-")}"></a>', "", f"{h} {t.key}", ""]
    if t.intro:
        lines += [t.intro, ""]
    if not t.tables:
        return "\n".join(lines)
    for table in t.tables:
        lines += [f"{h}# {t.key}: {table.title}", ""]
        if table.note:
            lines += [table.note, ""]
        body = rows(table)
        if not body:
            lines += ["No settings.", ""]
            continue
        lines += ["| key | type | default | bounds | description |", "|---|---|---|---|---|"]
        for r in body:
            lines.append(f"| `{r.key}` | {_cell(r.type)} | {_cell(r.default)} | "
                         f"{_cell(r.bounds)} | {_cell(r.description)} |")
        lines.append("")
    return "\n".join(lines)


def markdown(key: str | None = None) -> str:
    """The reference as Markdown: every topic (docs/config.md) or the topics ``key`` names.
    The whole reference holds outlearn's own components only, so that it does not depend on
    what else is installed."""
    chosen = select(key, builtin_only=key is None)
    if key is not None:
        return "\n".join(topic_markdown(t) for t in chosen).rstrip() + "\n"
    head = [
        "# Config reference",
        "",
        "Every key of every config outlearn reads, generated from the config models by "
        f"`{REGENERATE.split('  ')[0]}` (`outlearn explain --markdown > docs/config.md`); do "
        "not edit it by hand: a test fails when it differs from the models. In the terminal, "
        "`outlearn explain SECTION` shows one section (e.g. `outlearn explain "
        "teachers/qlearning`).",
        "",
        "Each table is one TOML table of a config; *default* is what an unset key means "
        "(*required*: it must be given; *unset*: the behaviour the description gives); "
        "*bounds* are checked when the config is read, and a value outside them, an unknown "
        "key or a wrong type is refused before any work with a message naming the key. "
        "Integers are accepted for floats, nothing else is converted. The claims the studies "
        "test are stated in [claims.md](claims.md).",
        "",
        "## Contents",
        "",
    ]
    for group, what in GROUPS.items():
        entries = [t for t in chosen if t.group == group]
        links = ", ".join(f"[{t.key.split('/')[-1]}](#{t.key.replace('/', '-')})"
                          for t in entries)
        head.append(f"- **{group}** ({what}): {links}")
    head.append("")
    return "\n".join(head) + "\n" + "\n".join(topic_markdown(t) for t in chosen).rstrip() + "\n"


# ----------------------------------------------------------------------------- terminal


def render(key: str | None) -> list[Any]:
    """Rich renderables: the list of sections (``key`` None) or the sections ``key`` names."""
    from rich.markup import escape
    from rich.table import Table as RichTable

    if key is None:
        t = RichTable(title="outlearn explain SECTION: the keys of a config, their types, "
                      "defaults, bounds and meaning", title_justify="left")
        t.add_column("section", no_wrap=True)
        t.add_column("what it documents")
        for topic in topics():
            t.add_row(topic.key, escape(topic.summary))
        return [t, "Groups: " + ", ".join(GROUPS) + " (e.g. `outlearn explain teachers`); "
                "--markdown prints Markdown (with no section: docs/config.md)."]
    out: list[Any] = []
    for topic in select(key):
        out.append(f"[bold]{escape(topic.key)}[/bold]: {escape(topic.intro or topic.summary)}")
        for table in topic.tables:
            body = rows(table)
            rt = RichTable(title=f"{topic.key}: {table.title}"
                           + (f" - {table.note}" if table.note else ""), title_justify="left",
                           show_lines=False)
            for col, kw in (("key", {"no_wrap": True}), ("type", {}), ("default", {}),
                            ("bounds", {}), ("description", {"ratio": 3})):
                rt.add_column(col, **kw)
            for r in body:
                rt.add_row(escape(r.key), escape(r.type), escape(r.default), escape(r.bounds),
                           escape(r.description))
            out.append(rt if body else f"{topic.key}: {table.title}: no settings.")
        out.append("")
    return out


__all__ = ["GROUPS", "REGENERATE", "Row", "Table", "Topic", "markdown", "render", "rows",
           "select", "topics", "type_name"]
