"""Lockouts after wrong codes and aggregated refusals, on a real database (every backend).

A restart is a new `Database` and a new `EnrollmentService` over the same URL: whatever the
limits remember must come from the database.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.errors import EnrollmentError, TooManyAttempts
from bot.services.enrollment import Caller, EnrollmentService
from bot.services.limits import CodeLimits
from storage.audit import AuditChain
from storage.db import Database
from storage.models import AttemptCounter, AuditEvent, EnrollmentCode
from tests.support.fakes import Clock

ADMIN = Caller(user_id=1000, display_name="Admin", is_admin=True)
GUESSER = Caller(user_id=6661, display_name="Guesser")
GROUP = -100777


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _service(db: Database, clock: Clock) -> EnrollmentService:
    return EnrollmentService(
        db,
        AuditChain(),
        admin_ids=[ADMIN.user_id],
        clock=clock,
        limits=CodeLimits(max_failures=5, lockout=timedelta(minutes=15)),
        refusal_window=timedelta(minutes=10),
    )


@pytest.fixture
async def service(db: Database, clock: Clock) -> EnrollmentService:
    svc = _service(db, clock)
    await svc.create_operation(ADMIN, "Furcy", default_language="fr")
    await svc.add_unit(ADMIN, "Furcy", "KE-3", name="Kenya 3", side="MSS", language="en")
    return svc


@pytest.fixture
async def restarted(database_url: str, db: Database) -> AsyncIterator[Database]:
    """A second connection to the same database, as a restarted bot would open."""
    again = Database(database_url)
    try:
        yield again
    finally:
        await again.dispose()


async def _refusals(db: Database) -> list[dict[str, object]]:
    async with db.transaction() as s:
        rows = await s.execute(
            select(AuditEvent.payload)
            .where(AuditEvent.event_type == "access.refused")
            .order_by(AuditEvent.seq)
        )
        return [json.loads(p) for p in rows.scalars()]


async def _join_wrong(service: EnrollmentService, caller: Caller = GUESSER) -> EnrollmentError:
    with pytest.raises(EnrollmentError) as err:
        await service.join(caller, "DRJ-AAAA-BBBB", chat_type="private")
    return err.value


async def test_wrong_codes_lock_a_person_out_and_the_lockout_survives_a_restart(
    service: EnrollmentService, db: Database, restarted: Database, clock: Clock
) -> None:
    code = await service.issue_code(ADMIN, "Furcy", kind="person", unit="KE-3", role="officer")
    answers = [(await _join_wrong(service)).key for _ in range(5)]
    assert answers == ["code.unknown"] * 4 + ["code.locked"]
    # Locked: even the right code is refused, unchecked, and stays unused.
    with pytest.raises(TooManyAttempts) as locked:
        await service.join(GUESSER, code.code, chat_type="private")
    assert locked.value.params["minutes"] == 15
    async with db.transaction() as s:
        assert (await s.execute(select(EnrollmentCode.used_at))).scalar_one() is None

    clock.advance(minutes=5)
    after_restart = _service(restarted, clock)
    with pytest.raises(TooManyAttempts) as still:
        await after_restart.join(GUESSER, code.code, chat_type="private")
    assert still.value.params["minutes"] == 10

    clock.advance(minutes=10)
    who = await after_restart.join(GUESSER, code.code, chat_type="private")
    assert who.unit == "KE-3"


async def test_each_further_lockout_lasts_twice_as_long(
    service: EnrollmentService, clock: Clock
) -> None:
    for _ in range(5):
        await _join_wrong(service)
    clock.advance(minutes=15)
    answers = [await _join_wrong(service) for _ in range(5)]
    assert [a.key for a in answers] == ["code.unknown"] * 4 + ["code.locked"]
    assert answers[-1].params["minutes"] == 30


async def test_a_group_is_locked_after_twice_as_many_wrong_codes_from_anyone(
    service: EnrollmentService,
) -> None:
    code = await service.issue_code(ADMIN, "Furcy", kind="chat", unit="KE-3")
    keys = []
    for n in range(10):
        member = Caller(user_id=7000 + n, display_name=f"member {n}")
        with pytest.raises(EnrollmentError) as err:
            await service.enroll_chat(
                member,
                "DRJ-CCCC-DDDD",
                chat_id=GROUP,
                chat_title="g",
                chat_type="supergroup",
                caller_is_chat_admin=True,
            )
        keys.append(err.value.key)
    assert keys == ["code.unknown"] * 9 + ["code.locked"]
    newcomer = Caller(user_id=7999, display_name="newcomer")
    with pytest.raises(TooManyAttempts):
        await service.enroll_chat(
            newcomer,
            code.code,
            chat_id=GROUP,
            chat_title="g",
            chat_type="supergroup",
            caller_is_chat_admin=True,
        )
    # Another group is not affected.
    done = await service.enroll_chat(
        newcomer,
        code.code,
        chat_id=GROUP - 1,
        chat_title="h",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    assert done.unit == "KE-3"


async def test_a_flood_of_guesses_is_a_few_audit_events_counting_every_guess(
    service: EnrollmentService, db: Database, restarted: Database, clock: Clock
) -> None:
    silent = 0
    for _ in range(200):
        clock.now += timedelta(seconds=1)
        err = await _join_wrong(service)
        if isinstance(err, TooManyAttempts) and not err.notify:
            silent += 1
    # 4 wrong codes, the one that locks, then 195 refused while locked: the first of those is
    # answered, then one a minute (seconds 66, 126 and 186).
    assert silent == 195 - 4
    events = await _refusals(db)
    assert len(events) == 2  # the first wrong code and the first locked attempt
    assert sum(int(str(e["count"])) for e in events) == 2

    # The counts not yet written survive a restart and are written once their window is over.
    clock.advance(minutes=10)
    after_restart = _service(restarted, clock)
    assert await after_restart.flush_refusals() == 198
    events = await _refusals(db)
    assert sum(int(str(e["count"])) for e in events) == 200
    by_reason: dict[str, int] = {}
    for e in events:
        by_reason[str(e["reason"])] = by_reason.get(str(e["reason"]), 0) + int(str(e["count"]))
    assert by_reason == {"code.unknown": 5, "code.locked": 195}
    assert {e["chat_id"] for e in events} == {GUESSER.user_id}
    assert len(events) == 4
    assert await after_restart.flush_refusals() == 0


async def test_an_unenrolled_chat_is_told_once_across_restarts_and_every_attempt_audited(
    service: EnrollmentService, db: Database, restarted: Database, clock: Clock
) -> None:
    stranger = Caller(user_id=8001, display_name="Ti Jan")
    told = [await service.refuse_unenrolled(stranger, GROUP, None) for _ in range(3)]
    assert told == [True, False, False]
    after_restart = _service(restarted, clock)
    assert await after_restart.refuse_unenrolled(stranger, GROUP, None) is False
    assert await after_restart.tell_unenrolled(GROUP) is False
    clock.advance(minutes=10)
    await after_restart.flush_refusals()
    events = await _refusals(db)
    assert sum(int(str(e["count"])) for e in events) == 4
    assert {e["reason"] for e in events} == {"chat.not_enrolled"}

    # Once enrolled the memory is dropped: should the group leave, it is told again.
    code = await after_restart.issue_code(ADMIN, "Furcy", kind="chat", unit="KE-3")
    await after_restart.enroll_chat(
        stranger,
        code.code,
        chat_id=GROUP,
        chat_title="g",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    assert await after_restart.tell_unenrolled(GROUP) is True


async def test_counters_quiet_for_a_day_are_forgotten(
    service: EnrollmentService, db: Database, clock: Clock
) -> None:
    for _ in range(5):
        await _join_wrong(service)
    clock.advance(minutes=15)
    await _join_wrong(service)  # a failure after the lockout: its counter stays
    await service.flush_refusals()
    async with db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(AttemptCounter))).scalar() == 1
    clock.advance(hours=24, minutes=1)
    await service.flush_refusals()
    async with db.transaction() as s:
        assert (await s.execute(select(func.count()).select_from(AttemptCounter))).scalar() == 0
    answers = [await _join_wrong(service) for _ in range(5)]
    assert answers[-1].params["minutes"] == 15  # a first lockout again, not a doubled one
