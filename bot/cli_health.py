"""`daraja health`: a quick verdict for container health checks (exit 0 healthy, 1 not).

Checks, each bounded in time so a hung database cannot hang the HEALTHCHECK:
- settings: the environment and `.env` load and validate;
- database: reachable and migrated to the head revision (a SQLite file must already exist:
  the check never creates one);
- models: the models directory exists and is readable (how many packages it holds is shown);
- inbox: how many stored updates could never be processed (`failed`, by stage: unreadable,
  unroutable, unparseable, handler) and how many wait. Failed updates do not make the check
  fail (a restart would not mend them); they are for an operator to look at
  (`SELECT update_id, error FROM inbox WHERE state = 'failed'`);
- bot: when DARAJA_METRICS_PORT is set, the running bot's `/healthz` answers 200.
Weak settings (no audit HMAC key in polling or webhook mode) are printed as `WARN` lines (and
`"warnings"` in JSON) without making the verdict unhealthy.

`--json` prints one object `{"ok": bool, "checks": [{"name", "ok", "detail", "counts"}]}` for
scripts (`counts` only on the inbox check: e.g. `{"failed": 3, "waiting": 0, ...}`).
python-telegram-bot is not imported: the whole check runs in well under a second when healthy.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.settings import Settings

DB_TIMEOUT_S = 5.0
HTTP_TIMEOUT_S = 3.0


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
        description="Check settings, database (reachable, migrated), models directory and, "
        "when DARAJA_METRICS_PORT is set, the running bot's /healthz. Exit 0 when all pass.",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    from bot.cli import _configured_secrets
    from bot.logging_setup import ContentRedactor

    # A driver's error text may quote a URL with its password: mask what is printed.
    mask = ContentRedactor(_configured_secrets(), log_content=True)
    checks = [replace(c, detail=mask(c.detail)) for c in run_checks()]
    warnings = run_warnings()
    ok = all(c.ok for c in checks)
    if args.json:
        body = {"ok": ok, "checks": [c.to_json() for c in checks], "warnings": warnings}
        print(json.dumps(body))
    else:
        for c in checks:
            print(f"{'ok  ' if c.ok else 'FAIL'} {c.name}: {c.detail}")
        # A weak setting does not make the container unhealthy, but is said on every check.
        for text in warnings:
            print(f"WARN {text}")
    if not ok and not args.json:
        print("daraja health: unhealthy", file=sys.stderr)
    return 0 if ok else 1


def run_warnings() -> list[str]:
    """Weak settings (no audit HMAC key, content logging on); none if settings do not load."""
    from bot.errors import ConfigError
    from bot.settings import load_settings
    from bot.startup_warnings import setting_warnings

    try:
        return setting_warnings(load_settings())
    except ConfigError:
        return []


def run_checks() -> list[Check]:
    """Every check in order; later checks are skipped when settings do not load."""
    from bot.errors import ConfigError
    from bot.settings import load_settings

    try:
        settings = load_settings()
    except ConfigError as exc:
        return [Check("settings", False, str(exc))]
    checks = [Check("settings", True, f"{settings.mode} mode")]
    checks.append(asyncio.run(check_database(settings)))
    database_ok = checks[-1].ok
    checks.append(check_models(settings.models_dir))
    if database_ok:
        checks.append(asyncio.run(check_inbox(settings)))
    if settings.metrics_port is not None:
        checks.append(check_bot(settings))
    return checks


async def check_database(settings: Settings) -> Check:
    """Reachable and at the head revision, within DB_TIMEOUT_S."""
    from sqlalchemy.engine import make_url

    from storage.db import Database, SchemaTooNew, check_known, current_revision, head_revision

    url = make_url(settings.database_url)
    sqlite_file = url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:")
    if sqlite_file and not os.path.exists(str(url.database)):  # noqa: ASYNC240 - a stat, once
        return Check("database", False, f"{url.database} does not exist; run `daraja db upgrade`")
    where = url.render_as_string(hide_password=True)
    db = Database(settings.database_url)
    try:
        current = await asyncio.wait_for(current_revision(db.engine), DB_TIMEOUT_S)
    except TimeoutError:
        return Check("database", False, f"{where}: no answer within {DB_TIMEOUT_S:.0f}s")
    except Exception as exc:  # noqa: BLE001 - any driver error means "unreachable"
        return Check("database", False, f"{where}: unreachable ({type(exc).__name__})")
    finally:
        await db.dispose()
    head = head_revision()
    try:
        check_known(current)
    except SchemaTooNew as exc:  # a newer Daraja's database: upgrading is not the answer
        return Check("database", False, str(exc))
    if current != head:
        return Check(
            "database",
            False,
            f"at revision {current or '(empty)'}, code expects {head}; run `daraja db upgrade`",
        )
    return Check("database", True, f"reachable, at head revision {head}")


async def check_inbox(settings: Settings) -> Check:
    """Stored updates that failed (by stage) and updates still waiting, within DB_TIMEOUT_S."""
    from sqlalchemy import func, select

    from storage.db import Database
    from storage.models import InboxUpdate

    db = Database(settings.database_url)

    async def count() -> list[tuple[str, str | None, int]]:
        async with db.reader() as s:
            result = await s.execute(
                select(InboxUpdate.state, InboxUpdate.error, func.count())
                .where(InboxUpdate.state.in_(("new", "failed")))
                .group_by(InboxUpdate.state, InboxUpdate.error)
            )
            return [(str(a), b, int(c)) for a, b, c in result.all()]

    try:
        rows = await asyncio.wait_for(count(), DB_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - a timeout or any driver error is reported
        return Check("inbox", False, f"cannot be read ({type(exc).__name__})")
    finally:
        await db.dispose()
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
        return Check("bot", False, f"{url} unreachable ({reason}); is `daraja run` up?")
