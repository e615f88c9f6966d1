"""The SITREP wizard: reading what a person types or taps into a checked SITREP, and the drafts
that carry a `/report` conversation across messages and restarts.

Everything here is pure except `ReportDrafts.save/discard/load`, which store the drafts through
a unit of work. Filing a finished SITREP is `StatusService.file_report` (bot/services/status.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from bot.domain import LANGUAGES
from bot.domain.gazetteer import PLACES, fold, known_places, resolve_place
from bot.errors import UserInputError
from bot.i18n import SITREP_STATUSES, I18n
from bot.services.board import Location
from storage.models import utcnow
from storage.uow import UnitOfWork
from translation.types import Translation

STATUSES: tuple[str, ...] = SITREP_STATUSES
MAX_STRENGTH = 10_000
MAX_FREE_TEXT = 1000
DRAFT_TIMEOUT = timedelta(minutes=10)

_COORD_RE = re.compile(r"^\s*([+-]?\d{1,3}(?:[.,]\d+)?)\s*[,; ]\s*([+-]?\d{1,3}(?:[.,]\d+)?)\s*$")
_COORD_DOT_RE = re.compile(r"^\s*([+-]?\d{1,3}(?:\.\d+)?)\s*[,; ]\s*([+-]?\d{1,3}(?:\.\d+)?)\s*$")


# --- parsing and validation (pure) -----------------------------------------------------------


def check_coordinate(latitude: float, longitude: float) -> tuple[float, float]:
    """A coordinate on Earth; refuses NaN, out-of-range values and 0,0 (a GPS with no fix)."""
    if not (math.isfinite(latitude) and math.isfinite(longitude)):
        raise UserInputError("coordinate is not a number", key="sitrep.bad_coordinate")
    if not (-90 <= latitude <= 90 and -180 <= longitude <= 180):
        raise UserInputError(
            f"impossible coordinate {latitude},{longitude}", key="sitrep.bad_coordinate"
        )
    if latitude == 0 and longitude == 0:
        raise UserInputError("0,0 is a GPS with no fix", key="sitrep.bad_coordinate")
    return round(latitude, 6), round(longitude, 6)


def parse_coordinate(text: str) -> tuple[float, float] | None:
    """`18.5392,-72.3364` (or `18.5392 -72.3364`) -> a checked coordinate; None if the text is
    not shaped like one; UserInputError when it is but cannot be on Earth."""
    match = _COORD_DOT_RE.match(text)
    if match is None:
        match = _COORD_RE.match(text) if text.count(",") != 1 else None
        if match is None:
            return None
    lat = float(match.group(1).replace(",", "."))
    lon = float(match.group(2).replace(",", "."))
    return check_coordinate(lat, lon)


def parse_location(text: str, glossary: Any) -> Location:
    """A coordinate or a known place name; UserInputError otherwise."""
    coordinate = parse_coordinate(text)
    if coordinate is not None:
        return Location(coordinate[0], coordinate[1], None)
    place = resolve_place(text, glossary)
    if place is None:
        raise UserInputError(
            f"unknown place {text[:40]!r}",
            key="sitrep.bad_location",
            places=", ".join(known_places(glossary)[:12]),
        )
    lat, lon = PLACES.get(place, (None, None))
    return Location(lat, lon, place)


def parse_strength(text: str) -> int:
    """Personnel available: a whole number from 0 to 10,000."""
    cleaned = text.strip()
    try:
        value = int(cleaned)
    except ValueError:
        raise UserInputError(
            f"strength {cleaned[:16]!r} is not a number", key="sitrep.bad_strength"
        ) from None
    if value < 0 or value > MAX_STRENGTH:
        raise UserInputError(f"strength {value} out of range", key="sitrep.bad_strength")
    return value


def parse_status(token: str, i18n: I18n | None = None) -> str | None:
    """A status from its code (`at_position`), its number on the list (1-7), or its label in
    any language (`at position`, `an pozisyon`)."""
    folded = fold(token)
    if folded.isdigit() and 1 <= int(folded) <= len(STATUSES):
        return STATUSES[int(folded) - 1]
    for code in STATUSES:
        if folded in (fold(code), fold(code).replace(" ", "")):
            return code
        if i18n is not None:
            for lang in LANGUAGES:
                if folded == fold(i18n.t(f"status.{code}", lang)):
                    return code
    return None


@dataclass(frozen=True)
class SitrepInput:
    """A complete SITREP as typed or tapped, before it is stored."""

    status: str
    location: Location
    strength: int
    needs: str = ""
    remarks: str = ""


def parse_one_line(args: str, glossary: Any, i18n: I18n | None = None) -> SitrepInput:
    """`/report STATUS LOCATION STRENGTH needs… | remarks…` in one message."""
    words = args.split()
    if len(words) < 3:
        raise UserInputError("SITREP needs STATUS LOCATION STRENGTH", key="sitrep.usage")
    status = parse_status(words[0], i18n)
    if status is None:
        raise UserInputError(f"unknown status {words[0][:24]!r}", key="sitrep.bad_status")
    location = parse_location(words[1], glossary)
    strength = parse_strength(words[2])
    rest = args.split(None, 3)[3] if len(words) > 3 else ""
    needs, _, remarks = rest.partition("|")
    return SitrepInput(status, location, strength, clip(needs), clip(remarks))


def clip(text: str) -> str:
    """Free text as stored: trimmed, `-` for nothing, at most MAX_FREE_TEXT characters."""
    text = text.strip()
    if text in ("-", "—"):
        return ""
    return text[:MAX_FREE_TEXT]


# --- the /report conversation ----------------------------------------------------------------


@dataclass
class Draft:
    """A SITREP being filled in, one step at a time, by one person in one group."""

    chat_id: int
    user_id: int
    step: str = "status"  # status | location | strength | needs | remarks
    status: str | None = None
    location: Location | None = None
    strength: int | None = None
    needs: str = ""
    remarks: str = ""
    prompt_message_id: int | None = None
    touched: datetime = field(default_factory=utcnow)

    def complete(self) -> SitrepInput:
        """The finished SITREP (every fixed field is set once the last step is reached)."""
        assert self.status is not None
        assert self.location is not None
        assert self.strength is not None
        return SitrepInput(self.status, self.location, self.strength, self.needs, self.remarks)


class ReportDrafts:
    """Conversation state per (chat, person), forgotten after a timeout.

    Every answer is stored in the database (`save`), and `load` reads the drafts back at
    start, so a restart in the middle of a wizard loses nothing: the person's next tap or
    answer carries on. The copy in memory serves the message filter, which cannot wait for
    the database."""

    def __init__(
        self,
        uow: Callable[[], UnitOfWork] | None = None,
        *,
        timeout: timedelta = DRAFT_TIMEOUT,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.uow = uow
        self.timeout = timeout
        self.clock = clock
        self._drafts: dict[tuple[int, int], Draft] = {}

    def start(self, chat_id: int, user_id: int) -> Draft:
        """A fresh draft (replacing any earlier one of the same person in the same group);
        `save` it once its prompt is posted."""
        self._expire()
        draft = Draft(chat_id=chat_id, user_id=user_id, touched=self.clock())
        self._drafts[(chat_id, user_id)] = draft
        return draft

    def get(self, chat_id: int, user_id: int) -> Draft | None:
        """The person's live draft in this group, if any."""
        draft = self._drafts.get((chat_id, user_id))
        if draft is None:
            return None
        if self.clock() - draft.touched > self.timeout:
            del self._drafts[(chat_id, user_id)]
            return None
        draft.touched = self.clock()
        return draft

    def waiting_for_input(self, chat_id: int, user_id: int) -> bool:
        """Whether the person's next message in this group answers a SITREP question."""
        draft = self._drafts.get((chat_id, user_id))
        return draft is not None and self.clock() - draft.touched <= self.timeout

    def drop(self, chat_id: int, user_id: int) -> None:
        """Forget a draft in memory (`discard` also forgets the stored one)."""
        self._drafts.pop((chat_id, user_id), None)

    async def save(self, draft: Draft) -> None:
        """Store the draft's answers so far."""
        draft.touched = self.clock()
        self._drafts[(draft.chat_id, draft.user_id)] = draft
        if self.uow is not None:
            async with self.uow() as uow:
                await uow.drafts.put(
                    draft.chat_id, draft.user_id, _draft_data(draft), draft.touched
                )

    async def discard(self, chat_id: int, user_id: int) -> None:
        """Forget a draft (filed or cancelled), stored copy included."""
        self.drop(chat_id, user_id)
        if self.uow is not None:
            async with self.uow() as uow:
                await uow.drafts.delete(chat_id, user_id)

    async def load(self) -> int:
        """Read back the stored drafts still live (at start); returns how many."""
        if self.uow is None:
            return 0
        now = self.clock()
        async with self.uow() as uow:
            repo = uow.drafts
            await repo.delete_before(now - self.timeout)
            rows = list(await repo.all())
        for row in rows:
            draft = _draft_of(row.telegram_chat_id, row.telegram_user_id, row.data, row.updated_at)
            self._drafts[(draft.chat_id, draft.user_id)] = draft
        return len(rows)

    def _expire(self) -> None:
        now = self.clock()
        for key in [k for k, d in self._drafts.items() if now - d.touched > self.timeout]:
            del self._drafts[key]


def _draft_data(draft: Draft) -> dict[str, Any]:
    loc = draft.location
    return {
        "step": draft.step,
        "status": draft.status,
        "location": [loc.latitude, loc.longitude, loc.place] if loc is not None else None,
        "strength": draft.strength,
        "needs": draft.needs,
        "remarks": draft.remarks,
        "prompt_message_id": draft.prompt_message_id,
    }


def _draft_of(chat_id: int, user_id: int, data: dict[str, Any], touched: datetime) -> Draft:
    loc = data.get("location")
    return Draft(
        chat_id=chat_id,
        user_id=user_id,
        step=str(data.get("step") or "status"),
        status=data.get("status"),
        location=Location(loc[0], loc[1], loc[2]) if loc else None,
        strength=data.get("strength"),
        needs=str(data.get("needs") or ""),
        remarks=str(data.get("remarks") or ""),
        prompt_message_id=data.get("prompt_message_id"),
        touched=touched,
    )


def validate(sitrep: SitrepInput) -> None:
    """Refuse a SITREP no parser would have produced (the service checks its input itself)."""
    if sitrep.status not in STATUSES:
        raise UserInputError(f"unknown status {sitrep.status!r}", key="sitrep.bad_status")
    if sitrep.strength < 0 or sitrep.strength > MAX_STRENGTH:
        raise UserInputError("strength out of range", key="sitrep.bad_strength")
    loc = sitrep.location
    if loc.latitude is not None or loc.longitude is not None:
        if loc.latitude is None or loc.longitude is None:
            raise UserInputError("half a coordinate", key="sitrep.bad_coordinate")
        check_coordinate(loc.latitude, loc.longitude)
    elif not loc.place:
        raise UserInputError("no location", key="sitrep.bad_location", places="")


def combine_free_text(needs: Translation, remarks: Translation) -> Translation:
    """One translation row per language for a SITREP's free text (needs, then remarks)."""
    text = "\n".join(t for t in (needs.text, remarks.text) if t)
    return replace(
        needs if needs.text else remarks,
        text=text,
        flags=tuple(dict.fromkeys((*needs.flags, *remarks.flags))),
    )
