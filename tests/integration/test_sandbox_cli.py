"""`daraja sandbox` as a process, driven over HTTP by `SandboxClient.connect`."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys

import httpx
import pytest

from bot.devtools.sandbox import SandboxClient, SandboxError


async def test_daraja_sandbox_serves_until_sigterm() -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "sandbox",
        "--port",
        "0",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        ready = json.loads(await asyncio.wait_for(process.stdout.readline(), 20))
        assert ready["api_url"].startswith("http://127.0.0.1:")
        assert ready["control_url"] == ready["api_url"] + "/_sandbox"

        async with SandboxClient.connect(ready["api_url"]) as client:
            alice = await client.create_user("Alice", language_code="sw")
            await client.start(alice)
            with pytest.raises(SandboxError, match="no user 42"):
                await client.say(42, 42, "hi")
            async with httpx.AsyncClient(
                base_url=f"{ready['api_url']}/bot{ready['token']}/"
            ) as http:
                updates = (await http.post("getUpdates")).json()["result"]
                assert updates[0]["message"]["text"] == "/start"
                waiting = asyncio.create_task(
                    client.wait_for_message(alice, from_bot=True, timeout=5)
                )
                await asyncio.sleep(0.05)
                sent = await http.post(
                    "sendMessage", data={"chat_id": str(alice.id), "text": "Karibu"}
                )
                assert sent.json()["ok"] is True
            assert (await waiting).text == "Karibu"
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
        status = await asyncio.wait_for(process.wait(), 10)
    assert status == 0


async def test_a_busy_port_is_reported_in_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    from bot.cli.sandbox import _run

    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    args = argparse.Namespace(
        port=port, token=None, bot_username="b", no_flood=False, privacy=False, json=False
    )
    try:
        status = await asyncio.to_thread(_run, args)
    finally:
        server.close()
    assert status == 1
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
