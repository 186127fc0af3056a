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

# Twenty queries at once from one process: each gets its SERVFAIL + EDE
# 22 within timeout + 1 s of being sent, none is lost.
parallel_servfail() {
	"$PY" - "$APEX_PORT" <<'PY'
import select, socket, sys, time
import dns.message
port = int(sys.argv[1])
socks = {}
t0 = time.monotonic()
for i in range(20):
    q = dns.message.make_query(f"q{i}.example.test", "A", use_edns=0)
    q.id = 5000 + i
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(("127.0.0.1", port))
    s.send(q.to_wire())
    socks[s] = q.id
bad = []
while socks and time.monotonic() - t0 < 2.0:
    ready, _, _ = select.select(list(socks), [], [], 2.0 - (time.monotonic() - t0))
    for s in ready:
        r = dns.message.from_wire(s.recv(65535))
        codes = [o.code for o in r.options if o.otype == 15]
        if r.id != socks[s] or r.rcode() != 2 or 22 not in codes:
            bad.append(f"id {r.id}: rcode {r.rcode()} EDE {codes}")
        del socks[s]
if socks or bad:
    sys.exit(f"{len(socks)} unanswered after 2 s; wrong: {bad}")
print(f"20 SERVFAIL + EDE 22 in {time.monotonic() - t0:.2f} s")
PY
}
check "silent: 20 concurrent queries all get SERVFAIL + EDE 22 within 2 s" parallel_servfail
check "apexd alive after silent backend" proc_alive "$APEX_PID"
stop_apexd TERM 10
check "exit 0 (silent backend run)" test "${APEX_RC:-none}" = 0
check "stats: backend_timeouts >= 24" bash -c "[[ \$(grep -o 'backend_timeouts=[0-9]*' '$APEX_LOG' | tail -n1 | cut -d= -f2) -ge 24 ]]"

# A backend whose answers do not match the query (another ID, another
# question) is no better than a silent one: apexd must not relay them, and
# the client gets SERVFAIL + EDE 22 after the timeout.
for mode in wrong-id wrong-question; do
	start_blackhole "$mode"
	start_apexd "127.0.0.1:$BLACKHOLE_PORT" timeout=1s
	check "$mode backend: not relayed, SERVFAIL + EDE 22 within 2 s" within 2000 \
		apex_q --edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-ede 22
	check "$mode backend, TCP client: SERVFAIL + EDE 22 within 2 s" within 2000 \
		apex_q --tcp --edns --timeout 4 www.example.test A --expect-rcode SERVFAIL --expect-ede 22
	stop_apexd TERM 10
	check "$mode backend: exit 0" test "${APEX_RC:-none}" = 0
	check "$mode backend: stats backend_unmatched > 0" bash -c \
		"[[ \$(grep -o 'backend_unmatched=[0-9]*' '$APEX_LOG' | tail -n1 | cut -d= -f2) -gt 0 ]]"
done
finish
