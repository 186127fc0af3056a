#!/usr/bin/python3
"""Loopback listeners for the health check benchmarks (bench/health.sh,
bench/profile.sh with HEALTH=...).

Usage: health_listen.py PORT ADDR... [--file F] [--tls CERT KEY]

Listens on PORT at every ADDR (IPv4 loopback addresses such as
127.51.100.0, or ::1), plus every address listed in F (one a line), and
accepts and closes each connection at once; with --tls it completes a TLS
handshake first. One thread, non-blocking sockets, a selector: a thousand
addresses cost it nothing while idle. Prints "listening N" once every
socket is bound; runs until killed.
"""
import argparse
import resource
import selectors
import socket
import ssl

p = argparse.ArgumentParser()
p.add_argument("port", type=int)
p.add_argument("addrs", nargs="*")
p.add_argument("--file")
p.add_argument("--tls", nargs=2, metavar=("CERT", "KEY"))
a = p.parse_args()

addrs = list(a.addrs)
if a.file:
    with open(a.file) as f:
        addrs += [l.strip() for l in f if l.strip()]
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = min(hard, len(addrs) + 256)
if soft < want:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))

ctx = None
if a.tls:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.tls[0], a.tls[1])

sel = selectors.DefaultSelector()
for addr in addrs:
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_STREAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((addr, a.port))
    s.listen(64)
    s.setblocking(False)
    sel.register(s, selectors.EVENT_READ)
print("listening", len(addrs), flush=True)

while True:
    for key, _ in sel.select():
        try:
            c, _ = key.fileobj.accept()
        except OSError:
            continue
        if ctx is not None:
            c.settimeout(2)
            try:
                ctx.wrap_socket(c, server_side=True).close()
            except (OSError, ssl.SSLError):
                pass
        c.close()
