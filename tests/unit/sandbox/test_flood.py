"""Flood control rates, fault injection and the request log, on a fake clock."""

from __future__ import annotations

import pytest

from bot.devtools.sandbox.client import max_in_window
from bot.devtools.sandbox.flood import FaultInjector, FloodControl, FloodLimits, RequestLog


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send_until_refused(flood: FloodControl, chat_id: int) -> tuple[int, int]:
    """Sends accepted in a row, then the retry_after of the first refusal."""
    sent = 0
    while (retry := flood.retry_after(chat_id)) is None:
        flood.consume(chat_id)
        sent += 1
    return sent, retry


def test_private_chat_allows_a_short_burst_then_about_one_per_second() -> None:
    clock = Clock()
    flood = FloodControl(FloodLimits(private_per_second=1, private_burst=3), clock)
    assert send_until_refused(flood, 42) == (3, 1)
    clock.now += 1.0
    assert send_until_refused(flood, 42) == (1, 1)
    assert flood.retry_after(43) is None  # other chats have their own budget


def test_group_allows_twenty_then_one_every_three_seconds() -> None:
    clock = Clock()
    flood = FloodControl(FloodLimits(group_per_minute=20, group_burst=20), clock)
    assert send_until_refused(flood, -100) == (20, 3)
    clock.now += 3.0
    assert send_until_refused(flood, -100)[0] == 1


def test_global_limit_spans_chats() -> None:
    clock = Clock()
    flood = FloodControl(FloodLimits(global_per_second=30, global_burst=30), clock)
    for chat in range(1, 31):
        assert flood.retry_after(chat) is None
        flood.consume(chat)
    assert flood.retry_after(31) == 1


def test_disabled_limits_never_refuse() -> None:
    flood = FloodControl(FloodLimits(enabled=False), Clock())
    for _ in range(500):
        assert flood.retry_after(1) is None
        flood.consume(1)


def test_configure_changes_limits_and_refills() -> None:
    flood = FloodControl(FloodLimits(private_burst=1), Clock())
    flood.consume(1)
    assert flood.retry_after(1) == 1
    flood.configure(private_burst=5)
    assert send_until_refused(flood, 1)[0] == 5


def test_fault_fires_for_the_next_k_matching_calls_only() -> None:
    faults = FaultInjector()
    faults.add("server_error", method="sendMessage", chat_id=-5, count=2, status=502)
    assert faults.pick("sendMessage", -6) is None
    assert faults.pick("getMe", -5) is None
    assert faults.pick("sendmessage", -5) is not None  # method names are case-insensitive
    assert faults.pick("sendMessage", -5) is not None
    assert faults.pick("sendMessage", -5) is None
    assert faults.active() == []


def test_probabilistic_faults_are_reproducible_with_a_seed() -> None:
    def pattern() -> list[bool]:
        faults = FaultInjector()
        faults.add("flood", count=None, probability=0.3, seed=7)
        return [faults.pick("sendMessage", 1) is not None for _ in range(50)]

    first = pattern()
    assert first == pattern()
    assert 5 < sum(first) < 25


def test_unknown_fault_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown fault kind"):
        FaultInjector().add("explode")


def test_request_log_and_peak_window() -> None:
    clock = Clock()
    log = RequestLog(clock)
    for step in (0.0, 0.1, 0.2, 1.5, 1.6, 3.0):
        clock.now = 1000.0 + step
        log.add("sendMessage", 7, 200, "ok")
    assert [r.seq for r in log.records] == [1, 2, 3, 4, 5, 6]
    assert max_in_window(log.records, 1.0) == 3
    assert max_in_window(log.records, 0.05) == 1
    assert max_in_window([], 1.0) == 0
