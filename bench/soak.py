#!/usr/bin/python3
"""bench/soak.py - bench/soak.sh's load, its samples and its verdict.

bench/soak.sh starts BIND and apexd, then:

  soak.py run RUN --port P --bind-port P --pid APEXD_PID --clients N
              --sat-seconds S --soak-seconds S --load-pct P
      writes RUN/q-mixed.txt (3 plain names : 1 flattened, from RUN/data),
      runs dnsperf against apexd: a warm-up pass over every name, a
      saturation run, then the soak at LOAD_PCT % of that rate while
      apexd's VmRSS is sampled every second (RUN/rss.txt); reads where the
      kernel dropped datagrams while apexd still runs. Keeps what it found
      in RUN/soak.json. Exit status 2 when there is no saturation figure.

soak.sh then stops apexd (which logs its counters as it exits), and

  soak.py report RUN --log APEXD_LOG --threads N --tolerance PCT
      prints the report (also into RUN/report.txt) and the verdict: exit
      status 0 on PASS, 1 on FAIL.
"""
import argparse
import json
import os
import subprocess
import sys
import time

from lib import apexd_stats, cpu_ns, parse_dnsperf, proc_alive, rss_kb, run_logged, say


# The soak's load: several dnsperf instances side by side, each with its
# share of the rate, because dnsperf's -D (DO bit) and -E (one EDNS option)
# apply to every query of one instance. (name, share of the rate, extra
# dnsperf flags, query file mix: list of (file, weight) from RUN/data.)
# ECS options (RFC 7871, option 8): FAMILY, SOURCE PREFIX, SCOPE 0, the
# address truncated to the prefix; three client subnets, so the scoped
# cache holds one entry per subnet and target.
PLAIN_FLAT = [("q-plain.txt", 3), ("q-flat.txt", 1)]
HALF = [("q-plain.txt", 1), ("q-flat.txt", 1)]
STREAMS = [
    ("plain+flat", 0.45, [], PLAIN_FLAT),
    ("random-nx", 0.10, [], [("q-nx.txt", 1)]),
    ("do", 0.15, ["-D"], PLAIN_FLAT),
    ("ecs-192.0.2.0/24", 0.10, ["-E", "8:00011800c00002"], HALF),
    ("ecs-203.0.113.0/24", 0.10, ["-E", "8:00011800cb0071"], HALF),
    ("ecs-2001:db8:1::/56", 0.10, ["-E", "8:0002380020010db8000100"], HALF),
]


def mix(run, idx, parts):
    """RUN/q-<idx>.txt: the files of PARTS interleaved by weight (3 plain
    : 1 flat means 3 plain lines, then 1 flattened one, and so on), so every
    second of the soak has all of them; as long as the longest part."""
    def names(path):
        with open(os.path.join(run, "data", path)) as f:
            return [line for line in f.read().split("\n") if line.strip()]

    lists = [(names(p), w) for p, w in parts]
    rounds = max(len(n) // w for n, w in lists)
    out = os.path.join(run, "q-%d.txt" % idx)
    with open(out, "w") as f:
        for r in range(rounds):
            for n, w in lists:
                for k in range(w):
                    f.write(n[(r * w + k) % len(n)] + "\n")
    return out


def socket_drops(pids):
    """{inode: drops} of the UDP sockets of PIDS (the dnsperf instances):
    an answer apexd sent can still be dropped at the client's socket when
    it is full, and those sockets are gone once dnsperf exits, so they are
    read while it runs."""
    inodes = set()
    for pid in pids:
        try:
            fds = os.listdir("/proc/%d/fd" % pid)
        except OSError:
            continue
        for fd in fds:
            try:
                t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
            except OSError:
                continue
            if t.startswith("socket:["):
                inodes.add(t[8:-1])
    out = {}
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            x = line.split()
            if x[9] in inodes:
                out[x[9]] = int(x[12])
    return out


def loadavg():
    """The machine's 1-minute load average: on a shared 2-core box it says
    how much of the CPU others took while the soak ran."""
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def run_streams(run, tag, cmds):
    """Start every dnsperf of CMDS at once, wait for all; returns the
    parsed summaries in order (None for a missing one)."""
    procs = []
    for i, c in enumerate(cmds):
        out = open(os.path.join(run, "%s-%d.txt" % (tag, i)), "w")
        procs.append((subprocess.Popen(c, stdout=out, stderr=subprocess.STDOUT), out))
    return procs


def collect(run, tag, procs):
    res = []
    for i, (p, out) in enumerate(procs):
        p.wait()
        out.close()
        res.append(parse_dnsperf(os.path.join(run, "%s-%d.txt" % (tag, i))))
    return res


def merge_codes(results):
    """Response codes summed over every instance: "NOERROR:1,NXDOMAIN:2"."""
    total = {}
    for r in results:
        if not r or r["codes"] == "-":
            continue
        for c in r["codes"].split(","):
            k, v = c.split(":")
            total[k] = total.get(k, 0) + int(v)
    return ",".join("%s:%d" % kv for kv in sorted(total.items())) or "-"


def udp_drops(bind_port, apex_port, pid):
    """Datagrams the kernel dropped (receive buffer full) at BIND's socket,
    at apexd's listener and at apexd's other sockets (the backend side),
    from /proc/net/udp's per-socket drop counters. Says where a lost query
    was lost when one is."""
    inodes = set()
    try:
        fds = os.listdir("/proc/%d/fd" % pid)
    except OSError:
        fds = []
    for fd in fds:
        try:
            t = os.readlink("/proc/%d/fd/%s" % (pid, fd))
        except OSError:
            continue
        if t.startswith("socket:["):
            inodes.add(t[8:-1])
    bind = listen = backend = 0
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            x = line.split()
            port = int(x[1].split(":")[1], 16)
            drops = int(x[12])
            if port == bind_port:
                bind += drops
            elif port == apex_port and x[9] in inodes:
                listen += drops
            elif x[9] in inodes:
                backend += drops
    return "BIND %d, apexd listeners %d, apexd backend side %d" % (bind, listen, backend)


def cmd_run(a):
    run = a.run
    base = ["dnsperf", "-s", "127.0.0.1", "-p", str(a.port), "-e", "-t", "2"]
    files = [mix(run, i, parts) for i, (_, _, _, parts) in enumerate(STREAMS)]

    def cmd(i, extra, clients=None):
        n = clients or max(1, round(a.clients * STREAMS[i][1]))
        return base + STREAMS[i][2] + ["-d", files[i], "-c", str(n)] + extra

    say("warm-up: every name of every stream once")
    warm_sent = 0
    for i in range(len(STREAMS)):
        out = os.path.join(run, "warmup-%d.txt" % i)
        run_logged(out, cmd(i, ["-n", "1", "-q", "64"], 4))
        warm_sent += (parse_dnsperf(out) or {}).get("sent", 0)

    say("saturation: %d s, %d dnsperf side by side" % (a.sat_seconds, len(STREAMS)))
    procs = run_streams(run, "saturation", [
        cmd(i, ["-l", str(a.sat_seconds), "-q", str(max(4, round(256 * st[1])))])
        for i, st in enumerate(STREAMS)])
    sat = collect(run, "saturation", procs)
    if any(r is None for r in sat):
        say("ERROR: no saturation figure (see %s/saturation-*.txt)" % run)
        return 2
    sat_qps = sum(r["qps"] for r in sat)
    rate = int(sat_qps * a.load_pct / 100)
    rates = [max(1, int(rate * st[1])) for st in STREAMS]
    say("saturation %d qps; soaking at %d qps (%g %%) for %d s: %s" % (
        sat_qps, rate, a.load_pct, a.soak_seconds,
        ", ".join("%s %d" % (st[0], r) for st, r in zip(STREAMS, rates))))

    rss = []
    load0 = loadavg()
    cpu0 = cpu_ns(a.pid)
    with open(os.path.join(run, "rss.txt"), "w") as log:
        procs = run_streams(run, "soak", [
            cmd(i, ["-l", str(a.soak_seconds), "-Q", str(rates[i]),
                    "-q", str(max(256, round(2048 * STREAMS[i][1])))])
            for i in range(len(STREAMS))])
        t = 0
        client_drops = {}
        while any(p.poll() is None for p, _ in procs) and proc_alive(a.pid):
            client_drops.update(socket_drops([p.pid for p, _ in procs]))
            kb = rss_kb(a.pid)
            if kb is not None:
                rss.append(kb)
                log.write("%d %d\n" % (t, kb))
                log.flush()
            time.sleep(1)
            t += 1
        soak = collect(run, "soak", procs)
    cpu = cpu_ns(a.pid) - cpu0
    load1 = loadavg()

    def total(key):
        vals = [r.get(key) if r else None for r in soak]
        return None if None in vals else sum(vals)

    streams = []
    for st, r, q in zip(STREAMS, soak, rates):
        r = r or {}
        streams.append({"name": st[0], "rate": q, "sent": r.get("sent"), "qps": r.get("qps"),
                        "completed": r.get("answered"), "lost": r.get("lost"),
                        "codes": r.get("codes")})
    state = {
        "soak_seconds": a.soak_seconds, "load_pct": a.load_pct, "sat_qps": sat_qps,
        "rate": rate, "alive": proc_alive(a.pid), "drops": udp_drops(a.bind_port, a.port, a.pid),
        "sent": total("sent"), "completed": total("answered"), "lost": total("lost"),
        "qps": total("qps"), "codes": merge_codes(soak), "rss": rss, "cpu_ns": cpu,
        "streams": streams, "loadavg": [load0, load1],
        "client_drops": sum(client_drops.values()),
        "all_sent": sum(r["sent"] for r in sat if r) + sum(r["sent"] for r in soak if r)
        + warm_sent,
    }
    with open(os.path.join(run, "soak.json"), "w") as f:
        json.dump(state, f)
    return 0


def text(v, fmt="%s"):
    return "" if v is None else fmt % v


def cmd_report(a):
    with open(os.path.join(a.run, "soak.json")) as f:
        s = json.load(f)
    stats = apexd_stats(a.log)
    rss = s["rss"]
    # Samples are one a second from the soak's start (after the warm-up
    # and the saturation run). The very first one is taken as the dnsperf
    # instances start, before their queries arrive: apexd idle, with what
    # malloc kept from the saturation run. Within the first seconds the
    # soak's own load brings the working set (queries in flight, socket
    # and cache buffers touched) to its size at this rate, so "start" is
    # the sample SETTLE seconds in; a leak shows as growth from there to
    # the end. The idle first sample is reported too.
    settle = min(a.settle, len(rss) // 4)
    idle = rss[0] if rss else None
    start, end = (rss[settle], rss[-1]) if rss else (None, None)
    growth = (end - start) * 100.0 / start if rss else None
    growth_idle = (end - idle) * 100.0 / idle if rss else None
    sent, completed, lost, codes = s["sent"], s["completed"], s["lost"], s["codes"] or ""

    reasons = []
    if not s["alive"]:
        reasons.append("apexd died")
    if lost != 0:
        reasons.append("%s queries lost" % text(lost) if lost is not None else "? queries lost")
    if not (sent and completed == sent):
        reasons.append("completed %s of %s" % (text(completed), text(sent)))
    if "SERVFAIL" in codes:
        reasons.append("SERVFAIL answers")
    if growth is None or growth > a.tolerance:
        reasons.append("RSS grew %s %% (> %g %%)" % (text(growth, "%.1f"), a.tolerance))

    cpu_us = s["cpu_ns"] / 1000.0 / completed if completed else None
    lines = [
        "soak: %d s at %d qps (%g %% of %d qps saturation), apexd threads %s, "
        "%d dnsperf side by side:" % (s["soak_seconds"], s["rate"], s["load_pct"], s["sat_qps"],
                                       a.threads, len(s["streams"])),
    ] + [
        "  %-20s %6d qps asked, %s achieved: sent %s, completed %s, lost %s; %s" % (
            st["name"], st["rate"], text(st.get("qps"), "%d"), text(st["sent"]),
            text(st["completed"]), text(st["lost"]), text(st["codes"])) for st in s["streams"]
    ] + [
        "  queries: sent %s, completed %s, lost %s; achieved %s qps" % (
            text(sent), text(completed), text(lost), text(s["qps"], "%d")),
        "  response codes: " + codes,
        "  machine load average (1 min) at the soak's start and end: %s" % " / ".join(
            "%.1f" % x for x in s.get("loadavg", [])),
        "  UDP receive-buffer drops: " + s["drops"] + ", dnsperf's sockets %s (sampled "
        "each second)" % text(s.get("client_drops")),
        "  apexd received %s UDP queries and answered %s (relayed + flattened + cached); "
        "dnsperf sent %s in all runs (+1 readiness probe)" % (
            stats.get("queries_udp", "?"),
            sum(int(stats.get(k, 0)) for k in ("answers_relayed", "answers_flattened",
                                                "answers_cached")),
            text(s.get("all_sent"))),
        "  apexd: " + " ".join("%s=%s" % (k, stats.get(k, "")) for k in (
            "answers_relayed", "answers_flattened", "servfail_sent", "cache_hits", "chases")),
        "  apexd CPU over the soak: %s s, %s us per answer" % (
            text(s["cpu_ns"] / 1e9, "%.1f"), text(cpu_us, "%.2f")),
        "  VmRSS (KiB), sampled every second from the start of the soak (after warm-up and "
        "saturation); start = the sample %d s in:" % settle,
        "    start %s, end %s, max %s, min %s; growth %s %% (limit %g %%)" % (
            text(start), text(end), text(max(rss) if rss else None),
            text(min(rss) if rss else None), text(growth, "%.1f"), a.tolerance),
        "    first sample (0 s, before the soak's queries arrive) %s; end vs that %s %%" % (
            text(idle), text(growth_idle, "%.1f")),
        "  samples: %d in %s" % (len(rss), os.path.join(a.run, "rss.txt")),
        "verdict: PASS" if not reasons else "verdict: FAIL (%s)" % ";".join(reasons),
    ]
    report = "\n".join(lines) + "\n"
    sys.stdout.write(report)
    with open(os.path.join(a.run, "report.txt"), "w") as f:
        f.write(report)
    return 1 if reasons else 0


def main():
    p = argparse.ArgumentParser(prog="soak.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("run")
    s.add_argument("run")
    s.add_argument("--port", type=int, required=True)
    s.add_argument("--bind-port", type=int, required=True)
    s.add_argument("--pid", type=int, required=True)
    s.add_argument("--clients", type=int, default=16)
    s.add_argument("--sat-seconds", type=int, default=5)
    s.add_argument("--soak-seconds", type=int, default=60)
    s.add_argument("--load-pct", type=float, default=80)
    s.set_defaults(fn=cmd_run)
    s = sub.add_parser("report")
    s.add_argument("run")
    s.add_argument("--log", required=True)
    s.add_argument("--threads", default="2")
    s.add_argument("--tolerance", type=float, default=5)
    s.add_argument("--settle", type=int, default=10)
    s.set_defaults(fn=cmd_report)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
