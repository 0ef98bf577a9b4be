#!/usr/bin/env python3
"""A test upstream for gatehouse: HTTP/1.1 and WebSocket echo, Python 3 standard library only.

As a module:

    from echo_server import EchoServer
    with EchoServer("a") as up:          # 127.0.0.1, ephemeral port
        ... up.port, up.connections, up.requests, up.max_concurrent ...

As a program (the demo upstream of `make run`):

    python3 echo_server.py --port 9000 [--port 9001] [--host 127.0.0.1] [--name NAME]

HTTP is implemented on raw sockets (one thread per connection), not with http.server, so that
framing is exact: keep-alive, HTTP/1.0 close, Content-Length and chunked request bodies,
pipelining, HEAD. The answer to a request is a JSON description of what was received; request
headers named x-echo-* change the answer (see SWITCHES below and tests/support/README.md).
"""
import argparse
import base64
import collections
import hashlib
import http
import json
import re
import select
import signal
import socket
import sys
import threading
import time

PATTERN = b"abcdefghijklmnopqrstuvwxyz0123456789"
WRITE_SIZE = 64 * 1024
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

SWITCHES = {
    "x-echo-status": "N: answer with status N (100-999; 1xx other than 101 is sent as an "
                     "interim response before the normal 200)",
    "x-echo-delay-ms": "N: sleep N ms (after reading the body) before answering",
    "x-echo-body-size": "N: answer with N bytes of PATTERN repeated, streamed in 64 KiB writes",
    "x-echo-chunked": "1: send the response body chunked",
    "x-echo-close": "1: send Connection: close and close after the response",
    "x-echo-drop": "before-response | mid-body | reset: close without answering / after the "
                   "headers (Content-Length 1000) and 10 bytes / with a TCP RST",
    "x-echo-malformed": "1: answer 'HTTP/1.1 abc\\r\\n\\r\\n' and close",
    "x-echo-header-bytes": "N: add a response header x-filler with an N-byte value",
    "x-echo-set": "'Name: value': add that response header (may repeat)",
    "x-echo-no-length": "1: no Content-Length nor chunked; the body ends when the connection "
                        "closes",
}

_TOKEN = re.compile(rb"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
_REQUEST_LINE = re.compile(rb"^([!#$%&'*+\-.^_`|~0-9A-Za-z]+) ([^\s]+) HTTP/(\d)\.(\d)$")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_CHUNK_SIZE = re.compile(rb"^([0-9a-fA-F]{1,16})[ \t]*(;.*)?$")

MAX_LINE = 64 * 1024          # request line, header line, chunk-size line
MAX_HEADER_BYTES = 1024 * 1024
MAX_HEADERS = 1000
MAX_WS_PAYLOAD = 16 * 1024 * 1024


def pattern_bytes(offset, n):
    """The n bytes of the repeated PATTERN starting at byte offset (for checking downloads)."""
    start = offset % len(PATTERN)
    reps = (start + n) // len(PATTERN) + 1
    return (PATTERN * reps)[start:start + n]


_BLOCK = PATTERN * (WRITE_SIZE // len(PATTERN) + 2)


def reason(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class BadRequest(Exception):
    def __init__(self, status, why):
        super().__init__(why)
        self.status = status


class _Closed(Exception):
    """The peer went away (EOF in the middle of something)."""


class Request:
    """One parsed request; headers keep the received order and spelling."""

    def __init__(self, method, target, version, headers):
        self.method = method
        self.target = target
        self.version = version                       # "HTTP/1.1"
        self.headers = headers                       # [(name, value), ...] as str
        self.body_length = 0
        self.body_sha256 = hashlib.sha256(b"").hexdigest()
        self.body_chunked = False
        self.trailers = []

    def values(self, name):
        name = name.lower()
        return [v for n, v in self.headers if n.lower() == name]

    def first(self, name, default=None):
        v = self.values(name)
        return v[0] if v else default

    def tokens(self, name):
        return [t.strip().lower() for v in self.values(name) for t in v.split(",") if t.strip()]

    @property
    def path(self):
        t = self.target
        if t.startswith(("http://", "https://")):       # absolute-form: drop scheme://authority
            rest = t.split("://", 1)[1]
            cut = min([i for i in (rest.find("/"), rest.find("?")) if i >= 0], default=len(rest))
            t = rest[cut:]
        return t.split("?", 1)[0]

    @property
    def query(self):
        return self.target.split("?", 1)[1] if "?" in self.target else ""


class EchoServer:
    """An echo upstream on its own threads. Counters are updated under self.lock.

    connections      accepted TCP connections (also the last connection serial number)
    requests         requests whose head was parsed successfully
    active           connections open now; max_concurrent the most open at once
    in_flight        requests being answered now; max_in_flight the most at once
    websocket_frames data frames echoed
    conn_info        per connection: dict(serial, peer, opened, closed, requests, websocket,
                     tls, client_cert)
    request_log      last 10000 requests: dict(method, target, path, query, http_version,
                     headers, body_length, body_sha256, connection, request_on_connection)
    errors           reasons of the 4xx answers to bad requests, and internal errors
    """

    def __init__(self, name="echo", host="127.0.0.1", port=0, ssl_context=None,
                 idle_timeout=300.0, verbose=False):
        self.name = name
        self.host = host
        self.requested_port = port
        self.ssl_context = ssl_context
        self.idle_timeout = idle_timeout
        self.verbose = verbose
        self.port = None
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.active = 0
        self.max_concurrent = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.websocket_frames = 0
        self.conn_info = []
        self.request_log = collections.deque(maxlen=10000)
        self.errors = []
        self._listener = None
        self._stop = threading.Event()
        self._wake_r = self._wake_w = None
        self._accept_thread = None
        self._socks = {}                  # serial -> socket, open connections
        self._threads = set()

    # ---- life cycle ---------------------------------------------------------------------

    def start(self):
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((self.host, self.requested_port))
        s.listen(1024)
        self._listener = s
        self.port = s.getsockname()[1]
        self._wake_r, self._wake_w = socket.socketpair()
        self._accept_thread = threading.Thread(target=self._accept_loop, daemon=True,
                                               name=f"echo-{self.name}-accept")
        self._accept_thread.start()
        return self

    def stop(self, timeout=5.0):
        """Stops accepting, closes every open connection and waits for the threads."""
        if self._stop.is_set() or self._listener is None:
            return
        self._stop.set()
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        self._accept_thread.join(timeout)
        with self.lock:
            socks = list(self._socks.values())
            threads = list(self._threads)
        for s in socks:
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        deadline = time.monotonic() + timeout
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        for s in (self._listener, self._wake_r, self._wake_w):
            s.close()

    def __enter__(self):
        return self.start() if self._listener is None else self

    def __exit__(self, *exc):
        self.stop()

    @property
    def url(self):
        scheme = "https" if self.ssl_context else "http"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{host}:{self.port}"

    def reset_stats(self):
        """Restarts max_concurrent / max_in_flight from the current values."""
        with self.lock:
            self.max_concurrent = self.active
            self.max_in_flight = self.in_flight

    def open_connections(self):
        with self.lock:
            return [dict(c) for c in self.conn_info if c["closed"] is None]

    def wait_for(self, predicate, timeout=5.0):
        """Polls predicate(self) until it is true; returns its last value."""
        deadline = time.monotonic() + timeout
        while True:
            v = predicate(self)
            if v or time.monotonic() >= deadline:
                return v
            time.sleep(0.01)

    def _log(self, msg):
        if self.verbose:
            print(f"echo {self.name}: {msg}", file=sys.stderr, flush=True)

    def _accept_loop(self):
        while not self._stop.is_set():
            try:
                r, _, _ = select.select([self._listener, self._wake_r], [], [])
            except (OSError, ValueError):
                return
            if self._wake_r in r or self._stop.is_set():
                return
            try:
                sock, peer = self._listener.accept()
            except OSError:
                continue
            with self.lock:
                self.connections += 1
                serial = self.connections
                self.active += 1
                self.max_concurrent = max(self.max_concurrent, self.active)
                info = {"serial": serial, "peer": peer[:2], "opened": time.time(),
                        "closed": None, "requests": 0, "websocket": False,
                        "tls": self.ssl_context is not None, "client_cert": None}
                self.conn_info.append(info)
                self._socks[serial] = sock
                t = threading.Thread(target=self._serve, args=(sock, info), daemon=True,
                                     name=f"echo-{self.name}-{serial}")
                self._threads.add(t)
            t.start()

    # ---- one connection -----------------------------------------------------------------

    def _serve(self, sock, info):
        f = None
        try:
            sock.settimeout(self.idle_timeout)
            if sock.family in (socket.AF_INET, socket.AF_INET6):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.ssl_context is not None:
                sock = self.ssl_context.wrap_socket(sock, server_side=True)
                with self.lock:
                    self._socks[info["serial"]] = sock
                cert = sock.getpeercert()
                if cert:
                    info["client_cert"] = dict(x[0] for x in cert.get("subject", ()))
            f = sock.makefile("rb", buffering=WRITE_SIZE)
            while not self._stop.is_set():
                if not self._one_request(sock, f, info):
                    break
        except BadRequest as e:
            self._bad(sock, e.status, str(e))
        except (_Closed, OSError, ValueError):
            pass                             # peer went away, timeout, or stop()
        except Exception as e:               # never let a bug kill the server
            with self.lock:
                self.errors.append(f"internal error: {e!r}")
            self._log(f"internal error: {e!r}")
            self._bad(sock, 500, "internal error")
        finally:
            self._close(sock, f, info)
            with self.lock:
                info["closed"] = time.time()
                self.active -= 1
                self._socks.pop(info["serial"], None)
                self._threads.discard(threading.current_thread())

    def _close(self, sock, f, info):
        """Lingering close: FIN first, then discard what the peer still sends (briefly), so
        that a pipelined request in flight does not turn our close into a reset."""
        try:
            if not info.get("reset") and not self._stop.is_set():
                sock.shutdown(socket.SHUT_WR)
                sock.settimeout(0.1)
                deadline = time.monotonic() + 0.5
                while time.monotonic() < deadline and sock.recv(65536):
                    pass
        except (OSError, ValueError):
            pass
        try:
            if f is not None:
                f.close()
            sock.close()
        except OSError:
            pass

    def _bad(self, sock, status, why):
        with self.lock:
            self.errors.append(f"{status} {why}")
        self._log(f"{status} {why}")
        body = (why + "\n").encode()
        try:
            sock.sendall(f"HTTP/1.1 {status} {reason(status)}\r\nContent-Type: text/plain\r\n"
                         f"Content-Length: {len(body)}\r\nConnection: close\r\n"
                         f"x-echo-server: {self.name}\r\n\r\n".encode() + body)
        except OSError:
            pass

    def _read_line(self, f, what):
        line = f.readline(MAX_LINE + 1)
        if not line:
            raise _Closed()
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE:
                raise BadRequest(431 if what == "header" else 400, f"{what} line too long")
            raise _Closed()
        line = line[:-1]
        if line.endswith(b"\r"):
            line = line[:-1]
        if b"\r" in line:
            raise BadRequest(400, f"bare CR in {what} line")
        return line

    def _read_head(self, f):
        """Returns a Request, or None on a clean EOF before any byte of a request."""
        line = f.readline(MAX_LINE + 1)
        empties = 0
        while line in (b"\r\n", b"\n") and empties < 8:      # RFC 9112 2.2: skip blank lines
            empties += 1
            line = f.readline(MAX_LINE + 1)
        if not line:
            return None
        if not line.endswith(b"\n"):
            if len(line) > MAX_LINE:
                raise BadRequest(414, "request line too long")
            raise _Closed()
        line = line.rstrip(b"\n").removesuffix(b"\r")
        m = _REQUEST_LINE.match(line)
        if not m:
            raise BadRequest(400, f"malformed request line {line[:200]!r}")
        method, target, major, minor = m.groups()
        if major != b"1":
            raise BadRequest(505, "HTTP version not supported")
        version = "HTTP/1.0" if minor == b"0" else "HTTP/1.1"
        headers = []
        total = len(line)
        while True:
            hl = self._read_line(f, "header")
            if not hl:
                break
            total += len(hl) + 2
            if total > MAX_HEADER_BYTES or len(headers) >= MAX_HEADERS:
                raise BadRequest(431, "request header fields too large")
            if hl[:1] in (b" ", b"\t"):
                raise BadRequest(400, "obsolete header line folding")
            name, sep, value = hl.partition(b":")
            if not sep or not _TOKEN.match(name):
                raise BadRequest(400, f"malformed header line {hl[:200]!r}")
            value = value.strip(b" \t")
            if _BAD_VALUE.search(value):
                raise BadRequest(400, f"control character in header {name.decode()}")
            headers.append((name.decode("latin-1"), value.decode("latin-1")))
        return Request(method.decode(), target.decode("latin-1"), version, headers)

    def _read_body(self, sock, f, req):
        te = req.tokens("transfer-encoding")
        cls = req.tokens("content-length")
        if te:
            if cls:
                raise BadRequest(400, "both Transfer-Encoding and Content-Length")
            if te[-1] != "chunked" or te.count("chunked") != 1:
                raise BadRequest(400, f"unsupported transfer coding {','.join(te)}")
            length = None
        elif cls:
            if any(not c.isdigit() for c in cls) or len(set(int(c) for c in cls)) != 1:
                raise BadRequest(400, f"invalid Content-Length {','.join(cls)}")
            length = int(cls[0])
        else:
            length = 0
        if length != 0 and "100-continue" in req.tokens("expect"):
            sock.sendall(b"HTTP/1.1 100 Continue\r\n\r\n")
        h = hashlib.sha256()
        n = 0
        if length is not None:
            while n < length:
                data = f.read(min(WRITE_SIZE, length - n))
                if not data:
                    raise _Closed()
                h.update(data)
                n += len(data)
        else:
            req.body_chunked = True
            while True:
                line = self._read_line(f, "chunk size")
                m = _CHUNK_SIZE.match(line)
                if not m:
                    raise BadRequest(400, f"malformed chunk size line {line[:100]!r}")
                size = int(m.group(1), 16)
                if size == 0:
                    break
                left = size
                while left:
                    data = f.read(min(WRITE_SIZE, left))
                    if not data:
                        raise _Closed()
                    h.update(data)
                    left -= len(data)
                n += size
                if self._read_line(f, "chunk end") != b"":
                    raise BadRequest(400, "chunk data not followed by CRLF")
            while True:
                tl = self._read_line(f, "trailer")
                if not tl:
                    break
                name, sep, value = tl.partition(b":")
                if not sep or not _TOKEN.match(name):
                    raise BadRequest(400, f"malformed trailer line {tl[:200]!r}")
                req.trailers.append((name.decode("latin-1"),
                                     value.strip(b" \t").decode("latin-1")))
        req.body_length = n
        req.body_sha256 = h.hexdigest()

    def _one_request(self, sock, f, info):
        """Reads and answers one request; returns whether to keep the connection."""
        req = self._read_head(f)
        if req is None:
            return False
        if req.version == "HTTP/1.1" and len(req.values("host")) != 1:
            raise BadRequest(400, "HTTP/1.1 request needs exactly one Host header")
        with self.lock:
            self.requests += 1
            info["requests"] += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self._read_body(sock, f, req)
            entry = {"method": req.method, "target": req.target, "path": req.path,
                     "query": req.query, "http_version": req.version,
                     "headers": [list(h) for h in req.headers],
                     "body_length": req.body_length, "body_sha256": req.body_sha256,
                     "body_chunked": req.body_chunked,
                     "trailers": [list(t) for t in req.trailers],
                     "connection": info["serial"], "request_on_connection": info["requests"],
                     "server": self.name, "tls": info["tls"],
                     "remote_addr": "%s:%d" % tuple(info["peer"])}
            if info["client_cert"]:
                entry["client_cert"] = info["client_cert"]
            with self.lock:
                self.request_log.append(entry)
            upgrade = req.tokens("upgrade")
            if "websocket" in upgrade and req.first("sec-websocket-key"):
                self._websocket(sock, f, req, info)
                return False
            return self._respond(sock, req, entry, info)
        finally:
            with self.lock:
                self.in_flight -= 1

    # ---- responses ----------------------------------------------------------------------

    def _int_switch(self, req, name, lo, hi):
        v = req.first(name)
        if v is None:
            return None
        if not v.strip().isdigit() or not lo <= int(v) <= hi:
            raise BadRequest(400, f"{name} should be an integer in {lo}..{hi}")
        return int(v)

    def _respond(self, sock, req, entry, info):
        status = self._int_switch(req, "x-echo-status", 100, 999)
        delay = self._int_switch(req, "x-echo-delay-ms", 0, 3600 * 1000)
        size = self._int_switch(req, "x-echo-body-size", 0, 1 << 50)
        filler = self._int_switch(req, "x-echo-header-bytes", 0, 64 * 1024 * 1024)
        if status == 101:
            raise BadRequest(400, "x-echo-status 101 needs a WebSocket upgrade request")
        flag = lambda n: (req.first(n) or "").strip().lower() in ("1", "true", "yes", "on")
        drop = (req.first("x-echo-drop") or "").strip().lower()
        if drop not in ("", "before-response", "mid-body", "reset"):
            raise BadRequest(400, "x-echo-drop should be before-response, mid-body or reset")
        extra = []
        for v in req.values("x-echo-set"):
            n, sep, val = v.partition(":")
            if not sep or not _TOKEN.match(n.strip().encode("latin-1")):
                raise BadRequest(400, "x-echo-set should be 'Name: value'")
            extra.append((n.strip(), val.strip()))

        if delay:
            if self._stop.wait(delay / 1000.0):
                return False
        if drop == "before-response":
            return False
        if drop == "reset":
            info["reset"] = True
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            return False
        if flag("x-echo-malformed"):
            sock.sendall(b"HTTP/1.1 abc\r\n\r\n")
            return False

        http10 = req.version == "HTTP/1.0"
        conn_tokens = req.tokens("connection")
        keep = ("keep-alive" in conn_tokens) if http10 else ("close" not in conn_tokens)
        if flag("x-echo-close"):
            keep = False
        if status is not None and 100 <= status < 200:
            sock.sendall(f"HTTP/1.1 {status} {reason(status)}\r\n"
                         f"x-echo-server: {self.name}\r\n\r\n".encode())
            status = None
        status = status or 200
        no_body = status in (204, 304)
        head = req.method == "HEAD"

        if size is not None:
            ctype, body = "application/octet-stream", None
        else:
            ctype = "application/json"
            body = (json.dumps(entry) + "\n").encode()
            size = len(body)

        chunked = flag("x-echo-chunked") and not no_body
        close_delimited = flag("x-echo-no-length") and not no_body
        if chunked and http10:               # HTTP/1.0 has no chunked: fall back to close
            chunked, close_delimited = False, True
        if close_delimited:
            chunked, keep = False, False

        lines = [f"HTTP/1.1 {status} {reason(status)}"]
        if not no_body:
            lines.append(f"Content-Type: {ctype}")
        if drop == "mid-body":
            lines.append("Content-Length: 1000")
        elif chunked:
            lines.append("Transfer-Encoding: chunked")
        elif not no_body and not close_delimited:
            lines.append(f"Content-Length: {size}")
        if not keep:
            lines.append("Connection: close")
        elif http10:
            lines.append("Connection: keep-alive")
        lines.append(f"x-echo-server: {self.name}")
        if filler is not None:
            lines.append("x-filler: " + pattern_bytes(0, filler).decode())
        lines.extend(f"{n}: {v}" for n, v in extra)
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

        if drop == "mid-body":
            if not head:
                sock.sendall(pattern_bytes(0, 10))
            return False
        if no_body or head:
            return keep
        if body is not None:
            if chunked:                      # two chunks, to exercise re-framing
                half = len(body) // 2
                sock.sendall(b"%x\r\n%s\r\n%x\r\n%s\r\n0\r\n\r\n"
                             % (half, body[:half], len(body) - half, body[half:]))
            else:
                sock.sendall(body)
            return keep
        self._stream_pattern(sock, size, chunked)
        return keep

    def _stream_pattern(self, sock, size, chunked):
        view = memoryview(_BLOCK)
        sent = 0
        while sent < size:
            n = min(WRITE_SIZE, size - sent)
            start = sent % len(PATTERN)
            if chunked:
                sock.sendall(b"%x\r\n" % n)
                sock.sendall(view[start:start + n])
                sock.sendall(b"\r\n")
            else:
                sock.sendall(view[start:start + n])
            sent += n
        if chunked:
            sock.sendall(b"0\r\n\r\n")

    # ---- WebSocket ----------------------------------------------------------------------

    def _websocket(self, sock, f, req, info):
        key = req.first("sec-websocket-key").strip()
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        extra = ""
        proto = req.first("sec-websocket-protocol")
        if proto:
            extra = f"Sec-WebSocket-Protocol: {proto.split(',')[0].strip()}\r\n"
        sock.sendall(("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                      f"Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n{extra}"
                      f"x-echo-server: {self.name}\r\n\r\n").encode())
        with self.lock:
            info["websocket"] = True
        while not self._stop.is_set():
            hdr = f.read(2)
            if len(hdr) < 2:
                return
            fin, opcode = hdr[0] & 0x80, hdr[0] & 0x0F
            masked, length = hdr[1] & 0x80, hdr[1] & 0x7F
            if length == 126:
                length = int.from_bytes(self._exact(f, 2), "big")
            elif length == 127:
                length = int.from_bytes(self._exact(f, 8), "big")
            if not masked or length > MAX_WS_PAYLOAD:
                sock.sendall(ws_frame(0x8, (1002 if not masked else 1009).to_bytes(2, "big")))
                return
            mask = self._exact(f, 4)
            payload = ws_unmask(self._exact(f, length), mask)
            if opcode == 0x8:                                    # close: answer and go
                sock.sendall(ws_frame(0x8, payload[:125]))
                return
            if opcode == 0x9:                                    # ping
                sock.sendall(ws_frame(0xA, payload))
            elif opcode == 0xA:                                  # pong
                pass
            elif opcode in (0x0, 0x1, 0x2):                      # data: echo as received
                sock.sendall(ws_frame(opcode, payload, fin=bool(fin)))
                with self.lock:
                    self.websocket_frames += 1
            else:
                sock.sendall(ws_frame(0x8, (1002).to_bytes(2, "big")))
                return

    @staticmethod
    def _exact(f, n):
        data = f.read(n)
        if len(data) < n:
            raise _Closed()
        return data


def ws_unmask(data, mask):
    if not data:
        return data
    n = len(data)
    m = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return (int.from_bytes(data, "big") ^ m).to_bytes(n, "big")


def ws_frame(opcode, payload, fin=True, mask=None):
    """Encodes one WebSocket frame (masked with the 4-byte mask when given: client frames)."""
    b0 = (0x80 if fin else 0) | opcode
    n = len(payload)
    mbit = 0x80 if mask is not None else 0
    if n < 126:
        head = bytes([b0, mbit | n])
    elif n < 65536:
        head = bytes([b0, mbit | 126]) + n.to_bytes(2, "big")
    else:
        head = bytes([b0, mbit | 127]) + n.to_bytes(8, "big")
    if mask is not None:
        return head + mask + ws_unmask(payload, mask)
    return head + payload


def main(argv=None):
    ap = argparse.ArgumentParser(description="HTTP/1.1 + WebSocket echo upstream for tests.")
    ap.add_argument("--port", type=int, action="append",
                    help="port to listen on (repeatable; default 9000; 0 = ephemeral)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    ap.add_argument("--name", help="server name in answers (default echo-PORT)")
    ap.add_argument("-v", "--verbose", action="store_true", help="log bad requests to stderr")
    args = ap.parse_args(argv)
    servers = []
    for port in args.port or [9000]:
        s = EchoServer(args.name or "", args.host, port, verbose=args.verbose).start()
        if not args.name:
            s.name = f"echo-{s.port}"
        servers.append(s)
        host = f"[{args.host}]" if ":" in args.host else args.host
        print(f"listening on {host}:{s.port}", flush=True)
    # Explicit: a shell starting us in the background may have set SIGINT to "ignore".
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        while True:
            time.sleep(3600)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        for s in servers:
            s.stop(timeout=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
