#!/usr/bin/env python3
"""tests/browser/chat_page.py - the chat page of build/server in a real browser
(make test-browser; CI runs it): headless Chromium, driven through chromedriver's
W3C WebDriver protocol with the Python standard library only.

Starts build/server on a free loopback port, opens GET /, types a message,
presses Send, waits for the streamed answer to finish (its text and the
tokens/s line), saves a screenshot (build/chat-page.png by default), and fails
if no answer appears. Prints the test runner's summary line; skips (exit 0)
when Chromium or chromedriver is not installed.

    python3 tests/browser/chat_page.py [--build build] [--screenshot FILE]
"""
import argparse
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request

ELEMENT = "element-6066-11e4-a52e-4f735466cecf"  # the W3C key of an element reference


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_http(url, timeout):
    end = time.time() + timeout
    while time.time() < end:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return True
        except OSError:
            time.sleep(0.1)
    return False


class Driver:
    def __init__(self, port):
        self.base = "http://127.0.0.1:%d" % port
        self.session = None

    def call(self, method, path, body=None):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=60) as r:
            return json.loads(r.read())["value"]

    def start(self, chromium):
        caps = {"capabilities": {"alwaysMatch": {"browserName": "chrome", "goog:chromeOptions": {
            "binary": chromium,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                     "--window-size=1000,760"]}}}}
        self.session = self.call("POST", "/session", caps)["sessionId"]

    def s(self, path):
        return "/session/%s%s" % (self.session, path)

    def find(self, css):
        return self.call("POST", self.s("/element"), {"using": "css selector", "value": css})[ELEMENT]

    def js(self, script):
        return self.call("POST", self.s("/execute/sync"), {"script": script, "args": []})


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("--screenshot", default=None)
    a = ap.parse_args()
    shot = a.screenshot or os.path.join(a.build, "chat-page.png")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    chromedriver = shutil.which("chromedriver")
    if not chromium or not chromedriver:
        print("browser: SKIP: chromium and chromedriver are needed (Debian: chromium chromium-driver)")
        print("0 passed, 0 failed, 1 skipped")
        return 0
    srv_port, drv_port = free_port(), free_port()
    srv = subprocess.Popen([os.path.join(a.build, "server"), "--port", str(srv_port), "--slots", "2"],
                           stderr=subprocess.DEVNULL)
    drv = subprocess.Popen([chromedriver, "--port=%d" % drv_port], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL)
    d = Driver(drv_port)
    ok, why = False, ""
    try:
        if not wait_http("http://127.0.0.1:%d/health" % srv_port, 60):
            raise RuntimeError("the server did not become ready")
        if not wait_http(d.base + "/status", 30):
            raise RuntimeError("chromedriver did not start")
        d.start(chromium)
        d.call("POST", d.s("/url"), {"url": "http://127.0.0.1:%d/" % srv_port})
        d.call("POST", d.s("/element/%s/value" % d.find("#input")), {"text": "Tell me a story about a cat."})
        d.call("POST", d.s("/element/%s/click" % d.find("#send")), {})
        end, answer, line = time.time() + 60, "", ""
        while time.time() < end:
            answer = d.js("const m = document.querySelector('.msg.assistant.done .text');"
                          "return m ? m.textContent : '';")
            line = d.js("return document.getElementById('status').textContent;")
            err = d.js("const e = document.querySelector('.msg.error'); return e ? e.textContent : '';")
            if err:
                raise RuntimeError("the page shows an error: " + err)
            if answer and "tokens/s" in line:
                break
            time.sleep(0.2)
        os.makedirs(os.path.dirname(shot) or ".", exist_ok=True)
        with open(shot, "wb") as f:
            f.write(base64.b64decode(d.call("GET", d.s("/screenshot"))))
        title = d.js("return document.title;")
        if len(answer.strip()) < 10:
            raise RuntimeError("no streamed answer appeared within 60 s (status line: %r)" % line)
        if "bitnet chat" not in title:
            raise RuntimeError("unexpected page title %r" % title)
        ok = True
        print("browser: answer of %d characters; %s; screenshot %s" % (len(answer), line, shot))
    except Exception as e:  # any failure is the test's failure, reported on one line
        why = str(e)
    finally:
        if d.session:
            try:
                d.call("DELETE", d.s(""))
            except OSError:
                pass
        for p in (drv, srv):
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
    if not ok:
        print("browser: FAIL: " + why)
    print("%d passed, %d failed, 0 skipped" % (ok, not ok))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
