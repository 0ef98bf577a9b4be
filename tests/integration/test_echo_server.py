"""The test upstream (tests/support/echo_server.py) and harness.py themselves, so that they can
be trusted by the daemon's tests: echo fields, every x-echo-* switch, keep-alive, HTTP/1.0,
pipelining, chunked bodies, a 100 MiB download in constant memory, WebSocket, bad requests,
the program form, and harness.Gatehouse against a stand-in daemon."""
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

import harness
from harness import (PATTERN, GatehouseError, Gatehouse, HttpClient, Results, WebSocketClient,
                     gateway_yaml, header, http_request, parse_http_responses, pattern_bytes,
                     raw_exchange, read_rss_kib, start_echo)

r = Results()
T0 = time.monotonic()
up = start_echo("a")
P = up.port


def echo(method="GET", path="/", headers=None, body=None):
    status, hdrs, data = http_request(P, method, path, headers, body)
    return status, hdrs, json.loads(data) if data.startswith(b"{") else data


# ---- the echo body ------------------------------------------------------------------------
status, hdrs, j = echo("GET", "/a/b%20c?x=1&y", [("X-One", "1"), ("x-two", "2"), ("X-One", "3")])
r.check(status == 200 and header(hdrs, "content-type") == "application/json", "200 json")
r.check(header(hdrs, "x-echo-server") == "a", "x-echo-server names the server")
r.check((j["method"], j["path"], j["query"], j["http_version"], j["server"])
        == ("GET", "/a/b%20c", "x=1&y", "HTTP/1.1", "a"), f"request fields: {j}")
r.check(j["headers"] == [["Host", "localhost"], ["X-One", "1"], ["x-two", "2"], ["X-One", "3"]],
        f"headers in received order and spelling: {j['headers']}")
r.check(j["body_length"] == 0 and j["body_sha256"] == hashlib.sha256(b"").hexdigest(),
        "empty body")
r.check(j["request_on_connection"] == 1 and j["connection"] == up.connections, "serials")

body = os.urandom(300000)
status, _, j = echo("POST", "/up", body=body)
r.check(j["body_length"] == len(body) and j["body_sha256"] == hashlib.sha256(body).hexdigest()
        and not j["body_chunked"], "Content-Length body hashed")

pieces = [b"hello ", b"", b"chunked ", os.urandom(100000)]
status, _, j = echo("PUT", "/c", body=iter([p for p in pieces if p]))
r.check(j["body_chunked"] and j["body_length"] == sum(map(len, pieces))
        and j["body_sha256"] == hashlib.sha256(b"".join(pieces)).hexdigest(),
        "chunked request body decoded and hashed")

out = raw_exchange(P, b"POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                      b"Connection: close\r\n\r\n"
                      b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n")
resp = parse_http_responses(out)
j = json.loads(resp[0][2]) if resp else {}
r.check(j.get("body_length") == 15 and j.get("trailers") == [["X-Trailer", "t"]]
        and j.get("body_sha256") == hashlib.sha256(b"hello0123456789").hexdigest(),
        f"chunk extensions and trailers: {out[:300]!r}")

status, hdrs, data = http_request(P, "HEAD", "/h")
r.check(status == 200 and data == b"" and int(header(hdrs, "content-length")) > 0,
        "HEAD: Content-Length, no body")

# ---- keep-alive and HTTP/1.0 --------------------------------------------------------------
before = up.connections
with HttpClient(P) as c:
    js = [json.loads(c.request("GET", f"/k{i}")[2]) for i in range(3)]
r.check(len({x["connection"] for x in js}) == 1 and [x["request_on_connection"] for x in js]
        == [1, 2, 3] and up.connections == before + 1, "keep-alive reuses one connection")

out = raw_exchange(P, b"GET /old HTTP/1.0\r\n\r\n", timeout=3)
resp = parse_http_responses(out)
r.check(len(resp) == 1 and header(resp[0][1], "connection") == "close"
        and json.loads(resp[0][2])["http_version"] == "HTTP/1.0",
        f"HTTP/1.0 without keep-alive: answer then close: {out[:200]!r}")

t = time.monotonic()
out = raw_exchange(P, b"GET /ka HTTP/1.0\r\nConnection: keep-alive\r\n\r\n" * 2,
                   read_until_close=False, quiet=0.3)
resp = parse_http_responses(out)
r.check(len(resp) == 2 and all(header(h, "connection") == "keep-alive" for _, h, _ in resp)
        and json.loads(resp[1][2])["request_on_connection"] == 2,
        f"HTTP/1.0 keep-alive kept open: {out[:200]!r}")

# ---- pipelining: answers in order, even when the first is slow ----------------------------
reqs = (b"GET /p1 HTTP/1.1\r\nHost: x\r\nx-echo-delay-ms: 200\r\n\r\n"
        b"POST /p2 HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nbody"
        b"GET /p3 HTTP/1.1\r\nHost: x\r\nx-echo-chunked: 1\r\n\r\n"
        b"GET /p4 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
resp = parse_http_responses(raw_exchange(P, reqs))
js = [json.loads(b) for _, _, b in resp]
r.check([x["path"] for x in js] == ["/p1", "/p2", "/p3", "/p4"]
        and [x["request_on_connection"] for x in js] == [1, 2, 3, 4]
        and js[1]["body_length"] == 4, f"pipelined answers in order: {js}")

# ---- switches -----------------------------------------------------------------------------
status, hdrs, j = echo(headers={"x-echo-status": "418"})
r.check(status == 418 and j["path"] == "/", "x-echo-status 418 with the echo body")
out = raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-status: 503\r\nConnection: close\r\n"
                      b"\r\n")
r.check(out.startswith(b"HTTP/1.1 503 Service Unavailable\r\n"), "reason phrase")
resp = parse_http_responses(raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-status: 204\r\n"
                                            b"\r\nGET /n HTTP/1.1\r\nHost: x\r\n"
                                            b"Connection: close\r\n\r\n"))
r.check([s for s, _, _ in resp] == [204, 200] and resp[0][2] == b""
        and header(resp[0][1], "content-length") is None, "204: no body, no length")
resp = parse_http_responses(raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-status: 103\r\n"
                                            b"Connection: close\r\n\r\n"))
r.check([s for s, _, _ in resp] == [103, 200], "1xx status: interim answer then 200")
status, _, _ = http_request(P, "GET", "/", {"x-echo-status": "abc"})
r.check(status == 400, "invalid x-echo-status -> 400")

t = time.monotonic()
status, _, j = echo(headers={"x-echo-delay-ms": "300"})
r.check(status == 200 and 0.3 <= time.monotonic() - t < 2, "x-echo-delay-ms")

for n in (0, 1, 36, 100000):
    status, hdrs, data = http_request(P, "GET", "/", {"x-echo-body-size": str(n)})
    r.check(status == 200 and data == pattern_bytes(0, n) and header(hdrs, "content-length")
            == str(n) and header(hdrs, "content-type") == "application/octet-stream",
            f"x-echo-body-size {n}")

out = raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-chunked: 1\r\n"
                      b"x-echo-body-size: 150000\r\nConnection: close\r\n\r\n")
head, _, rest = out.partition(b"\r\n\r\n")
resp = parse_http_responses(out)
r.check(b"Transfer-Encoding: chunked" in head and b"Content-Length" not in head
        and rest.startswith(b"10000\r\n") and rest.endswith(b"\r\n0\r\n\r\n")
        and resp and resp[0][2] == pattern_bytes(0, 150000), "x-echo-chunked with a size")
status, hdrs, j = echo(headers={"x-echo-chunked": "1"})
r.check(header(hdrs, "transfer-encoding") == "chunked" and j["server"] == "a",
        "x-echo-chunked echo body")

t = time.monotonic()
out = raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-close: 1\r\n\r\n", timeout=5)
resp = parse_http_responses(out)
r.check(len(resp) == 1 and header(resp[0][1], "connection") == "close"
        and time.monotonic() - t < 2, "x-echo-close: Connection: close and closed")

out = raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-drop: before-response\r\n\r\n")
r.check(out == b"", f"drop before-response: {out!r}")
out = raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-drop: mid-body\r\n\r\n")
head, _, rest = out.partition(b"\r\n\r\n")
r.check(b"Content-Length: 1000" in head and rest == PATTERN[:10], f"drop mid-body: {out!r}")
out = raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-drop: reset\r\n\r\n")
r.check(out == b"", "drop reset")
out = raw_exchange(P, b"GET / HTTP/1.1\r\nHost: x\r\nx-echo-malformed: 1\r\n\r\n")
r.check(out == b"HTTP/1.1 abc\r\n\r\n", f"malformed status line: {out!r}")

status, hdrs, _ = http_request(P, "GET", "/", {"x-echo-header-bytes": "40000"})
r.check(header(hdrs, "x-filler") == pattern_bytes(0, 40000).decode(), "x-echo-header-bytes")
status, hdrs, _ = http_request(P, "GET", "/", [("x-echo-set", "X-A: 1"),
                                               ("X-Echo-Set", "Set-Cookie: s=1; Path=/")])
r.check(header(hdrs, "x-a") == "1" and header(hdrs, "set-cookie") == "s=1; Path=/",
        "x-echo-set (repeated, case-insensitive name)")

out = raw_exchange(P, b"GET /nl HTTP/1.1\r\nHost: x\r\nx-echo-no-length: 1\r\n\r\n")
head, _, rest = out.partition(b"\r\n\r\n")
r.check(b"Content-Length" not in head and b"Transfer-Encoding" not in head
        and json.loads(rest)["path"] == "/nl", "x-echo-no-length: close-delimited")

out = raw_exchange(P, b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
                      b"Expect: 100-continue\r\n\r\n", read_until_close=False, timeout=3)
r.check(out == b"HTTP/1.1 100 Continue\r\n\r\n", f"Expect: 100-continue: {out!r}")

# ---- concurrency counters -----------------------------------------------------------------
up.reset_stats()
ths = [threading.Thread(target=http_request, args=(P, "GET", "/", {"x-echo-delay-ms": "300"}))
       for _ in range(6)]
for th in ths:
    th.start()
for th in ths:
    th.join()
r.check(up.max_in_flight >= 6 and up.max_concurrent >= 6,
        f"max_concurrent {up.max_concurrent}, max_in_flight {up.max_in_flight}")
r.check(up.wait_for(lambda s: s.active == 0, 3), "connections closed afterwards")
r.check(up.request_log[-1]["path"] == "/" and all(c["closed"] for c in up.conn_info),
        "request_log and conn_info")

# ---- bad requests: 400 and close, never a dead server -------------------------------------
errors_before = len(up.errors)
BAD = [b"GARBAGE\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nno colon here\r\n\r\n",
       b"GET / HTTP/1.1\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: 1x\r\n\r\n",
       b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
       b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
       b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
       b"GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", b"GET / HTTP/1.1\r\nBad Name: x\r\n\r\n"]
for raw in BAD:
    out = raw_exchange(P, raw, timeout=3)
    r.check(out.startswith(b"HTTP/1.1 400 ") and b"Connection: close" in out,
            f"400 for {raw!r}: {out[:80]!r}")
out = raw_exchange(P, b"GET / HTTP/2.0\r\nHost: x\r\n\r\n")
r.check(out.startswith(b"HTTP/1.1 505 "), "HTTP/2.0 request line -> 505")
out = raw_exchange(P, b"GET /" + b"a" * 70000 + b" HTTP/1.1\r\n\r\n")
r.check(out.startswith(b"HTTP/1.1 414 "), "very long request line -> 414")
with socket.create_connection(("127.0.0.1", P), timeout=3) as s:      # half a request, gone
    s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
status, _, j = echo("GET", "/still")
r.check(status == 200 and j["path"] == "/still" and len(up.errors) >= errors_before + len(BAD)
        and not [e for e in up.errors if "internal" in e], f"still serving: {up.errors[-3:]}")

# ---- 100 MiB download in constant memory, and a 64 MiB streamed upload --------------------
SIZE = 100 * 1024 * 1024
want = hashlib.sha256()
for off in range(0, SIZE, 1 << 20):
    want.update(pattern_bytes(off, min(1 << 20, SIZE - off)))
got = hashlib.sha256()
n = 0
t = time.monotonic()
with HttpClient(P, timeout=30) as c:
    resp = c.stream("GET", "/big", {"x-echo-body-size": str(SIZE)})
    rss0 = rss_max = read_rss_kib()
    while True:
        piece = resp.read(65536)
        if not piece:
            break
        got.update(piece)
        n += len(piece)
        if n % (8 << 20) < 65536:
            rss_max = max(rss_max, read_rss_kib())
rss_max = max(rss_max, read_rss_kib())
r.check(n == SIZE and got.digest() == want.digest(), f"100 MiB body intact ({n} bytes)")
r.check(rss_max - rss0 <= 32 * 1024, f"RSS grew by {rss_max - rss0} KiB (limit 32 MiB)")
print(f"# 100 MiB download: {time.monotonic() - t:.2f} s, RSS +{rss_max - rss0} KiB", flush=True)

UP = 64 * 1024 * 1024
block = os.urandom(1 << 20)
rss0 = read_rss_kib()
status, _, j = echo("POST", "/upload", body=(block for _ in range(UP >> 20)))
sha = hashlib.sha256()
for _ in range(UP >> 20):
    sha.update(block)
r.check(j["body_length"] == UP and j["body_sha256"] == sha.hexdigest()
        and read_rss_kib() - rss0 <= 32 * 1024, "64 MiB chunked upload hashed as it streams")

# ---- WebSocket ----------------------------------------------------------------------------
with WebSocketClient(P, "/ws", headers={"Sec-WebSocket-Protocol": "chat, x"}) as ws:
    r.check(ws.status == 101 and ws.accept_ok
            and header(ws.headers, "sec-websocket-protocol") == "chat", "WebSocket handshake")
    ws.send("hello, ws")
    r.check(ws.recv() == (0x1, b"hello, ws"), "text frame echoed")
    big = os.urandom(70000)
    ws.send(big, opcode=0x2)
    r.check(ws.recv() == (0x2, big), "binary frame (64-bit length) echoed")
    ws.send(b"p" * 200, opcode=0x9)
    r.check(ws.recv() == (0xA, b"p" * 200), "ping -> pong")
    ws.send((1000).to_bytes(2, "big") + b"bye", opcode=0x8)
    r.check(ws.recv() == (0x8, (1000).to_bytes(2, "big") + b"bye"), "close echoed")
    r.check(ws.recv() == (None, b""), "then the connection closes")

# ---- stop() -------------------------------------------------------------------------------
other = start_echo("b")
idle = socket.create_connection(("127.0.0.1", other.port), timeout=3)   # an idle keep-alive
r.check(other.wait_for(lambda s: s.active == 1, 3), "idle connection accepted")
t = time.monotonic()
other.stop()
r.check(time.monotonic() - t < 3 and other.active == 0, "stop() closes idle connections")
try:
    socket.create_connection(("127.0.0.1", other.port), timeout=1).close()
    r.check(False, "connection refused after stop()")
except OSError:
    r.check(True, "connection refused after stop()")
idle.close()

# ---- the program form ---------------------------------------------------------------------
script = os.path.join(os.path.dirname(os.path.abspath(harness.__file__)), "..", "support",
                      "echo_server.py")
p = subprocess.Popen([sys.executable, script, "--port", "0", "--host", "127.0.0.1",
                      "--name", "prog"], stdout=subprocess.PIPE, text=True)
try:
    line = p.stdout.readline().strip()
    port = int(line.rsplit(":", 1)[1]) if line.startswith("listening on 127.0.0.1:") else 0
    r.check(port > 0, f"program prints 'listening on HOST:PORT': {line!r}")
    status, hdrs, data = http_request(port, "GET", "/prog") if port else (0, [], b"{}")
    r.check(status == 200 and json.loads(data).get("server") == "prog", "program serves")
    p.send_signal(signal.SIGINT)
    r.check(p.wait(5) == 0, "Ctrl-C stops the program, exit 0")
finally:
    if p.poll() is None:
        p.kill()
        p.wait()

# ---- harness.Gatehouse against a stand-in daemon ------------------------------------------
# The stand-in follows the daemon's contract: -c FILE --ready-file PATH, ready file by rename,
# reload result on stderr at SIGHUP, exit 0 at SIGTERM, a JSON access log line per request.
FAKE = r'''
import json, os, re, signal, sys, threading, time
sys.path.insert(0, SUPPORT)
from echo_server import EchoServer
args = sys.argv[1:]
cfg, ready = args[args.index("-c") + 1], args[args.index("--ready-file") + 1]
text = open(cfg).read()
if "refuse" in text:
    sys.exit("fake: cannot start: " + cfg)
if "hang" in text:
    time.sleep(60)
log = re.search(r'access_log: "(.*)"', text).group(1)
up = int(re.search(r"http://127.0.0.1:(\d+)", text).group(1))
servers = [EchoServer("gw%d" % i).start() for i in range(text.count('"127.0.0.1:0"'))]
def hup(*_):
    ok = "invalid" not in open(cfg).read()
    print("notice: reload " + ("succeeded" if ok else "failed"), file=sys.stderr, flush=True)
signal.signal(signal.SIGHUP, hup)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with open(log, "a") as f:
    f.write(json.dumps({"upstream_port": up}) + "\n")
with open(ready + ".tmp", "w") as f:
    json.dump({"pid": os.getpid(), "listen": ["127.0.0.1:%d" % s.port for s in servers],
               "status_listen": []}, f)
os.rename(ready + ".tmp", ready)
print("notice: ready", file=sys.stderr, flush=True)
while True:
    time.sleep(1)
'''
fake = os.path.join(tempfile.mkdtemp(prefix="gatehouse-fake-"), "fake-gatehouse")
harness._TMPDIRS.append(os.path.dirname(fake))
with open(fake, "w") as f:
    f.write(f"#!{sys.executable}\nSUPPORT = {os.path.dirname(script)!r}\n" + FAKE)
os.chmod(fake, 0o755)
real_bin, harness.BIN = harness.BIN, fake
try:
    cfg = gateway_yaml(listen=2) + ("services:\n"
                                    "  - {name: s, url: '{url:a}', routes: [{name: r, paths: [/]}]}\n")
    with Gatehouse(cfg, {"a": up}) as gw:
        r.check(gw.pid == gw.ready["pid"] and gw.alive(), "Gatehouse: ready file read")
        r.check(gw.proxy_port(1) != gw.proxy_port(0) > 0, "Gatehouse: proxy_port(i)")
        status, _, data = http_request(gw.proxy_port(1), "GET", "/via")
        r.check(status == 200 and json.loads(data)["server"] == "gw1", "listener order kept")
        r.check(gw.access_log_lines() == [{"upstream_port": up.port}],
                "placeholders {url:a} and {access_log} replaced; access_log_lines()")
        r.check(gw.reload() == "succeeded", "reload() -> succeeded")
        r.check(gw.reload(cfg + "# invalid\n") == "failed", "reload(new_text) -> failed")
        r.check(gw.reload(cfg) == "succeeded", "third reload counted separately")
        r.check(gw.stderr_text().count("reload") == 3, "stderr_text()")
        r.check(gw.stop() == 0 and not gw.alive(), "stop() -> exit status 0")
    try:
        Gatehouse(cfg + "# refuse\n", {"a": up}).start()
        r.check(False, "early exit raises GatehouseError")
    except GatehouseError as e:
        r.check("cannot start" in e.stderr and "exited with status 1" in str(e),
                "early exit raises GatehouseError with stderr")
    try:
        Gatehouse(cfg + "# hang\n", {"a": up}, ready_timeout=0.5).start()
        r.check(False, "ready timeout raises")
    except GatehouseError as e:
        r.check("not ready" in str(e), "ready timeout raises GatehouseError")
    try:
        Gatehouse("url: {url:nope}\n").start()
        r.check(False, "unknown placeholder raises")
    except KeyError:
        r.check(True, "unknown placeholder raises KeyError")
finally:
    harness.BIN = real_bin

elapsed = time.monotonic() - T0
r.check(elapsed < 60, f"whole test under 60 s ({elapsed:.1f} s)")
print(f"# {elapsed:.1f} s", flush=True)
r.finish()
