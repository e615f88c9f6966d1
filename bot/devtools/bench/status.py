"""`daraja bench status`: bot time to build the status board of a 60-unit operation.

Seeds a throwaway SQLite database (or `--database-url`) with an operation of N units, their
groups and a few reports each, then times (a) the pure rendering of the board in one language
and (b) the whole `/status` path: one read transaction plus rendering, as a commander's
request costs the bot (Telegram's network time excluded). Prints median and p95 against the
issue's 50 ms target; never fails on time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.domain import LANGUAGES

TARGET_MS = 50.0


def register_status(benches: Any) -> None:
    """Add `status` to the `daraja bench` subcommands."""
    help_text = "status board for N units: render and full /status time (target < 50 ms)"
    parser: argparse.ArgumentParser = benches.add_parser(
        "status", help=help_text, description=help_text
    )
    if not any(a.dest == "json" for a in parser._actions):
        parser.add_argument(
            "--json", action="store_true", help="print one JSON object on the last line"
        )
    parser.add_argument("--units", type=int, default=60, help="units in the operation (60)")
    parser.add_argument("--reports", type=int, default=5, help="reports per unit (5)")
    parser.add_argument("--runs", type=int, default=50, help="timed runs per path (50)")
    parser.add_argument("--lang", default="fr", help="reader's language (fr)")
    parser.add_argument(
        "--database-url", default=None, help="database to seed (default: a temporary SQLite)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    """Run the benchmark and print its figures."""
    if args.units < 1 or args.runs < 1 or args.reports < 0:
        print("daraja: --units and --runs must be >= 1, --reports >= 0", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}"
        result = asyncio.run(_bench(url, args.units, args.reports, args.runs, args.lang))
    print(
        f"{result['units']} units, {result['reports']} reports, {result['pages']} pages "
        f"in {result['lang']}, longest page {result['longest_page']} of 4096 characters"
    )
    print(
        f"(a) render only:        median {result['render_median_ms']:.2f} ms, "
        f"p95 {result['render_p95_ms']:.2f} ms"
    )
    print(
        f"(b) /status (read+render), wall: median {result['status_median_ms']:.2f} ms, "
        f"p95 {result['status_p95_ms']:.2f} ms "
        f"({result['status_p95_ms'] / TARGET_MS:.2f}x the {TARGET_MS:.0f} ms target)"
    )
    print(
        f"    of which bot CPU:   median {result['status_cpu_median_ms']:.2f} ms, "
        f"p95 {result['status_cpu_p95_ms']:.2f} ms "
        f"({result['status_cpu_p95_ms'] / TARGET_MS:.2f}x the target)"
    )
    if args.json:
        print(json.dumps(result))
    return 0


async def _bench(url: str, units: int, reports: int, runs: int, lang: str) -> dict[str, Any]:
    from bot.i18n import load_i18n
    from bot.rendering.copies import visible_len
    from bot.services.board import render_board
    from bot.services.status import StatusService
    from bot.services.translator import NoModelsTranslator
    from storage.audit import AuditChain
    from storage.db import Database

    print(f"bench: seeding {units} units", file=sys.stderr, flush=True)
    db = Database(url)
    try:
        await db.upgrade()
        viewer = await _seed(db, units, reports)
        i18n = load_i18n()
        service = StatusService(db, AuditChain(), NoModelsTranslator(), i18n)
        board = await service.board(viewer)
        render: list[float] = []
        for _ in range(runs):
            start = time.perf_counter()
            pages = render_board(board, lang, i18n)
            render.append((time.perf_counter() - start) * 1000)
        full: list[float] = []
        cpu: list[float] = []
        for _ in range(runs):
            start, start_cpu = time.perf_counter(), time.process_time()
            pages = await service.board_pages(viewer, lang)
            full.append((time.perf_counter() - start) * 1000)
            cpu.append((time.process_time() - start_cpu) * 1000)
        return {
            "units": units,
            "reports": units * reports,
            "pages": len(pages),
            "lang": lang,
            "longest_page": max(visible_len(p) for p in pages),
            "render_median_ms": statistics.median(render),
            "render_p95_ms": _p95(render),
            "status_median_ms": statistics.median(full),
            "status_p95_ms": _p95(full),
            # CPU time of the bot process (all its threads): what the bot itself spends, even
            # when other processes share the cores and stretch the wall-clock figures.
            "status_cpu_median_ms": statistics.median(cpu),
            "status_cpu_p95_ms": _p95(cpu),
            "target_ms": TARGET_MS,
        }
    finally:
        await db.dispose()


def _p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]


async def _seed(db: Any, units: int, reports: int) -> int:
    """An operation with `units` units, one group each, `reports` reports each; returns the
    Telegram id of a commander enrolled in it."""
    from bot.i18n import SITREP_STATUSES
    from storage.models import Chat, Operation, Person, Unit, utcnow
    from storage.status_repo import Report

    now = utcnow()
    langs = LANGUAGES
    async with db.transaction() as s:
        op = Operation(name=f"Bench-{int(time.time())}", default_language="fr", glossary={})
        s.add(op)
        await s.flush()
        for i in range(units):
            lang = langs[i % 4]
            unit = Unit(
                operation_id=op.id,
                code=f"U-{i:03d}",
                name=f"Unit {i}",
                side="PNH" if lang in ("ht", "fr") else "MSS",
                language=lang,
            )
            s.add(unit)
            await s.flush()
            chat = Chat(
                telegram_chat_id=-(10**12) - i - op.id * 10_000,
                operation_id=op.id,
                unit_id=unit.id,
                title=unit.code,
                languages=lang,
            )
            s.add(chat)
            await s.flush()
            for r in range(reports):
                needs = "dlo ak minisyon pou 12 ajan, yon veyikil blende" if r % 2 else ""
                s.add(
                    Report(
                        operation_id=op.id,
                        unit_id=unit.id,
                        chat_id=chat.id,
                        author_name="Jean",
                        status=SITREP_STATUSES[(i + r) % len(SITREP_STATUSES)],
                        latitude=18.45 + i / 1000,
                        longitude=-72.28,
                        place="Kenscoff",
                        strength=8 + r,
                        needs=needs,
                        remarks="",
                        text_language=lang,
                        translations={
                            t: {"needs": f"[{t}] {needs}", "remarks": ""}
                            for t in langs
                            if t != lang
                        },
                        created_at=now - timedelta(minutes=17 * (reports - r) + i),
                    )
                )
        viewer = 9_000_000 + op.id
        s.add(
            Person(
                telegram_user_id=viewer,
                display_name="Bench commander",
                role="commander",
                language="fr",
                operation_id=op.id,
            )
        )
    return viewer
