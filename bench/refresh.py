#!/usr/bin/python3
"""bench/refresh.sh's report: one row per variant and name.

    refresh.py RUN TTL DELAY DURATION RATE VARIANT...

Reads RUN/<variant>.json (tests/integration/trickle.py's output) and
apexd's exit counters from RUN/apexd-<variant>.log.
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import lib  # noqa: E402


def ms(x):
    return "-" if x is None else f"{x:.1f}"


def main():
    run, ttl, delay, duration, rate = sys.argv[1:6]
    variants = sys.argv[6:]
    slow = float(delay) * 500
    print(f"TTL {ttl} s, CDN {float(delay) * 1000:.0f} ms late, {duration} s at {rate} q/s "
          f"per name; latencies in ms; 'slow' = over {slow:.0f} ms (half the CDN's delay)")
    print()
    print("| variant | name | queries | p50 | p90 | p99 | max | slow | wrong+lost |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for v in variants:
        try:
            with open(os.path.join(run, f"{v}.json")) as f:
                rows = json.load(f)
        except OSError:
            print(f"| {v} | (no results) | | | | | | | |")
            continue
        for r in rows:
            kind = "flattened" if r["name"].startswith("flat.") else "relayed"
            print(f"| {v} | {kind} {r['name']} | {r['queries']} | {ms(r['p50'])} | "
                  f"{ms(r['p90'])} | {ms(r['p99'])} | {ms(r['max'])} | {r['slow']} | "
                  f"{r['wrong'] + r['lost']} |")
    print()
    print("| variant | prefetches | cache_misses | cache_coalesced | answers_stale | chases |")
    print("|---|---:|---:|---:|---:|---:|")
    for v in variants:
        st = lib.apexd_stats(os.path.join(run, f"apexd-{v}.log"))
        print(f"| {v} | {st.get('prefetches', '-')} | {st.get('cache_misses', '-')} | "
              f"{st.get('cache_coalesced', '-')} | {st.get('answers_stale', '-')} | "
              f"{st.get('chases', '-')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
