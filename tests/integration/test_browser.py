"""CORS as a real browser judges it: headless Chromium loads a page from one loopback origin
that calls gatehouse on another with fetch(). The browser, not our parser, decides:

- a simple GET to a route that allows the page's origin succeeds, and an exposed header is
  readable from script;
- a PUT with a custom header, a JSON body and credentials is preflighted (gatehouse answers
  the OPTIONS itself) and then succeeds;
- a GET and a preflighted PUT to a route whose cors allows another origin are blocked by the
  browser, although gatehouse answered them (the GET even reached the upstream).

Chromium comes from Debian (`chromium`, installed by `make deps`); as root it runs with
--no-sandbox. The page writes its results into the DOM, read back with --dump-dom.
"""
import html
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from harness import Gatehouse, Results, gateway_yaml, start_echo

r = Results()
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    r.check(False, "chromium is installed (make deps installs it)")
    r.finish()

up = start_echo("up")

# the page's origin: its own port on 127.0.0.1
probe = socket.socket()
probe.bind(("127.0.0.1", 0))
page_port = probe.getsockname()[1]
probe.close()
page_origin = f"http://127.0.0.1:{page_port}"

CONFIG = gateway_yaml() + """
services:
  - name: svc
    url: "{url:up}"
    routes:
      - name: open
        paths: [/open]
        plugins:
          - name: cors
            config:
              origins: ["http://127.0.0.1:{port:page}"]
              methods: [GET, PUT]
              headers: [X-Custom, Content-Type]
              exposed_headers: [X-Request-Id]
              credentials: true
              max_age: 5
      - name: closed
        paths: [/closed]
        plugins:
          - {name: cors, config: {origins: ["http://other.example"]}}
"""

SCRIPT = """
const base = "http://127.0.0.1:%(gw)d";
async function attempt(name, url, init) {
  try {
    const r = await fetch(base + url, init);
    const text = await r.text();
    let seen = null;
    try { seen = JSON.parse(text); } catch (e) {}
    return {name, ok: true, status: r.status, rid: r.headers.get("X-Request-Id"),
            method: seen ? seen.method : null,
            custom: seen ? (seen.headers.find(h => h[0].toLowerCase() == "x-custom") || [0, null])[1] : null};
  } catch (e) {
    return {name, ok: false, error: String(e)};
  }
}
(async () => {
  const out = [];
  out.push(await attempt("simple", "/open/simple", {}));
  out.push(await attempt("put", "/open/put", {method: "PUT", credentials: "include",
      headers: {"X-Custom": "1", "Content-Type": "application/json"}, body: '{"a":1}'}));
  out.push(await attempt("closed-get", "/closed/get", {}));
  out.push(await attempt("closed-put", "/closed/put", {method: "PUT",
      headers: {"X-Custom": "1"}, body: "x"}));
  document.getElementById("results").textContent = JSON.stringify(out);
})();
"""


class Page(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        self.wfile.write(self.body)

    def log_message(self, *args):
        pass


with Gatehouse(CONFIG, {"up": up, "page": page_port}) as gw:
    Page.body = ("<!doctype html><html><body><pre id=\"results\">pending</pre><script>" +
                 SCRIPT % {"gw": gw.proxy_port()} + "</script></body></html>").encode()
    server = ThreadingHTTPServer(("127.0.0.1", page_port), Page)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    profile = tempfile.mkdtemp(prefix="gatehouse-chromium-")
    try:
        p = subprocess.run([CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
                            "--disable-dev-shm-usage", "--no-first-run",
                            f"--user-data-dir={profile}", "--virtual-time-budget=15000",
                            "--dump-dom", f"{page_origin}/"],
                           capture_output=True, text=True, timeout=120)
    finally:
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    m = re.search(r'<pre id="results">(.*?)</pre>', p.stdout, re.S)
    results = {}
    if m and m.group(1) != "pending":
        results = {x["name"]: x for x in json.loads(html.unescape(m.group(1)))}
    r.check(len(results) == 4, f"the page ran its four calls: {p.stdout[-300:]!r} {p.stderr[-300:]!r}")

    simple = results.get("simple", {})
    r.check(simple.get("ok") and simple.get("status") == 200 and simple.get("method") == "GET",
            f"a simple GET from an allowed origin succeeds: {simple}")
    r.check(simple.get("rid") is not None, "the exposed X-Request-Id is readable from script")
    put = results.get("put", {})
    r.check(put.get("ok") and put.get("status") == 200 and put.get("method") == "PUT" and
            put.get("custom") == "1",
            f"a preflighted PUT with a custom header and credentials succeeds: {put}")
    for name in ("closed-get", "closed-put"):
        x = results.get(name, {})
        r.check(x.get("ok") is False and "TypeError" in x.get("error", ""),
                f"{name}: the browser blocks a disallowed origin: {x}")

    gw.wait_access_log(4)
    lines = gw.access_log_lines()
    seen = [(x["method"], x["path"], x["status"]) for x in lines]
    r.check(("OPTIONS", "/open/put", 200) in seen and ("PUT", "/open/put", 200) in seen,
            f"the browser preflighted the PUT and gatehouse answered it: {seen}")
    r.check(("GET", "/closed/get", 200) in seen,
            "the blocked GET reached the upstream: the browser enforced the CORS answer")
    r.check(not any(m_ == "PUT" and path == "/closed/put" for m_, path, _ in seen),
            "the disallowed PUT never left the browser after its preflight")

r.finish()
