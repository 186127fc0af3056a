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

from lib import apexd_stats, parse_dnsperf, proc_alive, rss_kb, run_logged, say


def mix(run):
    """3 plain : 1 flattened, interleaved so every second of the soak has
    both."""
    def names(path):
        with open(path) as f:
            return [line for line in f.read().split("\n") if line.strip()]

    plain = names(os.path.join(run, "data", "q-plain.txt"))
    flat = names(os.path.join(run, "data", "q-flat.txt"))
    out = os.path.join(run, "q-mixed.txt")
    fi = 0
    with open(out, "w") as f:
        for i, line in enumerate(plain):
            f.write(line + "\n")
            if i % 3 == 2:
                f.write(flat[fi % len(flat)] + "\n")
                fi += 1
    return out


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
    queries = mix(run)
    perf = ["dnsperf", "-s", "127.0.0.1", "-p", str(a.port), "-d", queries, "-e", "-t", "2",
            "-c", str(a.clients)]

    say("warm-up: every name once")
    run_logged(os.path.join(run, "warmup.txt"), perf + ["-n", "1", "-q", "64"])

    say("saturation: %d s" % a.sat_seconds)
    sat_out = os.path.join(run, "saturation.txt")
    run_logged(sat_out, perf + ["-l", str(a.sat_seconds), "-q", "128"])
    sat = parse_dnsperf(sat_out)
    if sat is None:
        with open(sat_out, errors="replace") as f:
            sys.stdout.write(f.read())
        say("ERROR: no saturation figure")
        return 2
    rate = int(sat["qps"] * a.load_pct / 100)
    say("saturation %d qps; soaking at %d qps (%g %%) for %d s" % (
        sat["qps"], rate, a.load_pct, a.soak_seconds))

    rss = []
    soak_out = os.path.join(run, "soak.txt")
    with open(soak_out, "w") as out, open(os.path.join(run, "rss.txt"), "w") as log:
        p = subprocess.Popen(perf + ["-l", str(a.soak_seconds), "-Q", str(rate), "-q", "512"],
                             stdout=out, stderr=subprocess.STDOUT)
        t = 0
        while p.poll() is None and proc_alive(a.pid):
            kb = rss_kb(a.pid)
            if kb is not None:
                rss.append(kb)
                log.write("%d %d\n" % (t, kb))
                log.flush()
            time.sleep(1)
            t += 1
        p.wait()

    soak = parse_dnsperf(soak_out) or {}
    state = {
        "soak_seconds": a.soak_seconds, "load_pct": a.load_pct, "sat_qps": sat["qps"],
        "rate": rate, "alive": proc_alive(a.pid), "drops": udp_drops(a.bind_port, a.port, a.pid),
        "sent": soak.get("sent"), "completed": soak.get("answered"), "lost": soak.get("lost"),
        "qps": soak.get("qps"), "codes": soak.get("codes_text"), "rss": rss,
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
    # The first sample is taken as the soak starts (after the warm-up and
    # the saturation run, which already grew every buffer to its working
    # size).
    start, end = (rss[0], rss[-1]) if rss else (None, None)
    growth = (end - start) * 100.0 / start if rss else None
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

    lines = [
        "soak: %d s at %d qps (%g %% of %d qps saturation), mixed plain + flattened names, "
        "apexd threads %s" % (s["soak_seconds"], s["rate"], s["load_pct"], s["sat_qps"], a.threads),
        "  queries: sent %s, completed %s, lost %s; achieved %s qps" % (
            text(sent), text(completed), text(lost), text(s["qps"], "%d")),
        "  response codes: " + codes,
        "  UDP receive-buffer drops: " + s["drops"],
        "  apexd: " + " ".join("%s=%s" % (k, stats.get(k, "")) for k in (
            "answers_relayed", "answers_flattened", "servfail_sent", "cache_hits", "chases")),
        "  VmRSS (KiB): start %s, end %s, max %s, min %s; growth %s %% (limit %g %%)" % (
            text(start), text(end), text(max(rss) if rss else None),
            text(min(rss) if rss else None), text(growth, "%.1f"), a.tolerance),
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
    s.set_defaults(fn=cmd_report)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
