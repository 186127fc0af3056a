#!/usr/bin/env bash
# Limits that hold over DoT and DoH: 500 TLS handshakes that never finish
# (250 connections that send nothing, 250 that send half a ClientHello)
# are closed by the handshake deadline (5 s, PX_TLS_HANDSHAKE_MS) although
# tcp-idle-timeout is 30 s; a DoT client that pipelines queries and never
# reads; a DoH client that opens thousands of HTTP/2 streams and reads
# nothing, and one that cancels every stream at once (rapid reset).
# Throughout, UDP queries are answered, apexd's memory (VmRSS) stays
# bounded, DoH and DoT still serve a well-behaved client afterwards, and
# the counters say what happened.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
# shellcheck source=../limitlib.sh
source "$INT_DIR/limitlib.sh"
need_real_apexd
need_tls_tools
need dig kdig

ulimit -n 4096 2>/dev/null || true
start_named
start_tls_apexd "127.0.0.1:$NAMED_PORT" "" max-connections=2000 tcp-idle-timeout=30s
rss0=$(rss_kb "$APEX_PID")
say "apexd VmRSS at start: $rss0 KiB"

dot_ok() { kdig @127.0.0.1 -p "$DOT_PORT" +tls +tls-ca="$TLS_CA" +tls-hostname=localhost +time=3 +retry=0 www.example.test A | grep -q 'NOERROR'; }
doh_ok() { ddoh --method get www.example.test A --rcode NOERROR --min-answers 1; }

# --- 500 stalled handshakes.
abuse_bg stall_dot tlsstall --port "$DOT_PORT" --count 250 --hold 15
dot_pid=$ABUSE_PID
abuse_bg stall_doh tlsstall --port "$DOH_PORT" --count 250 --half --hold 15
doh_pid=$ABUSE_PID
check "250 silent DoT connections open" abuse_wait_ready stall_dot 15
check "250 half-ClientHello DoH connections open" abuse_wait_ready stall_doh 15
check "UDP answered with 500 stalled handshakes" udp_burst 20
check "a real DoT client is served meanwhile" dot_ok
rss1=$(rss_kb "$APEX_PID")
check "VmRSS with 500 stalled handshakes: +$((rss1 - rss0)) KiB < $((24 * RSS_X)) MiB" le $((rss1 - rss0)) $((24576 * RSS_X)) KiB
wait_exit "$dot_pid" 25 || true
wait_exit "$doh_pid" 25 || true
cat "$T_DIR/stall_dot.out" "$T_DIR/stall_doh.out" || true
check "silent DoT: all 250 closed by apexd" test "$(abuse_field stall_dot closed_by_server)" -eq 250
check "half ClientHello DoH: all 250 closed by apexd" test "$(abuse_field stall_doh closed_by_server)" -eq 250
# The deadline is 5 s from accept; connecting 250 takes a moment too.
check "closed by the handshake deadline, not the 30 s idle timeout" bash -c \
	"awk -v a=$(abuse_field stall_dot last_close_s) -v b=$(abuse_field stall_doh last_close_s) 'BEGIN { exit !(a < 12 && b < 12) }'"

# --- a DoT client that never reads its answers.
rss_before=$(rss_kb "$APEX_PID")
abuse_bg slowdot slowread --tls --ca "$TLS_CA" --port "$DOT_PORT" --seconds 6 --name big.example.test --qtype TXT
slow_pid=$ABUSE_PID
sleep 2
check "UDP answered while a DoT client reads nothing" udp_burst 10
max_rss=0
for _ in 1 2 3 4 5 6; do
	r=$(rss_kb "$APEX_PID")
	[[ $r -gt $max_rss ]] && max_rss=$r
	sleep 0.5
done
wait_exit "$slow_pid" 20 || true
cat "$T_DIR/slowdot.out" || true
check "DoT slow reader sent queries" test "$(abuse_field slowdot sent)" -gt 100
check "VmRSS with a DoT slow reader: +$((max_rss - rss_before)) KiB < $((16 * RSS_X)) MiB" le $((max_rss - rss_before)) $((16384 * RSS_X)) KiB

# --- a DoH client opening thousands of streams, reading nothing.
rss_before=$(rss_kb "$APEX_PID")
abuse_bg flood h2flood --ca "$TLS_CA" --port "$DOH_PORT" --path "$DOH_PATH" --streams 20000 --seconds 8 --hold 14
flood_pid=$ABUSE_PID
check "DoH flood under way" abuse_wait_ready flood 15
check "UDP answered during the DoH stream flood" udp_burst 10
check "a real DoH client is served during the flood" doh_ok
max_rss=$(rss_kb "$APEX_PID")
wait_exit "$flood_pid" 30 || true
cat "$T_DIR/flood.out" || true
check "VmRSS during the DoH flood: +$((max_rss - rss_before)) KiB < $((24 * RSS_X)) MiB" le $((max_rss - rss_before)) $((24576 * RSS_X)) KiB
check "flood: apexd refused streams past its limit or stopped reading" bash -c \
	"[[ \$(sed -n 's/.*rst=\([0-9]*\).*/\1/p' '$T_DIR/flood.out') -gt 0 || \$(sed -n 's/.*streams_sent=\([0-9]*\).*/\1/p' '$T_DIR/flood.out') -lt 20000 ]]"

# --- rapid reset: every stream cancelled right after it was opened.
abuse_bg reset h2flood --ca "$TLS_CA" --port "$DOH_PORT" --path "$DOH_PATH" --streams 20000 --seconds 6 --hold 8 --reset
reset_pid=$ABUSE_PID
check "DoH rapid reset under way" abuse_wait_ready reset 15
check "UDP answered during the rapid reset" udp_burst 10
r=$(rss_kb "$APEX_PID")
check "VmRSS during the rapid reset: +$((r - rss_before)) KiB < $((24 * RSS_X)) MiB" le $((r - rss_before)) $((24576 * RSS_X)) KiB
wait_exit "$reset_pid" 30 || true
cat "$T_DIR/reset.out" || true

check "apexd alive" proc_alive "$APEX_PID"
check "DoH serves a new client afterwards" doh_ok
check "DoT serves a new client afterwards" dot_ok
check "UDP answered afterwards" udp_burst 5

stop_apexd TERM 10
check "exit 0" test "${APEX_RC:-none}" = 0
stat_ge() { local v; v=$(stat_value "$1"); echo "$1=$v"; [[ ${v:-0} -ge $2 ]]; }
check "stats: tls_handshake_timeouts >= 500" stat_ge tls_handshake_timeouts 500
check "stats: tcp_slow_reader_paused >= 1" stat_ge tcp_slow_reader_paused 1
finish
