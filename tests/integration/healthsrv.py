#!/usr/bin/python3
"""A small server for health check cases (cases/health.sh).

Usage: healthsrv.py ADDR PORT MODE [--cert PEM --key PEM] [--status N]
                    [--log FILE]

Listens on ADDR:PORT (a loopback address such as 127.0.71.2) and, for
every connection:
  tcp   closes it at once (the connect is the check);
  tls   completes a TLS handshake with the certificate given, then closes;
  http  reads the request head and answers "HTTP/1.1 N ..." (default 200)
        with Content-Length: 0, then closes.
Each accepted connection appends "ADDR MODE" and, for http, the request
line and Host to the log file, so the case can see who connected and what
was asked. Runs until killed (SIGTERM), one connection at a time, each
bounded by a 2 s socket timeout.
"""
import argparse
import socket
import ssl
import sys

p = argparse.ArgumentParser()
p.add_argument("addr")
p.add_argument("port", type=int)
p.add_argument("mode", choices=("tcp", "tls", "http"))
p.add_argument("--cert")
p.add_argument("--key")
p.add_argument("--status", type=int, default=200)
p.add_argument("--log")
a = p.parse_args()

ctx = None
if a.mode == "tls":
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((a.addr, a.port))
s.listen(64)
print("listening", a.addr, a.port, a.mode, flush=True)


def log(line):
    if a.log:
        with open(a.log, "a") as f:
            f.write(line + "\n")


while True:
    c, _ = s.accept()
    c.settimeout(2)
    try:
        if a.mode == "tcp":
            log(f"{a.addr} tcp")
        elif a.mode == "tls":
            log(f"{a.addr} tls")
            t = ctx.wrap_socket(c, server_side=True)
            t.close()
        else:
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                b = c.recv(4096)
                if not b:
                    break
                head += b
            lines = head.decode("latin-1").split("\r\n")
            host = next((l for l in lines if l.lower().startswith("host:")), "")
            log(f"{a.addr} http {lines[0]} {host}")
            c.sendall(b"HTTP/1.1 %d X\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                      % a.status)
    except (OSError, ssl.SSLError) as e:
        log(f"{a.addr} {a.mode} error {e}")
    finally:
        try:
            c.close()
        except OSError:
            pass
    sys.stdout.flush()
