"""Who the client is, and what the gateway says about itself: trusted_ips, the PROXY protocol
(v1 and v2), gateway.headers, access-log reopening on SIGUSR1, limits.max_connections."""
import json
import os
import signal
import socket
import struct
import time

from harness import (Gatehouse, Results, gateway_yaml, header, http_request,
                     parse_http_responses, raw_exchange, start_echo)

r = Results()
a = start_echo("a")
SERVICES = """
services:
  - name: echo
    url: "{url:a}"
    routes: [{name: api, paths: [/]}]
"""


def hdr(echo, name):
    """A header the echo upstream received (harness.header over its list)."""
    return header(echo["headers"], name)


# ---- a trusted peer's forwarding headers are kept ---------------------------------------------
cfg = gateway_yaml(workers=1, extra="  trusted_ips: [127.0.0.0/8, '::1']\n") + SERVICES
with Gatehouse(cfg, {"a": a}) as gw:
    st, hs, body = http_request(gw.proxy_port(), "GET", "/t", headers=[
        ("X-Forwarded-Proto", "https"), ("X-Forwarded-Host", "shop.example.com"),
        ("X-Forwarded-Port", "443"), ("X-Real-IP", "203.0.113.7"),
        ("X-Forwarded-For", "203.0.113.7"), ("X-Request-Id", "edge-1234")])
    e = json.loads(body)
    r.check(hdr(e, "x-forwarded-proto") == "https" and
            hdr(e, "x-forwarded-host") == "shop.example.com" and
            hdr(e, "x-forwarded-port") == "443" and hdr(e, "x-real-ip") == "203.0.113.7",
            "a trusted peer's X-Forwarded-* and X-Real-IP are forwarded")
    r.check(hdr(e, "x-forwarded-for") == "203.0.113.7, 127.0.0.1", "X-Forwarded-For appended")
    r.check(hdr(e, "x-request-id") == "edge-1234" and header(hs, "x-request-id") == "edge-1234",
            "a trusted peer's request id is kept")
    st, hs, body = http_request(gw.proxy_port(), "GET", "/t",
                                headers={"X-Request-Id": "bad id with spaces"})
    rid = hdr(json.loads(body), "x-request-id")
    r.check(rid != "bad id with spaces" and len(rid) == 36, f"an insane id is replaced: {rid}")

# ---- PROXY protocol ---------------------------------------------------------------------------
cfg = ('_format_version: "3.0"\n'
       "gateway:\n"
       "  listen: [{address: 127.0.0.1, port: 0, proxy_protocol: true}]\n"
       "  status_listen: off\n"
       "  workers: 1\n"
       '  access_log: "{access_log}"\n') + SERVICES
with Gatehouse(cfg, {"a": a}) as gw:
    port = gw.proxy_port()
    data = raw_exchange(port, b"PROXY TCP4 198.51.100.22 10.0.0.1 51234 443\r\n"
                              b"GET /v1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = parse_http_responses(data)
    e = json.loads(resp[0][2]) if resp else {}
    r.check(hdr(e, "x-forwarded-for") == "198.51.100.22" and
            hdr(e, "x-real-ip") == "198.51.100.22", f"PROXY v1: the client address: {e and hdr(e, 'x-forwarded-for')}")
    v2 = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x21]) + struct.pack("!H", 36) +
          socket.inet_pton(socket.AF_INET6, "2001:db8::5") +
          socket.inet_pton(socket.AF_INET6, "2001:db8::1") + struct.pack("!HH", 40000, 443))
    data = raw_exchange(port, v2 + b"GET /v2 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = parse_http_responses(data)
    e = json.loads(resp[0][2]) if resp else {}
    r.check(hdr(e, "x-forwarded-for") == "2001:db8::5", "PROXY v2 (IPv6): the client address")
    local = b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x20, 0x00]) + struct.pack("!H", 0)
    data = raw_exchange(port, local + b"GET /v2l HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    resp = parse_http_responses(data)
    r.check(resp and resp[0][0] == 200, "PROXY v2 LOCAL: served with the socket's address")
    # a v1 header split over several reads, and the 107-byte maximum
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    for piece in (b"PRO", b"XY TCP4 198.51.100.9 10.0.0.1 1 2\r", b"\nGET /split HTTP/1.1\r\n"
                  b"Host: x\r\nConnection: close\r\n\r\n"):
        s.sendall(piece)
        time.sleep(0.1)
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    resp = parse_http_responses(data)
    r.check(resp and hdr(json.loads(resp[0][2]), "x-real-ip") == "198.51.100.9",
            "PROXY v1 header split across reads")
    longest = b"PROXY TCP6 " + b"ffff:" * 7 + b"ffff " + b"ffff:" * 7 + b"ffff 65535 65535\r\n"
    r.check(len(longest) == 104, f"a long valid v1 header ({len(longest)} bytes)")
    data = raw_exchange(port, longest + b"GET /long HTTP/1.1\r\nHost: x\r\nConnection: close"
                                        b"\r\n\r\n")
    r.check(data.startswith(b"HTTP/1.1 200"), "a long v1 header is accepted")
    data = raw_exchange(port, b"PROXY TCP4 " + b"1" * 120 + b"\r\nGET / HTTP/1.1\r\n\r\n")
    r.check(data == b"", "a v1 header over 107 bytes: closed")
    data = raw_exchange(port, b"GET /no-header HTTP/1.1\r\nHost: x\r\n\r\n")
    r.check(data == b"", f"no PROXY header: closed without an answer ({data[:20]!r})")
    gw.stop()
    logged = [l for l in gw.access_log_lines() if l["path"] == "/v1"]
    r.check(logged and logged[0]["client"] == "198.51.100.22", "the access log has the client")

# ---- gateway.headers: off -----------------------------------------------------------------------
cfg = gateway_yaml(workers=1, extra="  headers: off\n") + SERVICES
with Gatehouse(cfg, {"a": a}) as gw:
    st, hs, body = http_request(gw.proxy_port(), "GET", "/h")
    names = {k.lower() for k, v in hs}
    r.check(not names & {"via", "x-request-id", "x-gatehouse-upstream-latency",
                         "x-gatehouse-proxy-latency"}, f"headers: off on proxied answers {names}")
    st, hs, body = http_request(gw.proxy_port(), "GET", "/h", host="nowhere.test")
    names = {k.lower() for k, v in hs}
    r.check(st == 200 and "server" not in names, "headers: off: no Server from the gateway")
cfg = gateway_yaml(workers=1, extra="  headers: [request_id]\n") + (
    "services:\n  - {name: echo, url: '{url:a}', routes: [{name: api, paths: [/api]}]}\n")
with Gatehouse(cfg, {"a": a}) as gw:
    st, hs, body = http_request(gw.proxy_port(), "GET", "/nowhere")
    names = {k.lower() for k, v in hs}
    r.check(st == 404 and "x-request-id" in names and "server" not in names and
            "x-gatehouse-response-latency" not in names, f"headers: [request_id] only: {names}")

# ---- SIGUSR1 reopens the access log -------------------------------------------------------------
with Gatehouse(gateway_yaml(workers=1) + SERVICES, {"a": a}) as gw:
    http_request(gw.proxy_port(), "GET", "/before")
    time.sleep(1.3)  # the per-worker buffer is written every second
    rotated = gw.access_log_path + ".1"
    os.rename(gw.access_log_path, rotated)
    gw.send_signal(signal.SIGUSR1)
    gw.wait_stderr("access log reopened")
    http_request(gw.proxy_port(), "GET", "/after")
    gw.stop()
    old = open(rotated).read()
    new = open(gw.access_log_path).read() if os.path.exists(gw.access_log_path) else ""
    r.check('"/before"' in old and '"/after"' in new and '"/after"' not in old,
            "after SIGUSR1 new lines go to the new file")

# ---- upstream host names: resolved without blocking, failures remembered briefly ---------------
cfg = gateway_yaml(workers=1) + """
services:
  - {name: byname, url: "http://localhost:{port:a}", routes: [{name: n, paths: [/byname]}]}
  - {name: nowhere, url: "http://no-such-host.invalid", routes: [{name: x, paths: [/nx]}]}
"""
with Gatehouse(cfg, {"a": a}) as gw:
    st, hs, body = http_request(gw.proxy_port(), "GET", "/byname")
    r.check(st == 200, f"a service named by host name is resolved ({st})")
    st, hs, body = http_request(gw.proxy_port(), "GET", "/nx")
    r.check(st == 503 and b"name resolution failed" in body, f"unresolvable -> 503 ({st})")
    st2, hs, body = http_request(gw.proxy_port(), "GET", "/nx")
    r.check(st2 == 503 and gw.stderr_text().count("cannot resolve no-such-host") == 1,
            "a failed resolution is cached: one lookup, logged once")

# ---- limits.max_connections ----------------------------------------------------------------------
cfg = gateway_yaml(workers=1, extra="  limits: {max_connections: 2}\n") + SERVICES
with Gatehouse(cfg, {"a": a}) as gw:
    port = gw.proxy_port()
    held = [socket.create_connection(("127.0.0.1", port)) for _ in range(2)]
    time.sleep(0.2)
    third = socket.create_connection(("127.0.0.1", port), timeout=3)
    third.sendall(b"GET /third HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    third.settimeout(0.7)
    try:
        early = third.recv(100)
    except socket.timeout:
        early = None
    r.check(early is None, f"a third connection waits while two are open ({early!r})")
    held[0].close()
    third.settimeout(5)
    late = third.recv(100)
    r.check(late.startswith(b"HTTP/1.1 200"), f"it is served once one closes ({late[:20]!r})")
    third.close()
    held[1].close()

# client_body times the gaps while the body arrives, not the wait for a slow upstream
cfg = gateway_yaml(extra="  timeouts: {client_body: 1, client_header: 1}\n") + """
services:
  - name: s
    url: "{url:a}"
    routes: [{name: r, paths: [/]}]
"""
with Gatehouse(cfg, {"a": a}) as gw:
    st, hs, body = http_request(gw.proxy_port(), "POST", "/slow",
                                headers={"x-echo-delay-ms": "2200"}, body=b"hello")
    r.check(st == 200, f"a POST to an upstream slower than client_body is answered ({st})")

r.finish()
