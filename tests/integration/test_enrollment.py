"""Enrollment and access control on a real database (every backend)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.domain import Role
from bot.errors import AccessDenied, EnrollmentError, NotFound, UserInputError
from bot.services.enrollment import Caller, EnrollmentService, hash_code
from storage.audit import AuditChain
from storage.db import Database
from storage.models import AuditEvent, Chat, EnrollmentCode, Operation, Person
from tests.support.fakes import Clock

ADMIN = Caller(user_id=1000, display_name="Admin", is_admin=True)
OFFICER = Caller(user_id=2001, display_name="Jean Baptiste")


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def service(db: Database, clock: Clock) -> EnrollmentService:
    return EnrollmentService(db, AuditChain(), admin_ids=[ADMIN.user_id], clock=clock)


async def _setup(service: EnrollmentService) -> None:
    await service.create_operation(ADMIN, "Kenscoff", default_language="fr")
    await service.add_unit(
        ADMIN, "Kenscoff", "PNH-UDMO-2", name="UDMO 2", side="pnh", language="ht"
    )
    await service.add_unit(ADMIN, "Kenscoff", "KE-3", name="Kenya 3", side="MSS", language="en")


async def _events(db: Database, event_type: str) -> list[AuditEvent]:
    async with db.transaction() as s:
        rows = await s.execute(select(AuditEvent).where(AuditEvent.event_type == event_type))
        return list(rows.scalars())


async def test_group_enrollment_and_person_join_happy_path(
    service: EnrollmentService, db: Database
) -> None:
    await _setup(service)
    chat_code = await service.issue_code(ADMIN, "kenscoff", kind="chat", unit="ke-3")
    assert chat_code.languages == ("en",)  # the unit's home language by default
    enrolled = await service.enroll_chat(
        OFFICER,
        chat_code.code.lower(),
        chat_id=-1001234567890,
        chat_title="KE-3 field",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    assert (enrolled.operation, enrolled.unit, enrolled.languages) == ("Kenscoff", "KE-3", ("en",))
    chat = await service.chat(-1001234567890)
    assert chat is not None
    assert chat.language_list == ["en"]

    person_code = await service.issue_code(
        ADMIN, "Kenscoff", kind="person", unit="PNH-UDMO-2", role="commander", languages="ht"
    )
    who = await service.join(OFFICER, person_code.code, chat_type="private")
    assert (who.role, who.unit, who.language, who.operation) == (
        Role.COMMANDER,
        "PNH-UDMO-2",
        "ht",
        "Kenscoff",
    )
    assert (await service.identity(OFFICER)).role is Role.COMMANDER
    # Audit: every admin action and enrollment is recorded.
    assert len(await _events(db, "enroll.chat")) == 1
    assert len(await _events(db, "enroll.person")) == 1
    assert len(await _events(db, "admin.code_issued")) == 2


async def test_mixed_group_code_keeps_both_languages(service: EnrollmentService) -> None:
    await _setup(service)
    code = await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3", languages="ht+en")
    result = await service.enroll_chat(
        OFFICER,
        code.code,
        chat_id=-55,
        chat_title="joint",
        chat_type="group",
        caller_is_chat_admin=True,
    )
    assert result.languages == ("ht", "en")


async def test_code_is_stored_hashed_only(service: EnrollmentService, db: Database) -> None:
    await _setup(service)
    code = await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    async with db.transaction() as s:
        stored = (await s.execute(select(EnrollmentCode))).scalar_one()
    assert stored.code_hash == hash_code(code.code)
    assert code.code not in stored.code_hash


async def test_reused_code_is_refused_and_audited(
    service: EnrollmentService, db: Database
) -> None:
    await _setup(service)
    code = await service.issue_code(ADMIN, "Kenscoff", kind="person", unit="KE-3", role="officer")
    await service.join(OFFICER, code.code, chat_type="private")
    other = Caller(user_id=3003, display_name="Someone")
    with pytest.raises(EnrollmentError) as err:
        await service.join(other, code.code, chat_type="private")
    assert err.value.key == "code.used"
    assert (await service.identity(other)).role is None
    refusals = await _events(db, "access.refused")
    assert [r.actor for r in refusals] == ["tg:3003"]
    assert '"code.used"' in refusals[0].payload


async def test_expired_code_is_refused(service: EnrollmentService, clock: Clock) -> None:
    await _setup(service)
    code = await service.issue_code(
        ADMIN, "Kenscoff", kind="chat", unit="KE-3", ttl=timedelta(hours=1)
    )
    clock.now += timedelta(hours=1, seconds=1)
    with pytest.raises(EnrollmentError) as err:
        await service.enroll_chat(
            OFFICER,
            code.code,
            chat_id=-7,
            chat_title="x",
            chat_type="group",
            caller_is_chat_admin=True,
        )
    assert err.value.key == "code.expired"
    assert await service.chat(-7) is None


async def test_unknown_and_malformed_codes(service: EnrollmentService) -> None:
    await _setup(service)
    for bad in ("DRJ-AAAA-BBBB", "'; DROP TABLE chats;--", "x" * 500, ""):
        with pytest.raises(EnrollmentError) as err:
            await service.join(OFFICER, bad, chat_type="private")
        assert err.value.key == "code.unknown"


async def test_wrong_kind_of_code(service: EnrollmentService) -> None:
    await _setup(service)
    chat_code = await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    with pytest.raises(EnrollmentError) as err:
        await service.join(OFFICER, chat_code.code, chat_type="private")
    assert err.value.key == "code.for_chat"
    # The code was not consumed by the failed attempt.
    await service.enroll_chat(
        OFFICER,
        chat_code.code,
        chat_id=-9,
        chat_title="x",
        chat_type="group",
        caller_is_chat_admin=True,
    )


async def test_enrolling_a_chat_twice_is_refused_without_using_the_code(
    service: EnrollmentService,
) -> None:
    await _setup(service)
    first = await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    second = await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="PNH-UDMO-2")
    await service.enroll_chat(
        OFFICER,
        first.code,
        chat_id=-11,
        chat_title="x",
        chat_type="group",
        caller_is_chat_admin=True,
    )
    with pytest.raises(EnrollmentError) as err:
        await service.enroll_chat(
            OFFICER,
            second.code,
            chat_id=-11,
            chat_title="x",
            chat_type="group",
            caller_is_chat_admin=True,
        )
    assert err.value.key == "enroll.already"
    # `second` is still usable elsewhere.
    await service.enroll_chat(
        OFFICER,
        second.code,
        chat_id=-12,
        chat_title="y",
        chat_type="group",
        caller_is_chat_admin=True,
    )


async def test_only_group_admins_enroll_and_only_admins_administer(
    service: EnrollmentService, db: Database, clock: Clock
) -> None:
    await _setup(service)
    code = await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    with pytest.raises(AccessDenied):
        await service.enroll_chat(
            OFFICER,
            code.code,
            chat_id=-13,
            chat_title="x",
            chat_type="group",
            caller_is_chat_admin=False,
        )
    with pytest.raises(AccessDenied):
        await service.issue_code(OFFICER, "Kenscoff", kind="chat", unit="KE-3")
    with pytest.raises(AccessDenied):
        await service.create_operation(OFFICER, "Furcy")
    # Audited in aggregate: the second "admins only" refusal within the window is counted and
    # written, with its count, once the window is over.
    assert len(await _events(db, "access.refused")) == 2
    clock.now += timedelta(minutes=11)
    assert await service.flush_refusals() == 1
    refused = await _events(db, "access.refused")
    assert sum(json.loads(e.payload)["count"] for e in refused) == 3
    # Nothing half-written: no chat row, and the code is still unused.
    async with db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(Chat))).scalar_one() == 0
        assert (await s.execute(select(EnrollmentCode.used_at))).scalar_one() is None


async def test_enrollment_requires_the_right_chat_type(service: EnrollmentService) -> None:
    await _setup(service)
    code = await service.issue_code(ADMIN, "Kenscoff", kind="person", unit="KE-3", role="officer")
    with pytest.raises(EnrollmentError) as err:
        await service.join(OFFICER, code.code, chat_type="group")
    assert err.value.key == "join.only_private"


async def test_an_unknown_time_zone_is_refused_and_not_stored(
    db: Database, service: EnrollmentService
) -> None:
    with pytest.raises(UserInputError) as err:
        await service.create_operation(ADMIN, "Olympus", timezone="Mars/Olympus")
    assert err.value.key == "error.bad_timezone"
    assert "'Mars/Olympus' is not a known time zone" in str(err.value)
    for empty in ("", "  "):
        with pytest.raises(UserInputError) as err:
            await service.create_operation(ADMIN, "Olympus", timezone=empty)
        assert err.value.key == "error.bad_timezone"
    op = await service.create_operation(ADMIN, "Nairobi", timezone="Africa/Nairobi")
    assert op.timezone == "Africa/Nairobi"
    async with db.transaction() as s:
        assert await s.scalar(select(func.count()).select_from(Operation)) == 1


async def test_admin_input_validation(service: EnrollmentService) -> None:
    await _setup(service)
    with pytest.raises(UserInputError):
        await service.create_operation(ADMIN, "Kenscoff")  # exists
    with pytest.raises(UserInputError):
        await service.add_unit(ADMIN, "Kenscoff", "X 1", name="", side="PNH", language="ht")
    with pytest.raises(UserInputError):
        await service.add_unit(ADMIN, "Kenscoff", "X1", name="", side="UN", language="ht")
    with pytest.raises(UserInputError):
        await service.add_unit(ADMIN, "Kenscoff", "X1", name="", side="PNH", language="es")
    with pytest.raises(NotFound):
        await service.issue_code(ADMIN, "Nowhere", kind="chat", unit="KE-3")
    with pytest.raises(NotFound):
        await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-99")
    with pytest.raises(UserInputError):
        await service.issue_code(ADMIN, "Kenscoff", kind="person", unit="KE-3", role="general")
    with pytest.raises(UserInputError):
        await service.issue_code(ADMIN, "Kenscoff", kind="person", unit="KE-3", role="admin")


async def test_language_choice(service: EnrollmentService, db: Database) -> None:
    assert await service.set_language(OFFICER, "SW") == "sw"
    assert (await service.identity(OFFICER)).language == "sw"
    assert (await service.identity(OFFICER)).role is None
    with pytest.raises(UserInputError) as err:
        await service.set_language(OFFICER, "klingon")
    assert err.value.key == "lang.unsupported"
    async with db.transaction() as s:
        person = (await s.execute(select(Person))).scalar_one()
    assert person.language == "sw"


async def test_migration_keeps_enrollment(service: EnrollmentService) -> None:
    await _setup(service)
    code = await service.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    await service.enroll_chat(
        OFFICER,
        code.code,
        chat_id=-20,
        chat_title="x",
        chat_type="group",
        caller_is_chat_admin=True,
    )
    assert await service.migrate_chat(-20, -100200)
    assert await service.chat(-20) is None
    migrated = await service.chat(-100200)
    assert migrated is not None
    assert migrated.chat_type == "supergroup"
