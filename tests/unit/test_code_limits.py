"""The rules for wrong enrollment codes: windows, lockouts, doubling, forgetting, answers."""

from __future__ import annotations

from datetime import timedelta

from bot.services.limits import CHAT, USER, Attempts, CodeLimits, Lockout
from tests.support.fakes import START

RULES = CodeLimits(max_failures=5, lockout=timedelta(minutes=15), max_lockout=timedelta(hours=24))


def _fail(state: Attempts | None, times: int, *, at: timedelta, scope: str = USER) -> Attempts:
    now = START + at
    for _ in range(times):
        state = RULES.after_failure(state, now, scope)
    assert state is not None
    return state


def test_the_fifth_wrong_code_locks_a_person_for_the_lockout() -> None:
    four = _fail(None, 4, at=timedelta())
    assert RULES.locked_until(four, START) is None
    five = _fail(four, 1, at=timedelta(minutes=1))
    assert RULES.locked_until(five, START + timedelta(minutes=1)) == START + timedelta(minutes=16)
    assert RULES.locked_until(five, START + timedelta(minutes=16)) is None


def test_a_group_may_get_twice_as_many_wrong() -> None:
    nine = _fail(None, 9, at=timedelta(), scope=CHAT)
    assert RULES.locked_until(nine, START) is None
    ten = _fail(nine, 1, at=timedelta(), scope=CHAT)
    assert RULES.locked_until(ten, START) is not None


def test_failures_spread_over_windows_never_lock() -> None:
    state: Attempts | None = None
    for window in range(20):
        state = _fail(state, 4, at=timedelta(minutes=15 * window))
        assert RULES.locked_until(state, START + timedelta(minutes=15 * window)) is None


def test_each_lockout_doubles_up_to_a_day_then_a_quiet_day_forgets() -> None:
    state: Attempts | None = None
    at = timedelta()
    lengths = []
    for _ in range(9):
        state = _fail(state, 5, at=at)
        until = RULES.locked_until(state, START + at)
        assert until is not None
        lengths.append(int((until - (START + at)) / timedelta(minutes=1)))
        at = until - START
    assert lengths == [15, 30, 60, 120, 240, 480, 960, 1440, 1440]
    # A day without a wrong code after the lockout window: the doubling starts over.
    quiet = at + timedelta(hours=24)
    state = _fail(state, 5, at=quiet)
    assert RULES.locked_until(state, START + quiet) == START + quiet + timedelta(minutes=15)


def test_during_a_lockout_the_first_attempt_then_one_a_minute_is_answered() -> None:
    state = _fail(None, 5, at=timedelta())
    assert RULES.should_notify(state, START + timedelta(seconds=1))
    state.notified_at = START + timedelta(seconds=1)
    assert not RULES.should_notify(state, START + timedelta(seconds=60))
    assert RULES.should_notify(state, START + timedelta(seconds=61))


def test_minutes_left_round_up_and_never_say_zero() -> None:
    lock = Lockout(until=START + timedelta(minutes=15), notify=True)
    assert lock.minutes_left(START) == 15
    assert lock.minutes_left(START + timedelta(minutes=14, seconds=1)) == 1
    assert lock.minutes_left(START + timedelta(minutes=14, seconds=59, microseconds=1)) == 1
    assert lock.minutes_left(START + timedelta(seconds=30)) == 15
