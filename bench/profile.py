#!/usr/bin/python3
"""bench/profile.py - bench/profile.sh's load and what it measures.

bench/profile.sh starts BIND and apexd (under valgrind for callgrind), then:

  profile.py measure RUN --mode M --set S --seconds D --port P --pid APEXD_PID
                     --data DATA --threads N
      warms the caches (dnsperf, 2 s), attaches the mode's tool (perf
      record, strace -c; callgrind: instrumentation on), drives apexd with
      dnsperf -c 16 -q 128 -l D over DATA/q-S.txt, detaches, and prints
      the answers, apexd's CPU per answer and minor page faults (/proc/PID/stat) and, for
      perf and strace, the tool's summary. Keeps the answer count in
      RUN/answered.

profile.sh then, for callgrind, stops apexd (callgrind writes its output
as apexd exits), and

  profile.py callgrind RUN
      prints the instructions of apexd's user space per answer and the top
      of callgrind_annotate.
"""
import argparse
import os
import re
import signal
import subprocess
import sys

from lib import HZ, cpu_ns, cpu_ticks, minflt, read, run_logged

DEVNULL = subprocess.DEVNULL
SYSCALL_EVENTS = ["raw_syscalls:sys_enter", "context-switches", "syscalls:sys_enter_recvmmsg",
                  "syscalls:sys_enter_sendmmsg", "syscalls:sys_enter_epoll_wait",
                  "syscalls:sys_enter_recvfrom", "syscalls:sys_enter_sendto",
                  "syscalls:sys_enter_read", "syscalls:sys_enter_write",
                  "syscalls:sys_enter_writev"]


def dnsperf(a, seconds, rate=0):
    # rate: a fixed offered rate (-Q) for the measured run, 0 = saturate.
    return ["dnsperf", "-s", "127.0.0.1", "-p", str(a.port),
            "-d", os.path.join(a.data, "q-%s.txt" % a.set),
            "-c", "16", "-q", "128", "-t", "2", "-l", str(seconds), "-m", a.proto] + (
                ["-Q", str(rate)] if rate else [])


def head(lines, n):
    for line in lines[:n]:
        print(line)


def perf_report(data, *args):
    out = subprocess.run(["perf", "report", "-i", data] + list(args), stdout=subprocess.PIPE,
                         stderr=DEVNULL, text=True, errors="replace").stdout
    return [line for line in out.split("\n") if line and not line.startswith("#")]


def cmd_measure(a):
    run, pid = a.run, a.pid
    # Warm-up: presence and target caches, BIND's own caches.
    run_logged(os.devnull, dnsperf(a, 2))
    tool = None
    if a.mode == "perf":
        tool = subprocess.Popen(["perf", "record", "-g", "-o", os.path.join(run, "perf.data"),
                                 "-p", str(pid)], stdout=DEVNULL, stderr=DEVNULL)
    elif a.mode == "strace":
        tool = subprocess.Popen(["strace", "-c", "-f", "-p", str(pid),
                                 "-o", os.path.join(run, "strace.txt")], stderr=DEVNULL)
    elif a.mode == "syscalls":
        # perf's counters, not strace: strace slows every call ~20 times,
        # which changes how many datagrams each wake-up finds.
        tool = subprocess.Popen(["perf", "stat", "-x", ",", "-o", os.path.join(run, "perf.txt"),
                                 "-e", ",".join(SYSCALL_EVENTS), "-p", str(pid)],
                                stdout=DEVNULL, stderr=DEVNULL)
    elif a.mode == "callgrind":
        # Collection starts after the warm-up, so the count is of the
        # measured queries only.
        subprocess.run(["callgrind_control", "-i", "on", str(pid)], stdout=DEVNULL, check=True)
    c0, f0, n0 = cpu_ticks(pid), minflt(pid), cpu_ns(pid)
    run_logged(os.path.join(run, "dnsperf.txt"), dnsperf(a, a.seconds, a.qps))
    c1, f1, n1 = cpu_ticks(pid), minflt(pid), cpu_ns(pid)
    if a.mode == "callgrind":
        subprocess.run(["callgrind_control", "-i", "off", str(pid)], stdout=DEVNULL, check=True)
    if tool:
        tool.send_signal(signal.SIGINT)
        tool.wait()

    text = read(os.path.join(run, "dnsperf.txt"))
    m = re.search(r"^ *Queries completed: *(\d+)", text, re.M)
    q = re.search(r"^ *Queries per second: *([\d.]+)", text, re.M)
    if not m:
        sys.stdout.write(text)
        print("profile.py: no answers counted (see %s)" % os.path.join(run, "dnsperf.txt"),
              file=sys.stderr)
        return 1
    answered = int(m.group(1))
    with open(os.path.join(run, "answered"), "w") as f:
        f.write("%d\n" % answered)
    ticks = c1 - c0
    print("set=%s mode=%s threads=%s answered=%d qps=%s" % (
        a.set, a.mode, a.threads, answered, q.group(1) if q else ""))
    print("apexd CPU: %.2f us/answer (%d ticks)" % (ticks * 1e6 / HZ / answered, ticks))
    print("apexd CPU (schedstat): %.2f us/answer" % ((n1 - n0) / 1e3 / answered))
    print("apexd minor page faults: %d, %.4f per answer" % (f1 - f0, (f1 - f0) / answered))

    if a.mode == "perf":
        data = os.path.join(run, "perf.data")
        head(perf_report(data, "--no-children", "--sort", "dso", "-g", "none"), 6)
        head(perf_report(data, "--children", "--sort", "sym", "-g", "none"), 40)
    elif a.mode == "syscalls":
        for line in read(os.path.join(run, "perf.txt")).splitlines():
            x = line.split(",")
            if len(x) > 2 and x[2] in SYSCALL_EVENTS and x[0].isdigit():
                print("%s per answer: %.3f" % (x[2].split(":")[-1], int(x[0]) / answered))
    elif a.mode == "strace":
        lines = read(os.path.join(run, "strace.txt")).splitlines()
        head(lines, 12)
        # Rows: % time, seconds, usecs/call, calls, [errors], syscall.
        for line in lines:
            x = line.split()
            if x and x[-1] in ("sendmmsg", "sendmsg", "sendto", "recvmmsg", "recvmsg",
                               "epoll_wait", "epoll_pwait", "read", "write", "futex"):
                print("%s per answer: %.3f" % (x[-1], int(x[3]) / answered))
    return 0


def cmd_callgrind(a):
    with open(os.path.join(a.run, "answered")) as f:
        answered = int(f.read())
    out = subprocess.run(["callgrind_annotate", os.path.join(a.run, "callgrind.out")],
                         stdout=subprocess.PIPE, stderr=DEVNULL, text=True,
                         errors="replace").stdout
    lines = out.splitlines()
    total = 0
    for line in lines:
        m = re.match(r"^ *([0-9,]+) .*PROGRAM TOTALS", line)
        if m:
            total = int(m.group(1).replace(",", ""))
    print("instructions in apexd's user space: %d, %.0f per answer" % (total, total / answered))
    head(lines, 40)
    return 0


def main():
    p = argparse.ArgumentParser(prog="profile.py")
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("measure")
    s.add_argument("run")
    s.add_argument("--mode", required=True, choices=("cpu", "perf", "strace", "syscalls", "callgrind"))
    s.add_argument("--set", required=True)
    s.add_argument("--seconds", required=True, type=int)
    s.add_argument("--port", required=True, type=int)
    s.add_argument("--pid", required=True, type=int)
    s.add_argument("--data", required=True)
    s.add_argument("--threads", default="2")
    s.add_argument("--qps", default=0, type=int)
    s.add_argument("--proto", default="udp", choices=("udp", "tcp"))
    s.set_defaults(fn=cmd_measure)
    s = sub.add_parser("callgrind")
    s.add_argument("run")
    s.set_defaults(fn=cmd_callgrind)
    a = p.parse_args()
    return a.fn(a)


if __name__ == "__main__":
    sys.exit(main())
