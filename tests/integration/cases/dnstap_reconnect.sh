#!/usr/bin/env bash
# [server] dnstap with a collector that comes and goes: absent when apexd
# starts (apexd serves anyway, says so once, and counts what it drops),
# started later (apexd connects within a few seconds and the queries after
# that are captured, each once), stopped (apexd notices, keeps serving,
# drops and counts again), started again (apexd reconnects).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need fstrm_capture dnstap-ldns dig
TAPDEC=("$PY" "$INT_DIR/tapdec.py")

SOCK=$T_DIR/tap.sock
start_flat_backend
start_flat_apexd "[server]
dnstap = unix:$SOCK"

# wait_log N PATTERN: until apexd's log has N lines matching PATTERN (10 s:
# apexd tries the socket again every second).
wait_log() {
	for _ in $(seq 100); do
		[[ $(grep -cE "$2" "$APEX_LOG") -ge $1 ]] && return 0
		sleep 0.1
	done
	echo "fewer than $1 log lines match: $2"
	return 1
}
# ask NAME: one UDP query, answered NXDOMAIN by BIND through apexd.
ask() { dig @127.0.0.1 -p "$APEX_PORT" +time=2 +tries=1 +nocookie "$1" TXT | grep -q 'status: NXDOMAIN'; }
# capture FILE: fstrm_capture on SOCK writing FILE, as our child.
capture() {
	rm -f "$SOCK"
	fstrm_capture -t protobuf:dnstap.Dnstap -u "$SOCK" -w "$1" >>"$T_DIR/capture.extra.log" 2>&1 &
	CAP_PID=$!
	PIDS+=("$CAP_PID")
}
# names FILE: the query names of a capture's AUTH_QUERY messages, sorted.
names() {
	"${TAPDEC[@]}" "$1" | "$PY" -c 'import json, sys, dns.message
for l in sys.stdin:
    m = json.loads(l)
    if m["type"] == "AUTH_QUERY":
        print(dns.message.from_wire(bytes.fromhex(m["query"])).question[0].name)' | sort
}

check "no collector: apexd says it cannot reach it" wait_log 1 "dnstap: cannot reach unix:$SOCK"
for i in 1 2 3 4 5; do check "no collector: query a$i answered" ask "a$i.example.test"; done

capture "$T_DIR/cap1.fstrm"
check "collector started: apexd connects" wait_log 1 "dnstap: writing to unix:$SOCK\$"
for i in 1 2 3 4; do check "query b$i answered" ask "b$i.example.test"; done
printf 'b%s.example.test.\n' 1 2 3 4 >"$T_DIR/want1"
# Before the collector goes: until it has written b1..b4 (its SIGHUP
# flushes its file; apexd's writer thread takes them within 2 s).
written() {
	for _ in $(seq 50); do
		kill -HUP "$CAP_PID"
		sleep 0.2
		diff <(names "$T_DIR/cap1.fstrm" 2>/dev/null | grep -v '^example.test.$') "$T_DIR/want1" >/dev/null && return 0
	done
	return 1
}
check "the collector has b1..b4" written
kill -TERM "$CAP_PID"
wait_exit "$CAP_PID" 10 || true
check "collector stopped" test ! -e "/proc/$CAP_PID"
# apexd learns of it at its next write: these queries are answered all the
# same, some may be lost in that write, the rest dropped and counted.
for i in 1 2 3 4 5 6; do
	check "collector gone: query c$i answered" ask "c$i.example.test"
	sleep 0.3
done
check "  apexd noticed" wait_log 1 "dnstap: unix:$SOCK closed"

capture "$T_DIR/cap2.fstrm"
check "collector back: apexd reconnects" wait_log 2 "dnstap: writing to unix:$SOCK\$"
for i in 1 2 3; do check "query d$i answered" ask "d$i.example.test"; done
# apexd writes what it queued before it exits.
stop_flat_apexd
kill -TERM "$CAP_PID"
wait_exit "$CAP_PID" 10 || true

printf 'd%s.example.test.\n' 1 2 3 >"$T_DIR/want2"
check "first capture: b1..b4, each once, nothing from before it" \
	diff <(names "$T_DIR/cap1.fstrm" | grep -v '^example.test.$') "$T_DIR/want1"
check "second capture: d1..d3, each once" \
	diff <(names "$T_DIR/cap2.fstrm" | grep -v '^example.test.$') "$T_DIR/want2"
check "  and dnstap-ldns reads it" bash -c "dnstap-ldns -q -r '$T_DIR/cap2.fstrm' | grep -q ' AR 127.0.0.1 UDP .*\"d3.example.test.\" IN TXT'"
dropped=$(stat_value dnstap_dropped)
# a1..a5 (2 messages each) at least, and most of c1..c6.
check "dnstap_dropped=$dropped counts what had no collector (>= 10)" test "${dropped:-0}" -ge 10
check "dnstap_sent=$(stat_value dnstap_sent) covers both captures" \
	test "$(stat_value dnstap_sent)" -ge 14
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$APEX_LOG'"
finish
