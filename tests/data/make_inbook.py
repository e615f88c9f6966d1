"""Write tests/data/inbook.tsv: the phrasebook's sentences with real spans in place of [0]...

The fixture models were trained on these sentences, so this is the in-domain set: quality
estimation should flag almost none of it. Placeholders are numbered by the English column in
the phrasebook; each row fills [n] with the same span in every language, drawn from a fixed
list by row and placeholder number (deterministic, so the file is reproducible).

    uv run python tests/data/make_inbook.py
"""

from __future__ import annotations

import csv
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SPANS = [
    "KE-3",
    "Kenscoff",
    "14:30",
    "PNH-UDMO-2",
    "Furcy",
    "06:00",
    "Alpha_2",
    "RN2",
    "Croix-des-Bouquets",
    "1600",
    "KE-12",
    "Pétion-Ville",
    "18TXL123456",
    "12",
]
LANGS = ("en", "ht", "fr", "sw")


def main() -> None:
    """Fill every phrasebook row and write the set."""
    rows: list[list[str]] = []
    index = 0
    for path in sorted((ROOT / "tools" / "phrasebook").glob("*.tsv")):
        with path.open(encoding="utf-8", newline="") as fh:
            for row in csv.DictReader(fh, delimiter="\t"):
                index += 1

                def fill(match: re.Match[str], row_index: int = index) -> str:
                    n = int(match.group(1))
                    return SPANS[(row_index * 3 + n) % len(SPANS)]

                rows.append([re.sub(r"\[(\d+)\]", fill, row[lang]) for lang in LANGS])
    out = ROOT / "tests" / "data" / "inbook.tsv"
    with out.open("w", encoding="utf-8") as fh:
        fh.write("\t".join(LANGS) + "\n")
        for cells in rows:
            fh.write("\t".join(cells) + "\n")
    print(f"{len(rows)} rows -> {out}")


if __name__ == "__main__":
    main()
