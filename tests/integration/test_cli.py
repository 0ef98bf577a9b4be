"""gatehouse's command line: -t, --dump, --version, --help, exit codes and error lines."""
import os
import re

from harness import BIN, SRC, Results, run, write_config

r = Results()

code, out, err = run("--version")
r.check(code == 0 and re.fullmatch(r"gatehouse \d+\.\d+\.\d+\n", out), f"--version: {out!r}")

code, out, err = run("--help")
r.check(code == 0 and "-t, --test" in out and "--dump" in out, "--help lists the options")

code, out, err = run("--no-such-option")
r.check(code == 2 and "usage:" in err, "unknown option -> usage on stderr, exit 2")

demo = os.path.join(SRC, "conf", "gatehouse.yaml")
code, out, err = run("-t", "-c", demo)
r.check(code == 0 and out == f"configuration {demo} is valid\n",
        f"demo config is valid: {code} {out!r} {err!r}")

code, out, err = run("--dump", "-c", demo)
r.check(code == 0 and "services:" in out and "routes:" in out, "--dump prints the snapshot")

bad = write_config('_format_version: "3.0"\n'
                   'services:\n'
                   '  - name: a\n'
                   '    url: http://127.0.0.1:9\n'
                   '    retries: 99999\n'
                   '    routes:\n'
                   '      - name: r\n'
                   '        paths: ["~/(a"]\n'
                   '      - name: r\n'
                   '        hosts: [example.com]\n')
code, out, err = run("-t", "-c", bad)
lines = err.splitlines()
r.check(code == 1, f"invalid config -> exit 1 (got {code})")
r.check(f"{bad}:5:14: services[0].retries: value should be between 0 and 32767" in lines,
        f"retries error with file:line:col and path: {err!r}")
r.check(any(l.startswith(f"{bad}:8:17: services[0].routes[0].paths[0]: invalid regex: '/(a'")
            for l in lines), f"regex error with position: {err!r}")
r.check(any(l.startswith(f"{bad}:9:15: services[0].routes[1].name: uniqueness violation")
            for l in lines), f"duplicate route name: {err!r}")
r.check(lines[-1] == f"configuration {bad} is invalid", "closing line names the file")

code, out, err = run("-t", "-c", "/nonexistent/gatehouse.yaml")
r.check(code == 1 and "cannot open" in err, f"missing file: {err!r}")

code, out, err = run("-t", "-c", write_config("a: 1\n", suffix=".conf"))
r.check(code == 1 and "unknown file type" in err, "extension decides the parser, as Kong")

# Secrets never reach the output, even when the configuration is invalid.
env = dict(os.environ, GW_IT_KEY="very-secret-value-123")
cfg = write_config('_format_version: "3.0"\n'
                   'consumers:\n'
                   '  - username: a\n'
                   '    keyauth_credentials: [{key: "{vault://env/gw-it-key}"}]\n'
                   '  - username: b\n'
                   '    keyauth_credentials: [{key: "{vault://env/gw-it-key}"}]\n')
code, out, err = run("-t", "-c", cfg, env=env)
r.check(code == 1 and "uniqueness violation" in err, f"duplicate vault key detected: {err!r}")
r.check("very-secret-value-123" not in out + err, "the secret value is not printed")

r.finish()
