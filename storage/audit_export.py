"""Export of the audit log as CSV (for spreadsheets) or JSONL (verifiable on its own).

Both stream from `storage.audit_read.iter_records`, so memory stays flat for any number of
events. JSONL writes each event as one canonical JSON object with every field, `prev_hash` and
`hash`, in seq order: `daraja audit verify --file` checks it with the same walker as the
database. CSV is for reading: UTF-8 (optionally with a BOM so spreadsheets pick the encoding),
one row per event, the payload as JSON text, and any cell that a spreadsheet would run as a
formula (starting with `=`, `+`, `-`, `@`, tab or CR) gets a leading `'`.
"""

from __future__ import annotations

import csv
import json
from collections.abc import AsyncIterator, Callable, Iterable
from typing import Literal, TextIO

from storage.audit import FIELDS, AuditRecord, canonical_json

Format = Literal["csv", "jsonl"]
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Payload keys through which an event names a unit (by code) or a chat (by Telegram id).
UNIT_KEYS: tuple[str, ...] = ("unit", "unit_code", "source_unit", "target_unit")
CHAT_KEYS: tuple[str, ...] = ("chat_id", "source_chat_id", "target_chat_id", "telegram_chat_id")


def neutralise(value: object) -> str:
    """A CSV cell that a spreadsheet shows as text, never runs as a formula."""
    text = "" if value is None else str(value)
    if text.startswith(_FORMULA_START):
        return "'" + text
    return text


def csv_row(record: AuditRecord) -> list[str]:
    """One event as CSV cells, in `FIELDS` order."""
    return [neutralise(getattr(record, name)) for name in FIELDS]


def jsonl_line(record: AuditRecord) -> str:
    """One event as one canonical JSON line (with its newline)."""
    return canonical_json(record.as_dict()) + "\n"


def unit_matcher(
    unit_codes: Iterable[str], chat_ids: Iterable[int]
) -> Callable[[AuditRecord], bool]:
    """A predicate: does an event's payload name one of these units or chats?"""
    codes = {c.lower() for c in unit_codes}
    chats = set(chat_ids)

    def match(record: AuditRecord) -> bool:
        # Cheap substring pre-checks avoid parsing most payloads during a large export.
        if not any(k in record.payload for k in (*UNIT_KEYS, *CHAT_KEYS)):
            return False
        try:
            payload = json.loads(record.payload)
        except ValueError:
            return False
        if not isinstance(payload, dict):
            return False
        for key in UNIT_KEYS:
            value = payload.get(key)
            if isinstance(value, str) and value.lower() in codes:
                return True
        for key in CHAT_KEYS:
            value = payload.get(key)
            if isinstance(value, int) and value in chats:
                return True
        return False

    return match


async def write_export(
    records: AsyncIterator[AuditRecord],
    out: TextIO,
    fmt: Format,
    *,
    keep: Callable[[AuditRecord], bool] | None = None,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write events to an open text stream; returns how many were written."""
    count = 0
    writer = csv.writer(out) if fmt == "csv" else None
    if writer is not None:
        writer.writerow(FIELDS)
    async for record in records:
        if keep is not None and not keep(record):
            continue
        if writer is not None:
            writer.writerow(csv_row(record))
        else:
            out.write(jsonl_line(record))
        count += 1
        if progress is not None and count % 100_000 == 0:
            progress(count)
    return count
