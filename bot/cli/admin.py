"""`daraja admin`: operations, units, enrollment codes and people, from the server's shell.

The CLI acts as the built-in `cli` admin, audited as the operating-system user who ran it
(`os:alice`); it needs no token and no network, only the database.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from bot.domain import CodeKind

CLI_ADMIN_ID = 0


def register(sub: Any) -> None:
    """Add `daraja admin` and its subcommands."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "admin", help="operations, units, enrollment codes, people"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    asub = parser.add_subparsers(dest="admin_command", required=True, metavar="ACTION")

    p = asub.add_parser("create-operation", help="create a joint operation")
    p.add_argument("name")
    p.add_argument("--language", default="en", help="default language (ht, fr, en, sw)")
    p.add_argument("--timezone", default=None, help="IANA time zone (default from settings)")
    p.add_argument("--report-interval", type=int, default=60, help="minutes between SITREPs")
    p.set_defaults(func=lambda a: _run(a, _create_operation))

    p = asub.add_parser("operations", help="list operations")
    p.set_defaults(func=lambda a: _run(a, _operations))

    p = asub.add_parser("add-unit", help="add a unit to an operation")
    p.add_argument("operation")
    p.add_argument("code", help="unit code such as KE-3 or PNH-UDMO-2")
    p.add_argument("--side", required=True, help="PNH or MSS")
    p.add_argument("--language", required=True, help="home language (ht, fr, en, sw)")
    p.add_argument("--name", default="", help="full unit name")
    p.set_defaults(func=lambda a: _run(a, _add_unit))

    p = asub.add_parser("units", help="list the units of an operation")
    p.add_argument("operation")
    p.set_defaults(func=lambda a: _run(a, _units))

    p = asub.add_parser("code", help="issue a one-time enrollment code")
    p.add_argument("kind", choices=[kind.value for kind in CodeKind])
    p.add_argument("operation")
    p.add_argument("--unit", default=None)
    p.add_argument("--role", default=None, help="officer, commander or auditor (person codes)")
    p.add_argument("--languages", default="", help="e.g. ht, or ht+en for a mixed group")
    p.add_argument("--command-chat", action="store_true", help="the commanders' chat")
    p.add_argument("--hours", type=float, default=48.0, help="validity in hours (default 48)")
    p.set_defaults(func=lambda a: _run(a, _code))

    p = asub.add_parser("people", help="list enrolled people and their state (active/revoked)")
    p.add_argument("operation", nargs="?", help="only this operation's (default: all)")
    p.set_defaults(func=lambda a: _run(a, _people))

    p = asub.add_parser("codes", help="list enrollment codes and their state")
    p.add_argument("operation", nargs="?", help="only this operation's (default: all)")
    p.set_defaults(func=lambda a: _run(a, _codes))

    p = asub.add_parser("chats", help="list enrolled chats and their state")
    p.add_argument("operation", nargs="?", help="only this operation's (default: all)")
    p.set_defaults(func=lambda a: _run(a, _chats))

    p = asub.add_parser(
        "revoke",
        help="cut off a person, a code, a chat or a unit now",
        description="person USER_ID | code ID|CODE | chat CHAT_ID | unit OPERATION UNIT "
        "(retires the unit: its chats and open codes are cut off, it leaves the board)",
    )
    p.add_argument("target", choices=["person", "code", "chat", "unit"])
    p.add_argument("ref", nargs="+", metavar="ID", help="what to revoke (see above)")
    p.set_defaults(func=lambda a: _run(a, _revoke))

    p = asub.add_parser("reinstate", help="give a revoked person their access back")
    p.add_argument("user_id", type=int, help="Telegram user id (see `daraja admin people`)")
    p.set_defaults(func=lambda a: _run(a, _reinstate))

    p = asub.add_parser("set-role", help="change an enrolled person's role")
    p.add_argument("user_id", type=int, help="Telegram user id (see `daraja admin people`)")
    p.add_argument("role", help="officer, commander or auditor")
    p.set_defaults(func=lambda a: _run(a, _set_role))
    # `--json` is accepted after the action too (`daraja admin people --json`).
    for action_parser in asub.choices.values():
        _json_flag(action_parser)


def _json_flag(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: `daraja admin --json people` keeps working (a subparser default would reset it).
    p.add_argument(
        "--json", action="store_true", default=argparse.SUPPRESS, help="machine-readable output"
    )


def _run(
    args: argparse.Namespace, action: Callable[[Any, argparse.Namespace], Awaitable[Any]]
) -> int:
    from bot.app import build_services
    from bot.settings import load_settings

    settings = load_settings()

    async def go() -> Any:
        services = build_services(settings)
        try:
            await services.db.upgrade()
            return await action(services, args)
        finally:
            await services.db.dispose()

    result = asyncio.run(go())
    if args.json:
        print(json.dumps(result, ensure_ascii=False, default=str))
    elif isinstance(result, list):
        if not result:
            # stdout stays empty for scripts; the person at the shell learns what to do next.
            print(_EMPTY.get(args.admin_command, "none"), file=sys.stderr)
        for row in result:
            print("  ".join(f"{k}={v}" for k, v in row.items()))
    else:
        for k, v in result.items():
            print(f"{k}: {v}")
    return 0


# What an empty listing means, and the command that fills it.
_EMPTY = {
    "operations": "no operations yet: `daraja admin create-operation NAME`",
    "units": "no units yet: `daraja admin add-unit OPERATION CODE --side PNH|MSS --language LANG`",
    "people": "nobody has joined yet: `daraja admin code person OPERATION --unit UNIT --role ROLE`"
    " issues a code for /join",
    "codes": "no enrollment codes: `daraja admin code chat|person OPERATION --unit UNIT`",
    "chats": "no group is enrolled yet: `daraja admin code chat OPERATION --unit UNIT`, then "
    "/enroll CODE in the group",
}


def os_actor() -> str:
    """The audit actor of a command run from the server's shell: its OS user (`os:alice`).

    The user id is looked up in the password database, not in $USER (which the caller sets)."""
    import pwd

    uid = os.getuid()
    try:
        return f"os:{pwd.getpwuid(uid).pw_name}"
    except KeyError:  # no passwd entry (some containers)
        return f"os:uid{uid}"


def _caller() -> Any:
    from bot.services.enrollment import Caller

    return Caller(user_id=CLI_ADMIN_ID, display_name="cli", is_admin=True, actor=os_actor())


async def _create_operation(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    from bot.errors import UserInputError

    if args.timezone is not None and not args.timezone.strip():
        # `--timezone "$TZ"` with TZ unset: refused, not silently the default zone.
        raise UserInputError(
            "--timezone is empty: give an IANA name such as America/Port-au-Prince or "
            "Africa/Nairobi, or leave it out for DARAJA_TIMEZONE"
        )
    op = await services.enrollment.create_operation(
        _caller(),
        args.name,
        default_language=args.language,
        timezone=services.settings.timezone if args.timezone is None else args.timezone,
        report_interval_min=args.report_interval,
    )
    return {
        "operation": op.name,
        "id": op.id,
        "default_language": op.default_language,
        "timezone": op.timezone,
        "report_interval_min": op.report_interval_min,
    }


async def _operations(services: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from storage.repositories import OperationRepo

    async with services.db.transaction() as s:
        return [
            {
                "operation": op.name,
                "id": op.id,
                "default_language": op.default_language,
                "timezone": op.timezone,
            }
            for op in await OperationRepo(s).all()
        ]


async def _add_unit(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    unit = await services.enrollment.add_unit(
        _caller(),
        args.operation,
        args.code,
        name=args.name or args.code,
        side=args.side,
        language=args.language,
    )
    return {"unit": unit.code, "side": unit.side, "language": unit.language, "name": unit.name}


async def _units(services: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    from bot.errors import NotFound
    from storage.repositories import OperationRepo

    async with services.db.transaction() as s:
        ops = OperationRepo(s)
        op = await ops.by_name(args.operation)
        if op is None:
            raise NotFound(
                f"no operation named {args.operation!r} (see `daraja admin operations`)"
            )
        return [
            {"unit": u.code, "side": u.side, "language": u.language, "name": u.name}
            for u in await ops.units(op)
        ]


async def _code(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    issued = await services.enrollment.issue_code(
        _caller(),
        args.operation,
        kind=args.kind,
        unit=args.unit,
        role=args.role,
        languages=args.languages,
        ttl=timedelta(hours=args.hours),
        is_command=args.command_chat,
    )
    use = "/enroll" if issued.kind == CodeKind.CHAT else "/join"
    return {
        "code": issued.code,
        "kind": issued.kind,
        "operation": issued.operation,
        "unit": issued.unit,
        "role": issued.role,
        "languages": ",".join(issued.languages),
        "expires_at": issued.expires_at.isoformat(timespec="seconds"),
        "use": f"{use} {issued.code}",
    }


def _row(state: Any) -> dict[str, Any]:
    from dataclasses import asdict

    return {
        k: (v.isoformat(timespec="seconds") if hasattr(v, "isoformat") else v)
        for k, v in asdict(state).items()
    }


async def _people(services: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [_row(p) for p in await services.revocation.people(_caller(), args.operation)]


async def _codes(services: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [_row(c) for c in await services.revocation.codes(_caller(), args.operation)]


async def _chats(services: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    return [_row(c) for c in await services.revocation.chats(_caller(), args.operation)]


async def _revoke(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    from bot.errors import UserInputError

    service = services.revocation
    refs: list[str] = args.ref
    wanted = 2 if args.target == "unit" else 1
    if len(refs) != wanted:
        raise UserInputError(
            "usage: revoke person USER_ID | code ID|CODE | chat CHAT_ID | unit OPERATION UNIT"
        )
    if args.target in ("person", "chat") and not refs[0].lstrip("-").isdigit():
        raise UserInputError(f"{args.target} must be named by its Telegram id, not {refs[0]!r}")
    if args.target in ("person", "code", "chat"):
        already = await _already_revoked(service, args.target, refs[0])
        if args.target == "person":
            row = _row(await service.revoke_person(_caller(), int(refs[0])))
        elif args.target == "code":
            row = _row(await service.revoke_code(_caller(), refs[0]))
        else:
            row = _row(await service.revoke_chat(_caller(), int(refs[0])))
        # A second revoke changes nothing and is not audited again; say so rather than
        # print "revoked" as if it had just happened.
        result = {"revoked": args.target, "already": already, **row}
        if already and not args.json:
            since = row.get("revoked_at")
            when = f" at {since}" if since else ""
            result["revoked"] = f"{args.target} (already revoked{when}; nothing changed)"
        if not args.json:
            del result["already"]
        return result
    retired = await service.retire_unit(_caller(), refs[0], refs[1])
    result = {"retired": "unit", **_row(retired)}
    result["chats"] = ",".join(str(c) for c in retired.chats) if not args.json else retired.chats
    if retired.people:
        result["note"] = (
            f"{retired.people} person(s) still name this unit: "
            "`daraja admin revoke person USER_ID` cuts each off"
        )
    return result


async def _already_revoked(service: Any, target: str, ref: str) -> bool:
    """Whether the person, code or chat named is revoked already (listings audit nothing)."""
    caller = _caller()
    if target == "person":
        return any(
            p.user_id == int(ref) and p.state == "revoked" for p in await service.people(caller)
        )
    if target == "chat":
        return any(
            c.chat_id == int(ref) and c.state == "revoked" for c in await service.chats(caller)
        )
    if not ref.isdigit():
        return False  # named by its text: only its digest is stored
    return any(c.id == int(ref) and c.state == "revoked" for c in await service.codes(caller))


async def _reinstate(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    return _row(await services.revocation.reinstate_person(_caller(), args.user_id))


async def _set_role(services: Any, args: argparse.Namespace) -> dict[str, Any]:
    return _row(await services.revocation.set_role(_caller(), args.user_id, args.role))
