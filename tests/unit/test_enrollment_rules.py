"""The enrollment rules without a database: a person code gives its role once, a used or
unknown code is refused and the refusal audited (after the rollback, so nothing of the refused
attempt stays), wrong codes lock a person out, and only admins issue codes. Each test runs on
a `FakeUnitOfWork` in milliseconds; tests/integration/test_enrollment.py runs the same service
on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.domain import Role
from bot.errors import AccessDenied, EnrollmentError, TooManyAttempts
from bot.services.enrollment import Caller, EnrollmentService, hash_code
from bot.services.limits import CodeLimits
from tests.support.fakes import Clock
from tests.support.uow import FakeStore

CODE = "DRJ-7KQ4-M9XT"
ADMIN = 1
OFFICER = Caller(user_id=2001, display_name="Officer Jean")
SECOND = Caller(user_id=2002, display_name="Officer Wanjiru")


@pytest.fixture
def world() -> dict[str, Any]:
    """An operation with one unit and one unused person code for an officer."""
    clock = Clock()
    store = FakeStore()
    op = store.operation()
    unit = store.unit(op, "KE-3", "MSS", "sw")
    store.code(
        op,
        hash_code(CODE),
        "person",
        unit_id=unit.id,
        role="officer",
        language="sw",
        expires_at=clock() + timedelta(hours=48),
    )
    service = EnrollmentService(
        None,  # type: ignore[arg-type]  # no database: the store stands in for it
        None,  # type: ignore[arg-type]
        [ADMIN],
        clock=clock,
        limits=CodeLimits(max_failures=3),
        storage=store,  # type: ignore[arg-type]
    )
    return {"store": store, "service": service, "clock": clock, "op": op}


def _refusals(store: FakeStore) -> list[str]:
    return [e.payload["reason"] for e in store.events_of("access.refused")]


async def test_a_person_code_gives_its_role_unit_and_language(world: dict[str, Any]) -> None:
    identity = await world["service"].join(OFFICER, CODE, chat_type="private")
    assert (identity.role, identity.unit, identity.language) == (Role.OFFICER, "KE-3", "sw")
    assert [e.event_type for e in world["store"].events] == ["enroll.person"]


async def test_a_second_enrolment_with_a_used_code_is_refused_and_audited(
    world: dict[str, Any],
) -> None:
    store, service = world["store"], world["service"]
    await service.join(OFFICER, CODE.lower(), chat_type="private")  # typed by hand
    with pytest.raises(EnrollmentError) as refused:
        await service.join(SECOND, CODE, chat_type="private")
    assert refused.value.key == "code.used"
    # The second person got nothing; the refusal is on the record with who tried.
    assert await store.uow().people.by_telegram_id(SECOND.user_id) is None
    assert _refusals(store) == ["code.used"]
    assert store.events_of("access.refused")[0].actor == f"tg:{SECOND.user_id}"


async def test_an_unknown_code_is_refused_and_changes_nothing(world: dict[str, Any]) -> None:
    store, service = world["store"], world["service"]
    with pytest.raises(EnrollmentError) as refused:
        await service.join(OFFICER, "DRJ-0000-0000", chat_type="private")
    assert refused.value.key == "code.unknown"
    assert await store.uow().people.by_telegram_id(OFFICER.user_id) is None
    assert _refusals(store) == ["code.unknown"]
    # The real code is still there for its owner.
    assert (await service.join(OFFICER, CODE, chat_type="private")).role is Role.OFFICER


async def test_wrong_codes_lock_the_person_out_even_from_the_right_code(
    world: dict[str, Any],
) -> None:
    service = world["service"]
    for _ in range(2):
        with pytest.raises(EnrollmentError):
            await service.join(OFFICER, "DRJ-AAAA-AAAA", chat_type="private")
    with pytest.raises(TooManyAttempts):  # the one too many says so
        await service.join(OFFICER, "DRJ-AAAA-AAAA", chat_type="private")
    with pytest.raises(TooManyAttempts):  # locked: not even the right code is checked
        await service.join(OFFICER, CODE, chat_type="private")
    world["clock"].advance(minutes=16)
    assert (await service.join(OFFICER, CODE, chat_type="private")).role is Role.OFFICER


async def test_only_admins_issue_codes_and_a_refused_attempt_is_audited(
    world: dict[str, Any],
) -> None:
    store, service = world["store"], world["service"]
    with pytest.raises(AccessDenied):
        await service.issue_code(OFFICER, "Kenscoff", kind="person", role="officer")
    assert _refusals(store) == ["admins_only"]
    codes_before = len(store.codes)
    admin = Caller(user_id=ADMIN, display_name="Admin")
    issued = await service.issue_code(admin, "Kenscoff", kind="person", role="commander")
    assert len(store.codes) == codes_before + 1
    assert (await service.join(SECOND, issued.code, chat_type="private")).role is Role.COMMANDER
