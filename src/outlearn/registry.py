"""Registries: environments, teachers, students and studies are found by name.

A researcher adds their own from their own package, either with the decorator::

    from outlearn.registry import ENVS
    @ENVS.register("my-room")
    def make_my_room(**kwargs): ...

or with an entry point in their package metadata (group ``outlearn.envs``,
``outlearn.teachers``, ``outlearn.students``, ``outlearn.studies`` or
``outlearn.families``), and then
names it in a config without editing outlearn. Stages that run on workers (``--workers``)
find a decorator's registration there too: each worker imports the modules that
registered components in the driver (:func:`user_modules`, :func:`import_user_modules`).

An environment or a teacher registered with ``config=`` (its settings model, a
:class:`outlearn.config.Config`) and, for a preset, ``defaults=`` (the values it changes)
is documented by ``outlearn explain`` and in docs/config.md.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any, TypeVar

from outlearn.errors import ConfigError

T = TypeVar("T")


class Registry:
    """A name -> factory mapping with entry-point discovery and helpful errors."""

    def __init__(self, kind: str, plural: str | None = None):
        self.kind = kind
        self.plural = plural or f"{kind}s"  # "studies", not "studys"
        self._items: dict[str, Any] = {}  # factories (a study: its Study record)
        self._configs: dict[str, tuple[Any, dict[str, Any]]] = {}
        #: name -> (module, file) that called :meth:`register` (None: an entry point)
        self._origins: dict[str, tuple[str, str | None] | None] = {}
        self._loaded_entry_points = False

    def register(self, name: str, config: Any = None,
                 defaults: dict[str, Any] | None = None) -> Callable[[T], T]:
        """Register a factory as ``name``. ``config``: the model its keyword settings are
        validated by (documentation only: the factory still parses them itself);
        ``defaults``: the settings this name changes from the model's defaults (a preset).
        The module that calls this is recorded: a worker process imports it to have the
        same registration (:func:`user_modules`)."""
        caller = sys._getframe(1).f_globals
        origin = (str(caller.get("__name__", "?")), caller.get("__file__"))

        def deco(factory: T) -> T:
            if name in self._items and self._items[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = factory
            self._origins[name] = origin
            if config is not None:
                self._configs[name] = (config, dict(defaults or {}))
            return factory

        return deco

    def config(self, name: str) -> tuple[Any, dict[str, Any]] | None:
        """(settings model, the preset's changed defaults) of ``name``, or None when it was
        registered without one."""
        self.get(name)
        return self._configs.get(name)

    def _load_entry_points(self) -> None:
        if self._loaded_entry_points:
            return
        self._loaded_entry_points = True
        for ep in entry_points(group=f"outlearn.{self.plural}"):
            if ep.name not in self._items:
                self._items[ep.name] = ep.load()
                self._origins[ep.name] = None  # every process finds it the same way

    def get(self, name: str) -> Any:
        self._load_entry_points()
        if name not in self._items:
            why = _UNREACHABLE.get(f"{self.plural}/{name}")
            if why is not None:
                raise ConfigError(f"{self.kind} {name!r} is registered in the run's driver, "
                                  f"but this worker {why}")
            known = ", ".join(sorted(self._items)) or "(none)"
            raise ConfigError(
                f"unknown {self.kind} {name!r}; known {self.plural}: {known}. "
                f"Fix the name, or register yours with @{self.plural.upper()}.register({name!r})."
            )
        return self._items[name]

    def names(self) -> list[str]:
        self._load_entry_points()
        return sorted(self._items)

    def __contains__(self, name: str) -> bool:
        self._load_entry_points()
        return name in self._items


ENVS = Registry("env")
TEACHERS = Registry("teacher")
STUDENTS = Registry("student")
STUDIES = Registry("study", "studies")
#: parametrised learner families a history can be fitted by (:mod:`outlearn.identify`)
FAMILIES = Registry("family", "families")


#: every registry by its plural name (the first part of a "plural/name" key)
REGISTRIES: dict[str, Registry] = {r.plural: r for r in (ENVS, TEACHERS, STUDENTS, STUDIES,
                                                         FAMILIES)}
#: "plural/name" -> why this worker could not get that registration (import_user_modules)
_UNREACHABLE: dict[str, str] = {}

#: a worker's own module names for a main script: the driver's "__main__" is the
#: worker's "__mp_main__" when multiprocessing spawned it
_MAIN = ("__main__", "__mp_main__")


def user_modules() -> list[tuple[str, str | None, list[str]]]:
    """The modules outside outlearn that registered components in this process, as (name,
    file or None, ["plural/name", ...]), sorted: what a worker process must import before
    it runs a stage that names them (:mod:`outlearn.studies.parallel`). A registration is
    listed under the module that called ``register`` (a preset of a built-in registered
    from your module is yours); entry points are left out (a worker finds them itself)."""
    found: dict[tuple[str, str | None], list[str]] = {}
    for plural, reg in REGISTRIES.items():
        for name, origin in reg._origins.items():
            if origin is None:
                continue
            mod = origin[0]
            if mod == "outlearn" or mod.startswith("outlearn."):
                continue
            found.setdefault(origin, []).append(f"{plural}/{name}")
    return sorted((m, f, sorted(names)) for (m, f), names in found.items())


def import_user_modules(modules: list[tuple[str, str | None, list[str]]]) -> None:
    """In a worker: import each module of ``modules`` (from :func:`user_modules` in the
    driver) whose registrations this process lacks, by name where it can, else from its file
    (a worker sees the driver's filesystem). A registration still missing after that (a
    module neither importable nor loadable; the driver's main script, which a Ray worker
    never runs and a spawned process runs only when it has a file) is remembered with the
    reason and the fix, which :meth:`Registry.get` gives if the run asks for it. An error
    inside a module's own code is raised."""
    import importlib
    import importlib.util

    def missing(keys: list[str]) -> list[str]:  # "plural/name" keys this process lacks
        return [k for k in keys
                if k.partition("/")[2] not in REGISTRIES[k.partition("/")[0]]._items]

    for mod, file, names in modules:
        if not missing(names):
            continue
        why = None
        if mod in _MAIN:
            why = ("cannot run the driver's main script: move the registration into a module "
                   "of its own and import that (or make it an entry point)")
        elif mod not in sys.modules:
            try:
                importlib.import_module(mod)
            except ModuleNotFoundError as err:
                if err.name != mod:
                    raise  # the module is there; something it imports is not
                spec = None if file is None else importlib.util.spec_from_file_location(mod, file)
                if spec is None or spec.loader is None:
                    if file is not None:
                        why = f"cannot load module {mod!r} from {file}"
                else:
                    module = importlib.util.module_from_spec(spec)
                    sys.modules[mod] = module
                    try:
                        spec.loader.exec_module(module)
                    except BaseException:
                        sys.modules.pop(mod, None)  # not half-loaded for the next stage
                        raise
        for n in missing(names):
            _UNREACHABLE[n] = why or (
                f"cannot import module {mod!r} that registers it: install it (an entry point "
                "in the group outlearn.<kind>s), put it on PYTHONPATH, or run with --workers 1")
