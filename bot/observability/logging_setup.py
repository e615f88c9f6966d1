"""Logging: plain or JSON lines; secrets never reach a log line.

httpx logs every request URL at INFO, and Bot API URLs carry the token, so httpx and httpcore
are held at WARNING, and a filter masks anything token-shaped that still gets through.

Masking also happens on the *formatted* line (exception texts and stack traces carry
URLs too), the configured secrets (token, webhook secret, LibreTranslate key, database
password) are masked literally whatever their shape, and in JSON mode every line written is one
JSON object: Python warnings and uncaught exceptions are routed through logging as well.
Uncaught exceptions in plain mode are masked too (a rejected token is in PTB's message).

Message content: Daraja's own log lines carry ids, never texts. Libraries do not hold back:
python-telegram-bot logs every request's parameters and every update at DEBUG and a whole
batch of raw updates when one fails to parse, SQLAlchemy's echo logs statement parameters. So
the arguments of every record from another package are reduced to their shape (`<dict: chat_id,
text>`, `<text of 42 chars>`) unless they are short, space-free tokens (ids, endpoints, URLs),
and enrollment codes are masked in every line. `DARAJA_LOG_CONTENT=true` turns this off.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import traceback
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from types import TracebackType

TOKEN_RE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")
MASK = "<token>"
SECRET_MASK = "<secret>"  # noqa: S105 - the mask, not a secret
# A password in any URL (`scheme://user:password@host`), configured or not.
URL_PASSWORD_RE = re.compile(r"(\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@")
# Enrollment codes are as good as a password until used; typed by hand, so any case.
CODE_RE = re.compile(r"DRJ-[A-Z0-9]{4}-?[A-Z0-9]{4}", re.IGNORECASE)
CODE_MASK = "<code>"
# Loggers whose lines Daraja's own review keeps free of message content.
OWN_LOGGERS = ("daraja", "bot", "handlers", "storage", "translation")
# A library's argument is kept as is when its text is at most this long and has no spaces.
_MAX_KEPT_ARG = 120
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
        if "://" in text:
            text = URL_PASSWORD_RE.sub(rf"\1{SECRET_MASK}@", text)
        return text


class ContentRedactor(Redactor):
    """A Redactor that also masks enrollment codes (unless content logging is on)."""

    def __init__(self, secrets: Iterable[str] = (), *, log_content: bool = False) -> None:
        super().__init__(secrets)
        self.log_content = log_content

    def __call__(self, text: str) -> str:
        """The text with every secret (and every enrollment code) masked."""
        text = super().__call__(text)
        if not self.log_content and "-" in text:
            text = CODE_RE.sub(CODE_MASK, text)
        return text


def _is_own(name: str) -> bool:
    return any(name == own or name.startswith(own + ".") for own in OWN_LOGGERS)


class Shape(str):
    """What stands for an argument in a log line; `%r` shows it as `%s` does."""

    __slots__ = ()

    def __repr__(self) -> str:
        return str(self)


def shape(value: object) -> object:
    """A library's log argument, or only its shape when it could carry message content."""
    if isinstance(value, Shape):  # shaped already (a logger's filter, then the handler's)
        return value
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, BaseException):
        return value  # errors name what failed; their texts go through the redactor
    if isinstance(value, type):
        return Shape(f"<class {value.__qualname__}>")
    if isinstance(value, Mapping):
        keys = ", ".join(str(k) for k in list(value)[:12] if isinstance(k, str | int))
        return Shape(f"<{type(value).__name__}: {keys}>")
    if isinstance(value, list | tuple | set | frozenset):
        items = list(value)
        if all(v is None or isinstance(v, bool | int | float) for v in items):
            text = repr(value)
            if len(text) <= _MAX_KEPT_ARG:
                return value  # a list of ids
        return Shape(f"<{type(value).__name__} of {len(items)}>")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
    if len(text) <= _MAX_KEPT_ARG and not any(c.isspace() for c in text):
        return value  # an id, an endpoint, a URL, a type name
    if isinstance(value, str | bytes):
        return Shape(f"<text of {len(text)} chars>")
    # An update keeps its id, so a debug line still says which one it was.
    ident = getattr(value, "update_id", None)
    if isinstance(ident, int):
        return Shape(f"<{type(value).__name__} {ident}>")
    return Shape(f"<{type(value).__name__}>")


class ContentFilter(logging.Filter):
    """Reduce other packages' log arguments to their shape: message bodies never get logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if _is_own(record.name):
            return True
        if not isinstance(record.msg, str):
            record.msg = str(shape(record.msg))
        if isinstance(record.args, Mapping):
            record.args = {k: shape(v) for k, v in record.args.items()}
        elif record.args:
            record.args = tuple(shape(a) for a in record.args)
        return True


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


class MaskedExcepthook:
    """sys.excepthook in plain mode: the usual traceback on stderr, with secrets masked."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        text = "".join(traceback.format_exception(exc_type, exc, tb))
        sys.stderr.write(self.redactor(text))
        sys.stderr.flush()


def setup_logging(
    *,
    verbose: bool = False,
    level: str = "INFO",
    json_lines: bool = False,
    secrets: Iterable[str] = (),
    log_content: bool = False,
) -> None:
    """Configure the root logger once for the process; `secrets` are masked literally, and
    message content is kept out unless `log_content`."""
    redactor = ContentRedactor(secrets, log_content=log_content)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    content = ContentFilter()
    if not log_content:
        handler.addFilter(content)
    handler.addFilter(RedactTokens(redactor))
    if json_lines:
        handler.setFormatter(JsonFormatter(redactor))
        sys.excepthook = _log_uncaught
    else:
        handler.setFormatter(PlainFormatter(redactor))
        sys.excepthook = MaskedExcepthook(redactor)
    root.addHandler(handler)
    # SQLAlchemy's echo gives its engine logger a handler of its own (bypassing the root's
    # filters): filter on the logger itself, so those lines are reduced as well.
    from storage.urls import STATEMENT_LOGGER

    engine_logger = logging.getLogger(STATEMENT_LOGGER)
    for old in [f for f in engine_logger.filters if isinstance(f, ContentFilter | RedactTokens)]:
        engine_logger.removeFilter(old)
    if not log_content:
        engine_logger.addFilter(content)
    engine_logger.addFilter(RedactTokens(redactor))
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level))
    # Python warnings become log records (one JSON object each in JSON mode).
    logging.captureWarnings(True)
    # aiosqlite logs every statement's thread hand-off at DEBUG (thousands of lines a minute).
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler", "alembic", "aiosqlite"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
