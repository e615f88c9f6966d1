"""Formatting of the original carried into translated copies where it can be mapped."""

from __future__ import annotations

from bot.rendering.copies import (
    Block,
    CopyContent,
    marks_from_html,
    render_marked,
    render_parts,
    visible_len,
)

ORIGINAL_HTML = (
    'Baryè <code>K-12</code> a <b>14:30</b>, gade <a href="https://maps.example/k?a=1&amp;b=2">'
    "kat la</a>. <b><i>Ijan</i></b> <pre>1 2 3</pre>"
)


def test_fragments_that_survive_translation_keep_their_formatting() -> None:
    marks = marks_from_html(ORIGINAL_HTML)
    out = render_marked("Checkpoint K-12 at 14:30, see the map. Urgent", marks)
    assert out == "Checkpoint <code>K-12</code> at <b>14:30</b>, see the map. Urgent"


def test_a_same_language_copy_gets_its_formatting_back() -> None:
    marks = marks_from_html(ORIGINAL_HTML)
    out = render_marked("Baryè K-12 a 14:30, gade kat la. Ijan 1 2 3", marks)
    assert '<a href="https://maps.example/k?a=1&amp;b=2">kat la</a>' in out
    assert "<b><i>Ijan</i></b>" in out
    assert "<pre>" not in out  # code blocks are not re-applied inside a line


def test_user_text_around_and_inside_marks_is_escaped() -> None:
    marks = marks_from_html("<b>&lt;K&amp;9&gt;</b>")
    assert render_marked("a <K&9> b <i>", marks) == "a <b>&lt;K&amp;9&gt;</b> b &lt;i&gt;"


def test_hostile_links_cannot_break_out_of_the_attribute() -> None:
    marks = marks_from_html("<a href='x\" onclick=\"alert(1)'>ici</a>")
    out = render_marked("ici", marks)
    assert out == '<a href="x&quot; onclick=&quot;alert(1)">ici</a>'


def test_each_mark_applies_once_and_never_overlaps() -> None:
    marks = marks_from_html("<b>K-12</b> <code>K-12 B</code>")
    out = render_marked("K-12 B and K-12", marks)
    assert out.count("<b>") == 1
    assert out.count("<code>") == 1
    assert visible_len(out) == len("K-12 B and K-12")


def test_malformed_or_missing_html_gives_plain_text() -> None:
    assert marks_from_html(None) == ()
    # Unclosed tags close at the end; fragments under two characters are left alone.
    assert [m.text for m in marks_from_html("<b>unclosed <i>x")] == ["unclosed"]
    assert render_marked("<b>", marks_from_html("<<<>>>")) == "&lt;b&gt;"


def test_a_long_translation_split_in_parts_keeps_the_formatting_valid() -> None:
    marks = marks_from_html("<b>14:30</b>")
    text = ("Patrol leaves at 14:30. " * 300).strip()
    parts = render_parts(CopyContent(header="<b>A</b>", blocks=(Block("en", text, marks=marks),)))
    assert len(parts) > 1
    joined = "".join(parts)
    assert joined.count("<b>14:30</b>") == 1  # applied once, in the first part
    for part in parts:
        assert part.count("<b>") == part.count("</b>")
