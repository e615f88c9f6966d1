"""One-time console login links and the sessions they open, both kept in the database.

A link is short-lived, single use and bound to one person, role and operation; only the
SHA-256 of its token is stored, as for sessions, so a copy of the database opens nothing.
Every issue, login (or refused login) and logout is an audit event. A session stops the moment
its person is revoked or changes role: every request checks the person again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.domain import Role
from bot.errors import AccessDenied
from bot.i18n import N_
from storage.audit import AuditChain
from storage.db import Database
from storage.models import ConsoleLink, ConsoleSession, Person, utcnow
from storage.uow import Storage, UnitOfWork

CONSOLE_ROLES = frozenset({Role.AUDITOR, Role.COMMANDER, Role.ADMIN})
LINK_EVENT = "console.link"
LOGIN_EVENT = "console.login"
LOGOUT_EVENT = "console.logout"
VIEW_EVENT = "console.view"
# Ended sessions and spent links are kept this long, then deleted (the audit log keeps the
# record of every login; these rows only check tokens).
KEEP_ENDED = timedelta(days=1)
# Why a link was refused, as the catalog key the person reads.
LINK_REFUSALS = {
    "unknown": N_("console.link_unknown"),
    "used": N_("console.link_used"),
    "expired": N_("console.link_expired"),
    "role": N_("console.link_role"),
}


def digest(token: str) -> str:
    """The stored form of a link or session token."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def csrf_for(session_token: str) -> str:
    """The form token of a session: derived from the secret cookie, so another site cannot
    know it, and nothing more to store."""
    return hashlib.sha256(b"daraja-console-csrf\x00" + session_token.encode()).hexdigest()[:40]


def csrf_matches(session_token: str, sent: str | None) -> bool:
    """Whether a posted form token belongs to this session (constant time)."""
    return bool(sent) and hmac.compare_digest(csrf_for(session_token), sent or "")


@dataclass(frozen=True)
class IssuedLink:
    """A link just made: the token goes to the person once, never into a log."""

    token: str
    role: Role
    expires_at: datetime
    minutes: int


@dataclass(frozen=True)
class Viewer:
    """Who is looking, as the session says (checked against the person on every request)."""

    session_id: int
    user_id: int
    role: Role
    operation_id: int | None
    language: str
    expires_at: datetime

    @property
    def actor(self) -> str:
        """How the audit log names the viewer."""
        return f"tg:{self.user_id}"


class ConsoleAuth:
    """Issues links, opens sessions from them, and checks sessions (all audited)."""

    def __init__(
        self,
        db: Database,
        audit: AuditChain,
        *,
        admin_ids: Collection[int] = (),
        link_ttl: timedelta = timedelta(minutes=5),
        session_ttl: timedelta = timedelta(minutes=60),
        default_language: str = "en",
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.audit = audit
        self.storage = Storage(db, audit)
        self.admin_ids = frozenset(admin_ids)
        self.link_ttl = link_ttl
        self.session_ttl = session_ttl
        self.default_language = default_language
        self.clock = clock

    async def issue_link(self, user_id: int, *, telegram_language: str | None) -> IssuedLink:
        """A one-time link for an auditor, commander or admin; AccessDenied for anyone else."""
        now = self.clock()
        async with self.storage() as uow:
            await uow.console.forget_ended(now - KEEP_ENDED)
            person = await uow.people.by_telegram_id(user_id)
            role, operation_id, language = self._grant(person, user_id, telegram_language)
            if role is None:
                await self._append(uow, LINK_EVENT, user_id, "refused", None, reason="role")
            else:
                token = secrets.token_urlsafe(32)
                await uow.console.add_link(
                    ConsoleLink(
                        token_hash=digest(token),
                        telegram_user_id=user_id,
                        role=role.value,
                        operation_id=operation_id,
                        language=language,
                        created_at=now,
                        expires_at=now + self.link_ttl,
                    )
                )
                await self._append(uow, LINK_EVENT, user_id, "ok", operation_id, role=role.value)
        if role is None:
            raise AccessDenied("console: not for this role", key="console.not_allowed")
        minutes = int(self.link_ttl.total_seconds() // 60)
        return IssuedLink(token, role, now + self.link_ttl, minutes)

    def _grant(
        self, person: Person | None, user_id: int, telegram_language: str | None
    ) -> tuple[Role | None, int | None, str]:
        language = (person.language if person else None) or telegram_language
        language = language if language in ("ht", "fr", "en", "sw") else self.default_language
        if person is not None and person.revoked_at is None:
            try:
                role = Role(person.role)
            except ValueError:
                role = None
            if role in CONSOLE_ROLES:
                return role, person.operation_id, language
        if user_id in self.admin_ids and (person is None or person.revoked_at is None):
            return Role.ADMIN, person.operation_id if person else None, language
        return None, None, language

    async def login(self, token: str) -> tuple[str, Viewer]:
        """Spend a link: a new session token and its viewer; AccessDenied if the link is
        unknown, used, expired, or its person lost the role meanwhile."""
        now = self.clock()
        reason: str | None = None
        user_id = 0
        language: str | None = None
        async with self.storage() as uow:
            link = await uow.console.link(digest(token))
            if link is None:
                reason = "unknown"
            else:
                user_id = link.telegram_user_id
                language = link.language
                if link.used_at is not None:
                    reason = "used"
                elif link.expires_at <= now:
                    reason = "expired"
                elif not await self._still_holds(uow, link.telegram_user_id, link.role):
                    reason = "role"
            # Single use even under two simultaneous logins (see `ConsoleRepo.spend_link`).
            if (
                reason is None
                and link is not None
                and not await uow.console.spend_link(link.id, now)
            ):
                reason = "used"
            if reason is not None or link is None:
                await self._append(
                    uow,
                    LOGIN_EVENT,
                    user_id,
                    "refused",
                    link.operation_id if link else None,
                    reason=reason,
                )
            else:
                session_token = secrets.token_urlsafe(32)
                row = ConsoleSession(
                    token_hash=digest(session_token),
                    link_id=link.id,
                    telegram_user_id=link.telegram_user_id,
                    role=link.role,
                    operation_id=link.operation_id,
                    language=link.language,
                    created_at=now,
                    expires_at=now + self.session_ttl,
                )
                await uow.console.add_session(row)
                await self._append(
                    uow, LOGIN_EVENT, user_id, "ok", link.operation_id, role=link.role
                )
                viewer = _viewer(row)
        if reason is not None:
            raise AccessDenied(
                f"console link refused: {reason}",
                key=LINK_REFUSALS[reason],
                language=language,
            )
        return session_token, viewer

    async def viewer(self, session_token: str | None) -> Viewer | None:
        """The live session behind a cookie, or None (unknown, ended, expired, or revoked)."""
        if not session_token or len(session_token) > 128:
            return None
        now = self.clock()
        async with self.storage() as uow:
            row = await uow.console.session_of(digest(session_token))
            if row is None or row.ended_at is not None or row.expires_at <= now:
                return None
            if not await self._still_holds(uow, row.telegram_user_id, row.role):
                return None
            return _viewer(row)

    async def logout(self, session_token: str, viewer: Viewer) -> None:
        """End a session (audited)."""
        async with self.storage() as uow:
            await uow.console.end_session(digest(session_token), self.clock())
            await self._append(uow, LOGOUT_EVENT, viewer.user_id, "ok", viewer.operation_id)

    async def record_view(
        self, viewer: Viewer, page: str, params: dict[str, Any], *, outcome: str = "ok"
    ) -> None:
        """Every page a viewer opens is an audit event (what was asked, never what was read)."""
        async with self.storage() as uow:
            await self._append(
                uow,
                VIEW_EVENT,
                viewer.user_id,
                outcome,
                viewer.operation_id,
                page=page,
                params=params,
                role=viewer.role.value,
            )

    async def _still_holds(self, uow: UnitOfWork, user_id: int, role: str) -> bool:
        person = await uow.people.by_telegram_id(user_id)
        if person is not None and person.revoked_at is not None:
            return False
        if role == Role.ADMIN.value and user_id in self.admin_ids:
            return True
        return person is not None and person.role == role

    async def _append(
        self,
        uow: UnitOfWork,
        event_type: str,
        user_id: int,
        outcome: str,
        operation_id: int | None,
        **payload: Any,
    ) -> None:
        await uow.audit(
            component="console",
            event_type=event_type,
            actor=f"tg:{user_id}",
            outcome=outcome,
            operation_id=operation_id,
            payload={k: v for k, v in payload.items() if v is not None},
        )


def _viewer(row: ConsoleSession) -> Viewer:
    return Viewer(
        session_id=row.id,
        user_id=row.telegram_user_id,
        role=Role(row.role),
        operation_id=row.operation_id,
        language=row.language,
        expires_at=row.expires_at,
    )
