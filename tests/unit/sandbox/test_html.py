"""Telegram's HTML parse mode: entities, UTF-16 offsets, the exact errors, and rendering back."""

from __future__ import annotations

import pytest

from bot.devtools.sandbox.html import HtmlError, normalize, parse_html, render_html, utf16_len


def parse(source: str) -> tuple[str, list[dict[str, object]]]:
    return normalize(*parse_html(source))


def test_each_supported_tag_becomes_its_entity() -> None:
    text, entities = parse(
        "<b>b</b><strong>b</strong><i>i</i><em>i</em><u>u</u><ins>u</ins><s>s</s>"
        "<strike>s</strike><del>s</del><code>c</code><tg-spoiler>p</tg-spoiler>"
        '<span class="tg-spoiler">p</span><tg-emoji emoji-id="5368324170671202286">e</tg-emoji>'
    )
    assert text == "bbiiuussscppe"
    assert [e["type"] for e in entities] == [
        "bold",
        "bold",
        "italic",
        "italic",
        "underline",
        "underline",
        "strikethrough",
        "strikethrough",
        "strikethrough",
        "code",
        "spoiler",
        "spoiler",
        "custom_emoji",
    ]
    assert entities[-1]["custom_emoji_id"] == "5368324170671202286"


def test_offsets_count_utf16_code_units_so_emoji_count_twice() -> None:
    text, entities = parse("😀 é <b>bold</b> 🇭🇹 <i>x</i>")
    assert text == "😀 é bold 🇭🇹 x"
    assert entities == [
        {"offset": 5, "length": 4, "type": "bold"},
        {"offset": 15, "length": 1, "type": "italic"},
    ]
    assert utf16_len(text) == 16


def test_pre_with_language_is_one_entity_and_swallows_nested_formatting() -> None:
    text, entities = parse('<pre><code class="language-python">x = <b>1</b></code></pre>')
    assert text == "x = 1"
    assert entities == [{"offset": 0, "length": 5, "type": "pre", "language": "python"}]


def test_blockquote_and_expandable_blockquote() -> None:
    _, entities = parse("<blockquote>a</blockquote>\n<blockquote expandable>b</blockquote>")
    assert [e["type"] for e in entities] == ["blockquote", "expandable_blockquote"]


def test_links_are_normalised_like_telegram() -> None:
    _, entities = parse("<a href=\"https://example.org\">x</a> <a href='t.me/x'>y</a>")
    assert [e["url"] for e in entities] == ["https://example.org/", "http://t.me/x"]


def test_character_references_decode_and_unknown_ones_stay_literal() -> None:
    text, _ = parse("&lt;b&gt; &amp; &quot;q&quot; &#65;&#x42; &nbsp; &amp")
    assert text == '<b> & "q" AB &nbsp; &'


def test_surrounding_whitespace_is_trimmed_and_offsets_follow() -> None:
    text, entities = parse("  \n<b>hi</b> there \n")
    assert text == "hi there"
    assert entities == [{"offset": 0, "length": 2, "type": "bold"}]


@pytest.mark.parametrize(
    ("source", "error"),
    [
        ("<foo>x</foo>", 'Unsupported start tag "foo" at byte offset 0'),
        ("é<br>", 'Unsupported start tag "br" at byte offset 2'),
        ("<b>bold", 'Can\'t find end tag corresponding to start tag "b"'),
        ("<b><i>x</b></i>", 'Unmatched end tag at byte offset 7, expected "</i>", found "</b>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("<b", "Unclosed start tag at byte offset 0"),
        ('<a href="x>y</a>', "Unclosed start tag at byte offset 0"),
        ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler" at byte offset 0'),
        (
            "<a href>x</a>",
            'Expected equal sign in declaration of an attribute of the tag "a" at byte offset 0',
        ),
    ],
)
def test_malformed_markup_gives_telegrams_error(source: str, error: str) -> None:
    with pytest.raises(HtmlError) as caught:
        parse_html(source)
    assert str(caught.value) == error


def test_commands_mentions_urls_and_hashtags_are_detected() -> None:
    text, entities = parse("/lang@daraja_bot fr @alice #Kenscoff https://example.org/a.")
    found = [(e["type"], text[e["offset"] : e["offset"] + e["length"]]) for e in entities]
    assert found == [
        ("bot_command", "/lang@daraja_bot"),
        ("mention", "@alice"),
        ("hashtag", "#Kenscoff"),
        ("url", "https://example.org/a"),
    ]


def test_rendering_round_trips_through_the_parser() -> None:
    source = (
        '😀 <b>bold <i>both</i></b> <a href="https://example.org/">link</a> '
        '<pre><code class="language-sh">ls &lt;dir&gt;</code></pre> '
        "<blockquote expandable>q</blockquote>"
    )
    text, entities = parse(source)
    html = render_html(text, entities)
    assert parse(html) == (text, entities)
    assert "<b>bold <i>both</i></b>" in html
    assert "ls &lt;dir&gt;" in html


def test_overlapping_entities_render_as_properly_nested_tags() -> None:
    entities = [
        {"type": "bold", "offset": 0, "length": 4},
        {"type": "italic", "offset": 2, "length": 4},
    ]
    assert render_html("abcdef", entities) == "<b>ab<i>cd</i></b><i>ef</i>"


def test_detected_entities_skip_code_but_not_quotes() -> None:
    text, entities = parse("<code>/start</code> <blockquote>see /help</blockquote>")
    assert [e["type"] for e in entities] == ["code", "blockquote", "bot_command"]
    assert text[entities[2]["offset"] :] == "/help"
