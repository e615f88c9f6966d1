"""`daraja sandbox`: run the local Bot API sandbox until interrupted."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from typing import Any


def register(sub: Any) -> None:
    """Add `daraja sandbox`."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "sandbox",
        help="run the local Bot API sandbox",
        description="Serve a local fake of the Telegram Bot API on 127.0.0.1 (for tests, the "
        "demo and trying the bot without Telegram). Point the bot at it with "
        "DARAJA_TELEGRAM_API_URL and DARAJA_TELEGRAM_TOKEN as printed.",
        epilog=control_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=8081, help="port (0: any free port)")
    parser.add_argument(
        "--token", help="bot token to accept (default: the fixed sandbox token, printed)"
    )
    parser.add_argument("--bot-username", default="daraja_sandbox_bot", help="the bot's @username")
    parser.add_argument("--no-flood", action="store_true", help="disable flood control")
    parser.add_argument(
        "--privacy", action="store_true", help="privacy mode: in groups the bot sees commands only"
    )
    parser.add_argument("--json", action="store_true", help="print the ready line as JSON")
    parser.set_defaults(func=_run)


def control_help() -> str:
    """The control API's operations, one per line, for `daraja sandbox --help`."""
    from bot.devtools.sandbox.control import operations

    lines = [
        "control API: POST a JSON object of arguments to <control URL>/<operation>",
        '(e.g. curl -d \'{"first_name": "Rose"}\' http://127.0.0.1:8081/_sandbox/create_user);',
        "[name] is optional. Operations:",
    ]
    for name, args, doc in operations():
        lines.append(f"  {name} {args}".rstrip())
        lines.append(f"      {doc}")
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    from bot.errors import ConfigError

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port {args.port}: expected 0-65535")
    try:
        return asyncio.run(_serve(args))
    except OSError as exc:
        print(f"daraja sandbox: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}; "
              "choose another --port (0 picks a free one)", file=sys.stderr)  # fmt: skip
        return 1


async def _serve(args: argparse.Namespace) -> int:
    from bot.devtools.sandbox import DEFAULT_TOKEN, FloodLimits, Sandbox

    token = args.token or DEFAULT_TOKEN
    flood = FloodLimits(enabled=not args.no_flood)
    sandbox = Sandbox(
        token, port=args.port, bot_username=args.bot_username, privacy_mode=args.privacy,
        flood=flood,
    )  # fmt: skip
    stop = asyncio.Event()
    async with sandbox:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            # Signals reach the main thread only; elsewhere (tests) the caller stops us.
            with contextlib.suppress(RuntimeError, NotImplementedError):
                loop.add_signal_handler(sig, stop.set)
        # A token given on the command line is the operator's; only the fixed one is echoed.
        shown = token if args.token is None else "(as given with --token)"
        if args.json:
            ready = {"api_url": sandbox.url, "control_url": sandbox.control_url,
                     "bot_username": args.bot_username, "port": sandbox.port}  # fmt: skip
            if args.token is None:
                ready["token"] = token
            print(json.dumps(ready), flush=True)
        else:
            print(
                f"Bot API sandbox ready\n"
                f"  DARAJA_TELEGRAM_API_URL={sandbox.url}\n"
                f"  DARAJA_TELEGRAM_TOKEN={shown}\n"
                f"  control API: {sandbox.control_url}/<operation>  (POST JSON)\n"
                f"  Ctrl-C to stop",
                flush=True,
            )
        await stop.wait()
    print("sandbox stopped", file=sys.stderr)
    return 0
