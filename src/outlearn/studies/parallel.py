"""Where a study's independent stages run: one after another here, or as Ray tasks.

``outlearn run CONFIG --workers N`` runs up to N independent stages at once (a study's
students, one per cut and seed, and their evaluations) as tasks of a local Ray instance;
``--address HOST:PORT`` (or ``auto``) sends them to a running Ray cluster instead.
``--backend processes`` runs them in N local processes without Ray (for a machine that has
no Ray, such as a GPU box whose students share its one GPU). Every worker must import this
version of outlearn and see the run directory at the same path (a shared filesystem): a
stage writes its files and its result there, exactly as it does when it runs in the driver,
so caching and resuming are the same whichever ran it. A researcher's own environments,
teachers and students registered in the driver reach the workers too: before a stage, a
worker imports the modules that registered the ones it lacks
(:func:`outlearn.registry.user_modules`), by name or from the file the driver loaded.
"""

from __future__ import annotations

import os
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from outlearn.errors import ConfigError
from outlearn.registry import import_user_modules, user_modules

BACKENDS = ("ray", "processes")


def worker_env(threads: int = 1) -> dict[str, str]:
    """The environment a worker runs a stage in: ``threads`` torch threads each, students on
    this process's ``$OUTLEARN_DEVICE`` (CPU by default), JAX on the CPU unless told else
    (a JAX that took the GPU would hold most of its memory from the students)."""
    # OMP_NUM_THREADS as Ray sets it for its workers: a stage that does not set torch's
    # threads itself (an evaluation) would otherwise start one per core in every worker,
    # and OpenMP threads spinning at barriers on shared cores cost a step 10-20x
    return {"OUTLEARN_TORCH_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
            "OUTLEARN_DEVICE": os.environ.get("OUTLEARN_DEVICE", "cpu"),
            "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")}


class Executor(Protocol):
    """Runs independent zero-argument calls; ``workers`` says how many at once. Calls are
    run for their effect: a stage writes its result to the stage store, and the driver
    reads it back from there as data, so no executor sends results back."""

    workers: int

    def run(self, calls: Sequence[Callable[[], object]],
            on_done: Callable[[int], None] | None = None) -> None: ...


class Serial:
    """One call after another, in this process (the default)."""

    workers = 1

    def run(self, calls: Sequence[Callable[[], object]],
            on_done: Callable[[int], None] | None = None) -> None:
        for i, call in enumerate(calls):
            call()
            if on_done is not None:
                on_done(i)


class RayPool:
    """Calls as Ray tasks of one CPU each: a local Ray with ``workers`` CPUs, or the cluster
    at ``address`` (``workers`` then caps nothing: the cluster's CPUs decide)."""

    def __init__(self, workers: int = 2, address: str | None = None, threads: int = 1):
        if workers < 1:
            raise ConfigError(f"--workers {workers}: give at least 1")
        self.workers, self.address, self.threads = workers, address, threads
        self._remote: Any = None

    def _start(self) -> Any:
        import ray

        if not ray.is_initialized():
            env = worker_env(self.threads)
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
            self._remote = ray.remote(num_cpus=1)(_call_pickled)
        return ray

    def run(self, calls: Sequence[Callable[[], object]],
            on_done: Callable[[int], None] | None = None) -> None:
        ray = self._start()
        refs = [self._remote.remote(*p) for p in _payloads(calls)]
        index = {r.hex(): i for i, r in enumerate(refs)}
        pending = list(refs)
        while pending:
            done, pending = ray.wait(pending, num_returns=1)
            ray.get(done[0])  # raise a failed stage's error now (its siblings' files remain)
            if on_done is not None:
                on_done(index[done[0].hex()])

    def close(self, now: bool = False) -> None:
        """Shut the local Ray (or the connection to the cluster) down; its tasks end with it."""
        import ray

        if ray.is_initialized():
            ray.shutdown()


def stop_on_sigterm() -> Any:
    """Make SIGTERM (``kill PID``, a scheduler's time limit) stop this process as Ctrl-C
    does: a KeyboardInterrupt in the main thread, so the run keeps its finished stages,
    says how to resume, and stops its workers (:meth:`Processes.close`) instead of leaving
    them to compute for nobody. Returns the handler it replaced (to put back with
    ``signal.signal(signal.SIGTERM, old)``)."""
    def _interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    return signal.signal(signal.SIGTERM, _interrupt)


#: Linux's prctl option: the signal a process gets when its parent exits
_PR_SET_PDEATHSIG = 1


def _end_with_driver(driver: int) -> None:
    """Each worker's initializer: on Linux the kernel sends it SIGTERM when the driver ends,
    however it ends (SIGKILL included), so no worker outlives its run; a driver that ended
    before this line ran is noticed by the parent pid."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM))
    if os.getppid() != driver:
        os._exit(1)


def _payloads(calls: Sequence[Callable[[], object]]
              ) -> list[tuple[bytes, list[tuple[str, str | None, list[str]]]]]:
    """What :func:`_call_pickled` gets for each call: the call as bytes, opened only after
    the worker has imported the researcher's own modules (a closure may hold an object of
    their classes, e.g. their environment), and those modules."""
    import cloudpickle

    mods = user_modules()
    return [(cloudpickle.dumps(c), mods) for c in calls]


def _call_pickled(blob: bytes, modules: list[tuple[str, str | None, list[str]]]
                  ) -> None:
    """Run a call sent by the driver (a local process's or a Ray task's), after importing the
    modules outside outlearn that registered components in the driver (``modules``): the
    call is unpickled only then, since it may hold objects of their classes. The bytes come
    from the driver over the pool's pipe or Ray's object store, never from a file (a closure
    can only travel as code); nothing is sent back but an error."""
    import cloudpickle

    import_user_modules(modules)
    cloudpickle.loads(blob)()


class Processes:
    """Calls in up to ``workers`` local processes (spawned, so each imports outlearn afresh
    and owns its own torch and CUDA state), without Ray. The processes start at the first
    :meth:`run` and serve every later one until :meth:`close`. Calls travel by cloudpickle,
    as they do to Ray's workers (results stay in the stage store); the first call that
    fails stops the calls not yet started and raises its error (finished siblings' stages
    stay on disk)."""

    def __init__(self, workers: int = 2, threads: int = 1):
        if workers < 1:
            raise ConfigError(f"--workers {workers}: give at least 1")
        self.workers, self.threads = workers, threads
        self._pool: Any = None

    def _start(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        if self._pool is None:
            saved = {k: os.environ.get(k) for k in worker_env()}
            os.environ.update(worker_env(self.threads))  # what the workers inherit
            try:
                self._pool = ProcessPoolExecutor(
                    self.workers, mp_context=multiprocessing.get_context("spawn"),
                    initializer=_end_with_driver, initargs=(os.getpid(),))
                self._pool.submit(int).result()  # start them now, in this environment
            finally:
                for k, v in saved.items():
                    if v is None:
                        os.environ.pop(k, None)
                    else:
                        os.environ[k] = v
        return self._pool

    def run(self, calls: Sequence[Callable[[], object]],
            on_done: Callable[[int], None] | None = None) -> None:
        from concurrent.futures import FIRST_COMPLETED, wait

        if not calls:
            return
        pool = self._start()
        futures = {pool.submit(_call_pickled, *p): i for i, p in enumerate(_payloads(calls))}
        pending = set(futures)
        try:
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for f in done:
                    f.result()  # raises the call's error
                    if on_done is not None:
                        on_done(futures[f])
        except BaseException:
            for f in pending:
                f.cancel()
            raise

    def close(self, now: bool = False) -> None:
        """Stop the workers: after their running calls (``now`` False), or at once (an
        interrupted run: a stage stopped mid-way resumes from its files next time)."""
        if self._pool is not None:
            if now:
                for proc in list(getattr(self._pool, "_processes", {}).values()):
                    proc.terminate()
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def make_executor(workers: int = 1, address: str | None = None, backend: str = "ray"
                  ) -> Serial | RayPool | Processes:
    """Serial for one local worker; for more, Ray (or the Ray cluster at ``address``) or,
    with ``backend="processes"``, local processes."""
    if workers < 1:
        raise ConfigError(f"--workers {workers}: give at least 1")
    if backend not in BACKENDS:
        raise ConfigError(f"--backend {backend!r}: use one of {', '.join(BACKENDS)}")
    if backend == "processes":
        if address is not None:
            raise ConfigError("--address names a Ray cluster: leave it out with --backend "
                              "processes, or use --backend ray")
        return Serial() if workers == 1 else Processes(workers)
    if workers == 1 and address is None:
        return Serial()
    return RayPool(workers, address)
