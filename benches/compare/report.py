#!/usr/bin/env python3
"""Turns the JSON reports of benches/compare/run into the Markdown section of docs/benchmarks.md.

usage: report.py RESULTS_DIR SECONDS CLIENTS WATCHERS MACHINE VERSIONS KEYS
"""
import json
import os
import sys

results, secs, clients, watchers, machine, versions, keys = sys.argv[1:8]
clients = clients.split()
watchers = watchers.split()


def load(name):
    path = os.path.join(results, name + ".json")
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def text(name):
    """The contents of RESULTS_DIR/name, or None when the run did not write it."""
    try:
        with open(os.path.join(results, name)) as f:
            return f.read()
    except OSError:
        return None


def ms(r, field):
    lat = r and r.get("latency")
    return f"{lat[field]:.2f}" if lat else "-"


def rate(r):
    return f"{r['ops_per_sec']:,.0f}" if r else "-"


def ratio(a, b):
    if not a or not b or not b["ops_per_sec"]:
        return "-"
    return f"**{a['ops_per_sec'] / b['ops_per_sec']:.2f}x**"


def errors(r):
    if not r:
        return "no report"
    if not r["errors"]:
        return "0"
    return f"{r['errors']} ({(r.get('first_error') or '')[:60]})"


out = []
p = out.append
p(f"Measured {os.popen('date -u +%Y-%m-%d').read().strip()} by `benches/compare/run`, {secs} s per run.")
p("")
p(f"- Machine: {machine}; load generator and all six servers share it.")
p(f"- Versions: {versions}.")
p("- Both clusters: 3 members on 127.0.0.1, fsync on every write (etcd's default; Sekisho always),")
p("  load sent to the leader by `sekisho operator bench` (one HTTP/1.1 keep-alive connection per")
p(f"  client, one request in flight), {int(keys):,} keys, 256-byte values.")
p("")
p("### KV throughput and latency")
p("")
p("| operation (Sekisho vs etcd) | clients | Sekisho ops/s | p50 ms | p99 ms | etcd ops/s | p50 ms | p99 ms | Sekisho/etcd | errors (Sekisho; etcd) |")
p("|---|---|---|---|---|---|---|---|---|---|")
rows = [
    ("put", "PUT `/v1/kv/k` vs `/v3/kv/put`"),
    ("get-default", "GET default vs linearizable range"),
    ("get-consistent", "GET `?consistent` vs linearizable range"),
    ("get-stale", "GET `?stale` vs serializable range"),
]
for key, label in rows:
    for c in clients:
        s, e = load(f"sekisho-{key}-{c}"), load(f"etcd-{key}-{c}")
        p(f"| {label} | {c} | {rate(s)} | {ms(s, 'p50')} | {ms(s, 'p99')} | {rate(e)} | {ms(e, 'p50')} | {ms(e, 'p99')} | {ratio(s, e)} | {errors(s)}; {errors(e)} |")
p("")
p("### Watch fan-out (Sekisho)")
p("")
p("Every watcher holds a blocking query (`?index=N&wait=5s`) on one key; a writer changes the key")
p("every 500 ms. Per watcher: time from the start of a write to that watcher's answer. Last")
p("watcher: per write, the time to the slowest watcher that saw it. CPU and peak resident memory")
p("are the leader's during the run.")
p("")
p("| watchers | writes | answers | per watcher p50 / p99 ms | last watcher p50 / p99 / max ms | leader CPU (cores) | leader peak RSS | errors |")
p("|---|---|---|---|---|---|---|---|")
for w in watchers:
    r = load(f"sekisho-watch-{w}")
    if not r:
        p(f"| {w} | no report | | | | | | |")
        continue
    f = r.get("fanout") or {}
    last = f.get("last_watcher")
    lw = f"{last['p50']:.1f} / {last['p99']:.1f} / {last['max']:.1f}" if last else "-"
    cpu_text, rss_text = text(f"watch-{w}.cpu"), text(f"watch-{w}.rss")
    cpu = f"{float(cpu_text):.2f}" if cpu_text else "-"
    rss = f"{int(rss_text) / 1024:.0f} MiB" if rss_text else "-"
    p(f"| {w} | {f.get('writes', '-')} | {r['ops']:,} | {ms(r, 'p50')} / {ms(r, 'p99')} | {lw} | {cpu} | {rss} | {errors(r)} |")
p("")
p("### Memory per key of 1 KiB")
p("")
p("Resident memory of a fresh single server (Sekisho `-server -bootstrap` with a data directory;")
p("a one-member etcd) before and after writing the keys, each once. Raw bytes are the keys' and")
p("values' lengths.")
p("")
p("| system | keys | RSS before | RSS after | growth | raw key+value bytes | growth / raw |")
p("|---|---|---|---|---|---|---|")
for sysname in ("sekisho", "etcd"):
    fields = (text(f"{sysname}-mem.rss") or "").split()
    if len(fields) != 3:
        p(f"| {sysname} | no measurement | | | | | |")
        continue
    before, after, keys = (int(x) for x in fields)
    raw = sum(len(f"mem/{n}") + 1024 for n in range(keys))
    growth = (after - before) * 1024
    p(f"| {sysname} | {keys:,} | {before / 1024:.0f} MiB | {after / 1024:.0f} MiB | {growth / 2**20:.0f} MiB | {raw / 2**20:.0f} MiB | {growth / raw:.2f}x |")
p("")
p("### Leader failover")
p("")
p("`kill -9` of the leader, then one write after another through the two survivors (new")
p("connection each, 500 ms timeout) until one is acknowledged; the killed member restarts with")
p("its data before the next round.")
p("")
p("| system | rounds | median ms | max ms | min ms | timeouts |")
p("|---|---|---|---|---|---|")
for sysname in ("sekisho", "etcd"):
    lines = text(f"{sysname}-failover.txt")
    if lines is None:
        p(f"| {sysname} | no measurement | | | | |")
        continue
    lines = lines.split()
    times = sorted(int(x) for x in lines if x.isdigit())
    timeouts = len(lines) - len(times)
    if times:
        med = times[len(times) // 2] if len(times) % 2 else (times[len(times) // 2 - 1] + times[len(times) // 2]) / 2
        p(f"| {sysname} | {len(lines)} | {med:.0f} | {times[-1]} | {times[0]} | {timeouts} |")
    else:
        p(f"| {sysname} | {len(lines)} | - | - | - | {timeouts} |")
p("")
print("\n".join(out))
