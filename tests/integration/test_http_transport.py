"""The Bot API transport over aiohttp: bodies, and errors with the meaning the outbox needs."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from telegram.error import BadRequest, NetworkError, RetryAfter, TimedOut
from telegram.request import RequestData
from telegram.request._requestparameter import RequestParameter

from bot.delivery.http import AiohttpRequest
from bot.delivery.ratelimit import retry_seconds


@pytest.fixture
async def server() -> AsyncIterator[tuple[str, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def handle(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append({"content_type": request.content_type, "body": body})
        method = request.match_info["method"]
        if method == "slow":
            await asyncio.sleep(2)
        if method == "flood":
            return web.json_response(
                {"ok": False, "error_code": 429, "parameters": {"retry_after": 7}}, status=429
            )
        if method == "bad":
            return web.json_response(
                {"ok": False, "error_code": 400, "description": "Bad Request: chat not found"},
                status=400,
            )
        return web.json_response({"ok": True, "result": {"message_id": 42}})

    app = web.Application()
    app.router.add_post("/bot/{method}", handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/bot", seen
    finally:
        await runner.cleanup()


def _data(**params: Any) -> RequestData:
    return RequestData([RequestParameter.from_input(k, v) for k, v in params.items()])


async def test_sends_json_and_returns_the_result(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, seen = server
    async with AiohttpRequest() as request:
        result = await request.post(
            f"{url}/sendMessage",
            _data(chat_id=-100, text="<b>Nou</b> & 🙂", reply_parameters={"message_id": 5}),
        )
    assert result == {"message_id": 42}
    assert seen[0]["content_type"] == "application/json"
    assert json.loads(seen[0]["body"]) == {
        "chat_id": -100,
        "text": "<b>Nou</b> & 🙂",
        "reply_parameters": {"message_id": 5},
    }


async def test_telegram_refusals_keep_their_meaning(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    url, _ = server
    async with AiohttpRequest() as request:
        with pytest.raises(RetryAfter) as flood:
            await request.post(f"{url}/flood", _data(chat_id=1))
        assert retry_seconds(flood.value.retry_after) == 7
        with pytest.raises(BadRequest, match=r"(?i)chat not found"):
            await request.post(f"{url}/bad", _data(chat_id=1))


async def test_a_timeout_after_sending_is_timed_out(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    """The request left: Telegram may have acted, so the outbox must treat it as ambiguous."""
    url, seen = server
    async with AiohttpRequest(read_timeout=0.3, write_timeout=0.0) as request:
        with pytest.raises(TimedOut):
            await request.post(f"{url}/slow", _data(chat_id=1))
    assert len(seen) == 1  # it did reach the server


async def test_nothing_listening_is_a_network_error_not_a_timeout() -> None:
    """Nothing was sent: the outbox retries without marking a possible repeat."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with AiohttpRequest() as request:
        with pytest.raises(NetworkError) as caught:
            await request.post(f"http://127.0.0.1:{port}/bot/sendMessage", _data(chat_id=1))
        assert not isinstance(caught.value, TimedOut)


async def test_files_go_as_multipart_with_the_other_fields(
    server: tuple[str, list[dict[str, Any]]],
) -> None:
    from telegram import InputFile

    url, seen = server
    async with AiohttpRequest() as request:
        await request.post(
            f"{url}/sendDocument",
            _data(
                chat_id=-100, caption="rapò", document=InputFile(b"PDF-bytes", filename="r.pdf")
            ),
        )
    assert seen[0]["content_type"] == "multipart/form-data"
    body = seen[0]["body"]
    assert b'name="chat_id"' in body
    assert b"-100" in body
    assert "rapò".encode() in body
    assert b'filename="r.pdf"' in body
    assert b"PDF-bytes" in body
