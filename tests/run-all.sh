#!/usr/bin/env bash
# The test command: `sudo tests/run-all.sh` by hand, `.ci/run` in CI.
#
#   1. tests/bootstrap.sh installs what is missing (Debian 12).
#   2. Normal build (RelWithDebInfo, -Werror) in build/, then every ctest
#      label (unit, fuzz replay, integration).
#   3. ASAN+UBSAN build (Debug) in build-asan/, then every label again.
#   4. Only with APEX_TSAN=1: ThreadSanitizer build (RelWithDebInfo) in
#      build-tsan/, then every label again (about 3 minutes to build and
#      6 to test on 2 cores). The whole suite passed under it on
#      2026-11-27 with no race reported; it stays out of the default
#      path until it has stayed green for a while (TSAN's slowdown
#      widens every timing window the cases have).
#
# Exit status is non-zero if any build or test failed. Under CI=true
# nothing may be skipped: APEX_NO_SKIP=1 makes the integration harness fail
# instead of exit 77 when a tool is missing, a ctest "Skipped"/"Not Run"
# fails the run, and so does a build that registered no integration test.
# Every stage runs even if an earlier one fails, so one run reports everything.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
START=$(date +%s)
JOBS=$(nproc 2>/dev/null || echo 2)
CTEST_JOBS=${CTEST_JOBS:-2}
LOG_DIR=$ROOT/.run/run-all
mkdir -p "$LOG_DIR"

if [[ ${CI:-} == true ]]; then
	export APEX_NO_SKIP=1
fi
# Sanitizers: stop at the first report and say where; LeakSanitizer makes
# a leaking apexd exit non-zero, which the integration cases then catch.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:halt_on_error=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
# A data race ends apexd with status 66, which every case's exit check
# catches; the report is in the apexd log the case prints. tsan.supp
# says why libfstrm's queue is left out.
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:exitcode=66:second_deadlock_stack=1:suppressions=$ROOT/tests/tsan.supp}

TOTAL_PASSED=0
TOTAL_FAILED=0
TOTAL_SKIPPED=0
STAGE_RESULTS=()
STATUS=0

banner() { printf '\n==== %s ====\n' "$*"; }

# stage NAME BUILD_DIR CMAKE_ARGS...: configure, build, run ctest.
stage() {
	local name=$1 dir=$2 log
	shift 2
	log=$LOG_DIR/$name.ctest.log
	banner "$name: configure and build in ${dir#"$ROOT"/}"
	if ! cmake -S "$ROOT" -B "$dir" -DAPEX_WERROR=ON "$@" ||
		! cmake --build "$dir" -j "$JOBS"; then
		STAGE_RESULTS+=("$name: BUILD FAILED")
		TOTAL_FAILED=$((TOTAL_FAILED + 1))
		STATUS=1
		return 0
	fi

	banner "$name: ctest (all labels)"
	local rc=0
	# --timeout bounds any test that sets no TIMEOUT of its own.
	ctest --test-dir "$dir" --output-on-failure -j "$CTEST_JOBS" --no-tests=error --timeout 600 \
		2>&1 | tee "$log" || rc=${PIPESTATUS[0]}

	# "N% tests passed, F tests failed out of T". Skipped (exit 77) and
	# disabled tests are listed as "(Skipped)"/"(Disabled)" and counted as
	# not failed; "Not Run" (missing executable) counts as failed already.
	local total failed skipped passed problems=()
	total=$(sed -n 's/.*tests failed out of \([0-9][0-9]*\).*/\1/p' "$log" | tail -n1)
	failed=$(sed -n 's/.*tests passed, \([0-9][0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n1)
	skipped=$(grep -cE '\((Skipped|Disabled)\)' "$log" || true)
	total=${total:-0}
	failed=${failed:-0}
	passed=$((total - failed - skipped))
	[[ $passed -ge 0 ]] || passed=0

	if [[ $rc -ne 0 ]]; then
		problems+=("ctest exit $rc")
	fi
	if [[ $total -eq 0 ]]; then
		problems+=("no tests ran")
	fi
	if [[ ${CI:-} == true ]]; then
		if [[ $skipped -gt 0 ]]; then
			problems+=("$skipped skipped under CI")
		fi
		local nint
		nint=$(ctest --test-dir "$dir" -N -L integration | sed -n 's/^Total Tests: //p')
		if [[ ${nint:-0} -eq 0 ]]; then
			problems+=("no integration test registered (apexd not built?)")
		fi
	fi

	TOTAL_PASSED=$((TOTAL_PASSED + passed))
	TOTAL_FAILED=$((TOTAL_FAILED + failed))
	TOTAL_SKIPPED=$((TOTAL_SKIPPED + skipped))
	if [[ ${#problems[@]} -gt 0 ]]; then
		STATUS=1
		# A stage that failed without a failed test (skip under CI, no tests)
		# still counts one failure in the closing line.
		[[ $failed -gt 0 ]] || TOTAL_FAILED=$((TOTAL_FAILED + 1))
		STAGE_RESULTS+=("$name: FAILED ($passed passed, $failed failed, $skipped skipped; $(IFS=';'; echo "${problems[*]}"))")
	else
		STAGE_RESULTS+=("$name: ok ($passed passed, $failed failed, $skipped skipped)")
	fi
}

banner "bootstrap"
bash "$ROOT/tests/bootstrap.sh"

stage normal "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo
stage asan "$ROOT/build-asan" -DCMAKE_BUILD_TYPE=Debug -DAPEX_ASAN=ON -DAPEX_UBSAN=ON
if [[ ${APEX_TSAN:-0} == 1 ]]; then
	stage tsan "$ROOT/build-tsan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAPEX_TSAN=ON
fi

ELAPSED=$(($(date +%s) - START))
banner "summary"
for line in "${STAGE_RESULTS[@]}"; do
	echo "  $line"
done
echo "  logs: ${LOG_DIR#"$ROOT"/}/, took $((ELAPSED / 60))m$((ELAPSED % 60))s"
echo "run-all: $TOTAL_PASSED passed, $TOTAL_FAILED failed, $TOTAL_SKIPPED skipped"
exit "$STATUS"
