"""Time arguments of the audit commands (`--since`, `--until`, `/log … since until`).

Accepted: `2026-11-26` (a whole UTC day: as `until` it includes that day), `2026-11-26T14:30`,
`2026-11-26 14:30:05`, with an optional zone (`Z`, `+02:00`; none means UTC), and relative
`36h` / `7d` (that long before now). `since` is inclusive and `until` exclusive.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.errors import UserInputError

_RELATIVE = re.compile(r"^(\d{1,5})([hd])$")
_DATE_ONLY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def looks_like_time(text: str) -> bool:
    """Whether an argument is meant as a time (so `/log` can tell it from a unit name)."""
    t = text.strip().lower()
    return bool(_RELATIVE.match(t) or re.match(r"^\d{4}-\d{1,2}-\d{1,2}", t))


def parse_when(text: str, *, now: datetime, end: bool = False) -> datetime:
    """Parse one time argument (aware UTC); UserInputError names the bad value."""
    raw = text.strip()
    rel = _RELATIVE.match(raw.lower())
    if rel:
        amount = int(rel.group(1))
        delta = timedelta(hours=amount) if rel.group(2) == "h" else timedelta(days=amount)
        return now - delta
    try:
        when = datetime.fromisoformat(raw.replace("z", "Z"))
    except ValueError:
        raise UserInputError(
            f"{raw[:40]!r} is not a date (use YYYY-MM-DD, YYYY-MM-DDTHH:MM, 36h or 7d)",
            key="audit.bad_date",
            value=raw[:40],
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    if end and _DATE_ONLY.match(raw):
        when += timedelta(days=1)  # `until 2026-11-26` includes that whole day
    return when.astimezone(UTC)


@dataclass(frozen=True)
class TimeRange:
    """A half-open UTC range; either end may be open."""

    since: datetime | None
    until: datetime | None


def parse_range(since: str | None, until: str | None, *, now: datetime) -> TimeRange:
    """Parse both ends and refuse an empty or inverted range."""
    start = parse_when(since, now=now) if since else None
    stop = parse_when(until, now=now, end=True) if until else None
    if start is not None and stop is not None and start >= stop:
        raise UserInputError(
            f"the range is empty: since {since} is not before until {until}",
            key="audit.bad_range",
            since=since,
            until=until,
        )
    return TimeRange(start, stop)
