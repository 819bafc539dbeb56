"""Typed configs loaded from TOML.

Every config model derives from :class:`Config`, which refuses unknown keys.
:func:`load_toml` turns pydantic's errors into one message that names the key,
what was wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import numbers
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
        raise ConfigError(f"config file {path} does not exist: check the path")
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


def load_toml(model: type[C], path: str | Path) -> C:
    """Load and validate a TOML config file into ``model``."""
    return parse_config(model, read_toml(path), str(path))
