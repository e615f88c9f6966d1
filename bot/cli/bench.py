"""`daraja bench`: benchmarks that print ratios measured in one run (never timed tests)."""

from __future__ import annotations

import argparse
from typing import Any

# (module, register function): each adds one `daraja bench NAME` subcommand, imported lazily.
_BENCHES = (
    ("bot.devtools.bench.translate", "register_translate"),
    ("bot.devtools.bench.relay", "register_relay"),
    ("bot.devtools.bench.export", "register_export"),
    ("bot.devtools.bench.export", "register_tamper"),
    ("bot.devtools.bench.status", "register_status"),
    ("bot.devtools.bench.webhook", "register_webhook"),
    ("bot.devtools.bench.console", "register_console"),
    ("bot.devtools.bench.voice", "register_voice"),
)


def register(sub: Any) -> None:
    """Add `daraja bench` and every benchmark."""
    import importlib

    parser: argparse.ArgumentParser = sub.add_parser(
        "bench", help="benchmarks (translation, relay, status, export)"
    )
    bsub = parser.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")
    for module, function in _BENCHES:
        getattr(importlib.import_module(module), function)(bsub)
