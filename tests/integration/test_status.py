"""The status listener: /status, /status/ready, /status/live, /metrics, /config and
/upstreams/{name}/health, against the real daemon after known traffic.

- Counts are exact: a known number of requests per route and status shows in
  gatehouse_http_requests_total, the latency histograms, the connection counters and /status.
- The exposition passes `promtool check metrics` on scrapes taken under load, apart from the
  naming lints that Kong's series names carry by design (see docs/observability.md), and is
  consistent (cumulative buckets, +Inf equal to _count, no duplicate series).
- /config shows the running document with every secret redacted (credential keys, secrets,
  private keys, values read from a vault reference).
- A failed reload is visible in /status and in gatehouse_config_reloads_total; a good one
  moves the generation.
- SIGTERM: /status/ready answers 503 at once while the proxy still serves for
  timeouts.shutdown_grace, then the daemon drains and exits 0.
- The status listener moves with a reload of gateway.status_listen; metrics: off answers 404.
"""
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time

from harness import (Gatehouse, HttpClient, Results, gateway_yaml, http_request, raw_exchange,
                     start_echo)

r = Results()
a = start_echo("a")

tmp = tempfile.mkdtemp(prefix="gatehouse-status-")
key_path, cert_path = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-subj", "/CN=status.test", "-days", "30",
                "-keyout", key_path, "-out", cert_path], check=True, capture_output=True)
with open(key_path) as f:
    KEY_PEM = f.read()
with open(cert_path) as f:
    CERT_PEM = f.read()
shutil.rmtree(tmp)
KEY_LINE = KEY_PEM.splitlines()[1]   # a line of the key's base64 body


def indent(text, n):
    return "".join(" " * n + line + "\n" for line in text.splitlines())


ENTITIES = """
services:
  - name: s1
    url: "{url:a}"
    routes:
      - {name: r1, paths: [/a]}
      - {name: r2, paths: [/b]}
  - name: s2
    host: up
    routes:
      - {name: r3, paths: [/c]}
upstreams:
  - name: up
    targets:
      - {target: "127.0.0.1:{port:a}", weight: 100}
      - {target: "127.0.0.1:9", weight: 0}
consumers:
  - username: alice
    keyauth_credentials:
      - key: alice-key-0123456789
      - key: "{vault://env/GW_STATUS_TEST_KEY}"
    jwt_secrets:
      - {key: alice-iss, secret: alice-hs-secret-777, algorithm: HS256}
certificates:
  - cert: |
""" + indent(CERT_PEM, 8) + """    key: |
""" + indent(KEY_PEM, 8)

CONFIG = gateway_yaml(status=True, workers=2) + ENTITIES
ENV = {"GW_STATUS_TEST_KEY": "vault-resolved-secret-555"}
SECRETS = ["alice-key-0123456789", "alice-hs-secret-777", "vault-resolved-secret-555",
           KEY_LINE, "PRIVATE KEY"]

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')

# promtool's style lints that Kong's series names trip by design (docs/observability.md)
KONG_NAME_LINTS = {
    'gatehouse_bandwidth_bytes counter metrics should have "_total" suffix',
    "gatehouse_request_latency_ms metric names should not contain abbreviated units",
    "gatehouse_upstream_latency_ms metric names should not contain abbreviated units",
    "gatehouse_gateway_latency_ms metric names should not contain abbreviated units",
}


def get(port, path, method="GET"):
    st, hs, body = http_request(port, method, path)
    return st, hs, body


def get_json(port, path):
    st, hs, body = get(port, path)
    return st, json.loads(body)


def parse_exposition(text):
    """{(name, frozenset(labels)): value}; raises on a malformed or duplicate sample."""
    out, types = {}, {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, typ = line.split(" ", 3)
            types[name] = typ
            continue
        if not line or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        if not m:
            raise ValueError(f"malformed sample: {line!r}")
        labels = frozenset(LABEL.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        if key in out:
            raise ValueError(f"duplicate sample: {line!r}")
        out[key] = float(m.group(3))
    return out, types


def value(samples, name, **labels):
    return samples.get((name, frozenset(labels.items())))


def scrape(port):
    st, hs, body = get(port, "/metrics")
    return st, hs, body.decode()


def histogram_problems(samples, types):
    """Cumulative buckets never decrease, +Inf equals _count."""
    problems = []
    series = {}
    for (name, labels), v in samples.items():
        for base, typ in types.items():
            if typ == "histogram" and name == base + "_bucket":
                rest = frozenset(x for x in labels if x[0] != "le")
                le = dict(labels)["le"]
                series.setdefault((base, rest), []).append(
                    (float("inf") if le == "+Inf" else float(le), v))
    for (base, rest), buckets in series.items():
        buckets.sort()
        counts = [c for _, c in buckets]
        if counts != sorted(counts):
            problems.append(f"{base}{dict(rest)}: buckets decrease")
        total = samples.get((base + "_count", rest))
        if buckets[-1][0] != float("inf") or total != buckets[-1][1]:
            problems.append(f"{base}{dict(rest)}: +Inf {buckets[-1]} != count {total}")
    return problems


def promtool(text):
    """(exit code, problems other than the known naming lints)."""
    p = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                       text=True, timeout=60)
    lines = [x.strip() for x in (p.stdout + p.stderr).splitlines() if x.strip()]
    return p.returncode, [x for x in lines if x not in KONG_NAME_LINTS]


def wait_for(fn, timeout=5.0):
    """fn() until it returns something true (a request is counted when it ends on its worker,
    a moment after the client has its response)."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


# ---- endpoints after known traffic --------------------------------------------------------
with Gatehouse(CONFIG, {"a": a}, env=ENV) as gw:
    port, sport = gw.proxy_port(), gw.status_port()
    r.check(len(gw.ready["status_listen"]) == 1 and sport > 0,
            f"the ready file names the status listener ({gw.ready['status_listen']})")

    st, hs, body = get(sport, "/status/ready")
    r.check(st == 200 and json.loads(body) == {"message": "ready"}, f"ready: {st} {body!r}")
    st, hs, body = get(sport, "/status/live")
    r.check(st == 200 and json.loads(body) == {"message": "live"}, f"live: {st} {body!r}")

    # known traffic: 7 + 3 on r1 (3 answered 503 by the upstream), 4 on r2, 2 unrouted,
    # over 5 connections (4 keep-alive, then 1 request per connection for the rest)
    with HttpClient(port) as c:
        for i in range(7):
            st, _, _ = c.request("GET", f"/a/{i}")
            r.check(st == 200, f"r1 request {i}: {st}")
    with HttpClient(port) as c:
        for i in range(3):
            st, _, _ = c.request("GET", "/a/fail", headers={"x-echo-status": "503"})
            r.check(st == 503, f"r1 upstream 503 {i}: {st}")
    with HttpClient(port) as c:
        for i in range(4):
            st, _, _ = c.request("GET", f"/b/{i}", body=None)
    with HttpClient(port) as c:
        st1, _, _ = c.request("GET", "/nowhere")
        st2, _, _ = c.request("GET", "/nowhere/else")
        r.check(st1 == 404 and st2 == 404, f"unrouted requests: {st1} {st2}")
    total = 16

    def counted():
        st, hs, text = scrape(sport)
        samples, types = parse_exposition(text)
        got = value(samples, "gatehouse_connections", state="total")
        return (samples, types, text) if got == total else None

    got = wait_for(counted)
    r.check(got is not None, "the scrape counts all 16 requests")
    samples, types, text = got if got else ({}, {}, "")
    R = "gatehouse_http_requests_total"
    r.check(value(samples, R, service="s1", route="r1", code="200", source="service") == 7,
            "7 × 200 on s1/r1")
    r.check(value(samples, R, service="s1", route="r1", code="503", source="service") == 3,
            "3 × 503 from the upstream on s1/r1, source service")
    r.check(value(samples, R, service="s1", route="r2", code="200", source="service") == 4,
            "4 × 200 on s1/r2")
    r.check(value(samples, R, service="", route="", code="404", source="kong") == 2,
            "2 × 404 without a route, source kong")
    r.check(sum(v for (n, _), v in samples.items() if n == R) == total,
            "gatehouse_http_requests_total sums to the requests sent")
    for name in ("gatehouse_request_latency_ms", "gatehouse_upstream_latency_ms",
                 "gatehouse_gateway_latency_ms"):
        r.check(value(samples, name + "_count", service="s1", route="r1") == 10,
                f"{name}: 10 observations on s1/r1")
        r.check(types.get(name) == "histogram", f"{name} is a histogram")
    r.check(value(samples, "gatehouse_upstream_latency_ms_count", service="", route="") in
            (None, 0), "no upstream latency for unrouted requests")
    r.check(value(samples, "gatehouse_request_latency_ms_count", service="", route="") == 2,
            "request latency of the unrouted requests")
    ing = value(samples, "gatehouse_bandwidth_bytes", service="s1", route="r1",
                direction="ingress")
    eg = value(samples, "gatehouse_bandwidth_bytes", service="s1", route="r1",
               direction="egress")
    r.check(ing is not None and ing >= 10 * len("GET /a/0 HTTP/1.1\r\n"),
            f"ingress bytes count the request heads ({ing})")
    r.check(eg is not None and eg > 10 * len("HTTP/1.1 200 OK\r\n"), f"egress bytes ({eg})")
    r.check(value(samples, "gatehouse_connections", state="accepted") == 4 and
            value(samples, "gatehouse_connections", state="handled") == 4,
            "4 connections accepted and handled")
    r.check(value(samples, "gatehouse_config_generation") == 1, "generation 1")
    r.check(value(samples, "gatehouse_config_reloads_total", result="success") == 0 and
            value(samples, "gatehouse_config_reloads_total", result="failure") == 0,
            "no reloads yet")
    last_ok = value(samples, "gatehouse_config_last_reload_success_timestamp_seconds")
    r.check(last_ok is not None and abs(last_ok - time.time()) < 120,
            f"last load timestamp is now ({last_ok})")
    H = "gatehouse_upstream_target_health"
    r.check(value(samples, H, upstream="up", target=f"127.0.0.1:{a.port}",
                  address=f"127.0.0.1:{a.port}", state="healthchecks_off") == 1 and
            value(samples, H, upstream="up", target=f"127.0.0.1:{a.port}",
                  address=f"127.0.0.1:{a.port}", state="healthy") == 0,
            "target health: healthchecks_off")
    r.check(not histogram_problems(samples, types), f"histograms: {histogram_problems(samples, types)}")

    st, hs, body = get(sport, "/metrics")
    ctype = dict((k.lower(), v) for k, v in hs).get("content-type", "")
    r.check(ctype.startswith("text/plain; version=0.0.4"), f"exposition content type {ctype!r}")

    # /status: Kong's shape plus ours
    st, s = get_json(sport, "/status")
    srv = s.get("server", {})
    with open(gw.config_path, "rb") as f:
        md5 = hashlib.md5(f.read()).hexdigest()
    r.check(st == 200 and srv.get("total_requests") == total,
            f"/status total_requests {srv.get('total_requests')}")
    r.check(srv.get("connections_accepted") == 4 and srv.get("connections_handled") == 4,
            f"/status accepted/handled: {srv}")
    r.check(all(k in srv for k in ("connections_active", "connections_reading",
                                   "connections_writing", "connections_waiting")),
            "/status has every connection state")
    r.check(srv.get("connections_active") == srv.get("connections_reading", -1) +
            srv.get("connections_writing", -1) + srv.get("connections_waiting", -1),
            "active = reading + writing + waiting")
    r.check(s.get("configuration_hash") == md5, "configuration_hash is the file's MD5")
    r.check(s.get("workers") == 2 and s.get("ready") is True and
            s.get("configuration", {}).get("generation") == 1 and s.get("last_reload") is None
            and isinstance(s.get("uptime_seconds"), int) and s.get("version"),
            f"/status version, uptime, workers, generation: {s}")

    # an open keep-alive connection is counted as waiting, one mid-head as reading
    import socket
    idle = socket.create_connection(("127.0.0.1", port), timeout=5)
    part = socket.create_connection(("127.0.0.1", port), timeout=5)
    part.sendall(b"GET /a/x HTTP/1.1\r\nHost: x\r\n")
    got = wait_for(lambda: (lambda v: v if v.get("connections_reading") == 1 and
                            v.get("connections_waiting") == 1 else None)(
        get_json(sport, "/status")[1]["server"]))
    r.check(got is not None, f"one connection reading, one waiting: {got}")
    idle.close()
    part.close()

    # /upstreams/{name}/health
    st, h = get_json(sport, "/upstreams/up/health")
    r.check(st == 200 and h.get("total") == 2 and
            [(t["target"], t["weight"], t["health"]) for t in h.get("data", [])] ==
            [(f"127.0.0.1:{a.port}", 100, "HEALTHCHECKS_OFF"), ("127.0.0.1:9", 0,
                                                                 "HEALTHCHECKS_OFF")],
            f"upstream health: {h}")
    uid = h["data"][0]["upstream"]["id"] if st == 200 and h.get("data") else "x"
    st2, h2 = get_json(sport, f"/upstreams/{uid}/health")
    r.check(st2 == 200 and h2 == h, "the upstream is found by id as well")
    st, h = get_json(sport, "/upstreams/up/health?balancer_health=1")
    r.check(st == 200 and h.get("data", {}).get("health") == "HEALTHCHECKS_OFF",
            f"balancer health: {h}")
    st, h = get_json(sport, "/upstreams/nope/health")
    r.check(st == 404 and h == {"message": "Not found"}, f"unknown upstream: {st} {h}")
    st, _, _ = get(sport, "/nothing-here")
    r.check(st == 404, f"unknown path: {st}")
    st, hs, body = get(sport, "/status", method="POST")
    r.check(st == 405, f"POST /status: {st}")

    # bad input on the status listener: refused, and the daemon goes on
    got = raw_exchange(sport, b"NOT HTTP AT ALL\r\n\r\n", timeout=5)
    r.check(got.startswith(b"HTTP/1.1 400"), f"garbage gets 400: {got[:40]!r}")
    got = raw_exchange(sport, b"GET /status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 20000 +
                       b"\r\n\r\n", timeout=5)
    r.check(not got.startswith(b"HTTP/1.1 200"), f"a 20 KB header is refused: {got[:40]!r}")
    st, _, _ = get(sport, "/status/live")
    r.check(st == 200 and gw.alive(), "the status listener still answers")

    # /config: the document, redacted
    st, hs, body = get(sport, "/config")
    text = body.decode()
    doc = json.loads(text) if st == 200 else {}
    r.check(st == 200 and doc.get("_format_version") == "3.0", f"/config: {st}")
    leaked = [x for x in SECRETS if x in text]
    r.check(not leaked, f"no secret in /config: {leaked}")
    cons = doc.get("consumers", [{}])[0]
    r.check(cons.get("username") == "alice" and
            [k.get("key") for k in cons.get("keyauth_credentials", [])] ==
            ["[redacted]", "{vault://env/GW_STATUS_TEST_KEY}"],
            f"credential keys redacted, vault reference shown: {cons.get('keyauth_credentials')}")
    r.check(cons.get("jwt_secrets", [{}])[0].get("algorithm") == "HS256",
            "non-secret fields are kept")
    r.check(doc.get("certificates", [{}])[0].get("cert", "").startswith("-----BEGIN CERT"),
            "certificates are shown, their keys are not")
    r.check(doc.get("services", [{}])[0].get("routes", [{}])[0].get("name") == "r1",
            "the entities are there")

    # ---- the exposition under load passes promtool -----------------------------------------
    stop = threading.Event()
    errors = []

    def load(i):
        with HttpClient(port) as c:
            n = 0
            while not stop.is_set():
                try:
                    c.request("GET", f"/{'ab'[i % 2]}/{n}")
                except Exception as exc:  # noqa: BLE001
                    errors.append(repr(exc))
                    return
                n += 1

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    results = []
    try:
        for k in range(5):
            time.sleep(0.2)
            st, hs, text = scrape(sport)
            samples, types = parse_exposition(text)
            rc, problems = promtool(text)
            results.append((st, rc, problems, histogram_problems(samples, types)))
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=30)
    r.check(not errors, f"load clients ran without error: {errors[:3]}")
    r.check(all(x[0] == 200 for x in results), "every scrape under load answered 200")
    r.check(all(x[1] in (0, 3) and not x[2] for x in results),
            f"promtool check metrics: no problem but Kong's names: {[x[1:3] for x in results]}")
    r.check(all(not x[3] for x in results), f"histograms consistent under load: {results}")

    # ---- reloads ------------------------------------------------------------------------------
    res = gw.reload(CONFIG.replace("{name: r2, paths: [/b]}", "{name: r2, paths: [nope]}"))
    r.check(res == "failed", f"a broken file is refused ({res})")
    st, s = get_json(sport, "/status")
    lr = s.get("last_reload") or {}
    r.check(lr.get("result") == "failure" and lr.get("errors_total", 0) >= 1 and
            any("should start with" in e for e in lr.get("errors", [])),
            f"/status shows the failed reload and its errors: {lr}")
    r.check(s.get("reloads") == {"success": 0, "failure": 1} and
            s.get("configuration", {}).get("generation") == 1,
            f"reload counts and generation after a failure: {s.get('reloads')}")
    samples, _ = parse_exposition(scrape(sport)[2])
    r.check(value(samples, "gatehouse_config_reloads_total", result="failure") == 1,
            "gatehouse_config_reloads_total{result=failure} 1")
    r.check(value(samples, "gatehouse_config_generation") == 1, "generation still 1")
    st, _, _ = http_request(port, "GET", "/a/still")
    r.check(st == 200, f"the running configuration still serves ({st})")

    # metrics off: /metrics is 404 and requests are not counted; the status listener moves
    time.sleep(1.1)   # the load timestamp has a resolution of one second
    samples, _ = parse_exposition(scrape(sport)[2])
    r1_before = value(samples, R, service="s1", route="r1", code="200", source="service")
    moved = CONFIG.replace("  access_log:", "  metrics: off\n  access_log:")
    res = gw.reload(moved)
    r.check(res == "succeeded", f"reload with metrics off ({res})")
    st, s = get_json(sport, "/status")
    lr = s.get("last_reload") or {}
    r.check(lr.get("result") == "success" and lr.get("errors") == [] and
            s.get("reloads") == {"success": 1, "failure": 1} and
            s.get("configuration", {}).get("generation") == 2,
            f"/status after a good reload: {s.get('reloads')} {lr}")
    st, _, body = get(sport, "/metrics")
    r.check(st == 404, f"metrics off: /metrics answers 404 ({st})")
    before = get_json(sport, "/status")[1]["server"]["total_requests"]
    for i in range(3):
        http_request(port, "GET", "/a/uncounted")
    res = gw.reload(CONFIG)
    r.check(res == "succeeded", f"metrics back on ({res})")
    samples, _ = parse_exposition(scrape(sport)[2])
    r1_after = value(samples, R, service="s1", route="r1", code="200", source="service")
    r.check(r1_before is not None and r1_after == r1_before,
            f"counters survive reloads; nothing counted while off ({r1_before} -> {r1_after})")
    r.check(value(samples, "gatehouse_config_generation") == 3, "generation 3")
    r.check(value(samples, "gatehouse_config_last_reload_success_timestamp_seconds") > last_ok,
            "the last success timestamp moved")
    after = get_json(sport, "/status")[1]["server"]["total_requests"]
    r.check(after - before == 3, f"/status counts requests even with metrics off ({after - before})")

    # the status listener follows gateway.status_listen
    new_cfg = CONFIG.replace('status_listen: "127.0.0.1:0"', 'status_listen: "127.0.0.2:0"')
    res = gw.reload(new_cfg)
    r.check(res == "succeeded", f"status listener moved ({res})")
    try:
        http_request(sport, "GET", "/status/ready", timeout=2)
        r.check(False, "the old status address is closed")
    except OSError:
        r.check(True, "the old status address is closed")

# ---- readiness during the shutdown grace --------------------------------------------------
GRACE = gateway_yaml(status=True, workers=2,
                     extra="  timeouts: {shutdown_grace: 2, shutdown: 5}\n") + ENTITIES
with Gatehouse(GRACE, {"a": a}, env=ENV) as gw:
    port, sport = gw.proxy_port(), gw.status_port()
    st, _, _ = get(sport, "/status/ready")
    r.check(st == 200, f"ready before SIGTERM ({st})")
    t0 = time.monotonic()
    gw.send_signal(signal.SIGTERM)
    got = wait_for(lambda: get(sport, "/status/ready")[0] == 503, timeout=2)
    r.check(got, "/status/ready answers 503 at once after SIGTERM")
    st, s = get_json(sport, "/status")
    r.check(s.get("ready") is False, "/status says not ready")
    st, _, _ = get(sport, "/status/live")
    r.check(st == 200, f"still live during the grace ({st})")
    served = []
    while time.monotonic() - t0 < 1.5:
        served.append(http_request(port, "GET", "/a/grace")[0])
        time.sleep(0.1)
    r.check(served and all(x == 200 for x in served),
            f"new connections are served during the grace: {served}")
    code = gw.proc.wait(15)
    r.check(code == 0, f"the daemon exits 0 after grace and drain ({code})")
    r.check(time.monotonic() - t0 >= 2.0, "it did not exit before the grace was over")
    log = gw.stderr_text()
    r.check("not ready, serving for 2 s more" in log and "no longer accepting" in log,
            "the log shows the grace then the drain")

r.finish()
