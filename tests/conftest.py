"""Shared fixtures: databases on every backend, settings isolated from the developer's env."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
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


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database URL on each backend (PostgreSQL: see tests/support/postgres.py)."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path}/test.db"
    from tests.support.postgres import fresh_database_url

    return fresh_database_url(request)


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    """A migrated database on each backend."""
    database = Database(database_url)
    await database.upgrade()
    try:
        yield database
    finally:
        await database.dispose()
