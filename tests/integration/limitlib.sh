# shellcheck shell=bash disable=SC2034 # RSS_X, ABUSE_PID: read by the cases
# Helpers for the limits_* and fault_* cases: apexd's memory and CPU from
# /proc, and the abusive clients of abuse.py run in the background.
# Sourced after lib.sh; uses its harness (T_DIR, PIDS, APEX_PID, ...).

ABUSE=("$PY" "$INT_DIR/abuse.py")

# RSS_X: sanitizer builds keep shadow memory and quarantine freed blocks,
# so the memory bounds of the cases are multiplied by this (1 normally,
# 4 under ASAN, 8 under TSAN, read from the build's CMakeCache.txt).
# shellcheck disable=SC2034 # read by the cases
RSS_X=1
if [[ -n ${APEX_BUILD_DIR:-} && -r $APEX_BUILD_DIR/CMakeCache.txt ]]; then
	if grep -q '^APEX_ASAN:BOOL=ON' "$APEX_BUILD_DIR/CMakeCache.txt"; then
		RSS_X=4
		# ASAN keeps freed blocks in a quarantine of 256 MiB by default:
		# churn would look like growth. A small one still catches
		# use-after-free of recent blocks.
		export ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16
	fi
	grep -q '^APEX_TSAN:BOOL=ON' "$APEX_BUILD_DIR/CMakeCache.txt" && RSS_X=8
fi

# rss_kb PID: resident set size in KiB (VmRSS).
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status" 2>/dev/null || echo 0; }

# cpu_ticks PID: user + system time so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# cpu_pct PID SECONDS: CPU use of PID over the next SECONDS, in percent
# of one core.
cpu_pct() {
	local pid=$1 s=$2 a b hz
	hz=$(getconf CLK_TCK)
	a=$(cpu_ticks "$pid")
	sleep "$s"
	b=$(cpu_ticks "$pid")
	echo $(((b - a) * 100 / (hz * s)))
}

# fd_count PID: open file descriptors.
fd_count() { find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }

# abuse_bg NAME SUBCOMMAND ARGS...: abuse.py in the background; its
# report goes to $T_DIR/NAME.out, readiness to $T_DIR/NAME.ready, and it
# stops holding once $T_DIR/NAME.release exists (abuse_release NAME).
# Sets ABUSE_PID.
ABUSE_PID=
abuse_bg() {
	local name=$1 sub=$2
	shift 2
	rm -f "$T_DIR/$name.ready" "$T_DIR/$name.release"
	"${ABUSE[@]}" "$sub" --ready "$T_DIR/$name.ready" --release "$T_DIR/$name.release" "$@" \
		>"$T_DIR/$name.out" 2>"$T_DIR/$name.extra.log" &
	ABUSE_PID=$!
	PIDS+=("$ABUSE_PID")
}

# abuse_wait_ready NAME SECONDS: until NAME is in place; prints its line.
abuse_wait_ready() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		if [[ -e $T_DIR/$1.ready ]]; then
			cat "$T_DIR/$1.ready"
			return 0
		fi
		sleep 0.1
	done
	echo "$1 not ready after $2 s"
	cat "$T_DIR/$1.extra.log" 2>/dev/null
	return 1
}

# abuse_finish NAME PID: release NAME, wait for it, print its report.
abuse_finish() {
	touch "$T_DIR/$1.release"
	wait_exit "$2" 30 || true
	cat "$T_DIR/$1.out"
}

# abuse_field NAME KEY: KEY's value in NAME's report (or ready line).
abuse_field() {
	local f=$T_DIR/$1.out
	[[ -s $f ]] || f=$T_DIR/$1.ready
	tr ' ' '\n' <"$f" | sed -n "s/^$2=//p" | head -n1
}

# udp_ok: a UDP query through apexd is answered NOERROR with an answer,
# within 2 s.
udp_ok() {
	local out
	out=$(dig_at "$APEX_PORT" www.example.test A) || { echo "$out"; return 1; }
	if ! grep -q 'status: NOERROR' <<<"$out" ||
		! grep -q '^www.example.test.*IN[[:space:]]*A' <<<"$out"; then
		echo "$out"
		return 1
	fi
}

# udp_burst N: N UDP queries one after the other; all must be answered.
udp_burst() {
	local i
	for ((i = 0; i < $1; i++)); do
		udp_ok || { echo "query $i of $1 failed"; return 1; }
	done
	echo "$1 UDP answers"
}

# le A B [WHAT]: A <= B, saying both.
le() {
	echo "${3:-value} $1 (limit $2)"
	[[ $1 -le $2 ]]
}
