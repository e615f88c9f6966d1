"""Running the async repositories on a synchronous session, in one go.

The repositories (storage/repositories.py, storage/messages.py, ...) are written against
`AsyncSession`. Through the async SQLite driver every statement is several hand-offs between
the event loop and the driver's thread, and under a burst each hand-off waits for a turn of a
busy loop: a read of eight statements took ~100 ms on a loaded loop. `Database.read_inline`
runs the same repository code on a synchronous session instead (on SQLite, on the event loop's
own thread): the session below answers each awaited call at once, so the coroutine never
suspends and is driven to its end by a single `send`.

Only database calls may be awaited in such code (no sleeps, no network): anything that really
suspends raises `InlineSuspended` instead of silently blocking.
"""

from __future__ import annotations

from collections.abc import Coroutine
from typing import Any, TypeVar, cast

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

T = TypeVar("T")


class InlineSuspended(RuntimeError):
    """Code run inline awaited something that is not an immediate database call."""


class InlineSession:
    """The part of `AsyncSession`'s interface the repositories use, answered synchronously."""

    def __init__(self, session: Session) -> None:
        self.sync_session = session

    async def execute(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.execute(*args, **kwargs)

    async def scalars(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.scalars(*args, **kwargs)

    async def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.sync_session.get(*args, **kwargs)

    async def flush(self, *args: Any, **kwargs: Any) -> None:
        self.sync_session.flush(*args, **kwargs)

    async def run_sync(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        return fn(self.sync_session, *args, **kwargs)

    def add(self, instance: Any) -> None:
        self.sync_session.add(instance)

    def get_bind(self) -> Any:
        return self.sync_session.get_bind()


def as_async(session: Session) -> AsyncSession:
    """The synchronous session, typed as the repositories expect it."""
    return cast(AsyncSession, InlineSession(session))


def run_inline(coro: Coroutine[Any, Any, T]) -> T:
    """Drive a coroutine whose awaits all complete at once; return its result."""
    try:
        coro.send(None)
    except StopIteration as done:
        return cast(T, done.value)
    coro.close()
    raise InlineSuspended("inline database code awaited something that suspends")
