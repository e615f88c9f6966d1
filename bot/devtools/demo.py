"""`daraja demo`: a scripted joint operation on Kenscoff, offline, with the real bot.

Starts the Bot API sandbox in-process and the real bot (`daraja run`) as a subprocess on
loopback, with a fresh SQLite database and the bundled fixture models. A PNH unit writing
Kreyòl, the PNH command post in French and two Kenyan MSS teams in English and Swahili enroll
and talk; the demo prints what each group saw, then checks the audit log. Exit status 1 if any
expected copy did not arrive.
"""

from __future__ import annotations

import asyncio
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from bot.domain import Role

ADMIN_ID = 4242
OPERATION = "Kenscoff"

# (unit code, side, language, group title, person name, telegram language, rank)
UNITS = (
    ("PNH-UDMO-2", "PNH", "ht", "PNH UDMO 2 — Kenscoff", "Jean-Robert", "ht"),
    ("PNH-CMD", "PNH", "fr", "PNH Poste de commandement", "Commissaire Pierre", "fr"),
    ("KE-3", "MSS", "en", "MSS Kenya 3", "Inspector Otieno", "en"),
    ("KE-SW-1", "MSS", "sw", "MSS Kikosi cha Kiswahili", "Sajenti Wanjiru", "sw"),
)

# (unit code that speaks, text). Sentences from the fixture phrasebook translate exactly.
SCRIPT = (
    ("PNH-UDMO-2", "Inite KE-3 rive Kenscoff."),
    ("KE-3", "Unit KE-3 at grid 18.5392,-72.3364, 2 wounded, need medevac."),
    ("KE-SW-1", "Tunahitaji msaada Kenscoff."),
    ("PNH-CMD", "L'unité PNH-UDMO-2 est en position."),
)

FLASH_ORDER = "Attendez les ordres."
SITREP = "at_position Furcy 6 The wounded need water."

TOY_MODELS_NOTE = (
    "the bundled models are phrasebook toys, trained on a few hundred sentences for tests and "
    "this demo: they translate the demo's sentences exactly and little else. For real traffic "
    "install real models (`daraja models catalog` says where to get them)."
)

COLOURS = {"ht": "\033[34m", "fr": "\033[36m", "en": "\033[32m", "sw": "\033[35m"}
RESET, BOLD, DIM, RED = "\033[0m", "\033[1m", "\033[2m", "\033[31m"


@dataclass
class Transcript:
    """What the demo did and what each group saw."""

    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)
    audit: dict[str, Any] = field(default_factory=dict)
    database: str = ""
    board: str = ""
    acks: str = ""


def progress(message: str) -> None:
    """One line of progress on stderr."""
    print(f"daraja demo: {message}", file=sys.stderr, flush=True)


async def run_demo(keep: Path | None, *, wait: float = 60.0) -> Transcript:
    """Play the scenario and return the transcript."""
    from bot.devtools.sandbox import FloodLimits, Sandbox, random_token
    from bot.devtools.scenario import BotProcess, People
    from bot.engines.bundled import install_bundled_models

    workdir = keep or Path(tempfile.mkdtemp(prefix="daraja-demo-"))
    workdir.mkdir(parents=True, exist_ok=True)
    db_path = workdir / "daraja.db"
    if db_path.exists():
        db_path.unlink()
    transcript = Transcript(database=str(db_path))
    progress("installing the bundled translation models")
    models = install_bundled_models(workdir / "models")
    token = random_token()
    progress("starting the Bot API sandbox on 127.0.0.1")
    async with Sandbox(token, flood=FloodLimits(enabled=True)) as sandbox:
        bot = BotProcess(
            workdir,
            sandbox.url,
            models,
            f"sqlite+aiosqlite:///{db_path}",
            token=token,
            admin_ids=str(ADMIN_ID),
        )
        progress("starting the bot (daraja run)")
        await asyncio.to_thread(bot.start)
        try:
            people = People(sandbox.client, ADMIN_ID)
            groups = await _enroll(people)
            await _play(people, groups, transcript, wait=wait)
            await _operations_room(people, groups, transcript, wait=wait)
            for code, group in groups.items():
                history = await sandbox.client.history(group["chat"])
                group["messages"] = [
                    {
                        "from": m.sender_name,
                        "bot": m.from_bot,
                        "text": m.text or "",
                        "html": m.html or "",
                    }
                    for m in history
                    if not m.service
                ]
                transcript.groups[code] = group
        finally:
            progress("stopping the bot")
            await asyncio.to_thread(bot.stop)
    transcript.audit = await _verify_audit(db_path)
    if keep is None:
        shutil.rmtree(workdir, ignore_errors=True)
        transcript.database = ""
    return transcript


async def _enroll(people: Any) -> dict[str, dict[str, Any]]:
    progress(f"the admin creates operation {OPERATION} and its four units")
    await people.new_operation(OPERATION, [(u[0], u[1], u[2]) for u in UNITS])
    groups: dict[str, dict[str, Any]] = {}
    for code, _side, lang, title, name, tg_lang in UNITS:
        person = await people.client.create_user(name, language_code=tg_lang)
        group = await people.group(title, person, [])
        chat_code = await people.issue_code(f"chat {OPERATION} {code}")
        await people.enroll(group, person, chat_code)
        role = Role.COMMANDER if code in ("PNH-CMD", "KE-3") else Role.OFFICER
        person_code = await people.issue_code(f"person {OPERATION} {code} {role} {lang}")
        await people.open_private(person)
        await people.ask(person, person, "join", person_code)
        groups[code] = {
            "chat": group.id,
            "title": title,
            "language": lang,
            "person": person.id,
            "name": name,
        }
        progress(f"{title} enrolled ({lang})")
    return groups


async def _play(
    people: Any, groups: dict[str, dict[str, Any]], transcript: Transcript, *, wait: float
) -> None:
    client = people.client
    for speaker, text in SCRIPT:
        source = groups[speaker]
        before = {code: await _bot_count(client, g["chat"]) for code, g in groups.items()}
        progress(f"{source['name']} writes in {source['title']}")
        await client.say(source["chat"], source["person"], text)
        await _expect_copies(
            client, groups, before, speaker, f"{speaker}: {text}", transcript, wait=wait
        )


async def _expect_copies(
    client: Any,
    groups: dict[str, dict[str, Any]],
    before: dict[str, int],
    speaker: str,
    what: str,
    transcript: Transcript,
    *,
    wait: float,
) -> None:
    """Wait until every group but the speaker's shows one more bot message; note what's missing."""
    for code, group in groups.items():
        if code == speaker:
            continue
        try:
            await client.wait_for(
                group["chat"],
                lambda history, n=before[code]: sum(m.from_bot for m in history) > n,
                timeout=wait,
            )
        except TimeoutError:
            transcript.missing.append(f"{what} -> {code}")


async def _operations_room(
    people: Any, groups: dict[str, dict[str, Any]], transcript: Transcript, *, wait: float
) -> None:
    """A SITREP, the commander's status board, a FLASH and its acknowledgements."""
    client = people.client
    ke = groups["KE-3"]
    progress(f"{ke['name']} files a SITREP from {ke['title']}")
    before = {code: await _bot_count(client, g["chat"]) for code, g in groups.items()}
    await client.command(ke["chat"], ke["person"], "report", SITREP)
    await _expect_copies(client, groups, before, "KE-3", "SITREP KE-3", transcript, wait=wait)
    cmd = groups["PNH-CMD"]
    progress(f"{cmd['name']} asks for the status board and sends a FLASH order")
    board = await people.ask(cmd["person"], cmd["person"], "status")
    transcript.board = board.text or ""
    await people.ask(cmd["person"], cmd["person"], "flash", FLASH_ORDER)
    for code, group in groups.items():
        try:
            history = await client.wait_for(
                group["chat"],
                lambda h: any(m.from_bot and m.buttons for m in h),
                timeout=wait,
            )
        except TimeoutError:
            transcript.missing.append(f"FLASH -> {code}")
            continue
        flash = next(m for m in reversed(history) if m.from_bot and m.buttons)
        query = await client.press(
            group["chat"],
            group["person"],
            flash.message_id,
            data=flash.buttons[0][0]["callback_data"],
        )
        try:
            await client.wait_for_answer(query, timeout=wait)
            # The group's copy is edited to show who acknowledged, once the ack is recorded.
            await client.wait_for(
                group["chat"],
                lambda h, mid=flash.message_id: any(
                    m.message_id == mid and "✅" in (m.text or "") for m in h
                ),
                timeout=wait,
            )
        except TimeoutError:
            transcript.missing.append(f"FLASH acknowledgement in {code}")
    acks = await people.ask(cmd["person"], cmd["person"], "acks")
    transcript.acks = acks.text or ""


async def _bot_count(client: Any, chat: int) -> int:
    return sum(m.from_bot for m in await client.history(chat))


async def _verify_audit(db_path: Path) -> dict[str, Any]:
    """Walk the hash chain the bot wrote (the demo uses no HMAC key)."""
    from storage.audit import AuditChain
    from storage.audit_verify import verify_database
    from storage.db import Database

    db = Database(f"sqlite+aiosqlite:///{db_path}")
    try:
        result = await verify_database(db, AuditChain())
    finally:
        await db.dispose()
    return {"ok": result.ok, "events": result.count, "head": result.head_hash[:16]}


def print_transcript(transcript: Transcript, out: TextIO, *, color: bool) -> None:
    """Each group's conversation as its members saw it."""

    def c(code: str, text: str) -> str:
        return f"{code}{text}{RESET}" if color else text

    out.write(c(BOLD, "Note: ") + TOY_MODELS_NOTE + "\n")
    for group in transcript.groups.values():
        lang = group["language"]
        out.write(
            "\n" + c(BOLD + COLOURS.get(lang, ""), f"══ {group['title']} [{lang}] ══") + "\n"
        )
        for message in group["messages"]:
            who = message["from"]
            body = message["text"].replace("\n", "\n      ")
            if message["bot"]:
                out.write(c(DIM, f"  🤖 {who}: ") + body + "\n")
            else:
                out.write(c(BOLD, f"  👤 {who}: ") + body + "\n")
    out.write("\n")
    if transcript.board:
        out.write(c(BOLD, "Status board, as the PNH command post reads it:") + "\n")
        out.write("  " + transcript.board.replace("\n", "\n  ") + "\n\n")
    if transcript.acks:
        out.write(c(BOLD, "FLASH acknowledgements:") + "\n")
        out.write("  " + transcript.acks.replace("\n", "\n  ") + "\n\n")
    if transcript.missing:
        out.write(c(RED, f"MISSING copies ({len(transcript.missing)}):") + "\n")
        for line in transcript.missing:
            out.write(f"  {line}\n")
    audit = transcript.audit
    if audit.get("ok") is True:
        out.write(
            c(BOLD, "Audit log verified: ")
            + f"{audit.get('events', 0)} events, hash chain intact (head {audit.get('head', '')}…)"
            + "\n"
        )
    elif audit.get("ok") is False:
        out.write(
            c(RED, "Audit log BROKEN: ")
            + f"the hash chain does not verify ({audit.get('events', 0)} events read)\n"
        )
    if transcript.database:
        out.write(f"Database kept at {transcript.database}\n")
    copies = sum(1 for group in transcript.groups.values() for m in group["messages"] if m["bot"])
    verdict = (
        f"{len(transcript.missing)} expected copies MISSING"
        if transcript.missing
        else "every expected copy arrived"
    )
    out.write(
        c(BOLD, "Demo finished: ")
        + f"{len(transcript.groups)} groups, {copies} messages from the bot, {verdict}.\n"
    )
