#!/usr/bin/env python3
"""Browser test of the playground (ui/) in headless Chromium.

    python3 scripts/ui-test.py --base http://127.0.0.1:8080 [--token T]
        [--screenshots docs/screenshots] [--files-storage] [--no-pull] [--static]

Against a dispatcher that serves /ui/ it walks the main flow: token dialog
(with --token), create the collection `demo` with GREETING=hi, create
`hello` (version 1) from the editor, invoke it and read the output and the
log line on the page, edit and save (version 2), edit the collection's env,
invoke version 1 pinned and see v1's output, view version 1's source, edit
the function's env and see its value in the next run's output, pull a new
source from a URL (served by this script on 127.0.0.1, so the dispatcher
needs LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE=true; --no-pull skips it),
save a syntax error and see SYNTAX_ERROR, an API error in the banner, the
invoke history, delete the function, and no CSP violation in the console.

The pinned-version checks need a storage that keeps every version (db_s3,
as scripts/ui-browser-test.sh runs it). With --files-storage they expect
VERSION_NOT_AVAILABLE instead (that storage keeps only the current
version). With --static (ui/ served by a plain file server, no API) it only
checks that the page renders, the editor loads and the failing API calls
are shown as errors.

Prints one line per check and `N passed, N failed`; exits 0 only when every
check passed. Needs chromium, chromium-driver and selenium
(scripts/install-ui-test-deps.sh).
"""

import argparse
import http.server
import json
import os
import shutil
import sys
import threading
import time

os.environ.setdefault("SE_OFFLINE", "true")  # never let Selenium Manager download anything

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

HELLO_V1 = """export async function handler(input, context) {
  console.log('hello from v1', input.name);
  return { ok: true, data: { greeting: process.env.GREETING, name: input.name } };
}
"""
HELLO_V2 = """export async function handler(input, context) {
  console.log('hello from v2', input.name);
  return { ok: true, data: { greeting: process.env.GREETING, name: input.name, edited: true } };
}
"""
PULLED = """export async function handler(input, context) {
  console.log('hello from the pulled source', input.name);
  return { ok: true, data: { greeting: process.env.GREETING, name: input.name, pulled: true } };
}
"""
BROKEN = "export async function handler(input {\n  return { ok: true };\n"
V1_OUTPUT = {"ok": True, "data": {"greeting": "hi", "name": "Ada"}}
V2_OUTPUT = {"ok": True, "data": {"greeting": "hi", "name": "Ada", "edited": True}}
# The function's env wins over its collection's (docs/api.md section 6.4).
FUNCTION_GREETING = "from the function env"


class SourceServer:
    """Serves PULLED at /hello.mjs on 127.0.0.1 (a port of its own) for the
    pull check, in a daemon thread; anything else is 404."""

    def __init__(self):
        body = PULLED.encode()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's naming)
                if self.path != "/hello.mjs":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/javascript; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/hello.mjs"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class Run:
    def __init__(self, args):
        self.args = args
        self.passed = 0
        self.failed = 0
        self.driver = None

    # -- reporting -----------------------------------------------------------

    def check(self, name, fn):
        """Runs one check: fn() returns None/True (pass) or raises / returns
        a string (fail, with the reason)."""
        try:
            outcome = fn()
            ok = outcome is None or outcome is True
            reason = "" if ok else str(outcome)
        except TimeoutException as e:
            ok, reason = False, f"timed out{': ' + e.msg if e.msg else ''}"
        except (AssertionError, WebDriverException, ValueError, KeyError) as e:
            ok, reason = False, f"{type(e).__name__}: {e}".strip()
        if ok:
            self.passed += 1
            print(f"ok    {name}", flush=True)
        else:
            self.failed += 1
            banner = self.banner_text()
            extra = f" [error banner: {banner}]" if banner else ""
            print(f"FAIL  {name}: {reason}{extra}", flush=True)
        return ok

    # -- browser helpers -----------------------------------------------------

    def start(self):
        opts = webdriver.ChromeOptions()
        opts.binary_location = self.args.chromium
        for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1280,800", "--no-first-run", "--disable-extensions"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        self.driver = webdriver.Chrome(service=Service(executable_path=self.args.chromedriver), options=opts)
        self.viewport(1280, 800)

    def viewport(self, width, height):
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def by_id(self, id_):
        return self.driver.find_element(By.ID, id_)

    def css(self, selector):
        return self.driver.find_elements(By.CSS_SELECTOR, selector)

    def wait(self, cond, timeout=None, message=""):
        return WebDriverWait(self.driver, timeout or self.args.timeout, poll_frequency=0.1).until(
            lambda d: cond(), message)

    def text(self, id_):
        return self.by_id(id_).text.strip()

    def visible(self, id_):
        els = self.driver.find_elements(By.ID, id_)
        return bool(els) and els[0].is_displayed()

    def banner_text(self):
        try:
            if self.driver and self.visible("error-banner"):
                return f"{self.text('error-code')} {self.text('error-message')}"
        except WebDriverException:
            pass
        return ""

    def dismiss_error(self):
        if self.visible("error-banner"):
            self.by_id("error-dismiss").click()

    def type_into(self, id_, value):
        el = self.by_id(id_)
        el.clear()
        if value:
            el.send_keys(value)
        return el

    def open_details(self, id_):
        det = self.by_id(id_)
        if det.get_attribute("open") is None:
            det.find_element(By.TAG_NAME, "summary").click()

    def set_source(self, source):
        self.driver.execute_script("window.playgroundEditor.setValue(arguments[0]);", source)

    def get_source(self):
        return self.driver.execute_script("return window.playgroundEditor.getValue();")

    def shot(self, name):
        if not self.args.screenshots:
            return
        os.makedirs(self.args.screenshots, exist_ok=True)
        path = os.path.join(self.args.screenshots, f"playground-{name}.png")
        self.driver.save_screenshot(path)
        print(f"      screenshot {path}", flush=True)

    def invoke_and_wait(self, use_keyboard=False):
        """Clicks Invoke (or Ctrl+Enter in the input) and waits for a new
        history entry; returns the shown status and error code."""
        before = self.by_id("invoke-result").get_attribute("data-seq")
        if use_keyboard:
            self.by_id("invoke-input").send_keys(Keys.CONTROL, Keys.ENTER)
        else:
            self.by_id("invoke-button").click()
        self.wait(lambda: self.by_id("invoke-result").get_attribute("data-seq") != before,
                  message="no invoke result appeared")
        return self.text("invoke-status"), self.text("invoke-error-code")

    def output_json(self):
        return json.loads(self.by_id("invoke-output").get_attribute("textContent"))

    def csp_violations(self):
        try:
            logs = self.driver.get_log("browser")
        except WebDriverException:
            return []
        return [e["message"] for e in logs if "Content Security Policy" in e.get("message", "")]

    # -- the flow ------------------------------------------------------------

    def page_loads(self):
        self.driver.get(self.args.base.rstrip("/") + "/ui/")
        self.wait(lambda: self.driver.execute_script(
            "return document.readyState === 'complete' && !!window.playgroundEditor"),
            message="the page or its editor did not load")
        assert self.css("#editor .CodeMirror"), "CodeMirror did not render in #editor"

    def token_flow(self):
        self.wait(lambda: self.visible("token-dialog"), message="the token dialog did not open")
        self.type_into("token-input", self.args.token)
        self.by_id("token-submit").click()
        self.wait(lambda: not self.visible("token-dialog"), message="the token dialog did not close")
        self.wait(lambda: self.text("status-line") == "ready", message="the page did not get ready")
        stored = self.driver.execute_script("return sessionStorage.getItem('lowcode-faas.token');")
        assert stored == self.args.token, "the token is not in sessionStorage"

    def ready(self):
        self.wait(lambda: self.text("status-line") == "ready" or self.visible("error-banner"),
                  message="the page did not get ready")
        assert not self.visible("error-banner"), f"error on load: {self.banner_text()}"
        assert self.css("[data-testid=collection-item][data-path='']"), "no root collection item"

    def create_collection(self):
        name = self.args.collection
        self.open_details("new-collection")
        self.type_into("new-collection-path", name)
        self.type_into("new-collection-env", "GREETING=hi")
        self.by_id("create-collection").click()
        self.wait(lambda: self.text("current-collection") == name or self.visible("error-banner"),
                  message="the collection was not selected")
        if self.visible("error-banner") and self.text("error-code") == "COLLECTION_EXISTS":
            # A rerun against the same server: reuse it, set its env.
            self.dismiss_error()
            self.css(f"[data-testid=collection-item][data-path='{name}']")[0].click()
            self.wait(lambda: self.text("current-collection") == name)
            self.open_details("collection-env-box")
            self.type_into("collection-env", "GREETING=hi")
            self.by_id("save-collection-env").click()
            self.wait(lambda: "saved" in self.text("status-line") or self.visible("error-banner"))
        assert not self.visible("error-banner"), self.banner_text()
        assert self.css(f"[data-testid=collection-item][data-path='{name}']"), "not in the tree"

    def create_function(self):
        self.set_source(HELLO_V1)
        self.type_into("new-function-name", "hello")
        self.by_id("create-function").click()
        self.wait(lambda: self.text("function-title").endswith("/hello") or self.visible("error-banner"),
                  message="the new function did not open")
        assert not self.visible("error-banner"), self.banner_text()
        assert self.css("[data-testid=function-item][data-name=hello]"), "hello is not listed"
        self.v1 = int(self.text("function-version").lstrip("v"))
        if self.v1 != 1:
            print(f"      note: hello existed already; its first version here is v{self.v1}")

    def bad_input_is_refused(self):
        before = len(self.css("[data-testid=history-item]"))
        self.type_into("invoke-input", "{bad json")
        self.by_id("invoke-button").click()
        self.wait(lambda: self.visible("invoke-input-error"), message="no input error shown")
        assert "JSON" in self.text("invoke-input-error")
        assert len(self.css("[data-testid=history-item]")) == before, "a request was sent anyway"

    def invoke_v1(self):
        self.type_into("invoke-input", '{"name": "Ada"}')
        status, code = self.invoke_and_wait(use_keyboard=True)
        assert status == "success", f"status {status!r} code {code!r} {self.text('invoke-error-message')}"
        assert self.text("invoke-http-status") == "200"
        out = self.output_json()
        assert out == V1_OUTPUT, f"output {out}"
        assert self.text("invoke-duration").endswith("ms")
        assert self.text("invoke-start-kind") in ("cold", "prewarm", "warm"), self.text("invoke-start-kind")

    def log_line_shown(self):
        lines = [e.text for e in self.css("#invoke-logs [data-testid=log-line]")]
        note = self.text("invoke-logs-note")
        assert any("hello from v1 Ada" in line for line in lines), f"log lines: {lines} {note}".strip()

    def save_v2(self):
        self.set_source(HELLO_V2)
        # Ctrl+S from inside the editor.
        self.css("#editor .CodeMirror textarea")[0].send_keys(Keys.CONTROL, "s")
        want = f"v{self.v1 + 1}"
        self.wait(lambda: self.text("function-version") == want or self.visible("error-banner"),
                  message=f"the version did not become {want}")
        assert not self.visible("error-banner"), self.banner_text()
        self.open_details("versions-box")
        self.wait(lambda: len(self.css("[data-testid=version-item]")) >= (1 if self.args.files_storage else 2),
                  message="the versions list did not grow")

    def invoke_current_is_v2(self):
        status, _ = self.invoke_and_wait()
        assert status == "success", status
        assert self.output_json() == V2_OUTPUT, f"output {self.output_json()}"

    def collection_env_edit(self):
        self.open_details("collection-env-box")
        for value in ("hey", "hi"):
            self.type_into("collection-env", f"GREETING={value}")
            self.by_id("save-collection-env").click()
            self.wait(lambda: "saved" in self.text("status-line") or self.visible("error-banner"),
                      message="the env was not saved")
            assert not self.visible("error-banner"), self.banner_text()
            if value == "hey":
                status, _ = self.invoke_and_wait()
                assert status == "success", status
                greeting = self.output_json()["data"]["greeting"]
                assert greeting == "hey", f"greeting {greeting!r}"

    def invoke_pinned_v1(self):
        self.type_into("invoke-version", str(self.v1))
        status, code = self.invoke_and_wait()
        self.type_into("invoke-version", "")
        if self.args.files_storage:
            assert code == "VERSION_NOT_AVAILABLE", f"code {code!r}"
            self.dismiss_error()
            return
        assert status == "success", f"status {status!r} code {code!r} {self.text('invoke-error-message')}"
        assert self.output_json() == V1_OUTPUT, f"output {self.output_json()}"
        assert self.text("invoke-deployment") == f"v{self.v1}", self.text("invoke-deployment")
        lines = [e.text for e in self.css("#invoke-logs [data-testid=log-line]")]
        assert any("hello from v1 Ada" in line for line in lines), f"log lines: {lines}"

    def view_v1(self):
        if self.args.files_storage:
            return  # only the current version is listed
        self.css(f"[data-testid=version-item][data-version='{self.v1}']")[0].click()
        self.wait(lambda: self.visible("viewing-version") or self.visible("error-banner"))
        assert not self.visible("error-banner"), self.banner_text()
        assert self.get_source() == HELLO_V1, "the editor does not show version 1"
        self.shot("version")
        self.by_id("back-to-current").click()
        assert self.get_source() == HELLO_V2, "back to current did not restore the source"

    def current_version(self):
        return int(self.text("function-version").lstrip("v"))

    def function_env_edit(self):
        before = self.current_version()
        self.type_into("function-env", f"GREETING={FUNCTION_GREETING}")
        self.by_id("save-function").click()
        want = f"v{before + 1}"
        self.wait(lambda: self.text("function-version") == want or self.visible("error-banner"),
                  message=f"the version did not become {want}")
        assert not self.visible("error-banner"), self.banner_text()
        shown = self.by_id("function-env").get_attribute("value")
        assert shown == f"GREETING={FUNCTION_GREETING}", f"env box after saving: {shown!r}"
        assert self.get_source() == HELLO_V2, "saving the env changed the source"
        status, code = self.invoke_and_wait()
        assert status == "success", f"status {status!r} code {code!r}"
        out = self.output_json()
        assert out["data"]["greeting"] == FUNCTION_GREETING, f"output {out}"
        self.shot("function-env")

    def pull_from_url(self):
        before = self.current_version()
        self.open_details("pull-box")
        self.type_into("pull-url", self.source_server.url)
        self.by_id("pull-button").click()
        want = f"v{before + 1}"
        self.wait(lambda: self.text("function-version") == want or self.visible("error-banner"),
                  message=f"the version did not become {want}")
        assert not self.visible("error-banner"), self.banner_text()
        assert self.get_source() == PULLED, "the editor does not show the pulled source"
        status, code = self.invoke_and_wait()
        assert status == "success", f"status {status!r} code {code!r} {self.text('invoke-error-message')}"
        out = self.output_json()
        # A pull keeps the function's env.
        want_out = {"ok": True, "data": {"greeting": FUNCTION_GREETING, "name": "Ada", "pulled": True}}
        assert out == want_out, f"output {out}"
        lines = [e.text for e in self.css("#invoke-logs [data-testid=log-line]")]
        assert any("hello from the pulled source Ada" in line for line in lines), f"log lines: {lines}"

    def syntax_error(self):
        self.set_source(BROKEN)
        want = f"v{self.current_version() + 1}"
        self.by_id("save-function").click()
        self.wait(lambda: self.text("function-version") == want or self.visible("error-banner"),
                  message=f"the version did not become {want}")
        status, code = self.invoke_and_wait()
        assert status == "failed", status
        assert code == "SYNTAX_ERROR", code
        assert "SyntaxError" in self.text("invoke-error-message"), self.text("invoke-error-message")

    def history(self):
        n = len(self.css("[data-testid=history-item]"))
        assert 3 <= n <= 5, f"{n} history items"

    def api_error_banner(self):
        self.open_details("new-collection")
        self.type_into("new-collection-path", "Bad Path!")
        self.type_into("new-collection-env", "")
        self.by_id("create-collection").click()
        self.wait(lambda: self.visible("error-banner"), message="no error banner")
        assert self.text("error-code") == "INVALID_COLLECTION_PATH", self.text("error-code")
        assert self.text("error-message"), "no message"
        self.shot("error")
        self.dismiss_error()

    def delete_function(self):
        self.by_id("delete-function").click()
        self.by_id("confirm-delete-yes").click()
        self.wait(lambda: not self.css("[data-testid=function-item][data-name=hello]"),
                  message="hello is still listed")
        assert not self.visible("error-banner"), self.banner_text()

    def mobile(self):
        self.viewport(390, 844)
        time.sleep(0.3)  # let layout settle before the picture (not a synchronisation)
        width = self.driver.execute_script("return document.documentElement.scrollWidth")
        self.shot("mobile")
        self.viewport(1280, 800)
        assert width <= 391, f"horizontal overflow: the page is {width}px wide at 390px"

    def no_csp_violation(self):
        v = self.csp_violations()
        assert not v, "; ".join(v[:3])

    def static_errors_shown(self):
        self.wait(lambda: self.visible("error-banner"), message="the failed API call is not shown")
        assert self.text("error-code"), "no code in the error banner"
        assert self.text("error-message"), "no message in the error banner"

    def main(self):
        c = self.check
        try:
            self.start()
        except WebDriverException as e:
            print(f"FAIL  start headless Chromium: {e.msg}")
            return 1
        self.source_server = None if self.args.static or self.args.no_pull else SourceServer()
        try:
            if not c("page /ui/ loads with the CodeMirror editor", self.page_loads):
                return self.finish()
            if self.args.static:
                c("API errors are shown with code and message", self.static_errors_shown)
                self.shot("static")
                c("readable at 390 px (no horizontal overflow)", self.mobile)
                return self.finish()
            if self.args.token:
                c("401 asks for the token; it is kept in sessionStorage", self.token_flow)
            c("collections load", self.ready)
            self.shot("home")
            c(f"create collection {self.args.collection} with GREETING=hi", self.create_collection)
            c("create function hello (version 1) from the editor", self.create_function)
            c("invalid JSON input is refused before sending", self.bad_input_is_refused)
            c("invoke (Ctrl+Enter) shows status, output, duration, start kind", self.invoke_v1)
            c("the handler's log line is shown", self.log_line_shown)
            self.shot("invoke")
            c("edit and save (Ctrl+S) makes version 2", self.save_v2)
            c("invoke runs version 2", self.invoke_current_is_v2)
            c("edit the collection's env; the next run sees it", self.collection_env_edit)
            c("invoke with version 1 pinned" + (" (VERSION_NOT_AVAILABLE)" if self.args.files_storage else ""),
              self.invoke_pinned_v1)
            if not self.args.files_storage:
                c("view version 1 read-only (v1's source), back to current", self.view_v1)
            c("edit the function's env; the next run sees it", self.function_env_edit)
            if not self.args.no_pull:
                c("pull a new source from a URL; the next run runs it", self.pull_from_url)
            c("a syntax error shows SYNTAX_ERROR", self.syntax_error)
            self.shot("syntax-error")
            c("the last invokes are listed (at most 5)", self.history)
            c("an API error shows its code and message", self.api_error_banner)
            c("delete the function", self.delete_function)
            c("readable at 390 px (no horizontal overflow)", self.mobile)
            c("no CSP violation in the console", self.no_csp_violation)
        finally:
            self.driver.quit()
            if self.source_server:
                self.source_server.close()
        return self.finish()

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        return 0 if self.failed == 0 and self.passed > 0 else 1


def main():
    ap = argparse.ArgumentParser(description="Browser test of the lowcode-faas playground.")
    ap.add_argument("--base", required=True, help="http://127.0.0.1:PORT of the dispatcher")
    ap.add_argument("--token", help="the API token; the page must ask for it")
    ap.add_argument("--screenshots", metavar="DIR", help="write playground-*.png here")
    ap.add_argument("--collection", default="demo", help="collection to create (default demo)")
    ap.add_argument("--files-storage", action="store_true",
                    help="the server uses files storage: pinned old versions answer VERSION_NOT_AVAILABLE")
    ap.add_argument("--no-pull", action="store_true",
                    help="skip the pull check (it needs LOWCODE_FAAS_SOURCE_FETCH_ALLOW_PRIVATE=true on the server)")
    ap.add_argument("--static", action="store_true",
                    help="ui/ is served without the API: only check rendering and error display")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds to wait for each step")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "/usr/bin/chromium")
    ap.add_argument("--chromedriver", default=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    args = ap.parse_args()
    sys.exit(Run(args).main())


if __name__ == "__main__":
    main()
