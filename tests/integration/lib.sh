# shellcheck shell=bash
# Integration harness for apexd, sourced by tests/integration/cases/*.sh.
#
# Each case gets its own temporary directory, its own BIND (`named -g`, a
# child of the case script) and its own apexd, on free loopback ports in
# 20000-29999 picked at random and probed, so `ctest -j` runs never share a
# port. Everything a case starts is recorded by PID and stopped by PID on
# EXIT; nothing else is ever signalled.
#
# Environment:
#   APEXD            the apexd binary (set by ctest)
#   APEX_SOURCE_DIR  repository root (default: derived from this file)
#   APEX_NO_SKIP=1   a missing tool fails the case instead of exit 77 (CI)
#   APEX_PROXY=bind  harness self-test: the "apexd" side is BIND itself, so
#                    every byte comparison must pass; cases that test apexd
#                    behaviour of its own skip
#   APEX_KEEP_TMP=1  keep the temporary directory for debugging
#
# A case: source this file, call start_named / start_apexd, then `check`
# (or pass/fail) per assertion, and `finish` at the end, which prints
# "N passed, M failed" and sets the exit status.

set -euo pipefail

INT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
APEX_SOURCE_DIR=${APEX_SOURCE_DIR:-$(cd "$INT_DIR/../.." && pwd)}
ZONES_DIR=$INT_DIR/zones
# Debian's python3-dnspython is installed for the system interpreter only;
# a pyenv or venv python3 earlier in PATH cannot import dns.
PY=/usr/bin/python3
DNSCMP=("$PY" "$INT_DIR/dnscmp.py")

CASE_NAME=$(basename "$0" .sh)
T_DIR=$(mktemp -d "${TMPDIR:-/tmp}/apex-it-$CASE_NAME.XXXXXX")
PASSED=0
FAILED=0
FINISHED=0
SKIPPING=0
PIDS=()
USED_PORTS=()
NAMED_PORT=
NAMED_PID=
APEX_PORT=
APEX_PID=
# shellcheck disable=SC2034 # read by the cases after stop_apexd
APEX_RC=
APEX_LOG=$T_DIR/apexd.log
HAVE_V6=0

say() { printf '[%s] %s\n' "$CASE_NAME" "$*"; }

pass() {
	PASSED=$((PASSED + 1))
	printf 'ok %d - %s\n' "$((PASSED + FAILED))" "$1"
}

fail() {
	FAILED=$((FAILED + 1))
	printf 'not ok %d - %s\n' "$((PASSED + FAILED))" "$1"
}

# check DESC CMD [ARGS...]: one assertion; the command's output is shown
# only when it fails, indented, so a log reads as a list of results.
check() {
	local desc=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	if [[ $rc -eq 0 ]]; then
		pass "$desc"
	else
		fail "$desc (exit $rc)"
		printf '%s\n' "$out" | sed 's/^/    /'
	fi
	return 0
}

# skip_case REASON: exit 77 (ctest SKIP_RETURN_CODE), or fail under
# APEX_NO_SKIP=1 so that CI cannot turn green by skipping.
skip_case() {
	if [[ ${APEX_NO_SKIP:-0} == 1 ]]; then
		fail "cannot run: $1 (APEX_NO_SKIP=1)"
		finish
	fi
	say "SKIP: $1"
	SKIPPING=1
	exit 77
}

need() {
	local tool
	for tool in "$@"; do
		command -v "$tool" >/dev/null 2>&1 || skip_case "$tool not installed"
	done
}

need_python_dns() {
	"$PY" -c 'import dns.message' 2>/dev/null ||
		skip_case "$PY cannot import dns (python3-dnspython)"
}

# Cases that exercise apexd's own behaviour (FORMERR, SERVFAIL+EDE, TCP
# limits, signals) have nothing to test in the BIND-vs-BIND self-test.
need_real_apexd() {
	if [[ ${APEX_PROXY:-} == bind ]]; then
		say "SKIP: tests apexd itself; APEX_PROXY=bind"
		SKIPPING=1
		exit 77
	fi
}

finish() {
	FINISHED=1
	echo "$PASSED passed, $FAILED failed"
	if [[ $FAILED -gt 0 || $PASSED -eq 0 ]]; then
		exit 1
	fi
	exit 0
}

dump_logs() {
	local f
	for f in "$T_DIR"/named.log "$APEX_LOG" "$T_DIR"/*.extra.log; do
		[[ -s $f ]] || continue
		echo "---- last lines of ${f##*/} ----"
		tail -n 40 "$f"
	done
}

# proc_alive PID: true while PID runs. A child that has exited but not been
# reaped is a zombie and still answers kill -0, so read its state.
proc_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(sed 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[[ $state != Z && $state != X ]]
}

# wait_exit PID SECONDS: wait for our child PID to end and put its exit
# status in WAIT_RC; returns 1 if it still runs after SECONDS. (Not to be
# called in $(...): a subshell cannot reap the script's children.)
WAIT_RC=
wait_exit() {
	local pid=$1 limit=$2 i
	WAIT_RC=
	for ((i = 0; i < limit * 10; i++)); do
		proc_alive "$pid" || break
		sleep 0.1
	done
	proc_alive "$pid" && return 1
	WAIT_RC=0
	wait "$pid" 2>/dev/null || WAIT_RC=$?
}

# stop_pid PID: TERM, then KILL after 5 s; only ever our own children.
stop_pid() {
	local pid=$1
	proc_alive "$pid" || { wait "$pid" 2>/dev/null || true; return 0; }
	kill -TERM "$pid" 2>/dev/null || true
	if ! wait_exit "$pid" 5; then
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
	fi
}

cleanup() {
	local rc=$? pid
	set +e
	for pid in "${PIDS[@]}"; do
		stop_pid "$pid"
	done
	if [[ $FINISHED -eq 0 && $SKIPPING -eq 0 ]]; then
		fail "case aborted (exit $rc) before finish"
		echo "$PASSED passed, $FAILED failed"
		rc=1
	fi
	if [[ $FINISHED -eq 1 && $FAILED -gt 0 ]] || [[ $FINISHED -eq 0 && $SKIPPING -eq 0 ]]; then
		dump_logs
	fi
	if [[ ${APEX_KEEP_TMP:-0} == 1 ]]; then
		say "kept $T_DIR"
	else
		rm -rf "$T_DIR"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

if "$PY" -c 'import socket; s = socket.socket(socket.AF_INET6); s.bind(("::1", 0))' 2>/dev/null; then
	HAVE_V6=1
fi

# free_port: print a port in 20000-29999 that is free for UDP and TCP on
# 127.0.0.1 (and ::1), chosen at random so parallel cases do not meet; the
# callers retry with another port if a server still loses the race.
free_port() {
	"$PY" - "$HAVE_V6" "${USED_PORTS[@]}" <<'PY'
import random, socket, sys
v6 = sys.argv[1] == "1"
used = {int(p) for p in sys.argv[2:]}
addrs = [(socket.AF_INET, "127.0.0.1")] + ([(socket.AF_INET6, "::1")] if v6 else [])
for _ in range(500):
    port = random.randrange(20000, 30000)
    if port in used:
        continue
    socks = []
    try:
        for family, host in addrs:
            for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(family, kind)
                socks.append(s)
                s.bind((host, port))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(port)
    sys.exit(0)
sys.exit("no free port in 20000-29999")
PY
}

new_port() {
	local p
	p=$(free_port)
	USED_PORTS+=("$p")
	echo "$p"
}

# dig_at PORT ARGS...: dig with bounded time, no cookie (not needed, and
# BIND's server cookie differs between two servers' answers).
dig_at() {
	local port=$1
	shift
	dig @127.0.0.1 -p "$port" +time=2 +tries=1 +nocookie "$@"
}

# wait_dns PORT [want]: poll until PORT answers a SOA query over UDP and
# TCP (any status, or the status given), up to 15 s.
wait_dns() {
	local port=$1 want=${2:-} i out
	for ((i = 0; i < 30; i++)); do
		# +time=3: a blackhole backend makes apexd answer only after its 1 s timeout.
		out=$(dig @127.0.0.1 -p "$port" +time=3 +tries=1 +nocookie example.test SOA 2>&1 || true)
		if [[ $out == *"status: ${want}"* ]] &&
			"$PY" -c 'import socket,sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1).close()' "$port" 2>/dev/null; then
			return 0
		fi
		sleep 0.5
	done
	return 1
}

# sign_zone: sign signed.test into the case directory (fresh keys each run).
sign_zone() {
	local dir=$1 out
	if ! out=$(
		cd "$dir" &&
			dnssec-keygen -q -K "$dir" -a ECDSAP256SHA256 -f KSK signed.test &&
			dnssec-keygen -q -K "$dir" -a ECDSAP256SHA256 signed.test &&
			dnssec-signzone -q -S -K "$dir" -o signed.test \
				-f signed.test.zone.signed signed.test.zone 2>&1
	); then
		echo "$out" >&2
		return 1
	fi
}

# start_named [EXTRA_OPTIONS]: our own BIND 9.18 on NAMED_PORT.
#
# Determinism for byte comparisons: `rrset-order { order none; }` returns
# RRsets in database order for every query (the default would rotate or
# shuffle them between the direct and the relayed query), no cookies are
# sent by the cases, and named has no control channel, NSID or statistics
# that vary per answer.
start_named() {
	local extra=${1:-} dir=$T_DIR/named v6listen
	need named dnssec-keygen dnssec-signzone dig
	mkdir -p "$dir"
	cp "$ZONES_DIR"/*.zone "$dir"/
	sign_zone "$dir" || { fail "dnssec-signzone failed"; finish; }
	for _ in 1 2 3; do
		NAMED_PORT=$(new_port)
		v6listen="none;"
		[[ $HAVE_V6 -eq 1 ]] && v6listen="::1;"
		cat >"$dir/named.conf" <<EOF
// Generated by tests/integration/lib.sh for case $CASE_NAME.
options {
	directory "$dir";
	pid-file "$dir/named.pid";
	lock-file "$dir/named.lock";
	session-keyfile "$dir/session.key";
	managed-keys-directory "$dir";
	dump-file "$dir/named_dump.db";
	statistics-file "$dir/named.stats";
	listen-on port $NAMED_PORT { 127.0.0.1; };
	listen-on-v6 port $NAMED_PORT { $v6listen };
	recursion no;
	notify no;
	dnssec-validation no;
	rrset-order { order none; };
	allow-query { any; };
	allow-transfer { none; };
	// Small transfer messages so that an AXFR of example.test takes
	// several messages and the relay of each one is exercised.
	transfer-message-size 1024;
	$extra
};
// No rndc channel: the default one on port 953 would collide between
// parallel cases, and the harness stops named by PID.
controls { };
zone "example.test" {
	type primary;
	file "example.test.zone";
	allow-transfer { 127.0.0.1; ::1; };
};
zone "signed.test" {
	type primary;
	file "signed.test.zone.signed";
	allow-transfer { 127.0.0.1; ::1; };
};
zone "dyn.test" {
	type primary;
	file "dyn.test.zone";
	allow-update { 127.0.0.1; ::1; };
};
EOF
		named-checkconf "$dir/named.conf" || { fail "named-checkconf"; finish; }
		# -n 1: one worker is plenty, and ctest -j2 runs two cases at once.
		named -g -n 1 -c "$dir/named.conf" >"$T_DIR/named.log" 2>&1 &
		NAMED_PID=$!
		PIDS+=("$NAMED_PID")
		if wait_dns "$NAMED_PORT" NOERROR; then
			say "named pid $NAMED_PID on port $NAMED_PORT"
			return 0
		fi
		stop_pid "$NAMED_PID"
		if ! grep -q 'address in use' "$T_DIR/named.log"; then
			break
		fi
		say "port $NAMED_PORT taken, retrying"
	done
	fail "named did not start"
	finish
}

# find_apexd: the binary under test, or skip.
find_apexd() {
	if [[ -z ${APEXD:-} ]]; then
		local c
		for c in "${APEX_BUILD_DIR:-}/proxy/apexd" "$APEX_SOURCE_DIR/build/proxy/apexd"; do
			[[ -x $c ]] && { APEXD=$c; break; }
		done
	fi
	[[ -n ${APEXD:-} && -x $APEXD ]] || skip_case "apexd binary not found (set APEXD)"
}

# write_ini FILE PORT BACKEND [key=value...]: the minimal apexd.ini the
# cases use. Overrides: threads, log-level, tcp-idle-timeout,
# max-connections, timeout.
write_ini() {
	local file=$1 port=$2 backend=$3 kv
	shift 3
	local threads=2 loglevel=info idle=10s maxconn=100 timeout=1s
	for kv in "$@"; do
		case ${kv%%=*} in
		threads) threads=${kv#*=} ;;
		log-level) loglevel=${kv#*=} ;;
		tcp-idle-timeout) idle=${kv#*=} ;;
		max-connections) maxconn=${kv#*=} ;;
		timeout) timeout=${kv#*=} ;;
		*) echo "write_ini: unknown override $kv" >&2; return 1 ;;
		esac
	done
	local udp="127.0.0.1:$port" tcp="127.0.0.1:$port"
	if [[ $HAVE_V6 -eq 1 ]]; then
		udp+=", [::1]:$port"
		tcp+=", [::1]:$port"
	fi
	cat >"$file" <<EOF
; Generated by tests/integration/lib.sh for case $CASE_NAME.
[server]
threads = $threads
log-level = $loglevel

[listen]
udp = $udp
tcp = $tcp
tcp-idle-timeout = $idle
max-connections = $maxconn

[backend]
address = $backend
timeout = $timeout
EOF
}

# start_apexd [BACKEND_ADDR] [key=value...]: apexd on APEX_PORT in front of
# BACKEND_ADDR (default: our named). Waits until it answers over UDP and
# accepts TCP. With APEX_PROXY=bind the "apexd" is BIND itself.
start_apexd() {
	local backend=${1:-127.0.0.1:$NAMED_PORT}
	[[ $# -gt 0 ]] && shift
	if [[ ${APEX_PROXY:-} == bind ]]; then
		APEX_PORT=$NAMED_PORT
		say "APEX_PROXY=bind: comparing BIND with itself on port $APEX_PORT"
		return 0
	fi
	find_apexd
	for _ in 1 2 3; do
		APEX_PORT=$(new_port)
		write_ini "$T_DIR/apexd.ini" "$APEX_PORT" "$backend" "$@"
		"$APEXD" -c "$T_DIR/apexd.ini" 2>"$APEX_LOG" >&2 &
		APEX_PID=$!
		PIDS+=("$APEX_PID")
		# Any answer counts (a dead backend gives SERVFAIL).
		if wait_dns "$APEX_PORT" && proc_alive "$APEX_PID"; then
			say "apexd pid $APEX_PID on port $APEX_PORT, backend $backend"
			return 0
		fi
		stop_pid "$APEX_PID"
		if ! grep -qi 'address.*in use\|EADDRINUSE' "$APEX_LOG"; then
			break
		fi
		say "port $APEX_PORT taken, retrying"
	done
	fail "apexd did not start (see its log below)"
	finish
}

# stop_apexd SIGNAL SECONDS: signal apexd and wait for it; sets APEX_RC
# (empty if it did not exit in time, then it is killed).
stop_apexd() {
	local sig=${1:-TERM} limit=${2:-10}
	APEX_RC=
	kill -"$sig" "$APEX_PID"
	if wait_exit "$APEX_PID" "$limit"; then
		# shellcheck disable=SC2034 # read by the cases
		APEX_RC=$WAIT_RC
	else
		kill -KILL "$APEX_PID" 2>/dev/null || true
		wait "$APEX_PID" 2>/dev/null || true
	fi
}

# apexctl for the cases that set APEXCTL and SOCK ([server] control).
ctl() { "$APEXCTL" -s "$SOCK" "$@"; }
# stat_now NAME: a counter from apexctl stats, now.
stat_now() { ctl stats | sed -n "s/^$1=//p"; }
# out_has TEXT CMD...: CMD exits 0 and its output contains TEXT (the
# output is shown, for the log of a failed check).
out_has() {
	local want=$1 out rc=0
	shift
	out=$("$@" 2>&1) || rc=$?
	printf '%s\n' "$out"
	[[ $rc -eq 0 && $out == *"$want"* ]]
}

# stat_value NAME: the counter NAME from apexd's `stats:` exit line.
stat_value() {
	grep -E '(^|[^a-z])stats:' "$APEX_LOG" | tail -n 1 |
		tr ' ' '\n' | sed -n "s/^$1=//p"
}

# Shorthands for the two servers.
cmp_q() { "${DNSCMP[@]}" --ref "127.0.0.1:$NAMED_PORT" --test "127.0.0.1:$APEX_PORT" "$@"; }
apex_q() { "${DNSCMP[@]}" --test "127.0.0.1:$APEX_PORT" "$@"; }

# passthrough_corpus [--tcp]: the queries apexd must relay byte for byte
# when no zone is configured for flattening, each compared between BIND
# direct and apexd. Where BIND's answer has a property worth knowing (an
# rcode, TC), it is asserted too, so a comparison of two wrong answers
# (or of two timeouts) cannot pass.
passthrough_corpus() {
	local t=("$@") udp=1 e name
	[[ " $* " == *" --tcp "* ]] && udp=0
	for e in --edns --no-edns; do
		local type
		for type in SOA NS A AAAA MX TXT CAA; do
			check "example.test $type $e" cmp_q "${t[@]}" $e example.test $type --expect-rcode NOERROR
		done
		check "www A $e" cmp_q "${t[@]}" $e www.example.test A --expect-flag AA --expect-min-answers 1
		check "www AAAA $e" cmp_q "${t[@]}" $e www.example.test AAAA --expect-min-answers 1
		check "SRV $e" cmp_q "${t[@]}" $e _sip._udp.example.test SRV --expect-min-answers 1
		check "PTR $e" cmp_q "${t[@]}" $e 10.2.0.192.in-addr.example.test PTR --expect-min-answers 1
		check "CNAME chain A $e" cmp_q "${t[@]}" $e alias1.example.test A --expect-min-answers 3
		check "CNAME out of zone $e" cmp_q "${t[@]}" $e external.example.test A --expect-min-answers 1
		check "DNAME $e" cmp_q "${t[@]}" $e www.dn.example.test A --expect-min-answers 2
		check "wildcard $e" cmp_q "${t[@]}" $e host.wild.example.test A --expect-min-answers 1
		check "referral $e" cmp_q "${t[@]}" $e www.sub.example.test A --expect-flag '!AA'
		check "TYPE65401 $e" cmp_q "${t[@]}" $e aname.example.test TYPE65401 --expect-min-answers 1
		check "A at TYPE65401 owner (NODATA) $e" cmp_q "${t[@]}" $e aname.example.test A --expect-rcode NOERROR
		check "NXDOMAIN $e" cmp_q "${t[@]}" $e nothere.example.test A --expect-rcode NXDOMAIN
		check "NODATA $e" cmp_q "${t[@]}" $e www.example.test MX --expect-rcode NOERROR
		check "REFUSED (zone not served) $e" cmp_q "${t[@]}" $e example.org A --expect-rcode REFUSED
		check "0x20 mixed case $e" cmp_q "${t[@]}" $e wWw.ExAmPlE.tEsT A --expect-min-answers 1
		check "ANY $e" cmp_q "${t[@]}" $e example.test ANY --expect-rcode NOERROR
	done
	local type
	for type in CNAME DNAME NAPTR LOC SSHFP HINFO; do
		case $type in
		CNAME) name=alias1.example.test ;;
		DNAME) name=dn.example.test ;;
		*) name=$(tr '[:upper:]' '[:lower:]' <<<"$type").example.test ;;
		esac
		check "$type" cmp_q "${t[@]}" --edns "$name" $type --expect-min-answers 1
	done
	check "PTR short owner" cmp_q "${t[@]}" ptr.example.test PTR --expect-min-answers 1
	check "long TXT (630 bytes of strings)" cmp_q "${t[@]}" --edns longtxt.example.test TXT
	check "no RD" cmp_q "${t[@]}" --flags "" www.example.test A --expect-flag '!RD'
	check "CD and AD set" cmp_q "${t[@]}" --edns --flags "RD CD AD" www.example.test A
	check "CHAOS version.bind" cmp_q "${t[@]}" --class CH version.bind TXT
	check "fixed ID 0" cmp_q "${t[@]}" --id 0 www.example.test A
	check "fixed ID 65535" cmp_q "${t[@]}" --id 65535 www.example.test A
	local l63
	l63=$(printf 'a%.0s' {1..63})
	check "255-octet name (NXDOMAIN)" cmp_q "${t[@]}" --edns "$l63.$l63.$l63.${l63:0:48}.example.test" A --expect-rcode NXDOMAIN
	check "EDNS version 1 (BADVERS)" cmp_q "${t[@]}" --edns-version 1 www.example.test A --expect-rcode BADVERS
	check "EDNS client subnet option" cmp_q "${t[@]}" --ednsopt 8:00011800c00002 www.example.test A --expect-min-answers 1
	check "unknown EDNS option" cmp_q "${t[@]}" --ednsopt 65001:abcd www.example.test A --expect-min-answers 1
	# BIND's FORMERR for shapes it rejects but a lenient scanner might not.
	check "two questions (FORMERR from BIND)" cmp_q "${t[@]}" --hex \
		"1234 0100 0002 0000 0000 0000 03777777076578616d706c650474657374 00 0001 0001 03777777076578616d706c650474657374 00 001c 0001" \
		--expect-rcode FORMERR
	check "QDCOUNT=0 without EDNS (FORMERR from BIND)" cmp_q "${t[@]}" --hex "4321 0100 0000 0000 0000 0000" --expect-rcode FORMERR
	if [[ $udp -eq 1 ]]; then
		check "AXFR over UDP (FORMERR from BIND)" cmp_q example.test AXFR --expect-rcode FORMERR
		check "IXFR over UDP (SOA)" cmp_q example.test IXFR --ixfr-serial 1 --expect-min-answers 1
	fi

	# Big RRsets: over UDP BIND truncates (TC=1) and apexd must relay that;
	# over TCP the whole RRset arrives.
	if [[ $udp -eq 1 ]]; then
		check "big TXT payload 512 (TC)" cmp_q "${t[@]}" --payload 512 big.example.test TXT --expect-flag TC
		check "big TXT no EDNS (TC)" cmp_q "${t[@]}" --no-edns big.example.test TXT --expect-flag TC
		check "big A no EDNS (TC)" cmp_q "${t[@]}" --no-edns bigv4.example.test A --expect-flag TC
		check "long TXT no EDNS (TC)" cmp_q "${t[@]}" --no-edns longtxt.example.test TXT --expect-flag TC
		check "big A payload 1232" cmp_q "${t[@]}" --payload 1232 bigv4.example.test A --expect-flag '!TC' --expect-min-answers 40
	else
		check "big TXT payload 512 (all 40)" cmp_q "${t[@]}" --payload 512 big.example.test TXT --expect-flag '!TC' --expect-min-answers 40
		check "big TXT no EDNS (all 40)" cmp_q "${t[@]}" --no-edns big.example.test TXT --expect-flag '!TC' --expect-min-answers 40
		check "big A no EDNS (all 40)" cmp_q "${t[@]}" --no-edns bigv4.example.test A --expect-flag '!TC' --expect-min-answers 40
	fi

	# DNSSEC: DO=1 on the zone signed at start, positive and negative.
	check "signed SOA DO" cmp_q "${t[@]}" --do signed.test SOA --expect-min-answers 2
	check "signed www A DO" cmp_q "${t[@]}" --do www.signed.test A --expect-min-answers 2
	check "signed DNSKEY DO" cmp_q "${t[@]}" --do signed.test DNSKEY --expect-min-answers 3
	check "signed NXDOMAIN DO (NSEC)" cmp_q "${t[@]}" --do nothere.signed.test A --expect-rcode NXDOMAIN
	check "signed NODATA DO" cmp_q "${t[@]}" --do www.signed.test MX --expect-rcode NOERROR
	check "signed A without DO" cmp_q "${t[@]}" --edns www.signed.test A --expect-min-answers 1
	if [[ $udp -eq 1 ]]; then
		check "signed DNSKEY DO payload 512" cmp_q "${t[@]}" --do --payload 512 signed.test DNSKEY
	fi

	# Opcodes other than QUERY reach BIND and BIND's reply comes back.
	check "NOTIFY for a primary zone" cmp_q "${t[@]}" --opcode 4 --flags AA example.test SOA --expect-rcode NOERROR
	check "NOTIFY for a zone not served" cmp_q "${t[@]}" --opcode 4 --flags AA example.org SOA --expect-rcode NOTAUTH
	check "opcode 3 (NOTIMP)" cmp_q "${t[@]}" --opcode 3 www.example.test A --expect-rcode NOTIMP
	check "opcode 15 (NOTIMP)" cmp_q "${t[@]}" --opcode 15 --edns www.example.test A --expect-rcode NOTIMP
	check "UPDATE prerequisite met" cmp_q "${t[@]}" --opcode 5 --flags "" --present www.dyn.test dyn.test --expect-rcode NOERROR
	check "UPDATE prerequisite unmet" cmp_q "${t[@]}" --opcode 5 --flags "" --present nothere.dyn.test dyn.test --expect-rcode NXDOMAIN
	check "UPDATE refused by BIND" cmp_q "${t[@]}" --opcode 5 --flags "" --present www.example.test example.test --expect-rcode REFUSED

	# Cookies: BIND's server cookie varies per client address and second,
	# so dnscmp checks the option is there and masks the server part.
	check "QDCOUNT=0 with a cookie" cmp_q "${t[@]}" --no-question --cookie 0102030405060708 --expect-rcode NOERROR
	check "query with a cookie" cmp_q "${t[@]}" --cookie a1b2c3d4e5f60718 www.example.test A --expect-min-answers 1

	# The ::1 listener relays the same bytes as the 127.0.0.1 one.
	if [[ $HAVE_V6 -eq 1 ]]; then
		check "over ::1: www AAAA" "${DNSCMP[@]}" --ref "[::1]:$NAMED_PORT" --test "[::1]:$APEX_PORT" \
			"${t[@]}" --edns www.example.test AAAA --expect-min-answers 1
		check "over ::1: NXDOMAIN" "${DNSCMP[@]}" --ref "[::1]:$NAMED_PORT" --test "[::1]:$APEX_PORT" \
			"${t[@]}" nothere.example.test A --expect-rcode NXDOMAIN
	fi
}

# within MS CMD [ARGS...]: run CMD; fail if it fails or takes over MS ms.
within() {
	local max=$1 t0 t1 ms rc=0
	shift
	t0=$(date +%s%N)
	"$@" || rc=$?
	t1=$(date +%s%N)
	ms=$(((t1 - t0) / 1000000))
	echo "took $ms ms (limit $max ms)"
	[[ $rc -eq 0 ]] || return "$rc"
	[[ $ms -le $max ]]
}

# start_blackhole [MODE]: a UDP socket on BLACKHOLE_PORT standing in for a
# broken backend; a small python child of the case, stopped by PID like
# everything else. MODE silent (default) reads every query and never
# answers (a backend that is up but silent); wrong-id and wrong-question
# answer at once, but with the ID plus one, or for another name, which
# apexd must not take for the answer (it matches socket, ID and question).
# Each datagram goes to BLACKHOLE_LOG as a line of hex, so a case can see
# exactly what apexd forwarded, and wait until a query has really reached
# the backend (see blackhole_wait).
start_blackhole() {
	local mode=${1:-silent} ready=$T_DIR/blackhole.ready i
	BLACKHOLE_PORT=$(new_port)
	BLACKHOLE_LOG=$T_DIR/blackhole.seen
	: >"$BLACKHOLE_LOG"
	rm -f "$ready"
	"$PY" - "$BLACKHOLE_PORT" "$ready" "$BLACKHOLE_LOG" "$mode" <<'PY' &
import socket, struct, sys
import dns.message
port, ready, log, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", port))
open(ready, "w").close()
with open(log, "a", buffering=1) as seen:
    while True:
        data, peer = s.recvfrom(65535)
        seen.write(data.hex() + "\n")
        if mode == "silent":
            continue
        try:
            q = dns.message.from_wire(data)
        except Exception:
            continue
        r = dns.message.make_response(q)
        r.flags |= dns.flags.AA
        if mode == "wrong-id":
            r.id = (q.id + 1) & 0xFFFF
        elif mode == "wrong-question":
            r.question[0].name = dns.name.from_text("liar.example.test")
        s.sendto(r.to_wire(), peer)
PY
	PIDS+=("$!")
	for ((i = 0; i < 50; i++)); do
		[[ -e $ready ]] && return 0
		sleep 0.1
	done
	fail "blackhole did not start"
	finish
}

# blackhole_count: datagrams the blackhole has received so far.
blackhole_count() { grep -c . "$BLACKHOLE_LOG" || true; }

# blackhole_wait N: wait (up to 10 s) until the blackhole has received at
# least N datagrams in all.
blackhole_wait() {
	local i
	for ((i = 0; i < 100; i++)); do
		[[ $(blackhole_count) -ge $1 ]] && return 0
		sleep 0.1
	done
	return 1
}
