#!/usr/bin/python3
"""tests/fuzz/seeds_bind.py - real BIND answers as fuzz seeds.

Starts a private named (BIND 9, `named -g`, loopback, a free port in
20000-29999) on small zones shaped like the fuzz targets' names
(example.com, example.net, own.test: CNAME chains, an ANAME in RFC 3597
form, NXDOMAIN/NODATA with SOA, MX/SRV with compression, many A records,
a signed zone), sends it queries made by dnspython (with and without
EDNS, DO, cookies, a small UDP size that truncates, TCP for ANY/AXFR) and
writes what BIND answers, byte for byte, as seeds in the layouts of:

  codec_scan    the query and the answer, each alone
  flat_rewrite  control octet, query length, query, answer
  flat_chase    flags, max_chain, hops, answers as the chase asks
  px_anscache     control octet, query length, query, answers

Seed files are named bind-*; rerunning overwrites them. named is stopped
by its PID. Usage (from the repository root):

    /usr/bin/python3 tests/fuzz/seeds_bind.py tests/fuzz/corpus
"""
import os
import random
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

import dns.edns
import dns.flags
import dns.message
import dns.query
import dns.rdatatype

ZONES = {
    "example.com": """
$TTL 300
@	3600 IN SOA ns1 hostmaster 2024010101 7200 3600 1209600 300
@	3600 IN NS ns1
@	300 IN A 192.0.2.1
@	300 IN MX 10 mail
@	300 IN MX 20 mail2.example.net.
@	300 IN TXT "v=spf1 -all"
@	600 IN TYPE65401 \\# 17 0363646e076578616d706c65036e657400
ns1	3600 IN A 192.0.2.53
mail	300 IN A 192.0.2.25
mail	300 IN AAAA 2001:db8::25
www	120 IN CNAME cdn.example.net.
alias1	300 IN CNAME alias2
alias2	300 IN CNAME www
loop1	60 IN CNAME loop2
loop2	60 IN CNAME loop1
_sip._udp 300 IN SRV 10 60 5060 sip
sip	300 IN A 192.0.2.60
many	60 IN A 198.51.100.1
many	60 IN A 198.51.100.2
many	60 IN A 198.51.100.3
many	60 IN A 198.51.100.4
many	60 IN A 198.51.100.5
many	60 IN A 198.51.100.6
many	60 IN A 198.51.100.7
many	60 IN A 198.51.100.8
big	60 IN TXT "%s"
big	60 IN TXT "%s"
big	60 IN TXT "%s"
sub	3600 IN NS ns.sub
ns.sub	3600 IN A 192.0.2.54
""" % ("a" * 250, "b" * 250, "c" * 250),
    "example.net": """
$TTL 300
@	3600 IN SOA ns1.example.com. hostmaster.example.com. 1 7200 3600 1209600 60
@	3600 IN NS ns1.example.com.
cdn	45 IN CNAME edge
edge	30 IN A 203.0.113.10
edge	30 IN A 203.0.113.11
edge	30 IN AAAA 2001:db8::10
far	300 IN CNAME www.example.com.
deep	100 IN CNAME cdn
""",
    "own.test": """
$TTL 300
@	3600 IN SOA ns1.example.com. hostmaster.example.com. 7 7200 3600 1209600 120
@	3600 IN NS ns1.example.com.
a	300 IN CNAME b
b	300 IN A 192.0.2.200
""",
}


def free_port():
    for _ in range(50):
        port = random.randint(20000, 29999)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u, socket.socket() as t:
            try:
                u.bind(("127.0.0.1", port))
                t.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def start_named(d):
    port = free_port()
    for zone, text in ZONES.items():
        with open(os.path.join(d, zone + ".zone"), "w") as f:
            f.write("$ORIGIN %s.\n%s" % (zone, text))
    # own.test signed, for RRSIG/NSEC answers.
    subprocess.run(["dnssec-keygen", "-q", "-K", d, "-a", "ECDSAP256SHA256", "-f", "KSK", "own.test"],
                   check=True, cwd=d, capture_output=True)
    subprocess.run(["dnssec-keygen", "-q", "-K", d, "-a", "ECDSAP256SHA256", "own.test"],
                   check=True, cwd=d, capture_output=True)
    subprocess.run(["dnssec-signzone", "-q", "-S", "-K", d, "-o", "own.test", "-f",
                    "own.test.zone.signed", "own.test.zone"], check=True, cwd=d, capture_output=True)
    conf = os.path.join(d, "named.conf")
    with open(conf, "w") as f:
        f.write("""options {
	directory "%s"; pid-file none; listen-on port %d { 127.0.0.1; }; listen-on-v6 { none; };
	recursion no; notify no; dnssec-validation no; allow-transfer { any; };
	transfer-message-size 1024;
};
controls { };
zone "example.com" { type primary; file "example.com.zone"; };
zone "example.net" { type primary; file "example.net.zone"; };
zone "own.test" { type primary; file "own.test.zone.signed"; };
""" % (d, port))
    proc = subprocess.Popen(["named", "-g", "-n", "1", "-c", conf], stdout=open(
        os.path.join(d, "named.log"), "w"), stderr=subprocess.STDOUT)
    q = dns.message.make_query("example.com", "SOA")
    for _ in range(50):
        try:
            dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
            return proc, port
        except Exception:
            time.sleep(0.1)
    proc.kill()
    raise RuntimeError("named did not answer; see %s/named.log" % d)


def raw_udp(port, wire):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(2)
        s.sendto(wire, ("127.0.0.1", port))
        return s.recv(65535)


def raw_tcp(port, wire, messages=1):
    out = []
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(struct.pack(">H", len(wire)) + wire)
        buf = b""
        while len(out) < messages:
            while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                chunk = s.recv(65535)
                if not chunk:
                    return out
                buf += chunk
            n = struct.unpack(">H", buf[:2])[0]
            out.append(buf[2:2 + n])
            buf = buf[2 + n:]
    return out


def query(name, rdtype, qid, edns=0, do=False, rd=False, payload=1232, options=None):
    q = dns.message.make_query(name, rdtype, use_edns=edns, want_dnssec=do, payload=payload,
                               options=options or [])
    q.id = qid
    if not rd:
        q.flags &= ~dns.flags.RD
    return q.to_wire()


def main():
    root = sys.argv[1]
    d = tempfile.mkdtemp(prefix="apex-fuzz-seeds.")
    proc, port = start_named(d)
    seeds = {}
    try:
        cookie = dns.edns.GenericOption(dns.edns.COOKIE, bytes(range(8)))
        ecs = dns.edns.ECSOption("192.0.2.0", 24)
        cases = [
            # name, type, extra query options, transport
            ("apex-a", "example.com", "A", {}, "udp"),
            ("apex-aname-probe", "example.com", "TYPE65401", {}, "udp"),
            ("apex-mx", "example.com", "MX", {}, "udp"),
            ("apex-any-tcp", "example.com", "ANY", {}, "tcp"),
            ("apex-any-udp-noedns", "example.com", "ANY", {"edns": False}, "udp"),
            ("www-cname-out", "www.example.com", "A", {}, "udp"),
            ("alias-chain", "alias1.example.com", "AAAA", {"do": True}, "udp"),
            ("cname-loop", "loop1.example.com", "A", {}, "udp"),
            ("nxdomain", "nope.example.com", "A", {"options": [cookie]}, "udp"),
            ("nodata", "mail.example.com", "TXT", {}, "udp"),
            ("srv", "_sip._udp.example.com", "SRV", {}, "udp"),
            ("many-a", "many.example.com", "A", {}, "udp"),
            ("big-txt-tc", "big.example.com", "TXT", {"payload": 512}, "udp"),
            ("big-txt-noedns-tc", "big.example.com", "TXT", {"edns": False}, "udp"),
            ("referral", "x.sub.example.com", "A", {}, "udp"),
            ("ecs-query", "example.com", "A", {"options": [ecs]}, "udp"),
            ("net-cdn-chain", "cdn.example.net", "A", {"rd": True}, "udp"),
            ("net-cdn-aaaa", "cdn.example.net", "AAAA", {"rd": True}, "udp"),
            ("net-deep", "deep.example.net", "A", {"rd": True}, "udp"),
            ("net-far", "far.example.net", "A", {"rd": True}, "udp"),
            ("own-signed-a", "a.own.test", "A", {"do": True}, "udp"),
            ("own-signed-nx", "zz.own.test", "A", {"do": True}, "udp"),
            ("refused", "example.org", "A", {}, "udp"),
        ]
        answers = {}
        qid = 0x1234
        for name, qname, rdtype, kw, how in cases:
            qid += 0x0101
            q = query(qname, rdtype, qid, **kw)
            r = raw_tcp(port, q)[0] if how == "tcp" else raw_udp(port, q)
            answers[name] = (q, r)
        axfr = query("example.net", "AXFR", 0x4242, edns=False)
        axfr_msgs = raw_tcp(port, axfr)
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        shutil.rmtree(d, ignore_errors=True)

    def put(target, name, data):
        seeds[os.path.join(target, "bind-" + name)] = data

    for name, (q, r) in answers.items():
        put("codec_scan", name + "-q", q)
        put("codec_scan", name + "-r", r)
    put("codec_scan", "axfr-first", axfr_msgs[0])

    # flat_rewrite: ctl bits 0-1 mode (0 apex, 1 all), 0x04 apex,
    # 0x08 ANAME target, 0x20 TCP, 0x40 small, 0x80 stale.
    for name, ctl in [("apex-a", 0x04 | 0x08), ("apex-aname-probe", 0x04), ("apex-mx", 0x04),
                      ("apex-any-tcp", 0x04 | 0x20), ("apex-any-udp-noedns", 0x04 | 0x40 | 0x05),
                      ("www-cname-out", 0x01), ("alias-chain", 0x01 | 0x10),
                      ("cname-loop", 0x01), ("nxdomain", 0x04 | 0x08), ("nodata", 0x01 | 0x80),
                      ("many-a", 0x01 | 0x44), ("own-signed-a", 0x01), ("referral", 0x00)]:
        q, r = answers[name]
        put("flat_rewrite", name, bytes([ctl]) + struct.pack(">H", len(q)) + q + r)

    # flat_chase: the target chases "\3cdn\7example\3net" (bits 4-5 = 0) and
    # "\3www\7example\3com" (1), over 1-3 resolvers (bits 1-2); answers are
    # separated by c0 fe c0 fe.
    sep = b"\xc0\xfe\xc0\xfe"
    _, cdn_a = answers["net-cdn-chain"]
    _, cdn_aaaa = answers["net-cdn-aaaa"]
    _, www = answers["www-cname-out"]
    put("flat_chase", "cdn-a", bytes([0x02, 8, 0]) + cdn_a)
    put("flat_chase", "cdn-aaaa", bytes([0x03, 8, 0]) + cdn_aaaa)
    put("flat_chase", "cdn-timeout-then-a", bytes([0x04, 8, 0]) + sep + cdn_a)
    put("flat_chase", "www-out-then-cdn", bytes([0x12, 8, 1]) + www + sep + cdn_a)
    put("flat_chase", "cdn-max-chain-1", bytes([0x02, 1, 0]) + cdn_a)

    # px_anscache: see fuzz_px_anscache.c for the control octet.
    for name, ctl in [("apex-a", 0x01), ("many-a", 0x03), ("nxdomain", 0x02),
                      ("nodata", 0x05), ("own-signed-a", 0x11), ("own-signed-nx", 0x04),
                      ("big-txt-tc", 0x00), ("apex-any-tcp", 0xc0), ("referral", 0x01),
                      ("www-cname-out", 0x21), ("refused", 0x01), ("alias-chain", 0x08)]:
        q, r = answers[name]
        put("px_anscache", name, bytes([ctl]) + struct.pack(">H", len(q)) + q + r)

    for path, data in seeds.items():
        full = os.path.join(root, path)
        if not os.path.isdir(os.path.dirname(full)):
            continue
        with open(full, "wb") as f:
            f.write(data)
        print("%6d %s" % (len(data), full))


if __name__ == "__main__":
    main()
