#!/usr/bin/python3
"""tests/fuzz/seeds_codec_svcb.py - writes the seed corpus of
fuzz_codec_svcb: SVCB/HTTPS RDATA from the RFC 9460 appendix D vectors,
CDN-like HTTPS records with every known key (alpn, no-default-alpn, port,
ipv4hint, ech, ipv6hint, mandatory), unknown keys, and broken ones (keys
out of order, a missing mandatory key, bad value lengths, a compressed
TargetName, truncation).

    /usr/bin/python3 tests/fuzz/seeds_codec_svcb.py tests/fuzz/corpus/codec_svcb
"""
import ipaddress
import os
import struct
import sys


def name(text):
    out = b""
    for label in text.rstrip(".").split("."):
        if label:
            out += bytes([len(label)]) + label.encode()
    return out + b"\x00"


def param(key, value):
    return struct.pack(">HH", key, len(value)) + value


def rdata(prio, target, *params):
    return struct.pack(">H", prio) + name(target) + b"".join(params)


def alpn(*ids):
    return param(1, b"".join(bytes([len(i)]) + i.encode() for i in ids))


def v4(*a):
    return param(4, b"".join(ipaddress.IPv4Address(x).packed for x in a))


def v6(*a):
    return param(6, b"".join(ipaddress.IPv6Address(x).packed for x in a))


ECH = struct.pack(">H", 12) + struct.pack(">HH", 0xFE0D, 8) + bytes(range(8))

SEEDS = {
    "alias": rdata(0, "foo.example.com."),
    "alias_root": rdata(0, "."),
    "service_root": rdata(1, "."),
    "port53": rdata(16, "foo.example.com.", param(3, b"\x00\x35")),
    "key667": rdata(1, "foo.example.com.", param(667, b"hello")),
    "ipv6hint": rdata(1, "foo.example.com.", v6("2001:db8::1", "2001:db8::53:1")),
    "mandatory": rdata(16, "foo.example.org.", param(0, b"\x00\x01\x00\x04"), alpn("h2", "h3-19"),
                       v4("192.0.2.1")),
    "alpn_escapes": rdata(16, "foo.example.org.", alpn("f\\oo,bar", "h2")),
    "cdn_full": rdata(1, ".", alpn("h3", "h2"), param(2, b""), param(3, b"\x01\xbb"),
                      v4("192.0.2.1", "192.0.2.2"), param(5, ECH), v6("2001:db8::1")),
    "cdn_target": rdata(2, "svc.cdn.example.net.", alpn("h2"), param(3, b"\x20\xfb")),
    "bad_order": rdata(1, ".", param(3, b"\x00\x35"), alpn("h2")),
    "bad_dup": rdata(1, ".", param(3, b"\x00\x35"), param(3, b"\x00\x36")),
    "bad_mandatory_missing": rdata(1, ".", param(0, b"\x00\x04"), alpn("h2")),
    "bad_mandatory_self": rdata(1, ".", param(0, b"\x00\x00\x00\x01"), alpn("h2")),
    "bad_port": rdata(1, ".", param(3, b"\x35")),
    "bad_v4": rdata(1, ".", param(4, b"\xc0\x00\x02")),
    "bad_ech": rdata(1, ".", param(5, b"\x00\x05\xfe\x0d\x00")),
    "bad_alpn_empty_id": rdata(1, ".", param(1, b"\x00")),
    "bad_ndalpn_value": rdata(1, ".", alpn("h2"), param(2, b"\x00")),
    "bad_key65535": rdata(1, ".", param(65535, b"")),
    "bad_pointer": b"\x00\x01\xc0\x0c",
    "bad_truncated": rdata(1, ".", alpn("h3", "h2"))[:-1],
    "bad_short": b"\x00",
}


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for fn, data in SEEDS.items():
        with open(os.path.join(out, fn), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
