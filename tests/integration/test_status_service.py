"""SITREPs, the board, /where, /who and staleness alerts on a real database (fake translator,
controllable clock)."""

from __future__ import annotations

from functools import partial
from typing import Any

import pytest
from sqlalchemy import select

from bot.errors import AccessDenied, DarajaError, NotFound, UserInputError
from bot.i18n import I18n, load_i18n
from bot.services.board import Location
from bot.services.enrollment import Caller, EnrollmentService
from bot.services.sitrep import ReportDrafts, SitrepInput
from bot.services.status import StatusService
from storage.audit import AuditChain
from storage.db import Database
from storage.models import AuditEvent, Delivery, Message, TranslationRow, utcnow
from storage.notices import NoticeRepo
from storage.status_repo import Report
from storage.uow import UnitOfWork
from tests.support.fakes import Clock, FakeTranslator
from tests.support.operation import ADMIN, enroll_operation

COMMANDER = Caller(user_id=3001, display_name="Cmdt Pierre")


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return load_i18n()


@pytest.fixture
async def world(db: Database, i18n: I18n) -> dict[str, Any]:
    audit = AuditChain()
    # Groups are enrolled at the real time (the enrollment rows stamp it): start there.
    clock = Clock(utcnow())
    enrollment = EnrollmentService(db, audit, admin_ids=[ADMIN.user_id], clock=clock)
    op = await enroll_operation(enrollment)
    code = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="chat", is_command=True, languages="fr"
    )
    await enrollment.enroll_chat(
        ADMIN,
        code.code,
        chat_id=-1099,
        chat_title="CMD",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    person = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="person", role="commander", languages="en"
    )
    await enrollment.join(COMMANDER, person.code, chat_type="private")
    translator = FakeTranslator()
    service = StatusService(db, audit, translator, i18n, clock=clock)
    return {
        "service": service,
        "clock": clock,
        "chats": op.chats,
        "tr": translator,
        "enrollment": enrollment,
    }


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.transaction() as s:
        return list((await s.execute(select(model))).scalars())


def _sitrep(**kw: Any) -> SitrepInput:
    base: dict[str, Any] = {
        "status": "at_position",
        "location": Location(None, None, "Kenscoff"),
        "strength": 12,
        "needs": "dlo ak minisyon",
        "remarks": "wout la bloke",
    }
    base.update(kw)
    return SitrepInput(**base)


async def _file(world: dict[str, Any], unit: str, message_id: int, **kw: Any) -> Any:
    return await world["service"].file_report(
        telegram_chat_id=world["chats"][unit],
        telegram_message_id=message_id,
        author_id=2001,
        author_name="Jean",
        sitrep=_sitrep(**kw),
    )


async def test_a_sitrep_is_stored_translated_and_relayed_to_every_partner_group(
    world: dict[str, Any], db: Database
) -> None:
    filed = await _file(world, "PNH-UDMO-2", 10)
    # Three partner units and the commanders' chat each get one copy.
    assert filed.deliveries == 4
    reports = await _rows(db, Report)
    assert len(reports) == 1
    report = reports[0]
    assert (report.status, report.place, report.strength) == ("at_position", "Kenscoff", 12)
    assert (report.latitude, report.longitude) == (18.45, -72.283)
    assert report.text_language == "ht"
    assert report.translations["en"]["needs"] == "[en] dlo ak minisyon"
    assert report.translations["sw"]["remarks"] == "[sw] wout la bloke"
    message = (await _rows(db, Message))[0]
    assert message.kind == "sitrep"
    assert message.media["sitrep"]["status"] == "at_position"
    assert {t.target_language for t in await _rows(db, TranslationRow)} == {"fr", "en", "sw"}
    assert sorted(d.target_language for d in await _rows(db, Delivery)) == ["en", "fr", "fr", "sw"]
    events = [e.event_type for e in await _rows(db, AuditEvent)]
    assert events.count("sitrep.filed") == 1


async def test_the_same_update_filed_twice_is_stored_once(
    world: dict[str, Any], db: Database
) -> None:
    await _file(world, "KE-3", 20)
    again = await _file(world, "KE-3", 20)
    assert again.duplicate
    assert len(await _rows(db, Report)) == 1


@pytest.mark.parametrize(
    ("sitrep", "key"),
    [
        ({"location": Location(95.0, 200.0, None)}, "sitrep.bad_coordinate"),
        ({"location": Location(0.0, 0.0, None)}, "sitrep.bad_coordinate"),
        ({"strength": -3}, "sitrep.bad_strength"),
        ({"status": "sleeping"}, "sitrep.bad_status"),
    ],
)
async def test_bad_sitreps_are_refused_audited_and_nothing_is_stored(
    world: dict[str, Any], db: Database, sitrep: dict[str, Any], key: str
) -> None:
    with pytest.raises(UserInputError) as err:
        await _file(world, "KE-3", 30, **sitrep)
    assert err.value.key == key
    assert await _rows(db, Report) == []
    assert await _rows(db, Message) == []
    assert await _rows(db, Delivery) == []
    refused = [e for e in await _rows(db, AuditEvent) if e.event_type == "sitrep.refused"]
    assert len(refused) == 1
    assert refused[0].outcome == "refused"


async def test_a_sitrep_from_an_unenrolled_chat_or_the_command_chat_is_refused(
    world: dict[str, Any], db: Database
) -> None:
    service: StatusService = world["service"]
    with pytest.raises(AccessDenied):
        await service.file_report(
            telegram_chat_id=-4242,
            telegram_message_id=1,
            author_id=1,
            author_name="X",
            sitrep=_sitrep(),
        )
    with pytest.raises(UserInputError) as err:
        await service.file_report(
            telegram_chat_id=-1099,
            telegram_message_id=1,
            author_id=1,
            author_name="X",
            sitrep=_sitrep(),
        )
    assert err.value.key == "sitrep.not_unit_chat"
    assert await _rows(db, Report) == []
    events = [e.event_type for e in await _rows(db, AuditEvent)]
    assert events.count("sitrep.refused") == 2


async def test_an_officer_of_another_unit_cannot_report_for_this_one(
    world: dict[str, Any], db: Database
) -> None:
    enrollment: EnrollmentService = world["enrollment"]
    code = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="person", role="officer", unit="KE-3"
    )
    await enrollment.join(Caller(2001, "Jean"), code.code, chat_type="private")
    with pytest.raises(AccessDenied):
        await _file(world, "PNH-UDMO-2", 40)
    assert await _rows(db, Report) == []


async def test_one_line_form_parses_status_place_strength_needs_and_remarks(
    world: dict[str, Any],
) -> None:
    service: StatusService = world["service"]
    chat = world["chats"]["PNH-UDMO-2"]
    parsed = await service.parse_line(
        chat, "an_pozisyon kenscoff 8 dlo | tout bagay anfòm", actor=1
    )
    assert parsed.status == "at_position"
    assert parsed.location.place == "Kenscoff"
    assert parsed.strength == 8
    assert (parsed.needs, parsed.remarks) == ("dlo", "tout bagay anfòm")
    parsed = await service.parse_line(chat, "3 18.5392,-72.3364 0", actor=1)
    assert parsed.status == "in_contact"
    assert (parsed.location.latitude, parsed.location.longitude) == (18.5392, -72.3364)
    with pytest.raises(DarajaError) as err:
        await service.parse_line(chat, "1 Atlantis 4", actor=1)
    assert err.value.key == "sitrep.bad_location"
    assert "Kenscoff" in err.value.params["places"]


async def test_board_shows_every_unit_in_the_readers_language_and_marks_stale_ones(
    world: dict[str, Any], i18n: I18n
) -> None:
    service: StatusService = world["service"]
    clock: Clock = world["clock"]
    await _file(world, "PNH-UDMO-2", 50, status="in_contact")
    clock.advance(minutes=30)
    await _file(world, "KE-3", 51, needs="en: water", remarks="")
    clock.advance(minutes=45)  # UDMO's report is now 75 min old: past the 60 min interval
    board = await service.board(COMMANDER.user_id)
    by_code = {row.code: row for row in board.rows}
    assert set(by_code) == {"PNH-UDMO-2", "PNH-CMD", "KE-3", "KE-SW-1"}
    assert by_code["PNH-UDMO-2"].stale
    assert not by_code["KE-3"].stale
    assert by_code["KE-SW-1"].report is None
    assert by_code["KE-SW-1"].stale  # enrolled 75 min ago and never reported
    pages = await service.board_pages(COMMANDER.user_id, "fr")
    assert len(pages) == 1
    page = pages[0]
    assert i18n.t("status.in_contact", "fr") in page
    assert i18n.t("board.stale", "fr") in page
    assert "[fr] en: water" in page  # needs translated for the French reader
    assert "45 minutes" in page


async def test_status_of_one_unit_shows_recent_reports_with_their_original(
    world: dict[str, Any],
) -> None:
    service: StatusService = world["service"]
    await _file(world, "PNH-UDMO-2", 60)
    world["clock"].advance(minutes=10)
    await _file(world, "PNH-UDMO-2", 61, status="returning", needs="", remarks="")
    pages = await service.unit_pages(COMMANDER.user_id, "pnh-udmo-2", "en")
    text = "\n".join(pages)
    assert text.index("returning") < text.index("at position")  # newest first
    assert "[en] dlo ak minisyon" in text
    assert "dlo ak minisyon</blockquote>" in text or "dlo ak minisyon" in text
    with pytest.raises(NotFound):
        await service.unit_pages(COMMANDER.user_id, "ZZ-9", "en")


async def test_where_and_who_answer_in_the_readers_language(world: dict[str, Any]) -> None:
    service: StatusService = world["service"]
    await _file(world, "KE-3", 70, location=Location(18.5392, -72.3364, None))
    world["clock"].advance(minutes=12)
    line = await service.where(COMMANDER.user_id, "KE-3", "ht")
    assert "18.5392, -72.3364" in line
    assert "12 minit" in line
    assert "an pozisyon" in line
    assert "poko" in await service.where(COMMANDER.user_id, "KE-SW-1", "ht")
    units = {u.code: u for u in await service.who(COMMANDER.user_id)}
    assert units["KE-SW-1"].languages == ("sw",)
    assert units["PNH-CMD"].side == "PNH"


async def test_staleness_alerts_once_per_lapse_in_the_command_chats_language(
    world: dict[str, Any], db: Database
) -> None:
    service: StatusService = world["service"]
    clock: Clock = world["clock"]
    await _file(world, "KE-3", 80)
    clock.advance(minutes=30)
    assert await service.check_staleness(clock()) == []  # nobody is late yet
    clock.advance(minutes=31)  # 61 min: every unit is late (three never reported)
    sent = await service.check_staleness(clock())
    assert len(sent) == 1
    assert sent[0].chat_id == -1099
    assert "Compte rendu en retard" in sent[0].text
    for code in ("KE-3", "KE-SW-1", "PNH-CMD", "PNH-UDMO-2"):
        assert code in sent[0].text
    clock.advance(minutes=5)
    assert await service.check_staleness(clock()) == []  # no alert storm
    await _file(world, "KE-3", 81)  # KE-3 reports, then lapses again
    clock.advance(minutes=61)
    again = await service.check_staleness(clock())
    assert len(again) == 1
    assert "KE-3" in again[0].text
    assert "KE-SW-1" not in again[0].text
    events = [e for e in await _rows(db, AuditEvent) if e.event_type == "status.stale_alert"]
    assert len(events) == 2


async def test_an_alert_is_queued_durably_with_the_lapse_it_records(
    world: dict[str, Any], db: Database
) -> None:
    """The alert waits in the notice outbox (posted and retried by the worker); the lapse is
    recorded as alerted in the same commit, so the next check does not queue it again."""
    service: StatusService = world["service"]
    clock: Clock = world["clock"]
    clock.advance(minutes=61)
    queued = await service.check_staleness(clock())
    assert len(queued) == 1
    async with db.transaction() as s:
        rows = list(await NoticeRepo(s).of_kind("status.stale_alert"))
    assert [(r.telegram_chat_id, r.state, r.text) for r in rows] == [
        (queued[0].chat_id, "pending", queued[0].text)
    ]
    assert await service.check_staleness(clock()) == []


async def test_a_sitrep_wizard_in_progress_survives_a_restart(db: Database) -> None:
    """The answers given so far are stored: a new process reads them back and the person's
    next answer carries on at the same question; a filed or cancelled draft is gone."""
    clock = Clock(utcnow())
    before = ReportDrafts(partial(UnitOfWork, db, AuditChain()), clock=clock)
    draft = before.start(-1001, 4001)
    draft.status = "in_position"
    draft.location = Location(18.54, -72.34, "Kenscoff")
    draft.step = "strength"
    draft.prompt_message_id = 321
    await before.save(draft)
    await before.save(before.start(-1001, 4002))
    await before.discard(-1001, 4002)

    after = ReportDrafts(
        partial(UnitOfWork, db, AuditChain()), clock=clock
    )  # the restarted process
    assert await after.load() == 1
    assert after.waiting_for_input(-1001, 4001)
    assert not after.waiting_for_input(-1001, 4002)
    resumed = after.get(-1001, 4001)
    assert resumed is not None
    assert (resumed.step, resumed.status, resumed.prompt_message_id) == (
        "strength",
        "in_position",
        321,
    )
    assert resumed.location == Location(18.54, -72.34, "Kenscoff")
    clock.advance(hours=2)  # past the timeout: not resumed
    assert await ReportDrafts(partial(UnitOfWork, db, AuditChain()), clock=clock).load() == 0


async def test_a_zone_stored_unknown_by_an_older_version_still_renders_the_board_in_utc(
    world: dict[str, Any], db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    from sqlalchemy import update

    from storage.models import Operation

    async with db.transaction() as s:
        await s.execute(update(Operation).values(timezone="Mars/Olympus"))
    await _file(world, "KE-3", 52, status="in_contact")
    service: StatusService = world["service"]
    with caplog.at_level("WARNING", logger="bot.rendering.formatting"):
        pages = await service.board_pages(COMMANDER.user_id, "en")
        await service.board_pages(COMMANDER.user_id, "fr")
    assert "UTC" in pages[0]
    assert "UTC-5" not in pages[0]
    assert sum("Mars/Olympus" in r.getMessage() for r in caplog.records) <= 1
