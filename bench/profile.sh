#!/usr/bin/env bash
# bench/profile.sh - where apexd's CPU goes on the UDP relay path.
#
#     bench/profile.sh [plain|flat] [cpu|perf|strace|syscalls|callgrind] [SECONDS]
#
# Starts BIND (the bench zones) and apexd (build-bench/, as bench/run.sh
# builds it: `threads = 2`, [zone bench.test], [zone cdn.test]) on free
# loopback ports, warms the caches, then drives apexd over UDP with
# dnsperf (-c 16 -q 128, bounded by -l) while measuring:
#   cpu        apexd's CPU per answer from /proc/PID/stat (default)
#   perf       `perf record -g` of apexd, then the top of `perf report`
#   strace     `strace -c -f`: system calls per answer (slows apexd ~20 x)
#   syscalls   `perf stat`: system calls (all, and by kind) and context
#              switches per answer, without slowing apexd
#   callgrind  apexd under valgrind --tool=callgrind (slow; instructions
#              per answer of apexd's own code, stable on a noisy box)
#   idle       after SECONDS of load as fast as answered (which spreads
#              UDP over the workers), 2 s of rest, then 30 s without a
#              query: apexd's CPU (/proc/PID/stat) and context switches
#              (every thread's /proc/PID/task/*/status) over those 30 s,
#              which should both be 0 (issue 16, target 7)
# Needs bench/run.sh to have generated .run/bench/data once (run it with
# TARGETS=apexd EXTRAS= DURATION=1 TRANSPORTS=udp if needed).
# PROTO=tcp sends the load over TCP (dnsperf -m tcp) instead of UDP.
# QPS=n offers a fixed rate (dnsperf -Q) in the measured run instead of
# saturating: the light-load case, where wake-ups dominate.
# APEXD=path uses another binary (an A/B of two builds); THREADS=n;
# PROXY=dnsdist|dnsdist-pc measures dnsdist (packet cache off, on) in
# front of the same BIND instead (modes cpu, perf, strace, syscalls);
# DNSTAP=file:/path (or unix:/path) turns [server] dnstap on; ECS=1 turns
# [resolver] ecs on; AC=1 turns [cache] answers on (the flat set's targets are in cdn.test, chased at
# BIND without a subnet, so their entries have scope /0: what it measures
# is the scoped lookup and the client's subnet per query).
# HEALTH=off|up|down (issue 17) serves the flat set's CDN addresses on
# loopback (198.51.x.y -> 127.51.x.y, AAAA -> ::1, a copy of the data in
# RUN/data) and: off, no checks (the baseline with the same data); up,
# [health] check = tcp:PORT with bench/health_listen.py accepting at every
# address; down, the same check with nothing listening (every address down:
# the fail-open path). interval = 1h, fall = rise = 1: every address is
# checked once as the warm-up adds it, and the checker is idle while the
# answers are measured (its own cost is bench/health.sh's).
# UDP_ADDR=0.0.0.0 makes apexd listen on the IPv4 wildcard instead of
# 127.0.0.1 (dnsperf still asks 127.0.0.1): the wildcard path reads each
# datagram's destination and answers from it (IP_PKTINFO).
#
# bench/lib.sh (shared with run.sh and soak.sh) starts and stops the
# processes; bench/profile.py drives dnsperf and the tools, and counts.
set -euo pipefail
BENCH_TAG=profile
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/profile
DATA=${DATA:-$ROOT/.run/bench/data}
HEALTH=${HEALTH:-}
SET=${1:-plain}
MODE=${2:-cpu}
DUR=${3:-5}
APEXD=${APEXD:-$ROOT/build-bench/proxy/apexd}
THREADS=${THREADS:-2}
UDP_ADDR=${UDP_ADDR:-127.0.0.1}

[[ -f $DATA/q-$SET.txt ]] || die "no $DATA/q-$SET.txt: run bench/run.sh once"
[[ -x $APEXD ]] || die "no $APEXD: run bench/run.sh once, or set APEXD"
case $MODE in
cpu | perf | strace | syscalls | callgrind | idle) ;;
*) die "unknown mode $MODE (cpu perf strace syscalls callgrind idle)" ;;
esac
rm -rf "$RUN"
mkdir -p "$RUN"

if [[ -n $HEALTH ]]; then
	mkdir -p "$RUN/data"
	cp "$DATA"/* "$RUN/data/"
	sed -i -E 's/ A 198\.51\./ A 127.51./; s/ AAAA 2001:db8:cd::[0-9a-f]+$/ AAAA ::1/' "$RUN/data/cdn.test.zone"
	DATA=$RUN/data
fi
free_port; BIND_PORT=$FP
start_bind "$BIND_PORT"

free_port; APORT=$FP
write_apexd_ini "$RUN/apexd.ini" "$THREADS" 1 "${AC:-0}" "udp = $UDP_ADDR:$APORT" \
	"tcp = 127.0.0.1:$APORT"
[[ -n ${DNSTAP:-} ]] && sed -i "s|^\[server\]\$|[server]\ndnstap = $DNSTAP|" "$RUN/apexd.ini"
[[ ${ECS:-0} == 1 ]] && printf '\n[resolver]\necs = yes\n' >>"$RUN/apexd.ini"
case $HEALTH in
'' | off) ;;
up | down)
	free_port; HPORT=$FP
	printf '\n[health]\ncheck = tcp:%s\ninterval = 1h\ntimeout = 1s\nfall = 1\nrise = 1\n' "$HPORT" >>"$RUN/apexd.ini"
	if [[ $HEALTH == up ]]; then
		sed -n -E 's/.* A (127\.51\.[0-9.]+)$/\1/p' "$DATA/cdn.test.zone" | sort -u >"$RUN/addrs.txt"
		spawn "$RUN/listen.log" "$PY" "$BENCH/health_listen.py" "$HPORT" ::1 --file "$RUN/addrs.txt"
		for _ in $(seq 50); do grep -q listening "$RUN/listen.log" && break; sleep 0.1; done
	fi
	;;
*) die "unknown HEALTH=$HEALTH (off up down)" ;;
esac
if [[ ${PROXY:-apexd} == dnsdist || ${PROXY:-apexd} == dnsdist-pc ]]; then
	# The same load and measures on dnsdist (UDP and TCP on one port;
	# with PROXY=dnsdist-pc its packet cache), for ratios in one sitting.
	[[ $MODE != callgrind ]] || die "callgrind is for apexd only"
	command -v dnsdist >/dev/null || die "no dnsdist: run bench/run.sh once (it installs it)"
	write_dnsdist_conf "$RUN/dnsdist.conf" "$APORT" "$([[ $PROXY == dnsdist-pc ]] && echo 1 || echo 0)"
	spawn "$RUN/dnsdist.log" dnsdist --supervised --disable-syslog -C "$RUN/dnsdist.conf"
	APID=$LAST_PID
	wait_udp "$APORT" || { tail "$RUN/dnsdist.log" >&2; die "dnsdist does not answer"; }
	"$PY" "$BENCH/profile.py" measure "$RUN" --mode "$MODE" --set "$SET" --seconds "$DUR" \
		--port "$APORT" --pid "$APID" --data "$DATA" --threads 1 --qps "${QPS:-0}" --proto "${PROTO:-udp}"
	exit 0
fi
pre=()
# callgrind collects nothing until bench/profile.py turns it on after the
# warm-up (callgrind_control -i on).
[[ $MODE == callgrind ]] && pre=(valgrind --tool=callgrind --instr-atstart=no
	--callgrind-out-file="$RUN/callgrind.out")
spawn "$RUN/apexd.log" "${pre[@]}" "$APEXD" -c "$RUN/apexd.ini"
APID=$LAST_PID
wait_udp "$APORT" || { tail "$RUN/apexd.log" >&2; die "apexd does not answer"; }
if [[ -n $HEALTH ]]; then
	# Every owner once, so that each address is handed to the checker and
	# checked (the first check of an address is at once), then a pause
	# for the verdicts: under valgrind the checker is slow too.
	dnsperf -s 127.0.0.1 -p "$APORT" -d "$DATA/q-flat.txt" -n 1 -c 4 -q 64 >/dev/null 2>&1 || true
	sleep 5
fi

if [[ $MODE == idle ]]; then
	# ticks: utime + stime of the process (all threads); switches: every
	# thread's voluntary and involuntary context switches.
	ticks() { awk '{print $14 + $15}' "/proc/$APID/stat"; }
	switches() { cat /proc/"$APID"/task/*/status | awk '/ctxt_switches/ {n += $2} END {print n}'; }
	dnsperf -s 127.0.0.1 -p "$APORT" -d "$DATA/q-$SET.txt" -c 16 -q 128 -l "$DUR" -m "${PROTO:-udp}" \
		>"$RUN/burst.txt" 2>&1 || true
	sleep 2
	t0=$(ticks) s0=$(switches)
	sleep 30
	t1=$(ticks) s1=$(switches)
	threads=$(find /proc/"$APID"/task -mindepth 1 -maxdepth 1 | wc -l)
	echo "burst: $(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$RUN/burst.txt") answers in $DUR s; steering: $(grep -c 'queries now go to' "$RUN/apexd.log") changes"
	echo "idle 30 s, $threads threads: $((t1 - t0)) ticks of CPU ($(getconf CLK_TCK) a second), $((s1 - s0)) context switches"
	stop_pid "$APID"
	exit 0
fi
"$PY" "$BENCH/profile.py" measure "$RUN" --mode "$MODE" --set "$SET" --seconds "$DUR" \
	--port "$APORT" --pid "$APID" --data "$DATA" --threads "$THREADS" --qps "${QPS:-0}" --proto "${PROTO:-udp}"
if [[ $MODE == callgrind ]]; then
	# callgrind writes its output as apexd exits.
	stop_pid "$APID" 120
	"$PY" "$BENCH/profile.py" callgrind "$RUN"
fi
