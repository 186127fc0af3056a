#!/usr/bin/python3
"""A geo-routing CDN stand-in for the client-subnet cases (RFC 7871).

Authoritative for one zone (default geo.test), on 127.0.0.1 (and ::1 with
--v6), UDP and TCP, one port. It answers A and AAAA by the EDNS Client
Subnet option of the query, as a CDN that routes by geography does:

  www.ZONE     A/AAAA from the table below, chosen by the query's subnet
  cn.ZONE      CNAME www.ZONE, then www's records (a chain inside the zone)
  flat.ZONE    A/AAAA the same for everyone, scope 0 even with a subnet
  ZONE         SOA, NS (so that a resolver can use it as a stub)
  other names  NXDOMAIN with the SOA

The table (--rule NET,SCOPE,A,AAAA, repeatable; a built-in one without
any): the first rule whose network holds the query's address (masked to
its source prefix) answers, and the option comes back with SCOPE. A
subnet no rule holds gets the default answer with scope = source prefix
(--miss-scope to change), so the answer never claims more clients than
the query named; a query without the option gets the default answer and
no option; source prefix 0 (the client's opt-out) gets the default with
scope 0. Every rule's network must be exactly its scope so that the
answers are consistent with the scopes: whoever caches the answer under
the scope gives every client in it the answer the CDN would have given.

The reply echoes FAMILY, SOURCE PREFIX-LENGTH and ADDRESS of the query's
option with the SCOPE (RFC 7871 7.2.1). A malformed option gets FORMERR.

Every query is logged to --log as one JSON object a line, written when it
arrives (before any --delay): {"t": time.time(), "peer", "proto", "name",
"type", "rd", "ecs": "ADDR/SOURCE" or null, "scope": the scope answered or
null, "answer": [addresses or the CNAME target]}. A line {"sent": T,
"id": N} follows when the reply is sent, "id" pairing it with the query
line's "id". The cases read this file to prove that a query did (or did
not) reach the CDN, and with what subnet.

Options: --ttl N (every answer TTL), --delay S (seconds before each reply),
--ready FILE (created once the sockets are bound; the port is written in
it). Ends on SIGTERM.
"""
import argparse
import ipaddress
import json
import signal
import socket
import struct
import sys
import threading
import time

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype
import dns.rrset

# The built-in table: network (= scope), A answer, AAAA answer.
DEFAULT_RULES = [
    ("192.0.2.0/24", 24, "203.0.113.24", "2001:db8:cd::24"),
    ("198.51.0.0/16", 16, "203.0.113.16", "2001:db8:cd::16"),
    ("127.1.1.0/24", 24, "203.0.113.11", "2001:db8:cd::11"),
    ("127.1.2.0/24", 24, "203.0.113.12", "2001:db8:cd::12"),
    ("2001:db8:1::/48", 48, "203.0.113.48", "2001:db8:cd::48"),
    ("2001:db8:2::/56", 56, "203.0.113.56", "2001:db8:cd::56"),
]
DEFAULT_ANSWER = ("203.0.113.100", "2001:db8:cd::100")
FLAT_ANSWER = ("203.0.113.200", "2001:db8:cd::200")


def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--zone", default="geo.test")
    p.add_argument("--log", required=True)
    p.add_argument("--ready")
    p.add_argument("--ttl", type=int, default=60)
    p.add_argument("--delay", type=float, default=0.0)
    p.add_argument("--v6", action="store_true", help="listen on ::1 too")
    p.add_argument("--rule", action="append", default=[],
                   help="NET,SCOPE,A,AAAA (replaces the built-in table)")
    p.add_argument("--default", help="A,AAAA for queries no rule matches")
    p.add_argument("--miss-scope", type=int,
                   help="scope for a subnet no rule holds (default: its source prefix)")
    return p.parse_args()


class Table:
    def __init__(self, rules, default, miss_scope):
        self.rules = []
        for net, scope, a, aaaa in rules:
            n = ipaddress.ip_network(net)
            if n.prefixlen != scope:
                # A CDN may answer with a scope other than its routing
                # network, but then it claims the answer for the whole
                # scope: keep the table honest.
                sys.exit(f"geocdn: rule {net}: the network must be the scope /{scope}")
            self.rules.append((n, scope, a, aaaa))
        self.default = default
        self.miss_scope = miss_scope

    def lookup(self, ecs):
        """(a, aaaa, scope) for an ECS option (None: no option)."""
        if ecs is None:
            return self.default + (None,)
        if ecs.srclen == 0:
            return self.default + (0,)
        addr = ipaddress.ip_address(ecs.address)
        for n, scope, a, aaaa in self.rules:
            if n.version == addr.version and addr in n and ecs.srclen >= 1:
                return a, aaaa, scope
        scope = ecs.srclen if self.miss_scope is None else self.miss_scope
        return self.default + (scope,)


def ecs_of(q):
    """The query's ECS option, or None."""
    for o in q.options:
        if o.otype == dns.edns.ECS:
            return o
    return None


def canonical(ecs, data):
    """Is the option in the wire exactly as RFC 7871 6 wants it: ADDRESS
    cut to ceil(SOURCE / 8) octets, no bit set past SOURCE? dnspython
    reads leniently and writes strictly, so the strict form must be in
    the message as sent."""
    d = ecs.to_wire()
    return struct.pack("!HH", dns.edns.ECS, len(d)) + d in data


class Server:
    def __init__(self, a):
        self.a = a
        self.zone = dns.name.from_text(a.zone)
        rules = DEFAULT_RULES
        if a.rule:
            rules = []
            for r in a.rule:
                net, scope, v4, v6 = r.split(",")
                rules.append((net, int(scope), v4, v6))
        default = tuple(a.default.split(",")) if a.default else DEFAULT_ANSWER
        self.table = Table(rules, default, a.miss_scope)
        self.lock = threading.Lock()
        self.logf = open(a.log, "a", buffering=1)
        self.seq = 0

    def log(self, obj):
        with self.lock:
            self.logf.write(json.dumps(obj, sort_keys=True) + "\n")

    def next_id(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def answer(self, data, peer, proto):
        """(reply wire or None, log id)."""
        t = time.time()
        try:
            q = dns.message.from_wire(data)
        except Exception as e:  # noqa: BLE001 - a bad ECS option is one of these
            return self.formerr(data), self.log_bad(t, peer, proto, f"{type(e).__name__}: {e}")
        if q.opcode() != dns.opcode.QUERY or len(q.question) != 1 or q.flags & dns.flags.QR:
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.FORMERR if len(q.question) != 1 else dns.rcode.NOTIMP)
            return r.to_wire(), self.log_bad(t, peer, proto, "not a plain query")
        qn, qt = q.question[0].name, q.question[0].rdtype
        ecs = ecs_of(q)
        canon = ecs is None or canonical(ecs, data)
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        r.flags &= ~dns.flags.RA
        scope = None
        shown = []
        if ecs is not None and ecs.scopelen != 0:
            # RFC 7871 7.1.1: SCOPE must be 0 in a query.
            r = dns.message.make_response(q)
            r.set_rcode(dns.rcode.FORMERR)
            return r.to_wire(), self.log_query(t, peer, proto, q, ecs, canon, None, ["FORMERR"])
        ttl = self.a.ttl
        owner_www = dns.name.from_text("www", self.zone)
        owner_cn = dns.name.from_text("cn", self.zone)
        owner_flat = dns.name.from_text("flat", self.zone)
        soa = dns.rrset.from_text(self.zone, ttl, "IN", "SOA",
                                  f"ns.{self.zone} hostmaster.{self.zone} 1 3600 600 86400 {ttl}")
        if not qn.is_subdomain(self.zone):
            r.flags &= ~dns.flags.AA
            r.set_rcode(dns.rcode.REFUSED)
        elif qn == self.zone:
            if qt == dns.rdatatype.SOA:
                r.answer.append(soa)
            elif qt == dns.rdatatype.NS:
                r.answer.append(dns.rrset.from_text(qn, ttl, "IN", "NS", f"ns.{self.zone}"))
            else:
                r.authority.append(soa)
        elif qn == dns.name.from_text("ns", self.zone):
            if qt == dns.rdatatype.A:
                r.answer.append(dns.rrset.from_text(qn, ttl, "IN", "A", "127.0.0.1"))
            else:
                r.authority.append(soa)
        elif qn in (owner_www, owner_cn, owner_flat):
            name = qn
            if qn == owner_cn:
                r.answer.append(dns.rrset.from_text(qn, ttl, "IN", "CNAME", owner_www.to_text()))
                shown.append("CNAME " + owner_www.to_text())
                name = owner_www
            if qn == owner_flat:
                a, aaaa = FLAT_ANSWER
                scope = 0 if ecs is not None else None
            else:
                a, aaaa, scope = self.table.lookup(ecs)
            if qt == dns.rdatatype.A:
                r.answer.append(dns.rrset.from_text(name, ttl, "IN", "A", a))
                shown.append(a)
            elif qt == dns.rdatatype.AAAA:
                r.answer.append(dns.rrset.from_text(name, ttl, "IN", "AAAA", aaaa))
                shown.append(aaaa)
            else:
                r.authority.append(soa)
        else:
            r.set_rcode(dns.rcode.NXDOMAIN)
            r.authority.append(soa)
        if q.edns >= 0:
            opts = []
            if ecs is not None:
                # Echo FAMILY, SOURCE and ADDRESS as they came; a
                # non-address query still says scope 0 or the rule's.
                opts.append(dns.edns.ECSOption(ecs.address, ecs.srclen,
                                               scope if scope is not None else 0))
            r.use_edns(0, 0, 1232, options=opts)
        return r.to_wire(), self.log_query(t, peer, proto, q, ecs, canon, scope, shown)

    def formerr(self, data):
        if len(data) < 12:
            return None
        # Header only: ID, QR=1, opcode kept, RCODE=FORMERR.
        qid, flags = struct.unpack("!HH", data[:4])
        flags = (flags & 0x7800) | 0x8000 | dns.rcode.FORMERR
        return struct.pack("!HHHHHH", qid, flags, 0, 0, 0, 0)

    def log_bad(self, t, peer, proto, why):
        i = self.next_id()
        self.log({"id": i, "t": t, "peer": peer, "proto": proto, "error": why})
        return i

    def log_query(self, t, peer, proto, q, ecs, canon, scope, shown):
        i = self.next_id()
        self.log({
            "id": i, "t": t, "peer": peer, "proto": proto,
            "name": q.question[0].name.to_text(omit_final_dot=True).lower(),
            "type": dns.rdatatype.to_text(q.question[0].rdtype),
            "rd": bool(q.flags & dns.flags.RD),
            "ecs": f"{ecs.address}/{ecs.srclen}" if ecs is not None else None,
            "ecs_canonical": canon, "scope": scope, "answer": shown,
        })
        return i

    def reply_later(self, send, wire, i):
        def go():
            try:
                send(wire)
            except OSError:
                return
            self.log({"sent": time.time(), "id": i})
        if self.a.delay > 0:
            tm = threading.Timer(self.a.delay, go)
            tm.daemon = True
            tm.start()
        else:
            go()

    def serve_udp(self, s):
        while True:
            data, peer = s.recvfrom(65535)
            wire, i = self.answer(data, peer[0], "udp")
            if wire is not None:
                self.reply_later(lambda w, p=peer: s.sendto(w, p), wire, i)

    def serve_tcp_conn(self, c, peer):
        lock = threading.Lock()

        def send(w):
            with lock:
                c.sendall(struct.pack("!H", len(w)) + w)

        def rd(n):
            b = b""
            while len(b) < n:
                x = c.recv(n - len(b))
                if not x:
                    raise EOFError
                b += x
            return b
        try:
            c.settimeout(30)
            while True:
                n = struct.unpack("!H", rd(2))[0]
                wire, i = self.answer(rd(n), peer[0], "tcp")
                if wire is not None:
                    self.reply_later(send, wire, i)
        except (EOFError, OSError, struct.error):
            pass
        finally:
            # Replies still delayed find the socket closed: dropped.
            if self.a.delay > 0:
                time.sleep(self.a.delay + 0.1)
            c.close()

    def serve_tcp(self, s):
        while True:
            c, peer = s.accept()
            threading.Thread(target=self.serve_tcp_conn, args=(c, peer), daemon=True).start()


def main():
    a = parse_args()
    srv = Server(a)
    socks = []
    fams = [(socket.AF_INET, "127.0.0.1")]
    if a.v6:
        fams.append((socket.AF_INET6, "::1"))
    for fam, host in fams:
        u = socket.socket(fam, socket.SOCK_DGRAM)
        t = socket.socket(fam, socket.SOCK_STREAM)
        t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        u.bind((host, a.port))
        t.bind((host, a.port))
        t.listen(64)
        socks.append((u, t))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    for u, t in socks:
        threading.Thread(target=srv.serve_udp, args=(u,), daemon=True).start()
        threading.Thread(target=srv.serve_tcp, args=(t,), daemon=True).start()
    if a.ready:
        with open(a.ready, "w") as f:
            f.write(f"{a.port}\n")
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main()
