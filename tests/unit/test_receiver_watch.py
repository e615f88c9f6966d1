"""The receiving process's watch over PostgreSQL's receiver lock says each change once."""

from __future__ import annotations

import asyncio
import logging

import pytest

from bot.app import _receiver_watch


class _Db:
    def __init__(self, states: list[str]) -> None:
        self.states = states

    async def check_receiver_lock(self) -> str:
        if not self.states:
            raise asyncio.CancelledError
        return self.states.pop(0)


async def test_each_change_is_said_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="daraja")
    states = ["held", "retaken", "held", "unreachable", "unreachable", "lost", "lost", "retaken"]
    with pytest.raises(asyncio.CancelledError):
        await _receiver_watch(_Db(states), 0)
    said = [(r.levelname, r.getMessage().split(";")[0]) for r in caplog.records]
    assert said == [
        ("WARNING", "receiver lock: its PostgreSQL connection was lost"),
        ("WARNING", "receiver lock: PostgreSQL cannot be reached"),
        ("ERROR", "receiver lock: another Daraja took it while this one's connection was down"),
        ("WARNING", "receiver lock: its PostgreSQL connection was lost"),
    ]
