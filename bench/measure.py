#!/usr/bin/python3
"""bench/measure.py - bench/run.sh's load runs and what it measures in them.

bench/run.sh starts and stops the targets; each call here drives one of
them with a bounded load and appends key=value records to RUN/results.txt
(bench/report.py turns them into the table) and notes to RUN/notes.txt.

  measure.py sat KIND TRANSPORT SET --target T --port P --proxy-pid PID
             --bind-pid PID [--pin CPUS]
      a saturation run (DURATION s, as fast as it goes) over the names of
      SET (plain or flat) with CPU accounting of the proxy, BIND, the load
      tool and the rest of the machine; prints "QPS CPU_US"
  measure.py lat TRANSPORT --target T --port P [--proxy-pid PID]
      a latency run at LAT_QPS for LAT_DURATION s, its p50 and p99 and
      the proxy's CPU per answer at that fixed rate
  measure.py warm --target T --port P
      one pass over every name (UDP), so caches start warm
  measure.py apexd-exit NAME LABEL [TRANSPORT RUN_KIND]
      after apexd NAME stopped: its exit counters and what it logged, as
      notes; with TRANSPORT and RUN_KIND, the SERVFAILs it sent in that
      run as a record; its log is renamed to LABEL.log

Settings from the environment, as run.sh documents them: RUN, DURATION,
LAT_DURATION, LAT_QPS, CLIENTS, OUTSTANDING, NOISE_PCT.
"""
import argparse
import os
import re
import sys
import time

from lib import (apexd_stats, cpu_ns, sleeps, dnsperf_latencies, h2load_bunched, h2load_latencies,
                 machine_ns, parse_dnsperf, parse_h2load, percentiles, run_logged, say)

RUN = os.environ.get("RUN", ".run/bench")
DATA = os.path.join(RUN, "data")
RESULTS = os.path.join(RUN, "results.txt")
NOTES = os.path.join(RUN, "notes.txt")


def env_int(name, default):
    return int(os.environ.get(name) or default)


DURATION = env_int("DURATION", 10)
LAT_DURATION = env_int("LAT_DURATION", 5)
LAT_QPS = env_int("LAT_QPS", 5000)
CLIENTS = env_int("CLIENTS", 16)
OUTSTANDING = env_int("OUTSTANDING", 128)
NOISE_PCT = float(os.environ.get("NOISE_PCT") or 10)
# Counters that should stay 0 in a benchmark.
BAD_COUNTERS = ("servfail_sent", "backend_timeouts", "backend_errors", "backend_unmatched",
                "txn_full", "id_busy", "udp_send_errors", "doh_http_errors", "tcp_refused",
                "malformed_dropped", "formerr_sent", "answers_flatten_failed",
                "answers_flatten_deadline")
LOGGED_TROUBLE = re.compile(r" (error|warning) |assert|Sanitizer|Abort")


def record(*words):
    with open(RESULTS, "a") as f:
        f.write(" ".join(w for w in words if w) + "\n")


def note(msg):
    with open(NOTES, "a") as f:
        f.write(msg + "\n")
    say("NOTE: " + msg)


def load(transport, qset, mode, out, port, pin=None):
    """One bounded load run: mode "sat" (as fast as it goes, DURATION s) or
    "lat" (LAT_QPS with per-query latencies, LAT_DURATION s). Returns the
    CPU ns the load tool used."""
    dur = LAT_DURATION if mode == "lat" else DURATION
    cmd = ["taskset", "-c", pin] if pin else []
    if transport == "doh":
        uris = os.path.join(RUN, "uris-%s-%s.txt" % (qset, port))
        with open(os.path.join(DATA, "u-%s.txt" % qset)) as f, open(uris, "w") as g:
            g.write("https://127.0.0.1:%s" % port + f.read())
        if mode == "lat":
            args = ["-t", "1", "-c", str(CLIENTS), "-m", "1", "-D", str(dur), "-i", uris,
                    "--rps=%d" % (LAT_QPS // CLIENTS), "--log-file=%s.log" % out]
        else:
            streams = max(1, OUTSTANDING // CLIENTS)
            args = ["-t", "1", "-c", str(CLIENTS), "-m", str(streams), "-D", str(dur), "-i", uris]
        cmd += ["h2load"] + args
    else:
        args = ["-m", transport, "-s", "127.0.0.1", "-p", str(port),
                "-d", os.path.join(DATA, "q-%s.txt" % qset), "-e", "-t", "2",
                "-c", str(CLIENTS), "-l", str(dur)]
        if mode == "lat":
            args += ["-Q", str(LAT_QPS), "-q", str(OUTSTANDING), "-v"]
        else:
            args += ["-q", str(OUTSTANDING)]
        cmd += ["dnsperf"] + args
    _, used = run_logged(out, cmd)
    return used


def per_answer_us(ns, answered):
    return "%.2f" % (ns / 1000.0 / answered) if answered > 0 else "n/a"


def cmd_sat(a):
    kind, t, qset, target = a.kind, a.transport, a.set, a.target
    out = os.path.join(RUN, "out-%s-%s-%s-%s.txt" % (kind, target, t, qset))
    z0 = sleeps(a.proxy_pid)
    p0, b0, (s0, st0), w0 = cpu_ns(a.proxy_pid), cpu_ns(a.bind_pid), machine_ns(), time.time_ns()
    load_ns = load(t, qset, "sat", out, a.port, a.pin)
    p1, b1, (s1, st1), w1 = cpu_ns(a.proxy_pid), cpu_ns(a.bind_pid), machine_ns(), time.time_ns()
    z1 = sleeps(a.proxy_pid)
    r = (parse_h2load if t == "doh" else parse_dnsperf)(out)
    if r is None:
        r = {"answered": 0, "qps": 0.0, "lost": 0, "codes": "no-output"}
    answered, qps, lost, codes = r["answered"], "%.0f" % r["qps"], r["lost"], r["codes"]
    dp, db, wall = p1 - p0, b1 - b0, w1 - w0
    # What this run can account for: the proxy, BIND (unless it is the
    # proxy) and the load tool; the rest of the busy time is other load.
    controlled = dp + load_ns + (db if a.proxy_pid != a.bind_pid else 0)
    other = max(0.0, s1 - s0 - controlled)
    cpu_us, bind_us = per_answer_us(dp, answered), per_answer_us(db, answered)
    other_pct = "%.1f" % (100.0 * other / wall)
    steal_pct = "%.1f" % (100.0 * (st1 - st0) / wall)
    load_pct = "%.0f" % (100.0 * load_ns / wall)
    record("kind=%s transport=%s target=%s set=%s qps=%s answered=%d lost=%d" % (
        kind, t, target, qset, qps, answered, lost),
        "codes=%s cpu_us=%s bind_us=%s other_pct=%s steal_pct=%s load_pct=%s sleeps=%s" % (
        codes, cpu_us, bind_us, other_pct, steal_pct, load_pct,
        "%.3f" % ((z1 - z0) / answered) if answered else "n/a"))
    say("%s %s %s %s: %s qps, %d answered, %d lost, [%s], proxy %s us/answer, BIND %s us/answer, "
        "load tool %s%% of a core, other %s%% of a core" % (
            kind, target, t, qset, qps, answered, lost, codes, cpu_us, bind_us, load_pct, other_pct))
    if float(other_pct) > NOISE_PCT:
        say("WARNING: noise: other processes used %s%% of a core during %s %s %s (limit %g%%); "
            "compare ratios only, and rerun if it matters" % (other_pct, kind, target, t, NOISE_PCT))
    if answered == 0:
        note("%s %s (%s): no answers at all; see %s" % (target, t, qset, out))
    elif lost != 0:
        note("%s %s (%s): %d queries lost (no answer within 2 s) of %d answered" % (
            target, t, qset, lost, answered))
    if not re.fullmatch(r"NOERROR:[0-9]+|2xx:[0-9]+,4xx:0,5xx:0|-", codes):
        note("%s %s (%s): response codes %s" % (target, t, qset, codes))
    print(qps, cpu_us)
    return 0


def cmd_lat(a):
    t, target = a.transport, a.target
    out = os.path.join(RUN, "out-lat-%s-%s.txt" % (target, t))
    # The same offered rate for every target: CPU per answer here compares
    # like with like (at saturation each target runs at its own rate, and
    # how many datagrams one wake-up finds depends on it).
    p0 = cpu_ns(a.proxy_pid) if a.proxy_pid else 0
    z0 = sleeps(a.proxy_pid) if a.proxy_pid else 0
    load(t, "plain", "lat", out, a.port)
    p1 = cpu_ns(a.proxy_pid) if a.proxy_pid else 0
    z1 = sleeps(a.proxy_pid) if a.proxy_pid else 0
    vals = h2load_latencies(out + ".log") if t == "doh" else dnsperf_latencies(out)
    p50, p99, n = percentiles(vals)
    p50 = "n/a" if p50 is None else "%.3f" % p50
    p99 = "n/a" if p99 is None else "%.3f" % p99
    cpu_us = per_answer_us(p1 - p0, n) if a.proxy_pid else "n/a"
    record("kind=lat transport=%s target=%s p50=%s p99=%s n=%d cpu_us=%s sleeps=%s" % (
        t, target, p50, p99, n, cpu_us, "%.3f" % ((z1 - z0) / n) if n else "n/a"))
    say("lat %s %s @%d qps: p50 %s ms, p99 %s ms (%d answers), proxy %s us/answer" % (
        target, t, LAT_QPS, p50, p99, n, cpu_us))
    if t == "doh":
        # h2load's --rps timer ticks every 10 ms at the least (1.52:
        # max(0.01, 1/rps)) and every client's ticks at about the same
        # time: its "fixed rate" comes in bursts, where dnsperf -Q paces
        # evenly (200 us apart at 5 000 qps). DoH p50 measures a burst.
        b = h2load_bunched(out + ".log")
        if b is not None:
            note("%s doh @%d qps: %.0f%% of h2load's requests started within 50 us of the "
                 "previous one (even pacing: 200 us apart); DoH latencies are measured in bursts"
                 % (target, LAT_QPS, 100 * b))
    return 0


def cmd_warm(a):
    # dnsdist's packet cache, apexd's presence/target/answer caches.
    for qset in ("plain", "flat"):
        run_logged(os.path.join(RUN, "warm-%s-%s.txt" % (a.target, qset)),
                   ["dnsperf", "-s", "127.0.0.1", "-p", str(a.port),
                    "-d", os.path.join(DATA, "q-%s.txt" % qset),
                    "-e", "-n", "1", "-c", "4", "-q", "64", "-t", "2"])
    return 0


def cmd_apexd_exit(a):
    log = os.path.join(RUN, a.name + ".log")
    stats = apexd_stats(log)
    if stats:
        say("%s stats: %s" % (a.label, " ".join("%s=%s" % kv for kv in stats.items())))
        bad = ["%s=%s" % (k, v) for k, v in stats.items() if k in BAD_COUNTERS and v != "0"]
        if bad:
            note("%s: apexd counters %s" % (a.label, " ".join(bad)))
    with open(log, errors="replace") as f:
        trouble = [line.rstrip("\n") for line in f if LOGGED_TROUBLE.search(line)]
    if trouble:
        note("%s logged: %s" % (a.label, " ".join(trouble[:3])))
    if a.transport:
        record("kind=servfail transport=%s target=%s run=%s servfail=%s" % (
            a.transport, a.name, a.run_kind, stats.get("servfail_sent", "0")))
    if a.label != a.name:
        os.rename(log, os.path.join(RUN, a.label + ".log"))
    return 0


def main():
    p = argparse.ArgumentParser(prog="measure.py")
    sub = p.add_subparsers(dest="cmd", required=True)

    def target_args(s):
        s.add_argument("--target", required=True)
        s.add_argument("--port", required=True, type=int)

    s = sub.add_parser("sat")
    s.add_argument("kind")
    s.add_argument("transport")
    s.add_argument("set")
    target_args(s)
    s.add_argument("--proxy-pid", required=True, type=int)
    s.add_argument("--bind-pid", required=True, type=int)
    s.add_argument("--pin")
    s.set_defaults(fn=cmd_sat)
    s = sub.add_parser("lat")
    s.add_argument("transport")
    target_args(s)
    s.add_argument("--proxy-pid", type=int)
    s.set_defaults(fn=cmd_lat)
    s = sub.add_parser("warm")
    target_args(s)
    s.set_defaults(fn=cmd_warm)
    s = sub.add_parser("apexd-exit")
    s.add_argument("name")
    s.add_argument("label")
    s.add_argument("transport", nargs="?")
    s.add_argument("run_kind", nargs="?")
    s.set_defaults(fn=cmd_apexd_exit)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
