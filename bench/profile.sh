#!/usr/bin/env bash
# bench/profile.sh - where apexd's CPU goes on the UDP relay path.
#
#     bench/profile.sh [plain|flat] [cpu|perf|strace|callgrind] [SECONDS]
#
# Starts BIND (the bench zones) and apexd (build-bench/, as bench/run.sh
# builds it: `threads = 2`, [zone bench.test], [zone cdn.test]) on free
# loopback ports, warms the caches, then drives apexd over UDP with
# dnsperf (-c 16 -q 128, bounded by -l) while measuring:
#   cpu        apexd's CPU per answer from /proc/PID/stat (default)
#   perf       `perf record -g` of apexd, then the top of `perf report`
#   strace     `strace -c -f`: system calls per answer
#   callgrind  apexd under valgrind --tool=callgrind (slow; instructions
#              per answer of apexd's own code, stable on a noisy box)
# Needs bench/run.sh to have generated .run/bench/data once (run it with
# TARGETS=apexd EXTRAS= DURATION=1 TRANSPORTS=udp if needed).
# APEXD=path uses another binary (an A/B of two builds); THREADS=n.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
RUN=$ROOT/.run/profile
DATA=$ROOT/.run/bench/data
SET=${1:-plain}
MODE=${2:-cpu}
DUR=${3:-5}
APEXD=${APEXD:-$ROOT/build-bench/proxy/apexd}
THREADS=${THREADS:-2}
PY=/usr/bin/python3

[[ -f $DATA/q-$SET.txt ]] || { echo "no $DATA/q-$SET.txt: run bench/run.sh once" >&2; exit 1; }
[[ -x $APEXD ]] || { echo "no $APEXD: run bench/run.sh once, or set APEXD" >&2; exit 1; }
rm -rf "$RUN"
mkdir -p "$RUN/named"

PIDS=()
cleanup() {
	local p
	for p in "${PIDS[@]}"; do
		kill -TERM "$p" 2>/dev/null || true
		wait "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

port() {
	"$PY" - <<'PY'
import random, socket
while True:
    p = random.randrange(20000, 30000)
    try:
        for kind in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
            s = socket.socket(socket.AF_INET, kind)
            s.bind(("127.0.0.1", p))
            s.close()
        print(p)
        break
    except OSError:
        pass
PY
}
wait_udp() {
	local i
	for ((i = 0; i < 50; i++)); do
		dig @127.0.0.1 -p "$1" +time=1 +tries=1 +nocookie bench.test SOA 2>/dev/null |
			grep -q 'status: NOERROR' && return 0
		sleep 0.2
	done
	return 1
}

BPORT=$(port)
APORT=$(port)
cat >"$RUN/named/named.conf" <<EOF
options {
	directory "$RUN/named";
	pid-file "named.pid";
	listen-on port $BPORT { 127.0.0.1; };
	listen-on-v6 { none; };
	recursion no;
	notify no;
	dnssec-validation no;
	minimal-responses yes;
};
controls { };
zone "bench.test" { type primary; file "$DATA/bench.test.zone"; };
zone "cdn.test" { type primary; file "$DATA/cdn.test.zone"; };
EOF
named -g -c "$RUN/named/named.conf" >"$RUN/named.log" 2>&1 &
PIDS+=($!)
wait_udp "$BPORT" || { tail "$RUN/named.log"; exit 1; }

cat >"$RUN/apexd.ini" <<EOF
[server]
threads = $THREADS
[listen]
udp = 127.0.0.1:$APORT
[backend]
address = 127.0.0.1:$BPORT
timeout = 2s
[zone bench.test]
[zone cdn.test]
EOF
pre=()
# Collection starts after the warm-up (callgrind_control -i on), so the
# count is of the measured queries only.
[[ $MODE == callgrind ]] && pre=(valgrind --tool=callgrind --instr-atstart=no
	--callgrind-out-file="$RUN/callgrind.out")
"${pre[@]}" "$APEXD" -c "$RUN/apexd.ini" 2>"$RUN/apexd.log" &
APID=$!
PIDS+=("$APID")
wait_udp "$APORT" || { tail "$RUN/apexd.log"; exit 1; }

perfload() {
	dnsperf -s 127.0.0.1 -p "$APORT" -d "$DATA/q-$SET.txt" -c 16 -q 128 -t 2 -l "$1"
}
# Warm-up: presence and target caches, BIND's own caches.
perfload 2 >/dev/null

cpu_ticks() { awk '{print $14 + $15}' "/proc/$APID/stat"; }
tool=()
case $MODE in
perf) perf record -g -o "$RUN/perf.data" -p "$APID" >/dev/null 2>&1 & tool=($!) ;;
strace) strace -c -f -p "$APID" -o "$RUN/strace.txt" 2>/dev/null & tool=($!) ;;
esac
[[ $MODE == callgrind ]] && callgrind_control -i on "$APID" >/dev/null
c0=$(cpu_ticks)
perfload "$DUR" >"$RUN/dnsperf.txt"
c1=$(cpu_ticks)
[[ $MODE == callgrind ]] && callgrind_control -i off "$APID" >/dev/null
if [[ ${#tool[@]} -gt 0 ]]; then
	kill -INT "${tool[0]}"
	wait "${tool[0]}" 2>/dev/null || true
fi
answered=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$RUN/dnsperf.txt")
qps=$(sed -n 's/^ *Queries per second: *\([0-9.]*\).*/\1/p' "$RUN/dnsperf.txt")
hz=$(getconf CLK_TCK)
echo "set=$SET mode=$MODE threads=$THREADS answered=$answered qps=$qps"
awk -v t="$((c1 - c0))" -v hz="$hz" -v a="$answered" \
	'BEGIN {printf "apexd CPU: %.2f us/answer (%d ticks)\n", t * 1e6 / hz / a, t}'

case $MODE in
perf)
	perf report -i "$RUN/perf.data" --no-children --sort dso -g none 2>/dev/null | grep -v '^#' | grep . | head -6
	perf report -i "$RUN/perf.data" --children --sort sym -g none 2>/dev/null | grep -v '^#' | grep . | head -40
	;;
strace)
	head -12 "$RUN/strace.txt"
	# Rows: % time, seconds, usecs/call, calls, [errors], syscall.
	awk -v a="$answered" '$NF ~ /^(sendmmsg|sendmsg|sendto|recvmmsg|recvmsg|epoll_wait)$/ {
		printf "%s per answer: %.3f\n", $NF, $4 / a }' "$RUN/strace.txt"
	;;
callgrind)
	kill -TERM "$APID"
	wait "$APID" 2>/dev/null || true
	total=$(callgrind_annotate "$RUN/callgrind.out" 2>/dev/null | sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' | tr -d ,)
	awk -v t="$total" -v a="$answered" \
		'BEGIN {printf "instructions in apexd'"'"'s user space: %d, %.0f per answer\n", t, t / a}'
	callgrind_annotate "$RUN/callgrind.out" 2>/dev/null | sed -n '1,40p'
	;;
esac
