"""Audit benchmarks: `daraja bench export` (streaming export of N events) and `bench tamper`.

`export` builds a temporary SQLite database holding a valid, keyed chain of N events (written
in bulk with the real hashing code, migrations and guard triggers in place), exports it to CSV
and JSONL through the same code as `daraja audit export`, verifies the database and the JSONL
file, and reports rows/s for each step and the process's peak RSS: flat peak RSS across N shows
the constant-memory streaming. `tamper` runs the randomized tamper trials in memory and reports
how many were detected and located exactly.

Hook into `bot/cli/bench.py`: call `register_export(bench_sub)` and `register_tamper(bench_sub)`
with the bench parser's subparsers.
Standalone: `python -m bot.devtools.bench.export export --events N`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bot.domain import LANGUAGES

BATCH = 10_000


def register_export(sub: Any) -> None:
    """Add `export` to the bench subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "export", help="stream-export N audit events to CSV and JSONL; rows/s and peak RSS"
    )
    p.add_argument("--events", type=int, default=1_000_000, help="events to generate")
    p.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_export_cmd)


def register_tamper(sub: Any) -> None:
    """Add `tamper` to the bench subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "tamper", help="randomized tamper trials against the audit chain verifier"
    )
    p.add_argument("--trials", type=int, default=10_000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_tamper_cmd)


def _peak_rss_mb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 1024 if sys.platform != "darwin" else peak / (1024 * 1024)


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class _Step:
    name: str
    rows: int
    seconds: float
    peak_rss_mb: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "step": self.name,
            "rows": self.rows,
            "seconds": round(self.seconds, 2),
            "rows_per_s": round(self.rows / self.seconds) if self.seconds else None,
            "peak_rss_mb": round(self.peak_rss_mb, 1),
        }


def _generate(path: Path, n: int, key: bytes) -> str:
    """Write a valid chain of n events straight into the migrated file; returns the head."""
    from storage.audit import GENESIS, AuditChain, canonical_json, event_body

    chain = AuditChain(key=key)
    con = sqlite3.connect(path, isolation_level=None)
    con.execute("PRAGMA synchronous=OFF")
    prev = GENESIS
    start = datetime(2026, 1, 1, tzinfo=UTC)
    sql = "INSERT INTO audit_events VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    langs = LANGUAGES
    for first in range(1, n + 1, BATCH):
        rows = []
        for seq in range(first, min(first + BATCH, n + 1)):
            when = start + timedelta(seconds=seq * 3, microseconds=seq % 1_000_000)
            payload = canonical_json(
                {
                    "chat_id": -1001000000000 - seq % 40,
                    "language": langs[seq % 4],
                    "text": f"Patwouy {seq}: nou rive Kenscoff a 0700, tout bagay anfòm — ñ",
                }
            )
            fields = ("relay", "message.in", f"tg:{100000 + seq % 997}", "ok", 1 + seq % 3)
            body = event_body(
                seq=seq,
                ts=when,
                component=fields[0],
                event_type=fields[1],
                actor=fields[2],
                outcome=fields[3],
                operation_id=fields[4],
                payload=payload,
            )
            digest = chain.link(prev, body)
            # SQLAlchemy's SQLite DateTime text form (naive UTC).
            stored_ts = when.replace(tzinfo=None).isoformat(" ", timespec="microseconds")
            rows.append((seq, stored_ts, *fields, payload, prev, digest))
            prev = digest
        con.execute("BEGIN")
        con.executemany(sql, rows)
        con.execute("COMMIT")
        if first // BATCH % 20 == 0:
            _log(f"  generated {min(first + BATCH - 1, n):,} / {n:,}")
    con.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (n, prev))
    con.close()
    return prev


async def _run_export(work: Path, n: int) -> dict[str, Any]:
    from storage.audit import AuditChain
    from storage.audit_export import Format, write_export
    from storage.audit_read import iter_records
    from storage.audit_verify import verify_database, verify_file
    from storage.db import Database

    key = b"bench-key"
    path = work / "bench.db"
    url = f"sqlite+aiosqlite:///{path}"
    db = Database(url)
    await db.upgrade()
    await db.dispose()
    steps: list[_Step] = []

    t = time.perf_counter()
    head = _generate(path, n, key)
    steps.append(_Step("generate", n, time.perf_counter() - t, _peak_rss_mb()))

    db = Database(url)
    try:
        formats: tuple[Format, ...] = ("csv", "jsonl")
        for fmt in formats:
            out_path = work / f"export.{fmt}"
            t = time.perf_counter()

            def progress(k: int, f: str = fmt) -> None:
                _log(f"  {f}: {k:,} rows")

            with out_path.open("w", encoding="utf-8", newline="") as fh:
                count = await write_export(iter_records(db), fh, fmt, progress=progress)
            steps.append(_Step(f"export {fmt}", count, time.perf_counter() - t, _peak_rss_mb()))
        chain = AuditChain(key=key)
        t = time.perf_counter()
        result = await verify_database(db, chain)
        steps.append(
            _Step("verify database", result.count, time.perf_counter() - t, _peak_rss_mb())
        )
        ok_db = result.ok and result.head_hash == head
    finally:
        await db.dispose()
    t = time.perf_counter()
    file_result = verify_file(work / "export.jsonl", chain)
    steps.append(
        _Step("verify jsonl file", file_result.count, time.perf_counter() - t, _peak_rss_mb())
    )
    return {
        "events": n,
        "verified": ok_db and file_result.ok,
        "csv_bytes": (work / "export.csv").stat().st_size,
        "jsonl_bytes": (work / "export.jsonl").stat().st_size,
        "steps": [s.as_dict() for s in steps],
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _export_cmd(args: argparse.Namespace) -> int:
    if args.events < 1:
        print("daraja bench export: --events must be at least 1", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="daraja-bench-export-") as tmp:
        work = args.dir or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        report = asyncio.run(_run_export(work, args.events))
    if args.json:
        print(json.dumps(report))
    else:
        print(f"audit export benchmark: {report['events']:,} events")
        for s in report["steps"]:
            print(
                f"  {s['step']:<18} {s['rows']:>10,} rows  {s['seconds']:>8.1f} s  "
                f"{s['rows_per_s']:>9,} rows/s  peak RSS {s['peak_rss_mb']:.0f} MB"
            )
        print(
            f"  CSV {report['csv_bytes'] / 1e6:.0f} MB, "
            f"JSONL {report['jsonl_bytes'] / 1e6:.0f} MB; chain verified: {report['verified']}"
        )
    return 0 if report["verified"] else 1


def _tamper_cmd(args: argparse.Namespace) -> int:
    from storage.audit_tamper import run_trials

    if args.trials < 1:
        print("daraja bench tamper: --trials must be at least 1", file=sys.stderr)
        return 2
    t = time.perf_counter()
    total: Counter[str] = Counter()
    detected: Counter[str] = Counter()
    right: Counter[str] = Counter()
    misses: list[str] = []
    for i, outcome in enumerate(run_trials(args.trials, args.seed), start=1):
        kind = outcome.trial.kind
        total[kind] += 1
        detected[kind] += outcome.detected
        right[kind] += outcome.right
        if not outcome.right and len(misses) < 10:
            misses.append(f"{kind} {outcome.trial.detail}: {outcome.result.describe()}")
        if i % 2000 == 0:
            _log(f"  {i:,} / {args.trials:,} trials")
    seconds = time.perf_counter() - t
    n = sum(total.values())
    report = {
        "trials": n,
        "seed": args.seed,
        "detected": sum(detected.values()),
        "located": sum(right.values()),
        "by_kind": {k: {"trials": total[k], "located": right[k]} for k in sorted(total)},
        "seconds": round(seconds, 1),
        "misses": misses,
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(
            f"tamper trials: {n:,} (seed {args.seed}); detected {report['detected']:,} "
            f"({100 * report['detected'] / n:.2f}%), right kind and seq {report['located']:,} "
            f"({100 * report['located'] / n:.2f}%) in {seconds:.1f} s"
        )
        for k in sorted(total):
            print(f"  {k:<9} {right[k]:>6,} / {total[k]:,}")
        for miss in misses:
            print(f"  MISS {miss}")
    return 0 if report["located"] == n else 1


def main(argv: list[str] | None = None) -> int:
    """Run a benchmark without `daraja bench` (`python -m bot.devtools.bench.export export …`)."""
    parser = argparse.ArgumentParser(prog="python -m bot.devtools.bench.export")
    sub = parser.add_subparsers(dest="bench", required=True)
    register_export(sub)
    register_tamper(sub)
    args = parser.parse_args(argv)
    status: int = args.func(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
