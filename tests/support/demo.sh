#!/usr/bin/env bash
# `make run`: the demo upstream (two echo servers, 127.0.0.1:9000 and :9001) and gatehouse on
# conf/gatehouse.yaml, in the foreground. Ctrl-C stops both.
set -u
bin=${1:-build/gatehouse}
conf=${2:-conf/gatehouse.yaml}
here=$(cd "$(dirname "$0")" && pwd)

python3 "$here/echo_server.py" --port 9000 --port 9001 &
echo_pid=$!
trap 'kill $echo_pid 2>/dev/null; wait $echo_pid 2>/dev/null' EXIT
for _ in $(seq 100); do  # wait (10 s at most) until the demo upstream accepts
  (exec 3<>/dev/tcp/127.0.0.1/9001) 2>/dev/null && break
  sleep 0.1
done

cat <<TXT

gatehouse demo: the upstream echoes each request it receives as JSON. Try, in another shell:

  curl -i http://127.0.0.1:8000/demo/hello            # prefix route, /demo stripped
  curl -i http://127.0.0.1:8000/users/42              # regex route (GET only)
  curl -i -H 'Host: balanced.example.test' http://127.0.0.1:8000/x   # round-robin 9000/9001
  curl -i http://127.0.0.1:8000/nowhere               # 404 from the gateway
  curl -s http://127.0.0.1:8100/status                # status listener: counters, reloads
  curl -s http://127.0.0.1:8100/metrics               # Prometheus metrics
  kill -HUP \$(pgrep -f 'gatehouse -c')                # reload the configuration

Ctrl-C stops gatehouse and the demo upstream.

TXT
"$bin" -c "$conf"
