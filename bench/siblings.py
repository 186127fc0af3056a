#!/usr/bin/python3
"""bench/siblings.py - bench/siblings.sh's zones, waits, measurements and report.

bench/siblings.sh starts and stops the processes (the CDN's BIND, unbound,
the primary BIND, apexd); this file does everything else:

  siblings.py gen DIR --owners N --ttl T --aaaa-every K
      DIR/cdn.test.zone   t1..tN.cdn.test, one A each (TTL T), every Kth
                          also one AAAA; negative TTL T
      DIR/big.test.zone   SOA, NS and o1..oN.big.test, each an ANAME
                          (TYPE65401, RFC 3597) to tI.cdn.test
      DIR/empty.test.zone SOA and NS only (the memory baseline)
  siblings.py wait-soa PORT ZONE [SECS]
      until PORT answers ZONE SOA over UDP and accepts TCP (default 15 s)
  siblings.py wait-signed PORT ZONE KEYFILE SECS
      AXFR (TSIG) until every name of ZONE has an NSEC and an RRSIG over
      each of its RRsets; prints the seconds it took
  siblings.py baseline --metrics PORT --pid PID --out FILE [--secs S]
      until apexd has transferred its (empty) sibling zone, then its
      VmRSS into FILE as JSON
  siblings.py run --mode M --run DIR --pid PID --bind-pid PID --metrics PORT
                  --bind-port PORT --key FILE --owners N --aaaa N --ttl T
                  --window S --limit S --t0 EPOCH --unbound-log FILE
                  --apexd-log FILE
      the three measurements (first round, steady state, memory) of one
      run into DIR/M.json
  siblings.py report --run DIR MODE...
      prints the figures of each mode's DIR/MODE.json, appends them to
      DIR/results.txt

Exit status 0 when done; run exits 1 when the first round did not finish
within --limit (its JSON says how far it got), wait-* exit 1 on timeout.
"""
import argparse
import json
import os
import re
import socket
import sys
import time
import urllib.request

import dns.message
import dns.name
import dns.query
import dns.rdatatype
import dns.tsig
import dns.tsigkeyring

from lib import cpu_ticks, HZ, proc_alive, rss_kb, say

ANAME_TYPE = 65401
ANAME_TTL = 3600


# ------------------------------------------------------------------ zones --
def wire_name(name):
    """NAME in uncompressed wire form, as docs/aname-line.sh writes it."""
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def aname_line(owner, target):
    w = wire_name(target)
    return "%s %d IN TYPE%d \\# %d %s\n" % (owner, ANAME_TTL, ANAME_TYPE, len(w), w.hex())


def soa(origin, ttl, refresh):
    # The SOA refresh is apexd's fallback transfer interval; an hour keeps
    # it out of the steady-state window, as a production zone would.
    return ("$ORIGIN %s.\n$TTL %d\n"
            "@ IN SOA ns1.%s. hostmaster.%s. 1 %d 600 1209600 %d\n"
            "@ IN NS ns1.%s.\nns1 IN A 192.0.2.53\n" % (origin, ttl, origin, origin, refresh,
                                                        ttl, origin))


def cmd_gen(a):
    os.makedirs(a.dir, exist_ok=True)
    n_aaaa = 0
    with open(os.path.join(a.dir, "cdn.test.zone"), "w") as f:
        f.write(soa("cdn.test", a.ttl, 3600))
        for i in range(1, a.owners + 1):
            f.write("t%d IN A 10.%d.%d.%d\n" % (i, i >> 16 & 255, i >> 8 & 255, i & 255))
            if a.aaaa_every and i % a.aaaa_every == 0:
                f.write("t%d IN AAAA 2001:db8::%x\n" % (i, i))
                n_aaaa += 1
    with open(os.path.join(a.dir, "big.test.zone"), "w") as f:
        f.write(soa("big.test", 3600, 3600))
        for i in range(1, a.owners + 1):
            f.write(aname_line("o%d" % i, "t%d.cdn.test" % i))
    with open(os.path.join(a.dir, "empty.test.zone"), "w") as f:
        f.write(soa("empty.test", 3600, 3600))
    print(json.dumps({"owners": a.owners, "aaaa": n_aaaa, "ttl": a.ttl}))
    return 0


# ---------------------------------------------------------------- queries --
def read_key(path):
    """(name, algorithm, secret) of a tsig-keygen key file."""
    with open(path) as f:
        text = f.read()
    m = re.search(r'key\s+"([^"]+)"\s*\{\s*algorithm\s+([\w-]+);\s*secret\s+"([^"]+)"', text)
    if not m:
        sys.exit("%s: no key statement" % path)
    return m.group(1), m.group(2), m.group(3)


def axfr(port, zone, keyfile, timeout=60):
    """Every RR of ZONE by AXFR signed with the key: a list of (owner text,
    type, rdata) for the rdatas, without the closing SOA."""
    name, alg, secret = read_key(keyfile)
    keyring = dns.tsigkeyring.from_text({name: secret})
    rrs = []
    for msg in dns.query.xfr("127.0.0.1", zone, port=port, keyring=keyring, keyname=name,
                             keyalgorithm=dns.name.from_text(alg), lifetime=timeout,
                             relativize=False):
        for rrset in msg.answer:
            owner = rrset.name.to_text().lower()
            for rd in rrset:
                rrs.append((owner, rrset.rdtype, rd))
    # The transfer ends with the SOA it began with.
    return rrs[:-1] if rrs and rrs[-1][1] == dns.rdatatype.SOA else rrs


def soa_serial(port, zone):
    q = dns.message.make_query(zone, "SOA")
    for _ in range(3):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
        except Exception:
            continue
        for rrset in r.answer:
            if rrset.rdtype == dns.rdatatype.SOA:
                return rrset[0].serial
    return None


def cmd_wait_soa(a):
    deadline = time.monotonic() + a.secs
    while time.monotonic() < deadline:
        if soa_serial(a.port, a.zone) is not None:
            try:
                socket.create_connection(("127.0.0.1", a.port), 1).close()
                return 0
            except OSError:
                pass
        time.sleep(0.3)
    return 1


def signed_state(rrs):
    """(names, names with NSEC, RRsets, RRsets covered by an RRSIG)."""
    types, nsec, covered = {}, set(), set()
    for owner, t, rd in rrs:
        if t == dns.rdatatype.RRSIG:
            covered.add((owner, rd.type_covered))
            continue
        types.setdefault(owner, set()).add(t)
        if t == dns.rdatatype.NSEC:
            nsec.add(owner)
    rrsets = {(o, t) for o, ts in types.items() for t in ts}
    return len(types), len(nsec), len(rrsets), len(rrsets & covered)


def cmd_wait_signed(a):
    t0 = time.monotonic()
    deadline = t0 + a.secs
    last = None
    while time.monotonic() < deadline:
        try:
            state = signed_state(axfr(a.port, a.zone, a.key))
        except Exception as e:
            state = ("AXFR failed: %s" % e,)
        if state != last:
            say("%s signing: %s" % (a.zone, state if len(state) == 1 else
                                    "%d names, %d with NSEC, %d/%d RRsets signed" % (
                                        state[0], state[1], state[3], state[2])))
            last = state
        if len(state) == 4 and state[0] == state[1] and state[2] == state[3] and state[0] > 0:
            print("%.1f" % (time.monotonic() - t0))
            return 0
        time.sleep(2)
    return 1


# ---------------------------------------------------------------- metrics --
def metrics(port):
    """apexd's /metrics as {name{labels}: float}; {} when it does not answer."""
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=3) as r:
            text = r.read().decode("utf-8", "replace")
    except Exception:
        return {}
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        key, _, val = line.rpartition(" ")
        try:
            out[key] = float(val)
        except ValueError:
            pass
    return out


def m(ms, key):
    return int(ms.get(key, 0))


def updates(ms, result=None):
    """apexd_sibling_updates_total for RESULT, or summed over results."""
    if result:
        return m(ms, 'apexd_sibling_updates_total{result="%s"}' % result)
    return sum(int(v) for k, v in ms.items() if k.startswith("apexd_sibling_updates_total{"))


def labelled(ms, prefix):
    return {k[len(prefix):]: int(v) for k, v in ms.items() if k.startswith(prefix) and v}


def cmd_baseline(a):
    deadline = time.monotonic() + a.secs
    ms = {}
    while time.monotonic() < deadline and proc_alive(a.pid):
        ms = metrics(a.metrics)
        if m(ms, 'apexd_sibling_transfers_total{kind="axfr",result="ok"}') >= 1:
            break
        time.sleep(0.25)
    # Let the loops settle (first allocations of every thread) before the
    # sample.
    time.sleep(2)
    res = {"rss_kb": rss_kb(a.pid), "loaded": bool(ms), "owners": m(ms, "apexd_sibling_owners"),
           "sibling_bytes": m(ms, "apexd_sibling_bytes"),
           "transfers": labelled(ms, "apexd_sibling_transfers_total")}
    with open(a.out, "w") as f:
        json.dump(res, f)
    say("baseline apexd (empty sibling zone): VmRSS %s KiB" % res["rss_kb"])
    return 0 if res["rss_kb"] else 1


# ------------------------------------------------------------- run phases --
def count_lines(path, pattern=None):
    try:
        with open(path, errors="replace") as f:
            if pattern is None:
                return sum(1 for _ in f)
            return sum(1 for line in f if pattern.search(line))
    except OSError:
        return 0


# Sibling families apexd chases per owner: A, AAAA, HTTPS (issue 15).
FAMILIES = 3
UNBOUND_QUERY = re.compile(r"info: 127\.0\.0\.1 t\d+\.cdn\.test\. (A|AAAA|HTTPS) IN")
UNBOUND_LINE = re.compile(r"^\[(\d+)\] .* info: 127\.0\.0\.1 (t\d+\.cdn\.test)\. (A|AAAA|HTTPS) IN")


def unbound_queries(path):
    """(epoch second, name, type) of every target query unbound logged
    (log-queries: one line per query it received, i.e. per chase)."""
    out = []
    try:
        with open(path, errors="replace") as f:
            for line in f:
                mo = UNBOUND_LINE.match(line)
                if mo:
                    out.append((int(mo.group(1)), mo.group(2), mo.group(3)))
    except OSError:
        pass
    return out


def chase_spread(queries, t_from, t_to):
    """How the chases of [t_from, t_to) are spread: the busiest second,
    the seconds with any chase, and the intervals between two chases of
    one target and type (a refresh is due once per TTL)."""
    per_sec, last, gaps = {}, {}, {}
    for t, name, typ in queries:
        key = (name, typ)
        if t_from <= t < t_to:
            per_sec[t] = per_sec.get(t, 0) + 1
            if key in last:
                gaps[t - last[key]] = gaps.get(t - last[key], 0) + 1
        last[key] = t
    return {"busiest_second": max(per_sec.values()) if per_sec else 0,
            "seconds_with_chases": len(per_sec), "seconds": t_to - t_from,
            "gaps": dict(sorted(gaps.items()))}


def snapshot(a):
    """What the steady-state window compares: apexd's counters, BIND's
    serial, the CPU of apexd and BIND, unbound's query lines."""
    ms = metrics(a.metrics)
    return {"t": time.time(), "ms": ms, "serial": soa_serial(a.bind_port, "big.test"),
            "cpu": cpu_ticks(a.pid) if proc_alive(a.pid) else None,
            "bind_cpu": cpu_ticks(a.bind_pid) if proc_alive(a.bind_pid) else None,
            "unbound": count_lines(a.unbound_log, UNBOUND_QUERY)}


def log_lines(path, levels=("warning", "error")):
    pat = re.compile(r"apexd\[\d+\] (%s) " % "|".join(levels))
    out = []
    try:
        with open(path, errors="replace") as f:
            out = [line.rstrip("\n") for line in f if pat.search(line)]
    except OSError:
        pass
    return out


def phase_first_round(a, res, serial0):
    """Polls the metrics until every owner's A and every AAAA the CDN has
    are written (apexd_sibling_changes_total), and an AXFR from BIND
    agrees, up to --limit."""
    want = a.owners + a.aaaa
    t_owners = t_done = None
    last_say = t_axfr = 0.0
    progress = []
    peak_rss = 0
    while True:
        now = time.time()
        if now - a.t0 > a.limit or not proc_alive(a.pid):
            break
        ms = metrics(a.metrics)
        owners, changes = m(ms, "apexd_sibling_owners"), m(ms, "apexd_sibling_changes_total")
        peak_rss = max(peak_rss, rss_kb(a.pid) or 0)
        if t_owners is None and owners >= a.owners:
            t_owners = now - a.t0
            say("%s: %d owners known after %.1f s" % (a.mode, owners, t_owners))
        if ms and now - last_say >= 10:
            progress.append((round(now - a.t0, 1), owners, changes, updates(ms, "ok"),
                             updates(ms) - updates(ms, "ok")))
            say("%s: %.0f s: owners %d, RRsets written %d/%d, UPDATEs ok %d, failed %d" % (
                (a.mode,) + progress[-1][:3] + (want,) + progress[-1][3:]))
            last_say = now
        # The counter says the round is done; BIND's zone has the last
        # word (an AXFR, at most every 3 s: a signed one costs a second or two).
        if changes >= want and time.monotonic() - t_axfr >= 3:
            t_axfr = time.monotonic()
            phase_confirm(a, res)
            ax = res["axfr"]
            if ax.get("a_owners") == a.owners and ax.get("aaaa_owners") == a.aaaa:
                t_done = now - a.t0
                break
        time.sleep(0.25)
    ms = metrics(a.metrics)
    serial1 = soa_serial(a.bind_port, "big.test")
    first = {}
    for t, name, typ in unbound_queries(a.unbound_log):
        first.setdefault((name, typ), t)
    # unbound logs whole seconds: this is an upper bound to +1 s.
    chased = max(first.values()) - a.t0 + 1 if len(first) >= FAMILIES * a.owners else None
    res["first_round"] = {
        "want_changes": want, "owners_known_s": t_owners, "done_s": t_done,
        "alive": proc_alive(a.pid), "owners": m(ms, "apexd_sibling_owners"),
        "changes": m(ms, "apexd_sibling_changes_total"),
        "updates": labelled(ms, "apexd_sibling_updates_total"),
        "transfers": labelled(ms, "apexd_sibling_transfers_total"),
        "chase_failures": m(ms, "apexd_sibling_chase_failures_total"),
        "chases": m(ms, "apexd_sibling_chases_total"), "chase_queries": m(ms, "apexd_sibling_chase_queries_total"),
        "serial_before": serial0, "serial_after": serial1, "peak_rss_kb": peak_rss,
        "all_chased_s": chased,
        "progress": progress,
    }
    if t_done is None:
        say("%s: first round NOT complete after %.0f s: %d/%d RRsets written" % (
            a.mode, time.time() - a.t0, res["first_round"]["changes"], want))
    else:
        say("%s: first round complete after %.1f s (%d UPDATEs ok)" % (
            a.mode, t_done, res["first_round"]["updates"].get('{result="ok"}', 0)))
    return t_done is not None


def phase_confirm(a, res):
    """One AXFR from BIND: owners with A (and AAAA) siblings, and whether
    they are the CDN's addresses."""
    t0 = time.monotonic()
    try:
        rrs = axfr(a.bind_port, "big.test", a.key)
    except Exception as e:
        res["axfr"] = {"error": str(e)}
        return
    a_owners, aaaa_owners, a_rrs, aaaa_rrs, wrong = set(), set(), 0, 0, 0
    own = re.compile(r"^o(\d+)\.big\.test\.$")
    for owner, t, rd in rrs:
        mo = own.match(owner)
        if not mo or t not in (dns.rdatatype.A, dns.rdatatype.AAAA):
            continue
        i = int(mo.group(1))
        if t == dns.rdatatype.A:
            a_rrs += 1
            a_owners.add(i)
            if rd.address != "10.%d.%d.%d" % (i >> 16 & 255, i >> 8 & 255, i & 255):
                wrong += 1
        else:
            aaaa_rrs += 1
            aaaa_owners.add(i)
            if rd.address != "2001:db8::%x" % i:
                wrong += 1
    res["axfr"] = {"rrs": len(rrs), "a_rrs": a_rrs, "a_owners": len(a_owners),
                   "aaaa_rrs": aaaa_rrs, "aaaa_owners": len(aaaa_owners), "wrong": wrong,
                   "rrsig": sum(1 for _, t, _ in rrs if t == dns.rdatatype.RRSIG),
                   "seconds": round(time.monotonic() - t0, 1)}
    say("%s: AXFR from BIND: %d owners with A, %d with AAAA, %d wrong addresses" % (
        a.mode, len(a_owners), len(aaaa_owners), wrong))


def phase_settle(a, limit=30, quiet=5):
    """Until apexd has sent no UPDATE for QUIET s (its own writes come
    back as NOTIFY and IXFR first), at most LIMIT s."""
    t_end = time.monotonic() + limit
    last, t_last = updates(metrics(a.metrics)), time.monotonic()
    while time.monotonic() < t_end:
        time.sleep(1)
        u = updates(metrics(a.metrics))
        if u != last:
            last, t_last = u, time.monotonic()
        elif time.monotonic() - t_last >= quiet:
            return True
    return False


def phase_steady(a, res):
    say("%s: steady state: %d s with stable targets (TTL %d s)" % (a.mode, a.window, a.ttl))
    s0 = snapshot(a)
    timeline = []
    t_end = time.monotonic() + a.window
    while time.monotonic() < t_end and proc_alive(a.pid):
        time.sleep(min(10, max(0.1, t_end - time.monotonic())))
        ms = metrics(a.metrics)
        timeline.append((round(time.time() - s0["t"]), updates(ms) - updates(s0["ms"]),
                         m(ms, "apexd_sibling_changes_total") -
                         m(s0["ms"], "apexd_sibling_changes_total"),
                         soa_serial(a.bind_port, "big.test")))
    s1 = snapshot(a)
    secs = s1["t"] - s0["t"]

    def d(key):
        return m(s1["ms"], key) - m(s0["ms"], key)

    cpu_s = (s1["cpu"] - s0["cpu"]) / HZ if s1["cpu"] is not None else None
    bind_cpu_s = (s1["bind_cpu"] - s0["bind_cpu"]) / HZ if s1["bind_cpu"] is not None else None
    n_upd = updates(s1["ms"]) - updates(s0["ms"])
    # An owner is refreshed once per family per target TTL (apexd chases
    # the A, the AAAA and the HTTPS of every target; the HTTPS NODATA
    # lives the negative TTL, which is the TTL here).
    refreshes = FAMILIES * a.owners * secs / a.ttl
    res["steady"] = {
        "seconds": round(secs, 1), "updates": n_upd,
        "updates_per_min": n_upd * 60.0 / secs if secs else None,
        "changes": d("apexd_sibling_changes_total"),
        "serial_before": s0["serial"], "serial_after": s1["serial"],
        "cpu_s": cpu_s, "bind_cpu_s": bind_cpu_s, "refreshes_expected": refreshes,
        "chases": d("apexd_sibling_chases_total"), "chase_queries": d("apexd_sibling_chase_queries_total"),
        "chase_failures": d("apexd_sibling_chase_failures_total"),
        "unbound_queries": s1["unbound"] - s0["unbound"],
        "transfers": {k: m(s1["ms"], "apexd_sibling_transfers_total" + k) -
                      m(s0["ms"], "apexd_sibling_transfers_total" + k)
                      for k in labelled(s1["ms"], "apexd_sibling_transfers_total")},
        "timeline": timeline, "alive": proc_alive(a.pid),
        "spread": chase_spread(unbound_queries(a.unbound_log), int(s0["t"]) + 1, int(s1["t"])),
    }
    st = res["steady"]
    say("%s: steady: %d UPDATEs in %.0f s, serial %s -> %s, apexd CPU %s s, "
        "unbound saw %d target queries" % (a.mode, n_upd, secs, st["serial_before"],
                                           st["serial_after"], cpu_s, st["unbound_queries"]))


def phase_memory(a, res):
    ms = metrics(a.metrics)
    base = None
    if a.baseline:
        with open(a.baseline) as f:
            base = json.load(f).get("rss_kb")
    res["memory"] = {"sibling_bytes": m(ms, "apexd_sibling_bytes"),
                     "owners": m(ms, "apexd_sibling_owners"),
                     "cache_bytes": m(ms, "apexd_cache_bytes"),
                     "cache_entries": m(ms, "apexd_cache_entries"),
                     "rss_kb": rss_kb(a.pid), "rss_base_kb": base}


def cmd_run(a):
    res = {"mode": a.mode, "owners": a.owners, "aaaa": a.aaaa, "ttl": a.ttl,
           "window": a.window, "limit": a.limit, "signing_s": a.signing_s,
           "bind_cpu_start": cpu_ticks(a.bind_pid) if proc_alive(a.bind_pid) else None}
    done = phase_first_round(a, res, a.serial0)
    res["bind_cpu_first_round_s"] = ((cpu_ticks(a.bind_pid) - res["bind_cpu_start"]) / HZ
                                     if proc_alive(a.bind_pid) and res["bind_cpu_start"] is not None
                                     else None)
    if not done:
        phase_confirm(a, res)
    if done:
        res["settled"] = phase_settle(a)
        phase_steady(a, res)
    phase_memory(a, res)
    res["log_warnings"] = log_lines(a.apexd_log)[:20]
    res["log_warning_count"] = len(log_lines(a.apexd_log))
    res["log_update_lines"] = count_lines(a.apexd_log, re.compile(r"UPDATE wrote"))
    with open(os.path.join(a.run, "%s.json" % a.mode), "w") as f:
        json.dump(res, f, indent=1, default=str)
    return 0 if done else 1


# ----------------------------------------------------------------- report --
def fmt(v, spec="%s", none="-"):
    return none if v is None else spec % v


def verdict(ok):
    return "MET" if ok else "NOT MET"


def label_text(d):
    """{'{kind="axfr",result="ok"}': 1} as 'axfr ok 1'."""
    return ", ".join("%s %d" % (" ".join(re.findall(r'"([^"]*)"', k)), v)
                     for k, v in d.items() if v) or "none"


def report_mode(r):
    out = []
    fr, ax, st, mem = r["first_round"], r.get("axfr", {}), r.get("steady"), r["memory"]
    upd_ok = fr["updates"].get('{result="ok"}', 0)
    failed = {k: v for k, v in fr["updates"].items() if k != '{result="ok"}'}
    out.append("## %s zone: %d ANAME owners (%d targets with AAAA), target TTL %d s" % (
        r["mode"], r["owners"], r["aaaa"], r["ttl"]))
    if r.get("signing_s") is not None:
        out.append("BIND signed the zone at load (dnssec-policy) in %s s" % r["signing_s"])
    out.append("1. first round")
    out.append("   owners known (AXFR done) after      %s s" % fmt(fr["owners_known_s"], "%.1f"))
    out.append("   first complete round after          %s s   (limit %d s)" % (
        fmt(fr["done_s"], "%.1f", "NOT COMPLETE"), r["limit"]))
    out.append("   every target chased once after      %s s  (unbound's log, whole seconds)" % (
        fmt(fr.get("all_chased_s"), "%.0f")))
    out.append("   RRsets written                      %d of %d" % (fr["changes"],
                                                                     fr["want_changes"]))
    out.append("   UPDATEs ok                          %d  (%.0f RRsets per UPDATE)%s" % (
        upd_ok, fr["changes"] / upd_ok if upd_ok else 0,
        "; failed: %s" % label_text(failed) if failed else ""))
    out.append("   BIND serial                         %s -> %s (moved %s)" % (
        fr["serial_before"], fr["serial_after"],
        fmt(fr["serial_after"] - fr["serial_before"]
            if None not in (fr["serial_before"], fr["serial_after"]) else None)))
    out.append("   transfers                           %s" % label_text(fr["transfers"]))
    out.append("   chase failures                      %d" % fr["chase_failures"])
    out.append("   BIND CPU during the round           %s s" % fmt(r.get("bind_cpu_first_round_s"),
                                                                    "%.1f"))
    if "error" in ax:
        out.append("   AXFR check                          failed: %s" % ax["error"])
    elif ax:
        out.append("   AXFR check: owners with A %d/%d, with AAAA %d/%d, wrong addresses %d, "
                   "RRSIGs %d" % (ax["a_owners"], r["owners"], ax["aaaa_owners"], r["aaaa"],
                                  ax["wrong"], ax["rrsig"]))
    if st:
        out.append("2. steady state: %.0f s = %.1f x the target TTL%s" % (
            st["seconds"], st["seconds"] / r["ttl"],
            "" if r.get("settled", True) else " (UPDATEs had not stopped 30 s after the round)"))
        out.append("   UPDATEs per minute                  %.2f  (%d UPDATEs, %d RRsets)  "
                   "target 0: %s" % (st["updates_per_min"], st["updates"], st["changes"],
                                     verdict(st["updates"] == 0)))
        out.append("   BIND serial                         %s -> %s  equal: %s" % (
            st["serial_before"], st["serial_after"],
            verdict(st["serial_before"] == st["serial_after"] is not None)))
        out.append("   owner refreshes expected            %.0f  (%d families x owners x "
                   "window / TTL)" % (st["refreshes_expected"], FAMILIES))
        out.append("   chases / chase queries (metrics)    %d / %d" % (st["chases"],
                                                                     st["chase_queries"]))
        out.append("   target queries unbound saw          %d  (%.2f x the refreshes expected)" % (
            st["unbound_queries"], st["unbound_queries"] / st["refreshes_expected"]))
        sp = st.get("spread")
        if sp:
            gaps = sp["gaps"]
            short = sum(n for g, n in gaps.items() if int(g) < r["ttl"] * 2 // 3)
            out.append("   chases spread: busiest second %d, seconds with chases %d of %d" % (
                sp["busiest_second"], sp["seconds_with_chases"], sp["seconds"]))
            out.append("   intervals between chases of one target+type (s: count): %s" % (
                ", ".join("%s: %d" % (g, n) for g, n in gaps.items())))
            out.append("   of them shorter than 2/3 of the TTL  %d (%.0f %%)" % (
                short, 100.0 * short / max(1, sum(gaps.values()))))
        per = None
        per_refresh = None
        n = st["unbound_queries"] or st["chase_queries"]
        if st["cpu_s"] is not None and n:
            per = st["cpu_s"] * 1e6 / n
        if st["cpu_s"] is not None:
            per_refresh = st["cpu_s"] * 1e6 / st["refreshes_expected"]
        out.append("   apexd CPU                           %s s (%.1f %% of a core) = %s us per "
                   "chase, %s us per owner refresh due" % (
                       fmt(st["cpu_s"], "%.2f"), 100.0 * (st["cpu_s"] or 0) / st["seconds"],
                       fmt(per, "%.0f"), fmt(per_refresh, "%.0f")))
        out.append("   BIND CPU                            %s s" % fmt(st["bind_cpu_s"], "%.2f"))
        out.append("   chase failures                      %d" % st["chase_failures"])
        out.append("   transfers in the window             %s" % label_text(st["transfers"]))
    else:
        out.append("2. steady state: not measured (the first round did not complete)")
    out.append("3. memory")
    if mem["owners"]:
        out.append("   apexd_sibling_bytes / owners        %.0f B  (%d B, %d owners)" % (
            mem["sibling_bytes"] / mem["owners"], mem["sibling_bytes"], mem["owners"]))
    if mem["cache_entries"]:
        out.append("   target cache: %d entries, %d B = %.0f B per owner" % (
            mem["cache_entries"], mem["cache_bytes"], mem["cache_bytes"] / r["owners"]))
    if mem["rss_kb"] and mem["rss_base_kb"]:
        out.append("   VmRSS %d KiB vs %d KiB without owners: %.0f B per owner" % (
            mem["rss_kb"], mem["rss_base_kb"],
            (mem["rss_kb"] - mem["rss_base_kb"]) * 1024.0 / r["owners"]))
    out.append("   peak VmRSS during the first round   %d KiB" % fr["peak_rss_kb"])
    out.append("apexd log: %d UPDATE lines, %d warnings/errors" % (r["log_update_lines"],
                                                                r["log_warning_count"]))
    for line in r["log_warnings"][:10]:
        out.append("   " + line)
    return out


def cmd_report(a):
    lines = []
    for mode in a.modes:
        path = os.path.join(a.run, "%s.json" % mode)
        if not os.path.exists(path):
            lines.append("## %s: no result (see the log above)" % mode)
            continue
        with open(path) as f:
            lines += report_mode(json.load(f))
        lines.append("")
    text = "\n".join(lines) + "\n"
    sys.stdout.write(text)
    with open(os.path.join(a.run, "results.txt"), "a") as f:
        f.write("Command: %s\n\n" % a.command)
        f.write(text)
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("dir")
    g.add_argument("--owners", type=int, required=True)
    g.add_argument("--ttl", type=int, required=True)
    g.add_argument("--aaaa-every", type=int, default=4)
    w = sub.add_parser("wait-soa")
    w.add_argument("port", type=int)
    w.add_argument("zone")
    w.add_argument("secs", type=float, nargs="?", default=15)
    s = sub.add_parser("wait-signed")
    s.add_argument("port", type=int)
    s.add_argument("zone")
    s.add_argument("key")
    s.add_argument("secs", type=float)
    b = sub.add_parser("baseline")
    b.add_argument("--metrics", type=int, required=True)
    b.add_argument("--pid", type=int, required=True)
    b.add_argument("--out", required=True)
    b.add_argument("--secs", type=float, default=30)
    r = sub.add_parser("run")
    for opt in ("mode", "run", "key", "unbound-log", "apexd-log"):
        r.add_argument("--" + opt, required=True)
    r.add_argument("--baseline")
    for opt in ("pid", "bind-pid", "metrics", "bind-port", "owners", "aaaa", "ttl", "window",
                "limit"):
        r.add_argument("--" + opt, type=int, required=True)
    r.add_argument("--t0", type=float, required=True)
    r.add_argument("--serial0", type=int)
    r.add_argument("--signing-s", type=float)
    rp = sub.add_parser("report")
    rp.add_argument("--run", required=True)
    rp.add_argument("--command", default="")
    rp.add_argument("modes", nargs="+")
    a = p.parse_args()
    return {"gen": cmd_gen, "wait-soa": cmd_wait_soa, "wait-signed": cmd_wait_signed,
            "baseline": cmd_baseline, "run": cmd_run, "report": cmd_report}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
