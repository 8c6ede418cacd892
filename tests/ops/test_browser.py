"""The dashboard end to end in headless Chromium (Debian's, installed by
ops/install-browser.sh, driven by Selenium): real turns show in its charts, and clicking
promote, then rollback, moves the alias, so that the next turn names the snapshot chosen.

``BOTYARD_SCREENSHOT=path.png`` saves a screenshot of the page at the end (the README's).
"""

import os
import shutil
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tests.ops.conftest import BOT, TENANT
from tests.ops.test_dashboard import say_all

CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture
def browser(tmp_path):
    if not (shutil.which(CHROMIUM) and shutil.which(DRIVER)):
        pytest.fail("Chromium and ChromeDriver are missing: run `bash ops/install-browser.sh` (README install line)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage", "--window-size=1400,2200", f"--user-data-dir={tmp_path / 'chromium'}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def test_the_dashboard_shows_turns_and_its_rollback_button_moves_the_alias(api, nats_url, browser):
    good, bad = api["snapshots"]["good"], api["snapshots"]["bad"]
    texts = ["hi", "where is my order 4821377", "do you ship to [austria]", "I want a refund", "when are you open",
             "zzz qqq", "thanks, bye"]
    say_all(nats_url, [(f"browser-{i % 3}", t) for i, t in enumerate(texts)])
    expected_turns = 3 + len(texts)  # the fixture's conversation too

    wait = WebDriverWait(browser, 20)
    browser.get(f"{api['node'].http.url}/dashboard/?bot={TENANT}/{BOT}&window=1#token={api['tokens'][TENANT]}")
    wait.until(lambda d: d.find_element(By.ID, "turns-total").text == str(expected_turns))
    path = browser.find_element(By.CSS_SELECTOR, "#chart-turns path[data-series=turns_per_s]")
    assert int(path.get_attribute("data-points")) >= 1 and path.get_attribute("d").startswith("M")
    latency = browser.find_element(By.CSS_SELECTOR, "#chart-latency path[data-series=p99_ms]")
    assert int(latency.get_attribute("data-points")) >= 1
    intents = browser.find_elements(By.CSS_SELECTOR, "#intents .bar")
    assert intents and sum(int(b.text.rsplit("\n", 1)[-1].split()[-1]) for b in intents) == expected_turns
    assert browser.find_element(By.ID, "production-target").get_attribute("data-id") == good
    assert "token=" not in browser.current_url  # the token left the address bar
    fetched = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert fetched and all(url.startswith(api["node"].http.url) for url in fetched)  # nothing from elsewhere (no CDN)

    # The conversation browser opens a transcript from the event log.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#conversations li[data-id=browser-1]"))
    browser.find_element(By.CSS_SELECTOR, "#conversations li[data-id=browser-1]").click()
    wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#transcript tbody tr")) == 2)
    assert texts[1] in browser.find_element(By.ID, "transcript").text
    slots = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "#transcript tbody td.dialogue")]
    assert slots and all("order_number=4821377" in c for c in slots)  # the slot, after each turn, kept

    # Promote the other snapshot with its button, then roll back with the rollback button.
    sent = []
    browser.find_element(By.CSS_SELECTOR, f"button.promote[data-id='{bad}']").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(lambda d: d.find_element(By.ID, "production-target").get_attribute("data-id") == bad)
    assert _next_turn_snapshot(nats_url, bad, sent) == bad

    browser.find_element(By.ID, "rollback").click()
    wait.until(ec.alert_is_present()).accept()
    wait.until(lambda d: d.find_element(By.ID, "production-target").get_attribute("data-id") == good)
    assert _next_turn_snapshot(nats_url, good, sent) == good

    # The snapshot timeline marks both moves, on the charts and in the list.
    wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, "#chart-turns line.move.rollback"))
    assert browser.find_elements(By.CSS_SELECTOR, "#chart-turns line.move.promote")
    assert "rollback production" in browser.find_element(By.ID, "moves").text
    wait.until(lambda d: d.find_element(By.ID, "turns-total").text == str(expected_turns + len(sent)))
    shot = os.environ.get("BOTYARD_SCREENSHOT")
    if shot:
        Path(shot).parent.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(shot)


def _next_turn_snapshot(nats_url, wanted, sent, timeout=20.0):
    """The snapshot that answers the next turn, once the nodes have switched to ``wanted``
    (each turn sent is appended to ``sent``)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = say_all(nats_url, [("after-move", "hello")])[0]
        sent.append(reply)
        if reply.snapshot == wanted or time.monotonic() > deadline:
            return reply.snapshot
        time.sleep(0.2)
