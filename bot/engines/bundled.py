"""The small real models bundled with Daraja (trained from the phrasebook; see tools/).

They serve the offline demo and the tests: real SentencePiece and CTranslate2 inference, exact
outputs on phrasebook sentences, fluent nonsense elsewhere. Not for operations.
"""

from __future__ import annotations

from pathlib import Path

BUNDLED_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "models"


def install_bundled_models(target: Path) -> Path:
    """Install every bundled package into `target` (idempotent); returns `target`."""
    target.mkdir(parents=True, exist_ok=True)
    packages = sorted(BUNDLED_DIR.glob("*.argosmodel")) if BUNDLED_DIR.exists() else []
    if packages:
        from translation.store import ModelStore

        store = ModelStore(target)
        installed = {p.package_id for p in store.list()}
        for package in packages:
            if package.stem not in installed:
                store.install_file(package, source="bundled")
    return target
