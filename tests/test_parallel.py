"""The local-process backend's workers never outlive the run that started them."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="the kernel's parent-death signal is Linux's")

#: a driver with two workers, each writing its pid to a file and then working for minutes
DRIVER = textwrap.dedent("""
    import os, sys, time
    from outlearn.studies.parallel import Processes, stop_on_sigterm

    def work():
        open(os.path.join(sys.argv[1], f"worker-{os.getpid()}"), "w").close()
        time.sleep(300)

    if __name__ == "__main__":  # spawned workers import this file too
        stop_on_sigterm()
        pool = Processes(2)
        try:
            pool.run([work, work])
        except KeyboardInterrupt:
            pool.close(now=True)
            print("stopped", flush=True)
""")

def _alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie waiting for its reaper counts as ended)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state not in ("Z", "X")


def _start(tmp_path: Path) -> tuple[subprocess.Popen, list[int]]:
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    proc = subprocess.Popen([sys.executable, str(script), str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 240  # two spawned interpreters import outlearn
    while time.time() < deadline:
        pids = [int(p.name.split("-")[1]) for p in tmp_path.glob("worker-*")]
        if len(pids) == 2:
            return proc, pids
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)
    proc.kill()
    raise AssertionError("the workers did not start")


def _ended(pids: list[int], within: float = 30) -> bool:
    deadline = time.time() + within
    while time.time() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.2)
    return False


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_workers_end_when_the_driver_is_stopped_or_killed(tmp_path, sig):
    """`kill PID` (SIGTERM) stops the driver as Ctrl-C does and it stops its workers at
    once; SIGKILL gives the driver no say, and the kernel ends the workers
    (PR_SET_PDEATHSIG). Before this, both left two workers computing for nobody."""
    proc, pids = _start(tmp_path)
    try:
        assert all(_alive(p) for p in pids)
        os.kill(proc.pid, sig)
        out, _ = proc.communicate(timeout=60)
        assert _ended(pids), "a worker outlived its driver"
        if sig == signal.SIGTERM:
            assert proc.returncode == 0 and out.strip() == "stopped"
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
        proc.kill()


def test_outlearn_run_puts_back_the_sigterm_handler_it_found(tmp_path):
    """The CLI's run stops on SIGTERM while it runs, and leaves the caller's own handler
    (a test runner's, a notebook's) in place when it returns, here after a refused config."""
    from typer.testing import CliRunner

    from outlearn.cli import app

    def mine(signum, frame):  # pragma: no cover (never delivered)
        pass

    before = signal.signal(signal.SIGTERM, mine)
    try:
        bad = tmp_path / "bad.toml"
        bad.write_text('study = "cutoff"\nno_such_key = 1\n')
        result = CliRunner().invoke(app, ["run", str(bad), "--out", str(tmp_path / "runs")])
        assert result.exit_code == 2
        assert signal.getsignal(signal.SIGTERM) is mine
    finally:
        signal.signal(signal.SIGTERM, before)
