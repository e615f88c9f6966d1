"""The console's pure parts: every text a template names is in the catalogs, and the map puts
units where their coordinates say."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path

from bot.console.map import build_map
from bot.console.queries import STATES, VERDICTS
from bot.console.texts import TEMPLATE_KEYS
from bot.domain.gazetteer import PLACES
from bot.i18n import load_i18n
from bot.services.board import BoardRow, FreeText, Location, ReportView

TEMPLATES = Path(__file__).resolve().parents[2] / "bot" / "console" / "templates"
NOW = datetime(2026, 12, 3, 9, 0, tzinfo=UTC)


def _template_text() -> str:
    return "\n".join(p.read_text(encoding="utf-8") for p in sorted(TEMPLATES.glob("*.html")))


def test_every_key_a_template_names_is_listed_and_translated() -> None:
    i18n = load_i18n()
    literal = set(re.findall(r"""\bt\(\s*["']([a-z_.]+)["']\s*[,)]""", _template_text()))
    console = {k for k in literal if k.startswith("console.")}
    assert console <= set(TEMPLATE_KEYS)
    # Keys built in templates ("console.state_" ~ state): every member is listed too.
    members = {
        "console.state_": STATES,
        "console.verdict_": VERDICTS,
        "console.person_": ("active", "revoked"),
        "console.code_": ("active", "used", "expired", "revoked"),
    }
    built = set(re.findall(r"""t\(\s*["'](console\.[a-z_]+)["']\s*~""", _template_text()))
    assert built <= set(members)
    for prefix, values in members.items():
        assert {prefix + v for v in values} <= set(TEMPLATE_KEYS)
    for lang in ("ht", "fr", "en", "sw"):
        for key in (*TEMPLATE_KEYS, *(k for k in literal if not k.startswith("console."))):
            assert i18n.catalogs[lang].get(key), (lang, key)


def test_templates_carry_no_script_and_no_inline_style() -> None:
    text = _template_text()
    assert "<script" not in text
    assert "style=" not in text  # the CSP allows style sheets from the console only
    assert "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "https://" not in text


def _row(
    code: str,
    side: str,
    lat: float | None,
    lon: float | None,
    place: str | None = None,
    stale: bool = False,
) -> BoardRow:
    report = ReportView(
        status="in_contact",
        location=Location(lat, lon, place),
        strength=None,
        needs=FreeText("", None),
        remarks=FreeText("", None),
        author="x",
        created_at=NOW,
    )
    return BoardRow(code, code, side, ("en",), report, stale)


def test_the_map_puts_north_up_and_names_what_it_cannot_place() -> None:
    rows = [
        _row("KE-1", "MSS", 18.5392, -72.3364),  # Port-au-Prince
        _row("PNH-1", "PNH", None, None, "Furcy"),  # a place only: from the gazetteer
        _row("KE-2", "MSS", None, None, stale=True),
    ]
    area = build_map(rows, PLACES, frozenset({"in_contact"}))
    units = {u.label: u for u in area.units}
    assert set(units) == {"KE-1", "PNH-1"}
    assert area.unplaced == ("KE-2",)
    assert units["KE-1"].y < units["PNH-1"].y  # Port-au-Prince is north of Furcy
    for u in area.units:
        assert 0 <= u.x <= area.width
        assert 0 <= u.y <= area.height
        assert u.urgent
    assert "Kenscoff" in {p.label for p in area.places}  # between the two, on the map
    assert "Cap-Haïtien" not in {p.label for p in area.places}  # far north, out of view


def test_the_console_address_is_the_setting_else_the_local_listener() -> None:
    from bot.console.server import console_url
    from bot.settings import Settings

    assert console_url(Settings()) is None  # off by default: /console says so
    assert console_url(Settings(console_port=8090)) == "http://127.0.0.1:8090"
    behind_proxy = Settings(console_port=8090, console_url="https://ops.example/")
    assert console_url(behind_proxy) == "https://ops.example"
