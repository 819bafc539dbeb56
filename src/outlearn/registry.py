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
        self._loaded_entry_points = False

    def register(self, name: str, config: Any = None,
                 defaults: dict[str, Any] | None = None) -> Callable[[T], T]:
        """Register a factory as ``name``. ``config``: the model its keyword settings are
        validated by (documentation only: the factory still parses them itself);
        ``defaults``: the settings this name changes from the model's defaults (a preset)."""
        def deco(factory: T) -> T:
            if name in self._items and self._items[name] is not factory:
                raise ValueError(f"{self.kind} {name!r} is registered twice")
            self._items[name] = factory
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

    def get(self, name: str) -> Any:
        self._load_entry_points()
        if name not in self._items:
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


def user_modules() -> list[tuple[str, str | None]]:
    """The modules outside outlearn whose registrations are in the registries now, as (name,
    file; None for a module without one), sorted: what a worker process must import before
    it runs a stage that names their components (:mod:`outlearn.studies.parallel`).
    ``__main__`` is left out (a spawned worker runs the main script's top level itself)."""
    found: dict[str, str | None] = {}
    for reg in (ENVS, TEACHERS, STUDENTS, STUDIES, FAMILIES):
        for obj in reg._items.values():
            # a study's record is outlearn's Study: its run function names its module
            name = getattr(getattr(obj, "run", obj), "__module__", None)
            if (not name or name == "__main__" or name == "outlearn"
                    or name.startswith("outlearn.")):
                continue
            found[name] = getattr(sys.modules.get(name), "__file__", None)
    return sorted(found.items())


def import_user_modules(modules: list[tuple[str, str | None]]) -> None:
    """Import ``modules`` (from :func:`user_modules` in the driver) in this worker, so that
    their registrations run here too: by name where this process can import it, else from
    its file (the worker sees the driver's filesystem). A module found neither way is a
    :class:`ConfigError` naming the fix."""
    import importlib
    import importlib.util

    for name, file in modules:
        if name in sys.modules:
            continue
        try:
            importlib.import_module(name)
            continue
        except ModuleNotFoundError:
            if file is None:
                raise ConfigError(
                    f"module {name!r} registers components this run uses, but a worker cannot "
                    "import it: install it (an entry point in the group outlearn.<kind>s), put "
                    "it on PYTHONPATH, or run with --workers 1") from None
        spec = importlib.util.spec_from_file_location(name, file)
        if spec is None or spec.loader is None:
            raise ConfigError(f"module {name!r}: cannot load {file} in a worker: install it "
                              "or put it on PYTHONPATH")
        mod = importlib.util.module_from_spec(spec)
        sys.modules[name] = mod
        spec.loader.exec_module(mod)
