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
# Needs bench/run.sh to have generated .run/bench/data once (run it with
# TARGETS=apexd EXTRAS= DURATION=1 TRANSPORTS=udp if needed).
# PROTO=tcp sends the load over TCP (dnsperf -m tcp) instead of UDP.
# QPS=n offers a fixed rate (dnsperf -Q) in the measured run instead of
# saturating: the light-load case, where wake-ups dominate.
# APEXD=path uses another binary (an A/B of two builds); THREADS=n;
# DNSTAP=file:/path (or unix:/path) turns [server] dnstap on; ECS=1 turns
# [resolver] ecs on; AC=1 turns [cache] answers on (the flat set's targets are in cdn.test, chased at
# BIND without a subnet, so their entries have scope /0: what it measures
# is the scoped lookup and the client's subnet per query).
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
DATA=$ROOT/.run/bench/data
SET=${1:-plain}
MODE=${2:-cpu}
DUR=${3:-5}
APEXD=${APEXD:-$ROOT/build-bench/proxy/apexd}
THREADS=${THREADS:-2}
UDP_ADDR=${UDP_ADDR:-127.0.0.1}

[[ -f $DATA/q-$SET.txt ]] || die "no $DATA/q-$SET.txt: run bench/run.sh once"
[[ -x $APEXD ]] || die "no $APEXD: run bench/run.sh once, or set APEXD"
case $MODE in
cpu | perf | strace | syscalls | callgrind) ;;
*) die "unknown mode $MODE (cpu perf strace syscalls callgrind)" ;;
esac
rm -rf "$RUN"
mkdir -p "$RUN"

free_port; BIND_PORT=$FP
start_bind "$BIND_PORT"

free_port; APORT=$FP
write_apexd_ini "$RUN/apexd.ini" "$THREADS" 1 "${AC:-0}" "udp = $UDP_ADDR:$APORT" \
	"tcp = 127.0.0.1:$APORT"
[[ -n ${DNSTAP:-} ]] && sed -i "s|^\[server\]\$|[server]\ndnstap = $DNSTAP|" "$RUN/apexd.ini"
[[ ${ECS:-0} == 1 ]] && printf '\n[resolver]\necs = yes\n' >>"$RUN/apexd.ini"
pre=()
# callgrind collects nothing until bench/profile.py turns it on after the
# warm-up (callgrind_control -i on).
[[ $MODE == callgrind ]] && pre=(valgrind --tool=callgrind --instr-atstart=no
	--callgrind-out-file="$RUN/callgrind.out")
spawn "$RUN/apexd.log" "${pre[@]}" "$APEXD" -c "$RUN/apexd.ini"
APID=$LAST_PID
wait_udp "$APORT" || { tail "$RUN/apexd.log" >&2; die "apexd does not answer"; }

"$PY" "$BENCH/profile.py" measure "$RUN" --mode "$MODE" --set "$SET" --seconds "$DUR" \
	--port "$APORT" --pid "$APID" --data "$DATA" --threads "$THREADS" --qps "${QPS:-0}" --proto "${PROTO:-udp}"
if [[ $MODE == callgrind ]]; then
	# callgrind writes its output as apexd exits.
	stop_pid "$APID" 120
	"$PY" "$BENCH/profile.py" callgrind "$RUN"
fi
