#!/usr/bin/python3
"""bench/lib.py - what the bench scripts share on the Python side.

Imported by bench/measure.py, bench/report.py, bench/soak.py and
bench/profile.py (all measurement, arithmetic and reports), and called by
bench/lib.sh for the few things the shell asks of it:

  lib.py free-port [USED...]   a port in 20000-29999 free for UDP and TCP
                               on 127.0.0.1, not one of USED
  lib.py wait-udp PORT [SECS]  until h0000.bench.test A is answered over
                               UDP at 127.0.0.1:PORT (default 10 s)
  lib.py wait-echo PORT [SECS] until a query to 127.0.0.1:PORT comes
                               back as a response (bench/floor.c)
  lib.py wait-tcp PORT [SECS]  until 127.0.0.1:PORT accepts a TCP
                               connection (default 10 s)

Exit status 0 when done, 1 when the port did not answer in time.
"""
import os
import random
import re
import resource
import socket
import subprocess
import sys
import time

HZ = os.sysconf("SC_CLK_TCK")


def say(msg):
    """One progress line on stderr, like lib.sh's say."""
    tag = os.environ.get("BENCH_TAG", "bench")
    print("[%s %s] %s" % (tag, time.strftime("%H:%M:%S"), msg), file=sys.stderr, flush=True)


# ------------------------------------------------------------ processes --
def proc_alive(pid):
    """True while PID runs (a zombie does not count)."""
    try:
        with open("/proc/%d/stat" % int(pid)) as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError, ValueError):
        return False
    return state not in ("Z", "X")


def run_logged(out, cmd):
    """Run CMD with stdout+stderr into the file OUT. Returns (exit status,
    CPU ns it and its children used: user+sys from getrusage)."""
    r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        rc = subprocess.call(cmd, stdout=f, stderr=subprocess.STDOUT)
    r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    used = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    return rc, int(used * 1e9)


# --------------------------------------------------------- CPU and memory --
def cpu_ns(pid):
    """CPU ns of every thread of PID (first field of each task's schedstat)."""
    total = 0
    try:
        tasks = os.listdir("/proc/%d/task" % int(pid))
    except OSError:
        return 0
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/schedstat" % (int(pid), t)) as f:
                total += int(f.read().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


def sleeps(pid):
    """Voluntary context switches of every thread of PID: how often it went
    to sleep waiting for work (each is one wake-up later)."""
    total = 0
    try:
        tasks = os.listdir("/proc/%d/task" % int(pid))
    except OSError:
        return 0
    for t in tasks:
        try:
            with open("/proc/%d/task/%s/status" % (int(pid), t)) as f:
                for line in f:
                    if line.startswith("voluntary_ctxt_switches:"):
                        total += int(line.split()[1])
        except (OSError, IndexError, ValueError):
            pass
    return total


def cpu_ticks(pid):
    """utime + stime of PID in clock ticks (/proc/PID/stat)."""
    with open("/proc/%d/stat" % int(pid)) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # Fields 14 and 15 of stat(5); fields[0] here is field 3.
    return int(fields[11]) + int(fields[12])


def minflt(pid):
    """Minor page faults of PID so far (field 10 of /proc/PID/stat)."""
    with open("/proc/%d/stat" % int(pid)) as f:
        return int(f.read().rsplit(")", 1)[1].split()[7])


def machine_ns():
    """(busy, steal) ns of the whole machine from /proc/stat: busy is user
    nice system irq softirq."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                x = [int(v) for v in line.split()[1:]]
                busy = x[0] + x[1] + x[2] + x[5] + x[6]
                return busy * 1e9 / HZ, x[7] * 1e9 / HZ
    return 0.0, 0.0


def rss_kb(pid):
    """VmRSS of PID in KiB, or None when it is gone."""
    try:
        with open("/proc/%d/status" % int(pid)) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


# --------------------------------------------------------- tool outputs --
def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def parse_dnsperf(path):
    """dnsperf's summary: dict with sent, answered, qps, lost (ints, qps a
    float), codes ("NOERROR:123,SERVFAIL:4", "-" for none) and codes_text
    (the line as dnsperf wrote it), or None when there is no summary."""
    text = read(path)

    def num(label):
        m = re.search(label + r":\s+([\d.]+)", text)
        return m.group(1) if m else None

    answered, qps = num("Queries completed"), num("Queries per second")
    if answered is None or qps is None:
        return None
    rc = re.search(r"Response codes:\s+(.*)", text)
    codes = rc.group(1).strip() if rc else ""
    codes = ",".join(c.split(" (")[0].replace(" ", ":") for c in codes.split(", ") if c)
    return {"sent": int(num("Queries sent") or 0), "answered": int(answered),
            "qps": float(qps), "lost": int(num("Queries lost") or 0), "codes": codes or "-",
            "codes_text": rc.group(1).strip() if rc else ""}


def parse_h2load(path):
    """h2load's summary in the shape of parse_dnsperf's: answered is the 2xx
    responses, lost the failed + errored + timed-out requests."""
    text = read(path)
    fin = re.search(r"finished in ([\d.]+)(m?s)", text)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not fin or not req:
        return None
    secs = float(fin.group(1)) / (1000.0 if fin.group(2) == "ms" else 1.0)
    ok = int(req.group(4))
    lost = int(req.group(5)) + int(req.group(6)) + int(req.group(7))
    codes = "2xx:%s,4xx:%s,5xx:%s" % (st.group(1), st.group(3), st.group(4)) if st else "-"
    return {"sent": int(req.group(1)), "answered": ok, "qps": ok / secs if secs else 0.0,
            "lost": lost, "codes": codes}


def percentiles(vals):
    """(p50, p99, n) of VALS, or (None, None, 0) when empty."""
    if not vals:
        return None, None, 0
    vals = sorted(vals)

    def p(x):
        return vals[min(len(vals) - 1, int(round(x * (len(vals) - 1))))]

    return p(0.50), p(0.99), len(vals)


def dnsperf_latencies(path):
    """Per-query latencies in ms from dnsperf -v ("> ..." lines)."""
    vals = []
    with open(path, errors="replace") as f:
        for line in f:
            if line.startswith("> "):
                try:
                    vals.append(float(line.split()[-1]) * 1000.0)
                except ValueError:
                    pass
    return vals


def h2load_rows(path):
    """The tab-separated rows (3 fields or more) of an h2load --log-file;
    nothing when it cannot be read."""
    try:
        f = open(path, errors="replace")
    except OSError:
        return
    with f:
        for line in f:
            parts = line.split("\t")
            if len(parts) >= 3:
                yield parts


def h2load_latencies(path):
    """Per-request times in ms of the 2xx responses in an h2load --log-file."""
    return [int(p[2]) / 1000.0 for p in h2load_rows(path) if p[1].startswith("2")]


def h2load_bunched(path, within_us=50):
    """Share of the requests in an h2load --log-file that started within
    within_us of the one before (start times are its first column, in
    microseconds); None when there are fewer than two."""
    starts = [int(p[0]) for p in h2load_rows(path) if p[0].isdigit()]
    if len(starts) < 2:
        return None
    starts.sort()
    close = sum(1 for a, b in zip(starts, starts[1:]) if b - a <= within_us)
    return close / (len(starts) - 1)


def apexd_stats(log):
    """The counters of the last "stats:" line apexd logged (it logs one as
    it exits), as a dict of strings; {} when there is none."""
    last = ""
    try:
        with open(log, errors="replace") as f:
            for line in f:
                if "stats:" in line:
                    last = line
    except OSError:
        pass
    if not last:
        return {}
    words = last.split("stats:", 1)[1].split()
    return dict(w.split("=", 1) for w in words if "=" in w)


# ------------------------------------------------------------------ ports --
def free_port(used=()):
    """A port in 20000-29999 that binds for UDP and TCP on 127.0.0.1."""
    used = set(int(p) for p in used)
    for _ in range(500):
        port = random.randrange(20000, 30000)
        if port in used:
            continue
        try:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return port
    sys.exit("no free port in 20000-29999")


def udp_answers(port):
    import dns.message
    import dns.query

    q = dns.message.make_query("h0000.bench.test", "A")
    try:
        r = dns.query.udp(q, "127.0.0.1", timeout=1, port=port)
    except Exception:
        return False
    return bool(r.answer)


def udp_echoes(port):
    """True when a query to 127.0.0.1:PORT comes back with QR set (the
    floor, bench/floor.c, answers without an answer section)."""
    import dns.message
    import dns.query

    q = dns.message.make_query("h0000.bench.test", "A")
    try:
        r = dns.query.udp(q, "127.0.0.1", timeout=1, port=port)
    except Exception:
        return False
    return r.id == q.id


def tcp_accepts(port):
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
    except OSError:
        return False
    return True


def wait_for(check, port, secs):
    deadline = time.monotonic() + secs
    while True:
        if check(port):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    if cmd == "free-port":
        print(free_port(argv))
        return 0
    if cmd in ("wait-udp", "wait-echo", "wait-tcp"):
        check = {"wait-udp": udp_answers, "wait-echo": udp_echoes, "wait-tcp": tcp_accepts}[cmd]
        secs = float(argv[1]) if len(argv) > 1 else 10.0
        return 0 if wait_for(check, int(argv[0]), secs) else 1
    sys.exit("lib.py: unknown command %s" % cmd)


if __name__ == "__main__":
    sys.exit(main())
