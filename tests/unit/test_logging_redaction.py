"""No bot token (or configured secret) reaches a log line, and JSON logs are one object a line.

The token is pushed through every logger the bot's libraries create, at DEBUG, in messages,
arguments and exception texts, and through real library code paths that log request URLs
(httpx/httpcore at DEBUG, python-telegram-bot calling the sandbox).
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections.abc import Iterator

import pytest

from bot.logging_setup import setup_logging

TOKEN = "7000000001:sandbox-e2e-token-0123456789abcdefghij"
TOKEN_SHAPE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    """setup_logging reconfigures the root logger: put pytest's set-up back afterwards."""
    import sys

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    levels = {name: logging.getLogger(name).level for name in logging.root.manager.loggerDict}
    hook = sys.excepthook
    try:
        yield
    finally:
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)
        for name, old in levels.items():
            logging.getLogger(name).setLevel(old)
        logging.captureWarnings(False)
        sys.excepthook = hook


def _import_everything() -> None:
    """Import what the running bot imports, so their loggers exist."""
    import aiohttp.web  # noqa: F401
    import alembic.runtime.migration  # noqa: F401
    import httpx  # noqa: F401
    import sqlalchemy.ext.asyncio  # noqa: F401
    import telegram.ext  # noqa: F401

    import bot.app
    import bot.inbox
    import bot.metrics
    import bot.outbox
    import bot.webhook  # noqa: F401
    import storage.db  # noqa: F401


def _every_logger() -> list[str]:
    return sorted(
        name
        for name, obj in logging.root.manager.loggerDict.items()
        if isinstance(obj, logging.Logger)
    )


@pytest.mark.parametrize("json_lines", [False, True], ids=["plain", "json"])
def test_token_through_every_logger_is_masked(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_everything()
    setup_logging(level="DEBUG", json_lines=json_lines)
    names = _every_logger()
    assert {"httpx", "httpcore", "telegram.ext", "bot.webhook", "sqlalchemy"} <= set(names)
    for name in names:
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)  # even the ones held at WARNING (httpx, httpcore)
        logger.debug("GET https://api.telegram.org/bot%s/getUpdates", TOKEN)
        logger.info(f"url=https://api.telegram.org/bot{TOKEN}/sendMessage")
        logger.warning("%s", {"token": TOKEN})
        try:
            raise RuntimeError(f"request to /bot{TOKEN}/getMe failed")
        except RuntimeError:
            logger.exception("with a traceback")
        logger.error("stack", stack_info=True, extra={"note": "x"})
    err = capsys.readouterr().err
    assert len(err.splitlines()) >= 5 * len(names)
    assert TOKEN_SHAPE.search(err) is None
    assert "<token>" in err


def test_configured_secrets_are_masked_whatever_their_shape(
    capsys: pytest.CaptureFixture[str],
) -> None:
    short_token = "123456:shortsecret-abcdefgh1234"  # 24 characters: not "token-shaped"
    webhook_secret = "hook-secret_0123456789abcdefghij"
    setup_logging(level="DEBUG", secrets=[short_token, webhook_secret])
    log = logging.getLogger("telegram.ext.ExtBot")
    log.debug("set_webhook(%s)", {"secret_token": webhook_secret, "url": f"/bot{short_token}"})
    err = capsys.readouterr().err
    assert short_token not in err
    assert webhook_secret not in err
    assert err.count("<secret>") == 2


async def test_httpx_request_urls_at_debug_are_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """httpx logs each request URL (INFO) and httpcore its steps (DEBUG): even when an
    operator turns them on, the token in a Bot API URL is masked."""
    import httpx

    from bot.sandbox import Sandbox

    setup_logging(level="DEBUG")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    async with Sandbox(TOKEN) as sb, httpx.AsyncClient() as http:
        response = await http.post(f"{sb.url}/bot{TOKEN}/getMe")
        wrong = await http.post(f"{sb.url}/bot{TOKEN}x/getMe")
    assert (response.status_code, wrong.status_code) == (200, 401)
    err = capsys.readouterr().err
    assert "HTTP Request: POST" in err  # httpx did log the URLs
    assert TOKEN_SHAPE.search(err) is None


async def test_python_telegram_bot_at_debug_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """PTB's own debug logging of calls and errors, against the sandbox."""
    from telegram import Bot
    from telegram.error import InvalidToken

    from bot.sandbox import Sandbox

    setup_logging(level="DEBUG")
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    async with Sandbox(TOKEN) as sb:
        async with Bot(TOKEN, base_url=f"{sb.url}/bot") as bot:
            await bot.get_me()
            await bot.set_webhook("https://bot.example.org/hook", secret_token="x" * 20)
        bad = TOKEN[:-1] + "X"
        with pytest.raises(InvalidToken):
            async with Bot(bad, base_url=f"{sb.url}/bot") as other:
                await other.get_me()
    err = capsys.readouterr().err
    assert "getMe" in err
    assert TOKEN_SHAPE.search(err) is None


def test_json_mode_writes_one_object_per_line(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(level="DEBUG", json_lines=True)
    log = logging.getLogger("daraja")
    log.info("two\nlines and a token %s", TOKEN)
    try:
        {}["missing"]
    except KeyError:
        log.exception("failed")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library complains", DeprecationWarning, stacklevel=1)
    lines = capsys.readouterr().err.splitlines()
    entries = [json.loads(line) for line in lines]
    assert all(isinstance(e, dict) for e in entries)
    assert [e["logger"] for e in entries] == ["daraja", "daraja", "py.warnings"]
    assert entries[0]["msg"] == "two\nlines and a token <token>"
    assert "KeyError" in entries[1]["exc"]
    assert {"ts", "level", "logger", "msg"} <= set(entries[2])
