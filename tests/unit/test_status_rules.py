"""The staleness rule without a database: a unit that has not reported within the interval
is alerted once per lapse, to the commanders' chats (else each commander privately), in
their language, queued in the commit that records the lapse; off-duty units never are. Each
test runs on a `FakeUnitOfWork` in milliseconds."""

from __future__ import annotations

from typing import Any

import pytest

from bot.errors import StorageError
from bot.i18n import I18n, load_i18n
from bot.services.board import Location
from bot.services.sitrep import SitrepInput
from bot.services.status import StatusService
from storage.status_repo import Report
from tests.support.fakes import Clock, FakeTranslator
from tests.support.uow import FakeStore, other_integrity_error


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
