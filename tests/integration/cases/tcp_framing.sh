#!/usr/bin/env bash
# DNS over TCP framing (RFC 7766) on apexd's listener, with raw sockets:
# pipelining, length prefix and body split across writes, the idle
# timeout, and max-connections.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns
start_named

TCPPY=$T_DIR/tcp.py
cat >"$TCPPY" <<'PY'
"""Raw-socket TCP checks against apexd; BIND direct is the reference."""
import socket, struct, sys, time
import dns.message, dns.rdatatype

def query(name, rdtype="A", qid=0):
    q = dns.message.make_query(name, rdtype)
    q.id = qid
    return q.to_wire()

def frame(wire):
    return struct.pack("!H", len(wire)) + wire

def connect(port, timeout=3.0):
    s = socket.create_connection(("127.0.0.1", port), timeout)
    s.settimeout(timeout)
    return s

def read_msg(s):
    def exact(n):
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                raise EOFError(f"closed after {len(buf)}/{n} bytes")
            buf += chunk
        return buf
    return exact(struct.unpack("!H", exact(2))[0])

def direct(ref, wire):
    s = connect(ref)
    s.sendall(frame(wire))
    msg = read_msg(s)
    s.close()
    return msg

def pipeline(port, ref):
    names = [("www.example.test", "A"), ("example.test", "SOA"), ("big.example.test", "TXT"),
             ("nothere.example.test", "A"), ("example.test", "MX")]
    queries = {}
    for i in range(20):
        name, rdtype = names[i % len(names)]
        qid = 1000 + i
        queries[qid] = query(name, rdtype, qid)
    s = connect(port)
    s.sendall(b"".join(frame(w) for w in queries.values()))   # one write, 20 messages
    got = {}
    for _ in range(20):
        msg = read_msg(s)
        got[struct.unpack("!H", msg[:2])[0]] = msg
    s.close()
    if set(got) != set(queries):
        sys.exit(f"IDs answered {sorted(got)} != sent {sorted(queries)}")
    for qid, wire in queries.items():
        want = direct(ref, wire)
        if got[qid] != want:
            sys.exit(f"answer to ID {qid} differs from BIND's")
    print("20 answers, IDs matched, bytes equal to BIND's")

def split(port, ref, cut, delay=0.4):
    wire = query("www.example.test", "A", 4242)
    data = frame(wire)
    s = connect(port)
    s.sendall(data[:cut])
    time.sleep(delay)
    s.sendall(data[cut:])
    msg = read_msg(s)
    # A second query on the same connection still works after the split.
    s.sendall(frame(query("example.test", "SOA", 4243)))
    msg2 = read_msg(s)
    s.close()
    if msg != direct(ref, wire) or struct.unpack("!H", msg2[:2])[0] != 4243:
        sys.exit("answer after split write differs")
    print(f"split at byte {cut}: answered")

def closed_within(s, limit):
    """True if the peer closes (EOF or reset) within limit seconds."""
    s.settimeout(limit)
    t0 = time.monotonic()
    try:
        data = s.recv(1)
        if data:
            sys.exit(f"unexpected data {data!r}")
    except socket.timeout:
        return None
    except ConnectionResetError:
        pass
    return time.monotonic() - t0

def idle(port):
    s = connect(port)
    took = closed_within(s, 5.0)
    if took is None:
        sys.exit("idle connection not closed within 5 s")
    print(f"idle connection closed after {took:.1f} s")
    # Also after an answered query: the idle clock restarts, then closes.
    s = connect(port)
    s.sendall(frame(query("www.example.test", "A", 7)))
    read_msg(s)
    took = closed_within(s, 5.0)
    if took is None:
        sys.exit("connection idle after a query not closed within 5 s")
    print(f"idle after a query: closed after {took:.1f} s")

def served(s, qid):
    s.sendall(frame(query("www.example.test", "A", qid)))
    return struct.unpack("!H", read_msg(s)[:2])[0] == qid

def limit(port, maxconn):
    held = []
    for i in range(maxconn):
        s = connect(port)
        if not served(s, 100 + i):
            sys.exit(f"connection {i + 1} of {maxconn} not served")
        held.append(s)
    extra = connect(port, 2.0)   # the kernel may complete the handshake
    try:
        if served(extra, 999):
            sys.exit(f"connection {maxconn + 1} was served although max-connections = {maxconn}")
    except (EOFError, ConnectionError, socket.timeout, OSError) as exc:
        print(f"connection {maxconn + 1}: not served ({type(exc).__name__})")
    extra.close()
    for i, s in enumerate(held):   # the held ones are still fine
        if not served(s, 200 + i):
            sys.exit(f"held connection {i + 1} stopped working")
    held.pop().close()
    deadline = time.monotonic() + 3.0
    while True:   # apexd notices the close asynchronously
        try:
            s = connect(port, 1.0)
            if served(s, 300):
                s.close()
                break
        except (EOFError, ConnectionError, socket.timeout, OSError):
            pass
        if time.monotonic() > deadline:
            sys.exit("after closing one connection, a new one is still not served")
        time.sleep(0.2)
    print(f"{maxconn} served, {maxconn + 1}th refused, a slot freed by a close is reused")
    for s in held:
        s.close()

def halfclose(port, ref):
    """RFC 7766 6.2.4: a client may shut down its sending side after the
    query; the server still answers."""
    wire = query("www.example.test", "A", 77)
    s = connect(port)
    s.sendall(frame(wire))
    s.shutdown(socket.SHUT_WR)
    if read_msg(s) != direct(ref, wire):
        sys.exit("answer after half-close differs from BIND's")
    s.close()
    print("answered after the client's half-close")

def bulk(port, ref, count):
    """count pipelined queries for a 2 KB answer each, answers read only
    after every query is sent: apexd must queue its writes, not drop."""
    wire = query("big.example.test", "TXT", 0)
    want = direct(ref, wire)[2:]
    s = connect(port, 10.0)
    s.sendall(b"".join(frame(struct.pack("!H", i) + wire[2:]) for i in range(count)))
    seen = set()
    for _ in range(count):
        msg = read_msg(s)
        qid = struct.unpack("!H", msg[:2])[0]
        if msg[2:] != want:
            sys.exit(f"answer {qid} differs from BIND's")
        seen.add(qid)
    s.close()
    if seen != set(range(count)):
        sys.exit(f"{count - len(seen)} answers missing")
    print(f"{count} answers of {len(want) + 2} bytes, all equal to BIND's")

def abandon(port):
    """Clients that vanish: queries in flight then close; half a message
    then close; reset. apexd must carry on."""
    s = connect(port)
    s.sendall(b"".join(frame(query("big.example.test", "TXT", i)) for i in range(50)))
    s.close()
    s = connect(port)
    s.sendall(frame(query("www.example.test", "A", 1))[:9])
    s.close()
    s = connect(port)
    s.sendall(frame(query("www.example.test", "A", 2)))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()   # RST
    time.sleep(0.5)
    s = connect(port)
    if not served(s, 3):
        sys.exit("not served after abandoned connections")
    s.close()
    print("served after clients vanished mid-query")

cmd = sys.argv[1]
port = int(sys.argv[2])
if cmd == "pipeline":
    pipeline(port, int(sys.argv[3]))
elif cmd == "halfclose":
    halfclose(port, int(sys.argv[3]))
elif cmd == "bulk":
    bulk(port, int(sys.argv[3]), int(sys.argv[4]))
elif cmd == "abandon":
    abandon(port)
elif cmd == "split":
    split(port, int(sys.argv[3]), int(sys.argv[4]))
elif cmd == "idle":
    idle(port)
elif cmd == "limit":
    limit(port, int(sys.argv[3]))
PY

start_apexd
check "pipelining: 20 queries in one write, 20 answers" "$PY" "$TCPPY" pipeline "$APEX_PORT" "$NAMED_PORT"
check "length prefix split across writes" "$PY" "$TCPPY" split "$APEX_PORT" "$NAMED_PORT" 1
check "split after the length prefix" "$PY" "$TCPPY" split "$APEX_PORT" "$NAMED_PORT" 2
check "message split mid-body" "$PY" "$TCPPY" split "$APEX_PORT" "$NAMED_PORT" 12
check "answer after client half-close" "$PY" "$TCPPY" halfclose "$APEX_PORT" "$NAMED_PORT"
check "500 pipelined 2 KB answers, read late" "$PY" "$TCPPY" bulk "$APEX_PORT" "$NAMED_PORT" 500
check "clients vanishing mid-query" "$PY" "$TCPPY" abandon "$APEX_PORT"
check "apexd alive" proc_alive "$APEX_PID"
stop_apexd TERM 10
check "exit 0" test "${APEX_RC:-none}" = 0

start_apexd "127.0.0.1:$NAMED_PORT" tcp-idle-timeout=1s
check "tcp-idle-timeout = 1s closes idle connections (within 5 s)" "$PY" "$TCPPY" idle "$APEX_PORT"
stop_apexd TERM 10

start_apexd "127.0.0.1:$NAMED_PORT" max-connections=5
check "max-connections = 5" "$PY" "$TCPPY" limit "$APEX_PORT" 5
stop_apexd TERM 10
check "stats: tcp_refused >= 1" bash -c "[[ \$(grep -o 'tcp_refused=[0-9]*' '$APEX_LOG' | tail -n1 | cut -d= -f2) -ge 1 ]]"
finish
