#!/usr/bin/python3
"""bench/report.py RESULTS NOTES NOISE_PCT - bench/run.sh's report.

Reads the key=value records bench/measure.py (and run.sh) appended to
RESULTS and prints the results table, the flattened-vs-plain table and the
targets, then the notes of the run (NOTES, one a line) and a warning when
other processes used more than NOISE_PCT % of a core during a saturation
run.
"""
import os
import sys


def fnum(x, fmt="%.1f"):
    return "n/a" if x is None else fmt % x


def read_rows(results):
    with open(results) as f:
        return [dict(kv.split("=", 1) for kv in line.split()) for line in f if line.strip()]


def report(rows, noise):
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

    def xfloor(cpu, t="udp"):
        """CPU per answer as a multiple of the floor's (bench/floor.c) on
        the same transport in this run; "-" where there is no floor."""
        f = get("sat", t, "floor", "cpu_us")
        return "%.2f" % (cpu / f) if (f and cpu) else "-"

    # The fixed rate of the latency runs (run.sh exports LAT_QPS).
    rate = int(os.environ.get("LAT_QPS") or 5000)
    at = "@%gk" % (rate / 1000.0)
    out = []
    out.append(("| transport | target | QPS | QPS / BIND direct | proxy CPU µs/answer "
                "| × floor | vs dnsdist | sleeps/answer | CPU µs/answer @R | × floor @R | vs dnsdist @R "
                "| BIND CPU µs/answer | p50 ms @R | p99 ms @R | lost | SERVFAIL | other CPU |").replace("@R", at))
    out.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for t in transports:
        bind_qps = get("sat", t, "bind", "qps")
        for g in targets:
            qps = get("sat", t, g, "qps")
            if qps is None:
                continue
            rel = "%.2f" % (qps / bind_qps) if bind_qps else "n/a"
            cpu = get("sat", t, g, "cpu_us")
            vs = ""
            base = {"apexd": "dnsdist", "apexd-bare": "dnsdist", "apexd-ac": "dnsdist-pc",
                    "apexd-ac-nozone": "dnsdist-pc"}.get(g)
            if base:
                b = get("sat", t, base, "cpu_us")
                vs = "%.2f × %s" % (cpu / b, base) if (b and cpu) else "n/a"
            lcpu = get("lat", t, g, "cpu_us")
            lf = get("lat", t, "floor", "cpu_us")
            lvs = "-"
            if base:
                b = get("lat", t, base, "cpu_us")
                lvs = "%.2f × %s" % (lcpu / b, base) if (b and lcpu) else "n/a"
            bcpu = get("sat", t, g, "bind_us")
            lost = get("sat", t, g, "lost")
            other = get("sat", t, g, "other_pct")
            p50 = get("lat", t, g, "p50")
            p99 = get("lat", t, g, "p99")
            flag = " ⚠" if other is not None and other > noise else ""
            sf = get("sat", t, g, "servfail")
            ans = get("sat", t, g, "answered")
            sfs = "-" if sf is None else ("0" if not sf else "%d (%.0f%%)" % (sf, 100.0 * sf / ans))
            out.append("| %s | %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s%% of a core%s |" % (
                t, g, qps, rel, fnum(cpu), xfloor(cpu, t), vs or "-",
                fnum(get("sat", t, g, "sleeps"), "%.2f"), fnum(lcpu),
                "%.2f" % (lcpu / lf) if (lcpu and lf) else "-", lvs,
                "-" if g in ("bind", "floor") else fnum(bcpu), fnum(p50, "%.3f"), fnum(p99, "%.3f"),
                "%d" % lost if lost is not None else "n/a", sfs, fnum(other, "%.0f"), flag))
    print("\n".join(out))

    flat = [r for r in rows if r["kind"] == "flat"]
    if flat:
        print()
        print("| transport | apexd plain µs/answer | apexd flattened µs/answer | ratio "
              "| flattened × floor | flattened QPS | lost | SERVFAIL |")
        print("|---|---:|---:|---:|---:|---:|---:|---:|")
        for r in flat:
            t = r["transport"]
            plain = get("sat", t, "apexd", "cpu_us")
            fl = float(r["cpu_us"]) if r.get("cpu_us") not in (None, "n/a") else None
            print("| %s | %s | %s | %s | %s | %s | %s | %s |" % (
                t, fnum(plain), fnum(fl), "%.2f" % (fl / plain) if (fl and plain) else "n/a",
                xfloor(fl, t),
                r.get("qps"), r.get("lost"), r.get("servfail", "-")))

    print()
    print("QPS and CPU/answer count answers other than apexd's own SERVFAILs (its exit counters).")
    print()
    print("Targets (ratios within this run):")

    def verdict(ok):
        return "MET" if ok else "NOT MET"

    for g in ("apexd", "apexd-bare"):
        for t in transports:
            a = get("sat", t, g, "cpu_us")
            d = get("sat", t, "dnsdist", "cpu_us")
            if a and d:
                print("  CPU/answer %s <= 0.75 x dnsdist, %-3s: %.2f x  %s%s" % (
                    g, t, a / d, verdict(a / d <= 0.75),
                    "  (informative: no [zone], the bare relay)" if g == "apexd-bare" else ""))
    a = get("sat", "udp", "apexd-ac", "cpu_us")
    f = get("sat", "udp", "floor", "cpu_us")
    if a and f:
        print("  CPU/answer apexd-ac <= 2 x floor, udp: %.2f x  %s" % (a / f, verdict(a / f <= 2)))
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
                print("    apexd CPU/answer threads=1 %.1f us (%s x floor), threads=2 %.1f us (%s x floor)"
                      " (%.2f x): the per-answer cost with a second worker"
                      % (c1, xfloor(c1), c2, xfloor(c2), c2 / c1 if c1 else 0))
    return 0


def main():
    results, notes, noise = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rows = read_rows(results)
    noisy = any(r["kind"] in ("sat", "flat", "thr") and float(r.get("other_pct", 0)) > noise
                for r in rows)
    report(rows, noise)
    try:
        with open(notes) as f:
            lines = [line.rstrip("\n") for line in f if line.strip()]
    except OSError:
        lines = []
    if lines:
        print()
        print("Notes:")
        for line in lines:
            print("  - " + line)
    if noisy:
        print()
        print("WARNING: other processes used more than %g%% of a core during some runs "
              "(column 'other CPU', ⚠)." % noise)
        print("The machine is shared: trust ratios within this run, not raw numbers across runs.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
