#!/usr/bin/env bash
# Many queries in flight with one message ID (DoH clients send ID 0 on
# every query, RFC 8484 4.1): apexd keeps the client's ID towards BIND
# while it can, and past 64 per worker sends the rest under free IDs, so
# every client still gets BIND's answer with its own ID. A TSIG-signed
# query keeps its ID (the signature covers it).
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns

start_named
start_apexd "127.0.0.1:$NAMED_PORT" threads=1

burst() { # N ID: N UDP queries with the same ID from N sockets at once
	"$PY" - "$APEX_PORT" "$1" "$2" <<'PY'
import socket, sys, dns.message
port, n, qid = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
q = dns.message.make_query("www.example.test", "A", use_edns=0)
q.id = qid
wire = q.to_wire()
socks = []
for _ in range(n):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    socks.append(s)
for s in socks:
    s.sendto(wire, ("127.0.0.1", port))
bad = 0
for s in socks:
    try:
        r = dns.message.from_wire(s.recv(4096))
        if r.id != qid or r.rcode() != 0 or not r.answer:
            bad += 1
    except Exception:
        bad += 1
print(f"{n - bad} of {n} right")
sys.exit(1 if bad else 0)
PY
}

check "150 queries with ID 0 at once all answered" burst 150 0
check "150 queries with ID 4242 at once all answered" burst 150 4242
check "answers after the burst still equal BIND's" cmp_q www.example.test A

stop_apexd TERM 10
check "apexd exits 0" test "${APEX_RC:-x}" = 0
busy=$(stat_value id_busy)
check "no query refused for a busy ID (id_busy=$busy)" test "${busy:-x}" = 0
finish
