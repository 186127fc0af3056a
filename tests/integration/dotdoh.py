#!/usr/bin/python3
"""Raw DNS-over-TLS (RFC 7858) and DNS-over-HTTPS (RFC 8484) exchanges for
the tls_* integration cases, with the server certificate verified against
the test CA (hostname "localhost" unless told otherwise).

DoT is spoken here with ssl + dnspython. DoH goes through curl (HTTP/2),
because Debian 12's dnspython needs httpx for DoH and httpx is not
installed; curl's status, headers and body are then checked here.

BIND, queried directly over TCP with the same wire query, is the
reference: apexd relays what it does not flatten byte for byte, the
message ID included.

Run with /usr/bin/python3 (Debian's python3-dnspython). Exit 0 when every
expectation holds, 1 when one does not (the reason is printed), 2 on a
usage or environment error.
"""

import argparse
import base64
import os
import socket
import ssl
import struct
import subprocess
import sys
import tempfile
import time

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype


class Fail(Exception):
    pass


def want(cond, what):
    if not cond:
        raise Fail(what)


# ---------------------------------------------------------------- queries

def make_query(a, name=None, rdtype=None, qid=None):
    q = dns.message.make_query(name or a.name, rdtype or a.type)
    if qid is not None:
        q.id = qid
    elif getattr(a, "id", None) is not None:
        q.id = a.id
    flags = dns.flags.DO if getattr(a, "do", False) else 0
    payload = getattr(a, "payload", 1232)
    if getattr(a, "no_edns", False):
        q.use_edns(False)
    elif getattr(a, "pad_to", None):
        # EDNS padding (RFC 7830, option 12) up to exactly pad_to bytes:
        # the message with an OPT RR (11) and the option's header (4).
        base = len(q.to_wire()) + 11 + 4
        want(a.pad_to >= base, f"--pad-to {a.pad_to} is below the bare query's {base} bytes")
        q.use_edns(0, flags, payload, options=[dns.edns.GenericOption(12, b"\0" * (a.pad_to - base))])
        wire = q.to_wire(max_size=65535)
        want(len(wire) == a.pad_to, f"padded query is {len(wire)} bytes, not {a.pad_to}")
        return wire
    else:
        q.use_edns(0, flags, payload)
    return q.to_wire()


def frame(wire):
    return struct.pack("!H", len(wire)) + wire


def read_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise EOFError(f"closed after {len(buf)}/{n} bytes")
        buf += chunk
    return buf


def read_msg(s):
    return read_exact(s, struct.unpack("!H", read_exact(s, 2))[0])


def bind_tcp(port, wire, timeout=3.0):
    """BIND's answer to WIRE over plain TCP: the reference bytes."""
    with socket.create_connection(("127.0.0.1", port), timeout) as s:
        s.settimeout(timeout)
        s.sendall(frame(wire))
        return read_msg(s)


def min_ttl(msg):
    """Cache lifetime RFC 8484 section 5.1 asks for: the smallest TTL in
    the answer section, or for a negative answer min(SOA TTL, MINIMUM)."""
    ttls = [rr.ttl for rr in msg.answer]
    if ttls:
        return min(ttls)
    for rr in msg.authority:
        if rr.rdtype == dns.rdatatype.SOA:
            return min(rr.ttl, rr[0].minimum)
    return None


def check_answer(a, r):
    """--rcode, --min-answers, --addrs against a parsed answer."""
    if a.rcode:
        ede = [f"EDE {int(o.code)} {o.text!r}" for o in r.options if o.otype == 15]
        want(r.rcode() == dns.rcode.from_text(a.rcode),
             f"rcode {dns.rcode.to_text(r.rcode())}{' (' + ', '.join(ede) + ')' if ede else ''}, expected {a.rcode}")
    n = sum(len(rr) for rr in r.answer)
    if a.min_answers is not None:
        want(n >= a.min_answers, f"{n} answer RRs, expected >= {a.min_answers}")
    if a.addrs is not None:
        got = sorted(rd.address for rr in r.answer if rr.rdtype in (1, 28) for rd in rr)
        want(got == sorted(a.addrs.split()), f"addresses {got}, expected {sorted(a.addrs.split())}")
        want(all(rr.rdtype in (1, 28) for rr in r.answer), "a non-address RR in the answer (CNAME?)")
    if a.flag:
        for f in a.flag:
            neg = f.startswith("!")
            bit = dns.flags.from_text(f.lstrip("!"))
            want(bool(r.flags & bit) != neg, f"flag {f} not as expected")


def describe(wire):
    try:
        return dns.message.from_wire(wire).to_text()
    except Exception as exc:  # noqa: BLE001 - only for a message
        return f"(unparsable: {exc}) {wire.hex()}"


def ttl_masked(wire):
    """The message with every TTL 0, for comparing two answers a second
    apart (a cached, counting-down TTL may have ticked). As text, in wire
    order: dnspython's to_wire() shuffles the records of an RRset, so two
    re-encodings of one message need not be equal."""
    m = dns.message.from_wire(wire)
    for section in (m.answer, m.authority, m.additional):
        for rr in section:
            rr.ttl = 0
    return m.to_text()


def same_bytes(got, ref, what, mask_ttl=False):
    if mask_ttl and got != ref:
        if len(got) == len(ref) and ttl_masked(got) == ttl_masked(ref):
            return
    if got != ref:
        off = next((i for i, (x, y) in enumerate(zip(got, ref)) if x != y), min(len(got), len(ref)))
        raise Fail(f"{what}: {len(got)} bytes differ from BIND's {len(ref)} at offset {off}\n"
                   f"--- apexd:\n{describe(got)}\n--- BIND:\n{describe(ref)}")


# -------------------------------------------------------------------- DoT

def tls_context(a, alpn=("dot",), minv=None, maxv=None):
    ctx = ssl.create_default_context(cafile=a.ca)
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    if minv:
        ctx.minimum_version = minv
    if maxv:
        ctx.maximum_version = maxv
    return ctx


def dot_connect(a, port=None, alpn=("dot",), minv=None, maxv=None, timeout=3.0):
    raw = socket.create_connection(("127.0.0.1", port or a.port), timeout)
    raw.settimeout(timeout)
    try:
        s = tls_context(a, alpn, minv, maxv).wrap_socket(raw, server_hostname=a.hostname)
    except BaseException:
        raw.close()
        raise
    return s


def dot_exchange(s, wire):
    s.sendall(frame(wire))
    return read_msg(s)


def cmd_dot_cmp(a):
    wire = make_query(a)
    with dot_connect(a) as s:
        got = dot_exchange(s, wire)
    ref = bind_tcp(a.ref, wire)
    r = dns.message.from_wire(got)
    check_answer(a, r)
    same_bytes(got, ref, f"{a.name} {a.type}", a.mask_ttl)
    print(f"{a.name} {a.type}: {len(got)} bytes over DoT equal to {a.ref}'s over TCP, "
          f"{dns.rcode.to_text(r.rcode())}, {sum(len(x) for x in r.answer)} answers")


def cmd_dot_query(a):
    """One query over DoT, checked (for flattened answers)."""
    wire = make_query(a)
    with dot_connect(a) as s:
        got = dot_exchange(s, wire)
    r = dns.message.from_wire(got)
    want(r.id == struct.unpack("!H", wire[:2])[0], "answer ID differs from the query's")
    check_answer(a, r)
    print(r.to_text())


PIPE_NAMES = [("example.test", "SOA"), ("mail.example.test", "A"), ("nothere.example.test", "A"),
              ("example.test", "MX"), ("inzone.example.test", "A"), ("example.test", "A"),
              ("host.example.test", "AAAA"), ("cn.example.test", "A"), ("signed.test", "DNSKEY"),
              ("alias-owner.example.test", "AAAA")]


def cmd_dot_pipeline(a):
    queries = {}
    for i in range(a.count):
        name, rdtype = PIPE_NAMES[i % len(PIPE_NAMES)]
        queries[2000 + i] = (name, rdtype, make_query(a, name, rdtype, 2000 + i))
    with dot_connect(a, timeout=10.0) as s:
        # One write with every query: they arrive in a TLS record or two.
        s.sendall(b"".join(frame(w) for _, _, w in queries.values()))
        got = {}
        order = []
        for _ in range(a.count):
            msg = read_msg(s)
            qid = struct.unpack("!H", msg[:2])[0]
            got[qid] = msg
            order.append(qid)
    want(set(got) == set(queries), f"IDs answered {sorted(got)} != sent {sorted(queries)}")
    flattened = 0
    for qid, (name, rdtype, wire) in queries.items():
        r = dns.message.from_wire(got[qid])
        want(r.question[0].name.to_text() == name + ".", f"ID {qid}: question {r.question[0].name}, sent {name}")
        if name in ("example.test", "alias-owner.example.test") and rdtype in ("A", "AAAA"):
            want(r.rcode() == 0 and r.answer and all(rr.rdtype in (1, 28) for rr in r.answer),
                 f"ID {qid}: {name} {rdtype} not flattened:\n{r.to_text()}")
            flattened += 1
            continue
        same_bytes(got[qid], bind_tcp(a.ref, wire), f"ID {qid} ({name} {rdtype})")
    print(f"{a.count} pipelined queries on one TLS connection: all answered, "
          f"{a.count - flattened} byte-equal to BIND's, {flattened} flattened; "
          f"answer order {'differs from' if order != sorted(order) else 'equals'} the query order")


def cmd_dot_bulk(a):
    """COUNT pipelined queries with big answers, read only once all are
    sent: apexd must queue its TLS writes, not drop or mangle them."""
    wire = make_query(a, a.name, a.type, 0)
    ref = bind_tcp(a.ref, wire)[2:]
    with dot_connect(a, timeout=20.0) as s:
        s.sendall(b"".join(frame(struct.pack("!H", i) + wire[2:]) for i in range(a.count)))
        seen = set()
        for _ in range(a.count):
            msg = read_msg(s)
            qid = struct.unpack("!H", msg[:2])[0]
            if msg[2:] != ref:
                same_bytes(msg[2:], ref, f"answer {qid}")
            seen.add(qid)
    want(seen == set(range(a.count)), f"{a.count - len(seen)} answers missing")
    print(f"{a.count} answers of {len(ref) + 2} bytes on one TLS connection, all equal to BIND's")


def closed_within(s, limit):
    """Seconds until the peer closes (EOF, close_notify, reset), or None."""
    s.settimeout(limit)
    t0 = time.monotonic()
    try:
        while True:
            data = s.recv(4096)
            if not data:
                break
            if not isinstance(s, ssl.SSLSocket):
                continue  # a TLS alert on a raw socket: read on to EOF
            raise Fail(f"unexpected data {data[:40]!r}")
    except socket.timeout:
        return None
    except (ConnectionResetError, ssl.SSLEOFError, ssl.SSLZeroReturnError, BrokenPipeError):
        pass
    except ssl.SSLError as exc:  # an alert from the peer also ends it
        print(f"  (closed with {exc})")
    return time.monotonic() - t0


def cmd_dot_idle(a):
    lo, hi = a.idle - 0.6, a.idle + 2.5
    res = []
    # 1. Handshake, one query answered, then silence.
    with dot_connect(a) as s:
        r = dns.message.from_wire(dot_exchange(s, make_query(a, "example.test", "SOA", 11)))
        want(r.rcode() == 0, "SOA over DoT not NOERROR")
        took = closed_within(s, hi + 2)
        want(took is not None, f"TLS connection idle after a query still open after {hi + 2:.1f} s")
        want(lo <= took <= hi, f"idle TLS connection closed after {took:.1f} s, expected {lo:.1f}..{hi:.1f}")
        res.append(f"after a query: closed after {took:.1f} s")
    # 2. Handshake only, no query.
    with dot_connect(a) as s:
        took = closed_within(s, hi + 2)
        want(took is not None, "TLS connection without a query still open")
        want(took <= hi, f"closed after {took:.1f} s, expected <= {hi:.1f}")
        res.append(f"after the handshake only: closed after {took:.1f} s")
    # 3. TCP connected, no ClientHello ever: the handshake cannot stall a slot.
    with socket.create_connection(("127.0.0.1", a.port), 3) as raw:
        took = closed_within(raw, hi + 2)
        want(took is not None, "TCP connection to the DoT port without a ClientHello still open")
        want(took <= hi, f"closed after {took:.1f} s, expected <= {hi:.1f}")
        res.append(f"no ClientHello: closed after {took:.1f} s")
    # 4. Queries keep a connection alive: 3 queries spaced by 0.6 idle.
    with dot_connect(a) as s:
        for i in range(3):
            time.sleep(a.idle * 0.6)
            r = dns.message.from_wire(dot_exchange(s, make_query(a, "mail.example.test", "A", 20 + i)))
            want(r.id == 20 + i, "wrong ID")
        res.append(f"3 queries {a.idle * 0.6:.1f} s apart on one connection: all answered")
    print("; ".join(res))


def served_dot(s, qid):
    r = dns.message.from_wire(dot_exchange(s, make_query(a_global, "mail.example.test", "A", qid)))
    return r.id == qid and r.rcode() == 0


def served_tcp(s, qid):
    s.sendall(frame(make_query(a_global, "mail.example.test", "A", qid)))
    return struct.unpack("!H", read_msg(s)[:2])[0] == qid


def try_serve(kind, a, qid):
    """Open one more connection of KIND and try a query: True if served."""
    try:
        if kind == "dot":
            with dot_connect(a, timeout=2.0) as s:
                return served_dot(s, qid)
        with socket.create_connection(("127.0.0.1", a.tcp_port), 2.0) as s:
            s.settimeout(2.0)
            return served_tcp(s, qid)
    except (EOFError, OSError, ssl.SSLError) as exc:
        print(f"  {kind} connection over the limit: not served ({type(exc).__name__}: {exc})")
        return False


def cmd_dot_limit(a):
    """max-connections counts TLS connections: hold max-1 DoT connections
    plus one DoH TLS connection (handshake done, h2), then neither another
    DoT nor a plain TCP connection is served; closing one frees a slot."""
    held = []
    for i in range(a.max - 1):
        s = dot_connect(a)
        want(served_dot(s, 100 + i), f"DoT connection {i + 1} not served")
        held.append(s)
    h2 = dot_connect(a, port=a.doh_port, alpn=("h2",))
    want(h2.selected_alpn_protocol() == "h2", f"DoH ALPN {h2.selected_alpn_protocol()!r}")
    held.append(h2)
    time.sleep(0.3)
    want(not try_serve("dot", a, 999), f"DoT connection {a.max + 1} served although max-connections = {a.max}")
    want(not try_serve("tcp", a, 998), f"TCP connection {a.max + 1} served although max-connections = {a.max}")
    for i, s in enumerate(held[:-1]):
        want(served_dot(s, 200 + i), f"held DoT connection {i + 1} stopped working")
    held.pop(0).close()
    deadline = time.monotonic() + 3.0
    while not try_serve("dot", a, 300):
        want(time.monotonic() < deadline, "after closing one DoT connection a new one is still not served")
        time.sleep(0.2)
    for s in held:
        s.close()
    print(f"{a.max - 1} DoT + 1 DoH held: DoT and TCP over the limit refused; a freed slot is reused")


def cmd_dot_alpn(a):
    offer = tuple(x for x in a.offer.split(",") if x)
    try:
        with dot_connect(a, alpn=offer) as s:
            sel = s.selected_alpn_protocol()
            if a.expect == "fail":
                raise Fail(f"handshake offering {offer} succeeded (ALPN {sel!r}, {s.version()}); expected a refusal")
            want((sel or "none") == a.expect, f"ALPN selected {sel!r}, expected {a.expect!r}")
            if a.query:
                r = dns.message.from_wire(dot_exchange(s, make_query(a, "example.test", "SOA", 5)))
                want(r.rcode() == 0, "no SOA answer")
            print(f"offered {list(offer)}: selected {sel!r}, {s.version()}")
    except ssl.SSLError as exc:
        if a.expect != "fail":
            raise Fail(f"handshake offering {offer} failed: {exc}")
        print(f"offered {list(offer)}: refused ({exc.reason or exc})")


VERSIONS = {"1.2": ssl.TLSVersion.TLSv1_2, "1.3": ssl.TLSVersion.TLSv1_3}


def cmd_dot_version(a):
    v = VERSIONS[a.version]
    port = a.doh_port if a.doh_port else a.port
    alpn = ("h2",) if a.doh_port else ("dot",)
    try:
        with dot_connect(a, port=port, alpn=alpn, minv=v, maxv=v) as s:
            got = s.version()
            if a.expect == "refused":
                raise Fail(f"TLS {a.version} accepted ({got}), expected a refusal")
            want(got == f"TLSv{a.version}", f"negotiated {got}")
            if not a.doh_port:
                r = dns.message.from_wire(dot_exchange(s, make_query(a, "example.test", "SOA", 6)))
                want(r.rcode() == 0, "no SOA answer")
            print(f"TLS {a.version} only: {got}, {s.cipher()[0]}" + ("" if a.doh_port else ", query answered"))
    except ssl.SSLError as exc:
        if a.expect != "refused":
            raise Fail(f"TLS {a.version} refused: {exc}")
        print(f"TLS {a.version} only: refused ({exc.reason or exc})")


def cmd_dot_resume(a):
    """A second connection resumes the first one's session (a TLS 1.3
    ticket or a TLS 1.2 ticket/ID): one full handshake, then a short one."""
    v = VERSIONS[a.version]
    ctx = tls_context(a, minv=v, maxv=v)
    out = []
    session = None
    for i in range(3):
        raw = socket.create_connection(("127.0.0.1", a.port), 3)
        raw.settimeout(3)
        with ctx.wrap_socket(raw, server_hostname=a.hostname, session=session) as s:
            # The answer is read after the handshake, so TLS 1.3 tickets
            # that follow it have arrived by the time s.session is taken.
            r = dns.message.from_wire(dot_exchange(s, make_query(a, "example.test", "SOA", 30 + i)))
            want(r.rcode() == 0, "no SOA answer")
            if i > 0:
                want(s.session_reused, f"connection {i + 1} ({s.version()}) did not resume the session")
            out.append(f"{s.version()} {'resumed' if s.session_reused else 'full handshake'}")
            session = s.session
    print("; ".join(out))


def cmd_dot_garbage(a):
    """Not a ClientHello: the server must close (maybe after an alert),
    and go on serving."""
    cases = {
        "HTTP request": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
        "DNS over TCP frame": frame(make_query(a, "example.test", "SOA", 1)),
        "4 KB of 0xff": b"\xff" * 4096,
        "TLS record header, absurd length": b"\x16\x03\x01\xff\xff" + b"\x00" * 64,
    }
    out = []
    for what, data in cases.items():
        with socket.create_connection(("127.0.0.1", a.port), 3) as raw:
            raw.sendall(data)
            took = closed_within(raw, 4.0)
            want(took is not None, f"{what}: connection still open 4 s later")
            out.append(f"{what}: closed after {took:.2f} s")
    # A ClientHello cut short, then the client vanishes.
    ctx = tls_context(a)
    inc, outb = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, outb, server_hostname=a.hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outb.read()
    with socket.create_connection(("127.0.0.1", a.port), 3) as raw:
        raw.sendall(hello[: len(hello) // 2])
    # And a client that resets mid-handshake.
    with socket.create_connection(("127.0.0.1", a.port), 3) as raw:
        raw.sendall(hello)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    time.sleep(0.3)
    with dot_connect(a) as s:
        r = dns.message.from_wire(dot_exchange(s, make_query(a, "example.test", "SOA", 9)))
        want(r.rcode() == 0, "apexd no longer answers over DoT")
    print("; ".join(out) + "; a verified DoT query is answered afterwards")


def cmd_dot_hostname(a):
    """A client expecting another name must refuse the certificate: the
    verification in the other checks is real."""
    try:
        with dot_connect(a) as s:
            raise Fail(f"handshake with hostname {a.hostname!r} succeeded ({s.version()})")
    except ssl.SSLCertVerificationError as exc:
        print(f"hostname {a.hostname!r}: certificate refused as it must be ({exc.verify_message})")


# -------------------------------------------------------------------- DoH

def b64url(wire):
    return base64.urlsafe_b64encode(wire).rstrip(b"=").decode()


def curl_doh(a, wire, method):
    """One DoH request with curl over HTTP/2; returns (status, headers, body)."""
    with tempfile.TemporaryDirectory() as d:
        hdr, body = os.path.join(d, "h"), os.path.join(d, "b")
        cmd = ["curl", "-sS", "--http2", "--cacert", a.ca, "--max-time", "5",
               "-H", "accept: application/dns-message", "-D", hdr, "-o", body,
               "-w", "%{http_code} %{http_version}"]
        if method == "get":
            cmd.append(f"{a.url}?dns={b64url(wire)}")
        else:
            qf = os.path.join(d, "q")
            with open(qf, "wb") as f:
                f.write(wire)
            cmd += ["-H", "content-type: application/dns-message", "--data-binary", "@" + qf, a.url]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        if p.returncode != 0:
            raise Fail(f"curl failed ({p.returncode}): {p.stderr.strip()}")
        status, version = p.stdout.split()
        want(version == "2", f"HTTP version {version}, expected 2")
        headers = {}
        with open(hdr, encoding="latin-1") as f:
            for line in f:
                k, sep, v = line.partition(":")
                if sep and not line.startswith(" "):
                    headers[k.strip().lower()] = v.strip()
        with open(body, "rb") as f:
            data = f.read() if os.path.exists(body) else b""
    return int(status), headers, data


def max_age(headers):
    cc = headers.get("cache-control", "")
    for part in cc.split(","):
        k, _, v = part.strip().partition("=")
        if k.lower() == "max-age":
            return int(v)
    return None


def cmd_doh(a):
    """A DoH request; with --ref the body must equal BIND's answer."""
    wire = make_query(a)
    status, headers, body = curl_doh(a, wire, a.method)
    want(status == 200, f"HTTP status {status}, expected 200")
    ct = headers.get("content-type")
    want(ct == "application/dns-message", f"content-type {ct!r}")
    r = dns.message.from_wire(body)
    want(r.id == struct.unpack("!H", wire[:2])[0], "answer ID differs from the query's")
    check_answer(a, r)
    age, lowest = max_age(headers), min_ttl(r)
    if lowest is None:
        # No answer and no SOA (REFUSED, SERVFAIL): no TTL to go by;
        # nothing or max-age=0 is fine, a lifetime out of thin air is not.
        want(age in (None, 0), f"max-age={age} for an answer without TTLs")
    else:
        want(age is not None, f"no max-age in cache-control {headers.get('cache-control')!r}")
        want(age == lowest, f"max-age={age}, but the smallest TTL of the answer is {lowest}")
    if a.max_age is not None:
        want(age == a.max_age, f"max-age={age}, expected {a.max_age}")
    if a.ref:
        same_bytes(body, bind_tcp(a.ref, wire), f"{a.name} {a.type} over DoH {a.method.upper()}", a.mask_ttl)
    print(f"DoH {a.method.upper()} {a.name} {a.type}: 200, {len(body)} bytes"
          f"{', equal to the reference' if a.ref else ''}, {dns.rcode.to_text(r.rcode())}, "
          f"cache-control {headers.get('cache-control')!r}")


# ------------------------------------------- DoH: one TLS record per answer
#
# Raw HTTP/2 over an ssl.SSLObject on memory BIOs, so that the TLS records
# on the wire can be counted. An answer whose HEADERS and DATA left in
# separate writes (two records, two segments) would cost the client a
# second wake-up, and with delayed ACKs on a real link a round trip.

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
H2_DATA, H2_HEADERS, H2_SETTINGS = 0, 1, 4
H2_END_STREAM, H2_END_HEADERS, H2_ACK = 0x1, 0x4, 0x1


def h2_frame(ftype, flags, sid, payload=b""):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack("!I", sid) + payload


def hpack_lit(index, value):
    """A literal header field without indexing, name from the static table
    (RFC 7541 6.2.2), the value as a plain string (no Huffman)."""
    want(len(value) < 127, "header value too long for this encoder")
    name = bytes([index]) if index < 15 else bytes([15, index - 15])
    return name + bytes([len(value)]) + value


def h2_request(sid, method, authority, path, wire):
    """HEADERS (and for POST a DATA) frame(s) of one DoH request, whole."""
    block = (b"\x82" if method == "get" else b"\x83") + b"\x87"  # :method, :scheme https
    block += hpack_lit(1, authority.encode()) + hpack_lit(4, path.encode())
    if method == "get":
        return h2_frame(H2_HEADERS, H2_END_STREAM | H2_END_HEADERS, sid, block)
    block += hpack_lit(31, b"application/dns-message")  # content-type
    return h2_frame(H2_HEADERS, H2_END_HEADERS, sid, block) + h2_frame(H2_DATA, H2_END_STREAM, sid, wire)


class RecordTLS:
    """A TLS client that hands back the server's records one at a time."""

    def __init__(self, a):
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = tls_context(a, alpn=("h2",)).wrap_bio(self.inc, self.out, server_hostname=a.hostname)
        self.sock = socket.create_connection(("127.0.0.1", a.port), 3.0)
        self.wire = b""
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                d = self.sock.recv(65536)
                want(d, "connection closed during the handshake")
                self.inc.write(d)
        self.flush()
        want(self.tls.selected_alpn_protocol() == "h2", "ALPN did not select h2")

    def flush(self):
        d = self.out.read()
        if d:
            self.sock.sendall(d)

    def send(self, plain):
        self.tls.write(plain)
        self.flush()

    def record(self, timeout):
        """The plaintext of the next whole record, b"" for one without
        application data (a session ticket), None when none comes."""
        while len(self.wire) < 5 or len(self.wire) < 5 + struct.unpack("!H", self.wire[3:5])[0]:
            self.sock.settimeout(timeout)
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                return None
            want(d, "connection closed")
            self.wire += d
        n = 5 + struct.unpack("!H", self.wire[3:5])[0]
        self.inc.write(self.wire[:n])
        self.wire = self.wire[n:]
        plain = b""
        while True:
            try:
                d = self.tls.read(65536)
            except ssl.SSLWantReadError:
                break
            if not d:
                break
            plain += d
        self.flush()
        return plain


def h2_frames(plain):
    """(type, flags, stream, payload) of the whole frames in plain."""
    frames, off = [], 0
    while off + 9 <= len(plain):
        n = struct.unpack("!I", b"\0" + plain[off:off + 3])[0]
        want(off + 9 + n <= len(plain), "an HTTP/2 frame split across TLS records")
        ftype, flags = plain[off + 3], plain[off + 4]
        sid = struct.unpack("!I", plain[off + 5:off + 9])[0] & 0x7FFFFFFF
        frames.append((ftype, flags, sid, plain[off + 9:off + 9 + n]))
        off += 9 + n
    want(off == len(plain), "an HTTP/2 frame split across TLS records")
    return frames


def cmd_doh_flight(a):
    """Each answer (HEADERS + DATA with END_STREAM) arrives in one TLS
    record, for GET and for POST (HEADERS and DATA sent in one write)."""
    c = RecordTLS(a)
    authority = f"127.0.0.1:{a.port}"
    settings_acked = False
    sid = 1
    # The first exchange also carries the connection's SETTINGS; what the
    # server sends besides answers (its SETTINGS, ACKs, tickets) is
    # drained before the counted requests.
    c.send(H2_PREFACE + h2_frame(H2_SETTINGS, 0, 0) +
           h2_request(sid, "get", authority, f"{a.path}?dns={b64url(make_query(a, qid=0))}", b""))
    done = False
    while not done:
        plain = c.record(3.0)
        want(plain is not None, "no answer to the first request")
        for ftype, flags, fsid, _ in h2_frames(plain):
            if ftype == H2_SETTINGS and not flags & H2_ACK and not settings_acked:
                c.send(h2_frame(H2_SETTINGS, H2_ACK, 0))
                settings_acked = True
            done = done or (fsid == sid and ftype == H2_DATA and flags & H2_END_STREAM)
    while c.record(0.3) is not None:
        pass
    for i in range(a.count):
        sid += 2
        method = ("get", "post")[i % 2]
        wire = make_query(a, qid=i + 1)
        path = f"{a.path}?dns={b64url(wire)}" if method == "get" else a.path
        c.send(h2_request(sid, method, authority, path, wire))
        records = []
        while True:
            plain = c.record(3.0)
            want(plain is not None, f"{method.upper()} stream {sid}: no complete answer within 3 s")
            frames = h2_frames(plain)
            # Connection frames (a WINDOW_UPDATE for a POST body, say)
            # may come on their own: only the stream's records count.
            if not any(f[2] == sid for f in frames):
                continue
            records.append(frames)
            if any(f[2] == sid and f[0] == H2_DATA and f[1] & H2_END_STREAM for f in records[-1]):
                break
        kinds = [[(f[0], f[2]) for f in r] for r in records]
        want(len(records) == 1, f"{method.upper()} stream {sid}: the answer took {len(records)} "
             f"TLS records (frames (type, stream) per record: {kinds})")
        frames = records[0]
        want([f[0] for f in frames if f[2] == sid] == [H2_HEADERS, H2_DATA],
             f"{method.upper()} stream {sid}: frames {kinds[0]}, expected HEADERS then DATA")
        body = frames[-1][3]
        r = dns.message.from_wire(body)
        want(r.id == i + 1, f"answer ID {r.id}, expected {i + 1}")
        check_answer(a, r)
    print(f"DoH: {a.count} answers (GET and POST), each HEADERS + DATA in one TLS record")


def cmd_wire(a):
    wire = make_query(a)
    if a.b64url:
        print(b64url(wire))
    elif a.out:
        with open(a.out, "wb") as f:
            f.write(wire)
    else:
        print(wire.hex())


a_global = None


def main():
    global a_global
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)

    def common(sp, query=True):
        sp.add_argument("--ca", required=True)
        sp.add_argument("--hostname", default="localhost")
        sp.add_argument("--port", type=int)
        if query:
            sp.add_argument("--id", type=int)
            sp.add_argument("--no-edns", action="store_true")
            sp.add_argument("--do", action="store_true")
            sp.add_argument("--payload", type=int, default=1232)
            sp.add_argument("--pad-to", type=int, help="EDNS-pad the query to this many bytes")
        return sp

    def expect(sp):
        sp.add_argument("--rcode")
        sp.add_argument("--min-answers", type=int)
        sp.add_argument("--addrs")
        sp.add_argument("--flag", action="append")

    sp = common(sub.add_parser("dot-cmp"))
    sp.add_argument("--ref", type=int, required=True, help="TCP port of the reference")
    sp.add_argument("--mask-ttl", action="store_true", help="compare with TTLs zeroed")
    sp.add_argument("name"); sp.add_argument("type")
    expect(sp)
    sp = common(sub.add_parser("dot-query"))
    sp.add_argument("name"); sp.add_argument("type")
    expect(sp)
    sp = common(sub.add_parser("dot-bulk"))
    sp.add_argument("--ref", type=int, required=True)
    sp.add_argument("--count", type=int, default=200)
    sp.add_argument("name"); sp.add_argument("type")
    sp = common(sub.add_parser("dot-pipeline"))
    sp.add_argument("--ref", type=int, required=True)
    sp.add_argument("--count", type=int, default=20)
    sp = common(sub.add_parser("dot-idle"))
    sp.add_argument("--idle", type=float, required=True)
    sp = common(sub.add_parser("dot-limit"))
    sp.add_argument("--max", type=int, required=True)
    sp.add_argument("--tcp-port", type=int, required=True)
    sp.add_argument("--doh-port", type=int, required=True)
    sp = common(sub.add_parser("dot-alpn"))
    sp.add_argument("--offer", required=True, help="comma-separated, '' for none")
    sp.add_argument("--expect", required=True, help="the protocol, none, or fail")
    sp.add_argument("--query", action="store_true")
    sp = common(sub.add_parser("dot-version"))
    sp.add_argument("--version", choices=VERSIONS, required=True)
    sp.add_argument("--expect", choices=("ok", "refused"), required=True)
    sp.add_argument("--doh-port", type=int, help="test the DoH port (ALPN h2) instead")
    sp = common(sub.add_parser("dot-resume"))
    sp.add_argument("--version", choices=VERSIONS, required=True)
    common(sub.add_parser("dot-garbage"))
    common(sub.add_parser("dot-hostname"))
    sp = common(sub.add_parser("doh"))
    sp.add_argument("--url", required=True)
    sp.add_argument("--method", choices=("get", "post"), default="post")
    sp.add_argument("--ref", type=int)
    sp.add_argument("--mask-ttl", action="store_true")
    sp.add_argument("--max-age", type=int)
    sp.add_argument("name"); sp.add_argument("type")
    expect(sp)
    sp = common(sub.add_parser("doh-flight"))
    sp.add_argument("--path", default="/dns-query")
    sp.add_argument("--count", type=int, default=6)
    sp.add_argument("name"); sp.add_argument("type")
    expect(sp)
    sp = sub.add_parser("wire")
    sp.add_argument("name"); sp.add_argument("type")
    sp.add_argument("--id", type=int, default=0)
    sp.add_argument("--no-edns", action="store_true")
    sp.add_argument("--do", action="store_true")
    sp.add_argument("--payload", type=int, default=1232)
    sp.add_argument("--pad-to", type=int)
    sp.add_argument("--b64url", action="store_true")
    sp.add_argument("--out")

    a = p.parse_args()
    a_global = a
    # DoH defaults to ID 0 (RFC 8484 section 4.1), DoT to a random ID.
    if a.cmd == "doh" and a.id is None:
        a.id = 0
    try:
        globals()["cmd_" + a.cmd.replace("-", "_")](a)
    except Fail as exc:
        print(f"FAIL: {exc}")
        sys.exit(1)
    except (OSError, EOFError, ssl.SSLError, subprocess.TimeoutExpired) as exc:
        print(f"FAIL: {type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
