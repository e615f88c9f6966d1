"""`daraja bench webhook`: webhook request latency to 200 and a metrics scrape.

In one process on loopback: a temporary migrated SQLite database, the real durable inbox and
`WebhookReceiver` (handlers replaced by a no-op, so the figure is receive → commit → 200), and
an HTTP client posting updates as Telegram would. Reports latency percentiles to the 200 for
new updates one at a time, new updates 16 at a time (and updates/s), replays and refusals, then
the time to scrape `/metrics` with every series populated and its size.

Hook: `register_webhook(bench_sub)`.
Standalone: `python -m bot.devtools.bench.webhook --updates 300`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

SECRET = "bench-secret-0123456789abcdef"  # noqa: S105 - a throwaway local secret


def register_webhook(sub: Any) -> None:
    """Add `webhook` to the bench subcommands."""
    p: argparse.ArgumentParser = sub.add_parser(
        "webhook", help="webhook latency to 200 (stored first) and /metrics scrape time"
    )
    p.add_argument("--updates", type=int, default=300, help="updates per measurement")
    p.add_argument("--concurrency", type=int, default=16, help="parallel posts in the burst")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_cmd)


def _cmd(args: argparse.Namespace) -> int:
    result = asyncio.run(run(args.updates, args.concurrency))
    if args.json:
        print(json.dumps(result))
    else:
        for name, value in result.items():
            print(f"{name:>34}: {value}")
    return 0


def _update(update_id: int) -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": -1000 - update_id % 50, "type": "supergroup", "title": "bench"},
            "from": {"id": 42, "is_bot": False, "first_name": "Bench"},
            "text": "Inite KE-3 rive Kenscoff a 14:30",
        },
    }


def _ms(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "p50": round(statistics.median(ordered) * 1000, 2),
        "p95": round(ordered[int(0.95 * (len(ordered) - 1))] * 1000, 2),
        "max": round(ordered[-1] * 1000, 2),
    }


class _NoHandlers:
    bot = None

    async def process_update(self, update: Any) -> None:
        return None


async def run(n: int, concurrency: int) -> dict[str, Any]:
    """Measure; returns figures (milliseconds unless named otherwise)."""
    import httpx

    from bot.delivery.inbox import InboxProcessor
    from bot.delivery.webhook import SECRET_HEADER, WebhookReceiver
    from bot.observability.metrics import MetricsServer, PrometheusTelemetry
    from storage.db import Database

    out: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await db.upgrade()
        telemetry = PrometheusTelemetry(mode="webhook")
        inbox = InboxProcessor(db, _NoHandlers(), telemetry=telemetry)
        receiver = WebhookReceiver(
            inbox, secret=SECRET, url="https://x.example/hook", port=0, telemetry=telemetry
        )
        metrics = MetricsServer(telemetry, db, port=0)
        await receiver.start()
        await metrics.start()
        metrics.ready = True
        base = f"http://127.0.0.1:{receiver.bound_port}/hook"
        good = {SECRET_HEADER: SECRET}
        try:
            async with httpx.AsyncClient(timeout=30) as http:

                async def post(update_id: int, headers: dict[str, str]) -> float:
                    started = time.perf_counter()
                    response = await http.post(base, json=_update(update_id), headers=headers)
                    took = time.perf_counter() - started
                    if response.status_code not in (200, 403):
                        raise RuntimeError(f"unexpected {response.status_code}")
                    return took

                await post(1, good)  # warm-up: connection, first commit
                sequential = [await post(10 + i, good) for i in range(n)]
                out["new update, one at a time (ms)"] = _ms(sequential)
                sem = asyncio.Semaphore(concurrency)

                async def limited(update_id: int) -> float:
                    async with sem:
                        return await post(update_id, good)

                started = time.perf_counter()
                burst = await asyncio.gather(*(limited(100_000 + i) for i in range(n)))
                wall = time.perf_counter() - started
                out[f"new update, {concurrency} at a time (ms)"] = _ms(list(burst))
                out["burst throughput (updates/s)"] = round(n / wall, 1)
                replays = [await post(10 + i, good) for i in range(n)]
                out["replayed update (ms)"] = _ms(replays)
                refused = [await post(10 + i, {SECRET_HEADER: "x" * 20}) for i in range(n)]
                out["wrong secret, 403 (ms)"] = _ms(refused)
                await inbox.drain()
                await metrics.sample()
                scrape_url = f"http://127.0.0.1:{metrics.bound_port}/metrics"
                scrapes = []
                size = 0
                for _ in range(50):
                    started = time.perf_counter()
                    body = (await http.get(scrape_url)).content
                    scrapes.append(time.perf_counter() - started)
                    size = len(body)
                out["/metrics scrape (ms)"] = _ms(scrapes)
                out["/metrics size (bytes)"] = size
                started = time.perf_counter()
                await metrics.sample()
                out["queue sample from the database (ms)"] = round(
                    (time.perf_counter() - started) * 1000, 2
                )
        finally:
            await receiver.stop()
            await metrics.stop()
            await db.dispose()
    return out


def main() -> int:
    """Standalone entry point."""
    parser = argparse.ArgumentParser(prog="python -m bot.devtools.bench.webhook")
    sub = parser.add_subparsers(dest="cmd")
    register_webhook(sub)
    args = parser.parse_args(["webhook", *sys.argv[1:]])
    status: int = args.func(args)
    return status


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
