#!/usr/bin/env bash
# Proxy throughput: gatehouse against nginx as a reverse proxy, both in front of the same nginx
# static upstream (1 KiB body, keep-alive), driven by wrk over keep-alive connections.
#
#   bench/run.sh
#   ROUNDS=3 DURATION=5s CONNECTIONS=100 bench/run.sh
#
# Settings (environment):
#   ROUNDS=5          measured runs per proxy, alternating gatehouse, nginx, gatehouse, ...
#   DURATION=10s      length of one measured run (wrk -d)
#   WARMUP=3s         one warm-up run per proxy before the rounds (not counted)
#   CONNECTIONS=50    wrk -c
#   THREADS=1         wrk -t
#   GATEHOUSE=build/gatehouse
#   CLIENT_CPUS=0     CPUs for wrk and the upstream nginx (taskset -c)
#   PROXY_CPUS=1      CPUs for the proxy under test
#   PIN=auto          auto: pin when the machine has 2 CPUs or more; 0: never pin
#   KEEP=0            1: keep the temporary directory (configs, logs, raw wrk output)
#   COMPARE_METRICS=0 1: also run a second gatehouse with `metrics: off` (gatehouse-nometrics),
#                     alternating with the other proxies, and report the cost of metrics
#   COMPARE_PLUGINS=0 1: also run a gatehouse with key-auth, acl, cors and request-transformer
#                     on the route (gatehouse-plugins.yaml.in) and report its cost; wrk then
#                     sends an API key and an Origin with every request, to every proxy
#
# Everything listens on 127.0.0.1, on ports found free at start. Installs wrk and nginx with
# apt-get when they are missing (as root) and makes sure the packaged nginx service is not left
# running. Everything the script starts is stopped on exit, Ctrl-C or error.
#
# Exit status: 0 when every run was clean; 1 when a run had socket errors, non-2xx/3xx
# responses or a failed wrk, or when a process could not be started (the table is still printed
# when it can be).
set -euo pipefail

ROUNDS=${ROUNDS:-5}
DURATION=${DURATION:-10s}
WARMUP=${WARMUP:-3s}
CONNECTIONS=${CONNECTIONS:-50}
THREADS=${THREADS:-1}
PIN=${PIN:-auto}
KEEP=${KEEP:-0}
COMPARE_METRICS=${COMPARE_METRICS:-0}
COMPARE_PLUGINS=${COMPARE_PLUGINS:-0}

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
GATEHOUSE=${GATEHOUSE:-$root/build/gatehouse}

log() { printf '%s\n' "$*" >&2; }
die() {
    log "bench: $*"
    exit 1
}

for v in ROUNDS CONNECTIONS THREADS; do
    [[ ${!v} =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer (got '${!v}')"
done
for v in DURATION WARMUP; do
    [[ ${!v} =~ ^[1-9][0-9]*[smh]?$ ]] || die "$v must look like 10s, 1m (got '${!v}')"
done
[ -x "$GATEHOUSE" ] || die "no gatehouse binary at $GATEHOUSE (run: make build)"
command -v python3 >/dev/null || die "python3 is needed (free ports, a sanity request)"

# --- cleanup: everything started here, and only that -------------------------------------------

work=""
started=()     # pids this script started: nginx masters, gatehouse
workers=()     # nginx worker pids (children of the masters above)
wrk_pid=""
policy_made=0  # 1 while a temporary /usr/sbin/policy-rc.d of ours is in place

is_alive() { kill -0 "$1" 2>/dev/null; }

cleanup() {
    local rc=$? pid alive
    trap - EXIT INT TERM
    [ "$policy_made" = 1 ] && rm -f /usr/sbin/policy-rc.d
    [ -n "$wrk_pid" ] && kill -TERM "$wrk_pid" 2>/dev/null
    for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for _ in $(seq 50); do  # 5 s for a clean stop
        alive=0
        for pid in $wrk_pid "${started[@]}" "${workers[@]}"; do
            is_alive "$pid" && alive=1
        done
        [ "$alive" = 0 ] && break
        sleep 0.1
    done
    for pid in $wrk_pid "${started[@]}" "${workers[@]}"; do
        kill -KILL "$pid" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    if [ -n "$work" ] && [ -d "$work" ]; then
        if [ "$KEEP" = 1 ]; then log "bench: kept $work"; else rm -rf "$work"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# --- tools -------------------------------------------------------------------------------------

nginx_bin() { command -v nginx 2>/dev/null || { [ -x /usr/sbin/nginx ] && echo /usr/sbin/nginx; }; }

nginx_pids() {  # every process named nginx, one pid per line
    local d c
    for d in /proc/[0-9]*; do
        c=$(cat "$d/comm" 2>/dev/null) || continue
        [ "$c" = nginx ] && echo "${d#/proc/}"
    done
    return 0
}

install_missing() {
    local pkgs=() before after pid
    command -v wrk >/dev/null 2>&1 || pkgs+=(wrk)
    [ -n "$(nginx_bin)" ] || pkgs+=(nginx-light)
    [ "${#pkgs[@]}" = 0 ] && return 0
    [ "$(id -u)" = 0 ] || die "missing ${pkgs[*]}: run as root, or apt-get install ${pkgs[*]}"
    log "bench: installing ${pkgs[*]}"
    before=$(nginx_pids)
    # Keep the package's maintainer scripts from starting the nginx service (Debian's
    # invoke-rc.d honours policy-rc.d; exit 101 = action forbidden).
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        policy_made=1
        printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
        chmod 755 /usr/sbin/policy-rc.d
    fi
    apt-get update -qq
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2; then
        pkgs=("${pkgs[@]/nginx-light/nginx}")  # not every release has nginx-light
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${pkgs[@]}" >&2 ||
            die "apt-get install ${pkgs[*]} failed"
    fi
    if [ "$policy_made" = 1 ]; then
        rm -f /usr/sbin/policy-rc.d
        policy_made=0
    fi
    # If the install started a system nginx anyway, stop it (and keep systemd from starting
    # it at boot). Only nginx processes that appeared during the install are touched.
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null; then
        if systemctl is-active --quiet nginx 2>/dev/null; then
            systemctl stop nginx || true
        fi
        systemctl disable nginx >/dev/null 2>&1 || true
    fi
    after=$(nginx_pids)
    local new=()
    for pid in $after; do
        grep -qx "$pid" <<<"$before" || new+=("$pid")
    done
    if [ "${#new[@]}" -gt 0 ]; then
        log "bench: the package started nginx (${new[*]}); stopping it"
        "$(nginx_bin)" -s stop 2>/dev/null || true  # default conf, /run/nginx.pid
        sleep 1
        for pid in "${new[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    fi
}

install_missing
NGINX=$(nginx_bin)
[ -n "$NGINX" ] || die "nginx not found"
command -v wrk >/dev/null || die "wrk not found"

# --- placement ---------------------------------------------------------------------------------

ncpu=$(nproc)
client_pin=()
proxy_pin=()
if [ "$PIN" != 0 ] && [ "$ncpu" -ge 2 ]; then
    client_pin=(taskset -c "${CLIENT_CPUS:-0}")
    proxy_pin=(taskset -c "${PROXY_CPUS:-1}")
    placement="wrk and upstream nginx on CPU ${CLIENT_CPUS:-0}, proxy under test on CPU ${PROXY_CPUS:-1}"
else
    placement="not pinned ($ncpu CPU)"
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/gatehouse-bench.XXXXXX")
read -r up_port gh_port ng_port gh2_port gh3_port < <(python3 -c '
import socket
ss = [socket.socket() for _ in range(5)]
for s in ss:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in ss])
')

render() {  # template output key=value...
    local in=$1 out=$2 kv expr=()
    shift 2
    for kv in "$@"; do expr+=(-e "s#@${kv%%=*}@#${kv#*=}#g"); done
    sed "${expr[@]}" "$in" >"$out"
}

wait_port() {  # port pid logfile
    for _ in $(seq 100); do
        is_alive "$2" || { cat "$3" >&2 2>/dev/null || true; die "process $2 exited at start"; }
        (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
        sleep 0.1
    done
    die "nothing accepts on 127.0.0.1:$1 after 10 s"
}

children_of() {  # pid -> its child pids, one a line
    local want=$1 d s f
    for d in /proc/[0-9]*; do
        s=$(cat "$d/stat" 2>/dev/null) || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        [ "${f[1]}" = "$want" ] && echo "${d#/proc/}"
    done
    return 0
}

cpu_ticks() {  # pids... -> "utime stime" summed (fields 14, 15 of /proc/PID/stat), clock ticks
    local pid s f user=0 sys=0
    for pid in "$@"; do
        s=$(cat "/proc/$pid/stat") || die "process $pid is gone"
        s=${s##*) }
        read -r -a f <<<"$s"
        user=$((user + f[11]))
        sys=$((sys + f[12]))
    done
    echo "$user $sys"
}

rss_kib() {  # pids... -> VmRSS summed, KiB
    local pid total=0 v
    for pid in "$@"; do
        v=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
        total=$((total + ${v:-0}))
    done
    echo "$total"
}

start_nginx() {  # name template key=value... : renders and checks the conf; REPLY = its dir
    local name=$1 tmpl=$2
    shift 2
    local dir=$work/$name
    mkdir -p "$dir/tmp" "$dir/logs"
    render "$tmpl" "$dir/nginx.conf" "DIR=$dir" "$@"
    "$NGINX" -t -q -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' 2>"$dir/check.log" ||
        { cat "$dir/check.log" >&2; die "$name: invalid nginx configuration"; }
    REPLY=$dir
}

# --- start -------------------------------------------------------------------------------------

body=$(head -c 1024 /dev/zero | tr '\0' x)

start_nginx upstream "$here/nginx-upstream.conf.in" "LISTEN=127.0.0.1:$up_port" "BODY=$body"
up_dir=$REPLY
"${client_pin[@]}" "$NGINX" -p "$up_dir" -c "$up_dir/nginx.conf" -g 'daemon off;' \
    >"$up_dir/stdout.log" 2>&1 &
up_pid=$!
started+=("$up_pid")
wait_port "$up_port" "$up_pid" "$up_dir/error.log"
mapfile -t up_workers < <(children_of "$up_pid")
workers+=("${up_workers[@]}")

start_gatehouse() {  # name port metrics(on|off) [template]: REPLY = its pid
    local name=$1 port=$2 metrics=$3 tmpl=${4:-$here/gatehouse.yaml.in} pid
    render "$tmpl" "$work/$name.yaml" \
        "LISTEN=127.0.0.1:$port" "UPSTREAM=127.0.0.1:$up_port" "METRICS=$metrics"
    "$GATEHOUSE" -t -c "$work/$name.yaml" >"$work/$name-check.log" 2>&1 ||
        { cat "$work/$name-check.log" >&2; die "$name: invalid configuration"; }
    "${proxy_pin[@]}" "$GATEHOUSE" -c "$work/$name.yaml" --ready-file "$work/$name.ready" \
        >"$work/$name.log" 2>&1 &
    pid=$!
    started+=("$pid")
    for _ in $(seq 100); do
        [ -s "$work/$name.ready" ] && break
        is_alive "$pid" || { cat "$work/$name.log" >&2; die "$name exited at start"; }
        sleep 0.1
    done
    [ -s "$work/$name.ready" ] || die "$name not ready after 10 s"
    wait_port "$port" "$pid" "$work/$name.log"
    REPLY=$pid
}

start_gatehouse gatehouse "$gh_port" on
gh_pid=$REPLY
gh_rss_idle=$(rss_kib "$gh_pid")
proxies=(gatehouse nginx)
if [ "$COMPARE_METRICS" = 1 ]; then
    start_gatehouse gatehouse-nometrics "$gh2_port" off
    gh2_pid=$REPLY
    gh2_rss_idle=$(rss_kib "$gh2_pid")
    proxies=(gatehouse gatehouse-nometrics nginx)
fi
wrk_headers=()
if [ "$COMPARE_PLUGINS" = 1 ]; then
    start_gatehouse gatehouse-plugins "$gh3_port" on "$here/gatehouse-plugins.yaml.in"
    gh3_pid=$REPLY
    gh3_rss_idle=$(rss_kib "$gh3_pid")
    proxies=("${proxies[@]:0:${#proxies[@]}-1}" gatehouse-plugins nginx)
    wrk_headers=(-H "apikey: bench-key-0123456789abcdef" -H "Origin: http://bench.example")
fi

start_nginx proxy "$here/nginx-proxy.conf.in" "LISTEN=127.0.0.1:$ng_port" \
    "UPSTREAM=127.0.0.1:$up_port"
ng_dir=$REPLY
"${proxy_pin[@]}" "$NGINX" -p "$ng_dir" -c "$ng_dir/nginx.conf" -g 'daemon off;' \
    >"$ng_dir/stdout.log" 2>&1 &
ng_pid=$!
started+=("$ng_pid")
wait_port "$ng_port" "$ng_pid" "$ng_dir/error.log"
for _ in $(seq 50); do
    mapfile -t ng_workers < <(children_of "$ng_pid")
    [ "${#ng_workers[@]}" -gt 0 ] && break
    sleep 0.1
done
[ "${#ng_workers[@]}" -gt 0 ] || die "nginx proxy: no worker process"
workers+=("${ng_workers[@]}")
ng_rss_idle=$(rss_kib "$ng_pid" "${ng_workers[@]}")

# One request through each proxy: 200 and the 1 KiB body, or stop here.
for port in "$gh_port" "$ng_port" ${gh2_pid:+"$gh2_port"} ${gh3_pid:+"$gh3_port"}; do
    python3 - "http://127.0.0.1:$port/" <<'PY' || die "sanity request to $port failed"
import sys, urllib.request
req = urllib.request.Request(sys.argv[1], headers={"apikey": "bench-key-0123456789abcdef",
                                                   "Origin": "http://bench.example"})
with urllib.request.urlopen(req, timeout=5) as r:
    body = r.read()
    if r.status != 200 or len(body) != 1024:
        sys.exit(f"{sys.argv[1]}: status {r.status}, {len(body)} bytes (want 200, 1024)")
PY
done

# --- runs --------------------------------------------------------------------------------------

clk_tck=$(getconf CLK_TCK)
anomalies=()
results=$work/results.tsv
: >"$results"

# Parses wrk --latency output: rps p50_ms p99_ms requests non2xx socket_errors
parse_wrk() {
    awk '
        function ms(v) {
            if (v ~ /us$/) return v / 1000
            if (v ~ /ms$/) return v + 0
            if (v ~ /m$/)  return v * 60000
            if (v ~ /h$/)  return v * 3600000
            if (v ~ /s$/)  return v * 1000
            return v + 0
        }
        /^ +50% / { p50 = ms($2) }
        /^ +99% / { p99 = ms($2) }
        / requests in / { req = $1 }
        /^Requests\/sec:/ { rps = $2 }
        /Non-2xx or 3xx responses:/ { bad = $NF }
        /Socket errors:/ { for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+,?$/) err += $i + 0 }
        END { printf "%s %s %s %s %d %d\n", rps, p50, p99, req, bad, err }
    ' "$1"
}

# run LABEL(gatehouse|nginx) ROUND DURATION: one wrk run against one proxy
run() {
    local name=$1 round=$2 dur=$3 port pids out rc=0 u0 s0 u1 s1 ticks rps p50 p99 req bad err cpu_us sys_pct
    if [ "$name" = gatehouse ]; then
        port=$gh_port
        pids=("$gh_pid")
    elif [ "$name" = gatehouse-nometrics ]; then
        port=$gh2_port
        pids=("$gh2_pid")
    elif [ "$name" = gatehouse-plugins ]; then
        port=$gh3_port
        pids=("$gh3_pid")
    else
        port=$ng_port
        pids=("${ng_workers[@]}")
    fi
    out=$work/wrk-$name-$round.txt
    read -r u0 s0 < <(cpu_ticks "${pids[@]}")
    "${client_pin[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$dur" --latency "${wrk_headers[@]}" \
        "http://127.0.0.1:$port/" >"$out" 2>&1 &
    wrk_pid=$!
    wait "$wrk_pid" || rc=$?
    wrk_pid=""
    read -r u1 s1 < <(cpu_ticks "${pids[@]}")
    ticks=$((u1 - u0 + s1 - s0))
    read -r rps p50 p99 req bad err < <(parse_wrk "$out")
    if [ "$rc" != 0 ] || [ -z "$rps" ] || [ "${req:-0}" = 0 ]; then
        anomalies+=("$name round $round: wrk failed (exit $rc): $(tr '\n' ' ' <"$out")")
        return 0
    fi
    [ "$bad" -gt 0 ] && anomalies+=("$name round $round: $bad non-2xx/3xx responses of $req")
    [ "$err" -gt 0 ] && anomalies+=("$name round $round: $err socket errors ($(grep 'Socket errors' "$out" | sed 's/^ *//'))")
    cpu_us=$(awk -v d="$ticks" -v hz="$clk_tck" -v n="$req" 'BEGIN { printf "%.2f", d * 1e6 / hz / n }')
    sys_pct=$(awk -v s=$((s1 - s0)) -v d="$ticks" 'BEGIN { printf "%.0f", d ? 100 * s / d : 0 }')
    if [ "$round" != warmup ]; then
        printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$round" "$rps" "$p50" "$p99" "$cpu_us" \
            "$sys_pct" "$req" >>"$results"
    fi
    log "$(printf '  %-9s %-7s %8.0f req/s  p50 %7.3f ms  p99 %7.3f ms  %6.2f CPU-us/req (%s%% sys, %d ticks, %d requests)' \
        "$name" "$round" "$rps" "$p50" "$p99" "$cpu_us" "$sys_pct" "$ticks" "$req")"
}

log "bench: upstream :$up_port, gatehouse :$gh_port, nginx :$ng_port; $placement"
log "bench: warm-up $WARMUP each, then $ROUNDS rounds of $DURATION, $CONNECTIONS connections, $THREADS thread(s)"
for p in "${proxies[@]}"; do run "$p" warmup "$WARMUP"; done
for r in $(seq "$ROUNDS"); do
    for p in "${proxies[@]}"; do run "$p" "$r" "$DURATION"; done
done
for pid in "$up_pid" "$gh_pid" "$ng_pid" ${gh2_pid:-} ${gh3_pid:-}; do
    is_alive "$pid" || anomalies+=("process $pid died during the runs")
done
gh_rss_after=$(rss_kib "$gh_pid")
ng_rss_after=$(rss_kib "$ng_pid" "${ng_workers[@]}")

# Log lines worth a look: anything gatehouse wrote at warn or above, nginx errors.
for p in gatehouse gatehouse-nometrics gatehouse-plugins; do
    if [ -s "$work/$p.log" ]; then
        anomalies+=("$p log: $(wc -l <"$work/$p.log") line(s), first: $(head -n1 "$work/$p.log")")
    fi
done
for f in "$up_dir/error.log" "$ng_dir/error.log"; do
    if grep -qE '\[(error|crit|alert|emerg)\]' "$f" 2>/dev/null; then
        anomalies+=("$f: $(grep -cE '\[(error|crit|alert|emerg)\]' "$f") error line(s), first: $(grep -m1 -E '\[(error|crit|alert|emerg)\]' "$f")")
    fi
done

# --- report ------------------------------------------------------------------------------------

median() {  # proxy column -> median over rounds
    awk -F'\t' -v p="$1" -v c="$2" '$1 == p { print $c }' "$results" | sort -g |
        awk '{ v[NR] = $1 } END {
            if (NR == 0) { print "nan"; exit }
            if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }

declare -A med
for p in "${proxies[@]}"; do
    med[$p.rps]=$(median "$p" 3)
    med[$p.p50]=$(median "$p" 4)
    med[$p.p99]=$(median "$p" 5)
    med[$p.cpu]=$(median "$p" 6)
    med[$p.sys]=$(median "$p" 7)
done

cpu_model=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)
gh_version=$("$GATEHOUSE" -v 2>&1 | head -n1)
ng_version=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //' | head -n1)
wrk_version=$(wrk -v 2>&1 | head -n1 | awk '{ print $1, $2 }' || true)

echo
echo "machine: $ncpu CPU ($cpu_model), Linux $(uname -r); $gh_version, $ng_version, $wrk_version"
echo "load: wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency${wrk_headers:+ (with an API key and an Origin)}, GET / -> 1 KiB body; $ROUNDS rounds after a $WARMUP warm-up; $placement"
echo
echo "| proxy | req/s | p50 ms | p99 ms | CPU-µs/req | idle RSS MiB |"
echo "|---|---:|---:|---:|---:|---:|"
for p in "${proxies[@]}"; do
    case $p in
        gatehouse) rss=$gh_rss_idle ;;
        gatehouse-nometrics) rss=$gh2_rss_idle ;;
        gatehouse-plugins) rss=$gh3_rss_idle ;;
        *) rss=$ng_rss_idle ;;
    esac
    printf '| %s | %.0f | %.3f | %.3f | %.2f | %s |\n' "$p" "${med[$p.rps]}" "${med[$p.p50]}" \
        "${med[$p.p99]}" "${med[$p.cpu]}" "$(mib "$rss")"
done
printf '| gatehouse / nginx | %s | %s | %s | **%s** | %s |\n' \
    "$(ratio "${med[gatehouse.rps]}" "${med[nginx.rps]}")" \
    "$(ratio "${med[gatehouse.p50]}" "${med[nginx.p50]}")" \
    "$(ratio "${med[gatehouse.p99]}" "${med[nginx.p99]}")" \
    "$(ratio "${med[gatehouse.cpu]}" "${med[nginx.cpu]}")" \
    "$(ratio "$gh_rss_idle" "$ng_rss_idle")"
if [ "$COMPARE_METRICS" = 1 ]; then
    printf '| gatehouse / gatehouse-nometrics | %s | %s | %s | **%s** | %s |\n' \
        "$(ratio "${med[gatehouse.rps]}" "${med[gatehouse-nometrics.rps]}")" \
        "$(ratio "${med[gatehouse.p50]}" "${med[gatehouse-nometrics.p50]}")" \
        "$(ratio "${med[gatehouse.p99]}" "${med[gatehouse-nometrics.p99]}")" \
        "$(ratio "${med[gatehouse.cpu]}" "${med[gatehouse-nometrics.cpu]}")" \
        "$(ratio "$gh_rss_idle" "$gh2_rss_idle")"
fi
if [ "$COMPARE_PLUGINS" = 1 ]; then
    printf '| gatehouse-plugins / gatehouse | %s | %s | %s | **%s** | %s |\n' \
        "$(ratio "${med[gatehouse-plugins.rps]}" "${med[gatehouse.rps]}")" \
        "$(ratio "${med[gatehouse-plugins.p50]}" "${med[gatehouse.p50]}")" \
        "$(ratio "${med[gatehouse-plugins.p99]}" "${med[gatehouse.p99]}")" \
        "$(ratio "${med[gatehouse-plugins.cpu]}" "${med[gatehouse.cpu]}")" \
        "$(ratio "$gh3_rss_idle" "$gh_rss_idle")"
fi
echo
echo "medians over $ROUNDS rounds; nginx CPU and RSS: worker(s) for CPU, master + worker(s) for RSS"
echo "kernel share of the proxy's CPU time (median): gatehouse ${med[gatehouse.sys]} %, nginx ${med[nginx.sys]} %"
echo "RSS after the runs: gatehouse $(mib "$gh_rss_after") MiB, nginx $(mib "$ng_rss_after") MiB"
cpu_r=$(ratio "${med[gatehouse.cpu]}" "${med[nginx.cpu]}")
p99_r=$(ratio "${med[gatehouse.p99]}" "${med[nginx.p99]}")
awk -v c="$cpu_r" -v p="$p99_r" 'BEGIN {
    printf "goal CPU-µs/req ratio <= 0.90: %s (%s); p99 no worse (ratio <= 1.00): %s (%s)\n",
        (c + 0 <= 0.9 ? "met" : "not met"), c, (p + 0 <= 1.0 ? "met" : "not met"), p }'
if [ "$COMPARE_PLUGINS" = 1 ]; then
    pl_r=$(ratio "${med[gatehouse-plugins.cpu]}" "${med[gatehouse.cpu]}")
    awk -v m="$pl_r" 'BEGIN {
        printf "goal plugins / no plugins CPU-µs/req <= 1.20: %s (%s)\n", (m + 0 <= 1.2 ? "met" : "not met"), m }'
fi
if [ "$COMPARE_METRICS" = 1 ]; then
    m_r=$(ratio "${med[gatehouse.cpu]}" "${med[gatehouse-nometrics.cpu]}")
    awk -v m="$m_r" 'BEGIN {
        printf "goal metrics on / off CPU-µs/req <= 1.03: %s (%s)\n", (m + 0 <= 1.03 ? "met" : "not met"), m }'
fi
echo
echo "per run (proxy, round, req/s, p50 ms, p99 ms, CPU-µs/req, % of it in the kernel, requests):"
sed 's/^/  /' "$results"
echo
if [ "${#anomalies[@]}" -gt 0 ]; then
    echo "anomalies:"
    printf '  %s\n' "${anomalies[@]}"
    exit 1
fi
echo "anomalies: none (no socket errors, no non-2xx/3xx responses)"
