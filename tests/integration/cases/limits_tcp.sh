#!/usr/bin/env bash
# Limits that hold over plain TCP: 2 000 idle connections, more than
# max-connections, and a client that pipelines queries and never reads its
# answers. Throughout, UDP queries are answered, apexd's memory stays
# bounded (VmRSS) and the right counters move: tcp_refused past
# max-connections, tcp_idle_closed by tcp-idle-timeout, and
# tcp_slow_reader_paused/closed for the client that reads nothing.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../limitlib.sh
source "$INT_DIR/limitlib.sh"
need_real_apexd
need_python_dns
need dig

# 2 000 connections held by the client and 2 000 by apexd, plus spares.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"
[[ $(ulimit -n) -ge 4400 ]] || skip_case "ulimit -n $(ulimit -n): cannot hold 2 000 connections"

start_named
start_apexd "127.0.0.1:$NAMED_PORT" max-connections=2100 tcp-idle-timeout=4s
rss0=$(rss_kb "$APEX_PID")
say "apexd VmRSS at start: $rss0 KiB"

# --- 2 000 idle connections, then 300 more than max-connections allows.
abuse_bg idle1 idle --port "$APEX_PORT" --count 2000 --hold 30
idle_pid=$ABUSE_PID
check "2 000 idle TCP connections open" abuse_wait_ready idle1 20
check "UDP answered with 2 000 idle TCP connections" udp_burst 20
rss1=$(rss_kb "$APEX_PID")
# An idle connection costs its struct and libuv handles, no buffers:
# well under 4 KiB each.
check "VmRSS with 2 000 idle connections: +$((rss1 - rss0)) KiB < $((8 * RSS_X)) MiB" le $((rss1 - rss0)) $((8192 * RSS_X)) "KiB"
check "TCP query still answered (connection 2 001)" bash -c \
	"dig @127.0.0.1 -p $APEX_PORT +tcp +time=2 +tries=1 www.example.test A | grep -q 'status: NOERROR'"
abuse_bg over idle --port "$APEX_PORT" --count 300 --hold 2
over_pid=$ABUSE_PID
wait_exit "$over_pid" 20 || true
cat "$T_DIR/over.out" || true
check "past max-connections: apexd closed the extra connections at once" \
	test "$(abuse_field over closed_by_server)" -ge 150
check "UDP still answered past max-connections" udp_burst 5
# tcp-idle-timeout is 4 s: all 2 000 are gone by now + 6 s.
sleep 6
abuse_finish idle1 "$idle_pid"
check "2 000 idle connections closed by tcp-idle-timeout" \
	test "$(abuse_field idle1 closed_by_server)" -ge 2000

# --- a second round: memory does not keep growing.
abuse_bg idle2 idle --port "$APEX_PORT" --count 2000 --hold 3
check "second round of 2 000 idle connections open" abuse_wait_ready idle2 20
rss2=$(rss_kb "$APEX_PID")
check "VmRSS in round 2 ($rss2 KiB) within $((2 * RSS_X)) MiB of round 1 ($rss1 KiB)" le "$rss2" $((rss1 + 2048 * RSS_X)) "KiB"
abuse_finish idle2 "$ABUSE_PID" >/dev/null

# --- a client that never reads: big answers pipelined over one connection.
rss_before=$(rss_kb "$APEX_PID")
abuse_bg slow slowread --port "$APEX_PORT" --seconds 6 --name big.example.test --qtype TXT
slow_pid=$ABUSE_PID
sleep 2
check "UDP answered while a TCP client reads nothing" udp_burst 10
max_rss=0
for _ in 1 2 3 4 5 6; do
	r=$(rss_kb "$APEX_PID")
	[[ $r -gt $max_rss ]] && max_rss=$r
	sleep 0.5
done
wait_exit "$slow_pid" 20 || true
cat "$T_DIR/slow.out" || true
check "slow reader sent queries" test "$(abuse_field slow sent)" -gt 100
# Bound: the write backlog is capped at 4 MiB (PX_CONN_WQ_HARD) and reading
# stops at 256 KiB; allow the allocator its slack.
check "VmRSS with a slow reader: +$((max_rss - rss_before)) KiB < $((16 * RSS_X)) MiB" le $((max_rss - rss_before)) $((16384 * RSS_X)) "KiB"
check "apexd alive" proc_alive "$APEX_PID"
check "UDP answered after the abuse" udp_burst 5

stop_apexd TERM 10
check "exit 0" test "${APEX_RC:-none}" = 0
stat_ge() { local v; v=$(stat_value "$1"); echo "$1=$v"; [[ ${v:-0} -ge $2 ]]; }
check "stats: tcp_refused >= 150" stat_ge tcp_refused 150
check "stats: tcp_idle_closed >= 2000" stat_ge tcp_idle_closed 2000
check "stats: tcp_slow_reader_paused >= 1" stat_ge tcp_slow_reader_paused 1
finish
