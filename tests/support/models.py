"""The bundled fixture models, installed into a models directory for tests and the demo."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "models"


def install_fixture_models(target: Path) -> Path:
    """Install every committed fixture package into `target` (empty if none are committed)."""
    target.mkdir(parents=True, exist_ok=True)
    packages = sorted(FIXTURES.glob("*.argosmodel")) if FIXTURES.exists() else []
    if packages:
        from translation.store import ModelStore

        store = ModelStore(target)
        installed = {p.package_id for p in store.list()}
        for package in packages:
            if package.stem not in installed:
                store.install_file(package, source="fixture")
    return target
