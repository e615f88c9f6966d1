"""Project hygiene a maintainer relies on: layering, lint, lock, Docker/README agreement."""

from __future__ import annotations

import ast
import re
import shutil
import sys
from pathlib import Path

import pytest

from tests.support import processes

ROOT = Path(__file__).resolve().parents[2]

# The entry points and developer tools sit on top: nothing the bot runs imports them.
_TOP = {"handlers", "bot.app", "bot.cli", "bot.devtools"}

# Which packages each layer may not import (STYLE.md: dependencies point one way). A name is a
# top-level package ("telegram") or, inside bot, a sub-package ("bot.delivery").
FORBIDDEN = {
    "translation": {"telegram", "bot", "handlers", "storage", "sqlalchemy"},
    "storage": {"telegram", "bot", "handlers", "translation"},
    "bot/domain": {"telegram", "storage", "translation", "sqlalchemy", "aiohttp", "babel"}
    | {"bot.services", "bot.delivery", "bot.rendering", "bot.i18n", "bot.engines", "bot.console"}
    | _TOP,
    "bot/rendering": {"telegram", "storage", "sqlalchemy", "bot.services", "bot.delivery"} | _TOP,
    "bot/i18n": {"telegram", "storage", "sqlalchemy", "bot.services", "bot.delivery"} | _TOP,
    "bot/observability": {"telegram", "bot.services", "bot.delivery", "bot.console"} | _TOP,
    "bot/engines": {"telegram", "bot.delivery", "bot.console"} | _TOP,
    "bot/services": {"telegram", "bot.delivery", "bot.console", "bot.engines"} | _TOP,
    # Rules that work through a unit of work (storage/uow.py) see no SQL.
    **{
        f"bot/services/{name}.py": {"telegram", "sqlalchemy"} | _TOP
        for name in (
            "flash",
            "flash_acks",
            "flash_reminders",
            "status",
            "sitrep",
            "notify",
            "refusals",
            "sitrep_filing",
            "staleness",
        )
    },
    "bot/domain/gazetteer.py": {"telegram", "bot", "storage", "translation", "sqlalchemy"},
    "bot/delivery": {"bot.console"} | _TOP,
    "bot/console": _TOP - {"bot.app"},
    # SQL lives in storage/ only: everything else reaches it through repositories and the unit
    # of work (storage/uow.py), and catches storage's own error types (storage/errors.py).
    "bot": {"sqlalchemy"},
    "handlers": {"sqlalchemy"},
}


def _imports(path: Path) -> set[str]:
    """Top-level packages a module imports, and for `bot` also the sub-package (`bot.delivery`)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    modules: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            modules.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            modules.append(node.module)
            if node.module == "bot":
                modules.extend(f"bot.{alias.name}" for alias in node.names)
    names: set[str] = set()
    for module in modules:
        parts = module.split(".")
        names.add(parts[0])
        if parts[0] == "bot" and len(parts) > 1:
            names.add(f"bot.{parts[1]}")
    return names


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer: str) -> None:
    offenders = []
    where = ROOT / layer
    for path in [where] if where.is_file() else sorted(where.rglob("*.py")):
        bad = _imports(path) & FORBIDDEN[layer]
        if bad:
            offenders.append(f"{path.relative_to(ROOT)} imports {sorted(bad)}")
    assert offenders == []


def test_no_pytorch_stanza_or_spacy_in_lock_or_venv() -> None:
    lock = (ROOT / "uv.lock").read_text()
    for name in ("torch", "stanza", "spacy"):
        assert f'\nname = "{name}"\n' not in lock
    import importlib.util

    for name in ("torch", "stanza", "spacy"):
        assert importlib.util.find_spec(name) is None, f"{name} is installed in the venv"


def test_ruff_lint_and_format_are_clean() -> None:
    ruff = shutil.which("ruff") or str(Path(sys.executable).parent / "ruff")
    lint = processes.run([ruff, "check", "--no-cache", str(ROOT)], timeout=300)
    assert lint.returncode == 0, lint.stdout[-3000:]
    fmt = processes.run([ruff, "format", "--check", str(ROOT)], timeout=300)
    assert fmt.returncode == 0, fmt.stdout[-3000:]


def test_dockerfile_installs_like_the_readme() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    readme = (ROOT / "README.md").read_text()
    # Same lock file, same installer, same locked sync.
    assert "COPY pyproject.toml uv.lock" in dockerfile
    assert "pip install --no-cache-dir uv" in dockerfile
    assert "uv sync --locked --no-dev" in dockerfile
    assert "pip install uv" in readme
    assert "uv sync --locked --no-dev" in readme  # the documented production install
    assert re.search(r"^USER daraja$", dockerfile, re.M)
    assert 'ENTRYPOINT ["daraja"]' in dockerfile
    for package in ("bot", "handlers", "translation", "storage", "locales"):
        assert f"COPY {package} ./{package}" in dockerfile


def test_ci_runs_exactly_the_readme_test_command() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    match = re.search(r"```(?:sh|bash)?\n(.*?)```", readme.split("## Quick start", 1)[1], re.S)
    assert match is not None
    commands = [
        line.strip()
        for line in match.group(1).splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert len(commands) == 2, commands
    test_command = commands[1]
    assert test_command in ci.splitlines()


def test_readme_documents_every_setting() -> None:
    from bot.settings import Settings

    readme = (ROOT / "README.md").read_text()
    missing = [name for name in Settings.model_fields if f"`DARAJA_{name.upper()}`" not in readme]
    assert missing == []


def test_packages_type_check_strictly() -> None:
    mypy = shutil.which("mypy") or str(Path(sys.executable).parent / "mypy")
    result = processes.run([mypy], cwd=ROOT, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:]


def test_voice_extra_stays_out_of_production_but_in_the_tests() -> None:
    def export(*args: str) -> str:
        uv = shutil.which("uv") or "uv"
        result = processes.run(
            [uv, "export", "--locked", "--format", "requirements-txt", "--no-hashes", *args],
            cwd=ROOT,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout

    production, voice, tests = export("--no-dev"), export("--no-dev", "--extra", "voice"), export()
    assert "faster-whisper==" not in production
    assert "faster-whisper==" in voice
    assert "faster-whisper==" in tests  # `uv run --locked pytest` runs the real model
    for lock in (production, voice, tests):
        assert "\ntorch==" not in lock
    # One CTranslate2 for translation and transcription.
    assert {line for line in voice.splitlines() if line.startswith("ctranslate2==")} == {
        line for line in production.splitlines() if line.startswith("ctranslate2==")
    }
