"""Shared helpers for gatehouse's integration tests (Python 3 standard library only).

    run(*args)                        gatehouse as a command (-t, --dump, ...)
    write_config(text)                a config file in a temporary place
    check_config(text)                gatehouse -t on a config text: (exit code, stderr)
    Results                           check() / finish(): the closing line CI recognises
    start_echo(name)                  an EchoServer (tests/support/echo_server.py) on 127.0.0.1
    Gatehouse(config, upstreams)      the daemon: -c FILE --ready-file R, ports, SIGHUP, logs
    gateway_yaml(...)                 a `gateway:` block for tests (ephemeral ports, temp log)
    http_request / HttpClient         one request / keep-alive requests over http.client
    raw_exchange                      bytes in, bytes out (pipelining, malformed input)
    parse_http_responses              splits raw bytes into responses
    WebSocketClient                   a minimal WebSocket client
    read_rss_kib(pid)                 VmRSS from /proc

Everything connects to or binds 127.0.0.1 only and has a timeout. Every process and server
started here is killed/stopped at exit (atexit, also on SIGTERM), and a daemon started from the
main thread gets SIGKILL if this process dies (setpriv --pdeathsig), so nothing is orphaned.
See tests/support/README.md.
"""
import atexit
import http.client
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

BIN = os.environ.get("GATEHOUSE_BIN", "build/gatehouse")
SRC = os.environ.get("GATEHOUSE_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "support"))
import echo_server  # noqa: E402
from echo_server import PATTERN, EchoServer, pattern_bytes, ws_frame  # noqa: E402,F401

LOCALHOST = "127.0.0.1"


def run(*args, env=None, timeout=60):
    """Runs the gatehouse binary; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def write_config(text, suffix=".yaml"):
    """Writes a config to a temporary file and returns its path (removed at exit)."""
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="gatehouse-test-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


def check_config(text):
    """`gatehouse -t` on a config written from `text` (an {access_log} placeholder becomes
    /dev/null); returns (exit code, stderr)."""
    code, out, err = run("-t", "-c", write_config(text.replace("{access_log}", "/dev/null")))
    return code, err


class Results:
    """Counts checks and prints a closing line that CI recognises."""

    def __init__(self):
        self.passed = 0
        self.failed = 0

    def check(self, ok, what):
        if ok:
            self.passed += 1
        else:
            self.failed += 1
            print(f"FAIL: {what}", flush=True)

    def finish(self):
        print(f"{self.passed} passed, {self.failed} failed", flush=True)
        sys.exit(1 if self.failed or not self.passed else 0)


# ---- clean-up at exit ---------------------------------------------------------------------

_LIVE = []              # Gatehouse instances and EchoServers to stop at exit
_TMPDIRS = []


def _cleanup():
    for obj in reversed(_LIVE):
        try:
            if isinstance(obj, Gatehouse):
                obj.kill()
            else:
                obj.stop(timeout=1)
        except Exception:
            pass
    _LIVE.clear()
    if not os.environ.get("GATEHOUSE_KEEP_TMP"):
        for d in _TMPDIRS:
            shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)
# ctest's timeout sends SIGTERM: turn it into SystemExit so that atexit still runs.
if threading.current_thread() is threading.main_thread() and \
        signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
    signal.signal(signal.SIGTERM, lambda s, f: sys.exit(128 + s))


def start_echo(name="echo", **kw):
    """Starts an EchoServer on 127.0.0.1 (ephemeral port unless port= is given); stopped at
    exit. Keyword arguments go to EchoServer (port, ssl_context, idle_timeout, verbose)."""
    kw.setdefault("host", LOCALHOST)
    s = EchoServer(name, **kw).start()
    _LIVE.append(s)
    return s


# ---- the daemon ---------------------------------------------------------------------------

class GatehouseError(RuntimeError):
    """The daemon did not start, died, or did not answer a signal in time; .stderr has its
    error log."""

    def __init__(self, msg, stderr=""):
        super().__init__(f"{msg}\n--- gatehouse stderr ---\n{stderr}--- end ---")
        self.stderr = stderr


_PLACEHOLDER = re.compile(r"\{(port|url):([A-Za-z0-9_.-]+)\}|\{(access_log|tmpdir)\}")
_RELOAD_LINE = re.compile(r"reload (succeeded|failed)")


def gateway_yaml(listen=1, status=False, access_log=True, workers=None, extra=""):
    """A config head for tests: _format_version and a `gateway:` block with `listen`
    listeners on 127.0.0.1:0, a status listener on 127.0.0.1:0 (or off), the access log in
    the Gatehouse temp dir ({access_log}) or off, and `extra` (lines indented under
    gateway:, e.g. "  limits: {max_body_size: 1k}\\n"). Append services etc."""
    ls = ", ".join(['"127.0.0.1:0"'] * listen)
    text = ('_format_version: "3.0"\n'
            "gateway:\n"
            f"  listen: [{ls}]\n"
            "  status_listen: " + ('"127.0.0.1:0"' if status else "off") + "\n"
            "  access_log: " + ('"{access_log}"' if access_log else "off") + "\n")
    if workers is not None:
        text += f"  workers: {workers}\n"
    return text + extra


class Gatehouse:
    """The daemon as a context manager:

        up = start_echo("a")
        cfg = gateway_yaml() + ("services:\\n"
                                "  - {name: s, url: 'http://127.0.0.1:{port:a}',"
                                " routes: [{name: r, paths: [/]}]}\\n")
        with Gatehouse(cfg, {"a": up}) as gw:
            status, headers, body = http_request(gw.proxy_port(), "GET", "/x")

    The config text may hold placeholders, replaced when it is written: {port:NAME} and
    {url:NAME} (NAME a key of `upstreams`, whose values are EchoServers or port numbers;
    url is http://127.0.0.1:PORT), {access_log} (a file in the temp dir) and {tmpdir}. Other
    braces (YAML flow maps) are left alone. An f-string works as well.

    start() (or `with`) writes the config, runs `GATEHOUSE_BIN -c CFG --ready-file R ARGS`
    with stdout/stderr going to files in a temp dir, and waits until R exists; on timeout or
    early exit it raises GatehouseError with the error log. GATEHOUSE_WRAPPER (e.g.
    "valgrind -q") is put before the command when set.
    """

    def __init__(self, config, upstreams=None, args=(), env=None, ready_timeout=None):
        self.upstreams = dict(upstreams or {})
        self.args = list(args)
        self.env = env
        self.ready_timeout = ready_timeout if ready_timeout is not None else \
            float(os.environ.get("GATEHOUSE_READY_TIMEOUT", "10"))
        self.tmpdir = tempfile.mkdtemp(prefix="gatehouse-it-")
        _TMPDIRS.append(self.tmpdir)
        self.config_path = os.path.join(self.tmpdir, "gatehouse.yaml")
        self.ready_path = os.path.join(self.tmpdir, "ready.json")
        self.access_log_path = os.path.join(self.tmpdir, "access.log")
        self.stderr_path = os.path.join(self.tmpdir, "stderr.log")
        self.stdout_path = os.path.join(self.tmpdir, "stdout.log")
        self.config_text = config
        self.proc = None
        self.ready = None
        self.stop_timed_out = False

    # -- config ---------------------------------------------------------------------------

    def render(self, text):
        """The config text with its placeholders replaced."""
        def sub(m):
            if m.group(3) == "access_log":
                return self.access_log_path
            if m.group(3) == "tmpdir":
                return self.tmpdir
            name = m.group(2)
            if name not in self.upstreams:
                raise KeyError(f"config placeholder {m.group(0)}: no upstream named {name!r}")
            u = self.upstreams[name]
            port = u if isinstance(u, int) else u.port
            return str(port) if m.group(1) == "port" else f"http://127.0.0.1:{port}"
        return _PLACEHOLDER.sub(sub, text)

    def write(self, text):
        """Writes the config file atomically (temp file + rename)."""
        self.config_text = text
        tmp = self.config_path + ".tmp"
        with open(tmp, "w") as f:
            f.write(self.render(text))
        os.replace(tmp, self.config_path)

    # -- life cycle -----------------------------------------------------------------------

    def start(self):
        self.write(self.config_text)
        if os.path.exists(self.ready_path):
            os.unlink(self.ready_path)
        cmd = [BIN, "-c", self.config_path, "--ready-file", self.ready_path, *self.args]
        wrapper = os.environ.get("GATEHOUSE_WRAPPER")
        if wrapper:
            cmd = shlex.split(wrapper) + cmd
        # setpriv execs the command (same pid) with "kill me when my parent thread dies".
        setpriv = shutil.which("setpriv")
        if setpriv and threading.current_thread() is threading.main_thread():
            cmd = [setpriv, "--pdeathsig", "KILL", "--"] + cmd
        env = dict(os.environ, **(self.env or {}))
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=err, env=env)
        _LIVE.append(self)
        deadline = time.monotonic() + self.ready_timeout
        while True:
            if os.path.exists(self.ready_path):
                try:
                    with open(self.ready_path) as f:
                        self.ready = json.load(f)
                    break
                except (OSError, ValueError):
                    pass            # not written by rename after all: try again
            code = self.proc.poll()
            if code is not None:
                raise GatehouseError(f"gatehouse exited with status {code} before it was "
                                     f"ready", self.stderr_text())
            if time.monotonic() > deadline:
                self.kill()
                raise GatehouseError(f"gatehouse not ready after {self.ready_timeout} s "
                                     f"(no {self.ready_path})", self.stderr_text())
            time.sleep(0.02)
        return self

    def __enter__(self):
        return self.start() if self.proc is None else self

    def __exit__(self, *exc):
        if self.alive():
            self.stop()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def returncode(self):
        return self.proc.poll() if self.proc else None

    @staticmethod
    def _port_of(addr):
        return int(addr.rsplit(":", 1)[1])

    def proxy_port(self, i=0):
        """The real port of gateway.listen[i], from the ready file."""
        return self._port_of(self.ready["listen"][i])

    def status_port(self, i=0):
        return self._port_of(self.ready["status_listen"][i])

    def send_signal(self, sig):
        self.proc.send_signal(sig)

    def reload(self, new_text=None, timeout=10.0):
        """Rewrites the config (when new_text is given; placeholders work), sends SIGHUP and
        waits for the next `reload succeeded` / `reload failed` line of the error log.
        Returns "succeeded" or "failed"; raises GatehouseError on timeout or exit."""
        before = len(_RELOAD_LINE.findall(self.stderr_text()))
        if new_text is not None:
            self.write(new_text)
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while True:
            found = _RELOAD_LINE.findall(self.stderr_text())
            if len(found) > before:
                return found[before]
            if not self.alive():
                raise GatehouseError(f"gatehouse exited with status {self.returncode} "
                                     f"during reload", self.stderr_text())
            if time.monotonic() > deadline:
                raise GatehouseError(f"no reload result after {timeout} s", self.stderr_text())
            time.sleep(0.02)

    def stop(self, sig=signal.SIGTERM, timeout=15.0):
        """Sends sig and waits for the exit; returns the exit status (negative: killed by a
        signal). After `timeout` seconds the process is killed with SIGKILL, stop_timed_out
        is set and -9 is returned."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                return self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.stop_timed_out = True
                self.kill()
        return self.proc.returncode

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass

    # -- logs -----------------------------------------------------------------------------

    def stderr_text(self):
        """The error log so far."""
        try:
            with open(self.stderr_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def stdout_text(self):
        try:
            with open(self.stdout_path, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def wait_stderr(self, regex, timeout=5.0):
        """Waits until the error log matches regex; returns the match or None."""
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(regex, self.stderr_text())
            if m or time.monotonic() > deadline:
                return m
            time.sleep(0.02)

    def access_log_lines(self, path=None):
        """The access log (gateway.access_log = {access_log}) as a list of parsed JSON
        objects; a last line still being written (no newline yet) is left out."""
        try:
            with open(path or self.access_log_path, "rb") as f:
                data = f.read().decode("utf-8", "replace")
        except OSError:
            return []
        lines = data.split("\n")[:-1]
        return [json.loads(line) for line in lines if line.strip()]

    def wait_access_log(self, n, timeout=5.0):
        """Waits until the access log has at least n lines; returns the lines."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.access_log_lines()
            if len(lines) >= n or time.monotonic() > deadline:
                return lines
            time.sleep(0.02)


# ---- HTTP clients -------------------------------------------------------------------------

def _send(conn, method, path, headers, body, host):
    items = list(headers.items()) if isinstance(headers, dict) else list(headers or [])
    names = {n.lower() for n, _ in items}
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if "host" not in names and host is not None:
        conn.putheader("Host", host)
    for n, v in items:
        conn.putheader(n, v)
    chunked = False
    if isinstance(body, str):
        body = body.encode()
    if body is None:
        if method in ("POST", "PUT", "PATCH") and "content-length" not in names \
                and "transfer-encoding" not in names:
            conn.putheader("Content-Length", "0")
    elif isinstance(body, (bytes, bytearray, memoryview)):
        if "content-length" not in names and "transfer-encoding" not in names:
            conn.putheader("Content-Length", str(len(body)))
    else:                                   # an iterable of bytes: sent chunked
        chunked = "content-length" not in names
        if chunked and "transfer-encoding" not in names:
            conn.putheader("Transfer-Encoding", "chunked")
    conn.endheaders(body, encode_chunked=chunked)


def http_request(port, method, path, headers=None, body=None, host="localhost", timeout=10):
    """One request on a new connection to 127.0.0.1:port. headers: dict or list of (name,
    value) (repeats allowed); Host defaults to `host` unless given in headers. body: bytes/str
    (Content-Length) or an iterable of bytes (chunked). Returns (status, [(name, value), ...],
    body bytes)."""
    conn = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)
    try:
        _send(conn, method, path, headers, body, host)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


class HttpClient:
    """Requests over one keep-alive connection (http.client reconnects if it was closed)."""

    def __init__(self, port, host="localhost", timeout=10):
        self.host = host
        self.conn = http.client.HTTPConnection(LOCALHOST, port, timeout=timeout)

    def request(self, method, path, headers=None, body=None):
        """Same as http_request; returns (status, headers, body)."""
        _send(self.conn, method, path, headers, body, self.host)
        resp = self.conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()

    def stream(self, method, path, headers=None, body=None):
        """Sends the request and returns the http.client response, to read in pieces."""
        _send(self.conn, method, path, headers, body, self.host)
        return self.conn.getresponse()

    def close(self):
        self.conn.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def header(headers, name, default=None):
    """The first value of header `name` (case-insensitive) in a list of (name, value)."""
    name = name.lower()
    return next((v for n, v in headers if n.lower() == name), default)


def raw_exchange(port, data, timeout=5, read_until_close=True, until=None, quiet=0.3,
                 pause=0.05, shutdown_write=False):
    """Sends bytes on a new connection to 127.0.0.1:port and returns the bytes received.
    data: bytes, or a list of bytes sent with `pause` seconds between them. Reading stops at
    the peer's close (or reset), after `timeout` seconds, when until(received) is true, or,
    with read_until_close=False, once something arrived and nothing more came for `quiet`
    seconds. shutdown_write half-closes after sending."""
    received = bytearray()
    deadline = time.monotonic() + timeout
    with socket.create_connection((LOCALHOST, port), timeout=timeout) as s:
        pieces = [data] if isinstance(data, (bytes, bytearray)) else list(data)
        try:
            for i, piece in enumerate(pieces):
                if i:
                    time.sleep(pause)
                s.sendall(piece)
            if shutdown_write:
                s.shutdown(socket.SHUT_WR)
        except OSError:
            pass                               # the peer may close early; read what it said
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            s.settimeout(min(left, quiet) if (received and not read_until_close) else left)
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except OSError:                    # reset
                break
            if not chunk:
                break
            received += chunk
            if until is not None and until(bytes(received)):
                break
    return bytes(received)


def parse_http_responses(data, head=False):
    """Splits raw bytes into [(status, [(name, value)], body), ...] following the framing
    (Content-Length, chunked, or until the end for close-delimited). 1xx interim responses
    are entries of their own. head=True: the responses have no body (answers to HEAD).
    Raises ValueError on bytes that are not a response (a truncated last one is dropped)."""
    out = []
    pos = 0
    while pos < len(data):
        end = data.find(b"\r\n\r\n", pos)
        if end < 0:
            break
        lines = data[pos:end].decode("latin-1").split("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})(?: .*)?$", lines[0])
        if not m:
            raise ValueError(f"not a status line: {lines[0]!r}")
        status = int(m.group(1))
        headers = [tuple(x.strip() for x in line.split(":", 1)) for line in lines[1:]]
        pos = end + 4
        te = (header(headers, "transfer-encoding") or "").lower()
        cl = header(headers, "content-length")
        if head or status < 200 or status in (204, 304):
            body = b""
        elif "chunked" in te:
            body = bytearray()
            while True:
                eol = data.find(b"\r\n", pos)
                if eol < 0:
                    return out
                size = int(data[pos:eol].split(b";")[0], 16)
                pos = eol + 2
                if size == 0:
                    tend = data.find(b"\r\n\r\n", pos - 2)
                    if tend < 0:
                        return out
                    pos = tend + 4
                    break
                if pos + size + 2 > len(data):
                    return out
                body += data[pos:pos + size]
                pos += size + 2
            body = bytes(body)
        elif cl is not None:
            if pos + int(cl) > len(data):
                return out
            body = data[pos:pos + int(cl)]
            pos += int(cl)
        else:
            body = data[pos:]
            pos = len(data)
        out.append((status, headers, body))
    return out


class WebSocketClient:
    """A minimal WebSocket client (RFC 6455) on 127.0.0.1:port. After construction, .status
    and .headers hold the handshake answer (101 when it succeeded)."""

    def __init__(self, port, path="/", host="localhost", headers=None, timeout=5):
        import base64
        import hashlib
        self.key = base64.b64encode(os.urandom(16)).decode()
        self.sock = socket.create_connection((LOCALHOST, port), timeout=timeout)
        self.file = self.sock.makefile("rb")
        req = [f"GET {path} HTTP/1.1", f"Host: {host}", "Upgrade: websocket",
               "Connection: Upgrade", f"Sec-WebSocket-Key: {self.key}",
               "Sec-WebSocket-Version: 13"]
        req += [f"{n}: {v}" for n, v in (headers.items() if isinstance(headers, dict)
                                         else headers or [])]
        self.sock.sendall(("\r\n".join(req) + "\r\n\r\n").encode())
        line = self.file.readline().decode("latin-1").rstrip("\r\n")
        m = re.match(r"HTTP/1\.[01] (\d{3})", line)
        self.status = int(m.group(1)) if m else None
        self.headers = []
        while True:
            hl = self.file.readline().decode("latin-1").rstrip("\r\n")
            if not hl:
                break
            n, _, v = hl.partition(":")
            self.headers.append((n.strip(), v.strip()))
        want = base64.b64encode(hashlib.sha1((self.key + echo_server.WS_GUID).encode())
                                .digest()).decode()
        self.accept_ok = header(self.headers, "sec-websocket-accept") == want

    def send(self, payload, opcode=0x1, fin=True):
        if isinstance(payload, str):
            payload = payload.encode()
        self.sock.sendall(ws_frame(opcode, payload, fin=fin, mask=os.urandom(4)))

    def recv(self):
        """Returns (opcode, payload) of the next frame, or (None, b"") at the end."""
        hdr = self.file.read(2)
        if len(hdr) < 2:
            return None, b""
        n = hdr[1] & 0x7F
        if n == 126:
            n = int.from_bytes(self.file.read(2), "big")
        elif n == 127:
            n = int.from_bytes(self.file.read(8), "big")
        mask = self.file.read(4) if hdr[1] & 0x80 else None
        payload = self.file.read(n)
        if mask:
            payload = echo_server.ws_unmask(payload, mask)
        return hdr[0] & 0x0F, payload

    def close(self):
        try:
            self.file.close()
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_rss_kib(pid="self"):
    """Resident set size of a process in KiB (VmRSS of /proc/PID/status)."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise ValueError(f"no VmRSS for {pid}")
