"""The web app in a real headless Chromium (Debian's chromium + chromium-driver, through selenium):
a URL queued through the form goes through a real celery worker and redis-server, the record
appears, the reader counts reads, the overview updates live, and markup in an article stays text.

Screenshots go to test-artifacts/ (gitignored). Skipped when chromium or chromedriver is absent:
run tests/bootstrap_system.sh as root to install them.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
import redis

from tests.example_page import news_page
from tests.servers import REPO, CeleryWorker, Site, base_env
from tests.webutil import WebServer, store_record
from worker import metrics
from worker.pipeline import PIPELINE
from worker.settings import get_settings
from worker.storage import Storage

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
ARTIFACTS = REPO / "test-artifacts"
WAIT = 60  # seconds a condition may take to come true (a worker start, a pipeline run on a busy machine)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="chromium and chromium-driver are not installed (run tests/bootstrap_system.sh as root)"),
]

# Headless, and nothing that talks to the internet: no sync, updates, QUIC or background fetches,
# and every host name but 127.0.0.1 fails to resolve.
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-default-apps", "--disable-extensions", "--no-proxy-server",
    "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1",
    "--window-size=1280,1100",
]

PARAGRAPHS = [
    "The harbour authority said on Monday that pier 4 will close for repairs next spring, affecting two ferry routes.",
    "Engineers found corrosion in the pier's steel supports during an inspection in January.",
    "A spokesperson said the <script>window.__xss=1</script> tag in this sentence is part of the story, not code.",
    "Ferries will use the temporary landing at pier 6 while the work lasts, the authority said.",
]
TITLE = "Harbour pier <script>window.__xss=1</script> to close for repairs"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("browser")
    db_url = f"sqlite:///{root / 'gleaner.db'}"
    env = base_env(GLEANER_DATABASE_URL=db_url, GLEANER_DATA_DIR=str(root))
    worker = CeleryWorker(env, PIPELINE.names(), pool="threads", concurrency=4, name="browser").start()
    site = Site().start()
    storage = Storage(db_url)
    broker = redis.Redis.from_url(get_settings().redis_url)
    from worker.web.app import create_app

    # The real defaults: loopback Host names only, no token, the Celery broadcast for workers.
    web = WebServer(create_app(storage, redis_client=broker, token=None)).start()
    yield web, storage, site, broker
    web.stop()
    site.stop()
    worker.stop()
    storage.close()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_OFFLINE", "true")  # selenium must never fetch a driver or browser
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # to see script errors and CSP reports
    driver = webdriver.Chrome(options=options, service=Service(executable_path=CHROMEDRIVER))
    driver.set_page_load_timeout(WAIT)
    yield driver
    driver.quit()


def _wait(driver, condition, message: str):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, WAIT, poll_frequency=0.2).until(condition, message)


def _text(driver, css: str) -> str:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.CSS_SELECTOR, css).text


def _console_errors(driver) -> list[str]:
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def _screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


def test_queue_a_url_watch_it_arrive_and_read_it(stack, browser):
    from selenium.webdriver.common.by import By

    web, storage, site, _ = stack
    url = site.page("/news/pier-repairs.html", news_page(PARAGRAPHS, title=TITLE))

    browser.get(web.base_url + "/queue")
    browser.find_element(By.ID, "urls").send_keys(url)
    category = browser.find_element(By.ID, "category")
    category.clear()
    category.send_keys("harbour")
    browser.find_element(By.ID, "queue-submit").click()

    # The jobs page follows the URL through the pipeline by itself, without a reload.
    _wait(browser, lambda d: "/jobs?ids=" in d.current_url, "the form did not lead to the jobs page")
    link = _wait(browser, lambda d: d.find_elements(By.CSS_SELECTOR, "#jobs a.open-record"),
                 "the queued URL never finished: " + _text(browser, "#jobs"))[0]
    assert _text(browser, '#jobs [data-field="state"]') == "done"
    record_id = link.get_attribute("href").rsplit("/", 1)[1]

    browser.get(web.base_url + "/records?source=harbour")
    rows = browser.find_elements(By.CSS_SELECTOR, "#records tbody tr[data-id]")
    assert [r.get_attribute("data-id") for r in rows] == [record_id]
    assert rows[0].find_element(By.CSS_SELECTOR, "a").text == TITLE
    rows[0].find_element(By.CSS_SELECTOR, "a").click()

    _wait(browser, lambda d: d.current_url.endswith(f"/records/{record_id}"), "the title did not open the reader")
    assert _text(browser, "#title") == TITLE  # the markup shows as text...
    assert browser.execute_script("return window.__xss") is None  # ...and never ran
    body = [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#body p")]
    assert body == PARAGRAPHS
    assert _text(browser, "#read-count") == "1"
    assert _text(browser, "#record-id") == record_id
    assert _text(browser, "#similar h2") == "Similar Readings (0 items)"
    headings = [h.text for h in browser.find_elements(By.CSS_SELECTOR, "article.reader h2")]
    assert headings == ["Similar Readings (0 items)", "Summary", "Statistics", "Details"]
    shot = _screenshot(browser, "reader.png")
    assert shot.stat().st_size > 10_000

    browser.refresh()
    assert _text(browser, "#read-count") == "2"
    assert _text(browser, "#last-read") != "never"
    assert storage.get_record(record_id).read_count == 2
    assert _console_errors(browser) == []


def test_markup_in_a_stored_record_stays_text_in_the_browser(stack, browser):
    from selenium.common.exceptions import NoAlertPresentException
    from selenium.webdriver.common.by import By

    web, storage, _, _ = stack
    record_id = store_record(storage, title="<script>alert('title')</script>Quoted markup", category="markup",
                             body=["<script>alert('body')</script>", "<img src=x onerror=\"alert('img')\">"],
                             url="javascript:alert('url')")
    browser.get(f"{web.base_url}/records/{record_id}")
    assert _text(browser, "#title") == "<script>alert('title')</script>Quoted markup"
    assert [p.text for p in browser.find_elements(By.CSS_SELECTOR, "#body p")] == [
        "<script>alert('body')</script>", "<img src=x onerror=\"alert('img')\">"]
    assert browser.find_elements(By.CSS_SELECTOR, "article.reader img") == []
    assert browser.find_elements(By.CSS_SELECTOR, "#details a[href^='javascript']") == []
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text  # noqa: B018 - raises when no alert is open


def test_overview_updates_live_and_lists_the_worker(stack, browser):
    from selenium.webdriver.common.by import By

    web, storage, _, broker = stack
    browser.get(web.base_url + "/")
    # The worker answers the broadcast; the list is refreshed by the page's own polling.
    _wait(browser, lambda d: "browser@" in _text(d, "#workers"), "the worker never showed as online")
    cell = '#stages tr[data-stage="store"] [data-field="success"]'
    before = int(_text(browser, cell))
    for _ in range(3):
        metrics.record_stage(broker, "store", "success", 0.05)
    # No reload: the number changes because the page polls /api/stats.
    _wait(browser, lambda d: int(_text(d, cell)) == before + 3, "the stage counter never updated")
    assert browser.find_elements(By.CSS_SELECTOR, "#throughput rect")  # the chart drew bars
    assert browser.find_element(By.ID, "flower-link").get_attribute("href") == "http://127.0.0.1:5555/"
    _screenshot(browser, "overview.png")
    assert _console_errors(browser) == []  # the page's script ran without errors or CSP refusals
