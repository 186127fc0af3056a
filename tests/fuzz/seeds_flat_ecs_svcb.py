#!/usr/bin/python3
"""tests/fuzz/seeds_flat_ecs_svcb.py - seeds for EDNS Client Subnet and SVCB/HTTPS.

Writes answers made with dnspython (no server: what they test is the
option and RDATA handling, which a private BIND would not vary) in the
layouts of:

  flat_chase    flags, max_chain, hops|type|subnet, answers separated by
                c0 fe c0 fe (fuzz_flat_chase.c): HTTPS ServiceMode with
                params, SVCB AliasMode behind a CNAME, HTTPS NODATA, a
                compressed TargetName, an RRset too large, and A/AAAA
                answers with matching, mismatching, malformed and opt-out
                ECS options, one through the backend
  flat_rewrite  control octet, query length, query, answer
                (fuzz_flat_rewrite.c): client queries with an IPv4 and an
                IPv6 ECS option, next to a cookie pair and DO

Seed files are named ecs-* and svcb-*; rerunning overwrites them. Usage
(from the repository root):

    /usr/bin/python3 tests/fuzz/seeds_flat_ecs_svcb.py tests/fuzz/corpus
"""
import os
import struct
import sys

import dns.edns
import dns.flags
import dns.message
import dns.rcode
import dns.rdatatype
import dns.rrset

SEP = bytes([0xC0, 0xFE, 0xC0, 0xFE])
CDN = "cdn.example.net."
WWW = "www.example.com."

# byte 2 of fuzz_flat_chase: bits 4-5 type, bits 6-7 subnet.
T_SVCB = 0x10
T_HTTPS = 0x20
S_IP4 = 0x40  # 192.0.2.0/24
S_IP6 = 0x80  # 2001:db8:1200::/40
S_OPTOUT = 0xC0  # 0.0.0.0/0


def ecs_option(family, source, scope, addr):
    """Raw option: OPTION-CODE 8, OPTION-LENGTH, then RFC 7871 6 data."""
    data = struct.pack(">HBB", family, source, scope) + addr
    return dns.edns.GenericOption(8, data)


def answer(qname, qtype, records=(), authority=(), rcode=0, options=None, flags=None):
    """A resolver's answer to qname/qtype; the harness patches ID and question."""
    q = dns.message.make_query(qname, qtype, use_edns=0)
    r = dns.message.make_response(q)
    r.flags = flags if flags is not None else (dns.flags.QR | dns.flags.RD | dns.flags.RA)
    r.set_rcode(rcode)
    for text in records:
        r.answer.append(rr(text))
    for text in authority:
        r.authority.append(rr(text))
    r.use_edns(0, 0, 1232, options=options or [])
    return r.to_wire()


def rr(text):
    """'owner ttl IN type rdata...' to an RRset of one record."""
    owner, ttl, cls, rtype, rdata = text.split(None, 4)
    return dns.rrset.from_text(owner, int(ttl), cls, rtype, rdata)


def raw_answer(qname, qtype, rdatas, options=None):
    """An answer whose RRs carry RDATA as given (dnspython would refuse a
    compressed TargetName): owner a pointer to the question name."""
    q = dns.message.make_query(qname, qtype, use_edns=0)
    r = dns.message.make_response(q)
    r.flags = dns.flags.QR | dns.flags.RD | dns.flags.RA
    r.use_edns(0, 0, 1232, options=options or [])
    wire = bytearray(r.to_wire())
    opt_start = wire.rfind(b"\x00\x00\x29")
    rrs = b"".join(
        struct.pack(">HHHIH", 0xC00C, qtype, 1, 300, len(rd)) + rd for rd in rdatas)
    out = wire[:opt_start] + rrs + wire[opt_start:]
    struct.pack_into(">H", out, 6, len(rdatas))
    return bytes(out)


def chase_seeds():
    seeds = {}
    https = dns.rdatatype.HTTPS
    svcb = dns.rdatatype.SVCB
    soa = "example.net. 120 IN SOA ns.example.net. h.example.net. 1 7200 900 1209600 600"
    seeds["svcb-https-service"] = bytes([0x02, 8, T_HTTPS]) + answer(CDN, https, [
        CDN + " 300 IN HTTPS 1 . alpn=h2,h3 ipv4hint=192.0.2.1 ipv6hint=2001:db8::1",
        CDN + " 200 IN HTTPS 2 svc.example.org. port=8443 ech=AEX+DQBBpQAgACBjb2RlY29kZWNvZGVjb2RlY29kZWNvZGVjb2RlY29kZQAEAAEAAQAAAAA=",
    ])
    seeds["svcb-alias-cname"] = bytes([0x02, 8, T_SVCB]) + answer(CDN, svcb, [
        CDN + " 60 IN CNAME pool.example.org.",
        "pool.example.org. 600 IN SVCB 0 lb.example.org.",
    ])
    seeds["svcb-cname-two-queries"] = (
        bytes([0x02, 8, T_HTTPS]) + answer(CDN, https, [CDN + " 60 IN CNAME edge.example.com."])
        + SEP + answer("edge.example.com.", https, ["edge.example.com. 30 IN HTTPS 1 . alpn=h2"],
                       flags=dns.flags.QR | dns.flags.AA))
    seeds["svcb-https-nodata"] = bytes([0x02, 8, T_HTTPS]) + answer(
        CDN, https, [CDN + " 60 IN A 192.0.2.1"], [soa])
    seeds["svcb-compressed-target"] = (
        bytes([0x04, 8, T_HTTPS]) + raw_answer(CDN, https, [b"\x00\x01\xc0\x0c"]) + SEP
        + raw_answer(CDN, https, [b"\x00\x01\x00\x00\x01\x00\x03\x02h2"]))
    big = [b"\x00\x01\x00\x00\x05" + struct.pack(">H", 300) + bytes([i]) * 300 for i in range(4)]
    seeds["svcb-too-large"] = bytes([0x04, 8, T_HTTPS]) + raw_answer(CDN, https, big)

    a = dns.rdatatype.A
    aaaa = dns.rdatatype.AAAA
    ip4 = b"\xc0\x00\x02"
    seeds["ecs-ip4-scope"] = bytes([0x02, 8, S_IP4]) + answer(
        CDN, a, [CDN + " 300 IN A 192.0.2.7"], options=[ecs_option(1, 24, 16, ip4)])
    seeds["ecs-ip4-chain-scopes"] = bytes([0x02, 8, S_IP4]) + answer(
        CDN, a, [CDN + " 300 IN CNAME b.example.org."], options=[ecs_option(1, 24, 20, ip4)]
    ) + SEP + answer("b.example.org.", a, ["b.example.org. 30 IN A 192.0.2.8"],
                     options=[ecs_option(1, 24, 32, ip4)])
    seeds["ecs-mismatch-then-ok"] = bytes([0x04, 8, S_IP4]) + answer(
        CDN, a, [CDN + " 300 IN A 6.6.6.6"], options=[ecs_option(1, 24, 24, b"\xc6\x33\x64")]
    ) + SEP + answer(CDN, a, [CDN + " 300 IN A 192.0.2.7"], options=[ecs_option(1, 24, 24, ip4)])
    seeds["ecs-malformed-fails-over"] = bytes([0x04, 8, S_IP4]) + answer(
        CDN, a, [CDN + " 300 IN A 6.6.6.6"], options=[ecs_option(1, 24, 33, ip4)]
    ) + SEP + answer(CDN, a, [CDN + " 300 IN A 192.0.2.7"])
    seeds["ecs-ip6-aaaa"] = bytes([0x03, 8, S_IP6]) + answer(
        CDN, aaaa, [CDN + " 300 IN AAAA 2001:db8::7"],
        options=[ecs_option(2, 40, 48, b"\x20\x01\x0d\xb8\x12")])
    seeds["ecs-optout"] = bytes([0x02, 8, S_OPTOUT]) + answer(
        CDN, a, [CDN + " 300 IN A 192.0.2.7"], options=[ecs_option(1, 0, 0, b"")])
    # www.example.com is ours (target 1): the backend gets no subnet.
    seeds["ecs-backend-then-resolver"] = bytes([0x12, 8, S_IP4]) + answer(
        WWW, a, [WWW + " 300 IN CNAME " + CDN], flags=dns.flags.QR | dns.flags.AA
    ) + SEP + answer(CDN, a, [CDN + " 300 IN A 192.0.2.7"], options=[ecs_option(1, 24, 24, ip4)])
    seeds["ecs-https"] = bytes([0x02, 8, S_IP4 | T_HTTPS]) + answer(
        CDN, https, [CDN + " 300 IN HTTPS 1 . alpn=h2"], options=[ecs_option(1, 24, 24, ip4)])
    return seeds


def rewrite_seeds():
    seeds = {}
    cookie = dns.edns.GenericOption(10, bytes(range(1, 9)) + b"\x01\x00\x00\x00" + bytes(range(9, 21)))
    for name, qtype, opts, ctl in (
            ("ecs-rewrite-a", "A", [ecs_option(1, 24, 0, b"\xc0\x00\x02")], 0x10),
            ("ecs-rewrite-aaaa-cookie", "AAAA",
             [cookie, ecs_option(2, 56, 0, b"\x20\x01\x0d\xb8\x01\x02\x03")], 0x98),
            ("ecs-rewrite-optout-small", "A", [ecs_option(1, 0, 0, b"")], 0x48),
    ):
        q = dns.message.make_query("example.test.", qtype, use_edns=0, want_dnssec=True,
                                   options=opts)
        q.id = 4
        qw = q.to_wire()
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        r.answer.append(rr("example.test. 300 IN CNAME cdn.target.test."))
        r.answer.append(rr("cdn.target.test. 60 IN " + qtype +
                           (" 192.0.2.1" if qtype == "A" else " 2001:db8::1")))
        seeds[name] = bytes([ctl]) + struct.pack(">H", len(qw)) + qw + r.to_wire()
    return seeds


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    root = sys.argv[1]
    for target, seeds in (("flat_chase", chase_seeds()), ("flat_rewrite", rewrite_seeds())):
        os.makedirs(os.path.join(root, target), exist_ok=True)
        for name, data in seeds.items():
            with open(os.path.join(root, target, name), "wb") as f:
                f.write(data)


if __name__ == "__main__":
    main()
