"""`daraja i18n`: extract keys from the code, update, compile and report on the catalogs.

    daraja i18n status [--json] [--check]   translated / fuzzy / missing per language
    daraja i18n update [--check]            add new keys to every catalog (Babel update)
    daraja i18n compile [--output-dir DIR]  check every catalog and write the .mo files
    daraja i18n extract [--output FILE]     the template (.pot) of every key the code needs

The workflow is described in `locales/README.md`.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any


def register(sub: Any) -> None:
    """Add `daraja i18n` and its subcommands."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "i18n", help="manage the interface text catalogs"
    )
    parser.add_argument(
        "--locales", type=Path, default=None, help="locales directory (default: the bundled one)"
    )
    isub = parser.add_subparsers(dest="i18n_command", required=True, metavar="ACTION")
    st = isub.add_parser("status", help="translated, fuzzy and missing strings per language")
    st.add_argument("--json", action="store_true", help="machine-readable output")
    st.add_argument("--check", action="store_true", help="exit 1 if any string is missing")
    st.set_defaults(func=_status)
    up = isub.add_parser("update", help="add the keys used in the code to every catalog")
    up.add_argument(
        "--check", action="store_true", help="change nothing; exit 1 if a catalog is out of date"
    )
    up.set_defaults(func=_update)
    co = isub.add_parser("compile", help="check the catalogs and write the .mo files")
    co.add_argument("--output-dir", type=Path, default=None, help="default: next to the .po")
    co.set_defaults(func=_compile)
    ex = isub.add_parser("extract", help="write the template (.pot) of every key in use")
    ex.add_argument("--output", type=Path, default=None, help="default: standard output")
    ex.add_argument("--json", action="store_true", help="list keys and where they are used")
    ex.set_defaults(func=_extract)


def _root(args: argparse.Namespace) -> Path:
    from bot.i18n import LOCALES_DIR

    root: Path = args.locales or LOCALES_DIR
    return root


def _status(args: argparse.Namespace) -> int:
    from bot.i18n.tools import iter_status_lines, status

    report = status(_root(args))
    if args.json:
        print(json.dumps([asdict(item) for item in report], ensure_ascii=False, indent=2))
    else:
        for line in iter_status_lines(report):
            print(line)
    missing = sum(item.missing for item in report)
    return 1 if args.check and missing else 0


def _update(args: argparse.Namespace) -> int:
    from bot.i18n.tools import extract_keys, update_catalogs

    extraction = extract_keys()
    _warn_unknown_families(extraction.unknown_families)
    results = update_catalogs(_root(args), extraction, write=not args.check)
    for result in results:
        verb = "would change" if args.check else "updated"
        state = verb if result.changed else "up to date"
        print(
            f"{result.lang}: {state}; {len(result.added)} added, "
            f"{len(result.obsoleted)} obsolete — {result.path}"
        )
        for key in result.added:
            print(f"  + {key}")
    stale = any(result.changed for result in results)
    if args.check and stale:
        print("catalogs are out of date: run `daraja i18n update`", file=sys.stderr)
        return 1
    return 0


def _compile(args: argparse.Namespace) -> int:
    from bot.i18n.tools import compile_catalogs

    for path in compile_catalogs(_root(args), args.output_dir):
        print(f"wrote {path}")
    return 0


def _extract(args: argparse.Namespace) -> int:
    from bot.i18n import FALLBACK
    from bot.i18n.catalogs import catalog_path, read_catalog
    from bot.i18n.tools import extract_keys, render, template, wanted_keys

    extraction = extract_keys()
    _warn_unknown_families(extraction.unknown_families)
    if args.json:
        data = {
            "keys": {k: asdict(use) for k, use in sorted(extraction.keys.items())},
            "families": extraction.families,
        }
        print(json.dumps(data, indent=2))
        return 0
    english = read_catalog(catalog_path(_root(args), FALLBACK), FALLBACK)
    pot = render(template(wanted_keys(extraction, english), english))
    if args.output is None:
        sys.stdout.write(pot.decode("utf-8"))
    else:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_bytes(pot)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


def _warn_unknown_families(unknown: dict[str, list[str]]) -> None:
    for pattern, places in unknown.items():
        print(
            f"warning: {places[0]}: key built at run time ({pattern!r}) is not listed in "
            "bot.i18n.KEY_FAMILIES; its keys cannot be checked",
            file=sys.stderr,
        )
