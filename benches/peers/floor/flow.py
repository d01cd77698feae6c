"""The floor for scripts/bench-flows.py: only the WebDriver commands the flow needs, over raw HTTP
with a kept-alive connection. Values are set and forms submitted from injected script (no key
events, no element round trips), so what is left is the browser's own work plus one round trip
per step: no real tool can be faster on this flow."""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from peer import CHROMEDRIVER, CHROMIUM, FLOW, run_peer  # noqa: E402

BASE = sys.argv[1]
SEL = FLOW["selectors"]

LOGIN = """
const [sel, user, password] = arguments;
const email = document.querySelector(sel.email);
if (!email) return false;
document.querySelector(sel.cookie_reject)?.click();
email.value = user;
document.querySelector(sel.password).value = password;
email.form.requestSubmit();
return true;
"""
CODE = """
const [sel, code] = arguments;
const input = document.querySelector(sel.code);
if (!input) return false;
input.value = code;
input.form.requestSubmit();
return true;
"""
STORES = """
return [...document.querySelectorAll(arguments[0].store)].map(e => e.dataset.branchId);
"""

with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    PORT = s.getsockname()[1]
# Its own process group, so no browser outlives this script (see close()).
driver = subprocess.Popen([CHROMEDRIVER, f"--port={PORT}"], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, start_new_session=True)
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", PORT), timeout=1).close()
        break
    except OSError:
        time.sleep(0.05)


class Session:
    def __init__(self):
        self.http = http.client.HTTPConnection("127.0.0.1", PORT)
        self.profile = tempfile.TemporaryDirectory(prefix="floor-profile-", ignore_cleanup_errors=True)
        options = {"binary": CHROMIUM, "args": FLOW["chromium_flags"] + [f"--user-data-dir={self.profile.name}"]}
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": options}}}
        self.id = self.call("POST", "/session", caps)["value"]["sessionId"]

    def call(self, method, path, body=None):
        self.http.request(method, path, json.dumps(body) if body is not None else None,
                          {"Content-Type": "application/json"})
        answer = json.loads(self.http.getresponse().read())
        value = answer.get("value")
        if isinstance(value, dict) and "error" in value:
            raise RuntimeError(f"{value['error']}: {value.get('message', '')[:120]}")
        return answer if path == "/session" else value

    def script(self, source, *args):
        return self.call("POST", f"/session/{self.id}/execute/sync", {"script": source, "args": list(args)})

    def until(self, source, *args):
        """Runs `source` until it returns something truthy (a page in transition answers false or errs)."""
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                result = self.script(source, *args)
                if result:
                    return result
            except RuntimeError:
                pass
        raise RuntimeError("the page did not arrive")

    def close(self):
        self.call("DELETE", f"/session/{self.id}")
        self.http.close()
        self.profile.cleanup()


def run_flow(session):
    session.call("POST", f"/session/{session.id}/url", {"url": BASE + FLOW["entry_path"]})
    session.until(LOGIN, SEL, FLOW["username"], FLOW["password"])
    session.until(CODE, SEL, FLOW["code"])
    stores = session.until(STORES, SEL)
    if stores != FLOW["stores"]:
        raise RuntimeError(f"stores {stores}")


def shutdown():
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()


run_peer(Session, run_flow, Session.close, shutdown)
