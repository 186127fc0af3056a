#!/usr/bin/env bash
# UDP steering (engine/steer.c, io/steer.c) with threads = 2 over real
# sockets:
#   - under a light load every UDP query reaches worker 0, from 400
#     source ports the kernel's own hash would spread over both workers
#     (the case fails on an apexd without steering), and TCP is left to
#     the kernel;
#   - an apexd that cannot keep up on one worker spreads over both. The
#     overload is made, not hoped for: that apexd runs under valgrind
#     --tool=none (several times slower per answer, the same code), with
#     the answer cache on so that the backend is not the bottleneck, and
#     dnsperf drives it as fast as it answers, for 4 s. Then a light
#     load brings it back to worker 0 alone, and the log says both.
# valgrind cannot run an ASan binary: that half runs the normal build's
# apexd (build/, built first by run-all.sh) whichever stage runs the case.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need_python_dns
need dnsperf valgrind curl
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock

start_flat_backend
MPORT=$(new_port)
start_flat_apexd "[server]
control = $SOCK
[listen]
metrics = 127.0.0.1:$MPORT
[cache]
answers = yes" threads=2


# many_ports PORT COUNT [RATE]: COUNT queries over UDP, each from a
# socket of its own (a new source port), RATE a second (default: as fast
# as answered); prints how many were answered.
many_ports() {
	"$PY" - "$1" "$2" "${3:-0}" <<'PYEOF'
import socket, sys, time
import dns.message, dns.query
port, count, rate = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ok = 0
for i in range(count):
    q = dns.message.make_query(f"p{i}.example.test", "A")
    try:
        dns.query.udp(q, "127.0.0.1", port=port, timeout=2)
        ok += 1
    except Exception:
        pass
    if rate > 0:
        time.sleep(1 / rate)
print(ok)
PYEOF
}

w0=$(stat_now worker0_queries_udp)
w1=$(stat_now worker1_queries_udp)
check "stats list UDP queries by worker and the active-worker gauge" \
	test -n "$w0" -a -n "$w1" -a -n "$(stat_now udp_workers_active)"
check "400 queries from 400 source ports all answered" test "$(many_ports "$APEX_PORT" 400)" -eq 400
check "light load: every UDP query reached worker 0 ($w0 -> $(stat_now worker0_queries_udp))" \
	test "$(stat_now worker0_queries_udp)" -ge $((w0 + 400))
check "light load: worker 1 got none ($w1 -> $(stat_now worker1_queries_udp))" \
	test "$(stat_now worker1_queries_udp)" -eq "$w1"
check "light load: one worker takes UDP queries, never changed" \
	test "$(stat_now udp_workers_active)" -eq 1 -a "$(stat_now udp_steer_changes)" -eq 0
# TCP connections are the kernel's to spread: 40 connections reach both
# workers (all on one: 2^-39), so steering did not touch them.
tcp_both() {
	"$PY" - "$APEX_PORT" <<'PYEOF'
import sys
import dns.message, dns.query
for i in range(40):
    dns.query.tcp(dns.message.make_query(f"t{i}.example.test", "A"), "127.0.0.1",
                  port=int(sys.argv[1]), timeout=2)
PYEOF
}
t0=$(stat_now worker0_queries_tcp)
t1=$(stat_now worker1_queries_tcp)
check "40 TCP queries, each on its own connection" tcp_both
check "TCP: both workers accepted some ($t0 -> $(stat_now worker0_queries_tcp), $t1 -> $(stat_now worker1_queries_tcp))" \
	test "$(stat_now worker0_queries_tcp)" -gt "$t0" -a "$(stat_now worker1_queries_tcp)" -gt "$t1"
PROMCHECK=("$PY" "$INT_DIR/promcheck.py")
prom_steer() {
	local f=$T_DIR/metrics.txt
	curl -sf --max-time 5 "http://127.0.0.1:$MPORT/metrics" -o "$f" &&
		"${PROMCHECK[@]}" check "$f" --prefix apexd_ &&
		[[ $("${PROMCHECK[@]}" value "$f" apexd_udp_workers_active) == 1 ]] &&
		[[ $("${PROMCHECK[@]}" value "$f" 'apexd_worker_queries_udp_total{worker="1"}') == "$w1" ]] &&
		[[ $("${PROMCHECK[@]}" value "$f" 'apexd_worker_queries_udp_total{worker="0"}') -ge 401 ]] &&
		"${PROMCHECK[@]}" value "$f" apexd_udp_steer_changes_total
}
check "metrics: well formed; the gauge and the per-worker counters agree" prom_steer
stop_apexd TERM 10
check "apexd exited 0" test "${APEX_RC:-x}" = 0

# --- the overload, under valgrind ----------------------------------------
VG_APEXD=$APEX_SOURCE_DIR/build/proxy/apexd
[[ -x $VG_APEXD ]] || VG_APEXD=$APEXD
if nm -D "$VG_APEXD" 2>/dev/null | grep -q __asan_init || ldd "$VG_APEXD" | grep -q libasan; then
	fail "no apexd without ASan for valgrind: build build/ first ($VG_APEXD)"
	finish
fi
printf '#!/bin/sh\nexec valgrind --tool=none -q --log-file=%s %s "$@"\n' \
	"$T_DIR/valgrind.log" "$VG_APEXD" >"$T_DIR/apexd-vg"
chmod +x "$T_DIR/apexd-vg"
APEXD=$T_DIR/apexd-vg
start_flat_apexd "[server]
control = $SOCK
[cache]
answers = yes" threads=2 log-level=info

for i in $(seq 0 99); do echo "c$i.example.test A"; done >"$T_DIR/q.txt"
# Warm the answer cache, then the overload: bounded by -l.
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$T_DIR/q.txt" -n 1 -c 4 >/dev/null 2>&1 || true
# 100 queries outstanding: a closed loop that keeps worker 0 busy, with
# less queued than half of even the kernel's default receive buffer, so
# the step up is the load rule's trial, never the backlog's step.
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$T_DIR/q.txt" -l 4 -c 4 -q 100 -t 2 >"$T_DIR/dnsperf.txt" 2>&1 || true
sed -n '/Queries sent/,/Queries lost/p' "$T_DIR/dnsperf.txt"
grep 'UDP queries' "$APEX_LOG" | sed 's/^.*UDP queries/  UDP queries/'
# Under valgrind one thread runs at a time, so two workers answer about
# what one does: whether a trial keeps them depends on the machine's
# noise, that the step up was tried and judged does not.
check "overload: steering changed ($(stat_now udp_steer_changes) times)" \
	test "$(stat_now udp_steer_changes)" -ge 1
check "overload: worker 1 answered some ($(stat_now worker1_queries_udp))" \
	test "$(stat_now worker1_queries_udp)" -gt 0
check "overload: the log says why" \
	grep -q "UDP queries now go to 2 of 2 workers (was 1; worker 0 wanted .*; a trial: do more answer more?)" "$APEX_LOG"
trials=$(stat_now udp_steer_trials)
check "overload: the steps were trials, each counted and logged ($trials)" \
	test "${trials:-0}" -ge 1 -a "${trials:-0}" -eq "$(grep -c 'a trial: do' "$APEX_LOG")"
check "overload: a trial's verdict is logged with the rate it measured" \
	grep -Eq "(UDP queries now go to [12] of 2 workers .*the trial answered|UDP queries stay with [12] of 2 workers: the trial answered) [0-9]+\.[0-9] % of the rate before it" "$APEX_LOG"

# A light load again: 10 windows in a row where one worker would do, at
# 25 queries a second, each a wake-up of its own.
back_to_one() {
	local i
	# Up to 40 s: bounces during the overload may have made the wait
	# for a step down several seconds of wake-ups.
	for ((i = 0; i < 40; i++)); do
		[[ $(stat_now udp_workers_active) -eq 1 ]] && return 0
		many_ports "$APEX_PORT" 25 25 >/dev/null
	done
	return 1
}
check "light load after it: back to worker 0 alone" back_to_one
check "the log says so" grep -q "UDP queries now go to 1 of 2 workers (was 2" "$APEX_LOG"
w1=$(stat_now worker1_queries_udp)
check "and worker 1 gets no more: 50 queries" test "$(many_ports "$APEX_PORT" 50)" -eq 50
check "worker 1 unchanged ($w1)" test "$(stat_now worker1_queries_udp)" -eq "$w1"
check "every change counted and logged: $(stat_now udp_steer_changes)" \
	test "$(stat_now udp_steer_changes)" -eq "$(grep -c 'UDP queries now go to' "$APEX_LOG")"
stop_apexd TERM 30
check "apexd under valgrind exited 0" test "${APEX_RC:-x}" = 0
finish
