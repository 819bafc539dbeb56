"""Typed configs loaded from TOML.

Every config model derives from :class:`Config`, which refuses unknown keys.
:func:`load_toml` turns pydantic's errors into one message that names the key,
what was wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import numbers
import os
import tomllib
import types
import typing
from pathlib import Path
from typing import Annotated, Any, TypeVar, Union

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from outlearn.errors import ConfigError

C = TypeVar("C", bound="Config")


MAX_SEED = 2**63 - 1
Seed = Annotated[int, Field(ge=0, le=MAX_SEED, description="a seed: 0 <= seed < 2**63")]
"""A seed field: refused at validation when negative or >= 2**63 (it must fit in int64)."""

_SCALARS = (bool, int, float)


def _members(ann: Any) -> tuple[Any, ...]:
    """The alternatives of a Union / Optional annotation (Annotated unwrapped), else (ann,)."""
    while typing.get_origin(ann) is Annotated:
        ann = typing.get_args(ann)[0]
    if typing.get_origin(ann) in (Union, types.UnionType):
        out: tuple[Any, ...] = ()
        for a in typing.get_args(ann):
            out += _members(a)
        return out
    return (ann,)


def _fits(kind: Any, v: Any) -> bool:
    """Strict types for the scalars a TOML file holds: bool only for bool, an int (not a
    bool) for int, an int or float (not a bool) for float."""
    if kind is bool:
        return isinstance(v, bool | np.bool_)
    if isinstance(v, bool | np.bool_):
        return False
    if kind is int:
        return isinstance(v, numbers.Integral)
    return isinstance(v, numbers.Real)  # float


def _strict_problem(ann: Any, v: Any) -> str | None:
    """Why ``v`` does not strictly fit ``ann`` (only bool/int/float, their unions and lists
    of them are checked; anything else is left to pydantic), or None."""
    members = _members(ann)
    if v is None and type(None) in members:
        return None
    if isinstance(v, str) and not v.strip() and any(
            isinstance(m, type) and issubclass(m, Path) for m in members):
        return "an empty path: give a file or directory name ('.' is the current directory)"
    seqs = [m for m in members if typing.get_origin(m) in (list, tuple, set, frozenset)]
    if seqs and isinstance(v, list | tuple | set | frozenset) and len(members) == 1:
        args = [a for a in typing.get_args(seqs[0]) if a is not Ellipsis]
        if len(args) == 1:
            for i, x in enumerate(v):
                why = _strict_problem(args[0], x)
                if why is not None:
                    return f"item {i}: {why}"
        return None
    scalars = [m for m in members if m is not type(None)]
    if not scalars or not all(m in _SCALARS for m in scalars):
        return None  # a str, Path, Literal, model, dict... : pydantic's own checks
    if any(_fits(m, v) for m in scalars):
        return None
    want = " or ".join({bool: "a boolean (true/false)", int: "an integer",
                        float: "a number"}[m] for m in scalars)
    got = "a boolean" if isinstance(v, bool | np.bool_) else f"a {type(v).__name__}"
    return f"expected {want}, not {got}: types are not converted"


class Config(BaseModel):
    """Base for every config model: strict about unknown keys, immutable, no inf or NaN in
    any float (a bound like ``gt=0`` alone lets ``inf`` through), and strict scalar types:
    ``true`` is not an int, ``1`` not a bool, ``"3"`` or ``3.0`` not an int (an int is a
    float, though)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)

    @field_validator("*", mode="before")
    @classmethod
    def _strict_scalars(cls, v: Any, info: ValidationInfo) -> Any:
        field = cls.model_fields.get(info.field_name or "")
        if field is not None:
            why = _strict_problem(field.annotation, v)
            if why is not None:
                raise ValueError(why)
        return v

    def to_json(self) -> str:
        """Canonical JSON (sorted keys) of the resolved config."""
        return json.dumps(self.model_dump(mode="json"), sort_keys=True)

    def content_hash(self, n: int = 12) -> str:
        """Stable short hash of the resolved config (for caching and provenance)."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()[:n]


def format_validation_error(err: ValidationError, source: str) -> str:
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
        kind = e["type"]
        if kind == "extra_forbidden":
            lines.append(f"  - unknown key '{loc}': remove it or check its spelling")
        elif kind == "missing":
            lines.append(f"  - missing key '{loc}': add it")
        else:
            got = e.get("input")
            got_s = "" if isinstance(got, dict) else f" (got {got!r})"
            msg = str(e["msg"]).removeprefix("Value error, ")
            lines.append(f"  - key '{loc}': {msg}{got_s}")
    return "\n".join(lines)


def parse_config(model: type[C], data: dict[str, Any], source: str = "<dict>") -> C:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` on any problem."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def read_toml(path: str | Path) -> dict[str, Any]:
    """The table of a TOML file; a missing file, a directory, bytes that are not UTF-8 or
    text that is not TOML raise :class:`ConfigError` naming the file and the fix."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"config path {path} is a directory: give a .toml file")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: check the path (configs/ "
                          "holds one for every command to copy)")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ConfigError(f"config file {path} cannot be read ({err.strerror or err}): "
                          "check its permissions") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {err.start} is "
                          f"{raw[err.start]:#04x}): save it as UTF-8") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None


#: each command's config, told apart by keys only it requires (checked in this order)
COMMAND_KEYS: dict[str, tuple[str, ...]] = {
    "run": ("study",),
    "train": ("history",),
    "eval": ("learners", "num_episodes"),
    "collect": ("teacher", "tasks", "out"),
}


def config_command(data: dict[str, Any]) -> str | None:
    """The command a config's table is for (``run``, ``train``, ``eval``, ``collect``), by
    the keys only that command's config requires; None when it has none of them."""
    for command, keys in COMMAND_KEYS.items():
        if all(k in data for k in keys):
            return command
    return None


def check_command(data: dict[str, Any], command: str, source: str) -> None:
    """Refuse a config written for another command, naming that command."""
    other = config_command(data)
    if other is not None and other != command:
        keys = ", ".join(f"`{k}`" for k in COMMAND_KEYS[other])
        raise ConfigError(f"{source} is a config for `outlearn {other}` (it has {keys}), not "
                          f"for `outlearn {command}`: run `outlearn {other} {source}`")


def _is_path(ann: Any) -> bool:
    return any(isinstance(m, type) and issubclass(m, Path) for m in _members(ann))


def _submodels(ann: Any) -> tuple[type[Config] | None, bool]:
    """(the Config model in ``ann``, whether it is a list of them)."""
    for m in _members(ann):
        if isinstance(m, type) and issubclass(m, Config):
            return m, False
        if typing.get_origin(m) is list:
            args = typing.get_args(m)
            if args and isinstance(args[0], type) and issubclass(args[0], Config):
                return args[0], True
    return None, False


def resolve_paths(model: type[Config], data: dict[str, Any], base: Path, source: str,
                  prefix: str = "") -> dict[str, Any]:
    """``data`` with every relative path it holds (fields typed Path, in nested models
    too) resolved from the folder ``base`` of its config file. Defaults are left alone
    (they resolve from the working directory).

    A path that resolved from the working directory before (as outlearn did) names
    something that exists while the config-relative one does not: refused, naming both
    and the spelling that keeps the old meaning, rather than a run that silently reads or
    writes elsewhere.
    """
    out = dict(data)
    for name, field in model.model_fields.items():
        v, key = out.get(name), f"{prefix}{name}"
        if isinstance(v, str) and v.strip() and _is_path(field.annotation):
            p = Path(v).expanduser()
            if p.is_absolute():
                continue
            new = Path(os.path.normpath(base / p))
            if new != Path(os.path.normpath(p)) and not new.exists() and p.exists():
                keep = os.path.relpath(p.resolve(), base.resolve())
                raise ConfigError(
                    f"{source}: {key} = {v!r} resolves from the config file's folder, to "
                    f"{new}, which does not exist; {p} (from the working directory, as "
                    f"outlearn resolved it before) does. Write {key} = {keep!r} to keep that "
                    "meaning, or give an absolute path")
            out[name] = str(new)
            continue
        sub, many = _submodels(field.annotation)
        if sub is None:
            continue
        if many and isinstance(v, list):
            out[name] = [resolve_paths(sub, x, base, source, f"{key}[{i}].")
                         if isinstance(x, dict) else x for i, x in enumerate(v)]
        elif not many and isinstance(v, dict):
            out[name] = resolve_paths(sub, v, base, source, f"{key}.")
    return out


def load_toml(model: type[C], path: str | Path, command: str | None = None) -> C:
    """Load and validate a TOML config file into ``model``: relative paths in it resolve
    from the file's folder (:func:`resolve_paths`). ``command``: the CLI command it is
    for; a config for another one is refused, naming it (:func:`check_command`)."""
    data = read_toml(path)
    if command is not None:
        check_command(data, command, str(path))
    data = resolve_paths(model, data, Path(path).parent, str(path))
    return parse_config(model, data, str(path))
