"""Reloads, shutdown and streaming: the daemon's life under traffic.

- 20 SIGHUPs while 4 keep-alive clients send 2,000 requests: no request fails.
- A broken file on SIGHUP: the running configuration keeps serving, the errors are logged.
- SIGTERM: an in-flight slow request completes, then the daemon exits 0.
- Streaming with back-pressure: a large upload and a large download through the proxy; in the
  plain build the daemon's RSS must not grow by more than 32 MiB (1 GiB each way). Under the
  sanitizers 64 MiB are streamed without the RSS check (their quarantine grows by design).
"""
import hashlib
import os
import signal
import socket
import threading
import time

from harness import (Gatehouse, HttpClient, Results, gateway_yaml, header, http_request,
                     read_rss_kib, start_echo)

r = Results()
sanitized = os.environ.get("GATEHOUSE_SANITIZED") == "1"
a = start_echo("a")
b = start_echo("b")

BASE = gateway_yaml(workers=2) + """
services:
  - name: echo
    url: "{url:a}"
    routes:
      - {name: api, paths: [/api]}
"""
ALT = gateway_yaml(workers=2) + """
services:
  - name: echo
    url: "{url:b}"
    routes:
      - {name: api, paths: [/api]}
      - {name: extra, paths: [/extra]}
"""

# ---- reloads under traffic ---------------------------------------------------------------
with Gatehouse(BASE, {"a": a, "b": b}) as gw:
    port = gw.proxy_port()
    failures, counts = [], [0] * 4
    stop = threading.Event()

    def client(i):
        with HttpClient(port) as c:
            for n in range(500):
                try:
                    st, hs, body = c.request("GET", f"/api/{i}/{n}")
                    if st != 200:
                        failures.append((i, n, st))
                except Exception as exc:  # noqa: BLE001 (any failure counts)
                    failures.append((i, n, repr(exc)))
                counts[i] += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    results = []
    for k in range(20):
        time.sleep(0.05)
        results.append(gw.reload(ALT if k % 2 == 0 else BASE))
    for t in threads:
        t.join(timeout=120)
    r.check(sum(counts) == 2000, f"2,000 requests sent ({sum(counts)})")
    r.check(not failures, f"no request failed across 20 reloads: {failures[:5]}")
    r.check(results.count("succeeded") == 20, f"20 reloads succeeded: {results}")
    # the last reload applied BASE: /extra is gone again, /api reaches a
    st, hs, body = http_request(port, "GET", "/extra")
    r.check(st == 404, f"the new configuration is in force ({st})")

    # ---- a broken file keeps the running configuration -------------------------------------
    res = gw.reload(BASE + "  - {name: broken, url: 'http://x', routes: [{paths: [bad]}]}\n")
    r.check(res == "failed", f"a broken configuration is refused ({res})")
    r.check("routes[0].paths[0]: should start with" in gw.stderr_text(),
            "the error is logged with its path")
    st, hs, body = http_request(port, "GET", "/api/still")
    r.check(st == 200, f"the old configuration still serves ({st})")

    # ---- SIGTERM drains an in-flight request -----------------------------------------------
    out = {}

    def slow():
        out["resp"] = http_request(port, "GET", "/api/slow", headers={"x-echo-delay-ms": "1500"})

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.4)
    t0 = time.monotonic()
    code = gw.stop(signal.SIGTERM, timeout=20)
    t.join(timeout=10)
    r.check(out.get("resp", (None,))[0] == 200, f"the in-flight request completed: {out}")
    r.check(code == 0, f"exit status 0 after the drain ({code})")
    r.check(time.monotonic() - t0 < 10, "the drain ended with the last request")

# ---- listeners follow the configuration on reload ------------------------------------------
def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listen_conf(ports):
    ls = ", ".join(f'"127.0.0.1:{p}"' for p in ports)
    return ('_format_version: "3.0"\n'
            f"gateway: {{listen: [{ls}], status_listen: off, workers: 2, access_log: off}}\n"
            "services:\n  - {name: s, url: '{url:a}', routes: [{name: r, paths: [/]}]}\n")


p1, p2 = free_port(), free_port()
with Gatehouse(listen_conf([p1]), {"a": a}) as gw:
    r.check(http_request(p1, "GET", "/one")[0] == 200, "first listener serves")
    r.check(gw.reload(listen_conf([p1, p2])) == "succeeded", "reload adding a listener")
    r.check(http_request(p1, "GET", "/one")[0] == 200 and
            http_request(p2, "GET", "/two")[0] == 200, "both listeners serve")
    with HttpClient(p1) as kept:
        r.check(kept.request("GET", "/keep")[0] == 200, "a keep-alive connection on the first")
        r.check(gw.reload(listen_conf([p2])) == "succeeded", "reload removing the first")
        time.sleep(0.3)
        try:
            http_request(p1, "GET", "/gone", timeout=2)
            refused = False
        except OSError:
            refused = True
        r.check(refused, "the removed listener no longer accepts")
        r.check(kept.request("GET", "/still")[0] == 200,
                "a connection accepted before the removal still works")
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    busy = blocker.getsockname()[1]
    r.check(gw.reload(listen_conf([p2, busy])) == "failed", "a listener that cannot bind fails "
                                                            "the reload")
    r.check(http_request(p2, "GET", "/after")[0] == 200, "and the running one keeps serving")
    blocker.close()

# ---- streaming both ways with back-pressure ------------------------------------------------
size = (64 << 20) if sanitized else (1 << 30)
with Gatehouse(gateway_yaml(workers=1) + """
services:
  - name: echo
    url: "{url:a}"
    routes: [{name: api, paths: [/api]}]
""", {"a": a}) as gw:
    port = gw.proxy_port()
    rss0 = read_rss_kib(gw.pid)
    peak = [rss0]
    done = threading.Event()

    def watch():
        while not done.is_set():
            try:
                peak[0] = max(peak[0], read_rss_kib(gw.pid))
            except OSError:
                return
            time.sleep(0.05)

    w = threading.Thread(target=watch)
    w.start()
    block = os.urandom(1 << 20)
    digest = hashlib.sha256()

    def body():
        sent = 0
        while sent < size:
            digest.update(block)
            sent += len(block)
            yield block

    st, hs, resp = http_request(port, "POST", "/api/upload", body=body(), timeout=300)
    import json
    e = json.loads(resp)
    r.check(st == 200 and e["body_length"] == size and e["body_sha256"] == digest.hexdigest(),
            f"{size >> 20} MiB upload streamed intact")
    with HttpClient(port, timeout=300) as c:
        resp = c.stream("GET", "/api/download", headers={"x-echo-body-size": str(size)})
        got = 0
        while True:
            chunk = resp.read(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    r.check(resp.status == 200 and got == size, f"{size >> 20} MiB download streamed ({got})")
    done.set()
    w.join()
    grew = (peak[0] - rss0) / 1024
    print(f"RSS: start {rss0 / 1024:.1f} MiB, peak {peak[0] / 1024:.1f} MiB, "
          f"grew {grew:.1f} MiB")
    if not sanitized:
        r.check(grew <= 32, f"RSS grew by {grew:.1f} MiB (limit 32)")

r.finish()
