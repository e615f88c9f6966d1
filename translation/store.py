"""The model store: a directory of installed Argos Translate packages (`.argosmodel`).

Layout of the models directory (`DARAJA_MODELS_DIR`)::

    <root>/<package_id>/metadata.json        Argos metadata (read with argostranslate's Package)
    <root>/<package_id>/model/               CTranslate2 model (model.bin, config.json, vocab)
    <root>/<package_id>/sentencepiece.model  SentencePiece model (source side; decoding of
                                             output pieces only joins them)
    <root>/<package_id>/.daraja-install.json what Daraja recorded at install (see Trust)
    <root>/.staging-*  .trash-*              in-flight installs/removals, never listed
    <root>/.argos/                           argostranslate's own settings dirs (so importing it
                                             never writes into $HOME)

Installs are atomic: the archive is checked (a zip, no absolute paths or `..`, no links, no
duplicate entries, one top-level directory, size limits, no entry or archive inflating more
than `translation.package.MAX_RATIO` times, room on the disk, `metadata.json` valid,
`model/model.bin` and `sentencepiece.model` present), extracted entry by entry (never more
bytes than each declares) into a `.staging-*` directory inside the models directory, loaded
with CTranslate2 and SentencePiece and made to translate a few words in every direction it
serves (`check_package_loads`), and renamed into place in one step. A bad archive never leaves
a visible package.
`argostranslate.package.install_from_path`/`uninstall` are deliberately not used: they import
`argostranslate.translate`, which pulls in stanza/PyTorch.

Trust: at install Daraja records the archive's SHA-256 and a digest of the installed tree
(SHA-256 over each file's relative path and SHA-256, `.daraja-install.json` excluded).
`InstalledPackage.sha256` is that tree digest; `verify()` recomputes it and raises
`ModelIntegrityError` when anything changed. Packages copied in by hand have no record and fail
verification until reinstalled with `daraja models install`.

Multilingual packages (Daraja's metadata convention, extra keys in metadata.json that
argostranslate ignores)::

    "multilingual": true,
    "from_codes": ["fr", "ht", "sw"],            # languages accepted as source
    "to_codes": ["fr", "ht", "sw"],              # languages produced
    "pairs": [["ht", "sw"], ["sw", "ht"], ...],   # optional: the directions actually served
                                                  # (default: every from x to, src != tgt)
    "target_prefixes": {"ht": "hat_Latn", ...},   # token forced first in the output
    "source_prefixes": {"ht": "hat_Latn", ...}    # token prepended to the source (NLLB style)

`from_code`/`to_code` stay set (to one served pair) so argostranslate still reads the package.
A direct package may carry Argos' own `"target_prefix": "<tok>"`; it becomes
`target_prefixes = {to_code: "<tok>"}`. `"target_sentencepiece": "<file>"` names a second
SentencePiece model for the output side (OPUS-MT's target.spm), exposed as `target_sp_model`.

Token contract for the engine: source tokens are `[source_prefixes[src]]` (if any) followed by
the SentencePiece pieces; CTranslate2 appends `</s>` itself when the model's config asks for it
(`add_source_eos`, as OPUS-MT conversions and Daraja's fixtures do). With a target prefix, pass
`target_prefix=[[target_prefixes[tgt]]]` and drop that first token from the output; then join
the pieces with `SentencePieceProcessor.decode_pieces` of `target_sp_model or sp_model`: it
turns `▁` into spaces and leaves `_` alone (argostranslate's tokenizer also replaces `_`, which
would break callsigns such as `Alpha_2`); pieces unknown to that model come out raw, `▁`
included, hence the separate target model for OPUS-MT packages.
"""

from __future__ import annotations

import builtins
import importlib
import json
import logging
import os
import re
import shutil
import sys
import tempfile
import threading
import time
import urllib.parse
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from translation.errors import MissingModel, ModelIntegrityError, PackageError
from translation.package import (
    ID_RE,
    RECORD_NAME,
    check_archive,
    declared_size,
    extract_archive,
    package_files,
    parse_metadata,
    sha256_file,
    tree_digest,
)

log = logging.getLogger(__name__)

DEFAULT_INDEX_URL = "https://raw.githubusercontent.com/argosopentech/argospm-index/main/index.json"
_STALE_SECONDS = 3600
_CHUNK = 1 << 20

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink: say nothing."""


@dataclass(frozen=True)
class InstalledPackage:
    """One installed package and what it serves."""

    package_id: str  # directory name under the models dir
    path: Path  # package directory
    from_codes: tuple[str, ...]
    to_codes: tuple[str, ...]
    multilingual: bool
    # dicts are left out of the hash so packages can be set members / dict keys
    target_prefixes: dict[str, str] = field(hash=False)  # lang -> target-prefix token
    source_prefixes: dict[str, str] = field(hash=False)  # lang -> source token (NLLB style)
    model_dir: Path  # CTranslate2 model directory
    sp_model: Path  # SentencePiece model file
    version: str
    sha256: str  # digest of the installed tree, recorded at install ("" if never recorded)
    source: str  # file path / URL / "argos-index" / "converted:opus-mt"
    size_bytes: int
    pairs: tuple[tuple[str, str], ...] = ()  # directions served (multilingual "pairs")
    archive_sha256: str = ""  # SHA-256 of the .argosmodel file it was installed from
    name: str = ""  # human-readable name from metadata
    # SentencePiece model holding the target pieces when it differs from `sp_model`
    # (OPUS-MT ships source.spm and target.spm): decode output with this one if set.
    target_sp_model: Path | None = None

    def serves(self, src: str, tgt: str) -> bool:
        """Whether this package translates `src` into `tgt`."""
        return (src, tgt) in self.pairs

    def label(self) -> str:
        """Short description of the pairs, e.g. `ht→en` or `ht→sw, sw→ht`."""
        return ", ".join(f"{s}→{t}" for s, t in self.pairs)


@dataclass
class _Listing:
    """What `scan()` found: usable packages and directories that are not."""

    packages: list[InstalledPackage] = field(default_factory=list)
    problems: dict[str, str] = field(default_factory=dict)


# ---------------------------------------------------------------- argostranslate access

_ARGOS_LOCK = threading.Lock()


def argos_package_module(state_dir: Path) -> ModuleType:
    """Import `argostranslate.package` with its settings pointed at `state_dir`.

    argostranslate's settings module creates data/config/cache folders at import, from
    XDG_* and ARGOS_* variables; they are set only around the first import, so nothing lands
    in $HOME and the rest of the process keeps its environment.
    """
    with _ARGOS_LOCK:
        loaded = sys.modules.get("argostranslate.package")
        if loaded is not None:
            return loaded
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
        except OSError:
            state_dir = Path(tempfile.mkdtemp(prefix="daraja-argos-"))
        env = {
            "XDG_DATA_HOME": str(state_dir / "data"),
            "XDG_CONFIG_HOME": str(state_dir / "config"),
            "XDG_CACHE_HOME": str(state_dir / "cache"),
            "ARGOS_PACKAGES_DIR": str(state_dir / "packages"),
        }
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)
        try:
            module = importlib.import_module("argostranslate.package")
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
        return module


# ---------------------------------------------------------------- the store


class ModelStore:
    """Installed packages under one directory: list, install, remove, verify."""

    def __init__(
        self,
        root: Path,
        *,
        index_url: str = DEFAULT_INDEX_URL,
        progress: Progress | None = None,
        timeout: float = 60.0,
        load_check: Callable[[InstalledPackage], None] | None = None,
    ) -> None:
        self.root = Path(root)
        self.index_url = index_url
        self._progress = progress or _quiet
        self._timeout = timeout
        self._lock = threading.Lock()
        # Every install loads the package (CTranslate2 + SentencePiece) and translates a few
        # words with it before it becomes visible (`check_package_loads`).
        self._load_check = load_check or check_package_loads

    # ------------------------------------------------------------ reading

    def list(self) -> list[InstalledPackage]:
        """Installed packages, sorted by id (reads metadata only)."""
        return self.scan().packages

    def problems(self) -> dict[str, str]:
        """Directories in the models dir that are not usable packages, with the reason."""
        return self.scan().problems

    def scan(self) -> _Listing:
        """Read every package directory; broken ones are reported, not raised."""
        listing = _Listing()
        if not self.root.is_dir():
            return listing
        for path in sorted(self.root.iterdir()):
            if path.name.startswith(".") or not path.is_dir():
                continue
            try:
                listing.packages.append(self._read(path))
            except PackageError as exc:
                listing.problems[path.name] = str(exc)
                log.warning("models dir: %s is not a usable package: %s", path.name, exc)
        return listing

    def get(self, package_id: str) -> InstalledPackage:
        """One installed package by id; raise MissingModel if absent."""
        path = self.root / package_id
        if not ID_RE.match(package_id) or not path.is_dir():
            raise MissingModel(
                f"no installed package named {package_id!r}; see `daraja models list`"
            )
        return self._read(path)

    def _read(self, path: Path) -> InstalledPackage:
        package_module = argos_package_module(self.root / ".argos")
        try:
            argos_pkg = package_module.Package(path)
        except FileNotFoundError:
            raise PackageError("no metadata.json") from None
        except (json.JSONDecodeError, UnicodeDecodeError, OSError) as exc:
            raise PackageError(f"metadata.json unreadable: {exc}") from None
        del argos_pkg  # argostranslate validated the format; Daraja's keys are read below
        try:
            meta = json.loads((path / "metadata.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise PackageError(f"metadata.json unreadable: {exc}") from None
        info = parse_metadata(meta)
        model_dir = path / "model"
        sp_model = path / "sentencepiece.model"
        if not (model_dir / "model.bin").is_file():
            raise PackageError("model/model.bin missing")
        if not sp_model.is_file():
            raise PackageError("sentencepiece.model missing")
        target_sp: Path | None = None
        target_name = meta.get("target_sentencepiece")
        if target_name is not None:
            if not isinstance(target_name, str) or not ID_RE.match(target_name):
                raise PackageError("metadata.json: target_sentencepiece must be a file name")
            target_sp = path / target_name
            if not target_sp.is_file():
                raise PackageError(f"{target_name} missing")
        record = _read_record(path)
        return InstalledPackage(
            package_id=path.name,
            path=path,
            from_codes=info.from_codes,
            to_codes=info.to_codes,
            multilingual=info.multilingual,
            target_prefixes=info.target_prefixes,
            source_prefixes=info.source_prefixes,
            model_dir=model_dir,
            sp_model=sp_model,
            version=info.version,
            sha256=str(record.get("tree_sha256", "")),
            source=str(record.get("source", "unknown (not installed by daraja)")),
            size_bytes=int(record.get("size_bytes", 0)) or _size_of(path),
            pairs=info.pairs,
            archive_sha256=str(record.get("archive_sha256", "")),
            name=info.name,
            target_sp_model=target_sp,
        )

    # ------------------------------------------------------------ trust

    def verify(self, pkg: InstalledPackage) -> None:
        """Recompute the package's digest; raise ModelIntegrityError if it changed."""
        fix = (
            f"remove it (`daraja models remove {pkg.package_id}`) and install it again "
            "from a trusted file"
        )
        if not pkg.sha256:
            raise ModelIntegrityError(
                f"package {pkg.package_id} has no checksum recorded (copied in by hand?); {fix}"
            )
        if not pkg.path.is_dir():
            raise ModelIntegrityError(f"package {pkg.package_id} is gone from {pkg.path}")
        digest, _ = tree_digest(pkg.path)
        if digest != pkg.sha256:
            raise ModelIntegrityError(
                f"package {pkg.package_id} does not match the checksum recorded at install "
                f"(files changed or corrupted); {fix}"
            )

    # ------------------------------------------------------------ installing

    def install_file(
        self, path: Path, *, source: str | None = None, replace: bool = False
    ) -> InstalledPackage:
        """Check and install one `.argosmodel` file atomically; return the package."""
        path = Path(path)
        if not path.is_file():
            raise PackageError(f"{path}: no such file")
        if not zipfile.is_zipfile(path):
            raise PackageError(f"{path.name} is not a zip archive (.argosmodel expected)")
        self.root.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._sweep()
            staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=self.root))
            try:
                self._progress(f"checking {path.name}")
                archive_sha = sha256_file(path)
                try:
                    with zipfile.ZipFile(path) as zf:
                        top = check_archive(zf)
                        self._check_room(path.name, declared_size(zf))
                        self._progress(f"unpacking {path.name} ({_human(path.stat().st_size)})")
                        extract_archive(zf, staging)
                except (
                    zipfile.BadZipFile,
                    zipfile.LargeZipFile,
                    EOFError,
                    ValueError,
                    NotImplementedError,
                    zlib.error,
                ) as exc:
                    raise PackageError(f"{path.name} is a corrupt archive: {exc}") from None
                unpacked = staging / top
                destination = self.root / top
                if destination.exists() and not replace:
                    raise PackageError(
                        f"{top} is already installed; remove it first "
                        f"(`daraja models remove {top}`) or install with --replace"
                    )
                _make_private_tree(unpacked)
                # Validate what landed on disk exactly as list() will read it, then load it and
                # translate with it: a package that cannot serve never becomes visible.
                staged = self._read(unpacked)
                self._progress(f"loading {top} to check that it translates")
                self._load_check(staged)
                digest, size = tree_digest(unpacked)
                record = {
                    "tree_sha256": digest,
                    "archive_sha256": archive_sha,
                    "source": source or str(path.resolve()),
                    "size_bytes": size,
                    "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                }
                (unpacked / RECORD_NAME).write_text(
                    json.dumps(record, indent=2) + "\n", encoding="utf-8"
                )
                previous: Path | None = None
                if destination.exists():
                    trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.root))
                    previous = trash / top
                    os.replace(destination, previous)
                try:
                    os.replace(unpacked, destination)
                except OSError:
                    if previous is not None:  # put the old package back
                        os.replace(previous, destination)
                    raise
                self._progress(f"installed {top} ({_human(size)})")
            finally:
                shutil.rmtree(staging, ignore_errors=True)
                self._sweep(max_age=0.0, prefixes=(".trash-",))
        return self._read(destination)

    def install_url(self, url: str, *, replace: bool = False) -> InstalledPackage:
        """Download an `.argosmodel` from an http(s) or file URL and install it."""
        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https", "file"):
            raise PackageError(f"{url!r}: only http(s) and file URLs can be installed")
        self.root.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=".staging-", suffix=".argosmodel", dir=self.root)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self._download(url, tmp)
            return self.install_file(tmp, source=url, replace=replace)
        finally:
            tmp.unlink(missing_ok=True)

    def available_from_index(self) -> builtins.list[dict[str, Any]]:
        """Translation packages listed in the Argos package index (needs the network)."""
        import urllib.request

        package_module = argos_package_module(self.root / ".argos")
        self._progress(f"reading the package index {self.index_url}")
        try:
            with urllib.request.urlopen(self.index_url, timeout=self._timeout) as response:  # noqa: S310
                entries = json.loads(response.read())
        except (OSError, ValueError) as exc:
            raise PackageError(
                f"the package index {self.index_url} is not reachable ({exc}); install from a "
                "file instead (`daraja models install FILE.argosmodel`, see `daraja models "
                "catalog`)"
            ) from None
        if not isinstance(entries, list):
            raise PackageError(f"the package index {self.index_url} is not a list")
        out: builtins.list[dict[str, Any]] = []
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            available = package_module.AvailablePackage(entry)
            if available.type != "translate" or not available.links:
                continue
            out.append(
                {
                    "from_code": available.from_code,
                    "to_code": available.to_code,
                    "version": available.package_version,
                    "links": list(available.links),
                    "name": f"{available.from_name} → {available.to_name}",
                }
            )
        return out

    def install_from_index(
        self, from_code: str, to_code: str, *, replace: bool = False
    ) -> InstalledPackage:
        """Install the newest index package for a pair (needs the index to be reachable)."""
        candidates = [
            e
            for e in self.available_from_index()
            if e["from_code"] == from_code and e["to_code"] == to_code
        ]
        if not candidates:
            raise MissingModel(
                f"the package index has no {from_code}→{to_code} package; see "
                "`daraja models catalog` for other sources",
                source=from_code,
                target=to_code,
            )
        best = max(candidates, key=lambda e: _version_key(str(e["version"])))
        errors: list[str] = []
        for link in best["links"]:
            self.root.mkdir(parents=True, exist_ok=True)
            fd, tmp_name = tempfile.mkstemp(
                prefix=".staging-", suffix=".argosmodel", dir=self.root
            )
            os.close(fd)
            tmp = Path(tmp_name)
            try:
                self._download(link, tmp)
                return self.install_file(tmp, source="argos-index", replace=replace)
            except PackageError as exc:
                errors.append(str(exc))
            finally:
                tmp.unlink(missing_ok=True)
        raise PackageError(f"every download of {from_code}→{to_code} failed: {'; '.join(errors)}")

    def _download(self, url: str, target: Path) -> None:
        import urllib.request

        scheme = urllib.parse.urlsplit(url).scheme
        if scheme not in ("http", "https", "file"):
            raise PackageError(f"{url!r}: only http(s) and file URLs can be downloaded")
        self._progress(f"downloading {url}")
        try:
            with urllib.request.urlopen(url, timeout=self._timeout) as response:  # noqa: S310
                total = int(response.headers.get("Content-Length") or 0)
                done = 0
                last = 0.0
                with target.open("wb") as fh:
                    while chunk := response.read(_CHUNK):
                        fh.write(chunk)
                        done += len(chunk)
                        now = time.monotonic()
                        if now - last >= 1.0:
                            last = now
                            share = f" / {_human(total)}" if total else ""
                            self._progress(f"  {_human(done)}{share}")
        except (OSError, ValueError) as exc:
            raise PackageError(f"download of {url} failed: {exc}") from None
        if total and done != total:
            raise PackageError(f"download of {url} stopped after {done} of {total} bytes")

    # ------------------------------------------------------------ removing

    def remove(self, package_id: str) -> None:
        """Remove an installed package (it disappears from `list()` at once)."""
        if not ID_RE.match(package_id) or not (self.root / package_id).is_dir():
            raise MissingModel(
                f"no installed package named {package_id!r}; see `daraja models list`"
            )
        with self._lock:
            trash = Path(tempfile.mkdtemp(prefix=".trash-", dir=self.root))
            os.replace(self.root / package_id, trash / package_id)
            shutil.rmtree(trash, ignore_errors=True)
            self._progress(f"removed {package_id}")

    def _check_room(self, name: str, unpacked: int) -> None:
        """Refuse an archive that would not fit on the models' disk (with 5% to spare)."""
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            return
        if unpacked * 1.05 > free:
            raise PackageError(
                f"{name} unpacks to {_human(unpacked)} but only {_human(free)} is free in "
                f"{self.root}; free some space or choose another DARAJA_MODELS_DIR"
            )

    def _sweep(self, max_age: float = _STALE_SECONDS, prefixes: Iterable[str] = ()) -> None:
        """Delete leftovers of interrupted installs/removals older than `max_age` seconds."""
        wanted = tuple(prefixes) or (".staging-", ".trash-")
        now = time.time()
        for path in self.root.iterdir():
            if not path.name.startswith(wanted):
                continue
            try:
                if now - path.stat().st_mtime < max_age:
                    continue
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)
            except OSError:
                continue


# ---------------------------------------------------------------- load check

# A few words per source language for the install check (any output will do: the check is
# that the files load and a translation runs, not its quality; the self-test judges that).
_CHECK_WORDS = {"en": "Roger.", "fr": "Bien reçu.", "ht": "Mwen resevwa.", "sw": "Nimepokea."}


def check_package_loads(pkg: InstalledPackage) -> None:
    """Load a package as the engine does (CTranslate2 + SentencePiece) and translate a few
    words in every direction it serves; raise PackageError saying what is broken."""
    from translation.ct2 import Ct2Runtime, DecodingOptions, RuntimeOptions, SegmentRequest
    from translation.errors import ModelError

    try:
        runtime = Ct2Runtime.load(
            pkg.package_id,
            pkg.model_dir,
            pkg.sp_model,
            options=RuntimeOptions(compute_type="default", intra_threads=1),
            decoding=DecodingOptions(beam_size=1, max_decoding_length=16),
            target_sp_model=pkg.target_sp_model,
        )
    except ModelError as exc:
        raise PackageError(
            f"{pkg.package_id} does not load, so it is not installed: {exc}"
        ) from None
    try:
        requests = [
            SegmentRequest(
                _CHECK_WORDS.get(src, "OK."),
                (pkg.source_prefixes[src],) if src in pkg.source_prefixes else (),
                (pkg.target_prefixes[tgt],) if tgt in pkg.target_prefixes else (),
            )
            for src, tgt in pkg.pairs
        ]
        try:
            results = runtime.translate(requests)
        except Exception as exc:
            raise PackageError(
                f"{pkg.package_id} loads but cannot translate ({type(exc).__name__}: {exc}), "
                "so it is not installed"
            ) from exc
        if len(results) != len(requests):
            raise PackageError(f"{pkg.package_id} answered the wrong number of translations")
    finally:
        runtime.close()


# ---------------------------------------------------------------- helpers


def _read_record(path: Path) -> dict[str, Any]:
    try:
        data = json.loads((path / RECORD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _size_of(path: Path) -> int:
    return sum(p.stat().st_size for p in package_files(path))


def _make_private_tree(root: Path) -> None:
    """Normal permissions on extracted files (zip modes are not trusted)."""
    for dirpath, _dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)  # noqa: S103 - world-readable model files are intended
        for name in filenames:
            os.chmod(Path(dirpath) / name, 0o644)


def _version_key(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version)[:4])


def _human(size: int) -> str:
    """Bytes as a short human-readable size."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"


def human_size(size: int) -> str:
    """Bytes as a short human-readable size (for CLI output)."""
    return _human(size)
