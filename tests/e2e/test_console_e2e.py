"""The web console in a real browser (headless Chromium from Debian's packages): an auditor
and a commander sign in through the link the bot sends them, as a person would, then filter
the log, open a message, export it, and see the board."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.devtools.scenario import WAIT, People
from bot.i18n import load_i18n

CHROMEDRIVER = "/usr/bin/chromedriver"
LINK_RE = re.compile(r"http://127\.0\.0\.1:\d+/console/login\?t=[A-Za-z0-9_-]+")
I18N = load_i18n()


def _chromium() -> str | None:
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    """A fresh headless Chromium with its own profile and download directory."""
    if _chromium() is None or not Path(CHROMEDRIVER).exists():
        reason = (
            "chromium and chromium-driver are not installed "
            "(apt-get install -y chromium chromium-driver)"
        )
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = _chromium() or ""
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.downloads = downloads  # type: ignore[attr-defined]
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


async def _link_for(people: People, user: Any) -> str:
    """The person sends /console privately and reads the link in the bot's answer."""
    reply = await people.ask(user, user, "console")
    match = LINK_RE.search(reply.text or "")
    assert match, reply.text
    return match.group(0)


async def _sign_in(driver: Any, link: str) -> None:
    from selenium.webdriver.common.by import By

    await asyncio.to_thread(driver.get, link)
    button = driver.find_element(By.ID, "open-console")
    await _click_and_wait(driver, button)


async def _click_and_wait(driver: Any, element: Any) -> None:
    """Click a link or button and wait until the next page has replaced this one."""
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    await asyncio.to_thread(element.click)
    await asyncio.to_thread(
        WebDriverWait(driver, WAIT).until, expected_conditions.staleness_of(element)
    )


async def _wait_file(folder: Path, suffix: str) -> Path:
    """The finished download (Chromium writes `.crdownload` until it is complete)."""

    def finished() -> list[Path]:
        return [p for p in folder.iterdir() if p.name.endswith(suffix)]

    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        done = await asyncio.to_thread(finished)
        if done:
            return done[0]
        await asyncio.sleep(0.2)
    raise AssertionError(f"no {suffix} download in {folder}")


async def test_auditor_and_commander_use_the_console_in_a_browser(
    people: People, op_name: str, browser: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    c = people.client
    await people.new_operation(
        op_name, [("PNH-1", "PNH", "ht"), ("KE-1", "MSS", "en"), ("HQ", "MSS", "en")]
    )
    jean = await c.create_user("Jean", language_code="ht")
    otieno = await c.create_user("Otieno", language_code="en")
    pnh = await people.group(f"{op_name} PNH", jean, [])
    ke = await people.group(f"{op_name} KE", otieno, [])
    await people.enroll(pnh, jean, await people.issue_code(f"chat {op_name} PNH-1"))
    await people.enroll(ke, otieno, await people.issue_code(f"chat {op_name} KE-1"))
    mark = (await c.history(ke))[-1].message_id
    await c.say(pnh, jean, "Nou rive Kenscoff")
    await c.wait_for_message(ke, from_bot=True, after=mark, contains="Jean", timeout=WAIT)
    await c.say(ke, otieno, "Checkpoint <b>Alpha</b> secured")

    # The auditor (French) signs in with the link the bot sent.
    auditor = await c.create_user("Inspectorate", language_code="fr")
    await people.open_private(auditor)
    await people.ask(
        auditor, auditor, "join", await people.issue_code(f"person {op_name} HQ auditor fr")
    )
    link = await _link_for(people, auditor)
    await _sign_in(browser, link)
    assert browser.current_url.endswith("/console/log")
    assert I18N.t("console.nav_log", "fr") in browser.title
    rows = browser.find_elements(By.CSS_SELECTOR, "#log tbody tr")
    assert any("Nou rive Kenscoff" in r.text for r in rows)
    assert any("Checkpoint <b>Alpha</b> secured" in r.text for r in rows)  # shown as text

    # Filter: only what was written in Kreyòl.
    Select(browser.find_element(By.NAME, "language")).select_by_value("ht")
    await _click_and_wait(browser, browser.find_element(By.ID, "apply"))
    rows = browser.find_elements(By.CSS_SELECTOR, "#log tbody tr")
    assert rows
    assert all("Checkpoint" not in r.text for r in rows)
    assert "language=ht" in browser.current_url

    # Open the message: the original beside the English copy that reached KE-1.
    await _click_and_wait(browser, rows[0].find_element(By.CSS_SELECTOR, "a.open"))
    assert "Nou rive Kenscoff" in browser.find_element(By.ID, "original").text
    copy = browser.find_element(By.ID, "copy-en")
    assert "KE-1" in copy.text
    assert I18N.t("console.state_sent", "fr") in copy.text

    # Export the log as JSONL: one verifiable event per line, this operation's only.
    await asyncio.to_thread(
        browser.get, browser.current_url.split("/console/")[0] + "/console/log"
    )
    # On a phone's width the log stacks into cards: nothing runs off the side of the screen.
    await asyncio.to_thread(browser.set_window_size, 390, 844)
    await asyncio.to_thread(browser.refresh)
    overflow = browser.execute_script(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0
    assert not browser.find_element(By.CSS_SELECTOR, "#log thead").is_displayed()
    await asyncio.to_thread(browser.set_window_size, 1280, 900)
    await asyncio.to_thread(browser.find_element(By.ID, "export-jsonl").click)
    exported = await _wait_file(browser.downloads, ".jsonl")
    lines = (await asyncio.to_thread(exported.read_text, encoding="utf-8")).splitlines()
    assert lines
    assert all('"prev_hash"' in line for line in lines)

    # The same link does not open a second session.
    browser.delete_all_cookies()
    await asyncio.to_thread(browser.get, link)
    assert I18N.t("console.link_used", "fr") in browser.find_element(By.ID, "refused").text

    # The commander (Swahili) sees the board with every unit and the map.
    commander = await c.create_user("Mwangi", language_code="sw")
    await people.open_private(commander)
    await people.ask(
        commander, commander, "join", await people.issue_code(f"person {op_name} HQ commander sw")
    )
    await _sign_in(browser, await _link_for(people, commander))
    assert browser.current_url.endswith("/console/board")
    board = browser.find_element(By.ID, "board").text
    for code in ("PNH-1", "KE-1"):
        assert code in board
    assert browser.find_element(By.ID, "map").tag_name == "svg"
    assert I18N.t("console.nav_board", "sw") in browser.title
    # The commander may not read the log.
    await asyncio.to_thread(browser.get, link.split("/console/")[0] + "/console/log")
    assert I18N.t("console.not_for_role", "sw") in browser.find_element(By.ID, "refused").text
