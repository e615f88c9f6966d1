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
from pathlib import Path

import pytest

from bot.observability.logging_setup import setup_logging

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
        # Loggers first created during the test (by imports) go back to inheriting, so a
        # later test's alembic or SQLAlchemy engine is not left at DEBUG.
        for name in set(logging.root.manager.loggerDict) - set(levels):
            logger = logging.root.manager.loggerDict[name]
            if isinstance(logger, logging.Logger):
                logger.setLevel(logging.NOTSET)
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
    import bot.delivery.inbox
    import bot.delivery.outbox
    import bot.delivery.webhook
    import bot.observability.metrics  # noqa: F401
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
    assert {"httpx", "httpcore", "telegram.ext", "bot.delivery.webhook", "sqlalchemy"} <= set(
        names
    )
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

    from bot.devtools.sandbox import Sandbox

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

    from bot.devtools.sandbox import Sandbox

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


def test_uncaught_exception_in_plain_mode_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """python-telegram-bot's InvalidToken quotes the rejected token in full."""
    import sys

    from telegram.error import InvalidToken

    short_token = "123456789:AAshortsecrettoken12345"
    setup_logging(secrets=[short_token])
    try:
        raise InvalidToken(f"The token `{short_token}` was rejected by the server.")
    except InvalidToken as exc:
        sys.excepthook(type(exc), exc, exc.__traceback__)
    err = capsys.readouterr().err
    assert "InvalidToken: The token `<secret>` was rejected" in err
    assert "Traceback" in err
    assert short_token not in err


@pytest.mark.parametrize("json_lines", [False, True], ids=["plain", "json"])
def test_every_kind_of_secret_is_masked(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    from bot.settings import Settings

    settings = Settings(
        _env_file=None,
        telegram_token="123456:shortsecret-abcdefgh1234",
        webhook_secret="hook-secret_0123456789abcdefghij",
        libretranslate_api_key="lt-api-key-42x",
        audit_hmac_key="audit-hmac-key-7q",
        database_url="postgresql+asyncpg://daraja:pg-pass-Zz9@db.internal/daraja",
    )
    setup_logging(json_lines=json_lines, secrets=settings.secret_values())
    log = logging.getLogger("translation.libretranslate")
    log.warning("POST https://lt1/translate api_key=%s", "lt-api-key-42x")
    log.warning("chain key %s, secret %s", "audit-hmac-key-7q", "hook-secret_0123456789abcdefghij")
    try:
        raise OSError("connect postgresql://daraja:pg-pass-Zz9@db.internal/daraja failed")
    except OSError:
        logging.getLogger("sqlalchemy.pool").exception("pool")
    # A URL password that is no setting of ours (a LibreTranslate URL with basic auth).
    logging.getLogger("daraja").error("server https://ops:hunter2-basic@lt2.internal/ is down")
    err = capsys.readouterr().err
    for secret in (
        "123456:shortsecret-abcdefgh1234",
        "hook-secret_0123456789abcdefghij",
        "lt-api-key-42x",
        "audit-hmac-key-7q",
        "pg-pass-Zz9",
        "hunter2-basic",
    ):
        assert secret not in err
    assert "https://ops:<secret>@lt2.internal/" in err


def test_cli_errors_mask_the_configured_secrets(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """What a command prints about a failure goes through the same masks as a log line."""
    from bot import cli
    from bot.errors import DarajaError

    monkeypatch.setenv("DARAJA_AUDIT_HMAC_KEY", "audit-hmac-key-7q")
    monkeypatch.setenv(
        "DARAJA_DATABASE_URL", "postgresql+asyncpg://daraja:pg-pass-Zz9@db.internal/daraja"
    )

    def fail(_args: object) -> int:
        raise DarajaError(
            "postgresql+asyncpg://daraja:pg-pass-Zz9@db.internal refused key audit-hmac-key-7q"
        )

    monkeypatch.setattr("bot.cli.health._run", fail)
    assert cli.main(["health"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("daraja: ")
    assert "pg-pass-Zz9" not in err
    assert "audit-hmac-key-7q" not in err


TEXT = "Patwouy la rive nan kafou a 10:05, tout moun an plas"
CODE = "DRJ-7KQ4-M9XT"


def _record_content_everywhere() -> None:
    """The library log lines that carried message texts and codes, as the libraries log them."""
    from telegram import Update

    update = Update.de_json(
        {
            "update_id": 7,
            "message": {
                "message_id": 1,
                "date": 0,
                "chat": {"id": -100, "type": "supergroup", "title": "t"},
                "from": {"id": 5, "is_bot": False, "first_name": "Jean"},
                "text": TEXT,
            },
        },
        None,
    )
    ptb = logging.getLogger("telegram.ext.ExtBot")
    ptb.debug(
        "Calling Bot API endpoint `%s` with parameters `%s`",
        "sendMessage",
        {"chat_id": -100, "text": f"{TEXT} /join {CODE}"},
    )
    ptb.debug(
        "Call to Bot API endpoint `%s` finished with return value `%s`",
        "sendMessage",
        {"message_id": 9, "text": TEXT},
    )
    logging.getLogger("telegram.ext.Application").debug("Processing update %s", update)
    # At CRITICAL (so at INFO too): a batch that does not parse, dumped whole.
    logging.getLogger("telegram.Bot").critical(
        "Error while parsing updates! Received data was %r",
        [{"update_id": 7, "message": {"text": TEXT}}, {"update_id": 8, "message": {"text": CODE}}],
    )
    logging.getLogger("telegram.request").error('Can not load invalid JSON data: "%s"', TEXT)
    logging.getLogger("httpx").info(
        'HTTP Request: %s %s "%s %d %s"',
        "POST",
        "http://127.0.0.1/bot<t>/sendMessage",
        "HTTP/1.1",
        200,
        "OK",
    )
    logging.getLogger("aiohttp.server").debug("body %s", TEXT.encode())
    # Daraja's own lines never carry texts; a code in one is still masked.
    logging.getLogger("bot.services.enrollment").info(f"code {CODE} used")


@pytest.mark.parametrize("json_lines", [False, True], ids=["plain", "json"])
def test_message_content_never_reaches_the_log(
    json_lines: bool, capsys: pytest.CaptureFixture[str]
) -> None:
    _import_everything()
    setup_logging(level="DEBUG", json_lines=json_lines)
    for name in ("httpx", "aiohttp.server"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    _record_content_everywhere()
    err = capsys.readouterr().err
    assert "Calling Bot API endpoint `sendMessage` with parameters `<dict: chat_id, text>`" in err
    assert "Processing update <Update 7>" in err
    assert "Received data was <list of 2>" in err
    assert "http://127.0.0.1/bot<t>/sendMessage" in err  # URLs and ids stay readable
    assert "code <code> used" in err
    assert "Patwouy" not in err
    assert "kafou" not in err
    assert CODE not in err


def test_content_logging_is_an_explicit_setting(capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(level="DEBUG", log_content=True)
    _record_content_everywhere()
    err = capsys.readouterr().err
    assert TEXT in err
    assert CODE in err


async def test_sqlalchemy_echo_shows_no_parameters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """echo=True gives SQLAlchemy's engine logger a handler of its own, writing to stdout."""
    from sqlalchemy import text

    from storage.db import Database

    setup_logging(level="DEBUG")
    db = Database(f"sqlite+aiosqlite:///{tmp_path}/echo.db", echo=True)
    try:
        async with db.transaction() as s:
            await s.execute(text("CREATE TABLE t (body TEXT)"))
            await s.execute(text("INSERT INTO t VALUES (:body)"), {"body": TEXT})
            await s.execute(text("INSERT INTO t VALUES (:body)"), {"body": 1})
            await s.execute(text("INSERT INTO t VALUES (:body)"), {"body": 1})
        async with db.transaction() as s:
            await s.execute(text("INSERT INTO nowhere VALUES (:body)"), {"body": TEXT})
    except Exception as exc:
        logging.getLogger("daraja").error("failed", exc_info=exc)
    finally:
        await db.dispose()
        # echo's own handler writes to this test's captured stdout: it goes with the test.
        engine_logger = logging.getLogger("sqlalchemy.engine.Engine")
        for handler in list(engine_logger.handlers):
            engine_logger.removeHandler(handler)
    out = capsys.readouterr()
    assert "INSERT INTO t VALUES" in out.out  # echo did log the statements
    assert "nowhere" in out.err
    assert "Patwouy" not in out.out + out.err
