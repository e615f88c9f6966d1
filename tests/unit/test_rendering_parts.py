"""A copy too long for one Telegram message: every part says whose it is and where it sits."""

from __future__ import annotations

import html
import re

from bot.rendering.copies import (
    TEXT_LIMIT,
    Block,
    CopyContent,
    header_line,
    render_parts,
    visible_len,
)

HEADER = header_line(author="Otieno", unit="KE-3", side="MSS")


def _plain(part: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", part))


def _content(text: str, original: str = "") -> CopyContent:
    return CopyContent(
        header=HEADER,
        blocks=(Block("fr", text),),
        original=original,
        original_label="Original (English)",
    )


def test_every_part_of_a_split_copy_starts_with_its_author_and_position() -> None:
    # One long paragraph: the first block alone fills a message, which used to leave the
    # header on a part of its own.
    text = " ".join(f"Patrouille {i} arrivée à Kenscoff à 14:30." for i in range(220))
    original = " ".join(f"Patrol {i} arrived at Kenscoff at 14:30." for i in range(220))
    parts = render_parts(_content(text, original))
    total = len(parts)
    assert total >= 3
    for number, part in enumerate(parts, 1):
        first, _, rest = _plain(part).partition("\n")
        assert first == f"Otieno · KE-3 · MSS ({number}/{total})"
        assert rest.strip()  # never a part holding only the header
        assert visible_len(part) <= TEXT_LIMIT
    body = "\n".join(_plain(p).partition("\n")[2] for p in parts)
    assert re.sub(r"\s+", " ", body).count("arrivée à Kenscoff") == 220  # nothing dropped
    assert re.sub(r"\s+", " ", body).count("arrived at Kenscoff") == 220


def test_a_copy_that_fits_one_message_carries_no_position() -> None:
    [part] = render_parts(_content("Unité KE-3 prête."))
    assert _plain(part).split("\n")[0] == "Otieno · KE-3 · MSS"
