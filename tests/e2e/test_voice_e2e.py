"""Voice notes end to end: the real bot with the real Whisper tiny.en model, over the sandbox.

Its own sandbox and bot process (the session's bot has no voice model): an English voice note
reaches the Kreyòl group unchanged, followed by its transcript translated; a corrupt note is
still relayed, and its sender is told why there is no transcript.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.scenario import BotProcess, People, SandboxProcess
from tests.support.e2e import ADMIN_ID, TOKEN
from tests.support.voice import espeak, install_tiny_en, voice_note

# One bot for the module (voice_bot): its tests share a test worker.
pytestmark = [pytest.mark.e2e, pytest.mark.slow, pytest.mark.xdist_group("voice-e2e")]


@pytest.fixture(scope="module")
def voice_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    espeak()  # skip (fail under CI) before starting anything
    root = tmp_path_factory.mktemp("voice-e2e")
    install_tiny_en(root / "voice-models")
    return root


@pytest.fixture(scope="module")
def voice_sandbox(voice_dir: Path) -> Iterator[SandboxProcess]:
    proc = SandboxProcess(voice_dir, TOKEN).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="module")
def voice_bot(voice_sandbox: SandboxProcess, voice_dir: Path) -> Iterator[BotProcess]:
    from tests.support.models import install_fixture_models

    models = install_fixture_models(voice_dir / "models")
    proc = BotProcess(
        voice_dir,
        voice_sandbox.url,
        models,
        f"sqlite+aiosqlite:///{voice_dir}/daraja.db",
        token=TOKEN,
        admin_ids=str(ADMIN_ID),
        extra_env={
            "DARAJA_RATE_CHAT_PER_S": "0",
            "DARAJA_RATE_GROUP_PER_MIN": "0",
            "DARAJA_VOICE_MODELS_DIR": str(voice_dir / "voice-models"),
        },
    ).start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture
async def voice_people(
    voice_sandbox: SandboxProcess, voice_bot: BotProcess
) -> AsyncIterator[People]:
    from bot.devtools.sandbox.client import SandboxClient

    client = SandboxClient.connect(voice_sandbox.url)
    try:
        await client.set_flood(enabled=False)
        yield People(client, ADMIN_ID)
    finally:
        await client.close()


async def _groups(people: People, name: str) -> Any:
    c = people.client
    await people.new_operation(name, [("P1", "PNH", "ht"), ("M1", "MSS", "en")])
    rose = await c.create_user("Rose", language_code="ht")
    kamau = await c.create_user("Kamau", language_code="en")
    pnh = await people.group(f"{name} P1", rose, [])
    mss = await people.group(f"{name} M1", kamau, [])
    await people.enroll(pnh, rose, await people.issue_code(f"chat {name} P1"))
    await people.enroll(mss, kamau, await people.issue_code(f"chat {name} M1"))
    return pnh, mss, kamau


async def _last_id(people: People, chat: Any) -> int:
    return int((await people.client.history(chat))[-1].message_id)


async def test_voice_note_arrives_with_its_transcript_translated(voice_people: People) -> None:
    c = voice_people.client
    pnh, mss, kamau = await _groups(voice_people, "VoiceOp1")
    mark = await _last_id(voice_people, pnh)
    audio = voice_note("Road block at the checkpoint. Send two vehicles.")
    note = await c.send_voice(mss, kamau, data=audio, duration=4)
    copy = await c.wait_for_message(
        pnh, lambda m: m.kind == "voice", from_bot=True, after=mark, timeout=30
    )
    # The voice note itself, unchanged: the same audio bytes.
    assert copy.media["voice"]["file_size"] == len(audio)
    transcript = await c.wait_for_message(
        pnh, from_bot=True, contains="transkripsyon otomatik", after=mark, timeout=120
    )
    assert transcript.reply_to == copy.message_id
    assert "Kamau" in transcript.text
    assert "checkpoint" in transcript.text.lower()  # the transcript, as the original
    # The sender's own group gets the transcript under the note, to check what was heard.
    own = await c.wait_for_message(
        mss, from_bot=True, contains="automatic transcription", after=note.message_id, timeout=60
    )
    assert own.reply_to == note.message_id
    assert "vehicles" in own.text.lower()
    # The auditor finds it with /search, with the model and its scores.
    auditor = await c.create_user("Inspectorate", language_code="en")
    await voice_people.open_private(auditor)
    code = await voice_people.issue_code("person VoiceOp1 M1 auditor en")
    await voice_people.ask(auditor, auditor, "join", code)
    page = await voice_people.ask(auditor, auditor, "search", "checkpoint")
    assert "automatic transcript of a voice note (ok; model tiny.en" in page.text
    assert "Kamau" in page.text


async def test_corrupt_voice_note_is_relayed_and_the_sender_told(voice_people: People) -> None:
    c = voice_people.client
    pnh, mss, kamau = await _groups(voice_people, "VoiceOp2")
    mark = await _last_id(voice_people, pnh)
    note = await c.send_voice(mss, kamau, data=b"OggS" + bytes(300), duration=2)
    await c.wait_for_message(pnh, lambda m: m.kind == "voice", from_bot=True, after=mark)
    line = await c.wait_for_message(
        mss, from_bot=True, contains="could not be read", after=note.message_id, timeout=60
    )
    assert line.reply_to == note.message_id
    partner = await c.wait_for_message(
        pnh, from_bot=True, contains="pa t ka li", after=mark, timeout=60
    )
    assert "Kamau" in partner.text
