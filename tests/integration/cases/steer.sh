#!/usr/bin/env bash
# Steering (engine/steer.c, io/steer.c, listen/move.c) with threads = 2
# over real sockets:
#   - under a light load every UDP query reaches worker 0, from 400
#     source ports the kernel's own hash would spread over both workers
#     (the case fails on an apexd without steering), and so does every
#     new TCP connection;
#   - an apexd that cannot keep up on one worker spreads over both. The
#     overload is made, not hoped for: that apexd runs under valgrind
#     --tool=none (several times slower per answer, the same code), or is
#     the sanitizer stage's build (slower too, and checking), with
#     the answer cache on so that the backend is not the bottleneck, and
#     dnsperf drives it as fast as it answers, for 4 s. Then a light
#     load brings it back to worker 0 alone, and the log says both.
#     Throughout, long-lived TCP, DoT and DoH connections keep asking:
#     they all start on worker 0, half of each kind move to worker 1 when
#     it joins and back when it leaves, and no client notices (no reset,
#     no lost or wrong answer).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119,SC2016 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
need_real_apexd
need_flat_tools
need_python_dns
need_tls_tools
need dnsperf valgrind curl h2load
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
# New TCP connections follow the steering too: 40 connections, which
# the kernel's hash would spread over both workers (all on one: 2^-39),
# all reach worker 0.
tcp_40() {
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
check "40 TCP queries, each on its own connection" tcp_40
check "TCP: worker 0 accepted all 40 ($t0 -> $(stat_now worker0_queries_tcp), $t1 -> $(stat_now worker1_queries_tcp))" \
	test "$(stat_now worker0_queries_tcp)" -eq $((t0 + 40)) -a "$(stat_now worker1_queries_tcp)" -eq "$t1"
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

# The long-lived connections: 6 TCP and 6 DoT (conns.py, a query every
# 100 ms on each) and 4 DoH (h2load, 5 GETs a second on each, for
# SECONDS). start_clients SECONDS; then conns_ready waits for all 16,
# stop_clients ends them and sets conns_rc and h2_rc.
open_conns() { echo $(($(stat_now worker0_open_conns) + $(stat_now worker1_open_conns))); }
start_clients() {
	rm -f "$T_DIR/conns.stop" "$T_DIR/conns.ready"
	"$PY" "$INT_DIR/conns.py" --tcp-port "$APEX_PORT" --dot-port "$DOT_PORT" --ca "$TLS_CA" \
		--tcp 6 --dot 6 --stop "$T_DIR/conns.stop" --ready "$T_DIR/conns.ready" --max 150 \
		>"$T_DIR/conns.txt" 2>&1 &
	CONNS_PID=$!
	PIDS+=("$CONNS_PID")
	local q64
	q64=$("$PY" -c 'import base64, dns.message; q = dns.message.make_query("mail.example.test", "A"); q.id = 0; print(base64.urlsafe_b64encode(q.to_wire()).decode().rstrip("="))')
	h2load -t 1 -c 4 -m 1 --rps=5 -D "$1" "$DOH_URL?dns=$q64" >"$T_DIR/h2load.txt" 2>&1 &
	H2_PID=$!
	PIDS+=("$H2_PID")
}
conns_ready() {
	local i
	for ((i = 0; i < 120; i++)); do
		[[ -e $T_DIR/conns.ready && $(open_conns) -eq 16 ]] && return 0
		sleep 0.5
	done
	return 1
}
# Waited for here: check runs its command in a subshell, not their parent.
stop_clients() {
	touch "$T_DIR/conns.stop"
	conns_rc=0
	wait "$CONNS_PID" || conns_rc=$?
	h2_rc=0
	wait "$H2_PID" || h2_rc=$?
	sed 's/^/  /' "$T_DIR/conns.txt"
}
h2_clean() {
	test "$h2_rc" -eq 0 || return 1
	grep -E '^requests:|^status codes:' "$T_DIR/h2load.txt"
	grep -Eq '^requests: ([0-9]+) total, [0-9]+ started, ([0-9]+) done, \2 succeeded, 0 failed, 0 errored, 0 timeout' "$T_DIR/h2load.txt" &&
		grep -q '^status codes: [1-9][0-9]* 2xx, 0 3xx, 0 4xx, 0 5xx' "$T_DIR/h2load.txt"
}
# wait_for EXPR: up to 10 s for a test(1) expression over counters to hold.
wait_for() {
	local i
	for ((i = 0; i < 40; i++)); do
		eval "$1" && return 0
		sleep 0.25
	done
	return 1
}

# --- apexctl workers N: moves on demand ----------------------------------
# The stage's own build (normal or sanitizer): connections move when an
# operator pins the number, at once and both ways, and flip-flopping
# pins leave every connection answered on worker 0.
start_tls_apexd "127.0.0.1:$NAMED_PORT" "[server]
control = $SOCK
[cache]
answers = yes" threads=2 log-level=info tcp-idle-timeout=120s
check "apexctl workers: the rule decides, one worker active" \
	out_has $'active=1\nsteering=auto' ctl workers
start_clients 20
check "16 long-lived connections open and answered" conns_ready
check "all 16 on worker 0 (worker 1: $(stat_now worker1_open_conns))" \
	test "$(stat_now worker0_open_conns)" -eq 16 -a "$(stat_now worker1_open_conns)" -eq 0
check "apexctl workers 2: pinned" out_has $'steering=pinned\npinned=2' ctl workers 2
check "half of each kind moved to worker 1 (3 TCP, 3 DoT, 2 DoH)" \
	wait_for '[[ $(stat_now worker1_open_conns) -eq 8 && $(stat_now worker0_open_conns) -eq 8 ]]'
check "the log says who pinned it" \
	grep -q "queries now go to 2 of 2 workers (was 1; .*; pinned by apexctl workers)" "$APEX_LOG"
check "worker 1 answers on them" \
	wait_for '[[ $(stat_now worker1_queries_tcp) -gt 0 && $(stat_now worker1_queries_dot) -gt 0 && $(stat_now worker1_queries_doh) -gt 0 ]]'
u1=$(stat_now worker1_queries_udp)
check "UDP from 100 ports: all answered" test "$(many_ports "$APEX_PORT" 100)" -eq 100
check "UDP reaches worker 1 too ($u1 -> $(stat_now worker1_queries_udp))" \
	test "$(stat_now worker1_queries_udp)" -gt "$u1"
flip() {
	local i
	for ((i = 0; i < 10; i++)); do
		ctl workers 1 >/dev/null && sleep 0.05 && ctl workers 2 >/dev/null && sleep 0.05 || return 1
	done
	ctl workers 1 >/dev/null
}
check "ten flips between one and two workers, ending at one" flip
check "every connection back on worker 0" \
	wait_for '[[ $(stat_now worker1_open_conns) -eq 0 && $(stat_now worker0_open_conns) -eq 16 ]]'
check "apexctl workers 3: refused, apexd runs 2" \
	out_has "3 workers asked; apexd runs 2 ([server] threads)" eval '! ctl workers 3'
check "apexctl workers auto: the rule again" out_has "steering=auto" ctl workers auto
check "the log says so" wait_for 'grep -q "the steering rule decides again, from 1 of 2 workers" "$APEX_LOG"'
stop_clients
check "TCP and DoT clients: every query answered on its own connection" test "$conns_rc" -eq 0
check "DoH client: every request answered 200 on its 4 connections" h2_clean
check "moves counted ($(stat_now conns_moved))" test "$(stat_now conns_moved)" -ge 16
stop_apexd TERM 10
check "apexd exited 0" test "${APEX_RC:-x}" = 0

# --- the overload ----------------------------------------------------------
# A sanitizer build is slow enough as it is, and runs the moves of
# connections under its checks; a normal build runs under valgrind.
if nm -D "$APEXD" 2>/dev/null | grep -q '__[at]san_init' || ldd "$APEXD" | grep -q 'lib[at]san'; then
	say "overload: the sanitizer build itself ($APEXD)"
else
	printf '#!/bin/sh\nexec valgrind --tool=none -q --log-file=%s %s "$@"\n' \
		"$T_DIR/valgrind.log" "$APEXD" >"$T_DIR/apexd-vg"
	chmod +x "$T_DIR/apexd-vg"
	APEXD=$T_DIR/apexd-vg
fi
start_tls_apexd "127.0.0.1:$NAMED_PORT" "[server]
control = $SOCK
[cache]
answers = yes" threads=2 log-level=info tcp-idle-timeout=120s

for i in $(seq 0 99); do echo "c$i.example.test A"; done >"$T_DIR/q.txt"
# Warm the answer cache, then the overload: bounded by -l.
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$T_DIR/q.txt" -n 1 -c 4 >/dev/null 2>&1 || true

start_clients 60
check "16 long-lived connections open and answered" conns_ready
check "light load: all 16 on worker 0 (worker 1: $(stat_now worker1_open_conns))" \
	test "$(stat_now worker0_open_conns)" -eq 16 -a "$(stat_now worker1_open_conns)" -eq 0
# 100 queries outstanding: a closed loop that keeps worker 0 busy, with
# less queued than half of even the kernel's default receive buffer, so
# the step up is the load rule's trial, never the backlog's step.
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$T_DIR/q.txt" -l 4 -c 4 -q 100 -t 2 >"$T_DIR/dnsperf.txt" 2>&1 || true
sed -n '/Queries sent/,/Queries lost/p' "$T_DIR/dnsperf.txt"
grep 'queries now go\|queries stay' "$APEX_LOG" | sed 's/^.*queries /  queries /'
# Under valgrind one thread runs at a time, so two workers answer about
# what one does: whether a trial keeps them depends on the machine's
# noise, that the step up was tried and judged does not.
check "overload: steering changed ($(stat_now udp_steer_changes) times)" \
	test "$(stat_now udp_steer_changes)" -ge 1
check "overload: worker 1 answered some ($(stat_now worker1_queries_udp))" \
	test "$(stat_now worker1_queries_udp)" -gt 0
check "overload: the log says why" \
	grep -q "queries now go to 2 of 2 workers (was 1; worker 0 wanted .*; a trial: do more answer more?)" "$APEX_LOG"
trials=$(stat_now udp_steer_trials)
check "overload: the steps were trials, each counted and logged ($trials)" \
	test "${trials:-0}" -ge 1 -a "${trials:-0}" -eq "$(grep -c 'a trial: do' "$APEX_LOG")"
check "overload: a trial's verdict is logged with the rate it measured" \
	grep -Eq "(queries now go to [12] of 2 workers .*the trial answered|queries stay with [12] of 2 workers: the trial answered) [0-9]+\.[0-9] % of the rate before it" "$APEX_LOG"

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
# Worker 1 joined: half of each kind went to it (3 TCP, 3 DoT, 2 DoH)
# and asked there.
w1q() {
	echo $(($(stat_now worker1_queries_tcp) + $(stat_now worker1_queries_dot) + $(stat_now worker1_queries_doh)))
}
check "overload: connections moved to worker 1 ($(stat_now conns_moved))" \
	test "$(stat_now conns_moved)" -ge 8
check "overload: worker 1 answered TCP, DoT and DoH queries on them" \
	test "$(stat_now worker1_queries_tcp)" -gt 0 -a "$(stat_now worker1_queries_dot)" -gt 0 \
	-a "$(stat_now worker1_queries_doh)" -gt 0
check "light load after it: back to worker 0 alone" back_to_one
check "the log says so" grep -q "queries now go to 1 of 2 workers (was 2" "$APEX_LOG"
conns_home() {
	local i
	for ((i = 0; i < 20; i++)); do
		[[ $(stat_now worker1_open_conns) -eq 0 ]] && return 0
		sleep 0.5
	done
	return 1
}
check "and every connection went back to worker 0" conns_home
still_2s() {
	local a
	a=$(w1q)
	sleep 2
	test "$(w1q)" -eq "$a"
}
check "which answers them all: worker 1 asked nothing more in 2 s" still_2s
check "conns moved there and back ($(stat_now conns_moved) moves)" test "$(stat_now conns_moved)" -ge 16
stop_clients
check "DoH client: every request answered 200 on its 4 connections" h2_clean
w1=$(stat_now worker1_queries_udp)
check "and worker 1 gets no more: 50 queries" test "$(many_ports "$APEX_PORT" 50)" -eq 50
check "worker 1 unchanged ($w1)" test "$(stat_now worker1_queries_udp)" -eq "$w1"
check "every change counted and logged: $(stat_now udp_steer_changes)" \
	test "$(stat_now udp_steer_changes)" -eq "$(grep -c 'queries now go to' "$APEX_LOG")"
stop_apexd TERM 30
check "apexd (overloaded) exited 0" test "${APEX_RC:-x}" = 0
finish
