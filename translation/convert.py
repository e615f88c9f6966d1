"""Turn offline models into `.argosmodel` packages Daraja can install.

- `convert_opus_mt`: an OPUS-MT release zip (Marian `.npz`, `decoder.yml`, `*.vocab.yml`,
  `source.spm`, `target.spm`) → CTranslate2 with its OPUS-MT converter (numpy only, no PyTorch)
  → `.argosmodel`.
- `package_ct2`: any CTranslate2 model directory plus SentencePiece model(s) → `.argosmodel`
  (used for models converted elsewhere, e.g. NLLB-200 with `ct2-transformers-converter`).

Packages are written deterministically (sorted entries, fixed timestamps), so the same inputs
give the same bytes and the same SHA-256.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import zipfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath
from typing import Any

from translation.errors import PackageError
from translation.package import parse_metadata

LANGUAGE_NAMES = {
    "en": "English",
    "fr": "French",
    "ht": "Haitian Creole",
    "sw": "Swahili",
}
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_MAX_UNPACKED = 4 * 1024**3
_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    """Default progress sink."""


def write_deterministic_zip(path: Path, files: Mapping[str, bytes]) -> None:
    """Write a zip whose bytes depend only on the entry names and contents."""
    tmp = path.with_name(path.name + ".part")
    with zipfile.ZipFile(tmp, "w") as zf:
        for name in sorted(files):
            info = zipfile.ZipInfo(name, date_time=_ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            info.create_system = 3
            zf.writestr(info, files[name], compresslevel=9)
    tmp.replace(path)


def package_ct2(
    model_dir: Path,
    sp_model: Path,
    out: Path,
    metadata: Mapping[str, Any],
    *,
    package_name: str | None = None,
    target_sp_model: Path | None = None,
    readme: str | None = None,
    config_overrides: Mapping[str, Any] | None = None,
) -> Path:
    """Package a CTranslate2 model dir and SentencePiece model(s) as `.argosmodel` at `out`.

    `config_overrides` are merged into the packaged copy of the model's config.json (the
    source directory is left alone).
    """
    if not (model_dir / "model.bin").is_file():
        raise PackageError(f"{model_dir} is not a CTranslate2 model (model.bin missing)")
    if not sp_model.is_file():
        raise PackageError(f"{sp_model}: no such SentencePiece model")
    meta = dict(metadata)
    if target_sp_model is not None:
        meta["target_sentencepiece"] = "target_sentencepiece.model"
    parse_metadata(meta)  # refuse to write a package the store would refuse
    name = package_name or out.name.removesuffix(".argosmodel")
    if not _NAME_RE.match(name):
        raise PackageError(f"package name {name!r} is not acceptable")
    files: dict[str, bytes] = {
        f"{name}/metadata.json": (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode(),
        f"{name}/sentencepiece.model": sp_model.read_bytes(),
    }
    if target_sp_model is not None:
        files[f"{name}/target_sentencepiece.model"] = target_sp_model.read_bytes()
    if readme:
        files[f"{name}/README.md"] = readme.encode()
    for item in sorted(model_dir.rglob("*")):
        if item.is_file():
            rel = item.relative_to(model_dir).as_posix()
            files[f"{name}/model/{rel}"] = item.read_bytes()
    if config_overrides:
        key = f"{name}/model/config.json"
        config: dict[str, Any] = json.loads(files[key]) if key in files else {}
        config.update(config_overrides)
        files[key] = (json.dumps(config, indent=2, sort_keys=True) + "\n").encode()
    out.parent.mkdir(parents=True, exist_ok=True)
    write_deterministic_zip(out, files)
    return out


def _safe_extract(archive: Path, dest: Path) -> None:
    """Extract a zip after refusing absolute paths, `..`, links and oversize content."""
    try:
        with zipfile.ZipFile(archive) as zf:
            total = 0
            for info in zf.infolist():
                pure = PurePosixPath(info.filename)
                if (
                    pure.is_absolute()
                    or ".." in pure.parts
                    or "\\" in info.filename
                    or (info.external_attr >> 16) & 0o170000 == 0o120000
                ):
                    raise PackageError(f"{archive.name}: unsafe entry {info.filename!r}")
                total += info.file_size
                if total > _MAX_UNPACKED:
                    raise PackageError(f"{archive.name}: unpacks to more than the size limit")
            zf.extractall(dest)
    except zipfile.BadZipFile as exc:
        raise PackageError(f"{archive.name} is not a valid zip archive: {exc}") from None


def _find_opus_dir(root: Path) -> Path:
    """The directory holding `decoder.yml` (top level or one nested directory)."""
    found = sorted(root.rglob("decoder.yml"))
    if not found:
        raise PackageError(
            "no decoder.yml in the archive: expected an OPUS-MT release zip "
            "(the 'download original weights' link of an OPUS-MT model card)"
        )
    if len(found) > 1:
        raise PackageError("the archive holds more than one OPUS-MT model (decoder.yml)")
    return found[0].parent


def convert_opus_mt(
    archive: Path,
    from_code: str,
    to_code: str,
    out: Path,
    *,
    quantization: str = "int8",
    progress: Progress | None = None,
    version: str = "1.0",
) -> Path:
    """Convert an OPUS-MT release zip into an `.argosmodel` at `out` (no PyTorch needed)."""
    say = progress or _quiet
    if not archive.is_file():
        raise PackageError(f"{archive}: no such file")
    if from_code == to_code:
        raise PackageError("--from and --to must differ")
    with tempfile.TemporaryDirectory(prefix="daraja-opus-") as tmp_name:
        tmp = Path(tmp_name)
        say(f"unpacking {archive.name}")
        _safe_extract(archive, tmp / "src")
        opus_dir = _find_opus_dir(tmp / "src")
        source_spm = opus_dir / "source.spm"
        target_spm = opus_dir / "target.spm"
        if not source_spm.is_file():
            raise PackageError("the OPUS-MT archive has no source.spm")
        try:
            import yaml

            decoder = yaml.safe_load((opus_dir / "decoder.yml").read_text(encoding="utf-8"))
            vocabs = decoder.get("vocabs", []) if isinstance(decoder, dict) else []
            multi_target = any(
                ">>" in line
                for v in vocabs[-1:]
                for line in (opus_dir / v).read_text(encoding="utf-8").splitlines()[:64]
            )
        except (OSError, ValueError, ImportError, yaml.YAMLError):
            multi_target = False
        if multi_target:
            raise PackageError(
                "this OPUS-MT model has several target languages (>>xxx<< tokens); only "
                "single-pair models are supported"
            )
        say("converting with CTranslate2's OPUS-MT converter")
        from ctranslate2.converters import OpusMTConverter

        ct2_dir = tmp / "model"
        try:
            OpusMTConverter(str(opus_dir)).convert(
                str(ct2_dir), quantization=quantization, force=True
            )
        except (KeyError, ValueError, OSError, RuntimeError) as exc:
            raise PackageError(f"CTranslate2 could not convert this model: {exc}") from None
        name = f"opus-mt-{from_code}_{to_code}"
        metadata = {
            "package_version": version,
            "argos_version": "1.9",
            "type": "translate",
            "from_code": from_code,
            "from_name": LANGUAGE_NAMES.get(from_code, from_code),
            "to_code": to_code,
            "to_name": LANGUAGE_NAMES.get(to_code, to_code),
            "name": f"OPUS-MT {from_code}→{to_code} (converted from {archive.name})",
            "converted_from": "opus-mt",
        }
        separate = target_spm.is_file() and target_spm.read_bytes() != source_spm.read_bytes()
        readme = None
        for candidate in ("README.md", "LICENSE"):
            if (opus_dir / candidate).is_file():
                readme = (opus_dir / candidate).read_text(encoding="utf-8", errors="replace")
                break
        say(f"packaging {out.name}")
        package_ct2(
            ct2_dir,
            source_spm,
            out,
            metadata,
            package_name=name,
            target_sp_model=target_spm if separate else None,
            readme=readme,
        )
        shutil.rmtree(tmp / "src", ignore_errors=True)
    return out


def nllb_metadata(
    languages: Sequence[str],
    prefixes: Mapping[str, str],
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    name: str = "NLLB-200 distilled 600M",
    version: str = "1.0",
) -> dict[str, Any]:
    """Daraja metadata for a multilingual NLLB/M2M-style package (see translation/store.py)."""
    codes = list(languages)
    if len(codes) < 2:
        raise PackageError("a multilingual package needs at least two languages")
    missing = [c for c in codes if c not in prefixes]
    if missing:
        raise PackageError(f"no language token given for {', '.join(missing)}")
    served = list(pairs) if pairs else [(s, t) for s in codes for t in codes if s != t]
    return {
        "package_version": version,
        "argos_version": "1.9",
        "type": "translate",
        "from_code": served[0][0],
        "from_name": LANGUAGE_NAMES.get(served[0][0], served[0][0]),
        "to_code": served[0][1],
        "to_name": LANGUAGE_NAMES.get(served[0][1], served[0][1]),
        "name": name,
        "multilingual": True,
        "from_codes": codes,
        "to_codes": codes,
        "languages": [{"code": c, "name": LANGUAGE_NAMES.get(c, c)} for c in codes],
        "pairs": [[s, t] for s, t in served],
        "source_prefixes": {c: prefixes[c] for c in codes},
        "target_prefixes": {c: prefixes[c] for c in codes},
    }


# NLLB/M2M conversions leave `</s>` to the caller; Daraja's engine relies on the model config
# (like OPUS-MT conversions), so multilingual packages get this override.
SOURCE_EOS = {"add_source_eos": True}
