"""Shared helpers for gatehouse's integration tests (Python 3 standard library only)."""
import os
import subprocess
import sys
import tempfile

BIN = os.environ.get("GATEHOUSE_BIN", "build/gatehouse")
SRC = os.environ.get("GATEHOUSE_SRC", os.path.join(os.path.dirname(__file__), "..", ".."))


def run(*args, env=None, timeout=60):
    """Runs the gatehouse binary; returns (exit code, stdout, stderr)."""
    p = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout, env=env)
    return p.returncode, p.stdout, p.stderr


def write_config(text, suffix=".yaml"):
    """Writes a config to a temporary file and returns its path (removed at exit)."""
    fd, path = tempfile.mkstemp(suffix=suffix, prefix="gatehouse-test-")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    import atexit
    atexit.register(lambda: os.path.exists(path) and os.unlink(path))
    return path


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
