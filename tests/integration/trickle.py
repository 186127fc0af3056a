#!/usr/bin/python3
"""A steady trickle of UDP queries, each answer checked, each latency kept.

    trickle.py --server 127.0.0.1:PORT --rate 8 --duration 20 \\
        --spec NAME,TYPE,ADDR[ ADDR...][,SOURCE] ... [--json FILE]

Every spec is asked RATE times a second for DURATION seconds, evenly
spaced, on a socket of its own (bound to SOURCE when given: a client
address of 127/8), without waiting for the answers: a slow answer does
not slow the trickle, so every query that meets an expiry shows it.
An answer is right when its RCODE is NOERROR, its addresses of TYPE are
exactly ADDRs (any order) and it has no Extended DNS Error (a stale or
deadline answer carries one). A query with no answer within --timeout is
lost.

Prints one line per spec: queries, wrong, lost, latency percentiles
(p50, p90, p99, max, in ms) and how many took longer than --slow-ms.
With --json, all of it and every latency go to FILE. Exit 1 when any
answer was wrong or lost (the latencies never decide the exit status:
timing belongs to the bench, not to a pass/fail test).
"""
import argparse
import json
import os
import select
import socket
import sys
import time

import dns.message
import dns.rcode
import dns.rdatatype


def percentile(sorted_vals, p):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(p / 100.0 * (len(sorted_vals) - 1)))))
    return sorted_vals[k]


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--server", required=True)
    p.add_argument("--rate", type=float, default=5.0, help="queries a second per spec")
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--timeout", type=float, default=5.0)
    p.add_argument("--slow-ms", type=float, default=500.0)
    p.add_argument("--spec", action="append", required=True,
                   help="NAME,TYPE,ADDRS[,SOURCE] (ADDRS space-separated; '-' for any)")
    p.add_argument("--json")
    a = p.parse_args()

    host, _, port = a.server.rpartition(":")
    host = host.strip("[]")
    fam = socket.AF_INET6 if ":" in host else socket.AF_INET
    specs = []
    for s in a.spec:
        parts = s.split(",")
        name, qtype, addrs = parts[0], parts[1], parts[2]
        source = parts[3] if len(parts) > 3 else None
        sock = socket.socket(fam, socket.SOCK_DGRAM)
        if source:
            sock.bind((source, 0))
        sock.setblocking(False)
        specs.append({
            "name": name, "type": qtype, "source": source, "sock": sock,
            "want": None if addrs == "-" else sorted(addrs.split()),
            "rdtype": dns.rdatatype.from_text(qtype),
            "pending": {}, "lat": [], "wrong": [], "lost": 0, "sent": 0,
        })
    by_fd = {sp["sock"].fileno(): sp for sp in specs}
    interval = 1.0 / a.rate
    start = time.monotonic()
    end = start + a.duration
    next_send = start
    qid = int.from_bytes(os.urandom(2), "big")

    def receive(sp, now):
        while True:
            try:
                data = sp["sock"].recv(65535)
            except BlockingIOError:
                return
            if len(data) < 2:
                continue
            i = int.from_bytes(data[:2], "big")
            t0 = sp["pending"].pop(i, None)
            if t0 is None:
                continue
            ms = (now - t0) * 1000.0
            sp["lat"].append(ms)
            try:
                r = dns.message.from_wire(data)
            except Exception as e:  # noqa: BLE001 - any unreadable answer is wrong
                sp["wrong"].append(f"unreadable: {e}")
                continue
            got = sorted(rd.address for rr in r.answer if rr.rdtype == sp["rdtype"] for rd in rr)
            edes = [o.code for o in r.options if o.otype == 15]
            bad = []
            if r.rcode() != dns.rcode.NOERROR:
                bad.append(dns.rcode.to_text(r.rcode()))
            if sp["want"] is not None and got != sp["want"]:
                bad.append(f"addresses {got}")
            if edes:
                bad.append(f"EDE {edes}")
            if bad:
                sp["wrong"].append(f"at {t0 - start:.3f} s: " + ", ".join(bad))

    while True:
        now = time.monotonic()
        if now >= next_send and now < end:
            for sp in specs:
                qid = (qid + 1) & 0xFFFF
                q = dns.message.make_query(sp["name"], sp["rdtype"], use_edns=0, payload=1232)
                q.id = qid
                sp["pending"][qid] = time.monotonic()
                sp["sent"] += 1
                try:
                    sp["sock"].sendto(q.to_wire(), (host, int(port)))
                except OSError as e:
                    sp["wrong"].append(f"send: {e}")
                    sp["pending"].pop(qid, None)
            next_send += interval
        # Expire what waited too long.
        for sp in specs:
            for i, t0 in list(sp["pending"].items()):
                if now - t0 > a.timeout:
                    del sp["pending"][i]
                    sp["lost"] += 1
        if now >= end and not any(sp["pending"] for sp in specs):
            break
        wait = max(0.0, min(next_send - now, 0.05)) if now < end else 0.05
        r, _, _ = select.select(list(by_fd), [], [], wait)
        now = time.monotonic()
        for fd in r:
            receive(by_fd[fd], now)

    out = []
    ok = True
    for sp in specs:
        lat = sorted(sp["lat"])
        row = {
            "name": sp["name"], "type": sp["type"], "source": sp["source"],
            "queries": sp["sent"], "answers": len(lat), "wrong": len(sp["wrong"]),
            "lost": sp["lost"],
            "p50": percentile(lat, 50), "p90": percentile(lat, 90),
            "p99": percentile(lat, 99), "max": lat[-1] if lat else None,
            "slow": sum(1 for x in lat if x > a.slow_ms),
            "wrong_examples": sp["wrong"][:5], "latencies_ms": sp["lat"],
        }
        out.append(row)
        if sp["wrong"] or sp["lost"]:
            ok = False

        def f(x):
            return "-" if x is None else f"{x:.1f}"
        print(f"{sp['name']} {sp['type']}{' from ' + sp['source'] if sp['source'] else ''}: "
              f"{row['queries']} queries, {row['wrong']} wrong, {row['lost']} lost; "
              f"ms p50 {f(row['p50'])} p90 {f(row['p90'])} p99 {f(row['p99'])} "
              f"max {f(row['max'])}; {row['slow']} over {a.slow_ms:.0f} ms")
        for w in sp["wrong"][:5]:
            print("  wrong: " + w)
    if a.json:
        with open(a.json, "w") as fh:
            json.dump(out, fh)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
