#!/usr/bin/python3
"""Abusive clients for the limits_* and fault_* integration cases.

Each subcommand opens raw sockets against apexd on 127.0.0.1, misbehaves
in one way for a bounded time, prints one line of `key=value` results and
exits 0 (non-zero only when it could not run at all). The case script
decides what the numbers must be. A subcommand that holds connections
writes --ready FILE once they are all open and keeps them until --hold
seconds have passed or --release FILE appears, so the case can test UDP
service and apexd's memory while the abuse lasts.

  idle      N plain TCP connections that send nothing
  tlsstall  N connections to a TLS port that never finish the handshake
            (nothing at all, or half a ClientHello)
  slowread  pipeline queries over TCP or DoT and never read the answers
  h2flood   one DoH connection opening thousands of HTTP/2 streams,
            written by hand (python has no h2 module here)
  fdfill    open TCP connections, one query each, until apexd stops
            answering; report how many were served and how many refused
"""
import argparse
import base64
import os
import select
import socket
import ssl
import struct
import sys
import time

import dns.message


def query_wire(name, qtype, qid=0):
    q = dns.message.make_query(name, qtype)
    q.id = qid
    return q.to_wire()


def wait_release(args, t0):
    """Until --hold seconds since t0 or the --release file exists."""
    while time.monotonic() - t0 < args.hold:
        if args.release and os.path.exists(args.release):
            return
        time.sleep(0.05)


def mark_ready(args, **info):
    if args.ready:
        with open(args.ready + ".tmp", "w") as f:
            f.write(" ".join(f"{k}={v}" for k, v in info.items()) + "\n")
        os.rename(args.ready + ".tmp", args.ready)


def server_closed(s):
    """True when the server has closed s (EOF or reset); never blocks."""
    try:
        p = select.poll()
        p.register(s, select.POLLIN)
        if not p.poll(0):
            return False
        data = s.recv(65536, socket.MSG_DONTWAIT)
        return data == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def open_many(port, n, send=b""):
    socks, failed = [], 0
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(3)
        try:
            s.connect(("127.0.0.1", port))
            if send:
                s.sendall(send)
            socks.append(s)
        except OSError:
            failed += 1
            s.close()
    return socks, failed


def cmd_idle(args):
    t0 = time.monotonic()
    socks, failed = open_many(args.port, args.count)
    mark_ready(args, opened=len(socks), failed=failed)
    wait_release(args, t0)
    closed = sum(1 for s in socks if server_closed(s))
    print(f"opened={len(socks)} connect_failed={failed} closed_by_server={closed}")
    for s in socks:
        s.close()


# A TLS 1.2/1.3 ClientHello starts with a record header (22, 3.1, length)
# and the handshake header; half of a real one is what a stalled client
# leaves behind. The bytes after the headers do not matter: the server
# waits for the rest of the record.
HALF_HELLO = bytes([22, 3, 1, 0x02, 0x00, 1, 0, 0x01, 0xFC, 3, 3]) + os.urandom(100)


def cmd_tlsstall(args):
    t0 = time.monotonic()
    socks, failed = open_many(args.port, args.count, HALF_HELLO if args.half else b"")
    mark_ready(args, opened=len(socks), failed=failed)
    # Wait for the server to close them all (or --hold to pass).
    pending = {s.fileno(): s for s in socks}
    poll = select.poll()
    for fd in pending:
        poll.register(fd, select.POLLIN)
    closed_at = []
    while pending and time.monotonic() - t0 < args.hold:
        for fd, _ in poll.poll(200):
            if fd in pending and server_closed(pending[fd]):
                closed_at.append(time.monotonic() - t0)
                poll.unregister(fd)
                del pending[fd]
    last = max(closed_at) if closed_at else -1
    print(f"opened={len(socks)} connect_failed={failed} closed_by_server={len(closed_at)} "
          f"still_open={len(pending)} last_close_s={last:.1f}")
    for s in socks:
        s.close()


def tls_connect(port, ca, alpn):
    ctx = ssl.create_default_context(cafile=ca)
    ctx.set_alpn_protocols([alpn])
    raw = socket.create_connection(("127.0.0.1", port), 5)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    return ctx.wrap_socket(raw, server_hostname="localhost")


def cmd_slowread(args):
    """Pipelines queries and reads nothing until --seconds pass; counts
    what it got to send, then drains and counts the answers."""
    if args.tls:
        s = tls_connect(args.port, args.ca, "dot")
    else:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        # A small receive buffer: the backlog builds up on apexd's side.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", args.port))
    s.setblocking(False)
    t0 = time.monotonic()
    sent = 0
    qid = 0
    pending = b""
    mark_ready(args, started=1)
    while time.monotonic() - t0 < args.seconds:
        if not pending:
            w = query_wire(args.name, args.qtype, qid & 0xFFFF)
            qid += 1
            pending = struct.pack("!H", len(w)) + w
        try:
            n = s.send(pending)
            pending = pending[n:]
            if not pending:
                sent += 1
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            time.sleep(0.01)
        except OSError:
            break
    # Closed by apexd while we did not read?
    s.setblocking(True)
    s.settimeout(2)
    got = 0
    buf = b""
    closed = False
    t1 = time.monotonic()
    try:
        while time.monotonic() - t1 < 3:
            d = s.recv(65536)
            if not d:
                closed = True
                break
            buf += d
            while len(buf) >= 2 and len(buf) >= 2 + struct.unpack("!H", buf[:2])[0]:
                buf = buf[2 + struct.unpack("!H", buf[:2])[0]:]
                got += 1
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    print(f"sent={sent} answers_read={got} closed_by_server={int(closed)}")
    s.close()


# --- HTTP/2 by hand -------------------------------------------------------

H2_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def h2_frame(ftype, flags, stream, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack("!I", stream & 0x7FFFFFFF) + payload


def hpack_int(value, prefix_bits, first):
    """RFC 7541 5.1 integer with a prefix of prefix_bits in byte first."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first | value])
    out = [first | limit]
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hpack_literal_indexed_name(index, value):
    """Literal header field without indexing, indexed name (6.2.2)."""
    return hpack_int(index, 4, 0x00) + hpack_int(len(value), 7, 0) + value


def doh_get_block(path):
    # Static table (RFC 7541 appendix A): 2 = :method GET, 7 = :scheme
    # https, 1 = :authority, 4 = :path.
    return bytes([0x82, 0x87]) + hpack_literal_indexed_name(1, b"localhost") + \
        hpack_literal_indexed_name(4, path)


def cmd_h2flood(args):
    s = tls_connect(args.port, args.ca, "h2")
    wire = query_wire(args.name, "A")
    path = (args.path + "?dns=" +
            base64.urlsafe_b64encode(wire).rstrip(b"=").decode()).encode()
    block = doh_get_block(path)
    s.sendall(H2_PREFACE + h2_frame(0x4, 0, 0, b""))
    s.setblocking(False)
    t0 = time.monotonic()
    sent = 0
    out = b""
    stream = 1
    while sent < args.streams and time.monotonic() - t0 < args.seconds:
        if not out:
            # END_STREAM | END_HEADERS
            out = h2_frame(0x1, 0x5, stream, block)
            if args.reset:
                out += h2_frame(0x3, 0, stream, struct.pack("!I", 8))  # RST_STREAM CANCEL
            stream += 2
        try:
            n = s.send(out)
            out = out[n:]
            if not out:
                sent += 1
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            time.sleep(0.01)
        except OSError:
            break
    mark_ready(args, sent=sent)
    # Reading nothing while the case measures apexd.
    wait_release(args, t0)
    # Now read what apexd sent: HEADERS (answers), RST_STREAM, GOAWAY.
    s.setblocking(True)
    s.settimeout(2)
    buf = b""
    counts = {"headers": 0, "rst": 0, "goaway": 0, "data": 0}
    try:
        while True:
            d = s.recv(65536)
            if not d:
                break
            buf += d
            while len(buf) >= 9:
                flen = struct.unpack("!I", b"\0" + buf[:3])[0]
                if len(buf) < 9 + flen:
                    break
                ftype = buf[3]
                name = {0x0: "data", 0x1: "headers", 0x3: "rst", 0x7: "goaway"}.get(ftype)
                if name:
                    counts[name] += 1
                buf = buf[9 + flen:]
    except (socket.timeout, ssl.SSLError, OSError):
        pass
    print(f"streams_sent={sent} " + " ".join(f"{k}={v}" for k, v in counts.items()))
    s.close()


def cmd_fdfill(args):
    """Connections that each ask one query and keep the connection: a
    connection is served if its answer comes, refused if apexd closes
    it or nothing comes within a second."""
    t0 = time.monotonic()
    wire = query_wire(args.name, "A")
    frame = struct.pack("!H", len(wire)) + wire
    served, refused = [], 0
    for _ in range(args.count):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.settimeout(1)
        try:
            s.connect(("127.0.0.1", args.port))
            s.sendall(frame)
            d = s.recv(2)
            if len(d) == 2:
                served.append(s)
                continue
            refused += 1
        except OSError:
            refused += 1
        s.close()
        if refused >= args.stop_after:
            break
    mark_ready(args, served=len(served), refused=refused)
    wait_release(args, t0)
    print(f"served={len(served)} refused={refused}")
    for s in served:
        s.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)

    def common(p):
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--ready", help="file written once the abuse is in place")
        p.add_argument("--release", help="stop holding when this file appears")
        p.add_argument("--hold", type=float, default=10.0, help="hold at most this long (s)")

    p = sub.add_parser("idle")
    common(p)
    p.add_argument("--count", type=int, default=2000)
    p = sub.add_parser("tlsstall")
    common(p)
    p.add_argument("--count", type=int, default=500)
    p.add_argument("--half", action="store_true", help="send half a ClientHello")
    p = sub.add_parser("slowread")
    common(p)
    p.add_argument("--tls", action="store_true", help="DoT instead of plain TCP")
    p.add_argument("--ca")
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--name", default="big.example.test")
    p.add_argument("--qtype", default="TXT")
    p = sub.add_parser("h2flood")
    common(p)
    p.add_argument("--ca", required=True)
    p.add_argument("--path", default="/dns-query")
    p.add_argument("--streams", type=int, default=5000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--name", default="www.example.test")
    p.add_argument("--reset", action="store_true", help="cancel each stream at once")
    p = sub.add_parser("fdfill")
    common(p)
    p.add_argument("--count", type=int, default=2000)
    p.add_argument("--stop-after", type=int, default=20, help="refusals before stopping")
    p.add_argument("--name", default="www.example.test")
    args = ap.parse_args()
    {"idle": cmd_idle, "tlsstall": cmd_tlsstall, "slowread": cmd_slowread,
     "h2flood": cmd_h2flood, "fdfill": cmd_fdfill}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
