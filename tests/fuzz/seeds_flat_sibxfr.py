#!/usr/bin/python3
"""tests/fuzz/seeds_flat_sibxfr.py - real BIND transfers as flat_sibxfr seeds.

Starts a private named (BIND 9, `named -g`, loopback, a free port in
20000-29999) with example.com as a dynamic zone that BIND signs itself
(dnssec-policy, so the transfers carry RRSIG, NSEC and DNSKEY), ANAME
owners in RFC 3597 form (TYPE65401) at the apex, www, *.w and old, and
small transfer messages (transfer-message-size 1024) so that answers
span several messages. Then, with dnspython:

  AXFR                          -> bind-axfr, bind-axfr-aliases
  UPDATE: delete old's ANAME, add an A at www
  IXFR from the first serial    -> bind-ixfr-incremental (AXFR + IXFR)
  IXFR from the current serial  -> bind-ixfr-uptodate
  IXFR from serial 1            -> bind-ixfr-axfr-form

plus answers BIND would not give, made with dnspython after the real
AXFR: REFUSED (synth-refused), an IXFR adding an ANAME at a new name
(synth-ixfr-need-axfr), one whose steps do not chain (synth-ixfr-broken),
one with a compressed ANAME RDATA and a second ANAME type
(synth-ixfr-anames), and one adding HTTPS RRs at owners (synth-ixfr-https). It writes the seeds in fuzz_flat_sibxfr's layout (flags, k, then
length-prefixed messages). named is stopped by its PID. Usage (from the
repository root):

    /usr/bin/python3 tests/fuzz/seeds_flat_sibxfr.py tests/fuzz/corpus/flat_sibxfr
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

import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import dns.update

ZONE = "example.com"
ZONE_TEXT = """$ORIGIN example.com.
$TTL 300
@	SOA	ns1 hostmaster 100 3600 600 86400 60
@	NS	ns1
ns1	A	127.0.0.1
@	TYPE65401 \\# 17 0363646e076578616d706c65036e657400
@	A	192.0.2.9
@	AAAA	2001:db8::9
www	TYPE65401 \\# 18 0463646e32076578616d706c65036e657400
www	A	192.0.2.1
www	A	192.0.2.2
*.w	TYPE65401 \\# 18 0477696c64076578616d706c65036e657400
*.w	A	192.0.2.7
old	TYPE65401 \\# 17 0363646e076578616d706c65036e657400
old	A	192.0.2.77
other	A	192.0.2.8
"""


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
    with open(os.path.join(d, "example.com.zone"), "w") as f:
        f.write(ZONE_TEXT)
    conf = os.path.join(d, "named.conf")
    with open(conf, "w") as f:
        f.write("""options {
	directory "%s"; pid-file none; listen-on port %d { 127.0.0.1; }; listen-on-v6 { none; };
	recursion no; notify no; dnssec-validation no; allow-transfer { any; };
	transfer-message-size 1024;
};
controls { };
zone "example.com" {
	type primary; file "example.com.zone"; allow-update { 127.0.0.1; };
	dnssec-policy default; key-directory "%s";
};
""" % (d, port, d))
    proc = subprocess.Popen(["named", "-g", "-n", "1", "-c", conf], stdout=open(
        os.path.join(d, "named.log"), "w"), stderr=subprocess.STDOUT)
    # Up, and the zone signed: the SOA comes with its RRSIG.
    q = dns.message.make_query(ZONE, "SOA", want_dnssec=True)
    for _ in range(100):
        try:
            r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
            if any(rr.rdtype == dns.rdatatype.RRSIG for rr in r.answer):
                return proc, port
        except Exception:
            pass
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError("named did not sign the zone; see %s/named.log" % d)


def stop_named(proc):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def transfer(port, query_wire):
    """Sends a transfer query over TCP and returns the answer's messages, as
    sent; reading stops at the closing SOA (RFC 1995 / RFC 5936 grammar) or
    after half a second of silence."""
    out = []
    serial = None
    seen = 0
    n_rr = 0
    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as s:
        s.sendall(struct.pack(">H", len(query_wire)) + query_wire)
        buf = b""
        while True:
            try:
                while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
                    chunk = s.recv(65535)
                    if not chunk:
                        return out
                    buf += chunk
            except socket.timeout:
                return out
            n = struct.unpack(">H", buf[:2])[0]
            wire = buf[2:2 + n]
            buf = buf[2 + n:]
            out.append(wire)
            m = dns.message.from_wire(wire, one_rr_per_rrset=True, xfr=False)
            for rrset in m.answer:
                for rd in rrset:
                    n_rr += 1
                    if rrset.rdtype != dns.rdatatype.SOA:
                        continue
                    if serial is None:
                        serial = rd.serial
                    if rd.serial == serial:
                        seen += 1
            if m.rcode() != 0 or n_rr == 1:
                return out
            # AXFR (or its IXFR form): the SOA twice; an incremental IXFR
            # ends with the third: first, last step's new, closing.
            if seen == 3 or (seen == 2 and not is_incremental(out)):
                return out


def is_incremental(msgs):
    m = dns.message.from_wire(msgs[0], one_rr_per_rrset=True)
    rrs = [rrset.rdtype for rrset in m.answer]
    return len(rrs) >= 2 and rrs[1] == dns.rdatatype.SOA


def xfr_query(rdtype, qid, serial=None):
    q = dns.message.make_query(ZONE, rdtype)
    q.id = qid
    q.flags = 0
    if serial is not None:
        soa = dns.rrset.from_text(ZONE + ".", 0, "IN", "SOA",
                                  ". . %d 0 0 0 0" % serial)
        q.authority.append(soa)
    return q.to_wire()


def serial_of(msgs):
    m = dns.message.from_wire(msgs[0], one_rr_per_rrset=True)
    return m.answer[0][0].serial


def send_update(port, wire):
    """Sends a raw UPDATE over TCP; returns BIND's RCODE."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">H", len(wire)) + wire)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            chunk = s.recv(65535)
            if not chunk:
                raise RuntimeError("no answer to the UPDATE")
            buf += chunk
    return dns.message.from_wire(buf[2:]).rcode()


def seed(flags, first, second):
    out = bytes([flags, len(first)])
    for m in first + second:
        out += struct.pack(">H", len(m)) + m
    return out


def wait_serial_moves(port, old):
    q = dns.message.make_query(ZONE, "SOA")
    for _ in range(50):
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=1)
        if r.answer and r.answer[0][0].serial != old:
            return r.answer[0][0].serial
        time.sleep(0.1)
    raise RuntimeError("the serial did not move")


def aname(target_hex, rdtype=65401):
    return dns.rdata.from_text("IN", rdtype, "\\# %d %s" % (len(target_hex) // 2, target_hex))


def soa(serial):
    return dns.rdata.from_text("IN", "SOA", "ns1.example.com. hostmaster.example.com. "
                               "%d 3600 600 86400 60" % serial)


def https(text):
    return dns.rdata.from_text("IN", "HTTPS", text)


def synth_ixfr(steps, rcode=0):
    """One IXFR answer message: steps is a list of (owner, rdata) pairs,
    SOA rdata included where the grammar puts them."""
    q = dns.message.make_query(ZONE, "IXFR")
    r = dns.message.make_response(q)
    r.set_rcode(rcode)
    for owner, rd in steps:
        rrset = dns.rrset.RRset(dns.name.from_text(owner, dns.name.from_text(ZONE)),
                                dns.rdataclass.IN, rd.rdtype)
        rrset.add(rd, 300)
        r.answer.append(rrset)
    return r.to_wire()


def synthetic(axfr, s0):
    n = s0 + 1
    cdn = "0363646e076578616d706c65036e657400"
    return {
        "synth-refused": seed(2, axfr, [synth_ixfr([], dns.rcode.REFUSED)]),
        "synth-ixfr-need-axfr": seed(2, axfr, [synth_ixfr([
            ("@", soa(n)), ("@", soa(s0)), ("@", soa(n)), ("new", aname(cdn)),
            ("@", soa(n))])]),
        "synth-ixfr-broken": seed(2, axfr, [synth_ixfr([
            ("@", soa(n + 1)), ("@", soa(s0)), ("@", soa(n)), ("@", soa(n + 5)),
            ("@", soa(n + 1))])]),
        "synth-ixfr-https": seed(2, axfr, [synth_ixfr([
            ("@", soa(n)), ("@", soa(s0)), ("@", soa(n)),
            ("@", https('1 . alpn="h3,h2" ipv4hint=192.0.2.1')),
            ("@", https("0 pool.cdn.example.net.")), ("www", https('1 . alpn="h2"')),
            ("@", soa(n))])]),
        "synth-ixfr-anames": seed(2, axfr, [synth_ixfr([
            ("@", soa(n)), ("@", soa(s0)), ("www", dns.rdata.from_text("IN", "A", "192.0.2.1")),
            ("@", soa(n)), ("www", aname("0161c00c")), ("www", aname(cdn, 65402)),
            ("www", aname("0162076578616d706c65036e657400")),
            ("www", dns.rdata.from_text("IN", "AAAA", "2001:db8::1")), ("@", soa(n))])]),
    }


def main():
    root = sys.argv[1]
    os.makedirs(root, exist_ok=True)
    d = tempfile.mkdtemp(prefix="apex-sibxfr-seeds.")
    proc, port = start_named(d)
    seeds = {}
    try:
        axfr = transfer(port, xfr_query("AXFR", 1))
        s0 = serial_of(axfr)
        seeds["bind-axfr"] = seed(0, [], axfr)
        seeds["bind-axfr-aliases"] = seed(1, [], axfr)

        u = dns.update.UpdateMessage(ZONE)
        u.delete("old", "TYPE65401")
        u.add("www", 60, "A", "192.0.2.3")
        if send_update(port, u.to_wire()) != dns.rcode.NOERROR:
            raise RuntimeError("BIND refused the UPDATE")
        s1 = wait_serial_moves(port, s0)

        ixfr = transfer(port, xfr_query("IXFR", 2, s0))
        seeds["bind-ixfr-incremental"] = seed(2, axfr, ixfr)
        axfr1 = transfer(port, xfr_query("AXFR", 3))
        up = transfer(port, xfr_query("IXFR", 4, serial_of(axfr1)))
        seeds["bind-ixfr-uptodate"] = seed(2, axfr1, up)
        old = transfer(port, xfr_query("IXFR", 5, 1))
        seeds["bind-ixfr-axfr-form"] = seed(2, axfr, old)
        seeds.update(synthetic(axfr, s0))
        print("serials %d -> %d; %d/%d/%d/%d messages" %
              (s0, s1, len(axfr), len(ixfr), len(up), len(old)))
    finally:
        stop_named(proc)
        shutil.rmtree(d, ignore_errors=True)
    for name, data in seeds.items():
        with open(os.path.join(root, name), "wb") as f:
            f.write(data)
    print("wrote %d seeds to %s" % (len(seeds), root))


if __name__ == "__main__":
    main()
