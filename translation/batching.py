"""Cross-message batching: concurrent requests for one model share one inference call.

A `Batcher` owns a queue for one model. Callers `await submit(request)`; a dispatcher task
groups queued requests into batches of at most `max_batch`, waiting at most `max_wait_s`
after the oldest request arrived for company, and runs each batch with a blocking `work`
function in a thread pool so the event loop never blocks. Identical requests in flight are
computed once and every caller gets the shared result. A failing batch is retried one request
at a time so only the request that breaks the model fails; a batch that takes longer than
`timeout_s` fails its callers with `ModelError` instead of hanging them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from translation.errors import ModelError, TranslationError

log = logging.getLogger(__name__)

Req = TypeVar("Req", bound=Hashable)
Res = TypeVar("Res")


@dataclass
class _Pending(Generic[Req, Res]):
    request: Req
    future: asyncio.Future[Res]
    arrived: float


def _consume(fut: asyncio.Future[Any]) -> None:
    # Every caller may have given up (cancelled); mark the exception retrieved so asyncio
    # does not log "exception was never retrieved" for a result nobody waits for.
    if not fut.cancelled():
        fut.exception()


class Batcher(Generic[Req, Res]):
    """Groups concurrent requests for one model into bounded batches run off the event loop."""

    def __init__(
        self,
        work: Callable[[list[Req]], Sequence[Res]],
        *,
        name: str,
        max_batch: int,
        max_wait_s: float,
        executor: Executor | None = None,
        concurrency: int = 1,
        timeout_s: float | None = 300.0,
    ) -> None:
        if max_batch < 1:
            raise ValueError("max_batch must be >= 1")
        if concurrency < 1:
            raise ValueError("concurrency must be >= 1")
        self.name = name
        self.max_batch = max_batch
        self.max_wait_s = max(0.0, max_wait_s)
        self.timeout_s = timeout_s
        self._work = work
        self._executor = executor
        self._queue: list[_Pending[Req, Res]] = []
        self._inflight: dict[Req, asyncio.Future[Res]] = {}
        self._slots = asyncio.Semaphore(concurrency)
        self._arrived = asyncio.Event()
        self._dispatcher: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self._closed = False
        # Counters for tests, benchmarks and metrics.
        self.calls = 0  # invocations of `work`
        self.items = 0  # requests handed to `work`
        self.deduplicated = 0  # submits served by an identical request already in flight

    async def submit(self, request: Req) -> Res:
        """Queue one request (or join an identical one in flight) and await its result."""
        if self._closed:
            raise ModelError(f"model {self.name}: the engine is closed")
        fut = self._inflight.get(request)
        if fut is None:
            loop = asyncio.get_running_loop()
            fut = loop.create_future()
            fut.add_done_callback(_consume)
            self._inflight[request] = fut
            self._queue.append(_Pending(request, fut, loop.time()))
            self._arrived.set()
            if self._dispatcher is None or self._dispatcher.done():
                self._dispatcher = loop.create_task(self._dispatch(), name=f"batcher:{self.name}")
        else:
            self.deduplicated += 1
        # shield: one caller giving up must not cancel the result others wait for.
        return await asyncio.shield(fut)

    async def _dispatch(self) -> None:
        loop = asyncio.get_running_loop()
        while self._queue:
            await self._slots.acquire()
            try:
                # Wait for company until the batch is full or the oldest request has waited
                # max_wait_s. Requests queued while a batch ran have already waited: they go
                # at once.
                while len(self._queue) < self.max_batch:
                    remaining = self._queue[0].arrived + self.max_wait_s - loop.time()
                    if remaining <= 0:
                        break
                    self._arrived.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._arrived.wait(), remaining)
                batch = self._queue[: self.max_batch]
                del self._queue[: self.max_batch]
            except BaseException:
                self._slots.release()
                raise
            task = loop.create_task(self._run(batch))
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _call(self, requests: list[Req]) -> Sequence[Res]:
        loop = asyncio.get_running_loop()
        self.calls += 1
        self.items += len(requests)
        try:
            results = await asyncio.wait_for(
                loop.run_in_executor(self._executor, self._work, requests), self.timeout_s
            )
        except TimeoutError:
            raise ModelError(
                f"model {self.name} did not answer within {self.timeout_s:.0f} s; "
                "check the machine's load or reinstall the model (daraja models list)"
            ) from None
        except TranslationError:
            raise
        except Exception as exc:
            raise ModelError(
                f"model {self.name} failed: {type(exc).__name__}: {exc}; "
                "reinstall it with `daraja models install` if this persists"
            ) from exc
        if len(results) != len(requests):
            raise ModelError(
                f"model {self.name} returned {len(results)} results for {len(requests)} inputs"
            )
        return results

    async def _run(self, batch: list[_Pending[Req, Res]]) -> None:
        try:
            try:
                results = await self._call([p.request for p in batch])
            except ModelError as exc:
                if len(batch) == 1:
                    self._settle(batch[0], error=exc)
                    return
                log.warning(
                    "model %s: batch of %d failed; retrying one by one", self.name, len(batch)
                )
                for pending in batch:
                    try:
                        (result,) = await self._call([pending.request])
                    except ModelError as single:
                        self._settle(pending, error=single)
                    else:
                        self._settle(pending, result=result)
                return
            for pending, result in zip(batch, results, strict=True):
                self._settle(pending, result=result)
        except BaseException as exc:  # cancellation at close: never leave a caller hanging
            for pending in batch:
                self._settle(pending, error=ModelError(f"model {self.name}: {exc!r}"))
            raise
        finally:
            self._slots.release()

    def _settle(
        self,
        pending: _Pending[Req, Res],
        *,
        result: Res | None = None,
        error: BaseException | None = None,
    ) -> None:
        if self._inflight.get(pending.request) is pending.future:
            del self._inflight[pending.request]
        if pending.future.done():
            return
        if error is not None:
            pending.future.set_exception(error)
        else:
            pending.future.set_result(result)  # type: ignore[arg-type]

    async def close(self) -> None:
        """Fail queued requests, cancel the dispatcher and wait for running batches."""
        self._closed = True
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._dispatcher
        for pending in self._queue:
            self._settle(pending, error=ModelError(f"model {self.name}: the engine is closed"))
        self._queue.clear()
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
