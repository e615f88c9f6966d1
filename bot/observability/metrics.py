"""Prometheus metrics and the `/healthz` endpoint for container checks, on DARAJA_METRICS_PORT.

    telemetry = PrometheusTelemetry(mode="polling")     # a `Telemetry`: pass it to the parts
    server = MetricsServer(telemetry, db, host="127.0.0.1", port=9464)
    await server.start()                                # GET /metrics, GET /healthz
    server.ready = True                                 # once the bot receives updates

What is exported (all names start with `daraja_`):
- updates: received (new, replays not counted), processed by outcome, processing time, and
  *inbox lag* (received → processed, a histogram) plus the inbox rows still waiting and the
  age of the oldest (sampled from the database);
- relay: messages relayed, copies queued, sent and failed (by reason), Telegram 429s;
- translation: latency per pair and route (histogram), translations per pair and route,
  flagged translations per pair and flag;
- outbox: rows waiting (pending or in flight) and the age of the oldest, sampled from the
  database every `sample_every` seconds (so several bot processes sharing one database all
  report the shared queue, not their own part of it).

Each `PrometheusTelemetry` has its own registry (no process-global state: tests build many).
Nothing exported carries message text, user names or chat titles; label values are bounded sets
(language pairs, routes, flags, error kinds).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from bot.observability.telemetry import Telemetry

if TYPE_CHECKING:
    from aiohttp import web

    from storage.db import Database

log = logging.getLogger(__name__)

# Buckets in seconds: translation runs from a cache hit (ms) to a long message on CPU (s).
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
_LAG_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)
# Routes with no model work: counted, but not timed (their "latency" would be noise).
_UNTIMED_ROUTES = frozenset({"same", "none"})
# Updates remembered between "received" and "processed" (lag); older ones are forgotten.
_MAX_TRACKED_UPDATES = 100_000


def _label(value: object, limit: int = 40) -> str:
    """A bounded label value (error texts are cut at their kind, not free text)."""
    text = str(getattr(value, "value", value) or "unknown")
    return text[:limit]


class PrometheusTelemetry(Telemetry):
    """A `Telemetry` that counts and times into its own Prometheus registry."""

    def __init__(
        self,
        *,
        registry: CollectorRegistry | None = None,
        mode: str = "polling",
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.registry = registry or CollectorRegistry()
        self.clock = clock
        r = self.registry
        self.info = Gauge(
            "daraja_info", "Constant 1, labelled with the mode.", ["mode"], registry=r
        )
        self.info.labels(mode=mode).set(1)
        self.updates_received = Counter(
            "daraja_updates_received", "New updates committed to the inbox.", registry=r
        )
        self.updates_processed = Counter(
            "daraja_updates_processed",
            "Updates that went through the handlers, by outcome.",
            ["outcome"],
            registry=r,
        )
        self.update_seconds = Histogram(
            "daraja_update_processing_seconds",
            "Time one update spent in the handlers.",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.inbox_lag = Histogram(
            "daraja_inbox_lag_seconds",
            "From an update's commit to the inbox to the end of its processing.",
            buckets=_LAG_BUCKETS,
            registry=r,
        )
        self.messages_relayed = Counter(
            "daraja_messages_relayed",
            "Officers' messages recorded with at least one copy queued.",
            registry=r,
        )
        self.copies_queued = Counter(
            "daraja_copies_queued", "Copies queued for partner chats.", registry=r
        )
        self.copies_sent = Counter(
            "daraja_copies_sent", "Copies that reached Telegram.", registry=r
        )
        self.copies_failed = Counter(
            "daraja_copies_failed", "Copies given up, by reason.", ["reason"], registry=r
        )
        self.rate_limited_total = Counter(
            "daraja_telegram_rate_limited",
            "Telegram 429 (Too Many Requests) answers.",
            registry=r,
        )
        self.translation_seconds = Histogram(
            "daraja_translation_seconds",
            "Time to translate a message (all its targets), per target pair and route.",
            ["pair", "route"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.translations = Counter(
            "daraja_translations", "Translations made, per pair and route.", ["pair", "route"],
            registry=r,
        )  # fmt: skip
        self.translations_flagged = Counter(
            "daraja_translations_flagged",
            "Translations carrying a warning flag, per pair and flag.",
            ["pair", "flag"],
            registry=r,
        )
        self.outbox_pending = Gauge(
            "daraja_outbox_pending", "Copies waiting to be sent (pending or in flight).",
            registry=r,
        )  # fmt: skip
        self.outbox_oldest_age = Gauge(
            "daraja_outbox_oldest_age_seconds",
            "How long the oldest waiting copy has waited (0 when none waits).",
            registry=r,
        )
        self.inbox_pending = Gauge(
            "daraja_inbox_pending", "Updates stored but not processed yet.", registry=r
        )
        self.inbox_oldest_age = Gauge(
            "daraja_inbox_oldest_age_seconds",
            "How long the oldest unprocessed update has waited (0 when none waits).",
            registry=r,
        )
        self._received_at: OrderedDict[int, float] = OrderedDict()

    # -- Telemetry -----------------------------------------------------------------------

    def updates_fetched(self, update_ids: Sequence[int], at: float) -> None:
        """New updates were committed (polled or posted to the webhook)."""
        self.updates_received.inc(len(update_ids))
        for update_id in update_ids:
            self._received_at[update_id] = at
        while len(self._received_at) > _MAX_TRACKED_UPDATES:
            self._received_at.popitem(last=False)

    def update_processed(self, update_id: int, seconds: float, ok: bool) -> None:
        """An update went through the handlers."""
        self.updates_processed.labels(outcome="ok" if ok else "failed").inc()
        self.update_seconds.observe(seconds)
        received = self._received_at.pop(update_id, None)
        if received is not None:  # updates resumed after a restart were not timed
            self.inbox_lag.observe(max(0.0, self.clock() - received))

    def message_translated(
        self, update_id: int | None, seconds: float, translations: Mapping[str, Any]
    ) -> None:
        """A message's translations: count, time and flags per target."""
        for target, result in translations.items():
            source = getattr(result, "source", None) or "?"
            pair = f"{_label(source, 8)}-{_label(getattr(result, 'target', target), 8)}"
            route = _label(getattr(result, "route", None), 20)
            self.translations.labels(pair=pair, route=route).inc()
            if route not in _UNTIMED_ROUTES:
                self.translation_seconds.labels(pair=pair, route=route).observe(seconds)
            for flag in getattr(result, "flags", ()) or ():
                self.translations_flagged.labels(pair=pair, flag=_label(flag, 30)).inc()

    def message_queued(self, update_id: int | None, message_id: int, copies: int) -> None:
        """A message and its copies were recorded."""
        if copies > 0:
            self.messages_relayed.inc()
            self.copies_queued.inc(copies)

    def copy_sent(self, delivery_id: int, message_id: int, at: float) -> None:
        """One copy reached Telegram."""
        self.copies_sent.inc()

    def copy_failed(self, delivery_id: int, reason: str) -> None:
        """One copy was given up."""
        self.copies_failed.labels(reason=_label(reason)).inc()

    def rate_limited(self, chat_id: int, retry_after: float) -> None:
        """Telegram answered 429."""
        self.rate_limited_total.inc()

    def outbox_depth(self, pending: int, oldest_age: float) -> None:
        """The outbox's size and the age of its oldest row."""
        self.outbox_pending.set(pending)
        self.outbox_oldest_age.set(max(0.0, oldest_age))


class Tee(Telemetry):
    """Sends every observation to several telemetries (metrics and a benchmark's recorder)."""

    def __init__(self, *targets: Telemetry) -> None:
        self.targets = targets

    def updates_fetched(self, update_ids: Sequence[int], at: float) -> None:
        """Forwarded."""
        for t in self.targets:
            t.updates_fetched(update_ids, at)

    def update_processed(self, update_id: int, seconds: float, ok: bool) -> None:
        """Forwarded."""
        for t in self.targets:
            t.update_processed(update_id, seconds, ok)

    def message_translated(
        self, update_id: int | None, seconds: float, translations: Mapping[str, Any]
    ) -> None:
        """Forwarded."""
        for t in self.targets:
            t.message_translated(update_id, seconds, translations)

    def message_queued(self, update_id: int | None, message_id: int, copies: int) -> None:
        """Forwarded."""
        for t in self.targets:
            t.message_queued(update_id, message_id, copies)

    def copy_claimed(self, delivery_id: int, message_id: int, at: float) -> None:
        """Forwarded."""
        for t in self.targets:
            t.copy_claimed(delivery_id, message_id, at)

    def copy_posted(self, delivery_id: int, message_id: int, at: float) -> None:
        """Forwarded."""
        for t in self.targets:
            t.copy_posted(delivery_id, message_id, at)

    def copy_sent(self, delivery_id: int, message_id: int, at: float) -> None:
        """Forwarded."""
        for t in self.targets:
            t.copy_sent(delivery_id, message_id, at)

    def copy_failed(self, delivery_id: int, reason: str) -> None:
        """Forwarded."""
        for t in self.targets:
            t.copy_failed(delivery_id, reason)

    def rate_limited(self, chat_id: int, retry_after: float) -> None:
        """Forwarded."""
        for t in self.targets:
            t.rate_limited(chat_id, retry_after)

    def outbox_depth(self, pending: int, oldest_age: float) -> None:
        """Forwarded."""
        for t in self.targets:
            t.outbox_depth(pending, oldest_age)


@dataclass(frozen=True)
class QueueSample:
    """What waits in the database: outbox and inbox sizes and their oldest rows' ages."""

    outbox_pending: int
    outbox_oldest_age: float
    inbox_pending: int
    inbox_oldest_age: float


async def sample_queues(db: Database, now: datetime | None = None) -> QueueSample:
    """Count waiting outbox and inbox rows and age their oldest (one read snapshot)."""
    from storage.models import utcnow
    from storage.uow import Storage

    now = now or utcnow()
    async with Storage(db)(read_only=True) as uow:
        out_n, out_oldest, in_n, in_oldest = await uow.queues.depths()
    return QueueSample(out_n, _age(now, out_oldest), in_n, _age(now, in_oldest))


def _age(now: datetime, then: datetime | None) -> float:
    if then is None:
        return 0.0
    if then.tzinfo is None:  # SQLite without the column's type decorator (aggregates)
        then = then.replace(tzinfo=UTC)
    return max(0.0, (now - then).total_seconds())


def bound_port(runner: web.AppRunner | None, port: int) -> int:
    """The port a runner actually listens on (differs from `port` when it was 0)."""
    if runner is None or not runner.addresses:
        return port
    return int(runner.addresses[0][1])


async def listen(app: web.Application, host: str, port: int, *, setting: str) -> web.AppRunner:
    """Serve `app` on host:port (the metrics endpoint and the web console both do); a port
    in use is a configuration error naming `setting`."""
    from aiohttp import web

    from bot.errors import ConfigError

    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            f"{setting}: cannot listen on {host}:{port} ({exc.strerror}); choose another port"
        ) from None
    return runner


class MetricsServer:
    """Serves `/metrics` (Prometheus text) and `/healthz` (JSON), and samples the queues."""

    def __init__(
        self,
        telemetry: PrometheusTelemetry,
        db: Database | None,
        *,
        host: str = "127.0.0.1",
        port: int = 9464,
        sample_every: float = 15.0,
        stale_after: float | None = None,
    ) -> None:
        self.telemetry = telemetry
        self.db = db
        self.host = host
        self.port = port
        self.sample_every = sample_every
        # /healthz turns 503 when the database could not be read for this long.
        self.stale_after = stale_after if stale_after is not None else 3 * sample_every + 5
        self.ready = False  # set by the bot once it receives updates
        self.connecting = False  # set while the Bot API has not been reached yet
        self.started_at = time.monotonic()
        self.last_sample: QueueSample | None = None
        self.last_sample_at: float | None = None
        self.last_error: str | None = None
        self._runner: web.AppRunner | None = None
        self._sampler: asyncio.Task[None] | None = None

    @property
    def bound_port(self) -> int:
        """The port actually listened on (differs from `port` when it was 0)."""
        return bound_port(self._runner, self.port)

    async def start(self) -> None:
        """Bind, serve, and start sampling the database."""
        from aiohttp import web

        app = web.Application()
        app.router.add_get("/metrics", self._metrics)
        app.router.add_get("/healthz", self._healthz)
        self._runner = await listen(app, self.host, self.port, setting="DARAJA_METRICS_PORT")
        if self.db is not None:
            await self.sample()
            self._sampler = asyncio.create_task(self._sample_loop(), name="metrics-sampler")
        log.info("metrics on http://%s:%d/metrics and /healthz", self.host, self.bound_port)

    async def stop(self) -> None:
        """Stop sampling and serving."""
        if self._sampler is not None:
            self._sampler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sampler
            self._sampler = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def sample(self) -> QueueSample | None:
        """Read the queues once and export them; a failure is remembered for /healthz."""
        if self.db is None:
            return None
        try:
            sample = await sample_queues(self.db)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - a metrics read must not stop the bot
            if self.last_error is None:
                log.warning("metrics: the database cannot be read (%s)", type(exc).__name__)
            self.last_error = type(exc).__name__
            return None
        self.last_error = None
        self.last_sample, self.last_sample_at = sample, time.monotonic()
        t = self.telemetry
        t.outbox_depth(sample.outbox_pending, sample.outbox_oldest_age)
        t.inbox_pending.set(sample.inbox_pending)
        t.inbox_oldest_age.set(sample.inbox_oldest_age)
        return sample

    async def _sample_loop(self) -> None:
        while True:
            await asyncio.sleep(self.sample_every)
            await self.sample()

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the bot is healthy, and the facts behind the answer."""
        now = time.monotonic()
        body: dict[str, Any] = {"uptime_s": round(now - self.started_at, 1)}
        problems: list[str] = []
        if self.connecting:
            problems.append("not connected to the Bot API yet (retrying)")
        elif not self.ready:
            problems.append("starting")
        if self.connecting or self.ready:
            body["telegram"] = "connecting" if self.connecting else "connected"
        if self.db is not None:
            if self.last_sample_at is None or now - self.last_sample_at > self.stale_after:
                problems.append(f"database unreadable ({self.last_error or 'no sample yet'})")
            if self.last_sample is not None:
                body["outbox_pending"] = self.last_sample.outbox_pending
                body["outbox_oldest_age_s"] = round(self.last_sample.outbox_oldest_age, 1)
                body["inbox_pending"] = self.last_sample.inbox_pending
                body["inbox_oldest_age_s"] = round(self.last_sample.inbox_oldest_age, 1)
        body["status"] = "ok" if not problems else "; ".join(problems)
        return not problems, body

    async def _metrics(self, request: web.Request) -> web.Response:
        from aiohttp import web
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        body = generate_latest(self.telemetry.registry)
        response = web.Response(body=body)
        # aiohttp refuses a content_type with parameters: set the header itself.
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def _healthz(self, request: web.Request) -> web.Response:
        from aiohttp import web

        ok, body = self.health()
        return web.Response(
            text=json.dumps(body), status=200 if ok else 503, content_type="application/json"
        )
