"""Logging: plain or JSON lines; secrets never reach a log line.

httpx logs every request URL at INFO, and Bot API URLs carry the token, so httpx and httpcore
are held at WARNING, and a filter masks anything token-shaped that still gets through.

Issue 10: masking also happens on the *formatted* line (exception texts and stack traces carry
URLs too), the configured secrets (token, webhook secret, LibreTranslate key, database
password) are masked literally whatever their shape, and in JSON mode every line written is one
JSON object: Python warnings and uncaught exceptions are routed through logging as well.
"""

from __future__ import annotations

import json
import logging
import re
import sys
from collections.abc import Iterable
from datetime import UTC, datetime
from types import TracebackType

TOKEN_RE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")
MASK = "<token>"
SECRET_MASK = "<secret>"  # noqa: S105 - the mask, not a secret
# Secrets shorter than this are not masked literally (masking "ab" everywhere would garble
# lines and reveal nothing useful); settings already refuse such short secrets.
_MIN_SECRET_LEN = 6


class Redactor:
    """Masks token-shaped strings and the configured secrets in a text."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted(
            {s for s in secrets if s and len(s) >= _MIN_SECRET_LEN}, key=len, reverse=True
        )

    def __call__(self, text: str) -> str:
        """The text with every secret masked."""
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, SECRET_MASK)
        if TOKEN_RE.search(text):
            text = TOKEN_RE.sub(MASK, text)
        return text


class RedactTokens(logging.Filter):
    """Replace token-shaped strings (and configured secrets) in every record with a mask."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = self.redactor(msg)
        if clean != msg:
            record.msg = clean
            record.args = None
        return True


class PlainFormatter(logging.Formatter):
    """`time level logger: message`, with secrets masked in the whole output (tracebacks too)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message (and exception, if any)."""

    def __init__(self, redactor: Redactor | None = None) -> None:
        super().__init__()
        self.redactor = redactor or Redactor()

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": self.redactor(record.getMessage()),
        }
        if record.exc_info:
            entry["exc"] = self.redactor(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = self.redactor(self.formatStack(record.stack_info))
        # json.dumps escapes newlines: a multi-line message or traceback stays one line.
        return json.dumps(entry, ensure_ascii=False)


def _log_uncaught(
    exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
) -> None:
    """sys.excepthook in JSON mode: an uncaught exception is one more JSON log line."""
    if issubclass(exc_type, KeyboardInterrupt):
        sys.__excepthook__(exc_type, exc, tb)
        return
    logging.getLogger("daraja").critical("uncaught exception", exc_info=(exc_type, exc, tb))


def setup_logging(
    *,
    verbose: bool = False,
    level: str = "INFO",
    json_lines: bool = False,
    secrets: Iterable[str] = (),
) -> None:
    """Configure the root logger once for the process; `secrets` are masked literally."""
    redactor = Redactor(secrets)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.addFilter(RedactTokens(redactor))
    if json_lines:
        handler.setFormatter(JsonFormatter(redactor))
        sys.excepthook = _log_uncaught
    else:
        handler.setFormatter(PlainFormatter(redactor))
        sys.excepthook = sys.__excepthook__
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level))
    # Python warnings become log records (one JSON object each in JSON mode).
    logging.captureWarnings(True)
    # aiosqlite logs every statement's thread hand-off at DEBUG (thousands of lines a minute).
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler", "alembic", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
