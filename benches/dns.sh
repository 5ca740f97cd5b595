#!/usr/bin/env bash
# DNS throughput: dnsperf against `sekisho agent -dev` serving 10 instances of `web`, and
# against knot (Debian `knot`, installed when missing) serving the same names from a static
# zone, the ceiling reference on this machine; the last table is the ratio per row.
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

if [ -z "${SEKISHO_BIN:-}" ]; then
    cargo build --release --bin sekisho
fi
BIN=${SEKISHO_BIN:-target/release/sekisho}

WORK=$(mktemp -d)
AGENT_PID=""
KNOT_PID=""
cleanup() {
    [ -n "$KNOT_PID" ] && kill "$KNOT_PID" 2>/dev/null
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
RUST_LOG=warn "$BIN" agent -dev -http-port="$HTTP_PORT" -dns-port="$DNS_PORT" \
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

# One dnsperf run: prints a table row. $1 = server label, $2 = port, $3 = name, $4 = qtype,
# $5 = clients, $6 = extra dnsperf flags.
run() {
    local server=$1 port=$2 name=$3 qtype=$4 clients=$5 extra=${6:-}
    local threads=$(( clients < 2 ? clients : 2 ))
    echo "$name $qtype" >"$WORK/queries"
    # shellcheck disable=SC2086
    dnsperf -s 127.0.0.1 -p "$port" -d "$WORK/queries" -l "$DURATION" -c "$clients" -q "$clients" \
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
    [ "$extra" = "-e" ] && transport="EDNS"
    echo "$server|$name $qtype|$transport|$clients|$qps" >>"$WORK/rows"
    printf '| %s | %s %s | %s | %s | %s | %s | %s | %s | %s | %s |\n' \
        "$server" "$name" "$qtype" "$transport" "$clients" "$qps" "$avg" "${pcts% *}" "${pcts#* }" "$lost" "$codes"
}

# The same runs against one server.
runs() {
    local server=$1 port=$2 q
    for q in "web.service.consul A" "web.service.consul SRV" "web1.node.consul A"; do
        for c in $CLIENTS; do
            run "$server" "$port" "${q% *}" "${q#* }" "$c"
        done
        run "$server" "$port" "${q% *}" "${q#* }" 50 "-e"
    done
}

# Knot, the ceiling on this machine: an authoritative server answering a static zone shaped
# like Sekisho's answers (10 A and 10 SRV records for web, node A records, TTL 0).
start_knot() {
    local knotd
    knotd=$(command -v knotd || echo /usr/sbin/knotd)
    if [ ! -x "$knotd" ]; then
        local sudo=""
        [ "$(id -u)" -ne 0 ] && sudo="sudo"
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq knot >/dev/null || return 1
        knotd=$(command -v knotd || echo /usr/sbin/knotd)
    fi
    KNOT_VERSION=$("$knotd" -V 2>/dev/null | awk '{print $NF}')
    KNOT_PORT=$(free_port)
    mkdir -p "$WORK/knot"
    {
        echo "\$ORIGIN consul."
        echo "\$TTL 0"
        echo "@ SOA ns.consul. hostmaster.consul. 1 3600 600 86400 0"
        echo "@ NS ns.consul."
        echo "ns A 127.0.0.1"
        for i in $(seq 1 10); do
            echo "web.service A 10.0.0.$i"
            echo "web.service SRV 1 1 8080 web$i.node.dc1.consul."
            echo "web$i.node A 10.0.0.$i"
            echo "web$i.node.dc1 A 10.0.0.$i"
        done
    } >"$WORK/knot/consul.zone"
    printf 'server:\n    listen: 127.0.0.1@%s\n    rundir: %s\ndatabase:\n    storage: %s\nzone:\n  - domain: consul\n    storage: %s\n    file: consul.zone\n' \
        "$KNOT_PORT" "$WORK/knot" "$WORK/knot" "$WORK/knot" >"$WORK/knot/knot.conf"
    "$knotd" -c "$WORK/knot/knot.conf" >"$WORK/knot.log" 2>&1 &
    KNOT_PID=$!
    echo "web.service.consul A" >"$WORK/probe"
    local done_
    for _ in $(seq 100); do
        done_=$(dnsperf -s 127.0.0.1 -p "$KNOT_PORT" -d "$WORK/probe" -n 1 -t 1 2>/dev/null | awk '/Queries completed:/ {print $3}')
        [ "${done_:-0}" = 1 ] && return 0
        sleep 0.1
    done
    echo "knotd did not start:" >&2
    cat "$WORK/knot.log" >&2
    return 1
}

echo
echo "dnsperf $(dnsperf -h 2>&1 | awk '/^Version/ {print $2}'), ${DURATION}s per run, $(nproc) cores, $(uname -sr),$(uptime | sed 's/.*,  *load/ load/')"
echo
echo "| server | query | transport | clients | queries/s | avg ms | p50 ms | p99 ms | lost | response codes |"
echo "|---|---|---|---|---|---|---|---|---|---|"
: >"$WORK/rows"
runs Sekisho "$DNS_PORT"
if start_knot; then
    runs "knot $KNOT_VERSION" "$KNOT_PORT"
    kill "$KNOT_PID" 2>/dev/null || true
    echo
    echo "| query | transport | clients | Sekisho / knot queries/s |"
    echo "|---|---|---|---|"
    awk -F'|' '$1 == "Sekisho" { k = $2 "|" $3 "|" $4; s[k] = $5; order[++n] = k; next }
               { o[$2 "|" $3 "|" $4] = $5 }
               END { for (i = 1; i <= n; i++) { k = order[i]; split(k, f, "|");
                       r = (o[k] > 0) ? sprintf("%.2f", s[k] / o[k]) : "-";
                       printf "| %s | %s | %s | %s |\n", f[1], f[2], f[3], r } }' "$WORK/rows"
else
    echo "(knot could not be started: no ceiling reference in this run)"
fi
