#!/usr/bin/python3
"""Questions to geocdn.py's query log (one JSON object a line).

  geolog.py LOG lines
      the number of lines now (a mark for --since)
  geolog.py LOG count [--since N] [filters]
      the number of queries that match
  geolog.py LOG show [--since N] [filters]
      the matching queries, one a line, for a case's failure output
  geolog.py LOG canonical [--since N]
      exit 1 if a query carried an ECS option not in RFC 7871's strict
      form (address longer than its prefix, bits set past it)
  geolog.py LOG refresh --name N --type T --ttl S [--since N] [--min K]
      exit 0 when the answers the CDN gave for (N, T) follow one another
      without a gap: after the first, each query for them reached the CDN
      and was answered before the previous answer's TTL ran out, and
      there were at least K such refreshes. The times are the CDN's own
      (when its answer left, and when the next query came): a refresh
      that starts only at expiry, or in the last moments before it, with
      a slow CDN, ends after it.

Filters: --name, --type, --ecs ADDR/LEN (exactly that subnet), --no-ecs
(queries without the option), --with-ecs (with one), --peer ADDR.
"""
import argparse
import json
import sys


def load(path, since):
    queries, sent = [], {}
    with open(path) as f:
        for i, line in enumerate(f):
            if i < since or not line.strip():
                continue
            o = json.loads(line)
            if "sent" in o:
                sent[o["id"]] = o["sent"]
            elif "name" in o:
                queries.append(o)
    for q in queries:
        q["sent"] = sent.get(q["id"])
    return queries


def match(q, a):
    if a.name and q["name"] != a.name.rstrip(".").lower():
        return False
    if a.type and q["type"] != a.type.upper():
        return False
    if a.ecs and q["ecs"] != a.ecs:
        return False
    if a.no_ecs and q["ecs"] is not None:
        return False
    if a.with_ecs and q["ecs"] is None:
        return False
    if a.peer and q["peer"] != a.peer:
        return False
    return True


def fmt(q, t0):
    sent = f"{q['sent'] - t0:8.3f}" if q["sent"] is not None else "  (none)"
    return (f"#{q['id']} t={q['t'] - t0:8.3f} sent={sent} {q['proto']} {q['peer']} "
            f"{q['name']} {q['type']} ecs={q['ecs']} scope={q['scope']} -> {' '.join(q['answer'])}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("log")
    p.add_argument("what", choices=("lines", "count", "show", "canonical", "refresh"))
    p.add_argument("--since", type=int, default=0)
    p.add_argument("--name")
    p.add_argument("--type")
    p.add_argument("--ecs")
    p.add_argument("--no-ecs", action="store_true")
    p.add_argument("--with-ecs", action="store_true")
    p.add_argument("--peer")
    p.add_argument("--ttl", type=float)
    p.add_argument("--min", type=int, default=1)
    a = p.parse_args()

    if a.what == "lines":
        try:
            with open(a.log) as f:
                print(sum(1 for _ in f))
        except FileNotFoundError:
            print(0)
        return 0
    qs = load(a.log, a.since)
    t0 = qs[0]["t"] if qs else 0
    sel = [q for q in qs if match(q, a)]
    if a.what == "count":
        print(len(sel))
        return 0
    if a.what == "show":
        for q in sel:
            print(fmt(q, t0))
        return 0
    if a.what == "canonical":
        bad = [q for q in sel if not q.get("ecs_canonical", True)]
        for q in bad:
            print("not in the strict form: " + fmt(q, t0))
        print(f"{len(sel)} queries, {len(sel) - len(bad)} with no option or a strict one")
        return 1 if bad else 0
    # refresh
    if a.ttl is None or not a.name or not a.type:
        sys.exit("refresh needs --name, --type and --ttl")
    sel.sort(key=lambda q: q["t"])
    ok = True
    for q in sel:
        print(fmt(q, t0))
    if len(sel) < a.min + 1:
        print(f"{len(sel)} queries for {a.name} {a.type}: want the first and {a.min} refreshes")
        ok = False
    for i, (prev, cur) in enumerate(zip(sel, sel[1:])):
        last = i == len(sel) - 2
        if last and prev["sent"] is not None and cur["sent"] is None:
            # The CDN's delayed answer to the last refresh may still be in
            # flight when the test reads the log; judge when it was asked.
            expiry = prev["sent"] + a.ttl
            if cur["t"] >= expiry:
                print(f"#{cur['id']}: asked {cur['t'] - expiry:.3f} s after #{prev['id']}'s "
                      f"answer expired (still unanswered)")
                ok = False
            else:
                print(f"#{cur['id']}: asked {expiry - cur['t']:.3f} s before #{prev['id']}'s "
                      f"answer expired (its answer still in flight)")
            continue
        if prev["sent"] is None or cur["sent"] is None:
            print(f"#{prev['id']} or #{cur['id']} never answered")
            ok = False
            continue
        expiry = prev["sent"] + a.ttl
        if cur["sent"] >= expiry:
            print(f"#{cur['id']}: answered {cur['sent'] - expiry:.3f} s after #{prev['id']}'s "
                  f"answer expired (query came {expiry - cur['t']:.3f} s before expiry)")
            ok = False
        else:
            print(f"#{cur['id']}: refreshed {expiry - cur['sent']:.3f} s before #{prev['id']}'s "
                  f"answer expired")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
