"""The chain verifier on rows in memory and on export files: every kind of tampering is found."""

from __future__ import annotations

import json
import random
from dataclasses import replace
from pathlib import Path

import pytest

from storage.audit import GENESIS, AuditChain, AuditRecord, canonical_json
from storage.audit_export import csv_row, jsonl_line, neutralise
from storage.audit_tamper import make_chain, run_trials
from storage.audit_verify import Anchor, verify_file, verify_records

KEYED = AuditChain(key=b"deployment-secret")


@pytest.fixture
def rows() -> list[AuditRecord]:
    return make_chain(KEYED, 12, random.Random(7))


def _kind_seq(result: object) -> tuple[str, int] | None:
    broken = getattr(result, "broken", None)
    return None if broken is None else (broken.kind, broken.seq)


def test_an_untouched_chain_verifies_with_count_and_head(rows: list[AuditRecord]) -> None:
    result = verify_records(rows, KEYED, expect=Anchor(rows[-1].hash, rows[-1].seq))
    assert result.ok
    assert (result.count, result.last_seq, result.head_hash) == (12, 12, rows[-1].hash)
    assert "OK: 12 events" in result.describe()


def test_the_wrong_key_fails_at_the_first_event(rows: list[AuditRecord]) -> None:
    result = verify_records(rows, AuditChain(key=b"guess"))
    assert _kind_seq(result) == ("changed", 1)


def test_an_empty_chain_is_ok() -> None:
    result = verify_records([], KEYED)
    assert result.ok
    assert result.head_hash == GENESIS


def test_one_edited_character_is_reported_as_changed_at_its_seq(rows: list[AuditRecord]) -> None:
    rows[4] = replace(rows[4], payload=rows[4].payload.replace("ht", "en"))
    assert _kind_seq(verify_records(rows, KEYED)) == ("changed", 5)


def test_a_deleted_event_is_missing(rows: list[AuditRecord]) -> None:
    del rows[6]
    result = verify_records(rows, KEYED)
    assert _kind_seq(result) == ("missing", 7)
    assert "BROKEN: missing at seq 7" in result.describe()


def test_deleting_the_first_events_without_a_purge_is_missing_from_seq_1(
    rows: list[AuditRecord],
) -> None:
    assert _kind_seq(verify_records(rows[3:], KEYED)) == ("missing", 1)


def test_a_forged_event_is_inserted_even_when_its_hash_is_self_consistent() -> None:
    plain = AuditChain()
    chain_rows = make_chain(plain, 10, random.Random(3))
    forged = replace(chain_rows[4], actor="tg:1", prev_hash=chain_rows[3].hash)
    forged = replace(forged, hash=plain.link(forged.prev_hash, forged.body()))
    tampered = [*chain_rows[:4], forged, *chain_rows[4:]]
    assert _kind_seq(verify_records(tampered, plain)) == ("inserted", 5)


def test_swapped_events_are_reordered(rows: list[AuditRecord]) -> None:
    rows[2], rows[8] = rows[8], rows[2]
    assert _kind_seq(verify_records(rows, KEYED)) == ("reordered", 3)


def test_a_truncated_tail_needs_an_anchor_and_is_then_found(rows: list[AuditRecord]) -> None:
    head = rows[-1]
    cut = rows[:9]
    assert verify_records(cut, KEYED).ok  # nothing inside the rows tells: hence the anchor
    assert _kind_seq(verify_records(cut, KEYED, expect=Anchor(head.hash))) == ("truncated", 10)
    assert _kind_seq(verify_records(cut, KEYED, expect=Anchor(head.hash, 12))) == (
        "truncated",
        10,
    )


def test_a_rewritten_chain_does_not_match_its_anchor() -> None:
    plain = AuditChain()
    original = make_chain(plain, 8, random.Random(1))
    rewritten = make_chain(plain, 8, random.Random(2))  # recomputed from scratch, no key
    result = verify_records(rewritten, plain, expect=Anchor(original[-1].hash, 8))
    assert _kind_seq(result) == ("changed", 8)


def test_a_chain_after_a_purge_verifies_from_its_anchor(rows: list[AuditRecord]) -> None:
    cut = rows[4]
    purge = replace(
        rows[-1],
        seq=13,
        event_type="audit.purge",
        payload=canonical_json({"through_seq": 5, "through_hash": cut.hash, "purged": 5}),
        prev_hash=rows[-1].hash,
    )
    purge = replace(purge, hash=KEYED.link(purge.prev_hash, purge.body()))
    kept = [*rows[5:], purge]
    result = verify_records(kept, KEYED)
    assert result.ok, result.describe()
    assert (result.first_seq, result.anchored_at, result.count) == (6, 5, 8)
    # Deleting one more event than the purge recorded is still caught.
    assert _kind_seq(verify_records(kept[1:], KEYED)) == ("missing", 6)


def test_500_random_tamper_trials_are_all_found_at_the_right_place() -> None:
    outcomes = list(run_trials(500, seed=20261126))
    missed = [o.trial.detail for o in outcomes if not o.detected]
    wrong = [(o.trial.kind, o.trial.detail, o.result.broken) for o in outcomes if not o.right]
    assert missed == []
    assert wrong == []
    assert {o.trial.kind for o in outcomes} == {"change", "delete", "insert", "swap", "truncate"}


# --- export files ---


def _write_jsonl(path: Path, rows: list[AuditRecord]) -> None:
    path.write_text("".join(jsonl_line(r) for r in rows), encoding="utf-8")


def test_a_jsonl_export_verifies_on_its_own(tmp_path: Path, rows: list[AuditRecord]) -> None:
    path = tmp_path / "export.jsonl"
    _write_jsonl(path, rows)
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 12
    assert json.loads(lines[0])["prev_hash"] == GENESIS
    assert verify_file(path, KEYED, expect=Anchor(rows[-1].hash)).ok


def test_a_forged_export_file_is_detected(tmp_path: Path, rows: list[AuditRecord]) -> None:
    path = tmp_path / "export.jsonl"
    _write_jsonl(path, rows)
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    event = json.loads(lines[3])
    event["actor"] = "tg:42"
    lines[3] = canonical_json(event) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    assert _kind_seq(verify_file(path, KEYED)) == ("changed", 4)


def test_a_broken_line_is_malformed(tmp_path: Path, rows: list[AuditRecord]) -> None:
    path = tmp_path / "export.jsonl"
    _write_jsonl(path, rows)
    with path.open("a", encoding="utf-8") as fh:
        fh.write('{"seq": 13, "ts": "x"}\n')
    result = verify_file(path, KEYED)
    assert result.broken is not None
    assert result.broken.kind == "malformed"
    assert "missing field" in result.broken.detail


def test_a_filtered_export_verifies_with_partial(tmp_path: Path, rows: list[AuditRecord]) -> None:
    path = tmp_path / "export.jsonl"
    _write_jsonl(path, [rows[1], rows[2], rows[6], rows[9]])
    assert not verify_file(path, KEYED).ok
    assert verify_file(path, KEYED, partial=True).ok
    forged = replace(rows[6], outcome="ok" if rows[6].outcome != "ok" else "refused")
    _write_jsonl(path, [rows[1], forged, rows[9]])
    assert _kind_seq(verify_file(path, KEYED, partial=True)) == ("changed", 7)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1", "'+1"),
        ("-1", "'-1"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("Kenscoff 0700", "Kenscoff 0700"),
        (None, ""),
    ],
)
def test_csv_cells_never_run_as_formulas(text: str | None, shown: str) -> None:
    assert neutralise(text) == shown


def test_csv_row_keeps_payload_as_json_text(rows: list[AuditRecord]) -> None:
    row = replace(rows[0], actor="=cmd|' /C calc'!A0", payload=canonical_json({"text": "Bonjou"}))
    cells = csv_row(row)
    assert cells[4].startswith("'=")
    assert json.loads(cells[7]) == {"text": "Bonjou"}


@pytest.mark.parametrize("text", ["", "abc", "0" * 63, "x:" + "0" * 64, "g" * 64])
def test_a_bad_anchor_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="head"):
        Anchor.parse(text)


def test_an_anchor_reads_hash_or_seq_and_hash() -> None:
    h = "ab" * 32
    assert Anchor.parse(h.upper()) == Anchor(h)
    assert Anchor.parse(f"17:{h}") == Anchor(h, 17)
