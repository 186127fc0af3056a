#!/usr/bin/python3
"""tests/fuzz/seeds_codec_proxyv2.py - writes the seed corpus of
fuzz_codec_proxyv2: PROXY protocol v2 headers as dnsdist and haproxy send
them (TCP and UDP, IPv4 and IPv6, with a DNS query or TLS bytes after
them), LOCAL health checks, TLVs (ALPN, SNI, SSL with sub-TLVs, NOOP,
CRC32C, custom types), UNSPEC and UNIX, and broken ones (version,
command, family, short address blocks, overrunning TLVs, the length
bound, the text format of version 1, a bare DNS query).

    /usr/bin/python3 tests/fuzz/seeds_codec_proxyv2.py tests/fuzz/corpus/codec_proxyv2
"""
import ipaddress
import os
import struct
import sys

SIG = b"\r\n\r\n\x00\r\nQUIT\n"
# A DNS query for www.example.test A, as it follows a header.
QUERY = bytes.fromhex("12340100000100000000000003777777076578616d706c650474657374" "0000010001")


def header(ver_cmd, fam, body):
    return SIG + bytes([ver_cmd, fam]) + struct.pack(">H", len(body)) + body


def addrs(src, sport, dst, dport):
    s, d = ipaddress.ip_address(src), ipaddress.ip_address(dst)
    return s.packed + d.packed + struct.pack(">HH", sport, dport)


def tlv(t, v):
    return bytes([t]) + struct.pack(">H", len(v)) + v


def seeds():
    v4 = addrs("198.51.100.7", 40000, "192.0.2.53", 53)
    v6 = addrs("2001:db8::7", 5353, "2001:db8:1::53", 53)
    ssl = bytes([0x07]) + b"\x00\x00\x00\x00" + tlv(0x21, b"TLSv1.3") + tlv(
        0x23, b"TLS_AES_256_GCM_SHA384") + tlv(0x22, b"client.example.test")
    yield "udp4_query", header(0x21, 0x12, v4) + QUERY
    yield "udp6_query", header(0x21, 0x22, v6) + QUERY
    yield "tcp4_framed", header(0x21, 0x11, v4) + struct.pack(">H", len(QUERY)) + QUERY
    yield "tcp6_tls", header(0x21, 0x21, v6) + bytes.fromhex("160301020001")
    yield "mapped_v6", header(0x21, 0x21, addrs("::ffff:203.0.113.9", 1, "::1", 853))
    yield "local_unspec", header(0x20, 0x00, b"") + QUERY
    yield "local_with_block", header(0x20, 0x11, v4)
    yield "proxy_unspec", header(0x21, 0x00, b"")
    yield "proxy_inet_unspec_tr", header(0x21, 0x10, v4)
    yield "unix_stream", header(0x21, 0x31, b"/run/lb.sock".ljust(108, b"\0") * 2)
    yield "tlvs_haproxy", header(0x21, 0x11, v4 + tlv(0x01, b"dot") + tlv(
        0x02, b"dns.example.test") + tlv(0x20, ssl) + tlv(0x05, bytes(range(16))))
    yield "tlvs_noop_crc_custom", header(0x21, 0x21, v6 + tlv(0x04, b"") + tlv(
        0x03, b"\x00\x00\x00\x00") + tlv(0xe0, b"dnsdist") + tlv(0xf7, b"x" * 40))
    yield "max_len", header(0x21, 0x11, v4 + tlv(0x04, b"\0" * (1024 - 16 - 12 - 3)))
    yield "bad_too_long", header(0x21, 0x11, v4 + tlv(0x04, b"\0" * (1024 - 16 - 12 - 2)))
    yield "bad_len_ffff", SIG + b"\x21\x11\xff\xff" + v4
    yield "bad_version1", header(0x11, 0x11, v4)
    yield "bad_command", header(0x2f, 0x11, v4)
    yield "bad_family", header(0x21, 0x41, v4)
    yield "bad_transport", header(0x21, 0x13, v4)
    yield "bad_v6_short", header(0x21, 0x21, v4)
    yield "bad_tlv_overrun", header(0x21, 0x11, v4 + b"\x01\x00\x09dot")
    yield "bad_tlv_leftover", header(0x21, 0x11, v4 + b"\x04\x00")
    yield "bad_partial", header(0x21, 0x11, v4)[:20]
    yield "bad_text_v1", b"PROXY TCP4 198.51.100.7 192.0.2.53 40000 53\r\n" + QUERY
    yield "bad_dns_only", QUERY
    yield "bad_sig_only", SIG


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, data in seeds():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
