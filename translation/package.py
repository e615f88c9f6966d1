"""The `.argosmodel` package format as Daraja reads it: metadata, archive checks, digests.

Kept apart from the store (`translation/store.py`, which documents the layout and the
multilingual metadata convention) so converters can validate what they write with the same rules.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from translation.errors import PackageError

RECORD_NAME = ".daraja-install.json"
MAX_UNPACKED_BYTES = 8 * 1024**3  # NLLB-200 3.3B in float16 is ~6.7 GB
MAX_MEMBERS = 10_000
# Model weights barely compress (int8/float16 tensors: about 1.1-2x; vocabularies and
# SentencePiece models 2-4x): an archive or a large entry claiming far more is a zip bomb.
MAX_RATIO = 50
RATIO_FREE_BYTES = 1 << 20  # entries this small may compress as they like (JSON, configs)
ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")
_CODE_RE = re.compile(r"^[A-Za-z]{2,3}([_-][A-Za-z0-9]{2,8})?$")
_CHUNK = 1 << 20


# ---------------------------------------------------------------- metadata


def _codes(value: Any, what: str) -> tuple[str, ...]:
    """Language codes from a list of strings or of {"code": ...} objects."""
    if not isinstance(value, list):
        raise PackageError(f"metadata.json: {what} must be a list of language codes")
    out: list[str] = []
    for item in value:
        code = item.get("code") if isinstance(item, dict) else item
        if not isinstance(code, str) or not _CODE_RE.match(code):
            raise PackageError(f"metadata.json: {what} holds an invalid language code {code!r}")
        if code not in out:
            out.append(code)
    return tuple(out)


def _str_map(value: Any, what: str) -> dict[str, str]:
    """A {language: token} mapping from metadata."""
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in value.items()
    ):
        raise PackageError(f"metadata.json: {what} must map language codes to tokens")
    return dict(value)


@dataclass(frozen=True)
class PackageInfo:
    """What a package's metadata.json declares, validated."""

    from_codes: tuple[str, ...]
    to_codes: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    multilingual: bool
    target_prefixes: dict[str, str]
    source_prefixes: dict[str, str]
    version: str
    name: str


def parse_metadata(meta: Any) -> PackageInfo:
    """Validate a metadata.json object (Argos keys plus Daraja's multilingual keys)."""
    if not isinstance(meta, dict):
        raise PackageError("metadata.json must hold a JSON object")
    kind = meta.get("type", "translate")
    if kind != "translate":
        raise PackageError(f"metadata.json: type {kind!r} is not a translation package")
    from_code, to_code = meta.get("from_code"), meta.get("to_code")
    from_codes = _codes(meta["from_codes"], "from_codes") if meta.get("from_codes") else ()
    to_codes = _codes(meta["to_codes"], "to_codes") if meta.get("to_codes") else ()
    if not from_codes:
        from_codes = _codes([from_code], "from_code") if from_code is not None else ()
    if not to_codes:
        to_codes = _codes([to_code], "to_code") if to_code is not None else ()
    if not from_codes or not to_codes:
        raise PackageError("metadata.json: from_code and to_code (or from_codes/to_codes) needed")
    multilingual = bool(meta.get("multilingual")) or len(from_codes) > 1 or len(to_codes) > 1
    target_prefixes = _str_map(meta.get("target_prefixes"), "target_prefixes")
    source_prefixes = _str_map(meta.get("source_prefixes"), "source_prefixes")
    argos_prefix = meta.get("target_prefix")
    if isinstance(argos_prefix, str) and argos_prefix and not target_prefixes:
        target_prefixes = dict.fromkeys(to_codes, argos_prefix)
    if len(to_codes) > 1:
        missing = [code for code in to_codes if code not in target_prefixes]
        if missing:
            raise PackageError(
                "metadata.json: a multilingual package needs target_prefixes for "
                + ", ".join(missing)
            )
    raw_pairs = meta.get("pairs")
    if raw_pairs is None:
        pairs = tuple((s, t) for s in from_codes for t in to_codes if s != t)
    else:
        if not isinstance(raw_pairs, list):
            raise PackageError("metadata.json: pairs must be a list of [from, to]")
        collected: list[tuple[str, str]] = []
        for item in raw_pairs:
            if (
                not isinstance(item, list)
                or len(item) != 2
                or item[0] not in from_codes
                or item[1] not in to_codes
            ):
                raise PackageError(f"metadata.json: pair {item!r} is not within from/to codes")
            collected.append((item[0], item[1]))
        pairs = tuple(collected)
    if not pairs:
        raise PackageError("metadata.json: the package serves no language pair")
    version = meta.get("package_version", "")
    name = meta.get("name", "")
    return PackageInfo(
        from_codes=from_codes,
        to_codes=to_codes,
        pairs=pairs,
        multilingual=multilingual,
        target_prefixes=target_prefixes,
        source_prefixes=source_prefixes,
        version=str(version),
        name=str(name) if isinstance(name, str) else "",
    )


# ---------------------------------------------------------------- digests


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of one file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def package_files(root: Path) -> list[Path]:
    """Regular files of a package tree (sorted), without Daraja's own record."""
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.parent == root and name == RECORD_NAME:
                continue
            files.append(path)
    return files


def tree_digest(root: Path) -> tuple[str, int]:
    """SHA-256 over (relative path, file SHA-256) of every file; also the total size."""
    digest = hashlib.sha256()
    total = 0
    for path in package_files(root):
        rel = path.relative_to(root).as_posix()
        digest.update(rel.encode("utf-8") + b"\0" + sha256_file(path).encode() + b"\n")
        total += path.stat().st_size
    return digest.hexdigest(), total


# ---------------------------------------------------------------- archive checks


def declared_size(zf: zipfile.ZipFile) -> int:
    """What the archive says it unpacks to (the sum of its entries' sizes)."""
    return sum(info.file_size for info in zf.infolist())


def _check_ratio(name: str, unpacked: int, packed: int) -> None:
    """Refuse an entry (or archive) that claims to inflate far beyond what models do."""
    if unpacked <= RATIO_FREE_BYTES:
        return
    if unpacked > max(packed, 1) * MAX_RATIO:
        raise PackageError(
            f"{name} would unpack {packed:,} bytes into {unpacked:,} "
            f"(more than {MAX_RATIO}x: model files do not compress like that); "
            "refusing it as a possible zip bomb"
        )


def check_archive(zf: zipfile.ZipFile) -> str:
    """Refuse unsafe or malformed archives; return the package's top-level directory."""
    infos = zf.infolist()
    if not infos:
        raise PackageError("the archive is empty")
    if len(infos) > MAX_MEMBERS:
        raise PackageError(f"the archive has {len(infos)} entries (limit {MAX_MEMBERS})")
    total = 0
    packed = 0
    tops: set[str] = set()
    names: set[str] = set()
    seen: set[str] = set()
    for info in infos:
        name = info.filename
        pure = PurePosixPath(name)
        if (
            "\\" in name
            or "\0" in name
            or name.startswith("/")
            or pure.is_absolute()
            or ".." in pure.parts
            or re.match(r"^[A-Za-z]:", name)
        ):
            raise PackageError(f"the archive holds an unsafe path {name!r}; refusing it")
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise PackageError(f"the archive holds a symbolic link {name!r}; refusing it")
        if info.flag_bits & 0x1:
            raise PackageError("the archive is encrypted")
        if info.is_dir() and info.file_size:
            raise PackageError(f"the archive's directory entry {name!r} has contents")
        _check_ratio(f"the archive entry {name!r}", info.file_size, info.compress_size)
        total += info.file_size
        packed += info.compress_size
        if total > MAX_UNPACKED_BYTES:
            raise PackageError(
                f"the archive unpacks to more than {MAX_UNPACKED_BYTES:,} bytes; refusing it"
            )
        parts = [p for p in pure.parts if p not in ("", ".")]
        if not parts:
            continue
        tops.add(parts[0])
        if not info.is_dir():
            full = "/".join(parts)
            if full in seen:
                raise PackageError(f"the archive holds {name!r} twice; refusing it")
            seen.add(full)
            names.add("/".join(parts[1:]))
            if len(parts) == 1:
                raise PackageError(
                    "the archive must hold one package directory (files found at its top level)"
                )
    _check_ratio("the archive", total, packed)
    if len(tops) != 1:
        raise PackageError(
            f"the archive must hold exactly one package directory (found {len(tops)})"
        )
    top = next(iter(tops))
    if not ID_RE.match(top):
        raise PackageError(f"package directory name {top!r} is not acceptable")
    if "metadata.json" not in names:
        raise PackageError("the archive has no metadata.json; it is not an Argos package")
    if "model/model.bin" not in names:
        raise PackageError("the archive has no CTranslate2 model (model/model.bin)")
    if "sentencepiece.model" not in names:
        if "bpe.model" in names:
            raise PackageError("BPE packages are not supported (sentencepiece.model needed)")
        raise PackageError("the archive has no sentencepiece.model")
    return top


def extract_archive(zf: zipfile.ZipFile, destination: Path) -> int:
    """Unpack a checked archive (`check_archive`) into `destination`, entry by entry, never
    writing more than each entry declares; returns the bytes written.

    zipfile stops at the declared size and checks each entry's CRC as it is read; counting
    here as well means a lying size can never fill the disk, whatever the zip library does.
    """
    written = 0
    limit = declared_size(zf)
    for info in zf.infolist():
        parts = [p for p in PurePosixPath(info.filename).parts if p not in ("", ".")]
        if not parts:
            continue
        target = destination.joinpath(*parts)
        if info.is_dir():
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        entry = 0
        with zf.open(info) as source, target.open("xb") as sink:
            while chunk := source.read(_CHUNK):
                entry += len(chunk)
                written += len(chunk)
                if entry > info.file_size or written > limit:
                    raise PackageError(
                        f"the archive entry {info.filename!r} unpacks to more than it declares "
                        f"({info.file_size:,} bytes); refusing it"
                    )
                sink.write(chunk)
        if entry != info.file_size:
            raise PackageError(
                f"the archive entry {info.filename!r} unpacks to {entry:,} bytes, not the "
                f"{info.file_size:,} it declares; refusing it"
            )
    return written
