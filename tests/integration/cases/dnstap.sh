#!/usr/bin/env bash
# [server] dnstap: fstrm_capture (Debian's fstrm-bin) reads apexd's stream
# from a unix socket; for queries over UDP, TCP, DoT and DoH there is
# exactly one AUTH_QUERY and one AUTH_RESPONSE each, with the transport,
# the client's address and port, apexd's, the times, and as messages the
# very bytes the client sent and got (a flattened answer compared byte
# for byte); dnstap-chases = yes adds the chase to the resolver as
# FORWARDER_QUERY/RESPONSE and nothing for the probes to BIND; a reload
# moves the stream to a file: destination; the stream also reads with
# dnstap-ldns; dnstap_sent counts every message written.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
need_real_apexd
need_flat_tools
need_tls_tools
need fstrm_capture dnstap-ldns kdig
TAPDEC=("$PY" "$INT_DIR/tapdec.py")

start_flat_backend
start_cdn
start_unbound
SOCK=$T_DIR/tap.sock
CAP=$T_DIR/cap.fstrm
FILE=$T_DIR/file.dnstap
fstrm_capture -t protobuf:dnstap.Dnstap -u "$SOCK" -w "$CAP" >"$T_DIR/capture.extra.log" 2>&1 &
CAP_PID=$!
PIDS+=("$CAP_PID")
for _ in $(seq 50); do [[ -S $SOCK ]] && break; sleep 0.1; done
check "fstrm_capture listens on $SOCK" test -S "$SOCK"

CONF="[server]
dnstap = unix:$SOCK
dnstap-chases = yes
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
[zone example.test]"
start_tls_apexd "127.0.0.1:$NAMED_PORT" "$CONF"
# wait_log PATTERN: until apexd's log has a line matching it (5 s).
wait_log() {
	for _ in $(seq 50); do grep -qE "$1" "$APEX_LOG" && return 0; sleep 0.1; done
	echo "no log line matches: $1"
	return 1
}
check "apexd connects to the collector" wait_log "dnstap: writing to unix:$SOCK"

# tapq.py PROTO PORT NAME TYPE: one query over udp, tcp or dot; prints a
# JSON line with the client's port and the exact bytes it sent and got.
cat >"$T_DIR/tapq.py" <<'PY'
#!/usr/bin/python3
import json, socket, ssl, struct, sys
import dns.message
proto, port, name, rdtype, ca = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
q = dns.message.make_query(name, rdtype, use_edns=0, payload=1232).to_wire()
if proto == "udp":
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(3)
    s.connect(("127.0.0.1", port))
    s.send(q)
    r = s.recv(65535)
else:
    s = socket.create_connection(("127.0.0.1", port), 3)
    if proto == "dot":
        ctx = ssl.create_default_context(cafile=ca)
        s = ctx.wrap_socket(s, server_hostname="localhost")
    s.sendall(struct.pack(">H", len(q)) + q)
    f = s.makefile("rb")
    n = struct.unpack(">H", f.read(2))[0]
    r = f.read(n)
print(json.dumps({"proto": proto, "name": name, "sport": s.getsockname()[1],
                  "query": q.hex(), "response": r.hex()}))
PY
tapq() { "$PY" "$T_DIR/tapq.py" "$1" "$2" "$3" "$4" "$TLS_CA" >>"$T_DIR/sent.jsonl"; }

: >"$T_DIR/sent.jsonl"
# The flattened answer first: a cold cache, so the chase goes out now.
check "UDP: the flattened apex" tapq udp "$APEX_PORT" example.test A
for i in 1 2 3; do
	check "UDP query $i" tapq udp "$APEX_PORT" "u$i.example.test" TXT
	check "TCP query $i" tapq tcp "$APEX_PORT" "t$i.example.test" TXT
	check "DoT query $i" tapq dot "$DOT_PORT" "d$i.example.test" TXT
	check "DoH query $i" ddoh --method post "h$i.example.test" TXT --rcode NXDOMAIN
done
check "TCP: the flattened apex from the cache" tapq tcp "$APEX_PORT" example.test A
# A message apexd answers itself, without BIND: FORMERR for a question
# that does not scan.
formerr() {
	"$PY" -c 'import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.send(bytes.fromhex("abcd01000001000000000000") + b"\x07broken")
r = s.recv(512)
sys.exit(0 if r[:2] == b"\xab\xcd" and r[3] & 15 == 1 else 1)' "$APEX_PORT"
}
check "UDP: FORMERR from apexd itself" formerr

# --- reload: the stream moves to a file -------------------------------------
sed -i "s|^dnstap = unix:.*|dnstap = file:$FILE|" "$T_DIR/apexd.ini"
check "SIGHUP moving dnstap to a file" hup_wait
check "  the reload says so" grep -q "reload: dnstap unix:$SOCK -> file:$FILE" "$APEX_LOG"
check "  and the file is open" wait_log "dnstap: writing to file:$FILE"
check "UDP query after the reload" tapq udp "$APEX_PORT" r1.example.test TXT
check "TCP query after the reload" tapq tcp "$APEX_PORT" r2.example.test TXT
stop_apexd TERM 20
check "apexd exits 0" test "${APEX_RC:-x}" = 0
kill -TERM "$CAP_PID"
wait_exit "$CAP_PID" 10 || true
# decode FILE OUT: tapdec.py's JSON lines for a capture.
decode() { "${TAPDEC[@]}" "$1" >"$2"; }
check "the socket stream decodes" decode "$CAP" "$T_DIR/cap.jsonl"
check "the file stream decodes" decode "$FILE" "$T_DIR/file.jsonl"

# tapcheck.py: every assertion on the decoded streams, one line each.
cat >"$T_DIR/tapcheck.py" <<'PY'
#!/usr/bin/python3
import json, sys
import dns.message
t_dir, apex, dot, doh, unbound, named, sent_count = sys.argv[1:8]
load = lambda p: [json.loads(l) for l in open(p)]
cap, fil, sent = load(t_dir + "/cap.jsonl"), load(t_dir + "/file.jsonl"), load(t_dir + "/sent.jsonl")
bad = 0
def check(ok, what):
    global bad
    print(("ok   " if ok else "FAIL ") + what)
    bad += 0 if ok else 1
def qname(m):
    try:
        return dns.message.from_wire(bytes.fromhex(m.get("query") or m["response"])).question[0].name.to_text()
    except Exception:
        return None
def auth(msgs, name, typ):
    return [m for m in msgs if m["type"] == typ and qname(m) == name]
port = {"UDP": int(apex), "TCP": int(apex), "DOT": int(dot), "DOH": int(doh)}
for proto, p in (("UDP", "u"), ("TCP", "t"), ("DOT", "d"), ("DOH", "h")):
    for i in (1, 2, 3):
        name = "%s%d.example.test." % (p, i)
        q, r = auth(cap, name, "AUTH_QUERY"), auth(cap, name, "AUTH_RESPONSE")
        check(len(q) == 1 and len(r) == 1, "%s %s: one AUTH_QUERY, one AUTH_RESPONSE (%d, %d)" % (proto, name, len(q), len(r)))
        if len(q) != 1 or len(r) != 1:
            continue
        q, r = q[0], r[0]
        check(q["proto"] == proto and r["proto"] == proto, "  socket_protocol %s" % proto)
        check(q["family"] == "INET" and q["qaddr"] == "127.0.0.1" and q["raddr"] == "127.0.0.1",
              "  family INET, client and apexd 127.0.0.1")
        check(q["rport"] == port[proto] and r["rport"] == port[proto], "  apexd's port %d" % port[proto])
        check(q["qport"] == r["qport"] and q["qport"] > 0, "  the client's port in both")
        check(r["qtime"] == q["qtime"] and q["qtime"] <= r["rtime"] < q["qtime"] + 5,
              "  query_time in both, response_time after it")
        qm = dns.message.from_wire(bytes.fromhex(q["query"]))
        rm = dns.message.from_wire(bytes.fromhex(r["response"]))
        check(rm.id == qm.id and rm.rcode() == 3, "  the response answers the query (NXDOMAIN)")
for s in sent:
    name = s["name"] + "."
    proto = s["proto"].upper()
    rs = [m for m in auth(cap + fil, name, "AUTH_RESPONSE") if m["proto"] == proto]
    qs = [m for m in auth(cap + fil, name, "AUTH_QUERY") if m["proto"] == proto]
    hit = [m for m in rs if m["qport"] == s["sport"]]
    check(len(hit) == 1 and hit[0]["response"] == s["response"],
          "%s %s: the response bytes are what the client got" % (proto, name))
    hitq = [m for m in qs if m["qport"] == s["sport"]]
    check(len(hitq) == 1 and hitq[0]["query"] == s["query"],
          "%s %s: the query bytes are what the client sent" % (proto, name))
flat = [s for s in sent if s["name"] == "example.test"]
rm = dns.message.from_wire(bytes.fromhex(flat[0]["response"]))
check(any(r.rdtype == 1 for r in rm.answer) and not any(r.rdtype == 5 for r in rm.answer),
      "the apex answer compared is a flattened one (A, no CNAME)")
bad_q = "abcd01000001000000000000" + b"\x07broken".hex()
fe = [m for m in cap if m["type"] == "AUTH_QUERY" and m["query"] == bad_q]
check(len(fe) == 1, "the malformed query: one AUTH_QUERY with its bytes")
fr_ = [m for m in cap if m["type"] == "AUTH_RESPONSE" and fe and m["qport"] == fe[0]["qport"]]
check(len(fr_) == 1 and fr_[0]["response"][:4] == "abcd" and int(fr_[0]["response"][6:8], 16) & 15 == 1,
      "  and one AUTH_RESPONSE: apexd's FORMERR")
fq = [m for m in cap if m["type"] == "FORWARDER_QUERY"]
fr = [m for m in cap if m["type"] == "FORWARDER_RESPONSE"]
check(len(fq) == 1 and len(fr) == 1, "one FORWARDER_QUERY, one FORWARDER_RESPONSE (%d, %d)" % (len(fq), len(fr)))
if fq and fr:
    check(qname(fq[0]) == "www.cdn.test." and qname(fr[0]) == "www.cdn.test.", "  for the chase of www.cdn.test")
    check(fq[0]["rport"] == int(unbound) and fr[0]["rport"] == int(unbound), "  to the resolver's port")
    check(fq[0]["qport"] == fr[0]["qport"] > 0 and fq[0]["qaddr"] == "127.0.0.1", "  from apexd's own socket")
    check(dns.message.from_wire(bytes.fromhex(fr[0]["response"])).id ==
          dns.message.from_wire(bytes.fromhex(fq[0]["query"])).id, "  the answer to that query")
check(not any(m.get("rport") == int(named) for m in fq + fr), "no FORWARDER_* for the probes to BIND")
check(all(m.get("identity") and m.get("version", "").startswith("apexd ") for m in cap + fil),
      "identity (host name) and version \"apexd VERSION\" in every message")
names = lambda msgs: {qname(m) for m in msgs}
check({"r1.example.test.", "r2.example.test."} <= names(fil), "after the reload: the file has r1, r2")
check(not names(cap) & {"r1.example.test.", "r2.example.test."}, "  and the socket stream has neither")
check([m["proto"] for m in auth(fil, "r2.example.test.", "AUTH_QUERY")] == ["TCP"], "  r2 over TCP once")
check(len(cap) + len(fil) == int(sent_count), "dnstap_sent=%s: the messages in both streams (%d + %d)" % (sent_count, len(cap), len(fil)))
sys.exit(1 if bad else 0)
PY
check "the streams hold what was sent (details below)" "$PY" "$T_DIR/tapcheck.py" "$T_DIR" \
	"$APEX_PORT" "$DOT_PORT" "$DOH_PORT" "$UNBOUND_PORT" "$NAMED_PORT" "$(stat_value dnstap_sent)"
check "dnstap_dropped=0" test "$(stat_value dnstap_dropped)" = 0

# dnstap-ldns, the reference reader: quiet mode has a line per message;
# Debian 12's 0.2.1 predates DOT and DOH and prints "?" for them.
dnstap-ldns -q -r "$CAP" >"$T_DIR/ldns.txt" 2>&1 || true
check "dnstap-ldns -q: one line per message" test "$(grep -c . "$T_DIR/ldns.txt")" = "$(grep -c . "$T_DIR/cap.jsonl")"
check "  AQ/AR over UDP and TCP for u1/t1" bash -c "grep -q ' AQ 127.0.0.1 UDP .*\"u1.example.test.\" IN TXT' '$T_DIR/ldns.txt' &&
	grep -q ' AR 127.0.0.1 TCP .*\"t1.example.test.\" IN TXT' '$T_DIR/ldns.txt'"
check "  FQ/FR for the chase" bash -c "grep -q ' FQ 127.0.0.1 UDP .*\"www.cdn.test.\" IN A' '$T_DIR/ldns.txt' &&
	grep -q ' FR 127.0.0.1 UDP .*\"www.cdn.test.\" IN A' '$T_DIR/ldns.txt'"
check "  DoT and DoH as '?'" grep -q ' AQ 127.0.0.1 ? .*"d1.example.test." IN TXT' "$T_DIR/ldns.txt"
dnstap-ldns -y -r "$FILE" >"$T_DIR/ldns-file.yaml" 2>&1 || true
check "dnstap-ldns -y reads the file: destination" \
	grep -q 'response_message: |' "$T_DIR/ldns-file.yaml"
check "  with the query after the reload" grep -q ';r2.example.test.' "$T_DIR/ldns-file.yaml"
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$APEX_LOG'"
finish
