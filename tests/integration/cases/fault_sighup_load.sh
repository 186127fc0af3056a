#!/usr/bin/env bash
# SIGHUP while apexd is under load loses no query: dnsperf over UDP and
# over TCP at a fixed rate for 6 s while five SIGHUPs arrive a second
# apart; dnsperf must report every query completed, none lost, no
# SERVFAIL, and apexd keeps running and exits 0. (Whatever SIGHUP reloads,
# this only asks that it does not drop queries or connections.)
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../limitlib.sh
source "$INT_DIR/limitlib.sh"
need_real_apexd
need_python_dns
need dnsperf dig

start_named
start_apexd

queries=$T_DIR/queries.txt
printf '%s\n' "www.example.test A" "example.test SOA" "nothere.example.test A" "example.test MX" >"$queries"
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -m udp -d "$queries" -l 6 -Q 2000 -c 4 -t 2 >"$T_DIR/udp.txt" 2>&1 &
udp_pid=$!
PIDS+=("$udp_pid")
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -m tcp -d "$queries" -l 6 -Q 300 -c 4 -t 2 >"$T_DIR/tcp.txt" 2>&1 &
tcp_pid=$!
PIDS+=("$tcp_pid")
sleep 0.5
for _ in 1 2 3 4 5; do
	kill -HUP "$APEX_PID"
	sleep 1
done
check "apexd alive after 5 SIGHUPs under load" proc_alive "$APEX_PID"
wait_exit "$udp_pid" 20 || true
wait_exit "$tcp_pid" 20 || true

perf_ok() {
	local f=$T_DIR/$1.txt sent completed lost
	sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' "$f")
	completed=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$f")
	lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$f")
	echo "$1: sent=$sent completed=$completed lost=$lost"
	grep 'Response codes' "$f"
	[[ ${sent:-0} -gt $2 && $lost == 0 && $completed == "$sent" ]] || return 1
	! grep -q SERVFAIL "$f"
}
check "UDP: nothing lost across 5 SIGHUPs" perf_ok udp 8000
check "TCP: nothing lost across 5 SIGHUPs" perf_ok tcp 1000
check "UDP answered afterwards" udp_burst 5
stop_apexd TERM 10
check "exit 0" test "${APEX_RC:-none}" = 0
finish
