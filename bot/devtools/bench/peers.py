"""The two yardsticks `daraja bench relay` runs beside Daraja, each on its own fresh sandbox.

- `plain`: the same burst, groups and languages through a plain python-telegram-bot relay bot
  (bot/devtools/bench/plain_relay.py) using the same models and translation engine.
- `raw`: the sandbox's own `sendMessage` rate, the same number of copies posted by a bare aiohttp
  client as fast as the sandbox accepts them (no bot, no translation): the ceiling.
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# Requests the raw client keeps in flight (Daraja's Bot API connection pool has as many).
RAW_IN_FLIGHT = 64

Progress = Callable[[str], None]


def _settings(workdir: Path, token: str, api_url: str) -> Any:
    """Daraja's settings for the bench (the plain bot reads only the translation ones)."""
    from pydantic import SecretStr

    from bot.engines.bundled import install_bundled_models
    from bot.settings import Settings

    return Settings(
        telegram_token=SecretStr(token),
        telegram_api_url=api_url,
        database_url=f"sqlite+aiosqlite:///{workdir}/unused.db",
        models_dir=install_bundled_models(workdir / "models"),
        log_level="WARNING",
    )


async def _groups(client: Any, groups: int, langs: tuple[str, ...]) -> list[tuple[int, int, str]]:
    """`groups` supergroups with the bot in them, one officer each: (chat, officer, language),
    the same units and languages as Daraja's run."""
    chats = []
    for i in range(groups):
        lang = langs[i % len(langs)]
        officer = await client.create_user(f"Officer U{i:02d}", language_code=lang)
        group = await client.create_group(
            f"Bench U{i:02d}", members=[officer], admins=[officer], owner=officer,
            bot="member", supergroup=True,
        )  # fmt: skip
        chats.append((group.id, officer.id, lang))
    return chats


async def bench_plain(
    messages: int,
    groups: int,
    *,
    limit_s: float,
    progress: Progress,
    burst: Callable[[Any, list[tuple[int, int, str]], int], Any],
    langs: tuple[str, ...],
    transport: str = "aiohttp",
) -> dict[str, Any]:
    """The burst through the plain PTB relay bot; its figures (copies counted by the bot from
    `send_message`'s answers and checked against the sandbox's chat histories)."""
    from bot.devtools.bench.plain_relay import (
        PlainGroup,
        PlainRelay,
        build_plain_app,
        start_plain,
        stop_plain,
    )
    from bot.devtools.sandbox import random_token
    from bot.devtools.sandbox.client import SandboxClient
    from bot.devtools.scenario import SandboxProcess
    from bot.engines.translator import build_translator
    from translation.langid import warm_up

    workdir = Path(tempfile.mkdtemp(prefix="daraja-bench-plain-"))
    token = random_token()
    sandbox = SandboxProcess(workdir, token, no_flood=True).start()
    client = SandboxClient.connect(sandbox.url)
    settings = _settings(workdir, token, sandbox.url)
    translator = await asyncio.to_thread(build_translator, settings)
    await asyncio.to_thread(warm_up)
    app = None
    try:
        chats = await _groups(client, groups, langs)
        relay = PlainRelay(
            {c: PlainGroup(c, f"U{i:02d}", lang) for i, (c, _o, lang) in enumerate(chats)},
            translator,
        )
        app = build_plain_app(token, sandbox.url, relay, transport=transport)
        await start_plain(app, poll_timeout=5)
        expected = messages * (groups - 1)
        progress(f"plain PTB bot: burst of {messages} messages ({expected} copies)")
        started = time.monotonic()
        await burst(client, chats, messages)
        deadline = started + limit_s
        shown = started
        while relay.sent + relay.failed < expected and time.monotonic() < deadline:
            relay.event.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(relay.event.wait(), 5)
            now = time.monotonic()
            if now - shown >= 2:
                shown = now
                rate = relay.sent / (now - started)
                progress(f"plain PTB bot: {relay.sent}/{expected} copies sent ({rate:.0f}/s)")
        elapsed = time.monotonic() - started
        await stop_plain(app)
        app = None
        seen = 0
        for chat, _officer, _lang in chats:
            seen += sum(1 for m in await client.history(chat) if m.from_bot)
        counts = relay.counts()
    finally:
        if app is not None:
            with contextlib.suppress(Exception):
                await stop_plain(app)
        if translator is not None:
            with contextlib.suppress(Exception):
                await translator.engine.close()
        await client.close()
        sandbox.stop()
    return {
        "copies_expected": expected,
        "copies_delivered": counts["delivered"],
        "copies_in_sandbox": seen,
        "lost": expected - counts["delivered"],
        "duplicated": counts["duplicated"],
        "order_violations": counts["order_violations"],
        "failed_sends": counts["failed_sends"],
        "seconds": round(elapsed, 2),
        "copies_per_s": round(counts["delivered"] / elapsed, 1) if elapsed else 0.0,
        "transport": transport,
    }


async def bench_raw(copies: int, groups: int, *, progress: Progress) -> dict[str, Any]:
    """`copies` sendMessage calls from a bare aiohttp client, RAW_IN_FLIGHT at a time."""
    import aiohttp

    from bot.devtools.bench.relay import LANGS, SENTENCES
    from bot.devtools.sandbox import random_token
    from bot.devtools.sandbox.client import SandboxClient
    from bot.devtools.scenario import SandboxProcess

    workdir = Path(tempfile.mkdtemp(prefix="daraja-bench-raw-"))
    token = random_token()
    sandbox = SandboxProcess(workdir, token, no_flood=True).start()
    client = SandboxClient.connect(sandbox.url)
    try:
        chats = await _groups(client, groups, LANGS)
        jobs: asyncio.Queue[tuple[int, str]] = asyncio.Queue()
        for i in range(copies):
            chat, _officer, lang = chats[i % len(chats)]
            jobs.put_nowait((chat, f"<b>U{i % groups:02d}</b> · Officer\n{SENTENCES[lang]} #{i}"))
        ok = failed = 0
        url = f"{sandbox.url}/bot{token}/sendMessage"
        progress(f"raw HTTP client: {copies} sendMessage calls, {RAW_IN_FLIGHT} in flight")
        connector = aiohttp.TCPConnector(limit=RAW_IN_FLIGHT)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal ok, failed
                while not jobs.empty():
                    chat, text = jobs.get_nowait()
                    body = {"chat_id": chat, "text": text, "parse_mode": "HTML"}
                    async with session.post(url, json=body) as response:
                        answer = await response.json()
                    if answer.get("ok"):
                        ok += 1
                    else:
                        failed += 1

            async def report() -> None:
                while True:
                    await asyncio.sleep(2)
                    progress(f"raw HTTP client: {ok}/{copies} sent")

            started = time.monotonic()
            reporter = asyncio.create_task(report())
            try:
                await asyncio.gather(*(worker() for _ in range(RAW_IN_FLIGHT)))
            finally:
                reporter.cancel()
            elapsed = time.monotonic() - started
    finally:
        await client.close()
        sandbox.stop()
    return {
        "copies_expected": copies,
        "copies_delivered": ok,
        "failed_sends": failed,
        "in_flight": RAW_IN_FLIGHT,
        "seconds": round(elapsed, 2),
        "copies_per_s": round(ok / elapsed, 1) if elapsed else 0.0,
    }
