#!/usr/bin/python3
"""tests/fuzz/seeds_px_h2.py - writes the seed corpus of fuzz_px_h2.

Each seed is a DoH client session as fuzz_px_h2.c takes it: two control
octets, then the bytes a client sends over TLS: the connection preface
(or the control bit that prepends it), SETTINGS, and requests as HEADERS
(HPACK, hand-encoded here: static-table indexes, literals with and
without indexing, dynamic-table references, CONTINUATION), DATA, and the
frames around them (WINDOW_UPDATE, RST_STREAM, PING, PRIORITY, GOAWAY).
The DNS queries are made by dnspython, EDNS and all.

    /usr/bin/python3 tests/fuzz/seeds_px_h2.py tests/fuzz/corpus/px_h2
"""
import base64
import os
import struct
import sys

import dns.edns
import dns.message
import dns.rdatatype

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, PRIORITY, RST, SETTINGS, PING, GOAWAY, WINDOW, CONT = 0, 1, 2, 3, 4, 6, 7, 8, 9
END_STREAM, ACK, END_HEADERS, PADDED, PRIO = 0x1, 0x1, 0x4, 0x8, 0x20

# Control octet of fuzz_px_h2.c.
NOW, LATER, NEVER, ALTERNATE = 0, 1, 2, 3
CTL_PREFACE, CTL_GOAWAY, CTL_BIG = 0x04, 0x08, 0x80


def read_size(i):
    """Index into fuzz_px_h2.c's read sizes: 0 all, 1, 7, 9, 16, 100, 1000, 4096."""
    return i << 4


def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + struct.pack(
        ">I", stream) + payload


def settings(*pairs, ack=False):
    return frame(SETTINGS, ACK if ack else 0, 0, b"".join(struct.pack(">HI", k, v) for k, v in pairs))


def hint(value, prefix, first):
    """HPACK integer (RFC 7541 5.1) with the high bits of first."""
    limit = (1 << prefix) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 + 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hstr(s):
    s = s.encode() if isinstance(s, str) else s
    return hint(len(s), 7, 0) + s


def idx(i):
    """Indexed field (static 1-61, dynamic 62 on)."""
    return hint(i, 7, 0x80)


def lit(name_idx, value, index=False):
    """Literal value for an indexed name, with or without indexing."""
    if index:
        return hint(name_idx, 6, 0x40) + hstr(value)
    return hint(name_idx, 4, 0x00) + hstr(value)


def lit_new(name, value):
    """Literal name and value, without indexing."""
    return b"\x00" + hstr(name) + hstr(value)


# Static table (RFC 7541 Appendix A).
AUTHORITY, M_GET, M_POST, PATH_ROOT, SCHEME_HTTPS = 1, 2, 3, 4, 7
PATH, ACCEPT, CONTENT_LENGTH, CONTENT_TYPE, USER_AGENT = 4, 19, 28, 31, 58


def query(name="example.com", rdtype="A", qid=1, edns=True, **kw):
    q = dns.message.make_query(name, rdtype, use_edns=0 if edns else False, **kw)
    q.id = qid
    return q.to_wire()


def b64(q):
    return base64.urlsafe_b64encode(q).rstrip(b"=").decode()


def get_headers(path, extra=b""):
    return (idx(M_GET) + idx(SCHEME_HTTPS) + lit(AUTHORITY, "dns.example") + lit(PATH, path) +
            lit(ACCEPT, "application/dns-message") + extra)


def post_headers(length, ctype="application/dns-message", path="/dns-query"):
    return (idx(M_POST) + idx(SCHEME_HTTPS) + lit(AUTHORITY, "dns.example") + lit(PATH, path) +
            lit(CONTENT_TYPE, ctype) + lit(CONTENT_LENGTH, str(length)))


def get(stream, q, flags=END_STREAM | END_HEADERS, path="/dns-query"):
    return frame(HEADERS, flags, stream, get_headers(path + "?dns=" + b64(q)))


def post(stream, q, chunks=1, ctype="application/dns-message"):
    out = frame(HEADERS, END_HEADERS, stream, post_headers(len(q), ctype))
    step = max(1, (len(q) + chunks - 1) // chunks)
    for i in range(0, len(q), step):
        last = i + step >= len(q)
        out += frame(DATA, END_STREAM if last else 0, stream, q[i:i + step])
    return out


# Seeds also written with a small output budget: the client stops reading
# and the TLS stream's queue fills (tls_stream_write fails).
BUDGET_TOO = {"flow-control-big": 15, "pipelined-mixed": 4, "get-a": 1}


def seeds():
    s = {}
    hello = PREFACE + settings()
    # The plain cases of RFC 8484: GET with ?dns=, POST with a body.
    s["get-a"] = bytes([NOW]) + hello + get(1, query(qid=0x0101))
    s["get-aaaa-preface-bit"] = bytes([LATER | CTL_PREFACE]) + settings() + get(
        1, query("www.example.com", "AAAA", qid=0x0202, want_dnssec=True))
    s["post-a"] = bytes([LATER | CTL_PREFACE]) + settings() + post(1, query(qid=0x0305))
    s["post-split-data"] = bytes([NOW | CTL_PREFACE | read_size(2)]) + settings() + post(
        1, query("_sip._udp.example.com", "SRV", qid=0x0402), chunks=3)
    # Pipelined streams, answers out of order, reads cut mid-frame.
    s["pipelined-mixed"] = bytes([ALTERNATE | read_size(3)]) + hello + b"".join([
        get(1, query(qid=0x0100)),
        post(3, query("mail.example.com", "MX", qid=0x0201)),
        get(5, query("example.com", "TXT", qid=0x0302)),
        post(7, query("nx.example.com", "A", qid=0x0003)),
        get(9, query("example.com", "ANY", qid=0x0701, edns=False)),
    ])
    # EDNS options: client subnet, cookie, padding.
    ecs = dns.edns.ECSOption("192.0.2.0", 24)
    cookie = dns.edns.GenericOption(dns.edns.COOKIE, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    pad = dns.edns.GenericOption(dns.edns.PADDING, b"\x00" * 40)
    s["get-edns-options"] = bytes([NOW]) + hello + get(
        1, query(qid=0x0501, options=[ecs, cookie, pad]))
    # HPACK: incremental indexing, then the same fields from the dynamic
    # table; a table size update; CONTINUATION; padding and priority.
    p1 = "/dns-query?dns=" + b64(query(qid=0x0601))
    h1 = (idx(M_GET) + idx(SCHEME_HTTPS) + lit(AUTHORITY, "dns.example", index=True) +
          lit(PATH, p1, index=True))
    h2 = idx(M_GET) + idx(SCHEME_HTTPS) + idx(63) + idx(62)  # newest entry is 62
    s["hpack-dynamic-table"] = bytes([LATER]) + hello + frame(
        HEADERS, END_STREAM | END_HEADERS, 1, h1) + frame(
            HEADERS, END_STREAM | END_HEADERS, 3, hint(256, 5, 0x20) + h2)
    hb = get_headers("/dns-query?dns=" + b64(query("example.org", "NS", qid=0x0905)))
    s["headers-continuation"] = bytes([NOW]) + hello + frame(
        HEADERS, END_STREAM, 1, hb[:10]) + frame(CONT, 0, 1, hb[10:20]) + frame(
            CONT, END_HEADERS, 1, hb[20:])
    s["headers-padded-priority"] = bytes([NOW]) + hello + frame(
        HEADERS, END_STREAM | END_HEADERS | PADDED | PRIO, 1,
        bytes([5]) + struct.pack(">IB", 0, 15) + get_headers(
            "/dns-query?dns=" + b64(query(qid=0x0a01))) + b"\x00" * 5) + frame(
                PRIORITY, 0, 3, struct.pack(">IB", 1, 200))
    s["literal-new-names"] = bytes([NOW]) + hello + frame(
        HEADERS, END_STREAM | END_HEADERS, 1,
        get_headers("/dns-query?ct=x&dns=" + b64(query(qid=0x0b01)),
                    lit_new("x-forwarded-for", "192.0.2.1") + lit(USER_AGENT, "curl/7.88.1")))
    # Flow control: a small window for our DATA, big answers, the client
    # opening the window bit by bit; frame size raised.
    s["flow-control-big"] = bytes([LATER | CTL_BIG | read_size(6)]) + PREFACE + settings(
        (4, 100), (5, 32768), (1, 0)) + get(1, query(qid=0x0c01)) + post(
            3, query("big.example.com", qid=0x0d05)) + frame(WINDOW, 0, 0, struct.pack(
                ">I", 1 << 20)) + frame(WINDOW, 0, 1, struct.pack(">I", 30000)) + frame(
                    WINDOW, 0, 3, struct.pack(">I", 70000)) + settings(ack=True)
    # The client gives up: RST_STREAM before the answer, GOAWAY, PING.
    s["rst-before-answer"] = bytes([LATER]) + hello + get(1, query(qid=0x0e01)) + frame(
        RST, 0, 1, struct.pack(">I", 8)) + get(3, query(qid=0x0f01))
    s["ping-goaway"] = bytes([NEVER | CTL_GOAWAY]) + hello + frame(
        PING, 0, 0, b"12345678") + get(1, query(qid=0x1001)) + frame(
            GOAWAY, 0, 0, struct.pack(">II", 1, 0))
    s["server-goaway-midway"] = bytes([LATER | CTL_GOAWAY | read_size(7)]) + hello + get(
        1, query(qid=0x1101)) + get(3, query(qid=0x1201))
    # The 4xx answers.
    s["err-404-path"] = bytes([NOW]) + hello + get(1, query(qid=0x1301), path="/other")
    s["err-405-put"] = bytes([NOW]) + hello + frame(
        HEADERS, END_STREAM | END_HEADERS, 1,
        lit(2, "PUT") + idx(SCHEME_HTTPS) + lit(AUTHORITY, "dns.example") + lit(PATH, "/dns-query"))
    s["err-415-ctype"] = bytes([NOW]) + hello + post(1, query(qid=0x1401), ctype="text/plain")
    s["err-400-base64"] = bytes([NOW]) + hello + frame(
        HEADERS, END_STREAM | END_HEADERS, 1, get_headers("/dns-query?dns=AAAA*AAA"))
    s["err-400-response"] = bytes([NOW]) + hello + get(
        1, dns.message.make_response(dns.message.make_query("example.com", "A")).to_wire())
    s["err-no-method"] = bytes([NOW]) + hello + frame(
        HEADERS, END_STREAM | END_HEADERS, 1, idx(SCHEME_HTTPS) + lit(PATH, "/dns-query"))
    # Protocol errors: a bad preface, a frame on stream 0, an even stream.
    s["bad-preface"] = bytes([NOW]) + b"GET /dns-query HTTP/1.1\r\nHost: x\r\n\r\n"
    s["data-on-stream-0"] = bytes([NOW]) + hello + frame(DATA, END_STREAM, 0, b"abc")
    s["even-stream"] = bytes([NOW]) + hello + get(2, query(qid=0x1501))
    return s


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in seeds().items():
        # The second control octet (output budget in 64-octet units, 0 for none)
        # goes right behind the first.
        with open(os.path.join(out, name), "wb") as f:
            f.write(data[:1] + b"\x00" + data[1:])
        if name in BUDGET_TOO:
            with open(os.path.join(out, name + "-stalled-client"), "wb") as f:
                f.write(data[:1] + bytes([BUDGET_TOO[name]]) + data[1:])


if __name__ == "__main__":
    main()
