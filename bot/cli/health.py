"""`daraja health`: a quick verdict for container health checks (exit 0 healthy, 1 not).

Checks, all within BUDGET_S together (the image's HEALTHCHECK allows 10 s, Python's start
included), so a hung database or a loaded machine gives a verdict, never a hang or a traceback:
- settings: the environment and `.env` load and validate;
- bot: when DARAJA_METRICS_PORT is set, the running bot's `/healthz` answers 200. The bot reads
  the database every few seconds itself, so when it answers ok the database is not opened again;
- database (when no running bot vouched for it): reachable and migrated to the head revision,
  read with the plain drivers (sqlite3 read-only, asyncpg) in a thread the verdict does not wait
  for past the budget (a SQLite file must already exist: the check never creates one);
- models: the models directory exists and is readable (how many packages it holds is shown);
- inbox: how many stored updates could never be processed (`failed`, by stage: unreadable,
  unroutable, unparseable, handler) and how many wait. Failed updates do not make the check
  fail (a restart would not mend them); they are for an operator to look at
  (`SELECT update_id, error FROM inbox WHERE state = 'failed'`).
Weak settings (no audit HMAC key in polling or webhook mode) are printed as `WARN` lines (and
`"warnings"` in JSON) without making the verdict unhealthy.

`--json` prints one object `{"ok": bool, "checks": [{"name", "ok", "detail", "counts"}],
"warnings": [...]}` for scripts (`counts` only on the inbox check: e.g. `{"failed": 3, ...}`).
Neither python-telegram-bot, SQLAlchemy's engine nor Alembic is imported by the checks.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

if TYPE_CHECKING:
    from bot.settings import Settings

T = TypeVar("T")

# All checks together (settings excluded): leaves the HEALTHCHECK's 10 s room for Python's start.
BUDGET_S = 6.0
DB_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 2.5
_VERSIONS_DIR = Path(__file__).resolve().parents[2] / "storage" / "migrations" / "versions"
_REVISION_RE = re.compile(r"^(down_revision|revision)\s*(?::[^=]*)?=\s*(.+)$", re.MULTILINE)


@dataclass(frozen=True)
class Check:
    """One check's verdict and what it saw (never a secret)."""

    name: str
    ok: bool
    detail: str
    counts: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The check for `--json` (`counts` only where there are figures)."""
        data = asdict(self)
        if not self.counts:
            del data["counts"]
        return data


def register(sub: Any) -> None:
    """Add `daraja health`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "health",
        help="health check for containers",
        description="Check settings, the running bot's /healthz (when DARAJA_METRICS_PORT is "
        "set), else the database (reachable, migrated), and the models directory. Exit 0 "
        f"when all pass; answers within {BUDGET_S:.0f} s.",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bot.cli import _configured_secrets
    from bot.observability.logging_setup import ContentRedactor

    # A driver's error text may quote a URL with its password: mask what is printed.
    mask = ContentRedactor(_configured_secrets(), log_content=True)
    checks = [replace(c, detail=mask(c.detail)) for c in run_checks()]
    warnings = run_warnings()
    ok = all(c.ok for c in checks)
    if args.json:
        body = {"ok": ok, "checks": [c.to_json() for c in checks], "warnings": warnings}
        print(json.dumps(body), flush=True)
    else:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}", flush=True)
        # A weak setting does not make the container unhealthy, but is said on every check.
        for text in warnings:
            print(f"WARN {text}", flush=True)
    if not ok and not args.json:
        print("daraja health: unhealthy", file=sys.stderr)
    return 0 if ok else 1


def run_warnings() -> list[str]:
    """Weak settings (no audit HMAC key, content logging on); none if settings do not load."""
    from bot.errors import ConfigError
    from bot.observability.startup_warnings import setting_warnings
    from bot.settings import load_settings

    try:
        return setting_warnings(load_settings())
    except ConfigError:
        return []


def run_checks(budget: float = BUDGET_S) -> list[Check]:
    """Every check in order; later checks are skipped when settings do not load."""
    from bot.errors import ConfigError
    from bot.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        return [Check("settings", False, str(exc))]
    deadline = time.monotonic() + budget
    checks = [Check("settings", True, f"{settings.mode} mode")]
    bot: Check | None = None
    if settings.metrics_port is not None:
        bot = bounded("bot", lambda: check_bot(settings), deadline)
    if bot is not None and bot.ok:
        checks.append(Check("database", True, "read by the running bot (its /healthz is ok)"))
    else:
        checks.append(bounded("database", lambda: check_database(settings), deadline))
    database_ok = checks[-1].ok
    checks.append(check_models(settings.models_dir))
    if database_ok:
        inbox = bounded("inbox", lambda: check_inbox(settings), deadline)
        # The inbox counts inform an operator; they never make a vouched-for bot unhealthy.
        checks.append(inbox if inbox.ok else Check("inbox", True, f"not counted: {inbox.detail}"))
    if bot is not None:
        checks.append(bot)
    return checks


def bounded(name: str, check: Callable[[], Check], deadline: float) -> Check:
    """Run one check in a daemon thread; past the deadline it is abandoned and fails."""
    result: list[Check] = []

    def work() -> None:
        try:
            result.append(check())
        except Exception as exc:  # noqa: BLE001 - a verdict, never a traceback
            result.append(Check(name, False, f"check failed ({type(exc).__name__})"))

    thread = threading.Thread(target=work, name=f"health-{name}", daemon=True)
    thread.start()
    thread.join(max(0.0, deadline - time.monotonic()))
    if result:
        return result[0]
    return Check(name, False, f"no answer within the health check's {BUDGET_S:.0f} s")


def head_revision() -> str:
    """The newest migration shipped with this code, read from the revision files' headers."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in _VERSIONS_DIR.glob("*.py"):
        for key, value in _REVISION_RE.findall(path.read_text(encoding="utf-8")):
            names = set(re.findall(r"[\"']([^\"']+)[\"']", value))
            (revisions if key == "revision" else parents).update(names)
    heads = revisions - parents
    if len(heads) == 1:
        return heads.pop()
    # Headers this reader does not understand: ask Alembic (slower, but right).
    from storage.db import head_revision as alembic_head

    return alembic_head()


def known_revisions() -> set[str]:
    """Every migration shipped with this code."""
    found: set[str] = set()
    for path in _VERSIONS_DIR.glob("*.py"):
        for key, value in _REVISION_RE.findall(path.read_text(encoding="utf-8")):
            if key == "revision":
                found.update(re.findall(r"[\"']([^\"']+)[\"']", value))
    return found


def _shown(url: str) -> str:
    """The URL without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


def check_database(settings: Settings) -> Check:
    """Reachable and at the head revision, within DB_TIMEOUT_S (plain drivers, no engine)."""
    url = settings.database_url
    where = _shown(url)
    try:
        if url.startswith("sqlite"):
            path = _sqlite_file(url)
            if path in ("", ":memory:"):
                return Check("database", False, "an in-memory database has nothing to check")
            if not os.path.exists(path):
                return Check("database", False, f"{path} does not exist; run `daraja db upgrade`")
            current = _sqlite_revision(path)
        else:
            current = _postgres_revision(url)
    except TimeoutError:
        return Check("database", False, f"{where}: no answer within {DB_TIMEOUT_S:.0f}s")
    except Exception as exc:  # noqa: BLE001 - any driver error means "unreachable"
        return Check("database", False, f"{where}: unreachable ({type(exc).__name__})")
    head = head_revision()
    if current is not None and current != head and current not in known_revisions():
        return Check(
            "database",
            False,
            f"this database was written by a newer Daraja (revision {current}; this code knows "
            f"up to {head}); upgrade the code or restore a backup",
        )
    if current != head:
        return Check(
            "database",
            False,
            f"at revision {current or '(empty)'}, code expects {head}; run `daraja db upgrade`",
        )
    return Check("database", True, f"reachable, at head revision {head}")


def _sqlite_file(url: str) -> str:
    """The file of a sqlite URL ("" when it names none)."""
    return url.split(":///", 1)[1].split("?", 1)[0] if ":///" in url else ""


def _sqlite_rows(path: str, sql: str) -> list[tuple[Any, ...]]:
    """Rows of one query on the database file opened read-only (never created)."""
    import sqlite3
    from urllib.parse import quote

    con = sqlite3.connect(f"file:{quote(path)}?mode=ro", uri=True, timeout=DB_TIMEOUT_S)
    try:
        return [tuple(row) for row in con.execute(sql).fetchall()]
    finally:
        con.close()


def _on_postgres(url: str, read: Callable[[Any], Awaitable[T]]) -> T:
    """Run `read(connection)` on one plain asyncpg connection, within DB_TIMEOUT_S."""
    import asyncio

    import asyncpg

    dsn = re.sub(r"^postgresql\+\w+://", "postgresql://", url)

    async def run() -> T:
        con = await asyncpg.connect(dsn, timeout=DB_TIMEOUT_S)
        try:
            return await read(con)
        finally:
            await con.close()

    return asyncio.run(asyncio.wait_for(run(), DB_TIMEOUT_S))


def _sqlite_revision(path: str) -> str | None:
    import sqlite3

    try:
        rows = _sqlite_rows(path, "SELECT version_num FROM alembic_version")
    except sqlite3.OperationalError as exc:
        if "no such table" in str(exc):
            return None
        raise
    return str(rows[0][0]) if rows else None


def _postgres_revision(url: str) -> str | None:
    async def read(con: Any) -> str | None:
        exists = await con.fetchval("SELECT to_regclass('alembic_version') IS NOT NULL")
        if not exists:
            return None
        value = await con.fetchval("SELECT version_num FROM alembic_version")
        return None if value is None else str(value)

    return _on_postgres(url, read)


_INBOX_COUNTS = (
    "SELECT state, error, count(*) FROM inbox WHERE state IN ('new', 'failed') "
    "GROUP BY state, error"
)


def check_inbox(settings: Settings) -> Check:
    """Stored updates that failed (by stage) and updates still waiting (plain drivers)."""
    url = settings.database_url
    if url.startswith("sqlite"):
        found = _sqlite_rows(_sqlite_file(url), _INBOX_COUNTS)
    else:

        async def read(con: Any) -> list[tuple[Any, ...]]:
            return [tuple(row) for row in await con.fetch(_INBOX_COUNTS)]

        found = _on_postgres(url, read)
    rows = [(str(state), error, int(n)) for state, error, n in found]
    waiting = sum(n for state, _, n in rows if state == "new")
    stages: dict[str, int] = {}
    for state, error, n in rows:
        if state == "failed":
            stage = (error or "unknown").split(":", 1)[0]
            stages[stage] = stages.get(stage, 0) + n
    failed = sum(stages.values())
    detail = f"{failed} failed update(s) kept"
    if stages:
        detail += " (" + ", ".join(f"{k} {v}" for k, v in sorted(stages.items())) + ")"
    counts = {"failed": failed, "waiting": waiting}
    counts.update({f"failed_{k}": v for k, v in stages.items()})
    return Check("inbox", True, f"{detail}, {waiting} waiting", counts)


def check_models(path: Path) -> Check:
    """The models directory exists and can be listed."""
    if not path.is_dir():
        return Check("models", False, f"{path} is not a directory; install models into it")
    if not os.access(path, os.R_OK | os.X_OK):
        return Check("models", False, f"{path} is not readable by this user")
    try:
        entries = [p for p in path.iterdir() if not p.name.startswith(".")]
    except OSError as exc:
        return Check("models", False, f"{path} cannot be listed ({exc.strerror})")
    packages = sum(1 for p in entries if (p / "metadata.json").is_file())
    return Check("models", True, f"{path} readable, {packages} package(s)")


def check_bot(settings: Settings) -> Check:
    """The running bot's /healthz answers 200 (metrics server on DARAJA_METRICS_PORT)."""
    import urllib.error
    import urllib.request

    host = settings.metrics_listen
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - listening everywhere: ask loopback
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    url = f"http://{host}:{settings.metrics_port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=HTTP_TIMEOUT_S) as response:
            body = json.loads(response.read() or b"{}")
            return Check("bot", True, f"/healthz: {body.get('status', 'ok')}")
    except urllib.error.HTTPError as exc:
        try:
            status = json.loads(exc.read() or b"{}").get("status", "")
        except ValueError:
            status = ""
        return Check("bot", False, f"/healthz answered {exc.code} {status}".rstrip())
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            # Something listens but does not answer: a bot that is stuck, not one that is down.
            return Check(
                "bot",
                False,
                f"{url} did not answer within {HTTP_TIMEOUT_S:g} s: the bot is up but stuck "
                "or overloaded; see its log, restart it if it stays so",
            )
        return Check("bot", False, f"{url} unreachable ({reason}); is `daraja run` up?")
