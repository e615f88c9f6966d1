"""Where to get offline models for every pair of Daraja's languages, and the exact steps.

Only sources known to exist are named. Steps that need the network run on a connected machine;
the resulting `.argosmodel` files are carried to the deployment and installed from a file.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from translation.types import LANGUAGES

_OPUS_CARD = "https://huggingface.co/Helsinki-NLP/opus-mt-{pair}"


@dataclass(frozen=True)
class Source:
    """One way to obtain a model serving some pairs."""

    key: str
    title: str
    kind: str  # "argos-index" | "opus-mt" | "multilingual"
    pairs: tuple[str, ...]  # "ht-en" style
    steps: tuple[str, ...]
    notes: str = ""
    needs_pytorch: bool = False
    links: tuple[str, ...] = field(default=())


def _opus(pair: str, note: str = "") -> Source:
    src, tgt = pair.split("-")
    card = _OPUS_CARD.format(pair=pair)
    return Source(
        key=f"opus-mt-{pair}",
        title=f"OPUS-MT {src}→{tgt} (Helsinki-NLP, Marian)",
        kind="opus-mt",
        pairs=(f"{src}-{tgt}",),
        steps=(
            f"On a connected machine open {card} and download the zip behind "
            "'download original weights' (OPUS-MT-models/…/opus-<date>.zip).",
            f"daraja models convert-opus-mt opus-<date>.zip --from {src} --to {tgt} "
            f"--out opus-mt-{src}_{tgt}.argosmodel",
            f"Copy opus-mt-{src}_{tgt}.argosmodel to the deployment and run: "
            f"daraja models install opus-mt-{src}_{tgt}.argosmodel",
        ),
        notes=note,
        links=(card,),
    )


def sources() -> list[Source]:
    """Every known source of models for ht/fr/en/sw."""
    nllb_codes = "en=eng_Latn,fr=fra_Latn,ht=hat_Latn,sw=swh_Latn"
    return [
        Source(
            key="argos-en-fr",
            title="Argos Translate index packages en→fr and fr→en",
            kind="argos-index",
            pairs=("en-fr", "fr-en"),
            steps=(
                "With the index reachable: daraja models install en-fr && "
                "daraja models install fr-en",
                "Offline: on a connected machine run the same commands with "
                "DARAJA_MODELS_DIR pointing at a USB drive, or download the .argosmodel "
                "files listed in the Argos index and run "
                "`daraja models install FILE.argosmodel` on the deployment.",
            ),
        ),
        _opus("ht-en"),
        _opus("en-ht"),
        _opus("ht-fr"),
        _opus("fr-ht"),
        _opus("en-sw"),
        _opus(
            "swc-en",
            "Congo Swahili (swc) source; usable for Kenyan Swahili but weaker. Convert with "
            "--from sw --to en. For better sw→en use the multilingual model below.",
        ),
        Source(
            key="nllb-200-distilled-600M",
            title="NLLB-200 distilled 600M (Meta, CC-BY-NC-4.0) — one package for all pairs",
            kind="multilingual",
            pairs=tuple(f"{s}-{t}" for s in LANGUAGES for t in LANGUAGES if s != t),
            needs_pytorch=True,
            steps=(
                "On a connected machine with PyTorch: "
                "pip install 'ctranslate2>=4.6' 'transformers[sentencepiece]' torch",
                "ct2-transformers-converter --model facebook/nllb-200-distilled-600M "
                "--output_dir nllb-600m-ct2 --quantization int8",
                'Fetch the tokenizer: python -c "from huggingface_hub import hf_hub_download; '
                "print(hf_hub_download('facebook/nllb-200-distilled-600M', "
                "'sentencepiece.bpe.model'))\"",
                "daraja models package nllb-600m-ct2 --sp-model sentencepiece.bpe.model "
                f"--languages {nllb_codes} --name nllb-200-600m --out nllb-200-600m.argosmodel",
                "Copy nllb-200-600m.argosmodel to the deployment and run "
                "daraja models install nllb-200-600m.argosmodel",
            ),
            notes="~600 MB int8. Licence is non-commercial; check it fits the deployment.",
        ),
        Source(
            key="m2m100-418M",
            title="M2M-100 418M (Meta, MIT) — one package for all pairs",
            kind="multilingual",
            pairs=tuple(f"{s}-{t}" for s in LANGUAGES for t in LANGUAGES if s != t),
            needs_pytorch=True,
            steps=(
                "On a connected machine with PyTorch: "
                "pip install 'ctranslate2>=4.6' 'transformers[sentencepiece]' torch",
                "ct2-transformers-converter --model facebook/m2m100_418M "
                "--output_dir m2m100-418m-ct2 --quantization int8",
                'Fetch the tokenizer: python -c "from huggingface_hub import hf_hub_download; '
                "print(hf_hub_download('facebook/m2m100_418M', 'sentencepiece.bpe.model'))\"",
                "daraja models package m2m100-418m-ct2 --sp-model sentencepiece.bpe.model "
                "--languages en=__en__,fr=__fr__,ht=__ht__,sw=__sw__ --name m2m100-418m "
                "--out m2m100-418m.argosmodel",
                "Copy m2m100-418m.argosmodel to the deployment and run "
                "daraja models install m2m100-418m.argosmodel",
            ),
            notes="~420 MB int8; weaker than NLLB on Kreyòl and Swahili.",
        ),
    ]


def catalog() -> dict[str, Any]:
    """Every ordered pair of ht/fr/en/sw with the sources that serve it directly."""
    all_sources = sources()
    pairs: dict[str, list[str]] = {}
    for src in LANGUAGES:
        for tgt in LANGUAGES:
            if src == tgt:
                continue
            pair = f"{src}-{tgt}"
            direct = [s.key for s in all_sources if pair in _normalised(s)]
            pairs[pair] = direct
    return {
        "pairs": pairs,
        "sources": [asdict(s) for s in all_sources],
        "routing": (
            "direct package, else a multilingual package, else a pivot through English "
            "(two packages: source→en and en→target)"
        ),
    }


def _normalised(source: Source) -> tuple[str, ...]:
    """Pairs with Daraja's codes (Congo Swahili 'swc' is installed as 'sw')."""
    return tuple(p.replace("swc", "sw") for p in source.pairs)
