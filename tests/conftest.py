"""Shared fixtures: databases on every backend, settings isolated from the developer's env."""

from __future__ import annotations

import os
import shutil
import sqlite3
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from storage.db import Database
from tests.support.postgres import postgres_server

# Re-exported so every test can depend on the session's PostgreSQL server by name.
__all__ = ["postgres_server"]

# CTranslate2's int8 matrix products differ by CPU: oneDNN's VNNI kernels (AVX-512 VNNI, e.g.
# recent AMD EPYC) do not saturate where the AVX2 kernels do, and MKL is used on Intel only. On
# the tiny fixture models, beam search can then flip a near-tie (a final period), so the exact
# outputs in tests/fixtures/models/expected.json hold only on one kernel. Pin oneDNN at AVX2,
# which every x86-64 test machine has; subprocesses (bot, demo, sandbox) inherit it. Set before
# any test loads ctranslate2; a developer can still override both from the shell.
os.environ.setdefault("ONEDNN_MAX_CPU_ISA", "AVX2")
os.environ.setdefault("CT2_USE_MKL", "0")

# With PYTHONDONTWRITEBYTECODE set (common in containers, to keep __pycache__ out of the source
# tree) every Python process the suite starts compiles every module it imports from source:
# each xdist worker, each bot, sandbox and CLI subprocess, and pytest's assertion rewriting of
# every test module in every worker. Here the bytecode goes to one cache outside the source tree
# instead (PYTHONPYCACHEPREFIX, inside .pytest_cache), written once, read by every later process.
# Set before the xdist workers and any subprocess start, so they inherit it. A developer's own
# PYTHONPYCACHEPREFIX is kept.
if os.environ.get("PYTHONDONTWRITEBYTECODE") and not os.environ.get("PYTHONPYCACHEPREFIX"):
    _pycache = Path(__file__).resolve().parents[1] / ".pytest_cache" / "pycache"
    os.environ.pop("PYTHONDONTWRITEBYTECODE")
    os.environ["PYTHONPYCACHEPREFIX"] = str(_pycache)
    sys.pycache_prefix = str(_pycache)
    sys.dont_write_bytecode = False

# Tests that share a process started once for a scope run on one pytest-xdist worker, so that
# process starts once: the e2e session's bot (and sandbox), and modules that start their own
# bot for all their tests (those name their group with a `pytestmark`).
SESSION_BOT_GROUP = "e2e-session-bot"


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than there are cores (at least three). Much of a worker's
    time goes to waiting on the processes its tests started, so cores + 1 keeps the cores
    busy. PYTEST_XDIST_AUTO_NUM_WORKERS overrides it (xdist reads it only in its own default
    of this hook, which this one replaces)."""
    wanted = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip()
    if wanted.isdigit() and int(wanted) > 0:
        return int(wanted)
    return max(3, (os.cpu_count() or 1) + 1)


def pytest_itemcollected(item: pytest.Item) -> None:
    """A test on the e2e session's bot joins that bot's xdist group."""
    e2e = Path(__file__).parent / "e2e"
    grouped = item.get_closest_marker("xdist_group") is not None
    on_session_bot = "bot" in getattr(item, "fixturenames", ())
    if on_session_bot and item.path.is_relative_to(e2e) and not grouped:
        item.add_marker(pytest.mark.xdist_group(SESSION_BOT_GROUP))


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In an xdist worker with `--dist loadgroup`, name each grouped test `nodeid@group`, which
    is how the controller learns the groups. xdist 3.8 sets the private `_nodeid`, which this
    pytest no longer reads (its node ids are `_id`); without this, groups would be ignored."""
    if not getattr(config.option, "loadgroup", False):
        return
    from _pytest.nodeid import NodeId

    for item in items:
        names = sorted(
            {
                str(m.args[0] if m.args else m.kwargs.get("name", "default"))
                for m in item.iter_markers("xdist_group")
            }
        )
        if names and "@" not in item.nodeid.rpartition("]")[2]:
            item._id = NodeId.parse(f"{item.nodeid}@{'_'.join(names)}")  # type: ignore[attr-defined]


BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test reads the developer's DARAJA_* variables or .env file."""
    for name in list(os.environ):
        if name.startswith("DARAJA_") and not name.startswith("DARAJA_TEST_"):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session", autouse=True)
def _process_watchdog() -> Iterator[None]:
    """Processes tests start are ended by a watchdog if pytest dies (tests/support/processes)."""
    from tests.support.processes import watchdog

    try:
        yield
    finally:
        watchdog.close()


@pytest.fixture(autouse=True)
def _processes_end_with_the_test() -> Iterator[None]:
    """A process the test (or its function fixtures) started and left running is ended when
    the test ends, passed or failed: SIGTERM, then SIGKILL after a grace period. Set up before
    the test's other function fixtures, after the session's and module's (theirs are kept)."""
    from tests.support.processes import end_started_since, snapshot

    before = snapshot()
    yield
    end_started_since(before)


@pytest.fixture(autouse=True)
def _restored_logging() -> Iterator[None]:
    """`bot.cli.main` run in-process sets up logging for a process: put pytest's back after."""
    import logging

    root = logging.getLogger()
    handlers, level, hook = list(root.handlers), root.level, sys.excepthook
    try:
        yield
    finally:
        for handler in list(root.handlers):
            if handler not in handlers:
                root.removeHandler(handler)
        for handler in handlers:
            if handler not in root.handlers:
                root.addHandler(handler)
        root.setLevel(level)
        sys.excepthook = hook
        logging.captureWarnings(False)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite database migrated once for the session; tests that want a migrated database
    get a copy of the file (a few milliseconds) instead of running every migration."""
    import asyncio

    path = tmp_path_factory.mktemp("template") / "migrated.db"

    async def migrate() -> None:
        database = Database(f"sqlite+aiosqlite:///{path}")
        try:
            await database.upgrade()
        finally:
            await database.dispose()

    asyncio.run(migrate())
    # One self-contained file: everything in the main database, no -wal beside it to copy.
    con = sqlite3.connect(path)
    try:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        con.close()
    return path


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL on each backend (PostgreSQL: see tests/support/postgres.py): empty,
    or already migrated (a copy of the session's template) when the test uses `db`."""
    migrated = "db" in request.fixturenames
    if request.param == "sqlite":
        path = tmp_path / "test.db"
        if migrated:
            shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite+aiosqlite:///{path}"
    from tests.support.postgres import fresh_database_url

    return fresh_database_url(request, migrated=migrated)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each backend (copied from the session's migrated template)."""
    database = Database(database_url)
    try:
        yield database
    finally:
        await database.dispose()
