#!/usr/bin/python3
"""Reads a dnstap capture (a Frame Streams file, as fstrm_capture writes)
and prints one JSON object per message, for the dnstap cases to assert on.

dnstap-ldns (Debian 12: 0.2.1) is the reference reader the cases also run,
but it prints text, cannot show the exact bytes of a message, and predates
the DOT and DOH socket protocols (its YAML output stops at the first one).
This reader is independent of apexd's encoder: it follows the Frame
Streams specification and the protocol buffer wire format, and knows the
field numbers of dnstap.proto.

    tapdec.py FILE            JSON lines: type, proto, family, qaddr, qport,
                              raddr, rport, qtime, rtime, query, response
                              (hex), identity, version
"""
import ipaddress
import json
import struct
import sys

MSG_TYPES = {1: "AUTH_QUERY", 2: "AUTH_RESPONSE", 3: "RESOLVER_QUERY",
             4: "RESOLVER_RESPONSE", 5: "CLIENT_QUERY", 6: "CLIENT_RESPONSE",
             7: "FORWARDER_QUERY", 8: "FORWARDER_RESPONSE"}
PROTOS = {1: "UDP", 2: "TCP", 3: "DOT", 4: "DOH"}
FAMILIES = {1: "INET", 2: "INET6"}
CONTENT_TYPE = b"protobuf:dnstap.Dnstap"


def varint(buf, pos):
    v = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("varint runs past the end")
        b = buf[pos]
        pos += 1
        v |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return v, pos
        if shift > 63:
            raise ValueError("varint too long")


def fields(buf):
    """(field number, wire type, value) for each field of a message."""
    pos = 0
    while pos < len(buf):
        key, pos = varint(buf, pos)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, pos = varint(buf, pos)
        elif wt == 2:
            n, pos = varint(buf, pos)
            if pos + n > len(buf):
                raise ValueError("field %d runs past the end" % num)
            v, pos = buf[pos:pos + n], pos + n
        elif wt == 5:
            v, pos = struct.unpack_from("<I", buf, pos)[0], pos + 4
        elif wt == 1:
            v, pos = struct.unpack_from("<Q", buf, pos)[0], pos + 8
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def message(buf):
    out = {}
    wire = {}
    for num, wt, v in fields(buf):
        wire[num] = wt
        if num == 1:
            out["type"] = MSG_TYPES.get(v, v)
        elif num == 2:
            out["family"] = FAMILIES.get(v, v)
        elif num == 3:
            out["proto"] = PROTOS.get(v, v)
        elif num in (4, 5):
            out["qaddr" if num == 4 else "raddr"] = str(ipaddress.ip_address(bytes(v)))
        elif num in (6, 7):
            out["qport" if num == 6 else "rport"] = v
        elif num in (8, 12):
            key = "qtime" if num == 8 else "rtime"
            out[key] = v + out.get(key, 0)
        elif num in (9, 13):
            key = "qtime" if num == 9 else "rtime"
            out[key] = out.get(key, 0) + v / 1e9
        elif num in (10, 14):
            out["query" if num == 10 else "response"] = bytes(v).hex()
    # dnstap.proto: times' nanoseconds are fixed32, everything else here a
    # varint or bytes.
    expect = {1: 0, 2: 0, 3: 0, 4: 2, 5: 2, 6: 0, 7: 0, 8: 0, 9: 5, 10: 2, 12: 0, 13: 5,
              14: 2}
    for num, wt in wire.items():
        if num in expect and expect[num] != wt:
            raise ValueError("Message field %d has wire type %d" % (num, wt))
    return out


def dnstap(buf):
    out = {}
    for num, _, v in fields(buf):
        if num == 1:
            out["identity"] = bytes(v).decode()
        elif num == 2:
            out["version"] = bytes(v).decode()
        elif num == 14:
            out.update(message(v))
        elif num == 15:
            out["dnstap_type"] = v
    return out


def frames(data):
    """Data frames of a Frame Streams file; checks START's content type."""
    pos = 0
    started = False
    while pos + 4 <= len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        pos += 4
        if n != 0:
            if not started:
                raise ValueError("data frame before START")
            yield data[pos:pos + n]
            pos += n
            continue
        (clen,) = struct.unpack_from(">I", data, pos)
        ctl = data[pos + 4:pos + 4 + clen]
        pos += 4 + clen
        (ctype,) = struct.unpack_from(">I", ctl, 0)
        if ctype == 2:  # START
            if CONTENT_TYPE not in ctl:
                raise ValueError("START without content type %s" % CONTENT_TYPE.decode())
            started = True
        elif ctype == 3:  # STOP
            return
    if pos != len(data):
        raise ValueError("%d bytes after the last frame" % (len(data) - pos))


def main():
    with open(sys.argv[1], "rb") as f:
        data = f.read()
    for fr in frames(data):
        print(json.dumps(dnstap(fr), sort_keys=True))


if __name__ == "__main__":
    main()
