"""Verification of the audit hash chain: one pure walker for the database and for export files.

`ChainVerifier` takes events in chain order, one at a time, and keeps only a few hashes, so a
walk over millions of events runs in constant memory. It reports the first position where the
chain breaks and how:

- changed:   an event's content no longer matches its hash (its successor still links to it);
- missing:   events are absent (a seq gap, or the first events are gone with no purge anchor);
- inserted:  an extra event sits in the chain (the next event links past it, or it lies beyond
             the recorded head);
- reordered: events are out of place (the expected event turns up later);
- truncated: the chain ends before the head recorded in `audit_head` or given as an anchor;
- malformed: a line of an export file is not an event at all.

The position is the seq the chain expected at that point (for an insertion: the seq of the
extra event) and the 1-based row index of the walk (the line number of a file).

After a retention purge the chain starts at `cut + 1`; the walker accepts that start only if an
`audit.purge` event later in the (hash-protected) chain names the same cut seq and hash.
A chain without a key (plain SHA-256) can be recomputed by anyone with write access; the
anchors (`audit_head`, a head hash kept elsewhere) and `DARAJA_AUDIT_HMAC_KEY` close that gap.
"""

from __future__ import annotations

import hmac
import json
import re
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from storage.audit import GENESIS, PURGE_EVENT, AuditChain, AuditRecord, HeadState
from storage.db import Database

Kind = Literal["changed", "missing", "inserted", "reordered", "truncated", "malformed"]
_HASH_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Anchor:
    """A head hash kept outside the database, optionally with its seq (`SEQ:HASH`)."""

    hash: str
    seq: int | None = None

    @classmethod
    def parse(cls, text: str) -> Anchor:
        """Parse `HASH` or `SEQ:HASH`; ValueError says what is wrong."""
        raw = text.strip().lower()
        seq: int | None = None
        if ":" in raw:
            seq_text, raw = raw.split(":", 1)
            if not seq_text.isdigit():
                raise ValueError(f"{text!r}: the part before ':' must be the head's seq")
            seq = int(seq_text)
        if not _HASH_RE.match(raw):
            raise ValueError(f"{text!r} is not a head hash (64 hex digits, optionally SEQ:HASH)")
        return cls(hash=raw, seq=seq)


@dataclass(frozen=True)
class Break:
    """Where and how the chain breaks."""

    kind: Kind
    seq: int
    index: int
    detail: str


@dataclass(frozen=True)
class Malformed:
    """A row that is not an event (a bad line of an export file)."""

    reason: str


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of one walk: OK with count and head, or the first break."""

    count: int
    first_seq: int | None
    last_seq: int | None
    head_hash: str
    anchored_at: int | None
    broken: Break | None

    @property
    def ok(self) -> bool:
        """Whether the chain verified."""
        return self.broken is None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready summary for scripts (`--json`)."""
        out: dict[str, Any] = {
            "ok": self.ok,
            "count": self.count,
            "first_seq": self.first_seq,
            "last_seq": self.last_seq,
            "head_hash": self.head_hash,
            "anchored_at": self.anchored_at,
        }
        if self.broken is not None:
            out["break"] = {
                "kind": self.broken.kind,
                "seq": self.broken.seq,
                "index": self.broken.index,
                "detail": self.broken.detail,
            }
        return out

    def describe(self) -> str:
        """One line for people."""
        if self.broken is None:
            since = (
                f" (from seq {self.first_seq}, anchored at a purge)" if self.anchored_at else ""
            )
            return f"OK: {self.count} events{since}; head seq {self.last_seq} {self.head_hash}"
        b = self.broken
        return f"BROKEN: {b.kind} at seq {b.seq} (row {b.index}): {b.detail}"


@dataclass
class _Pending:
    """A failing row waiting for its successor to decide what happened to it."""

    row: AuditRecord
    index: int
    link_ok: bool
    seq_ok: bool
    self_ok: bool
    recomputed: str


class ChainVerifier:
    """Walk events in chain order with constant memory; `feed` each row, then `finish`."""

    def __init__(
        self,
        chain: AuditChain,
        *,
        head: HeadState | None = None,
        expect: Anchor | None = None,
        partial: bool = False,
    ) -> None:
        self.chain = chain
        # `head` is where the chain must end exactly (the database's audit_head); `expect` is an
        # anchor taken earlier, which the chain must contain (it may have grown since).
        self.head = head
        self.expect = expect
        # A filtered export holds runs of the chain: gaps are allowed, links within runs checked.
        self.partial = partial
        self.count = 0
        self._index = 0
        self._started = False
        self._expected_prev = GENESIS
        self._prev_prev: str | None = None
        self._expected_seq = 1
        self._last: AuditRecord | None = None
        self._last_index = 0
        self._first_seq: int | None = None
        self._start_anchor: tuple[int, str] | None = None
        self._start_confirmed = False
        self._start_reordered = False
        self._latest_cut_before_start = 0
        self._beyond_head_index: int | None = None
        self._expect_seen = False
        self._pending: _Pending | None = None
        self._anchor_mismatch: Break | None = None
        self._broken: Break | None = None
        # After a tentative `missing`/`changed` break: signs that it was really a reordering.
        self._watch_link: str | None = None
        self._watch_seqs: tuple[int, int] | None = None

    # --- feeding -----------------------------------------------------------------------------

    def feed(self, row: AuditRecord | Malformed) -> None:
        """Take the next row of the walk."""
        self._index += 1
        index = self._index
        if isinstance(row, Malformed):
            self._feed_malformed(row, index)
            return
        if self._start_anchor is not None and row.seq <= self._start_anchor[0]:
            self._start_reordered = True  # an event from before the start turns up later
        if self._pending is not None:
            self._resolve(self._pending, row)
            self._pending = None
        if self._broken is not None:
            self._refine(row)
        else:
            suspect = self._anchor_mismatch
            self._check(row, index)
            if suspect is not None:
                # Decided one row late: an extra event slipped in at the anchored seq is
                # reported as the insertion it is (the next row links past it), not a rewrite.
                self._anchor_mismatch = None
                self._pending = None
                if self._broken is None or self._broken.kind != "inserted":
                    self._broken = suspect
        # After the check: the first row may itself be the purge event that anchors the start.
        self._note_purge(row)

    def feed_all(self, rows: Iterable[AuditRecord | Malformed]) -> None:
        """Feed every row of an iterable."""
        for row in rows:
            self.feed(row)

    def lookahead(self, row: AuditRecord) -> None:
        """Look at the row just past the end of the walk (appended since the head was read,
        or slipped in): it only tells what happened to the last rows, it is not verified."""
        if self._pending is not None:
            self._resolve(self._pending, row)
            self._pending = None
            return
        if (
            self._broken is None
            and self._last is not None
            and row.prev_hash != self._expected_prev
            and row.prev_hash == self._prev_prev
        ):
            self._anchor_mismatch = None
            last = self._last
            self._broken = Break(
                "inserted",
                last.seq,
                self._last_index,
                f"event at seq {last.seq} is not part of the chain: the next event links past it",
            )

    def finish(self) -> VerifyResult:
        """Decide the outcome once every row has been fed."""
        if self._anchor_mismatch is not None and self._broken is None:
            self._broken = self._anchor_mismatch
            self._pending = None
        if self._pending is not None:
            self._resolve(self._pending, None)
            self._pending = None
        if self._broken is None:
            self._check_tail()
        broken = self._broken
        if self._start_anchor is not None and not self._start_confirmed:
            # Nothing before the first event is accounted for: that is the earliest break.
            first_missing = self._latest_cut_before_start + 1
            if self._start_reordered:
                broken = Break(
                    "reordered",
                    first_missing,
                    1,
                    f"the event expected at seq {first_missing} appears later",
                )
            else:
                broken = Break(
                    "missing",
                    first_missing,
                    1,
                    f"events {first_missing}..{self._start_anchor[0]} are absent and no "
                    "audit.purge event anchors a cut there",
                )
        last = self._last
        return VerifyResult(
            count=self.count,
            first_seq=self._first_seq,
            last_seq=last.seq if last else None,
            head_hash=last.hash if last else GENESIS,
            anchored_at=self._start_anchor[0] if self._start_anchor else None,
            broken=broken,
        )

    # --- the walk ------------------------------------------------------------------------------

    def _check(self, row: AuditRecord, index: int) -> None:
        if not self._started:
            self._started = True
            self._first_seq = row.seq
            if row.seq > 1:
                # Possibly the first event after a purge: accepted now, confirmed later.
                self._start_anchor = (row.seq - 1, row.prev_hash)
                self._expected_prev = row.prev_hash
                self._expected_seq = row.seq
                if self.partial:
                    self._start_confirmed = True
        if self.partial and row.seq > self._expected_seq:
            # A gap left by the export's filter: a new run starts here, linked to what it names.
            self._expected_prev = row.prev_hash
            self._expected_seq = row.seq
            self._prev_prev = None
        recomputed = self.chain.link(row.prev_hash, row.body())
        link_ok = row.prev_hash == self._expected_prev
        seq_ok = row.seq == self._expected_seq
        self_ok = hmac.compare_digest(recomputed, row.hash)
        if link_ok and seq_ok and self_ok:
            self._accept(row, index)
            return
        if (
            not link_ok
            and self._last is not None
            and self._prev_prev is not None
            and row.prev_hash == self._prev_prev
        ):
            # This event links to the one before the last: the last one was slipped in.
            last = self._last
            self._broken = Break(
                "inserted",
                last.seq,
                self._last_index,
                f"event at seq {last.seq} is not part of the chain: the next event links past it",
            )
            return
        self._pending = _Pending(row, index, link_ok, seq_ok, self_ok, recomputed)

    def _accept(self, row: AuditRecord, index: int) -> None:
        self.count += 1
        self._prev_prev = self._expected_prev
        self._expected_prev = row.hash
        self._expected_seq = row.seq + 1
        self._last = row
        self._last_index = index
        if self.head is not None and row.seq > self.head.seq and self._beyond_head_index is None:
            self._beyond_head_index = index
        expect = self.expect
        if expect is not None:
            if row.hash == expect.hash:
                self._expect_seen = True
            elif expect.seq == row.seq:
                self._anchor_mismatch = Break(
                    "changed",
                    row.seq,
                    index,
                    "the event at the anchored seq does not have the anchored hash "
                    "(the chain was rewritten from here or earlier)",
                )

    def _resolve(self, p: _Pending, successor: AuditRecord | None) -> None:
        """Decide what a failing row is, given the row after it (None at the end)."""
        s, row = self._expected_seq, p.row
        nxt = successor.prev_hash if successor is not None else None
        if p.link_ok:
            if nxt is not None and nxt == row.prev_hash:
                self._broken = Break(
                    "inserted", s, p.index, "extra event: the next event links past it"
                )
            elif successor is None and self.head is not None and row.seq > self.head.seq:
                self._broken = Break(
                    "inserted", s, p.index, "extra event beyond the recorded chain head"
                )
            else:
                what = "seq" if not p.seq_ok else "content"
                self._broken = Break(
                    "changed", s, p.index, f"event {what} does not match its hash"
                )
            return
        if not p.self_ok and nxt is not None and nxt in (row.hash, p.recomputed):
            self._broken = Break(
                "changed", s, p.index, "event content (prev_hash) does not match its hash"
            )
            return
        self._watch_link = self._expected_prev
        if p.self_ok and row.seq > s:
            self._watch_seqs = (s, row.seq - 1)
            self._broken = Break("missing", s, p.index, f"events {s}..{row.seq - 1} are absent")
        elif nxt is not None and nxt == self._expected_prev:
            self._broken = Break(
                "reordered", s, p.index, "events swapped: the expected event comes next"
            )
        else:
            self._broken = Break("changed", s, p.index, "event does not link to its predecessor")

    def _refine(self, row: AuditRecord) -> None:
        """After a tentative break: the expected event showing up later means reordering."""
        b = self._broken
        if b is None or b.kind not in ("missing", "changed"):
            return
        seqs = self._watch_seqs
        if row.prev_hash == self._watch_link or (seqs and seqs[0] <= row.seq <= seqs[1]):
            self._broken = Break(
                "reordered", b.seq, b.index, f"the event expected at seq {b.seq} appears later"
            )
            self._watch_link = None
            self._watch_seqs = None

    def _check_tail(self) -> None:
        last_seq = self._last.seq if self._last else (self._start_anchor or (0, ""))[0]
        next_index = self._last_index + 1
        head = self.head
        if head is not None:
            if last_seq < head.seq:
                self._broken = Break(
                    "truncated",
                    last_seq + 1,
                    next_index,
                    f"the chain ends at seq {last_seq} but its head is at seq {head.seq}",
                )
                return
            if last_seq > head.seq:
                self._broken = Break(
                    "inserted",
                    head.seq + 1,
                    self._beyond_head_index or next_index,
                    f"events beyond the recorded head (seq {head.seq})",
                )
                return
            last_hash = self._last.hash if self._last else GENESIS
            if self._last is not None and last_hash != head.hash:
                self._broken = Break(
                    "changed",
                    last_seq,
                    self._last_index,
                    "the last event's hash differs from the recorded head",
                )
                return
        expect = self.expect
        if expect is not None and not self._expect_seen:
            where = f"seq {expect.seq}" if expect.seq is not None else "the anchored head"
            self._broken = Break(
                "truncated",
                last_seq + 1,
                next_index,
                f"the chain ends at seq {last_seq} before {where}",
            )

    def _note_purge(self, row: AuditRecord) -> None:
        if row.event_type != PURGE_EVENT or self._start_anchor is None:
            return
        try:
            payload = json.loads(row.payload)
            cut_seq = int(payload["through_seq"])
            cut_hash = str(payload["through_hash"])
        except (ValueError, KeyError, TypeError):
            return
        if (cut_seq, cut_hash) == self._start_anchor:
            self._start_confirmed = True
        elif cut_seq < self._start_anchor[0]:
            self._latest_cut_before_start = max(self._latest_cut_before_start, cut_seq)

    def _feed_malformed(self, row: Malformed, index: int) -> None:
        if self._pending is not None:
            self._resolve(self._pending, None)
            self._pending = None
        if self._broken is None:
            self._broken = Break("malformed", self._expected_seq, index, row.reason)


def verify_records(
    rows: Iterable[AuditRecord | Malformed],
    chain: AuditChain,
    *,
    head: HeadState | None = None,
    expect: Anchor | None = None,
    partial: bool = False,
) -> VerifyResult:
    """Verify events given in chain order (pure: no I/O of its own)."""
    verifier = ChainVerifier(chain, head=head, expect=expect, partial=partial)
    verifier.feed_all(rows)
    return verifier.finish()


async def verify_stream(
    rows: AsyncIterator[AuditRecord],
    chain: AuditChain,
    *,
    head: HeadState | None = None,
    expect: Anchor | None = None,
) -> VerifyResult:
    """Verify events from an async stream (the database walk)."""
    verifier = ChainVerifier(chain, head=head, expect=expect)
    async for row in rows:
        verifier.feed(row)
    return verifier.finish()


def read_jsonl(lines: Iterable[str]) -> Iterator[AuditRecord | Malformed]:
    """Parse JSONL export lines into records; bad lines become `Malformed` (blank ones skip)."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield AuditRecord.from_dict(json.loads(line))
        except ValueError as exc:  # json.JSONDecodeError is a ValueError
            yield Malformed(f"line {number}: {exc}")


def verify_file(
    path: Path,
    chain: AuditChain,
    *,
    expect: Anchor | None = None,
    partial: bool = False,
) -> VerifyResult:
    """Verify a JSONL export on its own (streamed line by line)."""
    with path.open(encoding="utf-8-sig", newline="") as fh:
        return verify_records(read_jsonl(fh), chain, expect=expect, partial=partial)


async def verify_database(
    db: Database, chain: AuditChain, *, expect: Anchor | None = None
) -> VerifyResult:
    """Walk the database's chain up to the head in `audit_head`, then look past it."""
    from dataclasses import replace

    from storage.audit import read_head
    from storage.audit_read import EventFilter, first_seq_after, iter_records

    async with db.transaction() as session:
        head = await read_head(session)
    # Only rows up to the head read now: the bot may append while the walk runs.
    verifier = ChainVerifier(chain, head=head, expect=expect)
    async for row in iter_records(db, EventFilter(upto_seq=head.seq)):
        verifier.feed(row)
    beyond = await first_seq_after(db, head.seq)
    if beyond is not None:
        async for row in iter_records(db, EventFilter(after_seq=beyond - 1, upto_seq=beyond)):
            verifier.lookahead(row)
    result = verifier.finish()
    if not result.ok or beyond is None:
        return result
    async with db.transaction() as session:
        now = await read_head(session)
    if beyond <= now.seq:
        return result  # appended while we walked
    return replace(
        result,
        broken=Break(
            "inserted",
            beyond,
            result.count + 1,
            f"event at seq {beyond} lies beyond the recorded head (seq {now.seq})",
        ),
    )
