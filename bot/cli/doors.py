"""One line for every way the outside world refuses a command (the CLI's doors).

A database newer than the code, a database path that cannot be created, a read-only file, a
PostgreSQL server that is down or refuses the login, a Bot API that cannot be reached: each
becomes one line naming what to do, and exit status 2, never a traceback. The line never
carries the database URL (it may hold a password) or the token.
"""

from __future__ import annotations

import errno


def explain(exc: BaseException) -> str | None:
    """The one line for a refusal from outside, or None for a bug (which keeps its traceback)."""
    from storage.db import DatabaseUnavailable, SchemaTooNew
    from storage.errors import DatabaseError

    if isinstance(exc, SchemaTooNew | DatabaseUnavailable):
        return str(exc)
    module = type(exc).__module__
    if module.startswith("alembic") and "Can't locate revision" in str(exc):
        return "this database was written by a newer Daraja; upgrade the code or restore a backup"
    if isinstance(exc, DatabaseError):
        return _database(exc)
    if module.startswith("telegram"):
        return _telegram(exc)
    if module.startswith("asyncpg"):
        return f"PostgreSQL refused: {_first_line(exc)}"
    if isinstance(exc, OSError):
        return _os_error(exc)
    if isinstance(exc, OverflowError) and "port must be 0-65535" in str(exc):
        # A --port or DARAJA_*_PORT out of range, found by bind() itself.
        return "a port must be 0-65535: choose another --port or DARAJA_*_PORT"
    return None


def _database(exc: BaseException) -> str | None:
    from storage.errors import os_cause, refusal_line

    cause = os_cause(exc)
    if cause is not None:
        return _os_error(cause)
    return refusal_line(exc)


def _telegram(exc: BaseException) -> str | None:
    name = type(exc).__name__
    if name == "InvalidToken":
        return "the Bot API refused the token: check DARAJA_TELEGRAM_TOKEN"
    if name in ("NetworkError", "TimedOut"):
        return (
            f"cannot reach the Bot API ({_first_line(exc)}): check DARAJA_TELEGRAM_API_URL "
            "and the network"
        )
    return None


def _os_error(exc: OSError) -> str:
    if exc.errno in (errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH) or isinstance(
        exc, ConnectionError | TimeoutError
    ):
        return (
            f"cannot connect to the database server ({exc.strerror or _first_line(exc)}): "
            "is it up? check DARAJA_DATABASE_URL"
        )
    if exc.filename:
        return f"{exc.filename}: {exc.strerror or _first_line(exc)}"
    if "Name or service not known" in str(exc) or "nodename nor servname" in str(exc):
        return "cannot resolve the database server's host name: check DARAJA_DATABASE_URL"
    return _first_line(exc) or type(exc).__name__


def _first_line(exc: BaseException) -> str:
    from storage.errors import first_line

    return first_line(exc)
