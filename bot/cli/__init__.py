"""The `daraja` command line. Subcommands import their modules lazily so `--help` stays fast.

Each feature registers its subcommands in `_COMMANDS` below as "module:function"; the function
receives the argparse subparsers object and adds its parser with `set_defaults(func=...)`.
A command function takes the parsed arguments and returns the exit status.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import logging
import os
import signal
import sys
from collections.abc import Callable, Sequence

from bot import __version__
from bot.errors import ConfigError, DarajaError

# Order is the order of `daraja --help`. Each entry: (name, help, "module:register").
_COMMANDS: list[tuple[str, str, str]] = [
    ("run", "start the bot (polling or webhook)", "bot.cli.run:register"),
    ("demo", "run the offline demo of a joint operation", "bot.cli.demo:register"),
    ("db", "database migrations", "bot.cli.db:register"),
    (
        "backup",
        "copy the database (consistent while the bot runs)",
        "bot.cli.backup:register_backup",
    ),
    ("restore", "put a backup back, its audit chain verified", "bot.cli.backup:register_restore"),
    ("admin", "operations, units, enrollment codes, people", "bot.cli.admin:register"),
    ("models", "install, list, remove and convert translation models", "bot.cli.models:register"),
    (
        "translate",
        "translate text offline with the installed models",
        "bot.cli.translate:register",
    ),
    (
        "eval",
        "measure the installed models on a reference set",
        "bot.cli.evaluate:register",
    ),
    ("audit", "verify, anchor and export the audit log", "bot.cli.audit:register"),
    ("console", "serve the web console on its own", "bot.console.server:register"),
    ("i18n", "manage the interface text catalogs", "bot.cli.i18n:register"),
    ("sandbox", "run the local Bot API sandbox", "bot.cli.sandbox:register"),
    ("bench", "benchmarks (translation, relay, status, export)", "bot.cli.bench:register"),
    ("health", "health check for containers", "bot.cli.health:register"),
]


def _available(spec: str) -> bool:
    module = spec.split(":", 1)[0]
    return importlib.util.find_spec(module) is not None


def build_parser(argv: Sequence[str]) -> argparse.ArgumentParser:
    """Build the parser; only the chosen subcommand's module is imported."""
    parser = argparse.ArgumentParser(
        prog="daraja",
        description="Offline multilingual coordination bot for joint police operations.",
    )
    parser.add_argument("--version", action="version", version=f"daraja {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text, spec in _COMMANDS:
        if not _available(spec):
            continue
        if name == chosen:
            module_name, func_name = spec.split(":", 1)
            register: Callable[[argparse._SubParsersAction[argparse.ArgumentParser]], None] = (
                getattr(importlib.import_module(module_name), func_name)
            )
            register(sub)
        else:
            sub.add_parser(name, help=help_text)
    return parser


def _configured_secrets() -> list[str]:
    """The deployment's secrets, to mask in whatever any command prints (none if the settings
    do not load: the command itself then says why)."""
    from bot.settings import load_settings

    try:
        return load_settings().secret_values()
    except (ConfigError, ValueError):
        return []


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `daraja` console script."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(args_list)
    args = parser.parse_args(args_list)
    if getattr(args, "func", None) is None:
        parser.print_help()
        return 0 if args.command is None else 2
    from bot.observability.logging_setup import ContentRedactor, setup_logging

    secrets = _configured_secrets()
    setup_logging(verbose=args.verbose, secrets=secrets)
    # What a command prints about a failure is masked like a log line (a driver's error may
    # quote a URL with its password).
    mask = ContentRedactor(secrets, log_content=True)
    try:
        status: int = args.func(args)
        sys.stdout.flush()  # a closed pipe shows here, not as noise at interpreter exit
    except BrokenPipeError:
        # `daraja models list --json | head`: the reader has all it wanted; say nothing.
        _silence_stdout()
        return 128 + signal.SIGPIPE
    except ConfigError as exc:
        print(mask(f"daraja: configuration error: {exc}"), file=sys.stderr)
        return 2
    except DarajaError as exc:
        print(mask(f"daraja: {exc}"), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        from bot.cli.doors import explain

        line = explain(exc)
        if line is None:
            raise  # a bug: keep its traceback
        print(f"daraja: {line}", file=sys.stderr)
        return 2
    logging.shutdown()
    return status


def _silence_stdout() -> None:
    """Point stdout at /dev/null so the interpreter's last flush cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (AttributeError, OSError, ValueError):
        pass  # stdout is not a file (captured in tests): nothing will be flushed to a pipe
