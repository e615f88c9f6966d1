"""What `daraja demo` prints for a person: the toy-model warning and a readable last line."""

from __future__ import annotations

import io

from bot.devtools.demo import Transcript, print_transcript


def _transcript(missing: list[str]) -> Transcript:
    group = {
        "title": "MSS Kenya 3",
        "language": "en",
        "messages": [
            {"from": "Inspector Otieno", "bot": False, "text": "Unit KE-3 at grid", "html": ""},
            {"from": "Daraja", "bot": True, "text": "Unit KE-3 arrived at Kenscoff.", "html": ""},
        ],
    }
    return Transcript(
        groups={"KE-3": group},
        missing=missing,
        audit={"ok": True, "events": 57, "head": "0123456789abcdef"},
    )


def test_the_demo_says_its_models_are_toys_and_ends_with_a_sentence() -> None:
    out = io.StringIO()
    print_transcript(_transcript([]), out, color=False)
    text = out.getvalue()
    assert text.startswith("Note: the bundled models are phrasebook toys")
    assert "Audit log verified: 57 events, hash chain intact (head 0123456789abcdef…)" in text
    assert "{" not in text  # no raw JSON
    assert text.splitlines()[-1] == (
        "Demo finished: 1 groups, 1 messages from the bot, every expected copy arrived."
    )


def test_missing_copies_are_counted_in_the_last_line() -> None:
    out = io.StringIO()
    print_transcript(_transcript(["KE-3 <- PNH-CMD: L'unité..."]), out, color=False)
    assert out.getvalue().splitlines()[-1].endswith("1 expected copies MISSING.")
