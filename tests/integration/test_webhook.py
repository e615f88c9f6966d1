"""The webhook endpoint against a real database: stored before 200, refusals, replays."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from bot.delivery.inbox import InboxProcessor
from bot.delivery.webhook import SECRET_HEADER, WebhookReceiver
from storage.db import Database
from storage.models import InboxUpdate

SECRET = "s3cret-webhook-token_0123456789"


class FakeApp:
    """Stands in for the PTB Application: records the updates the inbox hands it."""

    bot = None

    def __init__(self) -> None:
        self.processed: list[int] = []
        self.seen_in_db: list[bool] = []
        self.db: Database | None = None

    async def process_update(self, update: Any) -> None:
        self.processed.append(update.update_id)


def _update(update_id: int, chat_id: int = -100123, text: str = "Bonjou") -> dict[str, Any]:
    return {
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_700_000_000,
            "chat": {"id": chat_id, "type": "supergroup", "title": "PNH"},
            "from": {"id": 42, "is_bot": False, "first_name": "Jean"},
            "text": text,
        },
    }


@pytest.fixture
async def hook(db: Database) -> AsyncIterator[tuple[WebhookReceiver, FakeApp, httpx.AsyncClient]]:
    app = FakeApp()
    inbox = InboxProcessor(db, app)
    receiver = WebhookReceiver(
        inbox, secret=SECRET, url="https://bot.example.org/tg/hook-path", port=0
    )
    await receiver.start()
    base = f"http://127.0.0.1:{receiver.bound_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10) as http:
        try:
            yield receiver, app, http
        finally:
            await inbox.drain()
            await receiver.stop()


async def _post(http: httpx.AsyncClient, body: Any, secret: str | None = SECRET) -> httpx.Response:
    headers = {SECRET_HEADER: secret} if secret is not None else {}
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    return await http.post(
        "/tg/hook-path",
        content=content,
        headers={**headers, "Content-Type": "application/json"},
    )


async def _stored(db: Database) -> list[int]:
    async with db.transaction() as s:
        return list((await s.execute(select(InboxUpdate.update_id))).scalars())


async def test_update_is_committed_before_200_then_processed(
    db: Database, hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient]
) -> None:
    receiver, app, http = hook
    response = await _post(http, _update(501))
    assert response.status_code == 200
    # Read from another connection right after the answer: the row is already committed.
    assert await _stored(db) == [501]
    await receiver.inbox.drain()
    assert app.processed == [501]


async def test_replayed_update_is_answered_but_processed_once(
    db: Database, hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient]
) -> None:
    receiver, app, http = hook
    assert (await _post(http, _update(601))).status_code == 200
    await receiver.inbox.drain()
    # Telegram posts it again (it did not see our 200): acknowledged, nothing happens twice.
    assert (await _post(http, _update(601))).status_code == 200
    await receiver.inbox.drain()
    assert app.processed == [601]
    assert await _stored(db) == [601]


async def test_per_chat_order_is_kept_for_a_burst(
    hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient],
) -> None:
    receiver, app, http = hook
    for update_id in range(700, 720):
        assert (await _post(http, _update(update_id))).status_code == 200
    await receiver.inbox.drain()
    assert app.processed == list(range(700, 720))


@pytest.mark.parametrize("secret", [None, "", "wrong-secret-0123456789abcdef", SECRET[:-1]])
async def test_wrong_or_missing_secret_is_refused_and_not_stored(
    db: Database,
    hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
    secret: str | None,
) -> None:
    _receiver, app, http = hook
    with caplog.at_level(logging.WARNING, logger="bot.delivery.webhook"):
        response = await _post(http, _update(801), secret=secret)
    assert response.status_code == 403
    assert await _stored(db) == []
    assert app.processed == []
    refusals = [r.getMessage() for r in caplog.records if "refused" in r.getMessage()]
    assert len(refusals) == 1
    assert SECRET not in refusals[0]
    if secret:
        assert secret not in refusals[0]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        b'{"message": {}}',
        b'{"update_id": "12"}',
        b'{"update_id": true}',
        b'{"update_id": -5}',
        b"\xff\xfe",
    ],
    ids=["garbage", "array", "no-id", "string-id", "bool-id", "negative-id", "not-utf8"],
)
async def test_malformed_body_is_400_and_not_stored(
    db: Database, hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient], body: bytes
) -> None:
    _receiver, _app, http = hook
    assert (await _post(http, body)).status_code == 400
    assert await _stored(db) == []


async def test_body_over_one_megabyte_is_refused(
    db: Database, hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient]
) -> None:
    _receiver, _app, http = hook
    big = _update(901, text="x" * (1024 * 1024 + 10))
    assert (await _post(http, big)).status_code == 413

    # The same refusal when the client does not announce a length (chunked upload).
    async def chunks() -> AsyncIterator[bytes]:
        raw = json.dumps(big).encode()
        for i in range(0, len(raw), 64 * 1024):
            yield raw[i : i + 64 * 1024]

    response = await http.post(
        "/tg/hook-path",
        content=chunks(),
        headers={SECRET_HEADER: SECRET, "Content-Type": "application/json"},
    )
    assert response.status_code == 413
    assert await _stored(db) == []


async def test_only_post_on_the_configured_path_is_served(
    hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient],
) -> None:
    _receiver, _app, http = hook
    assert (await http.get("/tg/hook-path")).status_code == 405
    other = await http.post("/", content=json.dumps(_update(1)), headers={SECRET_HEADER: SECRET})
    assert other.status_code == 404


class BrokenInbox(InboxProcessor):
    """An inbox whose database refuses the write."""

    async def store(self, payloads: Any) -> list[int]:
        raise OSError("disk full")


async def test_update_that_cannot_be_stored_is_not_acknowledged(db: Database) -> None:
    receiver = WebhookReceiver(
        BrokenInbox(db, FakeApp()), secret=SECRET, url="https://x.example/hook", port=0
    )
    await receiver.start()
    try:
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{receiver.bound_port}", timeout=10
        ) as http:
            response = await http.post(
                "/hook", content=json.dumps(_update(5)), headers={SECRET_HEADER: SECRET}
            )
    finally:
        await receiver.stop()
    # Not 200: Telegram keeps the update and posts it again later.
    assert response.status_code == 500


async def test_refusals_are_logged_once_per_interval(
    hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient], caplog: pytest.LogCaptureFixture
) -> None:
    _receiver, _app, http = hook
    with caplog.at_level(logging.WARNING, logger="bot.delivery.webhook"):
        results = await asyncio.gather(
            *(_post(http, _update(i), secret="x" * 20) for i in range(30))
        )
    assert {r.status_code for r in results} == {403}
    assert len([r for r in caplog.records if "refused" in r.getMessage()]) == 1


def test_webhook_mode_refuses_to_start_without_a_strong_secret(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.cli import main

    monkeypatch.setenv(
        "DARAJA_TELEGRAM_TOKEN", "7000000001:sandbox-e2e-token-0123456789abcdefghij"
    )
    monkeypatch.setenv("DARAJA_WEBHOOK_URL", "https://bot.example.org/tg/hook")
    assert main(["run", "--webhook"]) == 2
    assert "DARAJA_WEBHOOK_SECRET" in capsys.readouterr().err
    monkeypatch.setenv("DARAJA_WEBHOOK_SECRET", "short")
    assert main(["run", "--webhook"]) == 2
    err = capsys.readouterr().err
    assert "DARAJA_WEBHOOK_SECRET: must be 16-256 characters" in err
    assert "'short'" not in err  # a secret is never echoed, even a bad one


@pytest.mark.parametrize(
    "header",
    ["sécret-webhook-token_0123456789".encode(), b"\xff\xfe-not-utf8", "☃".encode() * 12],
    ids=["non-ascii", "not-utf8", "snowmen"],
)
async def test_non_ascii_secret_header_is_403_not_500(
    db: Database, hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient], header: bytes
) -> None:
    _receiver, app, http = hook
    response = await http.post(
        "/tg/hook-path",
        content=json.dumps(_update(811)).encode(),
        headers={SECRET_HEADER: header, "Content-Type": "application/json"},
    )
    assert response.status_code == 403
    assert await _stored(db) == []
    assert app.processed == []


async def _failed_rows(db: Database) -> dict[int, tuple[str, str | None]]:
    async with db.transaction() as s:
        result = await s.execute(
            select(InboxUpdate.update_id, InboxUpdate.state, InboxUpdate.error)
        )
        return {int(u): (str(st), e) for u, st, e in result.all()}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"update_id": 821, "message": ' + b"[" * 100_000 + b"]" * 100_000 + b"}",
            "unreadable: JSON nested too deeply",
        ),
        (
            b'{"update_id": 821, "message": {"message_id": 1, "date": 1, "text": "a\\ud800b",'
            b' "chat": {"id": -5, "type": "group"}}}',
            "unreadable: lone UTF-16 surrogate in a string",
        ),
    ],
    ids=["100k-deep", "lone-surrogate"],
)
async def test_update_that_can_never_be_processed_is_stored_as_failed_and_acknowledged(
    db: Database,
    hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient],
    caplog: pytest.LogCaptureFixture,
    body: bytes,
    reason: str,
) -> None:
    receiver, app, http = hook
    with caplog.at_level(logging.DEBUG):
        # 200, not 500: Telegram would otherwise post it again for ever.
        assert (await _post(http, body)).status_code == 200
        assert (await _post(http, body)).status_code == 200  # a replay: still one row
        await receiver.inbox.drain()
    assert await _failed_rows(db) == {821: ("failed", reason)}
    assert app.processed == []
    assert "Traceback" not in caplog.text
    # The good update after it goes through.
    assert (await _post(http, _update(822))).status_code == 200
    await receiver.inbox.drain()
    assert app.processed == [822]


async def test_update_id_beyond_64_bits_is_400_and_the_largest_one_is_stored(
    db: Database, hook: tuple[WebhookReceiver, FakeApp, httpx.AsyncClient]
) -> None:
    receiver, app, http = hook
    assert (await _post(http, _update(2**63))).status_code == 400
    assert (await _post(http, _update(2**64 + 5))).status_code == 400
    assert (await _post(http, _update(2**63 - 1))).status_code == 200
    await receiver.inbox.drain()
    assert await _stored(db) == [2**63 - 1]
    assert app.processed == [2**63 - 1]


async def test_slow_clients_are_closed(db: Database) -> None:
    receiver = WebhookReceiver(
        InboxProcessor(db, FakeApp()),
        secret=SECRET,
        url="https://x.example/hook",
        port=0,
        header_timeout=0.5,
        body_timeout=0.5,
    )
    await receiver.start()
    try:
        # Headers that never end: the connection is closed.
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.bound_port)
        writer.write(b"POST /hook HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        await writer.drain()
        assert await asyncio.wait_for(reader.read(), 10) == b""
        writer.close()
        # A body that never comes in full: 408, then closed.
        reader, writer = await asyncio.open_connection("127.0.0.1", receiver.bound_port)
        head = (
            f"POST /hook HTTP/1.1\r\nHost: x\r\n{SECRET_HEADER}: {SECRET}\r\n"
            "Content-Type: application/json\r\nContent-Length: 100\r\n\r\n"
        )
        writer.write(head.encode() + b'{"update_id": 1')
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 10)
        assert answer.startswith(b"HTTP/1.1 408")
        writer.close()
    finally:
        await receiver.stop()
    assert await _stored(db) == []
