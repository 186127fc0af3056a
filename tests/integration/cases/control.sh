#!/usr/bin/env bash
# apexctl against a running apexd over [server] control: the socket's
# mode, stats moving with real queries, explain before and after the
# target is cached (source, hops, addresses, answer), flush of one name
# and of everything (the target cache and the workers' answer caches),
# reload, and every way the client can fail (usage 2; errors, a daemon
# that never answers, a reply cut short: 1).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock

start_flat_backend
start_cdn
start_unbound
start_flat_apexd "[server]
control = $SOCK
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[cache]
answers = yes
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test
chained.example.test = c1.cdn.test"

# exits RC CMD...: CMD exits with RC (its output is shown on failure).
exits() {
	local want=$1 rc=0
	shift
	"$@" || rc=$?
	echo "exit $rc, want $want"
	[[ $rc -eq $want ]]
}

check "control socket is a socket with mode 0600" \
	bash -c "[[ -S '$SOCK' && \$(stat -c %a '$SOCK') == 600 ]]"
check "apexctl --help: usage on stdout, exit 0" out_has "explain NAME" "$APEXCTL" --help
check "apexctl stats: exit 0, counters listed" out_has "queries_udp=" ctl stats
check "apexctl stats: latency histogram and rcodes listed" \
	bash -c "'$APEXCTL' -s '$SOCK' stats | grep -q '^latency_udp_le_1000us=' && '$APEXCTL' -s '$SOCK' stats | grep -q '^answers_rcode_nxdomain='"

# Counters move with real queries.
q0=$(stat_now queries_udp)
nx0=$(stat_now answers_rcode_nxdomain)
t0=$(stat_now queries_tcp)
l0=$(stat_now latency_udp_count)
for i in 1 2 3; do dig_at "$APEX_PORT" "q$i.example.test" A >/dev/null; done
dig_at "$APEX_PORT" +tcp nothere.example.test A >/dev/null
check "stats: queries_udp moved by 3 ($q0 -> $(stat_now queries_udp))" \
	test "$(stat_now queries_udp)" -eq $((q0 + 3))
check "stats: queries_tcp moved by 1" test "$(stat_now queries_tcp)" -eq $((t0 + 1))
check "stats: NXDOMAIN answers moved by 4" test "$(stat_now answers_rcode_nxdomain)" -eq $((nx0 + 4))
check "stats: UDP latency samples moved by 3" test "$(stat_now latency_udp_count)" -eq $((l0 + 3))

# explain, nothing cached yet: the ANAME comes from BIND, the target
# cache is empty, the next query chases.
check "explain apex before any query: ANAME from the backend" \
	out_has "example.test. 600 IN TYPE65401 www.cdn.test. [backend" ctl explain example.test
check "explain apex before any query: presence not cached" \
	out_has "not cached: the next query probes the backend [presence cache]" ctl explain example.test
check "explain apex before any query: decision chase via ANAME" \
	out_has "decision: chase www.cdn.test. (source: ANAME)" ctl explain example.test
check "explain apex before any query: hop with the ANAME's TTL" \
	out_has "hop 1: example.test. TYPE65401 -> target, TTL 600" ctl explain example.test
check "explain apex before any query: target not cached, a chase comes" \
	out_has "answer: the next query chases www.cdn.test." ctl explain example.test

live_chase() {
	local out a
	out=$(ctl explain example.test) || return 1
	printf '%s\n' "$out"
	local ttl re="chase hop 1: www\.cdn\.test\. A, TTL (4[0-5]) \[resolver 127\.0\.0\.1:$UNBOUND_PORT\]"
	[[ $out == *"live chase now (1 query"* ]] || return 1
	# The CDN's TTL is 45; unbound may have held the record for a second
	# or more by now (earlier explains asked it), so it counts down. The
	# result must carry the hop's TTL, whatever it is.
	[[ $out =~ $re ]] || return 1
	ttl=${BASH_REMATCH[1]}
	for a in $WWW_A; do
		[[ $out == *"result: 2 A addresses, TTL $ttl (min over the chain):"*"$a"* ]] || return 1
	done
}
check "explain: a live chase shows each hop with its TTL and server, and the result" live_chase
chain_hops() {
	local out
	out=$(ctl explain chained.example.test) || return 1
	printf '%s\n' "$out"
	[[ $out == *"decision: chase c1.cdn.test. (source: [alias])"* ]] || return 1
	[[ $out == *"ANAME: not looked up, the [alias] entry decides [config]"* ]] || return 1
	[[ $out != *"presence cache"* ]] || return 1
	[[ $out == *"chase hop 1: c1.cdn.test. CNAME c2.cdn2.test., TTL "*"[resolver 127.0.0.1:$UNBOUND_PORT]"* ]] || return 1
	[[ $out == *"chase hop 2: c2.cdn2.test. CNAME tail.cdn.test., TTL "* ]] || return 1
	[[ $out == *"chase hop 3: tail.cdn.test. A, TTL "* ]] || return 1
	[[ $out == *"result: "*" A address"* ]]
}
check "explain an [alias] to a CNAME chain: every hop of the resolver's chain" chain_hops
say "explain chained.example.test, as an operator sees it:"
ctl explain chained.example.test | sed 's/^/    /' || true
check "query the apex (flattened)" fq example.test A --addrs "$WWW_A"
explain_cached() {
	local out a
	out=$(ctl explain example.test A) || return 1
	printf '%s\n' "$out"
	[[ $out == *"present, target www.cdn.test."*"[presence cache]"* ]] || return 1
	[[ $out == *"target cache, www.cdn.test. A: addresses, fresh, stored with TTL "* ]] || return 1
	[[ $out == *"answer: NOERROR, 2 A addresses, TTL "* ]] || return 1
	[[ $out == *"path: while the ANAME presence entry and this target entry are fresh"* ]] || return 1
	for a in $WWW_A; do
		[[ $out == *"example.test. "*" IN A $a"* ]] || return 1
	done
}
check "explain apex after a query: presence cached, target fresh, addresses, answer" explain_cached
check "explain AAAA: its own cache key, not cached yet" \
	out_has "target cache, www.cdn.test. AAAA: nothing cached" ctl explain example.test AAAA
check "explain an [alias] owner: the source is the configuration" \
	out_has "source: [alias] alias-owner.example.test. = www.cdn.test. [config" ctl explain alias-owner.example.test
check "explain a CNAME below the apex under cname = apex: relayed" \
	out_has "decision: relay" ctl explain cn.example.test
check "explain a name in no [zone]: relayed unchanged" \
	out_has "is in no [zone]" ctl explain other.test
# The root's line starts with '.': dot-stuffed on the wire, shown as is.
check "explain .: a body line starting with a dot survives the framing" \
	out_has ". is in no [zone]" ctl explain .

# flush NAME: the target cache entry goes.
check "flush www.cdn.test: one target cache value dropped" \
	out_has "target cache: 1 values for www.cdn.test. dropped" ctl flush www.cdn.test
check "explain after flush: target not cached" \
	out_has "target cache, www.cdn.test. A: nothing cached" ctl explain example.test
check "flush example.test: the presence fact goes" \
	out_has "target cache: 1 values for example.test. dropped" ctl flush example.test
check "explain after flush: presence not cached" \
	out_has "not cached: the next query probes" ctl explain example.test

# flush NAME reaches every worker's answer cache (threads = 2).
c0=$(stat_now answers_cached)
dig_at "$APEX_PORT" other.test SOA >/dev/null
for i in 1 2 3 4 5 6; do dig_at "$APEX_PORT" other.test SOA >/dev/null; done
c1=$(stat_now answers_cached)
check "answer cache serves other.test SOA ($c0 -> $c1)" test "$c1" -gt "$c0"
check "flush other.test: answer caches report the drop by every worker" \
	out_has "by 2 of 2 workers" ctl flush other.test
c2=$(stat_now answers_cached)
dig_at "$APEX_PORT" other.test SOA >/dev/null
check "after flush other.test the next query is not from the cache" \
	test "$(stat_now answers_cached)" -eq "$c2"
dig_at "$APEX_PORT" other.test SOA >/dev/null
for i in 1 2 3 4 5 6; do dig_at "$APEX_PORT" other.test SOA >/dev/null; done
c3=$(stat_now answers_cached)
check "flush (all): both caches emptied" out_has "answer cache: all answers dropped" ctl flush
dig_at "$APEX_PORT" other.test SOA >/dev/null
check "after flush the next query is not from the cache" test "$(stat_now answers_cached)" -eq "$c3"

check "reload: exit 0 and says what it did" out_has "reloaded" ctl reload

# Usage errors: exit 2, nothing sent.
check "no command: exit 2" exits 2 "$APEXCTL" -s "$SOCK"
check "unknown command: exit 2" exits 2 ctl frobnicate
check "explain without NAME: exit 2" exits 2 ctl explain
check "explain with a bad type: exit 2" exits 2 ctl explain example.test MX
check "bad name: exit 2" exits 2 ctl explain "a..b"
check "bad -t: exit 2" exits 2 "$APEXCTL" -s "$SOCK" -t 0 stats

# Errors: exit 1.
check "no such socket: exit 1" exits 1 "$APEXCTL" -s "$T_DIR/nope.sock" stats

# The daemon side of the protocol, without apexctl's checks.
raw() {
	"$PY" - "$SOCK" "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
s.sendall(sys.argv[2].encode().decode("unicode_escape").encode("latin-1"))
data = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    data += b
sys.stdout.write(data.decode("latin-1"))
PY
}
check "daemon: unknown command is .error" out_has ".error unknown command \"bogus\"" raw 'bogus\n'
check "daemon: CRLF accepted" out_has ".ok" raw 'stats\r\n'
check "daemon: an overlong line is .error" \
	out_has ".error request longer than 1100 bytes" raw "$(printf 'x%.0s' {1..1200})"
silent_client() {
	"$PY" - "$SOCK" <<'PY'
import socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.settimeout(10)
s.connect(sys.argv[1])
t = time.time()
data = b""
while True:
    b = s.recv(4096)
    if not b:
        break
    data += b
took = time.time() - t
print(data.decode(), "after %.1f s" % took)
sys.exit(0 if data == b".error no request line within 5000 ms\n" and 4 < took < 8 else 1)
PY
}
check "daemon: a client that sends nothing gets .error after 5 s" silent_client
check "daemon: stats ends in .ok" bash -c "$(declare -f raw); SOCK='$SOCK' PY='$PY'; raw 'stats\n' | tail -n 1 | grep -qx '.ok'"

# Fake daemons: one that never answers, one that hangs up mid-reply.
fake() {
	rm -f "$T_DIR/fake.sock"
	"$PY" - "$T_DIR/fake.sock" "$1" <<'PY' &
import os, socket, sys, time
path, mode = sys.argv[1], sys.argv[2]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX)
s.bind(path)
s.listen(1)
c, _ = s.accept()
c.recv(4096)
if mode == "cut":
    c.sendall(b"queries_udp 1\n")
    c.close()
else:
    time.sleep(8)
PY
	FAKE_PID=$!
	PIDS+=("$FAKE_PID")
	for _ in $(seq 50); do [[ -S $T_DIR/fake.sock ]] && break; sleep 0.1; done
}
timed_out() {
	local start end rc=0 err
	start=$(date +%s%N)
	err=$("$APEXCTL" -s "$T_DIR/fake.sock" -t 1 stats 2>&1) || rc=$?
	end=$(date +%s%N)
	echo "exit $rc after $(((end - start) / 1000000)) ms: $err"
	[[ $rc -eq 1 && $err == *"did not answer within 1 s"* && $((end - start)) -lt 3000000000 ]]
}
fake hang
check "a daemon that never answers: exit 1 after the -t timeout" timed_out
stop_pid "$FAKE_PID"
fake cut
check "a reply without its status line: exit 1" \
	bash -c "out=\$('$APEXCTL' -s '$T_DIR/fake.sock' stats 2>&1); rc=\$?; echo \"\$out\"; [[ \$rc -eq 1 && \$out == *'ended before its status line'* ]]"
stop_pid "$FAKE_PID"

# A second apexd with the same control path (other DNS ports) must not
# take the socket over from the running one.
P2=$(new_port)
write_ini "$T_DIR/second.ini" "$P2" "127.0.0.1:$NAMED_PORT"
printf '[server]\ncontrol = %s\n' "$SOCK" >>"$T_DIR/second.ini"
"$APEXD" -c "$T_DIR/second.ini" 2>"$T_DIR/busy.extra.log" >&2 &
pid=$!
PIDS+=("$pid")
wait_exit "$pid" 10 || true
check "a second apexd on the same control socket: exit 1" test "${WAIT_RC:-none}" = 1
check "... saying another process listens on it" grep -q "another process (another apexd?) is listening" "$T_DIR/busy.extra.log"
check "... and the first one still answers on it" out_has "queries_udp=" ctl stats

stop_flat_apexd
check "the control socket is removed at exit" test ! -e "$SOCK"

# A socket left behind by an apexd that died is replaced at startup.
"$PY" -c 'import socket, sys; s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.close()' "$T_DIR/second.sock"
sed -i "s|^control = .*|control = $T_DIR/second.sock|" "$T_DIR/second.ini"
"$APEXD" -c "$T_DIR/second.ini" 2>"$T_DIR/stale.extra.log" >&2 &
pid=$!
PIDS+=("$pid")
stale_replaced() {
	local i
	for ((i = 0; i < 50; i++)); do
		"$APEXCTL" -s "$T_DIR/second.sock" stats >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}
check "a stale socket file is replaced: apexctl reaches the new apexd" stale_replaced
stop_pid "$pid"
check "stats line still logged at exit" stat_is queries_udp -ge 3

# A path that is not a socket stops startup with the reason.
touch "$SOCK"
"$APEXD" -c "$T_DIR/apexd.ini" 2>"$T_DIR/second.extra.log" >&2 &
pid=$!
PIDS+=("$pid")
wait_exit "$pid" 10 || true
check "control path that is a regular file: apexd exits 1" test "${WAIT_RC:-none}" = 1
check "... and says why" grep -q "exists and is not a socket" "$T_DIR/second.extra.log"
finish
