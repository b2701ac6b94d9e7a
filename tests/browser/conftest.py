"""The owners' pages in a real browser: Debian's headless Chromium through its own
chromedriver (Selenium; Selenium Manager never downloads anything), at a phone's size,
in Chinese; one browser with JavaScript and one without for the whole session.

``make browser`` installs Chromium, ChromeDriver and the CJK fonts with apt-get and
unpacks the pinned axe-core into ``.cache/``. Every page state a test reaches is
screenshotted to ``test-artifacts/screenshots/`` and checked with axe-core: a
``serious`` or ``critical`` violation fails the test (every finding is written beside
the screenshots, in ``test-artifacts/axe/``).
"""
import json
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.fixtures import running_gateway, vhost_service_config
from tests.helpers import ROOT

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
AXE_SCRIPT = ROOT / "scripts" / "ensure-browser.sh"
ARTIFACTS = ROOT / "test-artifacts"
SCREENSHOTS = ARTIFACTS / "screenshots"
AXE_REPORTS = ARTIFACTS / "axe"
PHONE = {"width": 390, "height": 844, "pixelRatio": 2}
# A phone's browser (WeChat's in-app browser says much the same, plus "MicroMessenger")
USER_AGENT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
              "Chrome/156.0.0.0 Mobile Safari/537.36")
FAILING_IMPACTS = ("serious", "critical")
WAIT_SECONDS = 15


@pytest.fixture(scope="package")
def gateway(request, vhost_pipeline, tmp_path_factory):
    """tests/fixtures.py's ``gateway``, once for the whole browser suite rather than once
    a module: starting the five services costs more than most journeys (each module makes
    estates and users of its own)."""
    for config in vhost_service_config(request, vhost_pipeline):
        yield from running_gateway(config, tmp_path_factory)


def _axe_version() -> str:
    return re.search(r"^AXE_CORE_VERSION=(\S+)$", AXE_SCRIPT.read_text(), re.MULTILINE).group(1)


@pytest.fixture(scope="session")
def axe_source():
    """axe.min.js at the version ``scripts/ensure-browser.sh`` pins (fetched if missing)."""
    path = ROOT / ".cache" / "axe-core" / _axe_version() / "axe.min.js"
    if not path.is_file():
        subprocess.run([str(AXE_SCRIPT), "--axe"], check=True, cwd=ROOT)
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="session")
def artifacts():
    for folder in (SCREENSHOTS, AXE_REPORTS):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    return ARTIFACTS


def emulate_phone(driver):
    """A phone: its width, pixel density, user agent and touch screen, set through the
    DevTools protocol (chromedriver's own mobileEmulation hangs on a click when the page's
    JavaScript is off). Again before every test: one may have put on a desk's screen."""
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
        "width": PHONE["width"], "height": PHONE["height"],
        "deviceScaleFactor": PHONE["pixelRatio"], "mobile": True})
    driver.execute_cdp_cmd("Emulation.setUserAgentOverride", {
        "userAgent": USER_AGENT, "acceptLanguage": "zh-CN,zh", "platform": "Android"})
    driver.execute_cdp_cmd("Emulation.setTouchEmulationEnabled", {
        "enabled": True, "maxTouchPoints": 5})


def _chromium(javascript: bool):
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.fail("Chromium and ChromeDriver are not installed: run `make browser` "
                    "(Debian's chromium, chromium-driver, fonts-noto-cjk)", pytrace=False)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                     "--disable-gpu", "--lang=zh-CN", "--no-first-run",
                     "--disable-extensions", "--hide-scrollbars",
                     f"--window-size={PHONE['width']},{PHONE['height']}"):
        options.add_argument(argument)
    prefs = {"intl.accept_languages": "zh-CN,zh"}
    if not javascript:
        prefs["profile.managed_default_content_settings.javascript"] = 2
    options.add_experimental_option("prefs", prefs)
    # the driver is named, so Selenium Manager has nothing to look for (or download)
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    return driver


@pytest.fixture(scope="session")
def _driver_js():
    driver = _chromium(javascript=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="session")
def _driver_nojs():
    driver = _chromium(javascript=False)
    yield driver
    driver.quit()


@pytest.fixture
def browser(_driver_js, axe_source, artifacts, request):
    """The phone with JavaScript on, fresh for each test (no cookies, a blank page)."""
    page = Browser(_driver_js, "js", axe_source, request.node.name)
    page.reset()
    return page


@pytest.fixture
def browser_nojs(_driver_nojs, axe_source, artifacts, request):
    """The same phone with JavaScript switched off (the pages must work without it)."""
    page = Browser(_driver_nojs, "nojs", axe_source, request.node.name)
    page.reset()
    return page


class Browser:
    """A thin layer over the WebDriver: what a test of a page does, in its words."""

    def __init__(self, driver, profile, axe_source, test_name):
        self.driver, self.profile, self.axe_source = driver, profile, axe_source
        self.test_name = re.sub(r"^test_", "", test_name)
        self.javascript = profile == "js"

    def reset(self):
        self.driver.get("about:blank")
        self.driver.execute_cdp_cmd("Network.clearBrowserCookies", {})   # every site's
        emulate_phone(self.driver)

    # finding and doing ----------------------------------------------------------------

    def open(self, url):
        self.driver.get(url)
        return self

    def reload(self):
        self.driver.refresh()
        return self

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def find_all(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def text(self, css="body"):
        return self.find(css).text

    def click(self, css):
        element = self.find(css)
        element.click()
        return element

    def type(self, css, text):
        element = self.find(css)
        element.clear()
        element.send_keys(text)
        return element

    def wait_for(self, predicate, message, timeout=WAIT_SECONDS):
        from selenium.common.exceptions import (
            NoSuchElementException,
            StaleElementReferenceException,
            WebDriverException,
        )

        deadline = time.monotonic() + timeout
        while True:
            try:
                result = predicate()
            except (StaleElementReferenceException, NoSuchElementException):
                result = None        # the page changed under the question: ask again
            except WebDriverException as error:
                # Chromium's word for an element of a page being replaced by the next one
                if "does not belong to the document" not in str(error):
                    raise
                result = None
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {message} on "
                                     f"{self.driver.current_url}")
            time.sleep(0.1)

    def wait_for_heading(self, text, timeout=WAIT_SECONDS):
        self.wait_for(lambda: any(text in h.text for h in self.find_all("h1")),
                      f"the heading {text!r}", timeout)

    def log_in(self, url, username, password):
        """Open a console page without a session: the login page; log in there (the
        console then sends the browser on to ``url``)."""
        self.open(url)
        self.wait_for_heading("员工登录")
        self.type("#username", username)
        self.type("#password", password)
        self.click("#login-submit")

    @property
    def url(self):
        return self.driver.current_url

    @property
    def title(self):
        return self.driver.title

    # looking at the page --------------------------------------------------------------

    def shot(self, state, screen=PHONE):
        """The whole page (not only the screen's height) at the ``screen``'s width (a
        phone's unless said), as a PNG."""
        import base64

        name = f"{self.test_name}--{state}--{self.profile}.png"
        metrics = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        picture = self.driver.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": screen["width"],
                     "height": max(size["height"], screen["height"]), "scale": 1}})
        path = SCREENSHOTS / name
        path.write_bytes(base64.b64decode(picture["data"]))
        return path

    def check(self, state):
        """Screenshot the page, then run axe-core on it: no serious or critical finding."""
        self.shot(state)
        self.assert_accessible(state)

    def assert_accessible(self, state):
        # Injected through the WebDriver (the DevTools protocol), which the pages' CSP
        # (script-src 'self', no inline script) does not apply to — and which works with
        # JavaScript switched off for the page itself.
        self.driver.execute_script(self.axe_source + "\n;return true;")
        if not self.javascript:
            # With JavaScript off for the page, promises still settle but timers never
            # fire, and axe-core waits on them: run them as microtasks (the page has no
            # script of its own running that this could disturb).
            self.driver.execute_script("""
                window.setTimeout = function (callback) {
                    var args = Array.prototype.slice.call(arguments, 2);
                    Promise.resolve().then(function () { callback.apply(null, args); });
                    return 0;
                };
                window.clearTimeout = function () {};""")
        result = self.driver.execute_async_script("""
            var done = arguments[arguments.length - 1];
            function brief(v) {
                return {id: v.id, impact: v.impact, help: v.help, helpUrl: v.helpUrl,
                        nodes: v.nodes.map(function (n) {
                            return {target: n.target, html: n.html,
                                    summary: n.failureSummary}; })}; }
            axe.run(document, {resultTypes: ['violations', 'incomplete']})
              .then(function (r) { done({violations: r.violations.map(brief),
                                         incomplete: r.incomplete.map(brief),
                                         passes: r.passes.length}); })
              .catch(function (e) { done({error: String(e)}); });
        """)
        assert "error" not in result, f"axe-core failed on {self.url}: {result['error']}"
        violations = result["violations"]
        report = AXE_REPORTS / f"{self.test_name}--{state}--{self.profile}.json"
        # what axe could not decide (a person looks: "incomplete") is kept beside them
        report.write_text(json.dumps({
            "url": _without_token(self.url), "rules_passed": result["passes"],
            "violations": violations, "incomplete": result["incomplete"]},
            ensure_ascii=False, indent=1), encoding="utf-8")
        failing = [v for v in violations if v["impact"] in FAILING_IMPACTS]
        assert not failing, f"axe-core on {state} ({self.profile}):\n" + "\n".join(
            f"  {v['impact']}: {v['id']} - {v['help']}\n"
            + "".join(f"      {n['target']}: {n['summary']}\n" for n in v["nodes"][:5])
            for v in failing)
        return violations


def _without_token(url):
    return re.sub(r"(/[src]/)[^/?#]+", r"\1<token>", url)
