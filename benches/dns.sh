#!/usr/bin/env bash
# DNS throughput baseline: dnsperf against `sekisho agent -dev` serving 10 instances of `web`.
#
#   benches/dns.sh [seconds per run] [client counts]       e.g. benches/dns.sh 20 "10 50 100"
#
# Installs dnsperf (Debian package) when missing, builds the release binary, starts a dev
# agent on free ports, registers web1..web10 over HTTP, then runs dnsperf for
# `web.service.consul A` and `SRV` at each client count N (plain UDP, as a stub resolver asks;
# N sockets with N queries in flight, a closed loop), plus one EDNS run per type. dnsperf
# cannot drive a single outstanding query efficiently (it paces itself to a few hundred
# queries/s at -q 1 whatever the server's latency), so the lowest count is 10. Prints a Markdown table: queries/s, average, p50 and p99
# latency (from dnsperf -v per-query latencies), lost queries and response codes.
set -euo pipefail

DURATION=${1:-20}
CLIENTS=${2:-"10 50 100"}
cd "$(dirname "$0")/.."

if ! command -v dnsperf >/dev/null 2>&1; then
    SUDO=""
    [ "$(id -u)" -ne 0 ] && SUDO="sudo"
    $SUDO apt-get update
    $SUDO apt-get install -y dnsperf
fi
command -v curl >/dev/null 2>&1 || { echo "benches/dns.sh needs curl" >&2; exit 1; }

cargo build --release --bin sekisho

WORK=$(mktemp -d)
AGENT_PID=""
cleanup() {
    if [ -n "$AGENT_PID" ]; then
        kill "$AGENT_PID" 2>/dev/null || true
        wait "$AGENT_PID" 2>/dev/null || true
    fi
    rm -rf "$WORK"
}
trap cleanup EXIT

# A port free for both TCP and UDP on 127.0.0.1 (checked by binding, then released).
free_port() {
    python3 - <<'EOF'
import socket
while True:
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.bind(("127.0.0.1", 0))
    port = t.getsockname()[1]
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        u.bind(("127.0.0.1", port))
    except OSError:
        t.close()
        continue
    u.close()
    t.close()
    print(port)
    break
EOF
}

HTTP_PORT=$(free_port)
DNS_PORT=$(free_port)
# hickory logs every query at INFO; keep the agent's log to warnings so logging is not measured.
RUST_LOG=warn target/release/sekisho agent -dev -http-port="$HTTP_PORT" -dns-port="$DNS_PORT" \
    >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!

for _ in $(seq 100); do
    leader=$(curl -sf "http://127.0.0.1:$HTTP_PORT/v1/status/leader" || true)
    [ -n "$leader" ] && [ "$leader" != '""' ] && break
    sleep 0.1
done
[ -n "${leader:-}" ] || { echo "agent did not start:" >&2; cat "$WORK/agent.log" >&2; exit 1; }

for i in $(seq 1 10); do
    body="{\"Node\":\"web$i\",\"Address\":\"10.0.0.$i\",\"Service\":{\"Service\":\"web\",\"Port\":8080}}"
    [ "$(curl -sf -X PUT -d "$body" "http://127.0.0.1:$HTTP_PORT/v1/catalog/register")" = "true" ]
done

# One dnsperf run: prints a table row. $1 = qtype, $2 = clients, $3 = extra dnsperf flags.
run() {
    local qtype=$1 clients=$2 extra=${3:-}
    local threads=$(( clients < 2 ? clients : 2 ))
    echo "web.service.consul $qtype" >"$WORK/queries"
    # shellcheck disable=SC2086
    dnsperf -s 127.0.0.1 -p "$DNS_PORT" -d "$WORK/queries" -l "$DURATION" -c "$clients" -q "$clients" \
        -T "$threads" $extra -v >"$WORK/out" 2>&1
    local qps avg lost codes pcts
    qps=$(awk '/Queries per second:/ {printf "%.0f", $4}' "$WORK/out")
    avg=$(awk '/Average Latency/ {printf "%.3f", $4 * 1000}' "$WORK/out")
    lost=$(awk '/Queries lost:/ {print $3}' "$WORK/out")
    codes=$(sed -n 's/^ *Response codes: *//p' "$WORK/out")
    pcts=$(awk '/^> / {print $NF * 1000}' "$WORK/out" | sort -n | awk '
        { v[NR] = $1 }
        END { if (NR == 0) { print "- -"; exit }
              p50 = v[int(NR * 0.50) > 0 ? int(NR * 0.50) : 1]
              p99 = v[int(NR * 0.99) > 0 ? int(NR * 0.99) : 1]
              printf "%.3f %.3f", p50, p99 }')
    local transport="UDP"
    [ "$extra" = "-e" ] && transport="UDP + EDNS"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$qtype" "$transport" "$clients" "$qps" "$avg" "${pcts% *}" "${pcts#* }" "$lost" "$codes"
}

echo
echo "dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}'), ${DURATION}s per run, $(nproc) cores, $(uname -sr),$(uptime | sed 's/.*,  *load/ load/')"
echo
echo "| query | transport | clients | queries/s | avg ms | p50 ms | p99 ms | lost | response codes |"
echo "|---|---|---|---|---|---|---|---|---|"
for qtype in A SRV; do
    for c in $CLIENTS; do
        run "$qtype" "$c"
    done
    run "$qtype" 50 "-e"
done
