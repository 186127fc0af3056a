#!/usr/bin/env bash
# A dead backend: refused (nothing listens: ICMP port unreachable) gives
# SERVFAIL + EDE 23 at once; silent (a blackhole that reads and never
# answers) gives SERVFAIL + EDE 22 within [backend] timeout. Without EDNS
# the SERVFAIL carries no OPT. apexd never hangs and keeps running.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns
need dig

# Refused. The timeout is long (3 s) so that "promptly" (< 1.5 s) proves
# apexd noticed the refusal instead of waiting for the timer.
DEAD_PORT=$(new_port)
start_apexd "127.0.0.1:$DEAD_PORT" timeout=3s
check "refused, EDNS: SERVFAIL + EDE 23 promptly" within 1500 \
	apex_q --edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-ede 23
check "refused, no EDNS: plain SERVFAIL, no OPT" within 1500 \
	apex_q --no-edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-edns no
check "refused, TCP client: SERVFAIL + EDE 23" within 1500 \
	apex_q --tcp --edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-ede 23
check "refused: dig shows EDE 23" bash -c \
	"dig @127.0.0.1 -p $APEX_PORT +time=4 +tries=1 +nocookie www.example.test A | grep -q 'EDE: 23'"
check "apexd alive after refused backend" proc_alive "$APEX_PID"
stop_apexd TERM 10
check "exit 0 (refused backend run)" test "${APEX_RC:-none}" = 0
check "stats: backend_errors > 0" bash -c "[[ \$(grep -o 'backend_errors=[0-9]*' '$APEX_LOG' | tail -n1 | cut -d= -f2) -gt 0 ]]"

# Silent. timeout = 1s, the answer must come by timeout + 1 s.
start_blackhole
start_apexd "127.0.0.1:$BLACKHOLE_PORT" timeout=1s
check "silent, EDNS: SERVFAIL + EDE 22 within 2 s" within 2000 \
	apex_q --edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-ede 22
check "silent, no EDNS: plain SERVFAIL within 2 s" within 2000 \
	apex_q --no-edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-edns no
check "silent, TCP client: SERVFAIL + EDE 22 within 2 s" within 2000 \
	apex_q --tcp --edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-ede 22
check "silent: dig shows EDE 22" bash -c \
	"dig @127.0.0.1 -p $APEX_PORT +time=4 +tries=1 +nocookie www.example.test A | grep -q 'EDE: 22'"

# Twenty queries at once: each gets its SERVFAIL, none is lost.
parallel_servfail() {
	local i pids=() rc=0
	for ((i = 0; i < 20; i++)); do
		apex_q --edns --timeout 4 "q$i.example.test" A --expect-rcode SERVFAIL --expect-ede 22 >/dev/null &
		pids+=("$!")
	done
	for i in "${pids[@]}"; do
		wait "$i" || rc=1
	done
	return "$rc"
}
check "silent: 20 concurrent queries all get SERVFAIL in 3 s" within 3000 parallel_servfail
check "apexd alive after silent backend" proc_alive "$APEX_PID"
stop_apexd TERM 10
check "exit 0 (silent backend run)" test "${APEX_RC:-none}" = 0
check "stats: backend_timeouts >= 24" bash -c "[[ \$(grep -o 'backend_timeouts=[0-9]*' '$APEX_LOG' | tail -n1 | cut -d= -f2) -ge 24 ]]"
finish
