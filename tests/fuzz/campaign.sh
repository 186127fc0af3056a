#!/usr/bin/env bash
# tests/fuzz/campaign.sh - builds the libFuzzer targets (clang, ASAN+UBSAN)
# and fuzzes each for FUZZ_SECONDS, one after the other.
#
#   tests/fuzz/campaign.sh                  every tests/fuzz/fuzz_*.c
#   tests/fuzz/campaign.sh px_h2 codec_scan only these (names without fuzz_)
#
# Environment:
#   FUZZ_SECONDS  time per target (default 600: the release bar)
#   FUZZ_BUILD    build directory (default <source>/build-fuzz)
#   FUZZ_JOBS     parallel compile jobs (default 2)
#   FUZZ_NICE     nice level of the fuzzers (default 19: the machine is shared)
#
# One libFuzzer process per target, one target at a time: a campaign never
# takes more than one core. Each target starts from its replayed seed corpus
# (tests/fuzz/corpus/<target>/, read only) plus a work corpus kept in
# $FUZZ_BUILD/fuzz-work/<target>/, so a second campaign continues where the
# first stopped. A finding (crash, sanitizer report, leak, timeout, abort on
# a broken invariant) leaves its input in $FUZZ_BUILD/fuzz-artifacts/<target>/
# and makes the script exit 1 after the remaining targets have run; the fix
# goes in with that input added to the seed corpus, where ctest replays it.
#
# Prints one line per target with its time and libFuzzer's
# stat::number_of_executed_units, the exec count quoted in release notes.
set -u

src=$(cd "$(dirname "$0")/../.." && pwd)
seconds=${FUZZ_SECONDS:-600}
build=${FUZZ_BUILD:-$src/build-fuzz}
jobs=${FUZZ_JOBS:-2}
nice_level=${FUZZ_NICE:-19}
# A unit running this long is a hang, reported like a crash.
unit_timeout=25

case $seconds in
'' | *[!0-9]*)
	echo "campaign.sh: FUZZ_SECONDS must be a number of seconds, not '$seconds'" >&2
	exit 2
	;;
esac
if ! command -v clang >/dev/null; then
	echo "campaign.sh: clang is needed for libFuzzer (apt-get install clang)" >&2
	exit 2
fi

mkdir -p "$build/fuzz-logs"
CC=clang cmake -S "$src" -B "$build" -DAPEX_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	>"$build/fuzz-logs/configure.log" 2>&1 || {
	cat "$build/fuzz-logs/configure.log" >&2
	exit 2
}
cmake --build "$build" -j "$jobs" >"$build/fuzz-logs/build.log" 2>&1 || {
	tail -50 "$build/fuzz-logs/build.log" >&2
	exit 2
}

if [ $# -gt 0 ]; then
	targets=("$@")
else
	targets=()
	for f in "$src"/tests/fuzz/fuzz_*.c; do
		t=$(basename "$f" .c)
		targets+=("${t#fuzz_}")
	done
fi

status=0
summary=()
for t in "${targets[@]}"; do
	bin=$build/tests/fuzz_$t
	seeds=$src/tests/fuzz/corpus/$t
	work=$build/fuzz-work/$t
	art=$build/fuzz-artifacts/$t
	log=$build/fuzz-logs/$t.log
	if [ ! -x "$bin" ] || [ ! -d "$seeds" ]; then
		echo "campaign.sh: no target '$t' ($bin, $seeds)" >&2
		status=1
		summary+=("$(printf '%-14s MISSING' "$t")")
		continue
	fi
	mkdir -p "$work" "$art" "$(dirname "$log")"
	echo "== $t: ${seconds}s, log $log" >&2
	start=$(date +%s)
	nice -n "$nice_level" "$bin" -max_total_time="$seconds" -timeout="$unit_timeout" \
		-print_final_stats=1 -artifact_prefix="$art/" "$work" "$seeds" >"$log" 2>&1
	rc=$?
	took=$(($(date +%s) - start))
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
	units=$(find "$work" -type f | wc -l)
	if [ $rc -eq 0 ] && [ -n "$execs" ]; then
		result=ok
	else
		result="FINDING (exit $rc), see $log and $art/"
		status=1
		grep -m1 -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|SUMMARY' \
			"$log" >&2
	fi
	summary+=("$(printf '%-14s %5ss %12s execs %6s work units  %s' "$t" "$took" \
		"${execs:-?}" "$units" "$result")")
	echo "${summary[-1]}" >&2
done

echo "campaign: FUZZ_SECONDS=$seconds, $(clang --version | head -1)"
printf '%s\n' "${summary[@]}"
exit $status
