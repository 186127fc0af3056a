#!/usr/bin/env bash
# BIND dies in the middle of a load and comes back on the same port.
# dnsperf runs through apexd the whole time; BIND is killed (SIGKILL, by
# PID) after 2 s and restarted 2 s later. apexd does not crash; while BIND
# is gone every query gets a prompt SERVFAIL with EDE 23 (the backend
# refuses), none is lost; answers resume within a second of BIND being
# back; and apexd exits 0 with the counters to show it.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../limitlib.sh
source "$INT_DIR/limitlib.sh"
need_real_apexd
need_python_dns
need dnsperf dig named

start_named
start_apexd "127.0.0.1:$NAMED_PORT" timeout=1s

queries=$T_DIR/queries.txt
printf '%s\n' "www.example.test A" "example.test SOA" "nothere.example.test A" "example.test MX" >"$queries"
dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$queries" -l 9 -Q 500 -c 4 -t 3 >"$T_DIR/dnsperf.txt" 2>&1 &
perf_pid=$!
PIDS+=("$perf_pid")
sleep 2

kill -KILL "$NAMED_PID"
wait "$NAMED_PID" 2>/dev/null || true
say "BIND (pid $NAMED_PID) killed"
check "BIND gone: SERVFAIL + EDE 23 within 1.5 s" within 1500 \
	apex_q --edns --timeout 3 www.example.test A --expect-rcode SERVFAIL --expect-ede 23
check "BIND gone: TCP client gets SERVFAIL + EDE 23 too" within 1500 \
	apex_q --tcp --edns --timeout 3 www.example.test A --expect-rcode SERVFAIL --expect-ede 23
check "apexd alive while BIND is gone" proc_alive "$APEX_PID"
sleep 1.5

# Same configuration, same port.
named -g -n 1 -c "$T_DIR/named/named.conf" >>"$T_DIR/named.log" 2>&1 &
NAMED_PID=$!
PIDS+=("$NAMED_PID")
# Poll BIND itself, then apexd, 20 ms apart: apexd must follow within 1 s.
resume() {
	"$PY" - "$NAMED_PORT" "$APEX_PORT" <<'PY'
import socket, sys, time
import dns.message, dns.query, dns.rcode
bind, apex = int(sys.argv[1]), int(sys.argv[2])
def ok(port):
    q = dns.message.make_query("www.example.test", "A")
    try:
        r = dns.query.udp(q, "127.0.0.1", port=port, timeout=0.2)
        return r.rcode() == dns.rcode.NOERROR and len(r.answer) > 0
    except Exception:
        return False
t0 = time.monotonic()
while not ok(bind):
    if time.monotonic() - t0 > 15:
        sys.exit("BIND did not come back within 15 s")
    time.sleep(0.02)
t1 = time.monotonic()
while not ok(apex):
    if time.monotonic() - t1 > 5:
        sys.exit("apexd did not answer within 5 s of BIND")
    time.sleep(0.02)
ms = (time.monotonic() - t1) * 1000
print(f"BIND back after {t1 - t0:.2f} s; apexd answered {ms:.0f} ms later")
sys.exit(0 if ms <= 1000 else 1)
PY
}
check "answers resume within 1 s of BIND being back" resume

wait_exit "$perf_pid" 30 || true
sed -n '/Statistics/,/Latency/p' "$T_DIR/dnsperf.txt"
field() { sed -n "s/^ *$1: *\([0-9]*\).*/\1/p" "$T_DIR/dnsperf.txt"; }
check "dnsperf: queries sent" test "$(field 'Queries sent')" -gt 1000
check "dnsperf: no query lost across the restart" test "$(field 'Queries lost')" -eq 0
check "dnsperf: SERVFAILs while BIND was gone" grep -qE 'SERVFAIL [1-9]' "$T_DIR/dnsperf.txt"
check "dnsperf: NOERROR answers" grep -qE 'NOERROR [1-9]' "$T_DIR/dnsperf.txt"
check "answers after the restart" udp_burst 5
check "apexd alive" proc_alive "$APEX_PID"
stop_apexd TERM 10
check "exit 0" test "${APEX_RC:-none}" = 0
stat_ge() { local v; v=$(stat_value "$1"); echo "$1=$v"; [[ ${v:-0} -ge $2 ]]; }
check "stats: backend_errors > 0" stat_ge backend_errors 1
check "stats: servfail_sent > 0" stat_ge servfail_sent 1
finish
