#!/usr/bin/python3
"""Long-lived DNS-over-TCP and DNS-over-TLS connections that keep asking,
for the steering case (steer.sh): apexd may hand a connection to another
worker between two queries (proxy/listen/move.c), and a client must never
notice: no reset, no lost or wrong answer, no reconnect.

Each connection is a thread that sends a query, waits for its answer
(matching ID and question, NOERROR), sleeps --interval and asks again,
on the same socket, until the --stop file exists or --max seconds pass.
Prints one summary line; exit 0 when every query on every connection was
answered, 1 otherwise (each failure is printed), 2 on a usage error.

Run with /usr/bin/python3 (Debian's python3-dnspython).
"""

import argparse
import os
import socket
import ssl
import struct
import sys
import threading
import time

import dns.message
import dns.rcode


def recv_exact(sock, n):
    buf = b""
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError("connection closed by apexd")
        buf += chunk
    return buf


# Names the flat backend's example.test holds, with an A record each.
NAMES = ("mail.example.test", "ns1.example.test", "host.example.test")

_ready_lock = threading.Lock()
_ready_left = 0


def first_answer(args):
    """Writes --ready once every connection has had its first answer."""
    global _ready_left
    with _ready_lock:
        _ready_left -= 1
        if _ready_left == 0 and args.ready:
            with open(args.ready, "w") as f:
                f.write("ready\n")


def client(kind, idx, args, ctx, results):
    asked = answered = 0
    errors = []
    try:
        raw = socket.create_connection(("127.0.0.1", args.tcp_port if kind == "tcp" else args.dot_port),
                                       timeout=args.timeout)
        sock = ctx.wrap_socket(raw, server_hostname="localhost") if kind == "dot" else raw
        deadline = time.monotonic() + args.max
        while not os.path.exists(args.stop) and time.monotonic() < deadline:
            name = NAMES[(idx + asked) % len(NAMES)]
            q = dns.message.make_query(name, "A")
            wire = q.to_wire()
            asked += 1
            sock.sendall(struct.pack("!H", len(wire)) + wire)
            (n,) = struct.unpack("!H", recv_exact(sock, 2))
            r = dns.message.from_wire(recv_exact(sock, n))
            if r.id != q.id or r.question != q.question or r.rcode() != dns.rcode.NOERROR:
                errors.append(f"{kind}#{idx}: query {asked} ({name}) answered "
                              f"id {r.id} (asked {q.id}), {dns.rcode.to_text(r.rcode())}")
                break
            answered += 1
            if answered == 1:
                first_answer(args)
            time.sleep(args.interval)
        sock.close()
    except Exception as e:  # the failure is the result
        errors.append(f"{kind}#{idx}: after {answered} answers: {type(e).__name__}: {e}")
    results.append((kind, asked, answered, errors))


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--tcp-port", type=int, required=True)
    p.add_argument("--dot-port", type=int, required=True)
    p.add_argument("--ca", required=True)
    p.add_argument("--tcp", type=int, default=6, help="TCP connections")
    p.add_argument("--dot", type=int, default=6, help="DoT connections")
    p.add_argument("--interval", type=float, default=0.1)
    p.add_argument("--timeout", type=float, default=10.0, help="per answer, seconds")
    p.add_argument("--max", type=float, default=120.0, help="seconds at most")
    p.add_argument("--stop", required=True, help="stop once this file exists")
    p.add_argument("--ready", help="a file written once every connection had an answer")
    args = p.parse_args()

    global _ready_left
    _ready_left = args.tcp + args.dot
    ctx = ssl.create_default_context(cafile=args.ca)
    results = []
    threads = [threading.Thread(target=client, args=("tcp", i, args, ctx, results))
               for i in range(args.tcp)]
    threads += [threading.Thread(target=client, args=("dot", i, args, ctx, results))
                for i in range(args.dot)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    asked = sum(r[1] for r in results)
    answered = sum(r[2] for r in results)
    errors = [e for r in results for e in r[3]]
    print(f"conns={len(results)} asked={asked} answered={answered} errors={len(errors)}")
    for e in errors:
        print(e)
    return 0 if not errors and asked == answered and answered > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
