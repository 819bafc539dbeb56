"""Stage results as data, never pickles: ``result.json`` plus one ``result.npz`` of arrays.

A study's run directory may be shared (a cluster's file system) and copied around, so
loading a stage's result must never run code. :func:`write_result` writes what a stage
returned as JSON, its numpy arrays into one ``.npz`` (read back with
``allow_pickle=False``), each file atomically; ``result.json`` is written last and marks
the stage finished. :func:`read_result` rebuilds exactly what was written:

* ``None``, ``bool``, ``int``, ``float`` (``inf``, ``nan`` and ``-0.0`` included), ``str``;
* ``list``, ``tuple`` (stays a tuple), ``dict`` (keys of any of these types keep their
  type: ``str``, ``int``, ``float``, ``bool``, ``None``, tuples of them, ...);
* numpy arrays of a bool, integer, float or complex dtype, any shape (bit-exact, dtype and
  byte order kept) and numpy scalars of those dtypes;
* :class:`pathlib.Path`;
* instances of dataclasses defined in ``outlearn.`` modules (frozen or not): their module,
  qualified name and fields are stored; on reading, the module is imported and the class
  rebuilt only if it is a dataclass of an ``outlearn.`` module, else
  :class:`StageResultError` (its fields are set directly: no ``__init__`` runs).

Anything else is a :class:`TypeError` when the result is written, naming the stage, where
in the result the value sits and its type. Only the exact types above are accepted
(subclasses such as named tuples, ``OrderedDict`` or enums are refused rather than
silently turned into their base type).

Relocatable: a ``Path``, or a ``str`` holding an absolute path, that lies inside the run
directory is stored relative to it and resolved against the run directory it is read
from, so a run directory moved or copied elsewhere reads back paths into itself.
:class:`RunPaths` decides what lies inside (the inputs hash of
:mod:`outlearn.studies.base` uses the same rule).
"""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import io
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

from outlearn.atomic import atomic_write_bytes, atomic_write_text
from outlearn.errors import OutlearnError

__all__ = ["RESULT_JSON", "RESULT_NPZ", "RunPaths", "StageResultError", "decode", "encode",
           "is_finished", "read_result", "write_result"]

FORMAT = "outlearn-stage-result"
VERSION = 1
RESULT_JSON = "result.json"  # written last: its presence marks a finished stage
RESULT_NPZ = "result.npz"
ARRAY_KINDS = "biufc"  # bool, signed and unsigned integers, floats, complex
_PKG = "outlearn."


class StageResultError(OutlearnError):
    """A stage's result file cannot be read back (corrupt, tampered with, or naming a class
    that is not an outlearn dataclass)."""


class RunPaths:
    """Which paths lie inside a run directory, and how they are written relative to it.

    A path (``Path`` or ``str``) is inside when it is absolute and under the run
    directory (compared as absolute normalised paths, then with symbolic links resolved),
    or when it is relative and starts with the run directory as given (a relative run
    directory such as ``runs/cutoff-1a2b``; never for ``.``). Relative paths that do not
    start with the run directory are left alone: a relative string is not taken for a path.
    """

    def __init__(self, run_dir: str | Path):
        self.run_dir = Path(run_dir)
        self._abs = os.path.normpath(os.path.abspath(self.run_dir))
        self._real: str | None = None
        rel = os.path.normpath(self.run_dir)
        self._rel = None if self.run_dir.is_absolute() or rel in (".", "") else rel

    @staticmethod
    def _under(p: str, root: str) -> str | None:
        if p == root:
            return "."
        prefix = root if root.endswith(os.sep) else root + os.sep
        return Path(p[len(prefix):]).as_posix() if p.startswith(prefix) else None

    def relative(self, p: str | os.PathLike[str]) -> str | None:
        """``p`` relative to the run directory (POSIX form, ``.`` for the directory itself),
        or None when ``p`` is not inside it."""
        s = os.fspath(p)
        if not s or "\0" in s:
            return None
        if os.path.isabs(s):
            norm = os.path.normpath(s)
            got = self._under(norm, self._abs)
            if got is None:
                if self._real is None:
                    self._real = os.path.realpath(self._abs)
                try:
                    got = self._under(os.path.realpath(norm), self._real)
                except (OSError, ValueError):
                    got = None
            return got
        if self._rel is None:
            return None
        return self._under(os.path.normpath(s), self._rel)

    def resolve(self, rel: str) -> Path:
        """The path ``rel`` (from :meth:`relative`) inside this run directory."""
        return self.run_dir if rel == "." else self.run_dir / rel


# ------------------------------------------------------------------------------ encoding
def _type_name(x: Any) -> str:
    t = type(x)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _lookup(module: str, qualname: str) -> Any:
    """The object ``qualname`` of the (imported) module ``module``; None if absent."""
    import sys

    obj: Any = sys.modules.get(module)
    for part in qualname.split("."):
        if obj is None or not part.isidentifier() or part.startswith("__"):
            return None
        obj = getattr(obj, part, None)
    return obj


def _is_outlearn_module(module: Any) -> bool:
    return isinstance(module, str) and module.startswith(_PKG)


class _Encoder:
    def __init__(self, paths: RunPaths, stage: str):
        self.paths, self.stage = paths, stage
        self.arrays: list[np.ndarray] = []
        self._active: set[int] = set()  # containers being encoded (a cycle is refused)

    def fail(self, x: Any, where: str, why: str = "") -> TypeError:
        return TypeError(
            f"stage {self.stage}: cannot store {where} of type {_type_name(x)}{why}. A "
            "stage's result must be data: None, bool, int, float, str, list, tuple, dict, "
            "numpy arrays and scalars (bool/int/float/complex), pathlib.Path, or dataclasses "
            "defined in outlearn modules; convert it (e.g. a namedtuple to a tuple, a jax "
            "array with np.asarray) in the stage function")

    def __call__(self, x: Any, where: str = "result") -> Any:
        t = type(x)
        if x is None or t is bool or t is int:
            return x
        if t is str:
            rel = self.paths.relative(x)
            return x if rel is None else {"$": "str", "in_run": rel}
        if t is float:
            return x if math.isfinite(x) else {"$": "float", "value": repr(x)}
        if isinstance(x, Path):
            rel = self.paths.relative(x)
            return {"$": "path", "path": x.as_posix() if rel is None else rel,
                    "in_run": rel is not None}
        if t is np.ndarray:
            if x.dtype.kind not in ARRAY_KINDS:
                raise self.fail(x, where, f" with dtype {x.dtype} (only bool, integer, float "
                                "and complex arrays are stored)")
            self.arrays.append(x)
            return {"$": "array", "key": f"a{len(self.arrays) - 1}", "dtype": x.dtype.str,
                    "shape": list(x.shape)}
        if isinstance(x, np.generic) and t.__module__ == "numpy":
            if x.dtype.kind not in ARRAY_KINDS:
                raise self.fail(x, where)
            return {"$": "scalar", "dtype": x.dtype.str, "hex": x.tobytes().hex()}
        if t in (list, tuple, dict) or dataclasses.is_dataclass(x) and not isinstance(x, type):
            if id(x) in self._active:
                raise self.fail(x, where, " (it contains itself)")
            self._active.add(id(x))
            try:
                return self._container(x, where)
            finally:
                self._active.discard(id(x))
        raise self.fail(x, where)

    def _container(self, x: Any, where: str) -> Any:
        t = type(x)
        if t is list:
            return [self(v, f"{where}[{i}]") for i, v in enumerate(x)]
        if t is tuple:
            return {"$": "tuple", "items": [self(v, f"{where}[{i}]") for i, v in enumerate(x)]}
        if t is dict:
            plain = all(type(k) is str and not k.startswith("$")
                        and self.paths.relative(k) is None for k in x)
            if plain:
                return {k: self(v, f"{where}[{k!r}]") for k, v in x.items()}
            return {"$": "dict", "items": [
                [self(k, f"a key of {where}"), self(v, f"{where}[{k!r}]")] for k, v in x.items()]}
        # a dataclass instance
        module, qualname = t.__module__, t.__qualname__
        if not _is_outlearn_module(module):
            raise self.fail(x, where, " (only dataclasses defined in outlearn modules are "
                            "stored)")
        if _lookup(module, qualname) is not t:
            raise self.fail(x, where, f" (the class cannot be found again as {module}."
                            f"{qualname}: define it at a module's top level)")
        fields = {f.name: self(getattr(x, f.name), f"{where}.{f.name}")
                  for f in dataclasses.fields(x)}
        return {"$": "dataclass", "module": module, "qualname": qualname, "fields": fields}


def encode(value: Any, run_dir: str | Path, stage: str = "?") -> tuple[Any, list[np.ndarray]]:
    """``value`` as a JSON-able object and the arrays it refers to (by index ``a<i>``)."""
    enc = _Encoder(RunPaths(run_dir), stage)
    return enc(value), enc.arrays


# ------------------------------------------------------------------------------ decoding
class _Decoder:
    def __init__(self, paths: RunPaths, arrays: dict[str, np.ndarray], source: Path):
        self.paths, self.arrays, self.source = paths, arrays, source

    def fail(self, why: str) -> StageResultError:
        return StageResultError(
            f"{self.source}: {why}. This stage result was not written by this version of "
            f"outlearn or was changed since; delete its directory {self.source.parent} to "
            "run the stage again")

    def __call__(self, x: Any) -> Any:
        if x is None or type(x) in (bool, int, float, str):
            return x
        if type(x) is list:
            return [self(v) for v in x]
        if type(x) is not dict:
            raise self.fail(f"unexpected JSON value of type {type(x).__name__}")
        if "$" not in x:
            return {k: self(v) for k, v in x.items()}
        try:
            return self._tagged(x)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise self.fail(f"malformed {x.get('$')!r} entry ({type(err).__name__}: {err})"
                            ) from None

    def _tagged(self, x: dict[str, Any]) -> Any:
        tag = x["$"]
        if tag == "tuple":
            return tuple(self(v) for v in x["items"])
        if tag == "dict":
            return {self(k): self(v) for k, v in x["items"]}
        if tag == "float":
            if x["value"] not in ("inf", "-inf", "nan"):
                raise ValueError(f"not a non-finite float: {x['value']!r}")
            return float(x["value"])
        if tag == "str":
            return str(self.paths.resolve(x["in_run"]))
        if tag == "path":
            return self.paths.resolve(x["path"]) if x["in_run"] else Path(x["path"])
        if tag == "array":
            a = self.arrays.get(x["key"])
            if a is None:
                raise self.fail(f"array {x['key']!r} is missing from {RESULT_NPZ}")
            if a.dtype.str != x["dtype"] or list(a.shape) != x["shape"]:
                raise self.fail(f"array {x['key']!r} is {a.dtype.str} {list(a.shape)}, the "
                                f"JSON says {x['dtype']} {x['shape']}")
            return a
        if tag == "scalar":
            dt = np.dtype(x["dtype"])
            if dt.kind not in ARRAY_KINDS:
                raise ValueError(f"dtype {x['dtype']!r} is not bool/int/float/complex")
            return np.frombuffer(bytes.fromhex(x["hex"]), dtype=dt)[0]
        if tag == "dataclass":
            return self._dataclass(x)
        raise self.fail(f"unknown entry type {tag!r}")

    def _dataclass(self, x: dict[str, Any]) -> Any:
        module, qualname = x["module"], x["qualname"]
        name = f"{module}.{qualname}"
        if not _is_outlearn_module(module) or not isinstance(qualname, str):
            raise self.fail(f"refusing to construct {name}: only dataclasses defined in "
                            "outlearn modules are read back")
        try:
            importlib.import_module(module)
        except ImportError as err:
            raise self.fail(f"class {name}: cannot import {module} ({err})") from None
        cls = _lookup(module, qualname)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)
                and _is_outlearn_module(cls.__module__)):
            raise self.fail(f"refusing to construct {name}: it is not a dataclass defined "
                            "in an outlearn module")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        values = {k: self(v) for k, v in x["fields"].items()}
        if set(values) != set(fields):
            raise self.fail(f"{name} has fields {sorted(fields)}, the file has "
                            f"{sorted(values)}")
        # the state is restored field by field: no __init__ or __post_init__ runs (frozen
        # classes included), so reading a result runs no code of the class
        obj = object.__new__(cls)
        for k, v in values.items():
            object.__setattr__(obj, k, v)
        return obj


def decode(obj: Any, run_dir: str | Path, arrays: dict[str, np.ndarray] | None = None,
           source: Path = Path(RESULT_JSON)) -> Any:
    """The value that :func:`encode` turned into ``obj`` (and ``arrays``, by key)."""
    return _Decoder(RunPaths(run_dir), arrays or {}, Path(source))(obj)


# ------------------------------------------------------------------------------ files
def is_finished(d: Path) -> bool:
    """True when the stage directory ``d`` holds a written result."""
    return (Path(d) / RESULT_JSON).is_file()


def write_result(d: Path, value: Any, run_dir: str | Path, stage: str | None = None,
                 meta: dict[str, Any] | None = None) -> Path:
    """Write ``value`` as ``d/result.json`` (+ ``d/result.npz`` when it holds arrays), each
    atomically, the JSON last. ``meta`` (JSON-able) is recorded next to it, for people.
    A value that is not data raises TypeError before anything is written."""
    d = Path(d)
    stage = stage or d.name
    body, arrays = encode(value, run_dir, stage)
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION, "stage": stage,
                           **({"meta": meta} if meta else {}), "arrays": None}
    if arrays:
        buf = io.BytesIO()
        named: dict[str, Any] = {f"a{i}": a for i, a in enumerate(arrays)}
        np.savez(buf, **named)
        data = buf.getvalue()
        atomic_write_bytes(d / RESULT_NPZ, data)
        doc["arrays"] = {"file": RESULT_NPZ, "sha256": hashlib.sha256(data).hexdigest()}
    doc["result"] = body
    text = json.dumps(doc, indent=1, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(d / RESULT_JSON, text + "\n")


def read_result(d: Path, run_dir: str | Path) -> Any:
    """The value written by :func:`write_result` in stage directory ``d``; paths inside the
    run directory resolve against ``run_dir``. Never unpickles anything."""
    src = Path(d) / RESULT_JSON
    dec = _Decoder(RunPaths(run_dir), {}, src)
    try:
        doc = json.loads(src.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise dec.fail(f"not valid JSON ({err})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise dec.fail("not an outlearn stage result")
    if doc.get("version") != VERSION:
        raise dec.fail(f"stage result format version {doc.get('version')!r}, this outlearn "
                       f"reads version {VERSION}")
    if doc.get("arrays"):
        if not isinstance(doc["arrays"], dict):
            raise dec.fail("its 'arrays' entry is not an object")
        npz = Path(d) / RESULT_NPZ
        try:
            data = npz.read_bytes()
        except OSError as err:
            raise dec.fail(f"its arrays cannot be read from {npz} ({err})") from None
        if hashlib.sha256(data).hexdigest() != doc["arrays"].get("sha256"):
            raise dec.fail(f"{npz} is not the file written with it (its checksum differs)")
        try:
            with np.load(io.BytesIO(data), allow_pickle=False) as z:
                dec.arrays = {k: z[k] for k in z.files}
        except ValueError as err:  # object arrays need pickle: refused
            raise dec.fail(f"{npz} cannot be read without pickle ({err})") from None
    if "result" not in doc:
        raise dec.fail("it holds no result")
    return dec(doc["result"])
