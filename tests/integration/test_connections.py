"""Downstream connection handling: keep-alive timeouts, clients that stop reading, HTTP/1.0,
absolute-form targets, 304, idle connections at shutdown, running out of descriptors."""
import json
import os
import shutil
import signal
import socket
import time

from harness import (Gatehouse, HttpClient, Results, WebSocketClient, gateway_yaml, header,
                     http_request, parse_http_responses, raw_exchange, read_rss_kib, start_echo)

r = Results()
a = start_echo("a")
SERVICES = """
services:
  - name: echo
    url: "{url:a}"
    routes: [{name: api, paths: [/]}]
"""
cfg = gateway_yaml(workers=1, extra="  timeouts: {keepalive: 1, send: 1}\n") + SERVICES

with Gatehouse(cfg, {"a": a}) as gw:
    port = gw.proxy_port()
    # an idle keep-alive connection is closed quietly after timeouts.keepalive
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n")
    first = b""
    while b"}" not in first:
        first += s.recv(65536)
    t0 = time.monotonic()
    rest = s.recv(100)
    waited = time.monotonic() - t0
    s.close()
    r.check(first.startswith(b"HTTP/1.1 200") and rest == b"" and 0.5 < waited < 3,
            f"idle keep-alive closed quietly after ~1 s ({waited:.2f} s, {rest!r})")

    # HTTP/1.0 with keep-alive asked for, then without
    data = raw_exchange(port, b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n"
                              b"GET /b HTTP/1.0\r\n\r\n")
    resp = parse_http_responses(data)
    r.check([x[0] for x in resp] == [200, 200] and
            header(resp[1][1], "connection", "").lower() == "close",
            f"HTTP/1.0 keep-alive then close: {[x[0] for x in resp]}")

    # absolute-form request target: the authority is the host
    data = raw_exchange(port, b"GET http://abs.example.test/p?q=1 HTTP/1.1\r\n"
                              b"Host: ignored.example\r\nConnection: close\r\n\r\n")
    resp = parse_http_responses(data)
    e = json.loads(resp[0][2]) if resp else {}
    r.check(e.get("path") == "/p" and e.get("query") == "q=1", f"absolute-form target: {e.get('target')}")
    xfh = [v for k, v in e.get("headers", []) if k.lower() == "x-forwarded-host"]
    r.check(xfh == ["abs.example.test"], f"the authority is the forwarded host: {xfh}")

    # 304 has no body even with a length from the upstream
    st, hs, body = http_request(port, "GET", "/nm", headers={"x-echo-status": "304"})
    r.check(st == 304 and body == b"", "304 without body")

    # a client that stops reading is cut after timeouts.send
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /big HTTP/1.1\r\nHost: x\r\nx-echo-body-size: 67108864\r\n\r\n")
    time.sleep(4)  # read nothing: gatehouse's output fills, then send (1 s) expires
    got = 0
    s.settimeout(5)
    try:
        while True:
            chunk = s.recv(1 << 20)
            if not chunk:
                break
            got += len(chunk)
    except OSError:
        pass
    s.close()
    r.check(got < 64 << 20, f"a client that stops reading is cut ({got >> 20} MiB of 64 read)")
    st, hs, body = http_request(port, "GET", "/after")
    r.check(st == 200, "still serving")

    # at shutdown, idle keep-alive connections are closed at once
    with HttpClient(port) as c:
        r.check(c.request("GET", "/idle")[0] == 200, "a keep-alive connection")
        t0 = time.monotonic()
        code = gw.stop(signal.SIGTERM, timeout=10)
        r.check(code == 0 and time.monotonic() - t0 < 2,
                f"idle keep-alive connections do not delay shutdown ({time.monotonic() - t0:.2f} s)")

# a WebSocket whose client sends without reading: the tunnel pushes back instead of buffering
cfg = gateway_yaml(workers=1, access_log=False) + SERVICES
with Gatehouse(cfg, {"a": a}) as gw:
    sanitized = os.environ.get("GATEHOUSE_SANITIZED") == "1"
    total = (16 if sanitized else 128) << 20
    ws = WebSocketClient(gw.proxy_port(), "/ws", timeout=5)
    r.check(ws.status == 101, f"WebSocket open ({ws.status})")
    rss0 = read_rss_kib(gw.pid)
    frame = os.urandom(64 << 10)
    sent = 0
    try:
        while sent < total:
            ws.send(frame, opcode=0x2)
            sent += len(frame)
    except OSError:
        pass  # the send blocks once every buffer on the way is full: that is the point
    time.sleep(0.5)
    grew = (read_rss_kib(gw.pid) - rss0) / 1024
    r.check(sent < total, f"the sender was held back after {sent >> 20} MiB of {total >> 20}")
    if not sanitized:
        r.check(grew < 32, f"gatehouse's RSS grew {grew:.1f} MiB with a reader that stopped")
    ws.sock.settimeout(10)
    op, payload = ws.recv()
    r.check(op == 0x2 and payload == frame, "the tunnel still flows once the client reads")
    ws.sock.close()

# running out of file descriptors: accepting pauses instead of spinning, then resumes
prlimit = shutil.which("prlimit")
if prlimit:
    cfg = gateway_yaml(workers=1, access_log=False) + SERVICES
    with Gatehouse(cfg, {"a": a}, env=None) as probe:
        pass  # the binary starts: the next instance runs under a descriptor limit
    os.environ["GATEHOUSE_WRAPPER"] = f"{prlimit} --nofile=40:40"
    try:
        gw = Gatehouse(cfg, {"a": a}).start()
    finally:
        del os.environ["GATEHOUSE_WRAPPER"]
    port = gw.proxy_port()
    held = []
    for _ in range(60):
        try:
            held.append(socket.create_connection(("127.0.0.1", port), timeout=2))
        except OSError:
            break
    time.sleep(0.5)

    def cpu_ticks(pid):
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])

    t0 = cpu_ticks(gw.pid)
    time.sleep(1.0)
    used = (cpu_ticks(gw.pid) - t0) / os.sysconf("SC_CLK_TCK")
    r.check(used < 0.3, f"out of descriptors: no busy loop ({used:.2f} s CPU in 1 s)")
    r.check("pausing 100 ms" in gw.stderr_text(), "EMFILE is logged and accepting paused")
    for s in held:
        s.close()
    time.sleep(0.5)
    st, hs, body = http_request(port, "GET", "/recovered", timeout=5)
    r.check(st == 200, f"served again once descriptors are free ({st})")
    r.check(gw.stop() == 0, "clean exit")
else:
    print("prlimit not found: descriptor exhaustion not tested")

r.finish()
