"""`daraja models`: install, list, remove, verify, convert and package translation models."""

from __future__ import annotations

import argparse
import functools
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.errors import ConfigError, UserInputError

_PAIR_RE = re.compile(r"^([a-z]{2,3})-([a-z]{2,3})$")


def _friendly(func: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn expected failures into one line on stderr and exit status 1 (no traceback)."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from translation.errors import TranslationError

        try:
            return func(args)
        except TranslationError as exc:
            print(f"daraja: {exc}", file=sys.stderr)
            return 1
        except BrokenPipeError:
            raise  # the reader of stdout went away: the entry point stays quiet
        except OSError as exc:
            print(f"daraja: {exc.strerror or exc} ({exc.filename or 'models'})", file=sys.stderr)
            return 1

    return wrapper


def register(sub: Any) -> None:
    """Add `daraja models` and its subcommands."""
    parser: argparse.ArgumentParser = sub.add_parser(
        "models", help="install, list, remove and convert translation models"
    )
    msub = parser.add_subparsers(dest="models_command", required=True, metavar="ACTION")

    ls = msub.add_parser("list", help="installed packages: pairs, sizes, source")
    ls.add_argument("--json", action="store_true", help="one JSON document on stdout")
    ls.add_argument("--verify", action="store_true", help="also check every checksum")
    ls.set_defaults(func=_friendly(_list))

    inst = msub.add_parser(
        "install",
        help="install from a file, a URL, or the Argos index (FROM-TO, e.g. en-fr)",
    )
    inst.add_argument("what", metavar="PATH|URL|FROM-TO")
    inst.add_argument("--replace", action="store_true", help="replace an installed package")
    inst.add_argument("--index-url", help="Argos package index (index.json) to use")
    inst.add_argument(
        "--eval",
        type=Path,
        metavar="SET.tsv",
        help="measure the new package on this reference set first (see `daraja eval`)",
    )
    inst.add_argument(
        "--min-chrf",
        type=float,
        metavar="N",
        help="with --eval: refuse the package if any of its pairs scores below chrF N",
    )
    inst.add_argument(
        "--calibrate",
        type=Path,
        metavar="SET.tsv",
        help="calibrate the package's quality thresholds on this reference set (default: the "
        "package's own reference.tsv, if it ships one)",
    )
    inst.add_argument(
        "--voice",
        action="store_true",
        help="a Whisper model (CTranslate2 directory or archive) for voice notes",
    )
    inst.add_argument("--name", help="voice model name (default: its directory's name)")
    inst.add_argument(
        "--languages", help="voice model languages, e.g. en (default: all four if multilingual)"
    )
    inst.set_defaults(func=_friendly(_install))

    cal = msub.add_parser(
        "calibrate",
        help="measure quality-estimation thresholds per pair on a reference set",
        description="Translate a reference set (TSV, one column per language) with the "
        "installed models and store, per pair, the confidence and back-translation "
        "similarity that good translations from these models reach (calibration.json in "
        "the models directory). Uncalibrated models are judged by stricter defaults.",
    )
    cal.add_argument("set", type=Path, metavar="SET.tsv")
    cal.add_argument("--pairs", metavar="FROM-TO,...", help="only these pairs")
    cal.set_defaults(func=_friendly(_calibrate))

    rm = msub.add_parser("remove", help="remove an installed package")
    rm.add_argument("package_id", metavar="PACKAGE")
    rm.set_defaults(func=_friendly(_remove))

    ver = msub.add_parser("verify", help="check installed packages against their checksums")
    ver.add_argument("package_id", nargs="?", metavar="PACKAGE")
    ver.set_defaults(func=_friendly(_verify))

    conv = msub.add_parser(
        "convert-opus-mt", help="convert an OPUS-MT (Marian) zip into an .argosmodel"
    )
    conv.add_argument("archive", type=Path, metavar="ZIP")
    conv.add_argument("--from", dest="from_code", required=True, metavar="LANG")
    conv.add_argument("--to", dest="to_code", required=True, metavar="LANG")
    conv.add_argument("--out", type=Path, help="output file (default: opus-mt-FROM_TO.argosmodel)")
    conv.add_argument(
        "--quantization", default="int8", help="CTranslate2 weight type (default int8)"
    )
    conv.add_argument("--install", action="store_true", help="install the result as well")
    conv.set_defaults(func=_friendly(_convert_opus_mt))

    pkg = msub.add_parser(
        "package",
        help="package a converted CTranslate2 model (e.g. NLLB-200) as an .argosmodel",
    )
    pkg.add_argument("model_dir", type=Path, metavar="CT2_DIR")
    pkg.add_argument("--sp-model", type=Path, required=True, help="SentencePiece model file")
    pkg.add_argument("--out", type=Path, required=True, help="output .argosmodel file")
    pkg.add_argument("--name", required=True, help="package name (directory once installed)")
    group = pkg.add_mutually_exclusive_group(required=True)
    group.add_argument(
        "--languages",
        help="multilingual: LANG=TOKEN,... (e.g. ht=hat_Latn,sw=swh_Latn,en=eng_Latn)",
    )
    group.add_argument("--pair", help="single direction FROM-TO, e.g. ht-en")
    pkg.set_defaults(func=_friendly(_package))

    cat = msub.add_parser("catalog", help="where to get offline models for every pair")
    cat.add_argument("--json", action="store_true", help="one JSON document on stdout")
    cat.set_defaults(func=_friendly(_catalog))


def _progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _store(index_url: str | None = None) -> Any:
    from bot.settings import load_settings
    from translation.store import DEFAULT_INDEX_URL, ModelStore

    settings = load_settings()
    return ModelStore(
        settings.models_dir, index_url=index_url or DEFAULT_INDEX_URL, progress=_progress
    )


def _writable_models_dir(root: Path) -> None:
    """Create the models directory before anything is fetched or unpacked, or say why it
    cannot be (a bare "No such file or directory (/proc/x)" did not name the setting)."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"cannot create the models directory {root} ({exc.strerror or exc}): set "
            "DARAJA_MODELS_DIR to a directory this user can write"
        ) from None


def _as_dict(pkg: Any) -> dict[str, Any]:
    return {
        "package_id": pkg.package_id,
        "pairs": [f"{s}-{t}" for s, t in pkg.pairs],
        "multilingual": pkg.multilingual,
        "version": pkg.version,
        "size_bytes": pkg.size_bytes,
        "source": pkg.source,
        "sha256": pkg.sha256,
        "archive_sha256": pkg.archive_sha256,
        "path": str(pkg.path),
        "name": pkg.name,
    }


def _list(args: argparse.Namespace) -> int:
    from translation.calibration import CalibrationBook
    from translation.errors import ModelIntegrityError
    from translation.store import human_size

    store = _store()
    listing = store.scan()
    calibrated = CalibrationBook(store.root).calibrated_models()
    rows = []
    failed = 0
    for pkg in listing.packages:
        row = _as_dict(pkg)
        row["calibrated_pairs"] = sorted(calibrated.get(pkg.package_id, []))
        if args.verify:
            failed += _verify_row(row, functools.partial(store.verify, pkg), ModelIntegrityError)
        rows.append(row)
    voice, voice_failed = _voice_rows(verify=args.verify)
    failed += voice_failed
    if args.json:
        doc = {
            "models_dir": str(store.root),
            "packages": rows,
            "problems": listing.problems,
            "overlaps": [
                {
                    "pair": f"{o.source}-{o.target}",
                    "used": o.winner,
                    "not_used": list(o.others),
                    "why": o.reason,
                }
                for o in _overlaps(listing.packages)
            ],
            "voice_models_dir": str(_voice_store().root),
            "voice_models": voice,
        }
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 1 if failed else 0
    _print_voice(voice, verify=args.verify)
    if not rows and not listing.problems:
        print(f"no models installed in {store.root}")
        print("see `daraja models catalog` for where to get them")
        return 1 if failed else 0
    print(f"models in {store.root}:")
    for row in rows:
        state = ""
        if args.verify:
            state = "  ok" if row["verified"] else "  CHANGED SINCE INSTALL"
        kind = "multilingual " if row["multilingual"] else ""
        pairs = ", ".join(p.replace("-", "→") for p in row["pairs"])
        cal = (
            f"calibrated ({', '.join(row['calibrated_pairs'])})"
            if row["calibrated_pairs"]
            else "uncalibrated: judged by strict defaults (`daraja models calibrate`)"
        )
        print(
            f"  {row['package_id']:<28} {kind}{pairs}"
            f"  {human_size(row['size_bytes'])}  from {row['source']}{state}  {cal}"
        )
    for name, problem in listing.problems.items():
        print(f"  {name:<28} UNUSABLE: {problem}")
    found = _overlaps(listing.packages)
    if found:
        print("pairs served by more than one package:")
        for o in found:
            print(
                f"  {o.source}→{o.target}: uses {o.winner} ({o.reason}); "
                f"not used: {', '.join(o.others)}"
            )
    return 1 if failed else 0


def _overlaps(packages: Any) -> Any:
    from translation.routing import overlaps

    return overlaps(packages)


def _warn_overlaps(store: Any, pkg: Any) -> None:
    """Tell the operator when the new package shares a pair with another, and which wins."""
    for o in _overlaps(store.list()):
        if pkg.package_id == o.winner or pkg.package_id in o.others:
            print(
                f"daraja: warning: {o.source}→{o.target} is served by "
                f"{', '.join((o.winner, *o.others))}; {o.winner} is used ({o.reason})",
                file=sys.stderr,
            )


def _voice_store() -> Any:
    from bot.settings import load_settings
    from translation.voice_store import VoiceStore

    return VoiceStore(load_settings().voice_models_dir)


def _install_voice(args: argparse.Namespace) -> int:
    from translation.voice_store import VoiceModelError

    languages = [x for x in (args.languages or "").replace("+", ",").split(",") if x]
    try:
        model = _voice_store().install(Path(args.what), name=args.name, languages=languages)
    except VoiceModelError as exc:
        print(f"daraja: {exc}", file=sys.stderr)
        return 1
    kind = "multilingual" if model.multilingual else "English-only"
    print(f"installed voice model {model.name}: {kind}, {', '.join(model.languages)}")
    _audit(
        "models.voice_installed",
        None,
        name=model.name,
        languages=list(model.languages),
        sha256=model.files,
        source=Path(args.what).name,
    )
    return 0


def _verify_row(row: dict[str, Any], verify: Callable[[], object], error: type[Exception]) -> int:
    """Run a model's checksum check and note the outcome on its row; 1 if it failed."""
    try:
        verify()
    except error as exc:
        row["verified"] = False
        row["problem"] = str(exc)
        return 1
    row["verified"] = True
    return 0


def _voice_rows(*, verify: bool) -> tuple[list[dict[str, Any]], int]:
    """Installed Whisper models as rows (checksums checked with `verify`)."""
    from translation.voice_store import VoiceModelError

    store = _voice_store()
    rows: list[dict[str, Any]] = []
    failed = 0
    for model in store.models():
        row: dict[str, Any] = {
            "name": model.name,
            "languages": list(model.languages),
            "multilingual": model.multilingual,
            "size_bytes": model.size,
        }
        if verify:
            failed += _verify_row(row, functools.partial(store.verify, model), VoiceModelError)
        rows.append(row)
    return rows, failed


def _print_voice(rows: list[dict[str, Any]], *, verify: bool) -> None:
    from translation.store import human_size

    if not rows:
        return
    print(f"voice models in {_voice_store().root}:")
    for row in rows:
        state = ""
        if verify:
            state = "  ok" if row["verified"] else "  CHANGED SINCE INSTALL"
        kind = "multilingual" if row["multilingual"] else "English-only"
        langs = ", ".join(row["languages"])
        print(f"  {row['name']:<28} {kind} ({langs})  {human_size(row['size_bytes'])}{state}")


def _install(args: argparse.Namespace) -> int:
    if args.voice:
        return _install_voice(args)
    what: str = args.what
    store = _store(args.index_url)
    _writable_models_dir(store.root)
    path = Path(what)
    if path.exists():
        pkg = store.install_file(path, replace=args.replace)
    elif re.match(r"^(https?|file)://", what):
        pkg = store.install_url(what, replace=args.replace)
    elif match := _PAIR_RE.match(what):
        pkg = store.install_from_index(match.group(1), match.group(2), replace=args.replace)
    else:
        raise UserInputError(
            f"{what!r} is neither an existing file, an http(s)/file URL, nor a pair like "
            "en-fr; see `daraja models catalog`"
        )
    if args.eval is not None:
        refused = _eval_installed(store, pkg, args.eval, args.min_chrf)
        if refused:
            store.remove(pkg.package_id)
            print(f"daraja: refused {pkg.package_id}: {refused}; it was not kept", file=sys.stderr)
            return 1
    print(f"installed {pkg.package_id}: {pkg.label()}")
    _warn_overlaps(store, pkg)
    _audit("models.installed", pkg)
    # The operator's reference set, else one the package ships (reference.tsv beside its
    # model): a package that brings its own calibration is not judged by the strict defaults.
    shipped = Path(pkg.path) / "reference.tsv"
    reference = args.calibrate or (shipped if shipped.is_file() else None)
    if reference is not None:
        _run_calibration(reference, list(pkg.pairs), only=pkg.package_id)
    return 0


def _eval_installed(store: Any, pkg: Any, path: Path, min_chrf: float | None) -> str | None:
    """Measure a just-installed package's pairs on a reference set; why to refuse it, or
    None."""
    import asyncio

    from bot.cli.evaluate import load_set
    from bot.engines.factory import build_engine
    from bot.settings import load_settings
    from translation.evaluate import evaluate

    engine = build_engine(load_settings())
    refset = load_set(engine, path)

    async def go() -> Any:
        try:
            router = await engine.router()
            pairs = [
                (a, b)
                for a, b in refset.pairs()
                if any(h.model == pkg.package_id for h in _hops(router, a, b))
            ]
            return await evaluate(engine, refset, pairs), pairs
        finally:
            await engine.close()

    (reports, _runs), pairs = asyncio.run(go())
    if not pairs:
        return f"{path} has no column pair that {pkg.package_id} serves ({pkg.label()})"
    worst = None
    for report in reports:
        print(
            f"eval {report.source}→{report.target}: chrF {report.chrf}, BLEU {report.bleu}, "
            f"flagged {report.rate(*_flagged()):.0%}"
        )
        if report.chrf is not None and (worst is None or report.chrf < worst.chrf):
            worst = report
    if min_chrf is not None and worst is not None and (worst.chrf or 0.0) < min_chrf:
        return (
            f"chrF {worst.chrf} on {worst.source}→{worst.target} is below --min-chrf {min_chrf:g}"
        )
    return None


def _flagged() -> tuple[Any, ...]:
    from translation.types import Verdict

    return (Verdict.DOUBTFUL, Verdict.UNUSABLE)


def _hops(router: Any, source: str, target: str) -> tuple[Any, ...]:
    from translation.errors import TranslationError

    try:
        return tuple(router.plan(source, target).hops)
    except TranslationError:
        return ()


def _calibrate(args: argparse.Namespace) -> int:
    from bot.cli.evaluate import parse_pairs

    _run_calibration(args.set, parse_pairs(args.pairs))
    return 0


def _run_calibration(
    path: Path, pairs: list[tuple[str, str]] | None, *, only: str | None = None
) -> None:
    """Translate the set, derive every pair's thresholds and store them beside the models."""
    import asyncio

    from bot.cli.evaluate import load_set
    from bot.engines.factory import build_engine
    from bot.settings import load_settings
    from translation.calibration import CalibrationError
    from translation.evaluate import calibration_entries, evaluate

    engine = build_engine(load_settings())
    refset = load_set(engine, path)

    async def go() -> Any:
        try:
            router = await engine.router()
            chosen = [
                (a, b)
                for a, b in (pairs or refset.pairs())
                if a in refset.languages
                and b in refset.languages
                and _hops(router, a, b)
                and (only is None or any(h.model == only for h in _hops(router, a, b)))
            ]
            _reports, runs = await evaluate(engine, refset, chosen, _progress)
            return runs
        finally:
            await engine.close()

    runs = asyncio.run(go())
    if not runs:
        raise UserInputError(f"{path}: no pair of its columns is served by the installed models")
    stored = []
    for run in runs:
        try:
            (entry,) = calibration_entries(engine, [run], str(path))
        except CalibrationError as exc:
            print(f"{run.source}→{run.target}: not calibrated: {exc}", file=sys.stderr)
            continue
        stored.append(entry)
        t = entry.thresholds
        print(
            f"{entry.pair} ({' → '.join(entry.models)}): ok above confidence {t.ok_score:.2f} "
            f"and back-translation chrF {t.ok_round_trip:.0f}; unusable below "
            f"{t.unusable_score:.2f} / {t.unusable_round_trip:.0f} "
            f"({entry.good_samples} good translations)"
        )
    engine.calibration.store(stored)
    print(f"stored {len(stored)} of {len(runs)} pairs in {engine.calibration.path}")


def _remove(args: argparse.Namespace) -> int:
    from translation.calibration import CalibrationBook

    store = _store()
    store.remove(args.package_id)
    CalibrationBook(store.root).forget(args.package_id)
    print(f"removed {args.package_id}")
    _audit("models.removed", None, package_id=args.package_id)
    return 0


def _audit(event_type: str, pkg: Any, **extra: Any) -> None:
    """Record a model change in the audit log (the deployment's database, migrated if new).

    The install itself has happened either way; if the database cannot be reached the operator
    is told, since auditors expect every model change in the log."""
    import asyncio

    from bot.settings import load_settings
    from storage.audit import AuditChain
    from storage.db import Database

    settings = load_settings()
    payload: dict[str, Any] = dict(extra)
    if pkg is not None:
        payload.update(
            package_id=pkg.package_id,
            sha256=pkg.sha256,
            source=pkg.source,
            pairs=sorted(f"{a}-{b}" for a, b in pkg.pairs),
        )
    key = settings.audit_hmac_key.get_secret_value().encode() if settings.audit_hmac_key else None

    from bot.cli.admin import os_actor

    async def go() -> None:
        db = Database(settings.database_url)
        try:
            await db.upgrade()
            async with db.transaction() as s:
                await AuditChain(key=key).append(
                    s, component="models", event_type=event_type, actor=os_actor(), payload=payload
                )
        finally:
            await db.dispose()

    try:
        asyncio.run(go())
    except Exception as exc:  # noqa: BLE001 - the model change stands; say the log missed it
        print(
            f"daraja: warning: the audit log could not record this change "
            f"({type(exc).__name__}); check DARAJA_DATABASE_URL",
            file=sys.stderr,
        )


def _verify(args: argparse.Namespace) -> int:
    from translation.errors import ModelIntegrityError

    store = _store()
    packages = [store.get(args.package_id)] if args.package_id else store.list()
    if not packages:
        print(f"no models installed in {store.root}")
        return 0
    failed = 0
    for pkg in packages:
        try:
            store.verify(pkg)
            print(f"ok       {pkg.package_id}")
        except ModelIntegrityError as exc:
            failed += 1
            print(f"CHANGED  {pkg.package_id}: {exc}")
    return 1 if failed else 0


def _convert_opus_mt(args: argparse.Namespace) -> int:
    from translation.convert import convert_opus_mt

    for code in (args.from_code, args.to_code):
        _check_language(code)
    out = args.out or Path(f"opus-mt-{args.from_code}_{args.to_code}.argosmodel")
    convert_opus_mt(
        args.archive,
        args.from_code,
        args.to_code,
        out,
        quantization=args.quantization,
        progress=_progress,
    )
    print(f"wrote {out}")
    if args.install:
        store = _store()
        pkg = store.install_file(out, source="converted:opus-mt")
        print(f"installed {pkg.package_id}: {pkg.label()}")
        _warn_overlaps(store, pkg)
        _audit("models.installed", pkg)
    return 0


def _check_language(code: str) -> None:
    """Daraja's languages, or another real ISO 639 code (what a converted model may serve)."""
    from babel import Locale

    from translation.types import LANGUAGES

    if code in LANGUAGES:
        return
    if not re.match(r"^[a-z]{2,3}$", code) or code not in Locale("en").languages:
        raise UserInputError(
            f"{code!r} is not a known language code; Daraja's languages are "
            f"{', '.join(LANGUAGES)} (another language needs its ISO 639 code, e.g. es)"
        )


def _package(args: argparse.Namespace) -> int:
    from translation.convert import LANGUAGE_NAMES, SOURCE_EOS, nllb_metadata, package_ct2

    if args.languages:
        prefixes: dict[str, str] = {}
        for item in args.languages.split(","):
            code, sep, token = item.strip().partition("=")
            if not sep or not code or not token:
                raise UserInputError(f"--languages: {item!r} is not LANG=TOKEN")
            prefixes[code] = token
        metadata = nllb_metadata(list(prefixes), prefixes, name=args.name)
        overrides: dict[str, Any] | None = SOURCE_EOS
    else:
        match = _PAIR_RE.match(args.pair)
        if not match:
            raise UserInputError(f"--pair: {args.pair!r} is not FROM-TO like ht-en")
        src, tgt = match.groups()
        metadata = {
            "package_version": "1.0",
            "argos_version": "1.9",
            "type": "translate",
            "from_code": src,
            "from_name": LANGUAGE_NAMES.get(src, src),
            "to_code": tgt,
            "to_name": LANGUAGE_NAMES.get(tgt, tgt),
            "name": args.name,
        }
        overrides = None
    package_ct2(
        args.model_dir,
        args.sp_model,
        args.out,
        metadata,
        package_name=args.name,
        config_overrides=overrides,
    )
    print(f"wrote {args.out}")
    return 0


def _catalog(args: argparse.Namespace) -> int:
    from translation.catalog import catalog
    from translation.voice_store import CATALOG, conversion_steps

    doc = catalog()
    doc["voice"] = [
        {
            "name": name,
            "languages": langs.split(),
            "source": source,
            "steps": conversion_steps(name, source) if "/" in source else [],
        }
        for name, langs, source in CATALOG
    ]
    if args.json:
        print(json.dumps(doc, indent=2, ensure_ascii=False))
        return 0
    print("Offline models for Daraja's languages (ht, fr, en, sw)")
    print(f"Routing: {doc['routing']}.\n")
    print("Pair     direct sources")
    for pair, keys in doc["pairs"].items():
        shown = ", ".join(keys) if keys else "(none: multilingual or pivot through en)"
        print(f"  {pair:<7} {shown}")
    print()
    for source in doc["sources"]:
        torch_note = (
            " [needs PyTorch on the converting machine]" if source["needs_pytorch"] else ""
        )
        print(f"{source['key']}: {source['title']}{torch_note}")
        for i, step in enumerate(source["steps"], start=1):
            print(f"  {i}. {step}")
        if source["notes"]:
            print(f"  note: {source['notes']}")
        print()
    print("Voice notes (daraja[voice]): Whisper models in CTranslate2 format")
    for entry in doc["voice"]:
        print(f"whisper {entry['name']} ({' '.join(entry['languages'])}): {entry['source']}")
        for step in entry["steps"]:
            print(f"  {step}")
    print()
    return 0
