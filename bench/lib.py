#!/usr/bin/python3
"""bench/lib.py - helpers for bench/run.sh (parsing, percentiles, the table).

  lib.py run OUT -- CMD...     run CMD with stdout+stderr into OUT; print the
                               CPU it used (ns, user+sys of it and its
                               children, from getrusage) on stdout; exit with
                               CMD's status
  lib.py dnsperf FILE          "answered qps lost rcodes" from dnsperf output
  lib.py h2load FILE           "answered qps lost rcodes" from h2load output
  lib.py pct-dnsperf FILE      "p50_ms p99_ms n" from dnsperf -v lines
  lib.py pct-h2load FILE       "p50_ms p99_ms n" from an h2load --log-file
  lib.py report RESULTS        the results table and the targets, from the
                               key=value lines run.sh appended to RESULTS
"""
import re
import resource
import subprocess
import sys


def cmd_run(argv):
    out = argv[0]
    assert argv[1] == "--"
    with open(out, "w") as f:
        rc = subprocess.call(argv[2:], stdout=f, stderr=subprocess.STDOUT)
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(int((ru.ru_utime + ru.ru_stime) * 1e9))
    return rc


def cmd_dnsperf(argv):
    text = open(argv[0], errors="replace").read()
    m = re.search(r"Queries completed:\s+(\d+)", text)
    q = re.search(r"Queries per second:\s+([\d.]+)", text)
    lost = re.search(r"Queries lost:\s+(\d+)", text)
    rc = re.search(r"Response codes:\s+(.*)", text)
    if not m or not q:
        print("0 0 0 no-output")
        return 0
    codes = rc.group(1).strip() if rc else ""
    codes = ",".join(c.split(" (")[0].replace(" ", ":") for c in codes.split(", ") if c)
    print(m.group(1), "%.0f" % float(q.group(1)), lost.group(1) if lost else 0, codes or "-")
    return 0


def cmd_h2load(argv):
    text = open(argv[0], errors="replace").read()
    fin = re.search(r"finished in ([\d.]+)(m?s)", text)
    req = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                    r"(\d+) failed, (\d+) errored, (\d+) timeout", text)
    st = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", text)
    if not fin or not req:
        print("0 0 0 no-output")
        return 0
    secs = float(fin.group(1)) / (1000.0 if fin.group(2) == "ms" else 1.0)
    ok = int(req.group(4))
    lost = int(req.group(5)) + int(req.group(6)) + int(req.group(7))
    codes = "2xx:%s,4xx:%s,5xx:%s" % (st.group(1), st.group(3), st.group(4)) if st else "-"
    print(ok, "%.0f" % (ok / secs if secs else 0), lost, codes)
    return 0


def pct(vals):
    if not vals:
        return "n/a n/a 0"
    vals.sort()

    def p(x):
        return vals[min(len(vals) - 1, int(round(x * (len(vals) - 1))))]

    return "%.3f %.3f %d" % (p(0.50), p(0.99), len(vals))


def cmd_pct_dnsperf(argv):
    vals = []
    for line in open(argv[0], errors="replace"):
        if line.startswith("> "):
            parts = line.split()
            try:
                vals.append(float(parts[-1]) * 1000.0)
            except ValueError:
                pass
    print(pct(vals))
    return 0


def cmd_pct_h2load(argv):
    vals = []
    for line in open(argv[0], errors="replace"):
        parts = line.split("\t")
        if len(parts) >= 3 and parts[1].startswith("2"):
            vals.append(int(parts[2]) / 1000.0)
    print(pct(vals))
    return 0


def fnum(x, fmt="%.1f"):
    return "n/a" if x is None else fmt % x


def cmd_report(argv):
    rows = []
    for line in open(argv[0]):
        d = dict(kv.split("=", 1) for kv in line.split())
        rows.append(d)

    # apexd's own SERVFAIL counter for the run (h2load cannot see DNS
    # rcodes): count only the other answers, and charge the CPU to them.
    for r in rows:
        if r["kind"] != "servfail":
            continue
        for x in rows:
            if (x["kind"] == r["run"] and x.get("transport") == r["transport"]
                    and x.get("target") == r["target"] and x["kind"] in ("sat", "flat")):
                sf = int(r["servfail"])
                x["servfail"] = str(sf)
                try:
                    ans = int(x["answered"])
                except ValueError:
                    continue
                good = ans - sf
                if sf and ans > 0:
                    x["qps"] = "%.0f" % (float(x["qps"]) * good / ans) if good > 0 else "0"
                    if x.get("cpu_us") not in (None, "n/a") and good > 0:
                        x["cpu_us"] = "%.2f" % (float(x["cpu_us"]) * ans / good)
                        x["bind_us"] = "%.2f" % (float(x["bind_us"]) * ans / good)
                    elif good <= 0:
                        x["cpu_us"] = x["bind_us"] = "n/a"

    def get(kind, transport, target, key="cpu_us"):
        for r in rows:
            if r["kind"] == kind and r.get("transport") == transport and r.get("target") == target:
                v = r.get(key)
                try:
                    return float(v)
                except (TypeError, ValueError):
                    return None
        return None

    transports = []
    targets = []
    for r in rows:
        if r["kind"] == "sat":
            if r["transport"] not in transports:
                transports.append(r["transport"])
            if r["target"] not in targets:
                targets.append(r["target"])

    out = []
    out.append("| transport | target | QPS | QPS / BIND direct | proxy CPU µs/answer "
               "| vs dnsdist | BIND CPU µs/answer | p50 ms @5k | p99 ms @5k | lost | SERVFAIL | other CPU |")
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in transports:
        bind_qps = get("sat", t, "bind", "qps")
        for g in targets:
            qps = get("sat", t, g, "qps")
            if qps is None:
                continue
            rel = "%.2f" % (qps / bind_qps) if bind_qps else "n/a"
            cpu = get("sat", t, g, "cpu_us")
            vs = ""
            base = {"apexd": "dnsdist", "apexd-ac": "dnsdist-pc", "apexd-ac-nozone": "dnsdist-pc"}.get(g)
            if base:
                b = get("sat", t, base, "cpu_us")
                vs = "%.2f × %s" % (cpu / b, base) if (b and cpu) else "n/a"
            bcpu = get("sat", t, g, "bind_us")
            lost = get("sat", t, g, "lost")
            other = get("sat", t, g, "other_pct")
            p50 = get("lat", t, g, "p50")
            p99 = get("lat", t, g, "p99")
            flag = " ⚠" if other is not None and other > 10 else ""
            sf = get("sat", t, g, "servfail")
            ans = get("sat", t, g, "answered")
            sfs = "-" if sf is None else ("0" if not sf else "%d (%.0f%%)" % (sf, 100.0 * sf / ans))
            out.append("| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s%% of a core%s |" % (
                t, g, qps, rel, fnum(cpu), vs or "-",
                "-" if g == "bind" else fnum(bcpu), fnum(p50, "%.3f"), fnum(p99, "%.3f"),
                "%d" % lost if lost is not None else "n/a", sfs, fnum(other, "%.0f"), flag))
    print("\n".join(out))

    flat = [r for r in rows if r["kind"] == "flat"]
    if flat:
        print()
        print("| transport | apexd plain µs/answer | apexd flattened µs/answer | ratio | flattened QPS | lost | SERVFAIL |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        for r in flat:
            t = r["transport"]
            plain = get("sat", t, "apexd", "cpu_us")
            fl = float(r["cpu_us"]) if r.get("cpu_us") not in (None, "n/a") else None
            print("| %s | %s | %s | %s | %s | %s | %s |" % (
                t, fnum(plain), fnum(fl), "%.2f" % (fl / plain) if (fl and plain) else "n/a",
                r.get("qps"), r.get("lost"), r.get("servfail", "-")))

    print()
    print("QPS and CPU/answer count answers other than apexd's own SERVFAILs (its exit counters).")
    print()
    print("Targets (ratios within this run):")

    def verdict(ok):
        return "MET" if ok else "NOT MET"

    for t in transports:
        a = get("sat", t, "apexd", "cpu_us")
        d = get("sat", t, "dnsdist", "cpu_us")
        if a and d:
            print("  CPU/answer apexd <= 0.75 x dnsdist, %-3s: %.2f x  %s" % (t, a / d, verdict(a / d <= 0.75)))
    for t in transports:
        b = get("sat", t, "bind", "qps")
        a = get("sat", t, "apexd", "qps")
        d = get("sat", t, "dnsdist", "qps")
        if a and d and b:
            print("  QPS/BIND apexd >= dnsdist, %-3s: apexd %.2f, dnsdist %.2f  %s"
                  % (t, a / b, d / b, verdict(a >= d)))
        elif a and d:
            print("  QPS apexd >= dnsdist, %-3s (BIND direct n/a): apexd %.0f, dnsdist %.0f  %s"
                  % (t, a, d, verdict(a >= d)))
    for r in flat:
        t = r["transport"]
        plain = get("sat", t, "apexd", "cpu_us")
        fl = float(r["cpu_us"]) if r.get("cpu_us") not in (None, "n/a") else None
        if plain and fl:
            print("  flattened <= 1.2 x plain CPU/answer, %-3s: %.2f x  %s" % (t, fl / plain, verdict(fl / plain <= 1.2)))
    for g in ("apexd-ac", "apexd-ac-nozone"):
        for t in transports:
            a = get("sat", t, g, "cpu_us")
            d = get("sat", t, "dnsdist-pc", "cpu_us")
            if a and d:
                print("  CPU/answer %s <= dnsdist-pc, %-3s: %.2f x  %s%s" % (
                    g, t, a / d, verdict(a <= d), "  (informative: no [zone])" if g.endswith("nozone") else ""))
    for r in rows:
        if r["kind"] == "mem":
            v = float(r["bytes_per_entry"])
            print("  RSS per cached target entry <= 300 B (%s entries): %.1f B  %s"
                  % (r["entries"], v, verdict(v <= 300)))
        if r["kind"] == "threads":
            q1, q2 = float(r["qps1"]), float(r["qps2"])
            ratio = q2 / q1 if q1 else 0
            print("  UDP QPS threads=2 >= 1.6 x threads=1: %.0f vs %.0f = %.2f x  %s  (%s)"
                  % (q2, q1, ratio, verdict(ratio >= 1.6), r["pinning"].replace("_", " ")))
            if r.get("cpu1") not in (None, "", "n/a") and r.get("cpu2") not in (None, "", "n/a"):
                c1, c2 = float(r["cpu1"]), float(r["cpu2"])
                # Workers share nothing on the relay path, so the cost of
                # an answer should not grow with the number of workers;
                # QPS then scales with the cores the workers get.
                print("    apexd CPU/answer threads=1 %.1f us, threads=2 %.1f us (%.2f x): "
                      "the per-answer cost with a second worker" % (c1, c2, c2 / c1 if c1 else 0))
    return 0


def main():
    cmd, argv = sys.argv[1], sys.argv[2:]
    fn = {
        "run": cmd_run,
        "dnsperf": cmd_dnsperf,
        "h2load": cmd_h2load,
        "pct-dnsperf": cmd_pct_dnsperf,
        "pct-h2load": cmd_pct_h2load,
        "report": cmd_report,
    }[cmd]
    sys.exit(fn(argv))


if __name__ == "__main__":
    main()
