"""Typed configs loaded from TOML.

Every config model derives from :class:`Config`, which refuses unknown keys.
:func:`load_toml` turns pydantic's errors into one message that names the key,
what was wrong and how to fix it.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from outlearn.errors import ConfigError

C = TypeVar("C", bound="Config")


class Config(BaseModel):
    """Base for every config model: strict about unknown keys, immutable, and no inf or
    NaN in any float (a bound like ``gt=0`` alone lets ``inf`` through)."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True,
                              allow_inf_nan=False)

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
            lines.append(f"  - key '{loc}': {e['msg']}{got_s}")
    return "\n".join(lines)


def parse_config(model: type[C], data: dict[str, Any], source: str = "<dict>") -> C:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` on any problem."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_toml(model: type[C], path: str | Path) -> C:
    """Load and validate a TOML config file into ``model``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist: check the path")
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"config file {path} is not valid TOML: {err}") from None
    return parse_config(model, data, str(path))
