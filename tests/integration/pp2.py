#!/usr/bin/python3
"""tests/integration/pp2.py - a client that writes PROXY protocol v2 headers
itself, for the proxy_v2_* cases: the shapes no balancer sends on purpose
(no header, a broken one, a header from a source apexd does not trust),
LOCAL, and bursts whose header names a chosen client (rate limiting).

    pp2.py query --port P [--tcp [--split N]] [--source IP] [--header KIND]
                 [--client IP#PORT] [--name N] [--type T] --expect WHAT
        KIND: proxy (default), local, none, unspec, bad-version,
              bad-tlv, partial (over TCP: the first 20 bytes of a
              header and nothing more), too-long
        WHAT: an RCODE (NOERROR, FORMERR, ...), "timeout" (UDP: no
              reply), "closed" (TCP: the connection closed without one),
              "wrong-id" (a reply that does not answer our ID, i.e. the
              header was read as a DNS message)
    pp2.py burst --port P --client IP#PORT --count N [--source IP]
        N UDP queries behind one header client as fast as they go, then
        replies for 1.5 s; prints "answers=A slips=S other=O"

Exit 0 when the expectation holds, 1 otherwise (with what was seen).
"""
import argparse
import ipaddress
import socket
import struct
import sys
import time

import dns.flags
import dns.message
import dns.rcode

SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def split_addr(text):
    host, _, port = text.rpartition("#")
    return ipaddress.ip_address(host), int(port)


def header(kind, client, server, tcp):
    """The PROXY v2 header of KIND for client -> server (an IPv4 server
    is written IPv4-mapped when the client is IPv6: one family per
    header)."""
    if kind == "none":
        return b""
    if kind == "local":
        return SIG + b"\x20\x00\x00\x00"
    if kind == "unspec":
        return SIG + b"\x21\x00\x00\x00"
    (cip, cport), (sip, sport) = client, server
    if cip.version == 6 and sip.version == 4:
        sip = ipaddress.ip_address("::ffff:" + str(sip))
    fam = (0x10 if cip.version == 4 else 0x20) | (0x01 if tcp else 0x02)
    body = cip.packed + sip.packed + struct.pack(">HH", cport, sport)
    # A TLV apexd must skip: the balancer's ALPN.
    body += b"\x01\x00\x03dot"
    ver_cmd = 0x21
    if kind == "bad-version":
        ver_cmd = 0x11
    elif kind == "bad-tlv":
        body = body[:-5] + b"\x00\x09dot"
    elif kind == "too-long":
        body += b"\x04" + struct.pack(">H", 2000) + b"\0" * 2000
    hdr = SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body
    if kind == "partial":
        hdr = hdr[:20]
    return hdr


def udp_query(a, q):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.source, 0))
    # Loopback answers take milliseconds; waiting for none need not last.
    s.settimeout(1.0 if a.expect == "timeout" else 3.0)
    hdr = header(a.header, split_addr(a.client), (ipaddress.ip_address("127.0.0.1"), a.port), False)
    s.sendto(hdr + q.to_wire(), ("127.0.0.1", a.port))
    try:
        data, _ = s.recvfrom(65535)
    except socket.timeout:
        return "timeout"
    return reply_kind(q, data)


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp_query(a, q):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((a.source, 0))
    s.settimeout(3.0)
    s.connect(("127.0.0.1", a.port))
    hdr = header(a.header, split_addr(a.client), (ipaddress.ip_address("127.0.0.1"), a.port), True)
    wire = q.to_wire()
    if a.header == "partial":
        wire = None  # half a header, then nothing: apexd must give up
    data = hdr + (struct.pack(">H", len(wire)) + wire if wire else b"")
    try:
        if a.split:
            # The header in three writes, apart in time: apexd must put
            # it together across reads.
            for cut in (a.split, a.split + 7):
                s.sendall(data[:cut])
                data = data[cut:]
                time.sleep(0.2)
        s.sendall(data)
        head = read_exact(s, 2)
        if head is None:
            return "closed"
        data = read_exact(s, struct.unpack(">H", head)[0])
    except ConnectionResetError:
        return "closed"
    except socket.timeout:
        return "timeout"
    if data is None:
        return "closed"
    return reply_kind(q, data)


def reply_kind(q, data):
    r = dns.message.from_wire(data, question_only=True) if len(data) >= 12 else None
    if r is None or r.id != q.id:
        return "wrong-id"
    return dns.rcode.to_text(r.rcode())


def cmd_query(a):
    q = dns.message.make_query(a.name, a.type)
    got = tcp_query(a, q) if a.tcp else udp_query(a, q)
    if got != a.expect:
        print(f"expected {a.expect}, got {got}")
        return 1
    print(got)
    return 0


def cmd_burst(a):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((a.source, 0))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    hdr = header("proxy", split_addr(a.client), (ipaddress.ip_address("127.0.0.1"), a.port), False)
    ids = set()
    for i in range(a.count):
        q = dns.message.make_query("www.example.test", "A")
        q.id = 2000 + i
        ids.add(q.id)
        s.sendto(hdr + q.to_wire(), ("127.0.0.1", a.port))
    answers = slips = other = 0
    s.settimeout(0.2)
    end = time.monotonic() + 1.5
    while time.monotonic() < end:
        try:
            data, _ = s.recvfrom(65535)
        except socket.timeout:
            continue
        r = dns.message.from_wire(data)
        if r.id not in ids:
            other += 1
            continue
        ids.discard(r.id)
        if r.flags & dns.flags.TC and not r.answer:
            slips += 1
        elif r.answer:
            answers += 1
        else:
            other += 1
    print(f"answers={answers} slips={slips} other={other}")
    return 0


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="cmd", required=True)
    for name in ("query", "burst"):
        sp = sub.add_parser(name)
        sp.add_argument("--port", type=int, required=True)
        sp.add_argument("--source", default="127.0.0.1")
        sp.add_argument("--client", default="198.51.100.7#40000")
    q = sub.choices["query"]
    q.add_argument("--tcp", action="store_true")
    q.add_argument("--split", type=int, default=0,
                   help="TCP: send the first SPLIT bytes, then 7 more, then the rest")
    q.add_argument("--header", default="proxy",
                   choices=["proxy", "local", "none", "unspec", "bad-version", "bad-tlv",
                            "partial", "too-long"])
    q.add_argument("--name", default="www.example.test")
    q.add_argument("--type", default="A")
    q.add_argument("--expect", required=True)
    sub.choices["burst"].add_argument("--count", type=int, required=True)
    a = p.parse_args()
    return cmd_query(a) if a.cmd == "query" else cmd_burst(a)


if __name__ == "__main__":
    sys.exit(main())
