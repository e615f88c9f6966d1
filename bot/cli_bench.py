"""`daraja bench`: benchmarks that print ratios measured in one run (never timed tests)."""

from __future__ import annotations

import argparse
from typing import Any

# (module, register function): each adds one `daraja bench NAME` subcommand, imported lazily.
_BENCHES = (
    ("bot.bench_translate", "register_translate"),
    ("bot.bench_relay", "register_relay"),
    ("bot.bench_export", "register_export"),
    ("bot.bench_export", "register_tamper"),
    ("bot.bench_status", "register_status"),
    ("bot.bench_webhook", "register_webhook"),  # issue 10
    ("bot.bench_console", "register_console"),
    ("bot.bench_voice", "register_voice"),
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
