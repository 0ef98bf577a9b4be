"""The proxy end to end: the real daemon between Python clients and echo upstreams, all on
127.0.0.1. Routing and upstream paths, header rewriting, keep-alive pools, gateway errors,
pipelining, 100-continue, WebSocket, malformed input and limits, timeouts."""
import json
import os
import socket
import time

from harness import (Gatehouse, HttpClient, Results, WebSocketClient, gateway_yaml, header,
                     http_request, parse_http_responses, raw_exchange, start_echo)

r = Results()
a = start_echo("a")
b = start_echo("b")
closed_port = socket.socket()
closed_port.bind(("127.0.0.1", 0))
dead = closed_port.getsockname()[1]  # bound, never listening: connections are refused

CONFIG = gateway_yaml(workers=1, extra=(
    "  limits: {max_uri_length: 1k, max_header_size: 8k, max_headers: 20, "
    "max_body_size: 1m}\n"
    "  timeouts: {client_header: 1, client_body: 2}\n")) + """
services:
  - name: echo
    url: "{url:a}/base"
    routes:
      - {name: api, paths: [/api]}
      - {name: keep, paths: [/keep], strip_path: false}
      - {name: host, paths: [/preserve], preserve_host: true}
      - {name: users, paths: ["~/users/(?<id>\\\\d+)$"], methods: [GET, HEAD]}
      - {name: tls-only, paths: [/secure], protocols: [https]}
      - {name: tls-redirect, paths: [/moved], protocols: [https],
         https_redirect_status_code: 301}
  - name: slow
    url: "{url:a}"
    read_timeout: 300
    routes: [{name: slow, paths: [/slow]}]
  - name: refused
    url: "http://127.0.0.1:""" + str(dead) + """"
    retries: 2
    routes: [{name: refused, paths: [/refused]}]
  - name: balanced
    host: pair.upstream
    routes: [{name: pair, paths: [/pair]}]
  - name: empty
    host: empty.upstream
    routes: [{name: empty, paths: [/empty]}]
  - name: tls
    url: https://127.0.0.1:9
    routes: [{name: tls, paths: [/tls]}]
upstreams:
  - name: pair.upstream
    targets:
      - target: "127.0.0.1:{port:a}"
      - target: "127.0.0.1:{port:b}"
  - name: empty.upstream
"""


def echo_json(body):
    return json.loads(body.decode())


def hdr(echo, name):
    """A header the echo upstream received (harness.header over its list)."""
    return header(echo["headers"], name)


gw = Gatehouse(CONFIG, {"a": a, "b": b}).start()
port = gw.proxy_port()

# ---- routing and the upstream request ---------------------------------------------------
st, hs, body = http_request(port, "GET", "/api/x/y?q=1&r=%20")
e = echo_json(body)
r.check(st == 200 and e["path"] == "/base/x/y" and e["query"] == "q=1&r=%20",
        f"strip_path + service path + query verbatim: {st} {e.get('target')}")
r.check(hdr(e, "host") == f"127.0.0.1:{a.port}", f"Host is the target's: {hdr(e, 'host')}")
st, hs, body = http_request(port, "GET", "/keep/z")
r.check(echo_json(body)["path"] == "/base/keep/z", "strip_path false keeps the route prefix")
st, hs, body = http_request(port, "GET", "/preserve/1", host="client.example.test:8443")
r.check(hdr(echo_json(body), "host") == "client.example.test:8443", "preserve_host")
st, hs, body = http_request(port, "GET", "/users/42")
r.check(st == 200 and echo_json(body)["path"] == "/base", f"regex route, stripped: {body[:80]}")
st, hs, body = http_request(port, "POST", "/users/42", body=b"x")
r.check(st == 404, f"methods filter: POST on a GET route is 404 ({st})")

# normalised path goes upstream
for raw, want in [("/api/a/../b", "/base/b"), ("/api/%2e%2e/api/c", "/base/c"),
                  ("/api//d///e", "/base/d/e"), ("/%61pi/%7euser", "/base/~user")]:
    st, hs, body = http_request(port, "GET", raw)
    got = echo_json(body)["path"] if st == 200 else st
    r.check(got == want, f"normalised {raw} -> {want} (got {got})")
st, hs, body = http_request(port, "GET", "/api/%zz")
r.check(st == 400, f"invalid percent-escape -> 400 ({st})")

# ---- forwarding headers -----------------------------------------------------------------
st, hs, body = http_request(port, "GET", "/api/h", headers=[
    ("X-Forwarded-For", "10.9.8.7"), ("X-Forwarded-Proto", "https"),
    ("X-Real-IP", "10.0.0.1"), ("X-Request-Id", "client-chosen-id"),
    ("Connection", "keep-alive, X-Hop"), ("X-Hop", "secret"), ("Keep-Alive", "timeout=5"),
    ("TE", "trailers"), ("Proxy-Authorization", "Basic Zm9vOmJhcg=="),
    ("Via", "1.0 edge"), ("X-Custom", "kept")])
e = echo_json(body)
r.check(hdr(e, "x-forwarded-for") == "10.9.8.7, 127.0.0.1", "X-Forwarded-For appended")
r.check(hdr(e, "x-forwarded-proto") == "http", "untrusted X-Forwarded-Proto replaced")
r.check(hdr(e, "x-real-ip") == "127.0.0.1", "untrusted X-Real-IP replaced")
r.check(hdr(e, "x-forwarded-prefix") == "/api" and hdr(e, "x-forwarded-path") == "/api/h",
        "X-Forwarded-Prefix and -Path")
rid = hdr(e, "x-request-id")
r.check(rid is not None and rid != "client-chosen-id" and len(rid) == 36,
        f"untrusted X-Request-Id replaced by a new one: {rid}")
r.check(header(hs, "x-request-id") == rid, "the same request id is returned to the client")
for gone in ("x-hop", "keep-alive", "te", "proxy-authorization", "connection"):
    r.check(hdr(e, gone) is None, f"hop-by-hop {gone} removed")
r.check(hdr(e, "x-custom") == "kept", "other headers forwarded")
r.check(hdr(e, "via") == "1.0 edge, 1.1 gatehouse", f"Via appended upstream: {hdr(e, 'via')}")
r.check(header(hs, "via") == "1.1 gatehouse", f"Via on the response: {header(hs, 'via')}")
r.check(header(hs, "x-gatehouse-upstream-latency") is not None and
        header(hs, "x-gatehouse-proxy-latency") is not None, "latency headers")
st, hs, body = http_request(port, "GET", "/nowhere")
r.check(header(hs, "server", "").startswith("gatehouse/") and
        header(hs, "x-gatehouse-response-latency") is not None, "Server on gateway answers")

# ---- keep-alive: pooled upstream connections ---------------------------------------------
conns = set()
with HttpClient(port) as c:
    for i in range(100):
        st, hs, body = c.request("GET", f"/api/seq/{i}")
        conns.add(echo_json(body)["connection"]) if st == 200 else conns.add(-1)
r.check(len(conns) == 1 and -1 not in conns,
        f"100 sequential requests use one upstream connection: {conns}")

# ---- load balancing ------------------------------------------------------------------------
seen = [echo_json(http_request(port, "GET", "/pair")[2])["server"] for _ in range(10)]
r.check(seen.count("a") == 5 and seen.count("b") == 5, f"round-robin over two targets: {seen}")

# ---- gateway errors ---------------------------------------------------------------------------
st, hs, body = http_request(port, "GET", "/nowhere")
j = json.loads(body)
r.check(st == 404 and j["message"] == "no Route matched with those values" and
        j["request_id"] == header(hs, "x-request-id"), f"404 body: {body!r}")
r.check(body.startswith(b'{\n  "message":"no Route matched with those values",\n'),
        "404 body bytes as Kong's")
st, hs, body = http_request(port, "GET", "/nowhere", headers={"Accept": "text/plain"})
r.check(body.startswith(b"no Route matched with those values\nrequest_id: "),
        f"text/plain error body: {body!r}")
t0 = time.monotonic()
st, hs, body = http_request(port, "GET", "/refused")
r.check(st == 502 and b"An invalid response was received from the upstream server" in body,
        f"connect refused -> 502 after retries ({st})")
r.check(len([l for l in gw.stderr_text().splitlines() if "connect failed" in l]) >= 3,
        "retries: 3 tries logged for retries: 2")
st, hs, body = http_request(port, "GET", "/empty")
r.check(st == 503 and b"failure to get a peer from the ring-balancer" in body,
        f"upstream without targets -> 503 ({st} {body[:60]!r})")
st, hs, body = http_request(port, "GET", "/slow", headers={"x-echo-delay-ms": "1500"})
r.check(st == 504 and b"The upstream server is timing out" in body,
        f"read_timeout -> 504 ({st})")
st, hs, body = http_request(port, "GET", "/tls")
r.check(st == 502, f"https service without TLS support -> 502, never plaintext ({st})")
st, hs, body = http_request(port, "GET", "/secure")
r.check(st == 426 and header(hs, "upgrade") == "TLS/1.2, HTTP/1.1" and
        b"Please use HTTPS protocol" in body, f"https-only route over http -> 426 ({st})")
st, hs, body = http_request(port, "GET", "/moved/x?y=1", host="shop.example.test")
r.check(st == 301 and header(hs, "location") == "https://shop.example.test/moved/x?y=1",
        f"https_redirect_status_code 301: {st} {header(hs, 'location')}")
st, hs, body = http_request(port, "GET", "/api/bad", headers={"x-echo-malformed": "1"})
r.check(st == 502, f"invalid upstream response -> 502 ({st})")
st, hs, body = http_request(port, "GET", "/api/big", headers={"x-echo-header-bytes": "20000"})
r.check(st == 502, f"upstream header block over the limit -> 502 ({st})")

# ---- framing -------------------------------------------------------------------------------
st, hs, body = http_request(port, "HEAD", "/users/7")
r.check(st == 200 and body == b"", "HEAD: no body")
st, hs, body = http_request(port, "GET", "/api/nc", headers={"x-echo-status": "204"})
r.check(st == 204 and body == b"", "204 without body")
st, hs, body = http_request(port, "GET", "/api/ch",
                            headers={"x-echo-chunked": "1", "x-echo-body-size": "100000"})
r.check(st == 200 and len(body) == 100000 and header(hs, "transfer-encoding") == "chunked",
        "chunked response re-framed")
data = raw_exchange(port, b"GET /api/old HTTP/1.0\r\nx-echo-chunked: 1\r\n"
                          b"x-echo-body-size: 5000\r\n\r\n")
resp = parse_http_responses(data)
r.check(len(resp) == 1 and resp[0][0] == 200 and len(resp[0][2]) == 5000 and
        header(resp[0][1], "transfer-encoding") is None,
        "HTTP/1.0 client: close-delimited body, no chunked")
payload = os.urandom(300000)
st, hs, body = http_request(port, "POST", "/api/up", body=payload)
e = echo_json(body)
import hashlib
want = hashlib.sha256(payload).hexdigest()
r.check(e["body_length"] == len(payload) and e["body_sha256"] == want, "Content-Length upload")
st, hs, body = http_request(port, "POST", "/api/up",
                            body=(payload[i:i + 7000] for i in range(0, len(payload), 7000)))
e = echo_json(body)
r.check(e["body_length"] == len(payload) and e["body_sha256"] == want,
        "chunked upload, re-framed")

# pipelining: three requests in one write, answered in order
data = raw_exchange(port, b"".join(
    f"GET /api/p{i} HTTP/1.1\r\nHost: x\r\n\r\n".encode() for i in range(3)) +
    b"GET /api/p3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
resp = parse_http_responses(data)
r.check([echo_json(x[2])["path"] for x in resp] == [f"/base/p{i}" for i in range(4)],
        f"pipelined requests answered in order ({len(resp)} responses)")

# 100-continue: answered by the gateway once routed, and not forwarded
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"POST /api/cont HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
          b"Expect: 100-continue\r\n\r\n")
first = s.recv(100)
r.check(first.startswith(b"HTTP/1.1 100 Continue\r\n\r\n"), f"100 Continue first: {first!r}")
s.sendall(b"hello")
rest = b""
while b"}" not in rest:
    chunk = s.recv(65536)
    if not chunk:
        break
    rest += chunk
s.close()
got = parse_http_responses(first[25:] + rest)
e = echo_json(got[0][2]) if got else {}
r.check(e.get("body_length") == 5 and hdr(e, "expect") is None, "body after 100; no Expect")
data = raw_exchange(port, b"POST /nowhere HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                          b"Expect: 100-continue\r\n\r\n", quiet=0.5)
r.check(data.startswith(b"HTTP/1.1 404"), f"no 100 when the request is refused: {data[:20]!r}")

# WebSocket
try:
    with WebSocketClient(port, "/api/ws") as ws:
        r.check(ws.status == 101, f"WebSocket upgrade: {ws.status}")
        ws.send(b"ping through gatehouse")
        op, payload = ws.recv()
        r.check(payload == b"ping through gatehouse", f"WebSocket echo: {payload!r}")
except Exception as exc:  # keep going: report it as a failure
    r.check(False, f"WebSocket: {exc}")
data = raw_exchange(port, b"GET /api/h2 HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings"
                          b"\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQCAAAAAAIAAAAA\r\n\r\n")
r.check(data.startswith(b"HTTP/1.1 200") and b"h2c" not in data.split(b"\r\n\r\n")[1],
        f"h2c upgrade is never granted: {data[:20]!r}")

# ---- malformed input and limits ------------------------------------------------------------
BAD = [
    (b"GET /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked"
     b"\r\n\r\n0\r\n\r\n", 400, "Content-Length with Transfer-Encoding"),
    (b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
     400, "duplicate Content-Length"),
    (b"POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello"
     b"\r\n0\r\n\r\n", 400, "invalid chunk size"),
    (b"GET /api/x HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400, "obs-fold"),
    (b"GET /api/x HTTP/1.1\r\nHost: x\r\nBad Name: v\r\n\r\n", 400, "space in a header name"),
    (b"GET /api/x HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 400,
     "space before the colon"),
    (b"GET /api/x HTTP/1.1\r\n\r\n", 400, "HTTP/1.1 without Host"),
    (b"GET /api/x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "two Host headers"),
    (b"GET /a b HTTP/1.1\r\nHost: x\r\n\r\n", 400, "space in the request target"),
    (b"GET /api/x HTTP/1.12\r\nHost: x\r\n\r\n", 400, "bad version"),
    (b"FOO /api/x HTTP/1.1\r\nHost: x\r\n\r\n", 400, "unknown method"),
    (b"GET /api/x HTTP/1.1\r\nHost: x\r\nX: a\x00b\r\n\r\n", 400, "NUL in a value"),
    (b"GET /" + b"a" * 1100 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414, "URI over max_uri_length"),
    (b"GET /api/x HTTP/1.1\r\nHost: x\r\nX-Big: " + b"v" * 9000 + b"\r\n\r\n", 431,
     "header block over max_header_size"),
    (b"GET /api/x HTTP/1.1\r\nHost: x\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(25)) +
     b"\r\n", 431, "more than max_headers"),
    (b"POST /api/x HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n", 413,
     "Content-Length over max_body_size"),
    (b"TRACE /api/x HTTP/1.1\r\nHost: x\r\n\r\n", 405, "TRACE"),
]
for raw, want, what in BAD:
    data = raw_exchange(port, raw)
    resp = parse_http_responses(data) if data else []
    got = resp[0][0] if resp else None
    r.check(got == want and len(resp) == 1, f"{what}: {want} (got {got}, {len(resp)} resp)")
# a chunked body that grows over max_body_size
big = b"".join(b"%x\r\n%s\r\n" % (65536, b"z" * 65536) for _ in range(20))
data = raw_exchange(port, b"POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked"
                          b"\r\n\r\n" + big + b"0\r\n\r\n")
r.check(b" 413 " in data.split(b"\r\n")[0] or data == b"" or data.startswith(b"HTTP/1.1 413"),
        f"chunked body over max_body_size -> 413 or cut: {data[:40]!r}")
# smuggling attempt: the second request hidden in a body never reaches the upstream as such
time.sleep(0.5)  # let the upstream finish counting what the previous checks sent it
before = a.requests
data = raw_exchange(port, b"POST /api/x HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n"
                          b"GET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n")
r.check(data.startswith(b"HTTP/1.1 400") and a.requests == before,
        f"Transfer-Encoding not ending in chunked -> 400, nothing forwarded: {data[:20]!r}")

# slow client: 408 after timeouts.client_header
s = socket.create_connection(("127.0.0.1", port), timeout=5)
s.sendall(b"GET /api/slow HTTP/1.1\r\nHost: x\r\n")
t0 = time.monotonic()
got = s.recv(4096)
s.close()
r.check(got.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 4,
        f"slow header -> 408: {got[:20]!r}")
# a client dribbling its headers a byte at a time is cut at client_header too (slowloris)
s = socket.create_connection(("127.0.0.1", port), timeout=5)
t0 = time.monotonic()
got = b""
for ch in b"GET /api/drip HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
    try:
        s.sendall(bytes([ch]))
    except OSError:
        break
    time.sleep(0.1)
    if time.monotonic() - t0 > 3:
        break
s.settimeout(3)
try:
    got = s.recv(4096)
except OSError:
    pass
s.close()
r.check(got.startswith(b"HTTP/1.1 408") and time.monotonic() - t0 < 4.5,
        f"headers dribbled over more than client_header -> 408: {got[:20]!r}")
# an idle keep-alive connection with nothing sent is closed quietly
s = socket.create_connection(("127.0.0.1", port), timeout=5)
got = s.recv(10)
s.close()
r.check(got == b"", "idle connection without a request: closed without a response")

# ---- access log ---------------------------------------------------------------------------
st, hs, body = http_request(port, "GET", "/api/log?apikey=s3cret&x=1&access_token=t0k3n")
gw.stop()
lines = gw.access_log_lines()
last = [l for l in lines if l.get("path") == "/api/log"]
r.check(len(last) == 1 and last[0]["query"] == "apikey=REDACTED&x=1&access_token=REDACTED" and
        last[0]["status"] == 200 and last[0]["route"] == "api" and last[0]["service"] == "echo"
        and last[0]["target"] == f"127.0.0.1:{a.port}", f"access log line: {last}")
everything = open(gw.access_log_path).read() + gw.stderr_text()
r.check("s3cret" not in everything and "t0k3n" not in everything,
        "credential query values never logged")
r.check(gw.returncode == 0, f"clean exit on SIGTERM ({gw.returncode})")

r.finish()
