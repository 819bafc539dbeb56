"""Where a study's independent stages run: one after another here, or as Ray tasks.

``outlearn run CONFIG --workers N`` runs up to N independent stages at once (a study's
students, one per cut and seed, and their evaluations) as tasks of a local Ray instance;
``--address HOST:PORT`` (or ``auto``) sends them to a running Ray cluster instead. Every
worker must import this version of outlearn and see the run directory at the same path (a
shared filesystem): a stage writes its files and its result there, exactly as it does when
it runs in the driver, so caching and resuming are the same whichever ran it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from outlearn.errors import ConfigError

T = TypeVar("T")


class Executor(Protocol):
    """Runs independent zero-argument calls; ``workers`` says how many at once."""

    workers: int

    def map(self, calls: Sequence[Callable[[], T]], on_done: Callable[[int], None] | None = None
            ) -> list[T]: ...


class Serial:
    """One call after another, in this process (the default)."""

    workers = 1

    def map(self, calls: Sequence[Callable[[], T]], on_done: Callable[[int], None] | None = None
            ) -> list[T]:
        out = []
        for i, call in enumerate(calls):
            out.append(call())
            if on_done is not None:
                on_done(i)
        return out


def _call(fn: Callable[[], Any]) -> Any:
    return fn()


class RayPool:
    """Calls as Ray tasks of one CPU each: a local Ray with ``workers`` CPUs, or the cluster
    at ``address`` (``workers`` then caps nothing: the cluster's CPUs decide)."""

    def __init__(self, workers: int = 2, address: str | None = None, threads: int = 1):
        if workers < 1:
            raise ConfigError(f"--workers {workers}: give at least 1")
        self.workers, self.address, self.threads = workers, address, threads
        self._remote: Any = None

    def _start(self) -> Any:
        import os

        import ray

        if not ray.is_initialized():
            env = {"OUTLEARN_TORCH_THREADS": str(self.threads),
                   "OUTLEARN_DEVICE": os.environ.get("OUTLEARN_DEVICE", "cpu"),
                   "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}
            if self.address is None:  # a local Ray's workers inherit this environment
                os.environ.update(env)
            try:  # (a runtime_env costs a local Ray's workers a minute to start)
                ray.init(address=self.address, num_cpus=None if self.address else self.workers,
                         include_dashboard=False, log_to_driver=False, configure_logging=False,
                         runtime_env={"env_vars": env} if self.address else None)
            except ConnectionError as err:
                raise ConfigError(
                    f"--address {self.address}: no Ray cluster answers there ({err}); start one "
                    "with `ray start --head` or leave out --address for a local run"
                ) from None
        if self._remote is None:
            self._remote = ray.remote(num_cpus=1)(_call)
        return ray

    def map(self, calls: Sequence[Callable[[], T]], on_done: Callable[[int], None] | None = None
            ) -> list[T]:
        ray = self._start()
        refs = [self._remote.remote(c) for c in calls]
        index = {r.hex(): i for i, r in enumerate(refs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done[0])  # raise a failed stage's error now (its siblings' files remain)
            if on_done is not None:
                on_done(index[done[0].hex()])
        return ray.get(refs)

    def close(self) -> None:
        import ray

        if ray.is_initialized():
            ray.shutdown()


def make_executor(workers: int = 1, address: str | None = None) -> Serial | RayPool:
    """Serial for one local worker; Ray for more, or for a cluster ``address``."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1")
    if workers == 1 and address is None:
        return Serial()
    return RayPool(workers, address)
