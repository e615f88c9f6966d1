"""`daraja bench console`: the web console's log page over a large operation.

Seeds a throwaway SQLite database (or `--database-url`) with one operation of N messages
(100,000 by default), each with a translation and a delivery, a few percent flagged or failed,
signs an auditor in through a one-time link, then times the log page over HTTP as a browser
asks for it: the newest page, pages further back by the keyset cursor, and each filter. Every
request is a full page view (session check, audit event, query, rendering). Prints median and
p95 against the issue's 200 ms target; never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

TARGET_MS = 200.0
UNITS = (
    ("PNH-1", "PNH", "ht"),
    ("PNH-2", "PNH", "fr"),
    ("KE-1", "MSS", "en"),
    ("KE-2", "MSS", "sw"),
)
FILTERS = (
    "language=ht",
    "side=MSS",
    "unit=KE-2",
    "verdict=flagged",
    "state=failed",
    "since=2d",
)


def register_console(benches: Any) -> None:
    """Add `console` to the `daraja bench` subcommands."""
    help_text = "web console log page over N messages, p95 with paging (target <= 200 ms)"
    parser: argparse.ArgumentParser = benches.add_parser(
        "console", help=help_text, description=help_text
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object at the end")
    parser.add_argument("--messages", type=int, default=100_000, help="messages (100000)")
    parser.add_argument("--pages", type=int, default=30, help="pages followed back (30)")
    parser.add_argument("--runs", type=int, default=10, help="timed runs of each filter (10)")
    parser.add_argument(
        "--database-url", default=None, help="database to seed (default: a temporary SQLite)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    if args.messages < 1 or args.pages < 1 or args.runs < 1:
        print("daraja: --messages, --pages and --runs must be >= 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        result = asyncio.run(_bench(url, args.messages, args.pages, args.runs))
    print(f"{result['messages']:,} messages, pages of 50, newest first")
    for name, figures in result["kinds"].items():
        print(
            f"  {name:<22} median {figures['median_ms']:7.1f} ms, p95 {figures['p95_ms']:7.1f} ms"
            f"  ({figures['n']} requests)"
        )
    print(
        f"all log pages: median {result['median_ms']:.1f} ms, p95 {result['p95_ms']:.1f} ms "
        f"({result['p95_ms'] / TARGET_MS:.2f}x the {TARGET_MS:.0f} ms target)"
    )
    if args.json:
        print(json.dumps(result))
    return 0


async def _bench(url: str, messages: int, pages: int, runs: int) -> dict[str, Any]:
    from aiohttp import ClientSession, web

    from bot.console.queries import ConsoleQueries
    from bot.console.sessions import ConsoleAuth
    from bot.console.web import ConsoleDeps, build_app
    from bot.i18n import load_i18n
    from bot.services.audit_access import AuditAccess
    from storage.audit import AuditChain
    from storage.db import Database

    db = Database(url)
    runner: web.AppRunner | None = None
    try:
        await db.upgrade()
        print(f"bench: seeding {messages:,} messages", file=sys.stderr, flush=True)
        auditor = await _seed(db, messages)
        chain = AuditChain()
        auth = ConsoleAuth(db, chain)
        deps = ConsoleDeps(
            auth=auth,
            queries=ConsoleQueries(db, AuditAccess(db, chain)),
            i18n=load_i18n(),
            db=db,
            chain=chain,
        )
        runner = web.AppRunner(build_app(deps), access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        base = f"http://127.0.0.1:{port}"
        link = await auth.issue_link(auditor, telegram_language="en")
        kinds: dict[str, list[float]] = {}
        async with ClientSession() as http:
            login = await http.post(
                f"{base}/console/login", data={"t": link.token}, allow_redirects=False
            )
            cookie = login.cookies["daraja_console"].value
            headers = {"Cookie": f"daraja_console={cookie}"}

            async def timed(kind: str, query: str) -> str:
                start = time.perf_counter()
                async with http.get(f"{base}/console/log?{query}", headers=headers) as r:
                    body = await r.text()
                    assert r.status == 200, r.status
                kinds.setdefault(kind, []).append((time.perf_counter() - start) * 1000)
                return body

            await timed("warm-up", "")
            del kinds["warm-up"]
            for _ in range(runs):
                await timed("newest page", "")
            # Paging back by the keyset cursor, as "Older messages" does.
            query = ""
            for _ in range(pages):
                body = await timed("older pages (cursor)", query)
                found = re.search(r'id="older" href="/console/log\?([^"]+)"', body)
                if found is None:
                    break
                query = found.group(1).replace("&amp;", "&")
            for filt in FILTERS:
                for _ in range(runs):
                    await timed(f"filter {filt}", filt)
            for _ in range(runs):
                await timed("search text", "text=convoy")
        every = [v for values in kinds.values() for v in values]
        return {
            "messages": messages,
            "kinds": {
                k: {"n": len(v), "median_ms": statistics.median(v), "p95_ms": _p95(v)}
                for k, v in kinds.items()
            },
            "median_ms": statistics.median(every),
            "p95_ms": _p95(every),
            "target_ms": TARGET_MS,
        }
    finally:
        if runner is not None:
            await runner.cleanup()
        await db.dispose()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def _seed(db: Any, messages: int) -> int:
    """One operation, four units with a group each, `messages` messages over the last week,
    each translated once and delivered once; returns the auditor's Telegram id."""
    from storage.messages import load_history
    from storage.models import (
        Chat,
        Operation,
        Person,
        Unit,
        utcnow,
    )

    now = utcnow()
    auditor = 880001
    async with db.transaction() as s:
        op = Operation(name="Bench", glossary={})
        s.add(op)
        await s.flush()
        chats = []
        for i, (code, side, lang) in enumerate(UNITS):
            unit = Unit(operation_id=op.id, code=code, name=code, side=side, language=lang)
            s.add(unit)
            await s.flush()
            chat = Chat(
                telegram_chat_id=-100900 - i,
                operation_id=op.id,
                unit_id=unit.id,
                title=code,
                languages=lang,
            )
            s.add(chat)
            await s.flush()
            chats.append((chat.id, lang))
        s.add(Person(telegram_user_id=auditor, role="auditor", operation_id=op.id))
        op_id = op.id
    words = ("checkpoint", "patrol", "convoy", "roadblock", "supplies", "casualty")
    chunk = 5000
    span = timedelta(days=7).total_seconds()
    for start in range(0, messages, chunk):
        ids = range(start + 1, min(messages, start + chunk) + 1)
        m_rows, t_rows, d_rows = [], [], []
        for i in ids:
            chat_id, lang = chats[i % len(chats)]
            target_chat, target_lang = chats[(i + 1) % len(chats)]
            at = now - timedelta(seconds=span * (messages - i) / messages)
            text = f"Unit at grid {i % 997} {words[i % len(words)]} {i}"
            m_rows.append(
                {
                    "id": i,
                    "operation_id": op_id,
                    "chat_id": chat_id,
                    "telegram_message_id": i,
                    "author_name": f"Officer {i % 40}",
                    "text": text,
                    "source_language": lang,
                    "created_at": at,
                }
            )
            flagged = i % 20 == 0
            t_rows.append(
                {
                    "message_id": i,
                    "revision": 0,
                    "target_language": target_lang,
                    "text": text.upper(),
                    "route": "direct",
                    "models": ["bench"],
                    "score": 0.9,
                    "flags": ["low_confidence"] if flagged else [],
                    "created_at": at,
                }
            )
            d_rows.append(
                {
                    "message_id": i,
                    "revision": 0,
                    "target_chat_id": target_chat,
                    "action": "send",
                    "target_language": target_lang,
                    "state": "failed" if i % 100 == 0 else "sent",
                    "attempts": 1,
                    "created_at": at,
                    "sent_at": at,
                }
            )
        async with db.transaction() as s:
            await load_history(s, m_rows, t_rows, d_rows)
    return auditor
