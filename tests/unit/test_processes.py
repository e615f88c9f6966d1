"""Processes tests start die with them: process groups, SIGKILL after a grace period, and a
watchdog for when pytest itself dies."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support import processes

IGNORES_SIGTERM = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
    "print('ready', flush=True); time.sleep(120)"
)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")  # a zombie has ended; only its parent's reaping is left


def _gone_soon(pid: int) -> bool:
    for _ in range(100):
        if not _alive(pid):
            return True
        time.sleep(0.05)
    return False


def test_a_timed_out_command_takes_what_it_started_with_it(tmp_path: Path) -> None:
    child_pid = tmp_path / "child.pid"
    script = (
        "import subprocess, sys, time; "
        f"c = subprocess.Popen([sys.executable, '-c', {IGNORES_SIGTERM!r}]); "
        f"open({str(child_pid)!r}, 'w').write(str(c.pid)); time.sleep(120)"
    )
    with pytest.raises(subprocess.TimeoutExpired):
        processes.run([sys.executable, "-c", script], timeout=3, grace=0.5)
    pid = int(child_pid.read_text())
    assert _gone_soon(pid)


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ready"
    processes.end(proc, grace=0.5)
    assert proc.returncode == -9
    proc.stdout.close()


def test_the_watchdog_ends_what_pytest_left_when_its_pipe_closes() -> None:
    orphan = subprocess.Popen(
        [sys.executable, "-c", IGNORES_SIGTERM], stdout=subprocess.PIPE, text=True
    )
    assert orphan.stdout is not None
    orphan.stdout.readline()
    dog = subprocess.Popen(
        [sys.executable, "-c", processes._WATCHDOG, "0.5"], stdin=subprocess.PIPE
    )
    assert dog.stdin is not None
    dog.stdin.write(f"+ {orphan.pid}\n".encode())
    dog.stdin.close()  # what happens when pytest dies
    dog.wait(timeout=30)
    orphan.wait(timeout=30)
    assert orphan.returncode == -9
    orphan.stdout.close()


def test_a_process_a_test_leaves_running_is_ended_with_the_test() -> None:
    before = processes.snapshot()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    processes._started(proc, group=False)
    assert processes.end_started_since(before) == [proc.pid]
    assert proc.returncode is not None


def test_a_restart_of_a_process_begun_before_the_test_is_left_to_its_owner() -> None:
    class Owner:
        pass

    owner = Owner()
    first = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    processes._started(first, group=False, owner=owner)
    before = processes.snapshot()
    processes.end(first)
    again = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    processes._started(again, group=False, owner=owner)  # restarted during the test
    try:
        assert processes.end_started_since(before) == []
        assert again.poll() is None
    finally:
        processes.end(again)
