"""Every process a test starts dies with it, however the test ends.

- `run(cmd, timeout=...)` is `subprocess.run` for tests: the command gets its own process group
  (so whatever it starts in turn, e.g. the demo's bot, goes with it), and on a timeout or any
  exception the whole group gets SIGTERM, then SIGKILL after a grace period.
- `BotProcess` and `SandboxProcess` are the scenario's processes with the same rule: a bot that
  does not start in time is stopped before the error is raised, and `stop()` ends in SIGKILL
  when SIGTERM is not enough (a sandbox finishing open long polls can take a minute).
- A watchdog process, in its own session beside pytest, is told every process started here;
  when pytest's end of its pipe closes (normal exit, crash, pytest-timeout's hard exit, a CI
  cancel) it terminates, then kills, whatever is still running. So no orphan survives the run.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from bot.devtools import scenario

GRACE_S = 5.0

_WATCHDOG = """
import os, signal, sys, time
targets = set()
for line in sys.stdin:
    op, _, pid = line.strip().partition(" ")
    if op == "+":
        targets.add(int(pid))
    elif op == "-":
        targets.discard(int(pid))
def send(sig):
    for target in list(targets):
        try:
            os.killpg(-target, sig) if target < 0 else os.kill(target, sig)
        except (ProcessLookupError, PermissionError):
            targets.discard(target)
send(signal.SIGTERM)
for _ in range(int(float(sys.argv[1]) * 10)):
    if not targets:
        break
    time.sleep(0.1)
    send(0)
send(signal.SIGKILL)
"""


class _Watchdog:
    """The session's watchdog (started on first use)."""

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def _send(self, line: str) -> None:
        with self._lock:
            if self._proc is None:
                self._proc = subprocess.Popen(
                    [sys.executable, "-c", _WATCHDOG, str(GRACE_S)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                    start_new_session=True,  # a Ctrl-C to pytest's group must not stop it
                )
            assert self._proc.stdin is not None
            with contextlib.suppress(OSError):
                self._proc.stdin.write(line.encode() + b"\n")
                self._proc.stdin.flush()

    def track(self, pid: int, *, group: bool) -> None:
        """Kill this process (or its whole group) if pytest dies first."""
        self._send(f"+ {-pid if group else pid}")

    def release(self, pid: int, *, group: bool) -> None:
        """The process has ended: forget it (its pid may be reused)."""
        self._send(f"- {-pid if group else pid}")

    def close(self) -> None:
        """Normal end of the session: nothing is left to kill."""
        with self._lock:
            proc, self._proc = self._proc, None
        if proc is not None and proc.stdin is not None:
            proc.stdin.close()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=GRACE_S + 5)


watchdog = _Watchdog()

# Every process started here and not yet ended: pid -> (process, whether it leads a group,
# the BotProcess/SandboxProcess object that started it, if any).
live: dict[int, tuple[subprocess.Popen[Any], bool, int | None]] = {}


def _started(proc: subprocess.Popen[Any], *, group: bool, owner: object = None) -> None:
    live[proc.pid] = (proc, group, id(owner) if owner is not None else None)
    watchdog.track(proc.pid, group=group)


@dataclass(frozen=True)
class Snapshot:
    """The processes running, and the objects that started them, at one moment."""

    pids: frozenset[int]
    owners: frozenset[int]


def snapshot() -> Snapshot:
    """What runs now (taken when a test starts)."""
    return Snapshot(frozenset(live), frozenset(o for _, _, o in live.values() if o is not None))


def end_started_since(before: Snapshot) -> list[int]:
    """End every process started since `before` that still runs, unless an object that was
    already running then started it (a module's bot restarted by a test stays the module's).
    tests/conftest.py calls this when each test ends, failed or not. Returns their pids."""
    ended = []
    for pid, (proc, group, owner) in list(live.items()):
        if pid in before.pids or (owner is not None and owner in before.owners):
            continue
        if proc.poll() is None:
            ended.append(pid)
        end(proc, group=group)
    return ended


def end(
    proc: subprocess.Popen[Any], *, grace: float = GRACE_S, group: bool = False, kill: bool = False
) -> None:
    """SIGTERM, up to `grace` seconds to finish, then SIGKILL (at once with `kill`); always
    reaped."""

    def send(sig: int) -> bool:
        try:
            if group:
                os.killpg(proc.pid, sig)
            elif proc.poll() is None:
                proc.send_signal(sig)
        except (ProcessLookupError, PermissionError):
            return False
        return True

    deadline = time.monotonic() + (0 if kill else grace)
    if proc.poll() is None or group:
        send(signal.SIGKILL if kill else signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        # In a group, the leader may go first while what it started lingers: wait for all.
        while group and time.monotonic() < deadline and send(0):
            time.sleep(0.05)
        send(signal.SIGKILL)
        proc.wait(timeout=30)
    if live.pop(proc.pid, None) is not None:
        watchdog.release(proc.pid, group=group)


def run(
    command: Sequence[str],
    *,
    timeout: float,
    input: str | None = None,
    grace: float = GRACE_S,
    **kwargs: Any,
) -> subprocess.CompletedProcess[str]:
    """`subprocess.run(..., capture_output=True, text=True)` in its own process group, ended
    (group and all) when it times out or the test fails around it."""
    proc = subprocess.Popen(
        list(command),
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        **kwargs,
    )
    _started(proc, group=True)
    try:
        out, err = proc.communicate(input, timeout=timeout)
    except BaseException:
        end(proc, group=True, grace=grace)
        raise
    end(
        proc, group=True, grace=grace
    )  # reaps, and ends anything the command left behind in its group
    return subprocess.CompletedProcess(list(command), proc.returncode, out, err)


class _Tracked:
    """Registers `proc` with the watchdog the moment the scenario's start() creates it."""

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "proc" and isinstance(value, subprocess.Popen):
            _started(value, group=False, owner=self)
        object.__setattr__(self, name, value)


class BotProcess(_Tracked, scenario.BotProcess):
    """`daraja run` against the sandbox, never outliving the test that started it."""

    grace: float = 15.0  # a graceful stop drains the inbox; crash tests use kill()

    def start(self, timeout: float = 180.0) -> BotProcess:
        """Start and wait until it runs; a bot that does not get there is ended first. (A
        start took over a minute on a loaded 2-core machine: the wait is generous, the end
        of a bot that never gets there certain.)"""
        try:
            super().start(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def kill(self) -> None:
        """SIGKILL: no chance to clean up (crash tests)."""
        if self.proc is not None:
            end(self.proc, kill=True)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period."""
        if self.proc is not None:
            end(self.proc, grace=self.grace)


class SandboxProcess(_Tracked, scenario.SandboxProcess):
    """`daraja sandbox`, never outliving the test that started it."""

    def start(self) -> SandboxProcess:
        """Start and read the ready line; a sandbox that does not get there is ended first."""
        try:
            super().start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after the grace period (open long polls can hold it)."""
        proc = self.proc
        if proc is not None:
            end(proc)
            if proc.stdout is not None:
                proc.stdout.close()
        self.proc = None
