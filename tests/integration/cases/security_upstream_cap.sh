#!/usr/bin/env bash
# apexd's own queries in flight are capped per worker (PX_UP_MAX_INFLIGHT,
# proxy/flat/upstream.h): a flood of distinct names in a configured zone, in
# front of a backend that never answers, makes one ANAME probe per name,
# each waiting until the backend timeout. With 6000 names on one worker,
# 4096 probes go out (aname_probes), the rest are refused
# (aname_probe_unsent, upstream_busy) and tried again later; every client
# still gets its SERVFAIL at the deadline. The probes share a few UDP
# sockets (flat/upstream.c: at most 4 per server taking new queries, each
# retired after 64), so apexd's open file descriptors grow by about
# CAP / 64 at the peak, not by one per probe.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_python_dns
find_apexd

CAP=4096
N=6000

start_blackhole silent
APEX_PORT=$(new_port)
write_ini "$T_DIR/apexd.ini" "$APEX_PORT" "127.0.0.1:$BLACKHOLE_PORT" threads=1 timeout=6s
printf '\n[flatten]\ndeadline = 6s\n[zone example.test]\n' >>"$T_DIR/apexd.ini"
"$APEXD" -c "$T_DIR/apexd.ini" 2>"$APEX_LOG" >&2 &
APEX_PID=$!
PIDS+=("$APEX_PID")
started() {
	local i
	for ((i = 0; i < 50; i++)); do
		grep -q "listening on" "$APEX_LOG" && return 0
		proc_alive "$APEX_PID" || return 1
		sleep 0.1
	done
	return 1
}
started || { fail "apexd did not start"; finish; }
say "apexd pid $APEX_PID on port $APEX_PORT, silent backend $BLACKHOLE_PORT"
fds() { find "/proc/$APEX_PID/fd" -mindepth 1 -maxdepth 1 | wc -l; }
FD0=$(fds)

# The flood: N distinct names, one datagram each, nobody waits.
"$PY" - "$APEX_PORT" "$N" <<'PY'
import socket, sys, time
import dns.message
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 22)
for i in range(n):
    s.sendto(dns.message.make_query(f"n{i}.example.test", "A").to_wire(), ("127.0.0.1", port))
    # A short breath every 500 so apexd's receive buffer never overflows.
    if i % 500 == 499:
        time.sleep(0.01)
PY
# The probes wait for the backend's 6 s timeout: sample meanwhile.
peak=0
for _ in $(seq 30); do
	f=$(fds)
	((f > peak)) && peak=$f
	sleep 0.1
done
say "open descriptors: $FD0 before, $peak at the peak of the flood"
# Probe sockets: CAP / 64 retired ones still waiting, plus 4. Slack:
# backend sockets open as client IDs collide (64 at most).
SOCKS=$((CAP / 64 + 4))
check "descriptors: shared probe sockets, not one each: $peak <= $FD0 + $SOCKS + 64" \
	test "$peak" -le $((FD0 + SOCKS + 64))
check "and the probes really were in flight on them: $peak >= $FD0 + $SOCKS / 2" \
	test "$peak" -ge $((FD0 + SOCKS / 2))
stop_apexd TERM 20
check "apexd drains and exits 0" test "${APEX_RC:-none}" = 0
# What apexd received (the kernel may drop a few on a loaded machine).
R=$(stat_value queries_udp)
check "apexd received well over $CAP of the $N queries ($R)" test "${R:-0}" -ge $((CAP + 500))
# One probe per name, each tried up to 3 times (a try that is not sent
# is tried again a little later): every try either went out (aname_probes)
# or was refused at the cap (aname_probe_unsent = upstream_busy), and the
# tries are the names plus the retries. No probe got a verdict.
S=$(stat_value aname_probes)
U=$(stat_value aname_probe_unsent)
T=$(stat_value aname_probe_retries)
say "probes sent $S, not sent $U, retries $T, names $R"
check "stats: at least the cap's worth of probes went out" test "${S:-0}" -ge "$CAP"
check "stats: the names past the cap were refused at first" test "${U:-0}" -ge $((R - CAP))
check "stats: sent + not sent = names + retries ($S + $U = $R + $T)" \
	test "$((${S:-0} + ${U:-0}))" -eq "$((R + ${T:-0}))"
check "stats: retries within 2 per name" test "${T:-0}" -le $((2 * R))
check "stats: every refusal was the cap" stat_is upstream_busy -eq "${U:-0}"
check "stats: no probe got a verdict" stat_is aname_probe_failed -eq "$R"
check "stats: every query answered SERVFAIL at the backend timeout" stat_is backend_timeouts -eq "$R"
finish
