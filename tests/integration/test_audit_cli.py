"""`daraja audit …` end to end on a real database: exit codes, output, refusals audited."""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import stat
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, text

from bot.cli import main
from storage.audit import READ_EVENT, AuditChain
from storage.db import Database
from storage.models import AuditEvent, Chat, Operation, Unit

KEY = "cli-test-key"
CHAIN = AuditChain(key=KEY.encode())
OLD = datetime.now(UTC) - timedelta(days=100)


def _run(url: str, work: Callable[[Database], Awaitable[Any]]) -> Any:
    async def go() -> Any:
        db = Database(url)
        try:
            return await work(db)
        finally:
            await db.dispose()

    return asyncio.run(go())


async def _seed(db: Database) -> None:
    async with db.transaction() as s:
        op = Operation(name="Kenscoff", glossary={})
        s.add(op)
        await s.flush()
        unit = Unit(operation_id=op.id, code="KE-3", name="Kenya 3", side="MSS", language="en")
        s.add(unit)
        await s.flush()
        s.add(Chat(telegram_chat_id=-1003, operation_id=op.id, unit_id=unit.id, languages="en"))
    for i in range(12):
        async with db.transaction() as s:
            await CHAIN.append(
                s,
                component="relay",
                event_type="message.in",
                actor='=HYPERLINK("http://evil")' if i == 0 else f"tg:{i}",
                operation_id=1,
                payload={"chat_id": -1003 if i % 3 == 0 else -1009, "text": f"Mesaj {i}"},
                ts=OLD + timedelta(days=i * 5, hours=1),
            )


@pytest.fixture
def url(db: Database, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DARAJA_DATABASE_URL", db.url)
    monkeypatch.setenv("DARAJA_AUDIT_HMAC_KEY", KEY)
    _run(db.url, _seed)
    return db.url


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["audit", *args])
    out = capsys.readouterr()
    return status, out.out, out.err


async def _read_events(db: Database) -> list[AuditEvent]:
    async with db.transaction() as s:
        rows = await s.execute(select(AuditEvent).where(AuditEvent.event_type == READ_EVENT))
        return list(rows.scalars())


def test_verify_and_head(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _cli(capsys, "verify")
    assert status == 0
    assert out.startswith("OK: 12 events")
    status, out, _ = _cli(capsys, "head", "--json")
    head = json.loads(out)
    assert head["seq"] == 12
    status, out, _ = _cli(capsys, "verify", "--expect-head", head["anchor"], "--json")
    assert (status, json.loads(out)["ok"], json.loads(out)["head_hash"]) == (0, True, head["hash"])


def test_verify_with_the_wrong_key_is_broken(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DARAJA_AUDIT_HMAC_KEY", "not-the-key")
    status, out, _ = _cli(capsys, "verify", "--json")
    assert status == 1
    assert json.loads(out)["break"] == {
        "kind": "changed",
        "seq": 1,
        "index": 1,
        "detail": "event content does not match its hash",
    }


def test_truncation_behind_a_rewound_head_is_caught_with_the_anchor(
    url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    anchor = json.loads(_cli(capsys, "head", "--json")[1])["anchor"]

    async def cut(db: Database) -> None:
        async with db.transaction() as s:
            if db.dialect == "sqlite":
                await s.execute(text("DROP TRIGGER audit_events_no_delete"))
                await s.execute(text("DROP TRIGGER audit_head_forward_only"))
            else:
                await s.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
                await s.execute(text("ALTER TABLE audit_head DISABLE TRIGGER USER"))
            h9 = (await s.execute(select(AuditEvent.hash).where(AuditEvent.seq == 9))).scalar_one()
            await s.execute(text("DELETE FROM audit_events WHERE seq > 9"))
            await s.execute(text("UPDATE audit_head SET seq = 9, hash = :h"), {"h": h9})

    _run(url, cut)
    assert _cli(capsys, "verify")[0] == 0
    status, out, _ = _cli(capsys, "verify", "--expect-head", anchor)
    assert status == 1
    assert out.startswith("BROKEN: truncated at seq 10")


def test_jsonl_export_verifies_alone_and_a_forged_copy_does_not(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "audit.jsonl"
    status, _, err = _cli(capsys, "export", "--format", "jsonl", "--out", str(path))
    assert (status, err.strip()) == (0, f"exported 12 events to {path}")
    assert _cli(capsys, "verify", "--file", str(path))[0] == 0
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    event = json.loads(lines[5])
    event["payload"] = event["payload"].replace("Mesaj 5", "Mesaj 6")
    lines[5] = json.dumps(event) + "\n"
    path.write_text("".join(lines), encoding="utf-8")
    status, out, _ = _cli(capsys, "verify", "--file", str(path), "--json")
    assert status == 1
    assert (json.loads(out)["break"]["kind"], json.loads(out)["break"]["seq"]) == ("changed", 6)
    # The export itself was a read of the audit log, and is on record, naming the OS user.
    reads = _run(url, _read_events)
    assert [json.loads(e.payload)["events"] for e in reads] == [12]
    assert [e.actor for e in reads] == [f"os:{pwd.getpwuid(os.getuid()).pw_name}"]


def test_verify_file_names_what_it_was_given_instead_of_a_traceback(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    csv_export = tmp_path / "audit.csv"
    assert _cli(capsys, "export", "--format", "csv", "--out", str(csv_export))[0] == 0
    binary = tmp_path / "photo.jpg"
    binary.write_bytes(b"\xff\xd8\xff\xe0" + os.urandom(2048))
    jsonl = tmp_path / "audit.jsonl"
    assert _cli(capsys, "export", "--format", "jsonl", "--out", str(jsonl))[0] == 0
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(jsonl.read_bytes() + b"\x91\x92 not text\n")

    for path, said in (
        (csv_export, "is a CSV export"),
        (binary, "is not text"),
        (tmp_path, "is a directory"),
    ):
        status, _, err = _cli(capsys, "verify", "--file", str(path))
        assert status == 2, err
        assert said in err
        assert "--format jsonl" in err or "directory" in err
    status, out, err = _cli(capsys, "verify", "--file", str(damaged))
    assert status == 1  # changed after the export: broken, not a usage error
    assert "BROKEN" in out
    assert "Traceback" not in err


def test_an_export_is_readable_by_its_writer_only(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Even over a file someone left world-readable (the old export being replaced)."""
    fresh, old = tmp_path / "fresh.csv", tmp_path / "old.jsonl"
    old.write_text("stale\n")
    old.chmod(0o644)
    assert _cli(capsys, "export", "--format", "csv", "--out", str(fresh))[0] == 0
    assert _cli(capsys, "export", "--format", "jsonl", "--out", str(old))[0] == 0
    assert stat.S_IMODE(fresh.stat().st_mode) == 0o600
    assert stat.S_IMODE(old.stat().st_mode) == 0o600
    assert "stale" not in old.read_text()


def test_csv_export_opens_cleanly_in_a_spreadsheet(
    url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "audit.csv"
    assert _cli(capsys, "export", "--format", "csv", "--bom", "--out", str(path))[0] == 0
    raw = path.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbfseq,ts,component")
    lines = raw.decode("utf-8-sig").splitlines()
    assert len(lines) == 13  # header + one row per event
    assert ',"\'=HYPERLINK(""http://evil"")",' in lines[1]


def test_export_by_unit_and_time(url: str, capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _cli(capsys, "export", "--format", "jsonl", "--unit", "ke-3")
    assert status == 0
    seqs = [json.loads(x)["seq"] for x in out.splitlines()]
    assert seqs == [1, 4, 7, 10]  # the events naming the unit's chat
    since = (OLD + timedelta(days=9)).isoformat()
    until = (OLD + timedelta(days=21)).isoformat()
    status, out, _ = _cli(
        capsys, "export", "--format", "jsonl", "--operation", "kenscoff", "--since", since,
        "--until", until,
    )  # fmt: skip
    assert status == 0
    assert [json.loads(x)["seq"] for x in out.splitlines()] == [3, 4, 5]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "'yesterday' is not a date"),
        (["--since", "2026-11-20", "--until", "2026-11-01"], "the range is empty"),
        (["--operation", "Furcy"], "no operation named 'Furcy'"),
        (["--unit", "PNH-9"], "no unit 'PNH-9'"),
    ],
)
def test_bad_export_requests_are_refused_in_one_line_and_audited(
    url: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    status, out, err = _cli(capsys, "export", "--format", "csv", *args)
    assert status == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert message in err
    reads = _run(url, _read_events)
    assert [(e.outcome, message in json.loads(e.payload)["reason"]) for e in reads] == [
        ("refused", True)
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["verify", "--expect-head", "nothex"],
        ["verify", "--file", "/nonexistent.jsonl"],
        ["export", "--format", "jsonl", "--bom"],
        ["export", "--format", "xml"],
    ],
)
def test_usage_errors_exit_2(url: str, args: list[str]) -> None:
    try:
        status = main(["audit", *args])
    except SystemExit as exc:  # argparse's own refusals
        status = int(str(exc.code))
    assert status == 2


def test_purge_honours_retention_and_verify_still_passes(
    url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    status, _, err = _cli(capsys, "purge")
    assert status == 2
    assert "DARAJA_AUDIT_RETENTION_DAYS is not set" in err
    monkeypatch.setenv("DARAJA_AUDIT_RETENTION_DAYS", "60")
    recent = datetime.now(UTC).date().isoformat()
    status, _, err = _cli(capsys, "purge", "--before", recent)
    assert status == 2
    assert "younger than the retention period" in err
    status, out, _ = _cli(capsys, "purge", "--dry-run", "--json")
    plan = json.loads(out)
    assert (status, plan["purged"], plan["event_seq"]) == (0, 8, None)  # days 0..35 of 100 ago
    status, out, _ = _cli(capsys, "purge", "--json")
    done = json.loads(out)
    assert (status, done["purged"], done["through_seq"], done["event_seq"]) == (0, 8, 8, 13)
    status, out, _ = _cli(capsys, "verify", "--json")
    result = json.loads(out)
    assert (status, result["first_seq"], result["anchored_at"], result["count"]) == (0, 9, 8, 5)
