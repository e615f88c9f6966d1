"""Voice notes through the relay on a real database, with a fake transcriber that records."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from bot.i18n import load_i18n
from bot.services.copies import CopyBuilder
from bot.services.enrollment import EnrollmentService
from bot.services.relay import Inbound, RelayService
from bot.services.voice import VoiceJob, VoiceService, job_languages
from storage.audit import AuditChain
from storage.db import Database
from storage.models import AuditEvent, Delivery, Message, TranslationRow
from tests.support.fakes import FakeTranslator
from tests.support.operation import ADMIN, enroll_operation
from translation.speech import Transcript


class FakeTranscriber:
    """Answers every note with `result`; records the languages it was asked for."""

    def __init__(self, result: Transcript, languages: Sequence[str] = ("en", "fr")) -> None:
        self.result = result
        self.languages = set(languages)
        self.calls: list[tuple[bytes, tuple[str, ...]]] = []

    def supports(self, languages: Sequence[str]) -> bool:
        return bool(self.languages & set(languages))

    def transcribe(
        self, audio: bytes, *, languages: Sequence[str], duration_hint: float | None = None
    ) -> Transcript:
        self.calls.append((audio, tuple(languages)))
        return self.result


HEARD = Transcript(
    "ok",
    text="Unit K-3 moving to the checkpoint at 14.30",
    language="en",
    model="tiny.en",
    duration=4.2,
    avg_logprob=-0.31,
    compression_ratio=1.1,
    no_speech_prob=0.02,
)


@pytest.fixture
async def relay(db: Database) -> tuple[RelayService, FakeTranslator, dict[str, int]]:
    audit = AuditChain()
    enrollment = EnrollmentService(db, audit, admin_ids=[ADMIN.user_id])
    op = await enroll_operation(enrollment, mixed=(-1005, "JOINT-1", "ht+en"))
    translator = FakeTranslator()
    return RelayService(db, audit, translator), translator, op.chats


async def _voice_note(
    relay: RelayService, voice: VoiceService, chat: int, message_id: int, **media: Any
) -> bool:
    """What the handler does: relay the note as a voice message, then queue its transcript."""
    inbound = Inbound(
        chat_id=chat,
        message_id=message_id,
        author_id=2001,
        author_name="Otieno",
        kind="voice",
        text="",
        media={"file_id": f"VOICE{message_id}", **media},
    )
    result = await relay.receive(inbound)
    assert result.status == "queued"
    return voice.submit(
        VoiceJob(
            chat_id=chat,
            message_id=message_id,
            author_id=2001,
            author_name="Otieno",
            file_id=f"VOICE{message_id}",
            languages=job_languages(result.chat_languages, result.author_language),
            duration=media.get("duration"),
        )
    )


async def _run(voice: VoiceService) -> None:
    worker = asyncio.create_task(voice.run())
    await voice.drain()
    worker.cancel()
    voice.close()


async def _fetch(file_id: str) -> bytes:
    return f"ogg bytes of {file_id}".encode()


async def _rows(db: Database, model: Any) -> list[Any]:
    async with db.transaction() as s:
        return list((await s.execute(select(model))).scalars())


async def _transcript_of(db: Database, chat: int, note_id: int) -> Message:
    found = [m for m in await _rows(db, Message) if m.telegram_message_id == -note_id]
    assert len(found) == 1, "exactly one transcript message per voice note"
    return found[0]


async def test_transcript_is_relayed_under_the_voice_note_in_every_language(
    relay: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    service, translator, chats = relay
    transcriber = FakeTranscriber(HEARD)
    voice = VoiceService(service, transcriber, _fetch)
    assert await _voice_note(service, voice, chats["KE-3"], 40, duration=4.0)
    await _run(voice)

    # The English group's note: the model was forced to English (the chat's only language).
    assert transcriber.calls == [(b"ogg bytes of VOICE40", ("en",))]
    assert translator.calls[-1] == (HEARD.text, ("ht", "fr", "sw"), "en")
    note = next(m for m in await _rows(db, Message) if m.telegram_message_id == 40)
    transcript = await _transcript_of(db, chats["KE-3"], 40)
    assert transcript.kind == "transcript"
    assert transcript.text == HEARD.text
    assert transcript.reply_to_message_id == note.id
    assert transcript.source_language == "en"
    assert transcript.language_decided_by == "speech"
    # The note went to the four partner groups; its transcript to them and to the sender's own.
    deliveries = await _rows(db, Delivery)
    assert len([d for d in deliveries if d.message_id == note.id]) == 4
    assert len([d for d in deliveries if d.message_id == transcript.id]) == 5
    # Spans from speech are never passed off as exact: every translation is flagged.
    rows = [r for r in await _rows(db, TranslationRow) if r.message_id == transcript.id]
    assert rows
    assert all("from_speech" in r.flags for r in rows)
    # The audit log keeps the transcript with its language, model and scores.
    payloads = [
        json.loads(e.payload) if isinstance(e.payload, str) else e.payload
        for e in await _rows(db, AuditEvent)
        if e.event_type == "message.received"
    ]
    [payload] = [p for p in payloads if p["kind"] == "transcript"]
    assert payload["text"] == HEARD.text
    assert payload["transcript"]["model"] == "tiny.en"
    assert payload["transcript"]["avg_logprob"] == -0.31
    assert payload["language"] == "en"


async def test_partner_copy_says_automatic_and_lists_spans_as_unverified(
    relay: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    service, _, chats = relay
    voice = VoiceService(service, FakeTranscriber(HEARD), _fetch)
    await _voice_note(service, voice, chats["KE-3"], 41)
    await _run(voice)
    transcript = await _transcript_of(db, chats["KE-3"], 41)
    builder = CopyBuilder(db, load_i18n())
    deliveries = [d for d in await _rows(db, Delivery) if d.message_id == transcript.id]
    by_lang = {d.target_language: d for d in deliveries}
    french = await builder.prepare(by_lang["fr"])
    assert french is not None
    text = "\n".join(french.parts)
    assert "transcription automatique" in text
    assert "non vérifiés : K-3, 14.30" in text
    assert "[fr] Unit K-3" in text
    # In the partner group it answers that group's copy of the voice note.
    assert french.reply_to is None  # the note's copy has not been posted yet in this test
    own = await builder.prepare(by_lang["en"])
    assert own is not None
    assert own.reply_to == 41  # the sender's group: under the voice note itself
    assert "automatic transcription" in "\n".join(own.parts)


@pytest.mark.parametrize(
    ("transcript", "line"),
    [
        (Transcript("no_speech"), "no speech was heard"),
        (Transcript("empty"), "the voice note is empty"),
        (Transcript("corrupt"), "could not be read"),
        (Transcript("unusable", language="en"), "could not be made out reliably"),
    ],
)
async def test_bad_voice_notes_are_relayed_with_a_clear_line(
    relay: tuple[RelayService, FakeTranslator, dict[str, int]],
    db: Database,
    transcript: Transcript,
    line: str,
) -> None:
    service, _, chats = relay
    voice = VoiceService(service, FakeTranscriber(transcript), _fetch)
    await _voice_note(service, voice, chats["KE-3"], 42)
    await _run(voice)
    note = next(m for m in await _rows(db, Message) if m.telegram_message_id == 42)
    assert len([d for d in await _rows(db, Delivery) if d.message_id == note.id]) == 4
    status = await _transcript_of(db, chats["KE-3"], 42)
    own = next(
        d
        for d in await _rows(db, Delivery)
        if d.message_id == status.id and d.target_language == "en"
    )
    copy = await CopyBuilder(db, load_i18n()).prepare(own)
    assert copy is not None
    assert line in "\n".join(copy.parts)
    assert copy.reply_to == 42


async def test_no_model_too_long_and_a_full_queue_answer_without_transcribing(
    relay: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    service, _, chats = relay
    # A Kreyòl group and an English-only model: no transcription available.
    transcriber = FakeTranscriber(HEARD, languages=("en",))
    voice = VoiceService(service, transcriber, _fetch, queue_size=1, max_seconds=600)
    assert not await _voice_note(service, voice, chats["PNH-UDMO-2"], 50)
    # Twenty minutes: refused from Telegram's duration, before any download.
    assert not await _voice_note(service, voice, chats["KE-3"], 51, duration=1200.0)
    assert await _voice_note(service, voice, chats["KE-3"], 52)
    assert not await _voice_note(service, voice, chats["KE-3"], 53)  # the queue holds one
    await _run(voice)
    statuses = {
        m.telegram_message_id: m.media["transcript"]["status"]
        for m in await _rows(db, Message)
        if m.kind == "transcript"
    }
    assert statuses == {-50: "no_model", -51: "too_long", -52: "ok", -53: "busy"}
    assert [languages for _, languages in transcriber.calls] == [("en",)]
    # Every voice note itself was relayed.
    notes = [m for m in await _rows(db, Message) if m.kind == "voice"]
    assert len(notes) == 4


async def test_without_a_transcriber_partners_learn_no_transcription_is_available(
    relay: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    service, _, chats = relay
    voice = VoiceService(service, None, _fetch)
    await _voice_note(service, voice, chats["KE-SW-1"], 60)
    await _run(voice)
    status = await _transcript_of(db, chats["KE-SW-1"], 60)
    partner = next(
        d
        for d in await _rows(db, Delivery)
        if d.message_id == status.id and d.target_language == "ht"
    )
    copy = await CopyBuilder(db, load_i18n()).prepare(partner)
    assert copy is not None
    assert "Pa gen transkripsyon pou mesaj vokal sa a" in "\n".join(copy.parts)


def test_sender_language_comes_first_only_when_the_chat_has_it() -> None:
    assert job_languages(["ht", "en"], "en") == ("en", "ht")
    assert job_languages(["ht", "en"], "sw") == ("ht", "en")
    assert job_languages(["fr"], None) == ("fr",)


async def test_notes_whose_transcript_a_stop_interrupted_are_queued_again(
    relay: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    service, _, chats = relay
    first = VoiceService(service, FakeTranscriber(HEARD), _fetch)
    await _voice_note(service, first, chats["KE-3"], 70, duration=3.0)
    await _voice_note(service, first, chats["KE-3"], 71, duration=3.0)
    # The process stops before the worker ran: the notes are relayed, their transcripts not.
    first.close()
    assert not [m for m in await _rows(db, Message) if m.kind == "transcript"]
    transcriber = FakeTranscriber(HEARD)
    after = VoiceService(service, transcriber, _fetch)
    assert await after.resume() == 2
    await _run(after)
    assert [audio for audio, _ in transcriber.calls] == [
        b"ogg bytes of VOICE70",
        b"ogg bytes of VOICE71",
    ]
    assert {m.telegram_message_id for m in await _rows(db, Message) if m.kind == "transcript"} == {
        -70,
        -71,
    }
    # Once relayed, a note is not queued again.
    assert await VoiceService(service, transcriber, _fetch).resume() == 0


async def test_auditor_finds_the_transcript_with_its_model_and_scores(
    relay: tuple[RelayService, FakeTranslator, dict[str, int]], db: Database
) -> None:
    from bot.services.audit_access import AuditAccess
    from bot.services.enrollment import Caller
    from storage.models import Chat, Person

    service, _, chats = relay
    voice = VoiceService(service, FakeTranscriber(HEARD), _fetch)
    await _voice_note(service, voice, chats["KE-3"], 80)
    await _run(voice)
    async with db.transaction() as s:
        chat = (await s.execute(select(Chat).where(Chat.telegram_chat_id == -1003))).scalar_one()
        s.add(Person(telegram_user_id=7001, role="auditor", operation_id=chat.operation_id))
    auditor = Caller(user_id=7001, display_name="Inspector")
    page = await AuditAccess(db, AuditChain()).search(
        auditor, chat_type="private", text="checkpoint at 14.30"
    )
    [entry] = page.entries
    assert entry.original == HEARD.text
    assert entry.language == "en"
    assert entry.speech is not None
    assert entry.speech["model"] == "tiny.en"
    assert entry.speech["status"] == "ok"
    assert entry.speech["compression_ratio"] == 1.1
    logged = await AuditAccess(db, AuditChain()).log(auditor, chat_type="private", args=["KE-3"])
    assert [e.speech is not None for e in logged.entries] == [False, True]  # note, transcript
