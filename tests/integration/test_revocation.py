"""Revoking people, codes and chats, retiring units and changing roles (every backend)."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.domain import Role
from bot.errors import AccessDenied, EnrollmentError, NotFound, UserInputError
from bot.services.enrollment import Caller, EnrollmentService
from bot.services.revocation import RevocationService
from storage.audit import AuditChain
from storage.audit_verify import verify_database
from storage.db import Database
from storage.models import AuditEvent, Chat, Delivery, Message
from storage.status_repo import StatusRepo
from tests.support.fakes import Clock

ADMIN = Caller(user_id=1000, display_name="Admin", is_admin=True, actor="cli:ops")
OFFICER = Caller(user_id=2001, display_name="Jean Baptiste")
GROUP = -1001234567890


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def enrollment(db: Database, clock: Clock) -> EnrollmentService:
    return EnrollmentService(db, AuditChain(), admin_ids=[ADMIN.user_id], clock=clock)


@pytest.fixture
def revocation(db: Database, clock: Clock) -> RevocationService:
    return RevocationService(db, AuditChain(), admin_ids=[ADMIN.user_id], clock=clock)


async def _operation(enrollment: EnrollmentService) -> None:
    await enrollment.create_operation(ADMIN, "Kenscoff", default_language="fr")
    await enrollment.add_unit(ADMIN, "Kenscoff", "KE-3", name="Kenya 3", side="MSS", language="en")
    await enrollment.add_unit(ADMIN, "Kenscoff", "PNH-2", name="UDMO", side="PNH", language="ht")


async def _joined_officer(enrollment: EnrollmentService) -> None:
    code = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="person", unit="KE-3", role="officer"
    )
    await enrollment.join(OFFICER, code.code, chat_type="private")


async def _events(db: Database, event_type: str) -> list[AuditEvent]:
    async with db.transaction() as s:
        rows = await s.execute(select(AuditEvent).where(AuditEvent.event_type == event_type))
        return list(rows.scalars())


async def test_revoked_person_loses_role_cannot_rejoin_and_is_listed_revoked(
    enrollment: EnrollmentService, revocation: RevocationService, db: Database
) -> None:
    await _operation(enrollment)
    await _joined_officer(enrollment)
    assert not await revocation.is_revoked(OFFICER.user_id)
    # What he wrote just before, still queued for a partner group.
    code = await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    await enrollment.enroll_chat(
        OFFICER,
        code.code,
        chat_id=GROUP,
        chat_title="KE-3",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    async with db.transaction() as s:
        chat = (await s.execute(select(Chat).where(Chat.telegram_chat_id == GROUP))).scalar_one()
        message = Message(
            operation_id=1,
            chat_id=chat.id,
            telegram_message_id=9,
            text="x",
            author_user_id=OFFICER.user_id,
        )
        s.add(message)
        await s.flush()
        s.add(Delivery(message_id=message.id, target_chat_id=chat.id, target_language="ht"))

    state = await revocation.revoke_person(ADMIN, OFFICER.user_id)

    async with db.transaction() as s:
        assert list(await s.scalars(select(Delivery.state))) == ["failed"]

    assert (state.state, state.role, state.revoked_by) == ("revoked", "officer", "cli:ops")
    assert await revocation.is_revoked(OFFICER.user_id)
    who = await enrollment.identity(OFFICER)
    assert (who.role, who.revoked) == (None, True)
    # A fresh code does not bring a captured phone back: only an admin's reinstate does.
    code = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="person", unit="KE-3", role="commander"
    )
    with pytest.raises(AccessDenied) as refused:
        await enrollment.join(OFFICER, code.code, chat_type="private")
    assert refused.value.key == "access.revoked"
    listed = await revocation.people(ADMIN, "kenscoff")
    assert [(p.user_id, p.state) for p in listed] == [(OFFICER.user_id, "revoked")]
    # The unused code was not burnt by the refused join.
    assert [c.state for c in await revocation.codes(ADMIN) if c.role == "commander"] == ["active"]

    back = await revocation.reinstate_person(ADMIN, OFFICER.user_id)
    assert back.state == "active"
    assert (await enrollment.identity(OFFICER)).role is Role.OFFICER
    revoked = await _events(db, "admin.person_revoked")
    assert [(e.actor, json.loads(e.payload)["user_id"]) for e in revoked] == [
        ("cli:ops", OFFICER.user_id)
    ]
    assert len(await _events(db, "admin.person_reinstated")) == 1
    refusals = [json.loads(e.payload)["reason"] for e in await _events(db, "access.refused")]
    assert "person.revoked" in refusals
    assert (await verify_database(db, AuditChain())).ok


async def test_role_change_is_audited_and_refused_for_revoked_or_admin_roles(
    enrollment: EnrollmentService, revocation: RevocationService, db: Database
) -> None:
    await _operation(enrollment)
    await _joined_officer(enrollment)

    state = await revocation.set_role(ADMIN, OFFICER.user_id, "Commander")

    assert state.role == "commander"
    assert (await enrollment.identity(OFFICER)).role is Role.COMMANDER
    [event] = await _events(db, "admin.role_changed")
    assert json.loads(event.payload) == {
        "user_id": OFFICER.user_id,
        "from": "officer",
        "to": "commander",
    }
    with pytest.raises(UserInputError):
        await revocation.set_role(ADMIN, OFFICER.user_id, "admin")
    with pytest.raises(UserInputError) as bad:
        await revocation.set_role(ADMIN, OFFICER.user_id, "boss")
    assert "officer, commander or auditor" in str(bad.value)
    with pytest.raises(NotFound):
        await revocation.set_role(ADMIN, 424242, "officer")
    with pytest.raises(UserInputError) as settings_admin:
        await revocation.revoke_person(ADMIN, ADMIN.user_id)
    assert settings_admin.value.key == "revoke.settings_admin"
    await revocation.revoke_person(ADMIN, OFFICER.user_id)
    with pytest.raises(UserInputError) as is_revoked:
        await revocation.set_role(ADMIN, OFFICER.user_id, "auditor")
    assert is_revoked.value.key == "revoke.person_is_revoked"


async def test_codes_list_every_state_and_a_revoked_code_cannot_be_used(
    enrollment: EnrollmentService, revocation: RevocationService, clock: Clock
) -> None:
    await _operation(enrollment)
    used = await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="person", unit="KE-3", role="officer"
    )
    await enrollment.join(OFFICER, used.code, chat_type="private")
    await enrollment.issue_code(
        ADMIN, "Kenscoff", kind="chat", unit="KE-3", ttl=timedelta(hours=1)
    )
    to_revoke = await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="PNH-2")
    await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="PNH-2")
    clock.advance(hours=2)

    state = await revocation.revoke_code(ADMIN, to_revoke.code.lower())  # the code text works

    assert state.state == "revoked"
    with pytest.raises(EnrollmentError) as refused:
        await enrollment.enroll_chat(
            OFFICER,
            to_revoke.code,
            chat_id=GROUP,
            chat_title="PNH 2",
            chat_type="supergroup",
            caller_is_chat_admin=True,
        )
    assert refused.value.key == "code.revoked"
    states = {c.id: c.state for c in await revocation.codes(ADMIN, "Kenscoff")}
    assert sorted(states.values()) == ["active", "expired", "revoked", "used"]
    with pytest.raises(UserInputError) as already:
        await revocation.revoke_code(ADMIN, str(min(states)))  # the used one, by its id
    assert already.value.key == "revoke.code_used"
    with pytest.raises(NotFound):
        await revocation.revoke_code(ADMIN, "9999")


async def test_revoked_chat_is_no_longer_enrolled_and_a_new_code_enrolls_it_again(
    enrollment: EnrollmentService, revocation: RevocationService, db: Database
) -> None:
    await _operation(enrollment)
    code = await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    await enrollment.enroll_chat(
        OFFICER,
        code.code,
        chat_id=GROUP,
        chat_title="KE-3",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    assert await enrollment.enrolled(GROUP)
    # A copy still queued for the group when it is cut off.
    async with db.transaction() as s:
        chat_row = (
            await s.execute(select(Chat).where(Chat.telegram_chat_id == GROUP))
        ).scalar_one()
        message = Message(operation_id=1, chat_id=chat_row.id, telegram_message_id=7, text="x")
        s.add(message)
        await s.flush()
        s.add(Delivery(message_id=message.id, target_chat_id=chat_row.id, target_language="en"))

    state = await revocation.revoke_chat(ADMIN, GROUP)

    assert state.state == "revoked"
    async with db.transaction() as s:
        assert list(await s.scalars(select(Delivery.state))) == ["failed"]
    assert not await enrollment.enrolled(GROUP)
    assert await enrollment.chat(GROUP) is None
    assert [(c.chat_id, c.state) for c in await revocation.chats(ADMIN)] == [(GROUP, "revoked")]
    again = await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    await enrollment.enroll_chat(
        OFFICER,
        again.code,
        chat_id=GROUP,
        chat_title="KE-3",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    assert await enrollment.enrolled(GROUP)
    assert len(await _events(db, "admin.chat_revoked")) == 1


async def test_retired_unit_leaves_the_board_loses_chats_and_codes_and_takes_no_new_ones(
    enrollment: EnrollmentService, revocation: RevocationService, db: Database
) -> None:
    await _operation(enrollment)
    await _joined_officer(enrollment)
    code = await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    await enrollment.enroll_chat(
        OFFICER,
        code.code,
        chat_id=GROUP,
        chat_title="KE-3",
        chat_type="supergroup",
        caller_is_chat_admin=True,
    )
    await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")

    retired = await revocation.retire_unit(ADMIN, "Kenscoff", "ke-3")

    assert (retired.unit, retired.chats, retired.codes, retired.people) == ("KE-3", (GROUP,), 1, 1)
    assert not await enrollment.enrolled(GROUP)
    with pytest.raises(UserInputError) as refused:
        await enrollment.issue_code(ADMIN, "Kenscoff", kind="chat", unit="KE-3")
    assert refused.value.key == "error.unit_retired"
    async with db.transaction() as s:
        op_id = 1
        board = [u.code for u, _ in await StatusRepo(s).units_with_latest(op_id)]
    assert board == ["PNH-2"]
    [event] = await _events(db, "admin.unit_retired")
    assert json.loads(event.payload)["chats"] == [GROUP]


async def test_non_admin_is_refused_every_revocation_and_the_attempt_is_audited(
    enrollment: EnrollmentService, revocation: RevocationService, db: Database
) -> None:
    await _operation(enrollment)
    await _joined_officer(enrollment)
    with pytest.raises(AccessDenied):
        await revocation.revoke_person(OFFICER, OFFICER.user_id)
    with pytest.raises(AccessDenied):
        await revocation.codes(OFFICER)
    assert not await revocation.is_revoked(OFFICER.user_id)
    reasons = [json.loads(e.payload)["reason"] for e in await _events(db, "access.refused")]
    assert reasons == ["admins_only", "admins_only"]
