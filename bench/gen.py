#!/usr/bin/python3
"""bench/gen.py OUTDIR - the benchmark's zones, query files and DoH URIs.

Writes into OUTDIR:
  bench.test.zone   the zone apexd flattens in: NHOSTS hosts (A + AAAA),
                    NCNAME CNAMEs (half to hosts in this zone, half to
                    cdn.test), NANAME ANAME owners (RFC 3597 TYPE65401,
                    each pointing at its own edge name in cdn.test)
  cdn.test.zone     the "CDN": NANAME edge names with 2 A + 1 AAAA each
  q-plain.txt       dnsperf input: every host, A and AAAA (never flattened)
  q-flat.txt        dnsperf input: every ANAME owner, A and AAAA (flattened
                    by apexd; for BIND/dnsdist these are NODATA answers)
  q-nx.txt          dnsperf input: NNX random labels under bench.test (A
                    and AAAA alternating), each an NXDOMAIN: the "random
                    subdomain" slice of bench/soak.sh's mix
  u-plain.txt       h2load input: the same queries as GET ?dns= base64url
  u-flat.txt        (RFC 8484 section 4.1; the message ID is 0)

The numbers are fixed so that every run queries the same data. All TTLs are
an hour (SOA negative TTL too), so no cache entry expires during a run.
Needs /usr/bin/python3 with dnspython (Debian: python3-dnspython).
"""
import base64
import os
import random
import sys

import dns.message
import dns.rdatatype

NHOSTS = 3000
NCNAME = 400
NANAME = 400
NNX = 4000
TTL = 3600


def wire_name(name):
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def aname_line(owner, target):
    w = wire_name(target)
    return "%s %d IN TYPE65401 \\# %d %s\n" % (owner, TTL, len(w), w.hex())


def soa(origin):
    return (
        "$ORIGIN %s.\n$TTL %d\n"
        "@ IN SOA ns1.%s. hostmaster.%s. 1 7200 3600 1209600 %d\n"
        "@ IN NS ns1.%s.\nns1 IN A 192.0.2.53\n" % (origin, TTL, origin, origin, TTL, origin)
    )


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    hosts = ["h%04d" % i for i in range(NHOSTS)]
    owners = ["al%04d" % i for i in range(NANAME)]
    edges = ["edge%04d" % i for i in range(NANAME)]

    with open(os.path.join(out, "bench.test.zone"), "w") as f:
        f.write(soa("bench.test"))
        for i, h in enumerate(hosts):
            f.write("%s IN A 10.%d.%d.%d\n" % (h, 1 + i // 65536, (i // 256) % 256, i % 256))
            f.write("%s IN AAAA 2001:db8::%x\n" % (h, i + 1))
        for i in range(NCNAME):
            if i % 2:
                target = "%s.bench.test." % hosts[i]
            else:
                target = "%s.cdn.test." % edges[i % NANAME]
            f.write("c%04d IN CNAME %s\n" % (i, target))
        for o, e in zip(owners, edges):
            f.write(aname_line(o, e + ".cdn.test"))

    with open(os.path.join(out, "cdn.test.zone"), "w") as f:
        f.write(soa("cdn.test"))
        for i, e in enumerate(edges):
            f.write("%s IN A 198.51.%d.%d\n" % (e, 100 + i // 128, (2 * i) % 256))
            f.write("%s IN A 198.51.%d.%d\n" % (e, 100 + i // 128, (2 * i + 1) % 256))
            f.write("%s IN AAAA 2001:db8:cd::%x\n" % (e, i + 1))

    def queries(names):
        return [("%s.bench.test" % n, t) for n in names for t in ("A", "AAAA")]

    # Random labels from a fixed seed, so every run asks the same names;
    # 12 letters and digits never collide with h*, c*, al* above.
    rnd = random.Random(16)
    alpha = "abcdefghijklmnopqrstuvwxyz0123456789"
    nx = ["".join(rnd.choice(alpha) for _ in range(12)) for _ in range(NNX)]
    with open(os.path.join(out, "q-nx.txt"), "w") as f:
        for i, n in enumerate(nx):
            f.write("x%s.bench.test %s\n" % (n, "AAAA" if i % 2 else "A"))

    sets = {"plain": queries(hosts), "flat": queries(owners)}
    for key, qs in sets.items():
        with open(os.path.join(out, "q-%s.txt" % key), "w") as f:
            for name, t in qs:
                f.write("%s %s\n" % (name, t))
        with open(os.path.join(out, "u-%s.txt" % key), "w") as f:
            for name, t in qs:
                m = dns.message.make_query(name, dns.rdatatype.from_text(t), use_edns=0)
                m.id = 0
                b64 = base64.urlsafe_b64encode(m.to_wire()).rstrip(b"=").decode()
                f.write("/dns-query?dns=%s\n" % b64)


if __name__ == "__main__":
    main()
