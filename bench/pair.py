#!/usr/bin/env python3
"""bench/pair.py - the measuring half of bench/pair.sh.

Warms both proxies (one pass over the query file at full rate), then for
each round starts one dnsperf per proxy at the same fixed rate at the
same moment, reads each proxy's CPU (every thread's schedstat) before and
after, and counts its answers from its dnsperf. Prints a line per round
and the median ratio A/B. At a fixed rate each dnsperf also logs every
answer's latency (-v), and the rounds' p50 and p99 of both are printed
beside the CPU: the same minutes for both, as the CPU.
"""
import argparse
import os
import re
import statistics
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lib import cpu_ns, dnsperf_latencies, percentiles  # noqa: E402

DEVNULL = subprocess.DEVNULL


def dnsperf(t, a, seconds, rate):
    _, port, _, qset = t
    cmd = ["dnsperf", "-s", "127.0.0.1", "-p", str(port),
           "-d", os.path.join(a.data, "q-%s.txt" % qset),
           "-c", "16", "-q", "128", "-t", "2", "-l", str(seconds), "-m", a.proto]
    return cmd + (["-Q", str(rate), "-v"] if rate else [])


def completed(path):
    with open(path) as f:
        m = re.search(r"^ *Queries completed: *(\d+)", f.read(), re.M)
    return int(m.group(1)) if m else 0


def target(text):
    name, port, pid, qset = text.split(":")
    return name, int(port), int(pid), qset


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    ap.add_argument("--data", required=True)
    ap.add_argument("--proto", default="udp")
    ap.add_argument("--qps", type=int, default=5000)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--a", type=target, required=True)
    ap.add_argument("--b", type=target, required=True)
    ap.add_argument("--note", default="")
    a = ap.parse_args()
    both = [a.a, a.b]
    for t in both:
        subprocess.run(dnsperf(t, a, 2, 0), stdout=DEVNULL, stderr=DEVNULL, check=False)
    ratios = []
    per = {t[0]: [] for t in both}
    lat = {t[0]: {"p50": [], "p99": []} for t in both}
    print("%s (%s names) vs %s (%s names): proto=%s qps=%s each, %d rounds of %d s, %s" % (
        a.a[0], a.a[3], a.b[0], a.b[3], a.proto, a.qps or "as fast as answered", a.rounds,
        a.seconds, a.note))
    for r in range(a.rounds):
        outs = [os.path.join(a.run, "dnsperf-%s-%d.txt" % (t[0], r)) for t in both]
        c0 = [cpu_ns(t[2]) for t in both]
        procs = [subprocess.Popen(dnsperf(t, a, a.seconds, a.qps), stdout=open(o, "w"),
                                  stderr=subprocess.STDOUT)
                 for t, o in zip(both, outs)]
        for p in procs:
            p.wait()
        c1 = [cpu_ns(t[2]) for t in both]
        us = []
        for (name, _, _, _), o, x0, x1 in zip(both, outs, c0, c1):
            n = completed(o)
            if n == 0:
                print("pair.py: %s answered nothing (see %s)" % (name, o), file=sys.stderr)
                return 1
            us.append((x1 - x0) / 1e3 / n)
            per[name].append(us[-1])
            if a.qps:
                p50, p99, got = percentiles(dnsperf_latencies(o))
                if got:
                    lat[name]["p50"].append(p50)
                    lat[name]["p99"].append(p99)
        ratios.append(us[0] / us[1])
        extra = ""
        if a.qps and all(lat[t[0]]["p50"] for t in both):
            extra = ", p50/p99 ms %s %.3f/%.3f, %s %.3f/%.3f" % (
                a.a[0], lat[a.a[0]]["p50"][-1], lat[a.a[0]]["p99"][-1],
                a.b[0], lat[a.b[0]]["p50"][-1], lat[a.b[0]]["p99"][-1])
        print("round %d: %s %.1f us/answer, %s %.1f us/answer, ratio %.2f%s" % (
            r + 1, a.a[0], us[0], a.b[0], us[1], ratios[-1], extra))
    print("median: %s %.1f us/answer, %s %.1f us/answer; median ratio %s/%s = %.2f "
          "(min %.2f, max %.2f)" % (
              a.a[0], statistics.median(per[a.a[0]]), a.b[0], statistics.median(per[a.b[0]]),
              a.a[0], a.b[0], statistics.median(ratios), min(ratios), max(ratios)))
    if a.qps and all(lat[t[0]]["p50"] for t in both):
        med = {t[0]: {k: statistics.median(v) for k, v in lat[t[0]].items()} for t in both}
        print("median latency: p50 %s %.3f ms, %s %.3f ms (%.2f x); p99 %s %.3f ms, %s %.3f ms "
              "(%.2f x)" % (
                  a.a[0], med[a.a[0]]["p50"], a.b[0], med[a.b[0]]["p50"],
                  med[a.a[0]]["p50"] / med[a.b[0]]["p50"],
                  a.a[0], med[a.a[0]]["p99"], a.b[0], med[a.b[0]]["p99"],
                  med[a.a[0]]["p99"] / med[a.b[0]]["p99"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
