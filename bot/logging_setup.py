"""Logging: plain or JSON lines; secrets never reach a log line.

httpx logs every request URL at INFO, and Bot API URLs carry the token, so httpx and httpcore
are held at WARNING, and a filter masks anything token-shaped that still gets through.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime

TOKEN_RE = re.compile(r"\d{5,20}:[A-Za-z0-9_-]{30,}")


class RedactTokens(logging.Filter):
    """Replace token-shaped strings in every record with a mask."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if TOKEN_RE.search(msg):
            record.msg = TOKEN_RE.sub("<token>", msg)
            record.args = None
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message."""

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(*, verbose: bool = False, level: str = "INFO", json_lines: bool = False) -> None:
    """Configure the root logger once for the process."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.StreamHandler()
    handler.addFilter(RedactTokens())
    if json_lines:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if verbose else getattr(logging, level))
    for noisy in ("httpx", "httpcore", "aiohttp.access", "apscheduler", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
