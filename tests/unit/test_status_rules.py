"""The status rules without a database: a unit that has not reported within the interval
is alerted once per lapse, to the commanders' chats (else each commander privately), in
their language, queued in the commit that records the lapse; off-duty units never are. A
SITREP is stored with its copies to the partner groups; a refused SITREP or /status is
audited once and changes nothing. Each test runs on a `FakeUnitOfWork` in milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import AccessDenied, NotFound, StorageError
from bot.i18n import I18n, load_i18n
from bot.services.board import Location
from bot.services.sitrep import SitrepInput
from bot.services.status import StatusService
from storage.status_repo import Report
from tests.support.fakes import Clock, FakeTranslator
from tests.support.uow import AuditRecord, FakeStore, other_integrity_error


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


@pytest.fixture
def world(i18n: I18n) -> dict[str, Any]:
    """Two unit groups enrolled now, interval one hour, commanders' chat in French."""
    clock = Clock()
    store = FakeStore()
    op = store.operation(report_interval_min=60)
    units = {}
    for code, side, lang, chat_id in (("PNH-1", "PNH", "ht", -101), ("KE-1", "MSS", "en", -102)):
        units[code] = store.unit(op, code, side, lang)
        store.chat(op, chat_id, lang, unit=units[code], enrolled_at=clock())
    service = StatusService(
        None,  # type: ignore[arg-type]  # no database: every call goes through the fake
        None,  # type: ignore[arg-type]
        FakeTranslator(),  # type: ignore[arg-type]
        i18n,
        clock=clock,
        uow=store.factory(),
    )
    return {"store": store, "service": service, "clock": clock, "op": op, "units": units}


def _report(world: dict[str, Any], code: str, status: str = "in_position") -> None:
    store: FakeStore = world["store"]
    store.reports.append(
        Report(
            id=store.next_id(),
            operation_id=world["op"].id,
            unit_id=world["units"][code].id,
            chat_id=0,
            status=status,
            created_at=world["clock"](),
        )
    )


async def test_a_lapse_is_alerted_once_to_the_commanders_chat_in_its_language(
    world: dict[str, Any], i18n: I18n
) -> None:
    store: FakeStore = world["store"]
    service: StatusService = world["service"]
    clock: Clock = world["clock"]
    store.chat(world["op"], -199, "fr", is_command=True)
    _report(world, "KE-1")
    clock.advance(minutes=60)
    assert await service.check_staleness(clock()) == []  # on time, just
    clock.advance(minutes=1)
    (alert,) = await service.check_staleness(clock())
    assert alert.chat_id == -199
    assert alert.text.startswith(i18n.t("stale.alert", "fr", operation="Kenscoff", interval=60))
    assert "PNH-1" in alert.text
    assert "KE-1" in alert.text
    assert [(r.telegram_chat_id, r.kind) for r in store.notices] == [(-199, "status.stale_alert")]
    assert sorted(a.lapse for a in store.alerts) == sorted(["none", f"r{store.reports[0].id}"])
    assert len(store.events_of("status.stale_alert")) == 1
    clock.advance(minutes=30)
    assert await service.check_staleness(clock()) == []  # no alert storm
    _report(world, "KE-1")  # reports, then lapses again: a new lapse
    clock.advance(minutes=61)
    (again,) = await service.check_staleness(clock())
    assert "KE-1" in again.text
    assert "PNH-1" not in again.text


async def test_without_a_commanders_chat_each_commander_is_told_privately(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    store.person(world["op"], 3001, "commander", language="sw")
    store.person(world["op"], 3002, "officer", language="en")
    world["clock"].advance(minutes=61)
    (alert,) = await world["service"].check_staleness(world["clock"]())
    assert alert.chat_id == 3001
    assert "PNH-1" in alert.text


async def test_nobody_to_tell_records_nothing_so_the_lapse_is_alerted_later(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    world["clock"].advance(minutes=61)
    assert await world["service"].check_staleness(world["clock"]()) == []
    assert store.alerts == []
    store.person(world["op"], 3001, "commander")
    assert len(await world["service"].check_staleness(world["clock"]())) == 1


async def test_an_off_duty_unit_is_never_late(world: dict[str, Any]) -> None:
    _report(world, "PNH-1", status="off_duty")
    _report(world, "KE-1", status="off_duty")
    world["store"].person(world["op"], 3001, "commander")
    world["clock"].advance(hours=5)
    assert await world["service"].check_staleness(world["clock"]()) == []


async def test_a_sitrep_the_database_refuses_is_told_to_the_sender(world: dict[str, Any]) -> None:
    """Not taken for a replay (which stays silent): the officer is told it was not filed."""
    store: FakeStore = world["store"]
    store.failures["messages.add"] = other_integrity_error()
    with pytest.raises(StorageError) as refused:
        await world["service"].file_report(
            telegram_chat_id=-101,
            telegram_message_id=40,
            author_id=None,
            author_name="Jean",
            sitrep=SitrepInput("in_contact", Location(18.45, -72.28), 12),
        )
    assert refused.value.key == "sitrep.not_filed"
    assert store.reports == []
    assert store.events_of("sitrep.filed") == []


def _unchanged(store: FakeStore) -> tuple[int, int, int, int, int]:
    """What a refused command must leave as it was (the audit log aside)."""
    sizes = (store.messages, store.reports, store.deliveries, store.notices, store.alerts)
    return tuple(len(rows) for rows in sizes)  # type: ignore[return-value]


def _only_refusal(store: FakeStore, event_type: str, actor: str, **payload: Any) -> AuditRecord:
    """The one audit event a refused command left: a refusal, with this payload."""
    (event,) = store.events
    assert (event.event_type, event.actor, event.outcome) == (event_type, actor, "refused")
    assert event.payload == payload
    return event


async def test_a_sitrep_is_stored_and_queued_translated_to_the_partner_group(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    woken: list[int] = []
    world["service"].on_queued = lambda: woken.append(1)
    store.person(world["op"], 4001, "officer", language="ht", unit=world["units"]["PNH-1"])
    filed = await world["service"].file_report(
        telegram_chat_id=-101,
        telegram_message_id=40,
        author_id=4001,
        author_name="Jean",
        sitrep=SitrepInput("in_contact", Location(18.45, -72.28), 12, needs="dlo"),
    )
    assert not filed.duplicate
    assert filed.unit == "PNH-1"
    (report,) = store.reports
    assert (report.id, report.status, report.strength) == (filed.report_id, "in_contact", 12)
    # One copy, to the partner group only (never back to the reporting group).
    ke1 = next(c for c in store.chats.values() if c.telegram_chat_id == -102)
    assert filed.deliveries == 1
    assert [(d.message_id, d.target_chat_id) for d in store.deliveries] == [
        (filed.message_id, ke1.id)
    ]
    # The free text is translated into every other language, ready for any group's copy.
    assert {(m, lang, tr.text) for m, _rev, lang, tr in store.translations} == {
        (filed.message_id, lang, f"[{lang}] dlo") for lang in ("fr", "en", "sw")
    }
    assert len(store.events_of("sitrep.filed")) == 1
    assert woken == [1]  # the outbox worker is told at once


async def test_a_sitrep_for_another_unit_is_refused_audited_once_and_stores_nothing(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    store.person(world["op"], 4002, "officer", unit=world["units"]["KE-1"])
    before = _unchanged(store)
    with pytest.raises(AccessDenied) as refused:
        await world["service"].file_report(
            telegram_chat_id=-101,
            telegram_message_id=41,
            author_id=4002,
            author_name="Otieno",
            sitrep=SitrepInput("at_position", Location(18.45, -72.28), 8),
        )
    assert refused.value.key == "sitrep.other_unit"
    assert _unchanged(store) == before
    event = _only_refusal(
        store, "sitrep.refused", "tg:4002", reason="sitrep.other_unit", chat_id=-101
    )
    assert event.operation_id == world["op"].id


async def test_status_for_a_person_of_no_operation_is_refused_audited_once_changing_nothing(
    world: dict[str, Any],
) -> None:
    """With two operations, someone enrolled in neither cannot be shown either board."""
    store: FakeStore = world["store"]
    store.operation("Artibonite")
    _report(world, "KE-1")
    before = _unchanged(store)
    with pytest.raises(NotFound) as refused:
        await world["service"].board_pages(5005, "en", 5005)
    assert refused.value.key == "status.no_operation"
    assert _unchanged(store) == before
    event = _only_refusal(
        store, "status.refused", "tg:5005", reason="status.no_operation", chat_id=5005
    )
    assert event.operation_id is None
    assert (store.rollbacks, store.commits) == (1, 1)  # the read rolled back, the audit kept


async def test_status_of_an_unknown_unit_is_refused_and_filed_under_the_operation(
    world: dict[str, Any],
) -> None:
    store: FakeStore = world["store"]
    store.chat(world["op"], -199, "fr", is_command=True)
    store.person(world["op"], 3001, "commander", language="fr")
    with pytest.raises(NotFound) as refused:
        await world["service"].unit_pages(3001, "KE-9", "fr", -199)
    assert (refused.value.key, refused.value.params["unit"]) == ("error.unknown_unit", "KE-9")
    event = _only_refusal(store, "status.refused", "tg:3001", reason="unknown_unit", chat_id=-199)
    assert event.operation_id == world["op"].id
    # A unit that exists is shown, and nothing more is audited as refused.
    (page,) = await world["service"].unit_pages(3001, "KE-1", "fr", -199)
    assert "KE-1" in page
    assert len(store.events) == 1
