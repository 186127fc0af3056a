#!/usr/bin/env bash
# bench/cold.sh - what an eligible query costs when the caches cannot answer
# it directly: N queries (A) at distinct names in the flattened zone
# bench.test, each unknown to apexd's presence cache, so each takes the
# flattening state, an ANAME presence probe per ANAME type and BIND's
# answer (NXDOMAIN), then is relayed.
#
#     bench/cold.sh [allocs|strace|minflt] [N]
#
#   allocs   apexd under valgrind (memcheck): heap allocations per query,
#            from "total heap usage" of a run with N queries minus one
#            with none (start-up and shut-down cancel out)
#   strace   `strace -c -f` of apexd over the N queries: system calls
#   minflt   minor page faults of apexd (/proc/PID/stat) over the N queries
# dnsperf sends each name once (-n 1, -c 16 -q 64). APEXD=path uses another
# binary (an A/B of two builds); THREADS=n (default 2). Needs
# .run/bench/data as for bench/profile.sh.
set -euo pipefail
BENCH_TAG=cold
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$(dirname "$0")/lib.sh"
RUN=$ROOT/.run/cold
DATA=$ROOT/.run/bench/data
MODE=${1:-allocs}
N=${2:-20000}
APEXD=${APEXD:-$ROOT/build-bench/proxy/apexd}
THREADS=${THREADS:-2}
[[ -f $DATA/bench.test.zone ]] || die "no $DATA: run bench/run.sh once"
[[ -x $APEXD ]] || die "no $APEXD: set APEXD"
rm -rf "$RUN"
mkdir -p "$RUN"
tag=$RANDOM
for ((i = 0; i < N; i++)); do printf 'c%s-%s.bench.test A\n' "$tag" "$i"; done >"$RUN/q.txt"

free_port; BIND_PORT=$FP
start_bind "$BIND_PORT"

# one_run QUERIES: starts apexd (under the mode's tool), sends QUERIES of
# the names, stops it; leaves apexd's log in RUN/apexd.log and dnsperf's
# in RUN/dnsperf.log.
one_run() {
	local q=$1 pre=() pid
	free_port; APORT=$FP
	write_apexd_ini "$RUN/apexd.ini" "$THREADS" 1 0 "udp = 127.0.0.1:$APORT"
	[[ $MODE == allocs ]] && pre=(valgrind --tool=memcheck --leak-check=no)
	spawn "$RUN/apexd.log" "${pre[@]}" "$APEXD" -c "$RUN/apexd.ini"
	pid=$LAST_PID
	wait_udp "$APORT" || { tail "$RUN/apexd.log" >&2; die "apexd does not answer"; }
	: >"$RUN/dnsperf.log"
	if ((q > 0)); then
		local tool=() f0 f1
		if [[ $MODE == strace ]]; then
			strace -c -f -p "$pid" -o "$RUN/strace.txt" &
			tool=($!)
			sleep 1
		fi
		f0=$(awk '{print $10}' "/proc/$pid/stat")
		head -n "$q" "$RUN/q.txt" >"$RUN/q-run.txt"
		timeout 120 dnsperf -s 127.0.0.1 -p "$APORT" -d "$RUN/q-run.txt" -n 1 -c 16 -q 64 \
			-t 5 >"$RUN/dnsperf.log" 2>&1 || true
		f1=$(awk '{print $10}' "/proc/$pid/stat")
		echo "minflt $((f1 - f0))" >>"$RUN/dnsperf.log"
		if ((${#tool[@]})); then kill -INT "${tool[0]}"; wait "${tool[0]}" || true; fi
	fi
	stop_pid "$pid" 60
}

completed() { sed -n 's/.*Queries completed: *\([0-9]*\).*/\1/p' "$RUN/dnsperf.log"; }
heap() { sed -n 's/.*total heap usage: \([0-9,]*\) allocs.*/\1/p' "$RUN/apexd.log" | tr -d ,; }

case $MODE in
allocs)
	one_run 0
	idle=$(heap)
	one_run "$N"
	busy=$(heap)
	done_q=$(completed)
	echo "queries=$done_q allocs: idle run $idle, with queries $busy," \
		"per query $(awk -v a="$busy" -v b="$idle" -v q="$done_q" 'BEGIN{printf "%.2f", (a-b)/q}')"
	;;
strace)
	one_run "$N"
	done_q=$(completed)
	echo "queries=$done_q; system calls of apexd (strace -c -f):"
	awk -v q="$done_q" 'NR<=2 || /^-/ {print; next}
		$4 ~ /^[0-9]+$/ {printf "%s  per query %.2f\n", $0, $4/q; next}
		{print}' "$RUN/strace.txt"
	;;
minflt)
	one_run "$N"
	done_q=$(completed)
	f=$(sed -n 's/^minflt //p' "$RUN/dnsperf.log")
	echo "queries=$done_q minor faults=$f per query $(awk -v f="$f" -v q="$done_q" 'BEGIN{printf "%.3f", f/q}')"
	;;
*) die "unknown mode $MODE (allocs strace minflt)" ;;
esac
