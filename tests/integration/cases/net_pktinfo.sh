#!/usr/bin/env bash
# Wildcard listeners answer from the address the client asked (issue 14,
# item 1). In a network namespace of its own, whose lo carries 127.0.0.1,
# 192.0.2.10, ::1 and 2001:db8::10, BIND and apexd run with
# `udp = 0.0.0.0:P, [::]:P` and the same for tcp. Clients ask each address
# from another address of the host (as on a multi-homed host, or for an
# anycast address on lo, where the route back to the client has another
# source), with dig and with a connected UDP socket, which the kernel
# hands only replies from the address it is connected to. Every kind of
# UDP reply is asked for: relayed by BIND, flattened after a chase and
# from the caches, from the answer cache, FORMERR, the NOTIFY answer, an
# RRL slip. A second apexd adds and removes a wildcard by SIGHUP next to
# the other family's wildcard on the same port.
#
# The script runs twice: outside, it creates the namespace (ip netns add,
# as root), runs itself inside it, and deletes the namespace at the end,
# also on failure; inside, it is an ordinary case. Nothing leaves the
# namespace.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh

if [[ -z ${APEX_PKT_NS:-} ]]; then
	case_name=$(basename "$0" .sh)
	cannot() {
		if [[ ${APEX_NO_SKIP:-0} == 1 ]]; then
			echo "not ok 1 - cannot run: $1 (APEX_NO_SKIP=1)"
			echo "0 passed, 1 failed"
			exit 1
		fi
		echo "[$case_name] SKIP: $1"
		exit 77
	}
	command -v ip >/dev/null 2>&1 || cannot "ip (iproute2) not installed"
	[[ $(id -u) -eq 0 ]] || cannot "a network namespace needs root"
	ns=apexd-pkt-$$
	ns_done() {
		local pid
		# Anything still running in the namespace is this case's (the
		# inner run was killed before its own cleanup): stopped by PID.
		for pid in $(ip netns pids "$ns" 2>/dev/null); do
			kill -KILL "$pid" 2>/dev/null || true
		done
		ip netns del "$ns" 2>/dev/null || true
	}
	ip netns add "$ns" || cannot "ip netns add failed"
	trap 'rc=$?; ns_done; exit $rc' EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	if ! { ip -n "$ns" link set lo up &&
		ip -n "$ns" addr add 192.0.2.10/32 dev lo &&
		ip -n "$ns" -6 addr add 2001:db8::10/128 dev lo nodad; }; then
		echo "not ok 1 - cannot set up lo in namespace $ns"
		echo "0 passed, 1 failed"
		exit 1
	fi
	echo "[$case_name] namespace $ns: lo has 127.0.0.1 192.0.2.10 ::1 2001:db8::10"
	APEX_PKT_NS=$ns ip netns exec "$ns" bash "$0"
	exit $?
fi

source "$(dirname "$0")/../lib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
need_real_apexd
need_python_dns
need dig
[[ $HAVE_V6 -eq 1 ]] || { fail "no ::1 inside the namespace"; finish; }
start_named
find_apexd

# Each address is asked from the other one of its family.
ADDRS=(127.0.0.1 192.0.2.10 ::1 2001:db8::10)
declare -A FROM=([127.0.0.1]=192.0.2.10 [192.0.2.10]=127.0.0.1
	[::1]=2001:db8::10 [2001:db8::10]=::1)
# An [alias] owner per address, each with a target of its own, so that
# each address's first flattened answer waits for a chase.
declare -A OWNER=([127.0.0.1]=f1 [192.0.2.10]=f2 [::1]=f3 [2001:db8::10]=f4)
declare -A TARGET_A=([127.0.0.1]=192.0.2.10 [192.0.2.10]=192.0.2.25
	[::1]=192.0.2.60 [2001:db8::10]=192.0.2.53)

cat >"$T_DIR/pk.py" <<'PY'
# pk.py MODE SRC DST PORT [ARGS]: a client bound to SRC whose UDP socket
# is connected to DST:PORT, so it only ever sees replies from DST.
import socket, sys
import dns.flags, dns.message, dns.opcode, dns.rcode, dns.rdatatype

mode, src, dst, port = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
args = sys.argv[5:]
fam = socket.AF_INET6 if ":" in dst else socket.AF_INET

def sock(timeout=2.0):
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.bind((src, 0))
    s.connect((dst, port))
    s.settimeout(timeout)
    return s

def ask(wire):
    s = sock()
    s.send(wire)
    try:
        return s.recv(65535)
    except socket.timeout:
        sys.exit(f"no reply from {dst} within 2 s (asked from {src}; "
                 f"a reply from another source is not delivered)")

if mode == "a":  # NAME WANT: NOERROR with WANT among the A records
    name, want = args
    q = dns.message.make_query(name, "A")
    r = dns.message.from_wire(ask(q.to_wire()))
    got = [rd.address for rr in r.answer if rr.rdtype == dns.rdatatype.A for rd in rr]
    if r.id != q.id or r.rcode() != dns.rcode.NOERROR or want not in got:
        sys.exit(f"{name} A: rcode {dns.rcode.to_text(r.rcode())}, A {got}; want {want}")
    print(f"{name} A {got} from {dst}")
elif mode == "any":  # NAME TYPE: NOERROR with an answer
    name, rtype = args
    q = dns.message.make_query(name, rtype)
    r = dns.message.from_wire(ask(q.to_wire()))
    if r.id != q.id or r.rcode() != dns.rcode.NOERROR or not r.answer:
        sys.exit(f"{name} {rtype}: rcode {dns.rcode.to_text(r.rcode())}, {len(r.answer)} RRsets")
    print(f"{name} {rtype}: {len(r.answer)} RRsets from {dst}")
elif mode == "formerr":  # a question cut short: apexd's own FORMERR
    wire = bytes.fromhex("4242 0100 0001 0000 0000 0000 03777777")
    r = ask(wire)
    if r[:2] != b"\x42\x42" or (r[3] & 0x0F) != 1:
        sys.exit(f"not a FORMERR for ID 0x4242: {r[:4].hex()}")
    print(f"FORMERR from {dst}")
elif mode == "notify":  # ZONE: a NOTIFY answered (by apexd from the backend's address)
    q = dns.message.make_query(args[0], "SOA")
    q.flags = dns.flags.AA  # the opcode lives in the flags: set it after
    q.set_opcode(dns.opcode.NOTIFY)
    r = dns.message.from_wire(ask(q.to_wire()))
    if r.id != q.id or r.opcode() != dns.opcode.NOTIFY:
        sys.exit(f"not an answer to the NOTIFY: {r}")
    print(f"NOTIFY answered ({dns.rcode.to_text(r.rcode())}) from {dst}")
elif mode == "slip":  # a burst past [limits]: some answers slip (TC=1)
    s = sock(1.0)
    ids = set()
    for i in range(8):
        q = dns.message.make_query("www.example.test", "A")
        ids.add(q.id)
        s.send(q.to_wire())
    got, tc = 0, 0
    try:
        while got < 8:
            r = dns.message.from_wire(s.recv(65535))
            if r.id not in ids:
                sys.exit(f"reply with an unknown ID {r.id}")
            got += 1
            tc += 1 if r.flags & dns.flags.TC else 0
    except socket.timeout:
        pass
    if tc == 0:
        sys.exit(f"{got} replies from {dst}, none slipped (TC=1)")
    print(f"{got} replies from {dst}, {tc} slipped")
elif mode == "silent":  # nothing answers on DST:PORT
    s = sock(1.0)
    s.send(dns.message.make_query("www.example.test", "A").to_wire())
    try:
        s.recv(65535)
    except (socket.timeout, ConnectionRefusedError):
        print(f"{dst} port {port}: no answer")
        sys.exit(0)
    sys.exit(f"{dst} port {port} answered")
else:
    sys.exit(f"unknown mode {mode}")
PY
PK=("$PY" "$T_DIR/pk.py")

# dig_www SRC DST PORT [DIG ARGS]: www.example.test A, +short; a reply
# from another source than DST never reaches dig (its UDP socket is
# connected), which then times out.
dig_www() {
	local src=$1 dst=$2 port=$3 out
	shift 3
	out=$(dig -b "$src" @"$dst" -p "$port" +time=2 +tries=1 +nocookie "$@" +short \
		www.example.test A 2>&1) || true
	echo "$out"
	[[ $out == 192.0.2.10 ]]
}
tcp_refused() { # DST PORT
	! dig_www "${FROM[$1]}" "$1" "$2" +tcp
}

write_apexd() { # FILE PORT UDP TCP EXTRA
	cat >"$1" <<EOF
; Generated by tests/integration/cases/net_pktinfo.sh.
[server]
threads = 2
log-level = info

[listen]
udp = $3
tcp = $4

[backend]
address = 127.0.0.1:$NAMED_PORT
timeout = 1s
$5
EOF
}

run_apexd() { # INI LOG PORT
	APEX_LOG=$2
	"$APEXD" -c "$1" 2>"$APEX_LOG" >&2 &
	APEX_PID=$!
	PIDS+=("$APEX_PID")
	APEX_PORT=$3
	if wait_dns "$APEX_PORT" && proc_alive "$APEX_PID"; then
		say "apexd pid $APEX_PID on port $APEX_PORT"
		return 0
	fi
	fail "apexd did not start (see its log below)"
	finish
}

# --- one apexd on both wildcards: every kind of UDP reply -------------------
P=$(new_port)
write_apexd "$T_DIR/apexd.ini" "$P" "0.0.0.0:$P, [::]:$P" "0.0.0.0:$P, [::]:$P" "
[cache]
answers = yes

[zone example.test]

[alias]
f1.example.test = www.example.test
f2.example.test = mail.example.test
f3.example.test = sip.example.test
f4.example.test = ns1.example.test"
# dnstap too: its response address is the address asked, not 0.0.0.0.
TAP=$T_DIR/pkt.dnstap
sed -i "s|^\[server\]\$|[server]\ndnstap = file:$TAP|" "$T_DIR/apexd.ini"
run_apexd "$T_DIR/apexd.ini" "$T_DIR/apexd.log" "$P"

for a in "${ADDRS[@]}"; do
	s=${FROM[$a]}
	check "$a from $s: dig, UDP" dig_www "$s" "$a" "$P"
	check "$a from $s: dig, TCP" dig_www "$s" "$a" "$P" +tcp
	check "$a from $s: connected socket, relayed answer" "${PK[@]}" a "$s" "$a" "$P" www.example.test 192.0.2.10
	o=${OWNER[$a]}.example.test
	check "$a from $s: connected socket, flattened after a chase" "${PK[@]}" a "$s" "$a" "$P" "$o" "${TARGET_A[$a]}"
	check "$a from $s: connected socket, flattened from the caches" "${PK[@]}" a "$s" "$a" "$P" "$o" "${TARGET_A[$a]}"
	check "$a from $s: connected socket, MX from BIND" "${PK[@]}" any "$s" "$a" "$P" example.test MX
	check "$a from $s: connected socket, MX from the answer cache" "${PK[@]}" any "$s" "$a" "$P" example.test MX
	check "$a from $s: connected socket, FORMERR" "${PK[@]}" formerr "$s" "$a" "$P"
done
# apexd answers a NOTIFY from the backend's address (127.0.0.1) itself.
check "192.0.2.10 from 127.0.0.1: connected socket, NOTIFY answer" "${PK[@]}" notify 127.0.0.1 192.0.2.10 "$P" example.test

stop_apexd TERM 10
check "apexd exits 0 on SIGTERM" test "${APEX_RC:-x}" = 0
positive() { # STAT
	local v
	v=$(stat_value "$1")
	echo "$1=${v:-missing}"
	[[ ${v:-0} -gt 0 ]]
}
for st in answers_cached answers_flattened answers_flattened_direct formerr_sent notify_flushes; do
	check "the replies above include $st" positive "$st"
done
check "no UDP reply was lost" test "$(stat_value udp_send_errors)" = 0
# tap_asked ADDR: a UDP AUTH_RESPONSE whose response address is ADDR.
# (The reader reads all it is given: stopping at the first match would
# break tapdec.py's pipe, and pipefail would fail the check.)
tap_asked() {
	"$PY" "$INT_DIR/tapdec.py" "$TAP" |
		"$PY" -c 'import json,sys
sys.exit(0 if any(m["type"] == "AUTH_RESPONSE" and m["proto"] == "UDP" and m["raddr"] == sys.argv[1]
                  for m in [json.loads(l) for l in sys.stdin.readlines()]) else 1)' "$1"
}
for a in "${ADDRS[@]}"; do
	check "dnstap: UDP answers at $a name $a as apexd's end" tap_asked "$a"
done

# --- a second apexd: wildcards added and removed by SIGHUP, RRL slips -------
P2=$(new_port)
limits="
[limits]
responses-per-second = 1
slip = 1"
write_apexd "$T_DIR/apexd2.ini" "$P2" "0.0.0.0:$P2" "0.0.0.0:$P2" "$limits"
run_apexd "$T_DIR/apexd2.ini" "$T_DIR/apexd2.log" "$P2"
check "0.0.0.0 only: 192.0.2.10 answers over UDP (slips included)" "${PK[@]}" slip 127.0.0.1 192.0.2.10 "$P2"
check "0.0.0.0 only: nothing on [::] over TCP" tcp_refused 2001:db8::10 "$P2"

write_apexd "$T_DIR/apexd2.ini" "$P2" "0.0.0.0:$P2, [::]:$P2" "0.0.0.0:$P2, [::]:$P2" "$limits"
check "SIGHUP adding [::] next to 0.0.0.0 on one port" hup_wait
check "  reloaded" last_reload_ok
for a in "${ADDRS[@]}"; do
	s=${FROM[$a]}
	check "both: $a from $s: connected socket, slips and answers" "${PK[@]}" slip "$s" "$a" "$P2"
	check "both: $a from $s: dig, TCP" dig_www "$s" "$a" "$P2" +tcp
done

write_apexd "$T_DIR/apexd2.ini" "$P2" "[::]:$P2" "[::]:$P2" "$limits"
check "SIGHUP removing 0.0.0.0" hup_wait
check "  reloaded" last_reload_ok
check "[::] only: 192.0.2.10 is silent over UDP" "${PK[@]}" silent 127.0.0.1 192.0.2.10 "$P2"
check "[::] only: nothing on 0.0.0.0 over TCP" tcp_refused 192.0.2.10 "$P2"
for a in ::1 2001:db8::10; do
	check "[::] only: $a from ${FROM[$a]}: connected socket" "${PK[@]}" slip "${FROM[$a]}" "$a" "$P2"
	check "[::] only: $a from ${FROM[$a]}: dig, TCP" dig_www "${FROM[$a]}" "$a" "$P2" +tcp
done
stop_apexd TERM 10
check "the second apexd exits 0 on SIGTERM" test "${APEX_RC:-x}" = 0
check "  and slipped answers" positive rrl_slipped
finish
