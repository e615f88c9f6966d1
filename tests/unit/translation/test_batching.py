"""Cross-message batching: bounded batches, results to the right caller, dedup, isolation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from translation.batching import Batcher
from translation.errors import ModelError


class Work:
    """A blocking batch function that records the batches it saw."""

    def __init__(self, fail_on: str | None = None, gate: threading.Event | None = None) -> None:
        self.batches: list[list[str]] = []
        self.fail_on = fail_on
        self.gate = gate

    def __call__(self, items: list[str]) -> list[str]:
        self.batches.append(list(items))
        if self.gate is not None:
            self.gate.wait(timeout=10)
        if self.fail_on is not None and self.fail_on in items:
            raise RuntimeError("boom")
        return [f"<{i}>" for i in items]


async def test_concurrent_requests_share_bounded_batches_and_get_their_own_result() -> None:
    work = Work()
    batcher: Batcher[str, str] = Batcher(work, name="m", max_batch=16, max_wait_s=0.01)
    items = [f"msg {i}" for i in range(200)]
    results = await asyncio.gather(*(batcher.submit(i) for i in items))
    assert results == [f"<{i}>" for i in items]
    assert all(len(b) <= 16 for b in work.batches)
    assert len(work.batches) <= 200 // 16 + 2  # batched, not one call per message
    assert batcher.calls == len(work.batches)
    assert sorted(x for b in work.batches for x in b) == sorted(items)


async def test_identical_requests_in_flight_are_computed_once() -> None:
    work = Work()
    batcher: Batcher[str, str] = Batcher(work, name="m", max_batch=8, max_wait_s=0.01)
    results = await asyncio.gather(*(batcher.submit("same") for _ in range(20)))
    assert results == ["<same>"] * 20
    assert [x for b in work.batches for x in b] == ["same"]
    assert batcher.deduplicated == 19


async def test_a_failing_request_fails_only_its_caller() -> None:
    work = Work(fail_on="bad")
    batcher: Batcher[str, str] = Batcher(work, name="m", max_batch=8, max_wait_s=0.01)
    items = ["a", "b", "bad", "c"]
    results = await asyncio.gather(*(batcher.submit(i) for i in items), return_exceptions=True)
    assert results[0] == "<a>"
    assert results[1] == "<b>"
    assert results[3] == "<c>"
    assert isinstance(results[2], ModelError)
    assert "model m failed" in str(results[2])
    # The batcher keeps serving after a failure.
    assert await batcher.submit("d") == "<d>"


async def test_a_hung_model_fails_with_model_error_instead_of_hanging() -> None:
    gate = threading.Event()
    batcher: Batcher[str, str] = Batcher(
        Work(gate=gate), name="slow", max_batch=4, max_wait_s=0, timeout_s=0.05
    )
    try:
        with pytest.raises(ModelError, match="did not answer"):
            await batcher.submit("x")
    finally:
        gate.set()
        await batcher.close()


async def test_a_cancelled_caller_does_not_cancel_others_waiting_for_the_same_segment() -> None:
    gate = threading.Event()
    batcher: Batcher[str, str] = Batcher(Work(gate=gate), name="m", max_batch=4, max_wait_s=0)
    first = asyncio.create_task(batcher.submit("x"))
    second = asyncio.create_task(batcher.submit("x"))
    await asyncio.sleep(0.01)
    first.cancel()
    gate.set()
    assert await second == "<x>"
    await batcher.close()


async def test_close_fails_queued_requests() -> None:
    gate = threading.Event()
    batcher: Batcher[str, str] = Batcher(Work(gate=gate), name="m", max_batch=1, max_wait_s=0)
    running = asyncio.create_task(batcher.submit("a"))
    queued = asyncio.create_task(batcher.submit("b"))
    await asyncio.sleep(0.01)
    closing = asyncio.create_task(batcher.close())
    await asyncio.sleep(0.01)
    gate.set()
    await closing
    assert await running == "<a>"
    with pytest.raises(ModelError, match="closed"):
        await queued
    with pytest.raises(ModelError, match="closed"):
        await batcher.submit("c")
