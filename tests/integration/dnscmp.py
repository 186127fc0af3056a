#!/usr/bin/python3
"""Send one DNS query to a reference server (BIND, direct) and to a server
under test (apexd in front of that BIND), and compare the answers byte for
byte.

apexd's contract for everything it does not flatten is "relay BIND's bytes
unchanged, message ID included", so equality of the raw wire is the
assertion; dnspython is used only to build queries and to explain a
mismatch (to_text diff plus the first differing offset).

With --test alone (no --ref) it queries one server and only checks the
--expect-* conditions; that is how the cases assert FORMERR, SERVFAIL+EDE or
"no reply" from apexd itself.

Run it with /usr/bin/python3 (Debian's python3-dnspython).

Exit status: 0 equal (and every expectation met), 1 different or an
expectation unmet, 2 error (timeout, refused connection, bad arguments).
"""

import argparse
import binascii
import difflib
import os
import select
import socket
import struct
import sys
import time

try:
    import dns.edns
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.opcode
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    import dns.update
except ImportError as exc:  # pragma: no cover - environment problem
    print(f"dnscmp: cannot import dnspython ({exc}); run with /usr/bin/python3 "
          "and install python3-dnspython", file=sys.stderr)
    sys.exit(2)

EXIT_EQUAL, EXIT_DIFFERENT, EXIT_ERROR = 0, 1, 2
COOKIE_OPTION = 10
EDE_OPTION = 15


class QueryError(Exception):
    """Transport-level failure: timeout, refused, short read."""


def parse_hostport(text):
    """'127.0.0.1:53' or '[::1]:53' -> (family, host, port)."""
    if text.startswith("["):
        host, _, port = text[1:].partition("]:")
        return socket.AF_INET6, host, int(port)
    host, _, port = text.rpartition(":")
    if not host or not port:
        raise argparse.ArgumentTypeError(f"{text!r}: want HOST:PORT or [V6]:PORT")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return family, host, int(port)


def build_query(args):
    """Return the query wire bytes from the command line."""
    if args.hex is not None:
        return binascii.unhexlify("".join(args.hex.split()))

    options = []
    for spec in args.ednsopt or []:
        code, _, data = spec.partition(":")
        options.append(dns.edns.GenericOption(int(code), binascii.unhexlify(data)))
    if args.cookie is not None:
        options.append(dns.edns.GenericOption(COOKIE_OPTION,
                                              binascii.unhexlify(args.cookie)))
    use_edns = 0 if (args.edns or args.do or options or args.payload
                     or args.edns_version is not None) else None
    if args.no_edns:
        use_edns = None
    payload = args.payload or 1232

    if args.no_question:
        msg = dns.message.Message()
        msg.flags = dns.flags.RD
    elif args.present is not None or (args.opcode == dns.opcode.UPDATE and args.name):
        # RFC 2136: zone section = the question, prerequisites in answer.
        msg = dns.update.UpdateMessage(args.name)
        for owner in args.present or []:
            msg.present(dns.name.from_text(owner))
    else:
        if not args.name or not args.type:
            raise SystemExit("dnscmp: NAME and TYPE are required (or --hex)")
        rdtype = dns.rdatatype.from_text(args.type)
        msg = dns.message.make_query(args.name, rdtype,
                                     dns.rdataclass.from_text(args.rdclass))
        if rdtype == dns.rdatatype.IXFR:
            if args.ixfr_serial is None:
                raise SystemExit("dnscmp: IXFR needs --ixfr-serial")
            zone = dns.name.from_text(args.name)
            soa = dns.rrset.from_text(
                zone, 0, "IN", "SOA",
                f". . {args.ixfr_serial} 0 0 0 0")
            msg.authority.append(soa)
    if use_edns is not None:
        msg.use_edns(args.edns_version or 0, dns.flags.DO if args.do else 0, payload,
                     options=options)
    msg.id = 0 if args.id is None else args.id
    wire = bytearray(msg.to_wire())

    # Header fields are patched on the wire so that values dnspython would
    # refuse (unknown opcodes 3, 15, ...) can be sent as well.
    if args.id is None:
        struct.pack_into("!H", wire, 0, struct.unpack("!H", os.urandom(2))[0])
    if args.opcode is not None:
        wire[2] = (wire[2] & 0x87) | ((args.opcode & 0xF) << 3)
    if args.flags is not None:
        flags = dns.flags.from_text(args.flags) if args.flags.strip() else 0
        hdr = struct.unpack("!H", wire[2:4])[0]
        # Keep the opcode and rcode bits; replace QR AA TC RD RA Z AD CD.
        hdr = (hdr & 0x780F) | (flags & 0x87F0)
        struct.pack_into("!H", wire, 2, hdr)
    return bytes(wire)


def recv_exact(sock, count, deadline):
    data = b""
    while len(data) < count:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise QueryError("timeout reading TCP")
        sock.settimeout(remaining)
        try:
            chunk = sock.recv(count - len(data))
        except socket.timeout as exc:
            raise QueryError("timeout reading TCP") from exc
        except OSError as exc:  # reset by peer and the like
            raise QueryError(f"TCP read: {exc}") from exc
        if not chunk:
            raise QueryError(f"connection closed after {len(data)}/{count} bytes")
        data += chunk
    return data


class XfrTracker:
    """Decides when an AXFR/IXFR answer stream is complete (RFC 5936, 1995)."""

    def __init__(self, qtype):
        self.qtype = qtype
        self.first_serial = None
        self.count = 0
        self.incremental = None
        self.in_deletions = False
        self.done = False

    def feed(self, wire):
        msg = dns.message.from_wire(wire, one_rr_per_rrset=True,
                                    ignore_trailing=True)
        if msg.rcode() != dns.rcode.NOERROR:
            self.done = True
            return
        for rrset in msg.answer:
            for rdata in rrset:
                self.count += 1
                is_soa = rrset.rdtype == dns.rdatatype.SOA
                if self.count == 1:
                    if not is_soa:
                        raise QueryError("transfer does not start with SOA")
                    self.first_serial = rdata.serial
                    continue
                if self.count == 2:
                    # IXFR: a second SOA with another serial starts a diff.
                    self.incremental = (self.qtype == dns.rdatatype.IXFR and is_soa
                                        and rdata.serial != self.first_serial)
                    if self.incremental:
                        self.in_deletions = True
                        continue
                if not is_soa:
                    continue
                if not self.incremental:
                    self.done = True
                elif self.in_deletions:
                    self.in_deletions = False
                elif rdata.serial == self.first_serial:
                    self.done = True
                else:
                    self.in_deletions = True
        # An IXFR answered with the SOA alone: the client is up to date.
        if (self.qtype == dns.rdatatype.IXFR and self.count == 1
                and len(msg.answer) == 1):
            self.done = True


def query_tcp(server, wire, timeout, xfr_type):
    family, host, port = server
    deadline = time.monotonic() + timeout
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        try:
            sock.connect((host, port))
            sock.sendall(struct.pack("!H", len(wire)) + wire)
        except OSError as exc:
            raise QueryError(f"TCP {host}:{port}: {exc}") from exc
        messages = []
        tracker = XfrTracker(xfr_type) if xfr_type else None
        while True:
            length = struct.unpack("!H", recv_exact(sock, 2, deadline))[0]
            messages.append(recv_exact(sock, length, deadline))
            if tracker is None:
                return messages
            tracker.feed(messages[-1])
            if tracker.done:
                return messages
            if len(messages) > 10000:
                raise QueryError("transfer does not end")
    finally:
        sock.close()


def query_udp(server, wire, timeout, any_reply=False):
    family, host, port = server
    sock = socket.socket(family, socket.SOCK_DGRAM)
    deadline = time.monotonic() + timeout
    try:
        sock.connect((host, port))
        sock.send(wire)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise QueryError("timeout")
            ready, _, _ = select.select([sock], [], [], remaining)
            if not ready:
                raise QueryError("timeout")
            try:
                data = sock.recv(65535)
            except ConnectionRefusedError as exc:
                raise QueryError(f"UDP {host}:{port}: connection refused") from exc
            # Anything else arriving on this socket is a stray; the real
            # answer carries our ID. When silence is the expectation, or
            # the query has no ID, any datagram at all is a reply.
            if any_reply or len(wire) < 2 or (len(data) >= 2 and data[:2] == wire[:2]):
                return [data]
    finally:
        sock.close()


def mask_cookie(wire, client_cookie, label, problems):
    """Zero the server part of a COOKIE option; report a missing option.

    BIND's server cookie hashes the client address and a timestamp, so two
    answers to the same query legitimately differ there; its presence and
    length are still compared (they stay in the bytes)."""
    at = -1
    pos = wire.find(client_cookie)
    while pos != -1:
        # The client cookie sits right after the option's code and length.
        if pos >= 4 and wire[pos - 4:pos - 2] == struct.pack("!H", COOKIE_OPTION) \
                and struct.unpack("!H", wire[pos - 2:pos])[0] >= 8:
            at = pos - 4
            break
        pos = wire.find(client_cookie, pos + 1)
    if at == -1:
        problems.append(f"{label}: no COOKIE option echoing the client cookie")
        return wire
    optlen = struct.unpack("!H", wire[at + 2:at + 4])[0]
    start = at + 4 + 8
    end = at + 4 + optlen
    return wire[:start] + b"\0" * (end - start) + wire[end:]


def to_text(wire):
    try:
        return dns.message.from_wire(wire, ignore_trailing=True).to_text()
    except Exception as exc:  # noqa: BLE001 - any parse error is explained
        return f"(unparsable: {exc})\n{binascii.hexlify(wire).decode()}"


def summary(wire):
    try:
        msg = dns.message.from_wire(wire, ignore_trailing=True)
    except Exception as exc:  # noqa: BLE001
        if len(wire) >= 12:
            hdr = struct.unpack("!HH", wire[:4])
            return (f"id={hdr[0]} opcode={(hdr[1] >> 11) & 0xF} "
                    f"rcode={dns.rcode.to_text(hdr[1] & 0xF)} "
                    f"({exc}), {len(wire)} bytes")
        return f"unparsable ({exc}), {len(wire)} bytes"
    return (f"id={msg.id} opcode={dns.opcode.to_text(msg.opcode())} "
            f"rcode={dns.rcode.to_text(msg.rcode())} "
            f"flags=[{dns.flags.to_text(msg.flags)}] an={sum(len(r) for r in msg.answer)} "
            f"ns={sum(len(r) for r in msg.authority)} "
            f"ar={sum(len(r) for r in msg.additional)} {len(wire)} bytes")


def ede_codes(wire):
    msg = dns.message.from_wire(wire, ignore_trailing=True)
    codes = []
    for opt in msg.options or []:
        if opt.otype == EDE_OPTION:
            data = getattr(opt, "data", None)
            if data is None and hasattr(opt, "code"):
                codes.append(int(opt.code))
            elif data is not None and len(data) >= 2:
                codes.append(struct.unpack("!H", data[:2])[0])
    return codes


def check_expectations(args, label, messages, query):
    problems = []
    first = messages[0]
    if first[:2] != query[:2]:
        problems.append(f"{label}: reply ID {first[:2].hex()} != query ID {query[:2].hex()}")
    if len(first) < 12:
        problems.append(f"{label}: reply of {len(first)} bytes, shorter than a header")
        return problems
    # rcode and flags come from the header itself, so that answers dnspython
    # refuses to parse (unknown opcode, say) can still be checked.
    hdr_flags = struct.unpack("!H", first[2:4])[0]
    msg = None
    try:
        msg = dns.message.from_wire(first, ignore_trailing=True)
        rcode = msg.rcode()
    except Exception as exc:  # noqa: BLE001
        rcode = hdr_flags & 0xF
        if (args.expect_min_answers is not None or args.expect_edns is not None
                or args.expect_ede is not None):
            problems.append(f"{label}: reply does not parse: {exc}")
            return problems
    if args.expect_rcode is not None:
        want = dns.rcode.from_text(args.expect_rcode)
        if rcode != want:
            problems.append(f"{label}: rcode {dns.rcode.to_text(rcode)}, "
                            f"expected {args.expect_rcode}")
    for flag in args.expect_flag or []:
        negate = flag.startswith("!")
        bit = dns.flags.from_text(flag.lstrip("!"))
        if bool(hdr_flags & bit) == negate:
            problems.append(f"{label}: flag {flag.lstrip('!')} is "
                            f"{'set' if negate else 'clear'}, expected "
                            f"{'clear' if negate else 'set'}")
    if args.expect_min_answers is not None:
        total = 0
        for wire in messages:
            part = dns.message.from_wire(wire, one_rr_per_rrset=True,
                                         ignore_trailing=True)
            total += len(part.answer)
        if total < args.expect_min_answers:
            problems.append(f"{label}: {total} answer RRs, expected >= "
                            f"{args.expect_min_answers}")
    if args.expect_min_messages is not None and len(messages) < args.expect_min_messages:
        problems.append(f"{label}: {len(messages)} messages, expected >= "
                        f"{args.expect_min_messages}")
    if args.expect_edns is not None:
        has = msg.edns >= 0
        if has != (args.expect_edns == "yes"):
            problems.append(f"{label}: OPT record {'present' if has else 'absent'}, "
                            f"expected {'present' if not has else 'absent'}")
    if args.expect_ede is not None:
        codes = ede_codes(first)
        if args.expect_ede < 0:
            if codes:
                problems.append(f"{label}: EDE {codes} present, expected none")
        elif args.expect_ede not in codes:
            problems.append(f"{label}: EDE codes {codes}, expected {args.expect_ede}")
    return problems


def ask(args, label, server, query, qtype):
    """Query one server; returns the list of messages or None on no reply."""
    try:
        if args.tcp:
            return query_tcp(server, query, args.timeout, qtype)
        return query_udp(server, query, args.timeout, any_reply=args.expect_no_reply)
    except QueryError as exc:
        if args.expect_no_reply:
            return None
        print(f"ERROR {label} {server[1]}:{server[2]}: {exc}", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", nargs="?")
    parser.add_argument("type", nargs="?")
    parser.add_argument("--ref", type=parse_hostport,
                        help="reference server (BIND direct), HOST:PORT")
    parser.add_argument("--test", type=parse_hostport, required=True,
                        help="server under test (apexd), HOST:PORT")
    parser.add_argument("--class", dest="rdclass", default="IN")
    parser.add_argument("--tcp", action="store_true")
    parser.add_argument("--edns", action="store_true", help="add OPT (default: none)")
    parser.add_argument("--no-edns", action="store_true")
    parser.add_argument("--payload", type=int, help="EDNS UDP payload size (implies --edns)")
    parser.add_argument("--do", action="store_true", help="DO bit (implies --edns)")
    parser.add_argument("--edns-version", type=int, help="EDNS version (implies --edns)")
    parser.add_argument("--ednsopt", action="append",
                        help="extra EDNS option CODE:HEX (implies --edns), repeatable")
    parser.add_argument("--opcode", type=int)
    parser.add_argument("--flags", help='header flags, e.g. "RD CD" or "" (default RD)')
    parser.add_argument("--id", type=int)
    parser.add_argument("--hex", help="send these raw bytes instead")
    parser.add_argument("--no-question", action="store_true", help="QDCOUNT=0")
    parser.add_argument("--cookie", help="client cookie, 16 hex digits; masks the server part")
    parser.add_argument("--present", action="append",
                        help="UPDATE prerequisite 'name is in use' (NAME is the zone)")
    parser.add_argument("--ixfr-serial", type=int)
    parser.add_argument("--timeout", type=float, default=3.0)
    parser.add_argument("--expect-rcode")
    parser.add_argument("--expect-flag", action="append", help="TC or !TC, repeatable")
    parser.add_argument("--expect-min-answers", type=int)
    parser.add_argument("--expect-min-messages", type=int)
    parser.add_argument("--expect-edns", choices=("yes", "no"))
    parser.add_argument("--expect-ede", type=int, help="EDE info-code; -1 = no EDE")
    parser.add_argument("--expect-no-reply", action="store_true",
                        help="success is silence until --timeout")
    args = parser.parse_args()
    if args.cookie is not None and len(args.cookie) != 16:
        parser.error("--cookie wants 16 hex digits (8 bytes)")

    try:
        query = build_query(args)
    except (dns.exception.DNSException, ValueError, binascii.Error) as exc:
        print(f"ERROR cannot build the query: {exc}", file=sys.stderr)
        return EXIT_ERROR
    qtype = None
    if args.type and args.type.upper() in ("AXFR", "IXFR"):
        qtype = dns.rdatatype.from_text(args.type)
        if not args.tcp:
            qtype = None    # over UDP: one datagram, whatever BIND says
    what = " ".join(x for x in (args.name, args.type) if x) or "raw"
    what += " tcp" if args.tcp else " udp"

    targets = [("test", args.test)]
    if args.ref is not None:
        targets.insert(0, ("ref", args.ref))
    answers = {}
    for label, server in targets:
        answers[label] = ask(args, label, server, query, qtype)

    if args.expect_no_reply:
        got = [label for label, msgs in answers.items() if msgs is not None]
        if got:
            for label in got:
                print(f"FAIL {what}: {label} replied although no reply was expected: "
                      f"{summary(answers[label][0])}")
            return EXIT_DIFFERENT
        print(f"OK {what}: no reply, as expected")
        return EXIT_EQUAL

    problems = []
    for label, msgs in answers.items():
        problems += check_expectations(args, label, msgs, query)

    if args.cookie is not None:
        client = binascii.unhexlify(args.cookie)
        for label in answers:
            answers[label] = [mask_cookie(w, client, label, problems)
                              for w in answers[label]]

    if args.ref is not None:
        ref, test = answers["ref"], answers["test"]
        if len(ref) != len(test):
            problems.append(f"ref sent {len(ref)} messages, test sent {len(test)}")
        for i, (a, b) in enumerate(zip(ref, test)):
            if a == b:
                continue
            offset = next((j for j in range(min(len(a), len(b))) if a[j] != b[j]),
                          min(len(a), len(b)))
            problems.append(f"message {i}: bytes differ at offset {offset} "
                            f"(ref {len(a)} bytes, test {len(b)} bytes)")
            diff = difflib.unified_diff(to_text(a).splitlines(), to_text(b).splitlines(),
                                        "ref (BIND direct)", "test (through apexd)",
                                        lineterm="")
            problems.append("\n".join(diff) or
                            f"(same text)\nref  {a.hex()}\ntest {b.hex()}")

    if problems:
        print(f"FAIL {what}:")
        for line in problems:
            print("  " + line.replace("\n", "\n  "))
        return EXIT_DIFFERENT
    msgs = answers["test"]
    more = f" ({len(msgs)} messages)" if len(msgs) > 1 else ""
    mode = "equal" if args.ref is not None else "as expected"
    print(f"OK {what}: {mode}: {summary(msgs[0])}{more}")
    return EXIT_EQUAL


if __name__ == "__main__":
    sys.exit(main())
