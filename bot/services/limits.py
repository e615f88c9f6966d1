"""Abuse limits: lockouts after wrong enrollment codes, and refusals audited in aggregate.

Codes have about 40 bits of entropy, but nothing stopped one account from trying hundreds a
minute. `CodeLimits` holds the rules (pure, no I/O): a person may get `max_failures` codes
wrong within a window (a group twice as many: several people may type there), then every
`/join` or `/enroll` of theirs is refused unchecked until the lockout ends. Each further
lockout lasts twice as long, up to `max_lockout`; after `max_lockout` with neither a failure
nor a lockout the doubling starts over. `AttemptLimiter` keeps that state in the database
(`attempt_counters`), so a restart lifts nothing.

`RefusalAudit` writes refusals to the audit log in aggregate: the first refusal of an actor in a
chat (for one reason and command) is an event at once; further ones within `window` are only
counted (`refusal_counts`) and written as one event with their `count`, first and last time,
when the window is over (`flush`, or the next refusal after it). Summing `count` over
`access.refused` events gives every refused attempt; counts not yet flushed survive a restart.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from storage.models import AttemptCounter, RefusalCount, utcnow
from storage.uow import UnitOfWork

USER = "user"
CHAT = "chat"


@dataclass
class Attempts:
    """The failed attempts of one person or chat (what `attempt_counters` holds)."""

    window_start: datetime
    failures: int = 0
    lockouts: int = 0
    locked_until: datetime | None = None
    notified_at: datetime | None = None


@dataclass(frozen=True)
class CodeLimits:
    """How many wrong codes a person or a group may try, and how long a lockout lasts."""

    max_failures: int = 5
    lockout: timedelta = timedelta(minutes=15)
    max_lockout: timedelta = timedelta(hours=24)
    # While locked, the refusal is answered at most this often (the rest are only counted).
    notify_every: timedelta = timedelta(minutes=1)

    def limit(self, scope: str) -> int:
        """Wrong codes allowed per window: a group is shared by people, so twice a person's."""
        return self.max_failures * 2 if scope == CHAT else self.max_failures

    def locked_until(self, state: Attempts | None, now: datetime) -> datetime | None:
        """When the lockout ends, if one is running."""
        if state is None or state.locked_until is None or state.locked_until <= now:
            return None
        return state.locked_until

    def should_notify(self, state: Attempts, now: datetime) -> bool:
        """Whether a refused attempt during a lockout gets an answer."""
        return state.notified_at is None or now - state.notified_at >= self.notify_every

    def after_failure(self, state: Attempts | None, now: datetime, scope: str) -> Attempts:
        """The state after one more wrong code (a new window, a count, or a lockout)."""
        if state is None:
            state = Attempts(window_start=now)
        elif now >= state.window_start + self.lockout:
            # The window is over: count afresh; `max_lockout` without a failure or a lockout
            # also forgets past lockouts.
            quiet_since = max(state.window_start, state.locked_until or state.window_start)
            lockouts = 0 if now >= quiet_since + self.max_lockout else state.lockouts
            state = Attempts(window_start=now, lockouts=lockouts)
        state.failures += 1
        if state.failures >= self.limit(scope):
            duration = min(self.lockout * (2**state.lockouts), self.max_lockout)
            state.locked_until = now + duration
            state.lockouts += 1
            state.failures = 0
            state.window_start = now
            # The failure that locks is answered with the lockout, and so is the next attempt
            # (a person retrying at once, or with the right code, hears why it is refused).
            state.notified_at = None
        return state


@dataclass(frozen=True)
class Lockout:
    """A running lockout: when it ends and whether this refusal is answered."""

    until: datetime
    notify: bool

    def minutes_left(self, now: datetime) -> int:
        """Whole minutes until the end, rounded up (never 0 while locked)."""
        return max(1, -(-int((self.until - now).total_seconds()) // 60))


class AttemptLimiter:
    """Failed code attempts per person and per chat, and lockouts, in the caller's unit of work."""

    def __init__(self, limits: CodeLimits, *, clock: Callable[[], datetime] = utcnow) -> None:
        self.limits = limits
        self.clock = clock

    @staticmethod
    def _subjects(user_id: int, chat_id: int | None) -> list[tuple[str, int]]:
        subjects = [(USER, user_id)]
        if chat_id is not None and chat_id != user_id:  # a private chat is the person
            subjects.append((CHAT, chat_id))
        return subjects

    async def locked(self, uow: UnitOfWork, user_id: int, chat_id: int | None) -> Lockout | None:
        """The lockout that refuses this attempt, if any (and note when it was answered)."""
        now = self.clock()
        repo = uow.attempts
        found: Lockout | None = None
        for scope, subject in self._subjects(user_id, chat_id):
            row = await repo.get(scope, subject)
            if row is None:
                continue
            state = _state(row)
            until = self.limits.locked_until(state, now)
            if until is None or (found is not None and found.until >= until):
                continue
            notify = self.limits.should_notify(state, now)
            if notify:
                row.notified_at = now
            found = Lockout(until, notify)
        return found

    async def failed(self, uow: UnitOfWork, user_id: int, chat_id: int | None) -> Lockout | None:
        """Count one wrong code; the lockout it starts, if it is the one too many."""
        now = self.clock()
        repo = uow.attempts
        started: Lockout | None = None
        for scope, subject in self._subjects(user_id, chat_id):
            row, _ = await repo.get_or_add(scope, subject, now)
            before = self.limits.locked_until(_state(row), now)
            state = self.limits.after_failure(_state(row), now, scope)
            row.window_start = state.window_start
            row.failures = state.failures
            row.lockouts = state.lockouts
            row.locked_until = state.locked_until
            row.notified_at = state.notified_at
            until = state.locked_until
            if until is None or until == before:
                continue  # no lockout, or the running one (a failure during it changes nothing)
            if started is None or until > started.until:
                started = Lockout(until, True)
        return started

    async def prune(self, uow: UnitOfWork) -> None:
        """Drop counters with neither a failure nor a lockout for `max_lockout`: they would
        start afresh anyway (see `CodeLimits.after_failure`)."""
        await uow.attempts.drop_quiet(self.clock() - self.limits.max_lockout)

    async def succeeded(self, uow: UnitOfWork, user_id: int, chat_id: int | None) -> None:
        """A right code: the person's (and group's) count starts over."""
        repo = uow.attempts
        for scope, subject in self._subjects(user_id, chat_id):
            await repo.delete(scope, subject)


def _state(row: AttemptCounter) -> Attempts:
    return Attempts(
        window_start=row.window_start,
        failures=row.failures,
        lockouts=row.lockouts,
        locked_until=row.locked_until,
        notified_at=row.notified_at,
    )


class RefusalAudit:
    """Refused attempts as aggregated `access.refused` audit events (see the module doc)."""

    def __init__(
        self,
        *,
        window: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.window = window
        self.clock = clock

    async def record(
        self,
        uow: UnitOfWork,
        *,
        actor: str,
        reason: str,
        chat_id: int | None,
        command: str | None,
    ) -> None:
        """Count one refused attempt; audit it now if it opens a window."""
        now = self.clock()
        repo = uow.refusals
        row, created = await repo.get_or_add(
            actor[:64], chat_id or 0, reason[:48], (command or "")[:32], now
        )
        if not created and now < row.window_start + self.window:
            row.pending += 1
            row.first_at = row.first_at or now
            row.last_at = now
            return
        if row.pending:  # the previous window's rest, before this attempt's own event
            await self._event(uow, row, row.pending, row.first_at or now, row.last_at or now)
        row.window_start = now
        row.pending = 0
        row.first_at = row.last_at = None
        await self._event(uow, row, 1, now, now)

    async def flush(self, uow: UnitOfWork) -> int:
        """Write the counts of windows that are over; drop idle rows. Returns attempts written."""
        now = self.clock()
        repo = uow.refusals
        written = 0
        for row in await repo.ended(now - self.window):
            if row.pending:
                await self._event(uow, row, row.pending, row.first_at or now, row.last_at or now)
                written += row.pending
                row.pending = 0
                row.first_at = row.last_at = None
        await repo.drop_idle(now - self.window)
        return written

    async def _event(
        self, uow: UnitOfWork, row: RefusalCount, count: int, first: datetime, last: datetime
    ) -> None:
        await uow.audit(
            component="access",
            event_type="access.refused",
            actor=row.actor,
            outcome="refused",
            payload={
                "reason": row.reason,
                "chat_id": row.chat_id or None,
                "command": row.command or None,
                "count": count,
                "first_at": first.isoformat(),
                "last_at": last.isoformat(),
            },
        )
