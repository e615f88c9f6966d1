"""`daraja bench relay`: a burst through the real bot and the sandbox, measured in one run.

The sandbox runs as its own process (flood limits off), the bot in this process so its
telemetry can be read. Ten enrolled groups in four languages; a burst of messages spread over
them; every copy must arrive once, in order per chat. Relay overhead per message = time from the
update being fetched to its last copy being sent, minus translation time (rate limits are off,
so there are no rate-limit waits to subtract) is printed as `latency_*`; under a burst it is
dominated by queueing. `overhead_*` is the bot's own work on the message's critical path with
queueing excluded: handling the update minus translation, plus its slowest copy from being
claimed to being sent (Telegram accepted it); `handling_*` and `copy_*` are those two parts, and
`overhead_recorded_*` runs each copy on to its outcome being durably recorded (bookkeeping the
chat's next copy waits for, not the reader of this one).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from bot.devtools.bench.pg_cluster import ClusterUnavailable, start_cluster
from bot.domain import LANGUAGES
from bot.observability.telemetry import Telemetry

LANGS = LANGUAGES
SENTENCES = {
    "ht": "Nou bezwen ranfò.",
    "fr": "Nous avons besoin de renforts.",
    "en": "We need reinforcements.",
    "sw": "Tunahitaji msaada.",
}
ADMIN_ID = 555000


class RelayClock(Telemetry):
    """Records the timings the benchmark needs."""

    def __init__(self) -> None:
        self.fetched: dict[int, float] = {}
        self.translation: dict[int, float] = {}
        self.message_of: dict[int, int] = {}
        self.copies_expected: dict[int, int] = {}
        self.processing: dict[int, float] = {}
        self.claimed: dict[int, float] = {}
        # message id -> longest claim-to-posted (Telegram accepted it) of its copies
        self.active: dict[int, float] = {}
        # message id -> longest claim-to-recorded (the outcome durable) of its copies
        self.recorded: dict[int, float] = {}
        self.last_posted: dict[int, float] = {}
        self.sent = 0
        # message id -> copies of it sent (relay copies and the author group's back-checks)
        self.sent_of: dict[int, int] = defaultdict(int)
        self.event = asyncio.Event()

    def all_sent(self, messages: int) -> bool:
        """Whether `messages` messages were queued and every delivery queued for them sent."""
        return len(self.copies_expected) >= messages and all(
            self.sent_of[m] >= n for m, n in self.copies_expected.items()
        )

    def updates_fetched(self, update_ids: Sequence[int], at: float) -> None:
        for update_id in update_ids:
            self.fetched.setdefault(update_id, at)

    def message_translated(
        self, update_id: int | None, seconds: float, translations: Mapping[str, Any]
    ) -> None:
        if update_id is not None:
            self.translation[update_id] = seconds

    def message_queued(self, update_id: int | None, message_id: int, copies: int) -> None:
        if update_id is not None:
            self.message_of[message_id] = update_id
            self.copies_expected[message_id] = copies

    def update_processed(self, update_id: int, seconds: float, ok: bool) -> None:
        self.processing[update_id] = seconds

    def copy_claimed(self, delivery_id: int, message_id: int, at: float) -> None:
        self.claimed[delivery_id] = at

    def copy_posted(self, delivery_id: int, message_id: int, at: float) -> None:
        if delivery_id in self.claimed:
            span = at - self.claimed[delivery_id]
            self.active[message_id] = max(self.active.get(message_id, 0.0), span)
        self.last_posted[message_id] = max(self.last_posted.get(message_id, 0.0), at)

    def copy_sent(self, delivery_id: int, message_id: int, at: float) -> None:
        self.sent += 1
        self.sent_of[message_id] += 1
        if delivery_id in self.claimed:
            span = at - self.claimed[delivery_id]
            self.recorded[message_id] = max(self.recorded.get(message_id, 0.0), span)
        self.event.set()


def register_relay(sub: Any) -> None:
    """Add `daraja bench relay`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "relay",
        help="burst through the real bot, a plain PTB relay bot and a bare HTTP client on the "
        "sandbox; throughput ratios, overhead p50/p95",
    )
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--groups", type=int, default=10)
    parser.add_argument("--timeout", type=float, default=900.0, help="give up after (s)")
    parser.add_argument(
        "--rate",
        type=float,
        default=0.0,
        help="messages per second (0: all at once, a burst); a steady rate below capacity "
        "shows the overhead without queueing",
    )
    parser.add_argument(
        "--backends",
        default=None,
        help="comma-separated: sqlite, postgresql (default: the --database-url's, else sqlite); "
        "PostgreSQL is a throwaway durable cluster unless --database-url names one; with both, "
        "PostgreSQL ÷ SQLite is printed",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=None,
        help="run the backends this many times, alternating their order (default: 3 with two "
        "backends, else 1); each figure is the median round's, PostgreSQL ÷ SQLite the median "
        "of the rounds' ratios (on a shared machine one round's ratio varies by ±0.15)",
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="an empty database to use (default: a temporary SQLite file); PostgreSQL "
        "URLs (postgresql+asyncpg://…) allow --worker",
    )
    parser.add_argument(
        "--worker",
        action="store_true",
        help="also run a delivery-only `daraja run` process sharing the outbox (PostgreSQL)",
    )
    parser.add_argument(
        "--no-peers",
        action="store_true",
        help="Daraja only: skip the plain python-telegram-bot bot and the raw HTTP client",
    )
    parser.add_argument(
        "--plain-transport",
        choices=("aiohttp", "httpx"),
        default="aiohttp",
        help="the plain bot's Bot API transport: Daraja's own (default, so the ratio is about "
        "what the bots do) or PTB's stock httpx one",
    )
    parser.add_argument("--json", action="store_true", help="JSON object on the last line")
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.messages < 1 or not 2 <= args.groups <= 50:
        print("daraja bench relay: --messages ≥ 1 and --groups 2..50", file=sys.stderr)
        return 2
    url = args.database_url or ""
    backends = [b.strip() for b in (args.backends or "").split(",") if b.strip()]
    if not backends:
        backends = ["postgresql" if url.startswith("postgresql") else "sqlite"]
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown or len(set(backends)) != len(backends):
        print("daraja bench relay: --backends takes sqlite and/or postgresql", file=sys.stderr)
        return 2
    if url and not url.startswith(("sqlite", "postgresql")):
        print("daraja bench relay: --database-url is sqlite… or postgresql…", file=sys.stderr)
        return 2
    if url and ("postgresql" if url.startswith("postgresql") else "sqlite") not in backends:
        print("daraja bench relay: --database-url names a backend not in --backends",
              file=sys.stderr)  # fmt: skip
        return 2
    rounds = args.rounds if args.rounds is not None else (3 if len(backends) > 1 else 1)
    if not 1 <= rounds <= 20:
        print("daraja bench relay: --rounds takes 1..20", file=sys.stderr)
        return 2
    if args.worker and backends != ["postgresql"]:
        print(
            "daraja bench relay: --worker needs PostgreSQL only (--backends postgresql or "
            "--database-url postgresql+asyncpg://…)",
            file=sys.stderr,
        )
        return 2
    # The progress lines are what a person watches; the bots' INFO lines would drown them.
    logging.getLogger().setLevel(logging.WARNING)
    try:
        result = asyncio.run(
            bench_relay_compare(
                args.messages,
                args.groups,
                limit_s=args.timeout,
                backends=backends,
                database_url=args.database_url,
                worker=args.worker,
                rate=args.rate,
                peers=not args.no_peers,
                plain_transport=args.plain_transport,
                rounds=rounds,
            )
        )
    except ClusterUnavailable as exc:
        print(f"daraja bench relay: {exc}", file=sys.stderr)
        return 2
    if not args.json:
        _print_report(result)
    print(json.dumps(result))
    return 0 if result["complete"] else 1


BACKENDS = ("sqlite", "postgresql")

# What each side does and does not do, printed with the figures (and in --json).
SIDES = {
    "daraja": "Daraja: durable inbox (each update committed before it is confirmed), audit log "
    "(hash chain) and outbox rows in one transaction, message map, every copy's outcome "
    "recorded; per-chat order kept (one copy in flight per target chat); doubtful "
    "translations back-translated and a check posted to the author's group (sent, not "
    "counted as copies); aiohttp transport",
    "plain_ptb": "plain PTB bot: PTB's Updater, {transport} transport, handler -> detect -> "
    "translate (same engine and models) -> send_message to each group in turn; no inbox, "
    "outbox, audit or message map (a crash or failed send loses copies); updates run "
    "concurrently, so order per chat is not kept (counted as order violations)",
    "raw_http": "raw HTTP: a bare aiohttp client posting sendMessage, {in_flight} at a "
    "time, the same number of copies: no bot, no translation, no storage - the sandbox's "
    "ceiling",
}


def _ratio(a: float, b: float) -> float | None:
    return round(a / b, 3) if b else None


async def bench_relay_compare(
    messages: int,
    groups: int,
    *,
    limit_s: float,
    backends: Sequence[str] = ("sqlite",),
    database_url: str | None = None,
    worker: bool = False,
    rate: float = 0.0,
    peers: bool = True,
    plain_transport: str = "aiohttp",
    rounds: int = 1,
) -> dict[str, Any]:
    """Daraja on each backend (`rounds` times, the order alternating: on a shared machine
    the speed drifts from one minute to the next), then the plain PTB bot and the raw HTTP
    client, one after the other in this process, each on a fresh sandbox and database; the
    figures (the median round's) and the ratios between them."""
    from bot.devtools.bench.peers import bench_plain, bench_raw

    runs: dict[str, list[dict[str, Any]]] = {backend: [] for backend in backends}
    for n in range(rounds):
        order = list(backends) if n % 2 == 0 else list(reversed(backends))
        for backend in order:
            url = database_url if database_url and database_url.startswith(backend) else None
            cluster = None
            if backend == "postgresql" and url is None:
                _progress("starting a throwaway PostgreSQL cluster (durable defaults)")
                cluster = await asyncio.to_thread(start_cluster)
                url = cluster.url
            label = f"Daraja ({backend})" + (f", round {n + 1} of {rounds}" if rounds > 1 else "")
            try:
                figures = await bench_relay(
                    messages, groups, limit_s=limit_s, database_url=url, worker=worker,
                    rate=rate, label=label,
                )  # fmt: skip
                runs[backend].append(figures)
            finally:
                if cluster is not None:
                    await asyncio.to_thread(cluster.stop)
    daraja = {backend: _median_run(figures) for backend, figures in runs.items()}
    result: dict[str, Any] = {
        "messages": messages,
        "groups": groups,
        "rate_msgs_per_s": rate or "burst",
        "rounds": rounds,
        "daraja": daraja,
    }
    ratios: dict[str, float | None] = {}
    complete = all(
        r["lost"] == 0 and r["duplicated"] == 0 for figures in runs.values() for r in figures
    )
    sides = {"daraja": SIDES["daraja"]}
    if peers:
        plain = await bench_plain(
            messages, groups, limit_s=limit_s, progress=_progress, langs=LANGS,
            burst=lambda client, chats, n: _burst(client, chats, n, rate=rate),
            transport=plain_transport,
        )  # fmt: skip
        raw = await bench_raw(messages * (groups - 1), groups, progress=_progress)
        result["plain_ptb"] = plain
        result["raw_http"] = raw
        sides["plain_ptb"] = SIDES["plain_ptb"].format(transport=plain_transport)
        sides["raw_http"] = SIDES["raw_http"].format(in_flight=raw["in_flight"])
        complete = complete and plain["lost"] == 0 and raw["failed_sends"] == 0
        for backend, figures in daraja.items():
            ratios[f"daraja_{backend}_vs_plain_ptb"] = _ratio(
                figures["copies_per_s"], plain["copies_per_s"]
            )
            ratios[f"daraja_{backend}_vs_raw_http"] = _ratio(
                figures["copies_per_s"], raw["copies_per_s"]
            )
        ratios["plain_ptb_vs_raw_http"] = _ratio(plain["copies_per_s"], raw["copies_per_s"])
    if "sqlite" in daraja and "postgresql" in daraja:
        # Each round's ratio is taken within the round (the two backends minutes apart, not
        # tens of minutes); the median of them is the figure.
        per_round = [
            _ratio(pg["copies_per_s"], lite["copies_per_s"])
            for pg, lite in zip(runs["postgresql"], runs["sqlite"], strict=True)
        ]
        ratios["postgresql_vs_sqlite"] = statistics.median(r for r in per_round if r is not None)
        if rounds > 1:
            result["postgresql_vs_sqlite_by_round"] = per_round
    result["ratios"] = ratios  # throughput (copies per second) of the first ÷ the second
    result["sides"] = sides
    result["complete"] = complete
    return result


def _median_run(figures: list[dict[str, Any]]) -> dict[str, Any]:
    """The round with the median throughput (the lower middle one of an even number)."""
    ordered = sorted(figures, key=lambda f: float(f["copies_per_s"]))
    return ordered[(len(ordered) - 1) // 2]


def _print_report(result: dict[str, Any]) -> None:
    """The figures side by side, the ratios, and what each side does."""
    columns = [(f"daraja {b}", r) for b, r in result["daraja"].items()]
    for name in ("plain_ptb", "raw_http"):
        if name in result:
            columns.append((name.replace("_", " "), result[name]))
    keys = list(dict.fromkeys(k for _name, figures in columns for k in figures))
    print(f"{result['messages']} messages into {result['groups']} groups "
          f"({result['rate_msgs_per_s']})")  # fmt: skip
    print(f"{'':>26}  " + "  ".join(f"{name:>16}" for name, _ in columns))
    for key in keys:
        cells = [str(figures.get(key, "-")) for _name, figures in columns]
        print(f"{key:>26}  " + "  ".join(f"{c:>16}" for c in cells))
    if result.get("rounds", 1) > 1:
        print(f"figures of the median of {result['rounds']} rounds per backend")
        if "postgresql_vs_sqlite_by_round" in result:
            by_round = ", ".join(str(r) for r in result["postgresql_vs_sqlite_by_round"])
            print(f"postgresql ÷ sqlite by round: {by_round}")
    if result["ratios"]:
        print("throughput ratios (copies per second, first ÷ second):")
        for key, value in result["ratios"].items():
            print(f"{key:>40}: {value}")
    for text in result["sides"].values():
        print(f"- {text}")


async def bench_relay(
    messages: int,
    groups: int,
    *,
    limit_s: float,
    database_url: str | None = None,
    worker: bool = False,
    rate: float = 0.0,
    voice_models_dir: Path | None = None,
    label: str = "Daraja",
) -> dict[str, Any]:
    """Run the burst; return the figures (with `voice_models_dir`, translation keeps to the
    cores transcription leaves it, as in a deployment with a voice model)."""
    from bot.app import serve
    from bot.devtools.sandbox import random_token
    from bot.devtools.sandbox.client import SandboxClient
    from bot.devtools.scenario import People, SandboxProcess

    workdir = Path(tempfile.mkdtemp(prefix="daraja-bench-relay-"))
    token = random_token()
    _progress(f"{label}: starting the sandbox (flood limits off) and the bot")
    sandbox = SandboxProcess(workdir, token, no_flood=True).start()
    clock = RelayClock()
    stop = asyncio.Event()
    ready = asyncio.Event()
    settings = _bench_settings(workdir, token, sandbox.url, database_url, voice_models_dir)
    bot = asyncio.create_task(serve(settings, stop, telemetry=clock, ready=ready))
    helper = _worker_process(workdir, token, sandbox.url, settings) if worker else None
    client = SandboxClient.connect(sandbox.url)
    try:
        await asyncio.wait_for(ready.wait(), 120)
        if helper is not None:
            await asyncio.to_thread(helper.start)
        people = People(client, ADMIN_ID)
        chats = await _enroll(people, groups)
        expected = messages * (groups - 1)
        # Copies of messages posted before the burst (enrollment) are not the burst's.
        before = await _last_message_id(settings.database_url)
        _progress(f"{label}: burst of {messages} messages into {groups} groups "
                  f"({expected} copies)")  # fmt: skip
        started = time.monotonic()
        await _burst(client, chats, messages, rate=rate)
        await _wait_for_copies(
            clock,
            messages,
            expected,
            started + limit_s,
            settings.database_url if helper else None,
            label=label,
            after=before,
        )
        elapsed = time.monotonic() - started
        stop.set()
        await asyncio.wait_for(bot, 60)
        counts = await _count(settings.database_url, after=before)
    finally:
        stop.set()
        if not bot.done():
            bot.cancel()
        if helper is not None:
            helper.stop()
        await client.close()
        sandbox.stop()
    return {
        "messages": messages,
        "groups": groups,
        "rate_msgs_per_s": rate or "burst",
        "database": settings.database_url.split("+", 1)[0],
        "processes": 2 if worker else 1,
        "copies_expected": expected,
        "copies_delivered": counts["delivered"],
        "lost": expected - counts["delivered"],
        "duplicated": counts["duplicated"],
        "order_violations": counts["order_violations"],
        "seconds": round(elapsed, 2),
        "copies_per_s": round(counts["delivered"] / elapsed, 1) if elapsed else 0.0,
        **_timings(clock),
    }


def _bench_settings(
    workdir: Path,
    token: str,
    api_url: str,
    database_url: str | None,
    voice_models_dir: Path | None,
) -> Any:
    """The bot's settings for the run: the sandbox, the bundled models, every rate limit off."""
    from pydantic import SecretStr

    from bot.engines.bundled import install_bundled_models
    from bot.settings import Settings

    settings = Settings(
        telegram_token=SecretStr(token),
        telegram_api_url=api_url,
        database_url=database_url or f"sqlite+aiosqlite:///{workdir}/daraja.db",
        models_dir=install_bundled_models(workdir / "models"),
        admin_ids=[ADMIN_ID],
        rate_global_per_s=0,
        rate_chat_per_s=0,
        rate_group_per_min=0,
        poll_timeout=5,
        log_level="WARNING",
    )
    if voice_models_dir is not None:
        settings.voice_models_dir = voice_models_dir
    return settings


def _worker_process(workdir: Path, token: str, api_url: str, settings: Any) -> Any:
    """A delivery-only `daraja run` process sharing the outbox (not started yet)."""
    from bot.devtools.scenario import BotProcess

    (workdir / "worker").mkdir()
    return BotProcess(
        workdir / "worker",
        api_url,
        settings.models_dir,
        settings.database_url,
        token=token,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_MODE": "worker",
            "DARAJA_RATE_CHAT_PER_S": "0",
            "DARAJA_RATE_GROUP_PER_MIN": "0",
            "DARAJA_RATE_GLOBAL_PER_S": "0",
        },
    )


async def _wait_for_copies(
    clock: RelayClock,
    messages: int,
    expected: int,
    deadline: float,
    shared_database: str | None,
    *,
    label: str,
    after: int,
) -> None:
    """Until every delivery queued for the burst is sent (counted in the database too when a
    worker process shares the outbox) or the deadline passes, reporting progress every few
    seconds. The deliveries are the relay copies and the back-checks Daraja posts to the
    author's group for doubtful translations; those are not counted as copies."""
    started = shown = time.monotonic()
    while time.monotonic() < deadline:
        if clock.all_sent(messages) or (
            shared_database is not None
            and (await _count(shared_database, after=after))["delivered"] >= expected
        ):
            break
        clock.event.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(clock.event.wait(), 5)
        now = time.monotonic()
        if now - shown >= 2:
            shown = now
            _progress(
                f"{label}: {clock.sent} deliveries sent, {expected} copies expected "
                f"({clock.sent / (now - started):.0f}/s)"
            )


def _timings(clock: RelayClock) -> dict[str, float]:
    """The run's percentiles from what the bot reported to the clock, in milliseconds."""
    # End to end under the burst: fetched -> last copy sent, minus translation (no rate-limit
    # waits: the limits are off). Under a burst this is mostly time spent queued behind other
    # messages for the same chats (per-chat order allows one copy in flight per chat).
    latencies = [
        (clock.last_posted[m] - clock.fetched[u] - clock.translation.get(u, 0.0)) * 1000
        for m, u in clock.message_of.items()
        if m in clock.last_posted and u in clock.fetched
    ]
    # The bot's own work on a message's critical path, queueing excluded: handling the update
    # (recording, auditing, queueing copies) minus translation (seconds, per message id), plus
    # the slowest of its copies from claim to sent, i.e. accepted by Telegram (rendering, the
    # Bot API call).
    handled = {
        m: clock.processing[u] - clock.translation.get(u, 0.0)
        for m, u in clock.message_of.items()
        if u in clock.processing
    }
    handling = [h * 1000 for h in handled.values()]
    overheads = [(h + clock.active[m]) * 1000 for m, h in handled.items() if m in clock.active]
    # The same up to the copy's outcome being durably recorded (the chat's next copy waits for
    # that; the reader of this copy does not).
    overheads_recorded = [
        (h + clock.recorded[m]) * 1000 for m, h in handled.items() if m in clock.recorded
    ]
    slowest_copy = [v * 1000 for v in clock.active.values()]
    translation = [v * 1000 for v in clock.translation.values()]
    return {
        "overhead_p50_ms": round(_percentile(overheads, 0.50), 1),
        "overhead_p95_ms": round(_percentile(overheads, 0.95), 1),
        "translation_p50_ms": round(_percentile(translation, 0.50), 1),
        "translation_p95_ms": round(_percentile(translation, 0.95), 1),
        "mean_overhead_ms": round(statistics.fmean(overheads), 1) if overheads else 0.0,
        "overhead_recorded_p50_ms": round(_percentile(overheads_recorded, 0.50), 1),
        "overhead_recorded_p95_ms": round(_percentile(overheads_recorded, 0.95), 1),
        # The two parts of the overhead: handling the update (minus translation), and the
        # slowest copy from claim to sent.
        "handling_p50_ms": round(_percentile(handling, 0.50), 1),
        "handling_p95_ms": round(_percentile(handling, 0.95), 1),
        "copy_p50_ms": round(_percentile(slowest_copy, 0.50), 1),
        "copy_p95_ms": round(_percentile(slowest_copy, 0.95), 1),
        "latency_p50_ms": round(_percentile(latencies, 0.50), 1),
        "latency_p95_ms": round(_percentile(latencies, 0.95), 1),
    }


async def _enroll(people: Any, groups: int) -> list[tuple[int, int, str]]:
    """`groups` enrolled groups; returns (chat id, officer id, language) for each."""
    name = "Bench"
    units = [
        (f"U{i:02d}", "PNH" if i % 2 else "MSS", LANGS[i % len(LANGS)]) for i in range(groups)
    ]
    await people.new_operation(name, units)
    chats = []
    for code, _side, lang in units:
        officer = await people.client.create_user(f"Officer {code}", language_code=lang)
        group = await people.group(f"{name} {code}", officer, [])
        await people.enroll(group, officer, await people.issue_code(f"chat {name} {code}"))
        chats.append((group.id, officer.id, lang))
    return chats


async def _burst(
    client: Any, chats: list[tuple[int, int, str]], messages: int, *, rate: float = 0.0
) -> None:
    """Post the messages round-robin, a few requests at a time (or one every 1/rate s)."""
    if rate > 0:
        for i in range(messages):
            chat, officer, lang = chats[i % len(chats)]
            await client.say(chat, officer, f"{SENTENCES[lang]} #{i}")
            await asyncio.sleep(1.0 / rate)
        return
    # The burst is posted by the sandbox itself in batches: the load generator must not share
    # the bot's process (and its interpreter lock) with the bot it measures.
    lines = []
    for i in range(messages):
        chat, officer, lang = chats[i % len(chats)]
        lines.append((chat, officer, f"{SENTENCES[lang]} #{i}"))
    for start in range(0, len(lines), 100):
        await client.say_many(lines[start : start + 100])


async def _last_message_id(database_url: str) -> int:
    """The highest message id recorded so far (0 if none)."""
    from storage.db import Database
    from storage.messages import last_message_id

    db = Database(database_url)
    try:
        async with db.transaction() as s:
            return await last_message_id(s)
    finally:
        await db.dispose()


async def _count(database_url: str, *, after: int = 0) -> dict[str, int]:
    """Delivered, duplicated and out-of-order copies of messages with ids above `after`, from
    the message map."""
    from storage.db import Database
    from storage.messages import first_copies

    db = Database(database_url)
    try:
        async with db.transaction() as s:
            rows = await first_copies(s, after=after)
    finally:
        await db.dispose()
    per_pair: dict[tuple[int, int], int] = defaultdict(int)
    streams: dict[tuple[int, int], list[tuple[int, int]]] = defaultdict(list)
    for message_id, target, copy_tg, source, source_tg in rows:
        per_pair[(message_id, target)] += 1
        streams[(source, target)].append((copy_tg, source_tg))
    violations = 0
    for stream in streams.values():
        stream.sort()
        originals = [source_tg for _copy, source_tg in stream]
        violations += sum(1 for a, b in itertools.pairwise(originals) if b < a)
    return {
        "delivered": len(per_pair),
        "duplicated": sum(n - 1 for n in per_pair.values()),
        "order_violations": violations,
    }


def _progress(text: str) -> None:
    print(f"bench relay: {text}", file=sys.stderr, flush=True)


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]
