"""Prometheus metrics and /healthz, scraped over HTTP in-process as Prometheus would."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.observability.metrics import MetricsServer, PrometheusTelemetry, Tee
from bot.observability.telemetry import Telemetry
from storage.db import Database
from storage.models import Delivery, InboxUpdate, utcnow
from tests.support.db_seed import seed_operation
from translation.types import Flag, Route, Translation


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _t(source: str, target: str, route: Route, *flags: Flag) -> Translation:
    return Translation(
        text="…", source=source, target=target, source_decided_by="given", route=route,
        flags=flags,
    )  # fmt: skip


def samples(text: str) -> dict[str, float]:
    """Prometheus text format → {"name{labels}": value}."""
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


@pytest.fixture
async def served() -> AsyncIterator[tuple[PrometheusTelemetry, MetricsServer, Clock]]:
    clock = Clock()
    telemetry = PrometheusTelemetry(mode="webhook", clock=clock)
    server = MetricsServer(telemetry, None, port=0)
    await server.start()
    try:
        yield telemetry, server, clock
    finally:
        await server.stop()


async def scrape(server: MetricsServer, path: str = "/metrics") -> httpx.Response:
    async with httpx.AsyncClient(timeout=5) as http:
        return await http.get(f"http://127.0.0.1:{server.bound_port}{path}")


async def test_relay_observations_are_exported(
    served: tuple[PrometheusTelemetry, MetricsServer, Clock],
) -> None:
    telemetry, server, clock = served
    telemetry.updates_fetched([11, 12], clock.now)
    clock.now += 0.4
    telemetry.update_processed(11, 0.3, ok=True)
    telemetry.update_processed(12, 0.1, ok=False)
    telemetry.message_translated(
        11,
        0.2,
        {
            "en": _t("ht", "en", Route.DIRECT),
            "sw": _t("ht", "sw", Route.PIVOT, Flag.LOW_CONFIDENCE, Flag.SPAN_REPAIRED),
            "ht": _t("ht", "ht", Route.SAME),
        },
    )
    telemetry.message_queued(11, 1, 3)
    telemetry.message_queued(12, 2, 0)  # recorded, nothing to relay
    telemetry.copy_sent(1, 1, clock.now)
    telemetry.copy_failed(2, "Forbidden")
    telemetry.rate_limited(-100, 3.0)
    telemetry.outbox_depth(7, 42.0)

    response = await scrape(server)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=")
    m = samples(response.text)
    assert m['daraja_info{mode="webhook"}'] == 1
    assert m["daraja_updates_received_total"] == 2
    assert m['daraja_updates_processed_total{outcome="ok"}'] == 1
    assert m['daraja_updates_processed_total{outcome="failed"}'] == 1
    assert m["daraja_messages_relayed_total"] == 1
    assert m["daraja_copies_queued_total"] == 3
    assert m["daraja_copies_sent_total"] == 1
    assert m['daraja_copies_failed_total{reason="Forbidden"}'] == 1
    assert m["daraja_telegram_rate_limited_total"] == 1
    # Latency per pair and route; a target already in its language is counted, not timed.
    assert m['daraja_translation_seconds_count{pair="ht-en",route="direct"}'] == 1
    assert m['daraja_translation_seconds_sum{pair="ht-sw",route="pivot"}'] == pytest.approx(0.2)
    assert 'daraja_translation_seconds_count{pair="ht-ht",route="same"}' not in m
    assert m['daraja_translations_total{pair="ht-ht",route="same"}'] == 1
    assert m['daraja_translations_flagged_total{flag="low_confidence",pair="ht-sw"}'] == 1
    assert m['daraja_translations_flagged_total{flag="span_repaired",pair="ht-sw"}'] == 1
    assert m["daraja_outbox_pending"] == 7
    assert m["daraja_outbox_oldest_age_seconds"] == 42
    # Inbox lag: committed at t, processed 0.4 s later (12 was processed at the same time).
    assert m["daraja_inbox_lag_seconds_count"] == 2
    assert m['daraja_inbox_lag_seconds_bucket{le="0.25"}'] == 0
    assert m['daraja_inbox_lag_seconds_bucket{le="0.5"}'] == 2


async def test_update_resumed_after_restart_is_not_timed(
    served: tuple[PrometheusTelemetry, MetricsServer, Clock],
) -> None:
    telemetry, server, _clock = served
    telemetry.update_processed(99, 0.1, ok=True)  # never seen arriving: from the inbox
    m = samples((await scrape(server)).text)
    assert m['daraja_updates_processed_total{outcome="ok"}'] == 1
    assert m["daraja_inbox_lag_seconds_count"] == 0


async def test_healthz_is_503_until_the_bot_is_ready(
    served: tuple[PrometheusTelemetry, MetricsServer, Clock],
) -> None:
    _telemetry, server, _clock = served
    starting = await scrape(server, "/healthz")
    assert starting.status_code == 503
    assert starting.json()["status"] == "starting"
    server.ready = True
    ready = await scrape(server, "/healthz")
    assert ready.status_code == 200
    assert ready.json()["status"] == "ok"


def test_each_telemetry_has_its_own_registry() -> None:
    a, b = PrometheusTelemetry(), PrometheusTelemetry()
    a.copy_sent(1, 1, 0.0)
    assert a.registry.get_sample_value("daraja_copies_sent_total") == 1
    assert b.registry.get_sample_value("daraja_copies_sent_total") == 0


def test_tee_forwards_every_observation() -> None:
    class Recorder(Telemetry):
        def __init__(self) -> None:
            self.calls: list[str] = []

        def __getattribute__(self, name: str) -> Any:
            if name in Telemetry.__dict__ and not name.startswith("_"):
                calls = object.__getattribute__(self, "calls")
                return lambda *a, **k: calls.append(name)
            return object.__getattribute__(self, name)

    recorder = Recorder()
    prometheus = PrometheusTelemetry()
    tee = Tee(prometheus, recorder)
    tee.updates_fetched([1], 0.0)
    tee.update_processed(1, 0.1, True)
    tee.message_translated(1, 0.1, {})
    tee.message_queued(1, 1, 2)
    tee.copy_claimed(1, 1, 0.0)
    tee.copy_posted(1, 1, 0.0)
    tee.copy_sent(1, 1, 0.0)
    tee.copy_failed(1, "x")
    tee.rate_limited(1, 1.0)
    tee.outbox_depth(1, 1.0)
    assert recorder.calls == [n for n in Telemetry.__dict__ if not n.startswith("_")]
    assert prometheus.registry.get_sample_value("daraja_copies_queued_total") == 2


async def test_queues_are_sampled_from_the_database(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/m.db")
    await db.upgrade()
    now = utcnow()
    async with db.transaction() as s:
        seeded = await seed_operation(s, chats=3)
        for i, (state, age) in enumerate(
            [("pending", 90), ("sending", 30), ("sent", 500), ("failed", 800)]
        ):
            s.add(
                Delivery(
                    message_id=seeded.message_id, target_chat_id=seeded.chat_ids[1 + i % 2],
                    revision=i, target_language="en", state=state,
                    created_at=now - timedelta(seconds=age),
                )
            )  # fmt: skip
        for update_id, (state, age) in enumerate([("new", 12), ("new", 3), ("done", 99)]):
            s.add(
                InboxUpdate(
                    update_id=update_id, payload="{}", state=state,
                    received_at=now - timedelta(seconds=age),
                )
            )  # fmt: skip
    telemetry = PrometheusTelemetry()
    server = MetricsServer(telemetry, db, port=0)
    await server.start()  # samples once at start
    try:
        server.ready = True
        m = samples((await scrape(server)).text)
        health = await scrape(server, "/healthz")
    finally:
        await server.stop()
        await db.dispose()
    assert m["daraja_outbox_pending"] == 2
    assert 90 <= m["daraja_outbox_oldest_age_seconds"] < 120
    assert m["daraja_inbox_pending"] == 2
    assert 12 <= m["daraja_inbox_oldest_age_seconds"] < 40
    assert health.status_code == 200
    assert health.json()["outbox_pending"] == 2


async def test_unreadable_database_turns_healthz_503(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/empty.db")  # never migrated: no tables
    server = MetricsServer(PrometheusTelemetry(), db, port=0)
    await server.start()
    try:
        server.ready = True
        health = await scrape(server, "/healthz")
    finally:
        await server.stop()
        await db.dispose()
    assert health.status_code == 503
    assert "database unreadable" in health.json()["status"]
