#!/usr/bin/env bash
# Out of file descriptors: apexd runs under a low `ulimit -n` (what it
# needs at start, plus the 64 it keeps for the backend side, plus 40), and a client opens TCP connections, one query
# each, until apexd stops serving new ones. Then: new connections are
# refused at once rather than left hanging, apexd logs it (rate-limited,
# not once per attempt), does not spin (CPU over 2 s while more clients
# knock), UDP keeps being answered, and once the connections close, TCP
# works again.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../limitlib.sh
source "$INT_DIR/limitlib.sh"
need_real_apexd
need_python_dns
need dig
find_apexd

start_named
# How many descriptors apexd holds once it serves (listeners, loops,
# backend sockets, a TCP connection's worth of slack).
start_apexd
udp_ok >/dev/null
base=$(fd_count "$APEX_PID")
stop_apexd TERM 10
LIMIT=$((base + 64 + 40))
say "apexd holds $base descriptors at start; running it under ulimit -n $LIMIT"

real=$APEXD
cat >"$T_DIR/apexd-lowfd.sh" <<EOF2
#!/bin/sh
ulimit -n $LIMIT || exit 1
exec "$real" "\$@"
EOF2
chmod +x "$T_DIR/apexd-lowfd.sh"
APEXD=$T_DIR/apexd-lowfd.sh
start_apexd "127.0.0.1:$NAMED_PORT" max-connections=1000 tcp-idle-timeout=30s
check "apexd runs under ulimit -n $LIMIT" bash -c \
	"grep -q '^Max open files *$LIMIT ' /proc/$APEX_PID/limits"

abuse_bg fill fdfill --port "$APEX_PORT" --count 200 --stop-after 10 --hold 25
fill_pid=$ABUSE_PID
check "connections served until descriptors ran out" abuse_wait_ready fill 30
served=$(abuse_field fill served)
refused=$(abuse_field fill refused)
say "served $served connections, then $refused refused"
check "some connections served ($served)" test "${served:-0}" -ge 5
check "then new connections refused ($refused)" test "${refused:-0}" -ge 10
check "descriptors kept free for the backend side" le "$(fd_count "$APEX_PID")" $((LIMIT - 60)) descriptors

# More clients knocking while apexd is out of descriptors.
abuse_bg knock idle --port "$APEX_PORT" --count 50 --hold 4
knock_pid=$ABUSE_PID
sleep 0.5
cpu=$(cpu_pct "$APEX_PID" 2)
check "no busy loop while out of descriptors: ${cpu}% CPU over 2 s" le "$cpu" 30 "%"
check "UDP answered while out of descriptors" udp_burst 20
wait_exit "$knock_pid" 10 || true
check "knocking clients were refused, not left hanging" \
	test "$(abuse_field knock closed_by_server)" -ge 40
logged=$(grep -c 'accept on .*: out of file descriptors' "$APEX_LOG" || true)
check "apexd logged the refusals, rate-limited ($logged lines)" bash -c "[[ $logged -ge 1 && $logged -le 15 ]]"

abuse_finish fill "$fill_pid" >/dev/null
sleep 0.5
check "TCP works again once the connections closed" bash -c \
	"dig @127.0.0.1 -p $APEX_PORT +tcp +time=2 +tries=1 www.example.test A | grep -q 'status: NOERROR'"
check "UDP answered afterwards" udp_burst 5
stop_apexd TERM 10
check "exit 0" test "${APEX_RC:-none}" = 0
stat_ge() { local v; v=$(stat_value "$1"); echo "$1=$v"; [[ ${v:-0} -ge $2 ]]; }
check "stats: tcp_fd_refused >= 10" stat_ge tcp_fd_refused 10
finish
