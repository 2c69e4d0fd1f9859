"""Headless Chromium for the report test, driven through chromedriver's W3C WebDriver HTTP API.

The few calls the test needs (open a page, run a script, read the console log) are plain JSON over
HTTP, spoken here with urllib rather than adding selenium and its dependencies to the lock file.
Debian's `chromium` and `chromium-driver` packages provide the two binaries (`.ci/run` installs them).
"""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")


def missing_reason() -> str | None:
    """Why the browser test cannot run here, or None."""
    if not any(shutil.which(name) for name in CHROMIUM_NAMES):
        return "no Chromium binary (Debian: apt-get install chromium chromium-driver; .ci/run installs them)"
    if not shutil.which("chromedriver"):
        return "no chromedriver (Debian: apt-get install chromium-driver; .ci/run installs it)"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Browser:
    """One headless Chromium session; a context manager that ends the session and chromedriver."""

    def __init__(self, timeout: float = 30.0):
        self.port = _free_port()
        self.timeout = timeout
        self.driver = subprocess.Popen(["chromedriver", f"--port={self.port}"], stdout=subprocess.DEVNULL,
                                       stderr=subprocess.DEVNULL)
        binary = next(shutil.which(name) for name in CHROMIUM_NAMES if shutil.which(name))
        deadline = time.monotonic() + timeout
        while True:
            try:
                self._call("GET", "/status")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    self.driver.kill()
                    raise RuntimeError(f"chromedriver did not answer on port {self.port}") from None
                time.sleep(0.1)
        options = {"binary": binary, "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                                              "--disable-dev-shm-usage", "--window-size=1400,1000"]}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options,
                                                 "goog:loggingPrefs": {"browser": "ALL"}}}}
        self.session = self._call("POST", "/session", caps)["sessionId"]

    def _call(self, method: str, path: str, body=None):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return json.loads(response.read() or b"{}").get("value")
        except urllib.error.HTTPError as err:
            raise RuntimeError(f"WebDriver {method} {path}: {err.read().decode(errors='replace')[:500]}") from None

    def _session(self, method: str, path: str, body=None):
        return self._call(method, f"/session/{self.session}{path}", body)

    def get(self, url: str) -> None:
        self._session("POST", "/url", {"url": url})

    def script(self, source: str, *args):
        """Run `source` (a function body; `arguments` holds args) in the page; returns its value."""
        return self._session("POST", "/execute/sync", {"script": source, "args": list(args)})

    def wait_for(self, source: str, *args, what: str = "condition"):
        deadline = time.monotonic() + self.timeout
        while True:
            value = self.script(source, *args)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.1)

    def console(self) -> list[dict]:
        """The browser console's entries since the last call (level, message)."""
        return self._session("POST", "/se/log", {"type": "browser"}) or []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        try:
            self._session("DELETE", "")
        finally:
            self.driver.terminate()
            try:
                self.driver.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.driver.kill()


def check_report(report, expected_categories, expected_paths, scratch) -> None:
    """Open a Snakemake report in headless Chromium: it loads, lists exactly `expected_categories`
    and at least `expected_paths`, shows every image (decoded, non-empty) and every HTML page (an
    iframe; each page, opened on its own from `scratch`, renders a table), and logs no console error."""
    with Browser() as browser:
        browser.get(Path(report).resolve().as_uri())
        browser.wait_for("return typeof app !== 'undefined' && document.querySelector('#app').innerText.length > 0",
                         what="the report's app to render")
        categories = browser.script("return categories")
        assert set(categories) == set(expected_categories), sorted(categories)
        listed = {path: (category, sub) for category, subs in categories.items() for sub, paths in subs.items()
                  for path in paths}
        assert set(expected_paths) <= set(listed), sorted(set(expected_paths) - set(listed))
        pages = {}
        for path, (category, sub) in sorted(listed.items()):
            # as a user: back to the menu, then the category and its subcategory (the list is built anew)
            browser.script("app.setView({navbarMode: 'menu'})")
            browser.wait_for("return document.body.innerText.includes(arguments[0])", category, what="the menu")
            browser.script("app.setView({navbarMode: 'subcategory', category: arguments[0], subcategory: arguments[1]})",
                           category, sub)
            browser.wait_for("return document.body.innerText.includes(arguments[0])", path,
                             what=f"{path} listed under {category} / {sub}")
            kind = "img" if path.endswith(".png") else "html"
            uri = browser.script("const uri = results[arguments[0]].data_uri;"
                                 "app.setView({content: arguments[1], contentPath: uri, resultPath: arguments[0]});"
                                 "return uri", path, kind)
            if kind == "img":
                size = browser.wait_for("const img = [...document.images].find(i => i.src === arguments[0]);"
                                        "return img && img.complete && [img.naturalWidth, img.naturalHeight]",
                                        uri, what=f"{path} shown")
                assert min(size) > 100, (path, size)
            else:
                browser.wait_for("return [...document.querySelectorAll('iframe')].some(f => f.src === arguments[0])",
                                 uri, what=f"{path} shown")
                pages[path] = base64.b64decode(uri.split("base64,", 1)[1]).decode()
        errors = [entry for entry in browser.console() if entry.get("level") == "SEVERE"]
        assert not errors, errors
        # Each table page on its own (a data: iframe is cross-origin to the test): it renders a table.
        for path, text in pages.items():
            page = Path(scratch) / Path(path).name
            page.write_text(text)
            browser.get(page.as_uri())
            rows = browser.wait_for("return document.querySelectorAll('table tbody tr').length", what=f"{path}'s rows")
            assert rows > 0 and browser.script("return document.querySelectorAll('table th').length") > 0, path
        errors = [entry for entry in browser.console() if entry.get("level") == "SEVERE"]
        assert not errors, errors
