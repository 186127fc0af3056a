#!/usr/bin/env bash
# apexctl explain while reloads (SIGHUP and apexctl reload, alternating)
# switch the resolver list between three entries (two silent ones, then
# unbound) and one (unbound). An explanation started under three
# resolvers is still chasing (each silent one costs its 200 ms timeout)
# when the reload frees that configuration: it must keep the generation
# it started with, not read freed memory (an ASAN build reports it and
# aborts) or another generation's shorter resolver list. Every
# explanation must end with the target's addresses, and apexd must still
# run and exit 0.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock
RACE_SECONDS=${RACE_SECONDS:-5}

start_flat_backend
start_cdn
start_blackhole
SILENT1=$BLACKHOLE_PORT
start_blackhole
SILENT2=$BLACKHOLE_PORT
start_unbound

THREE="[resolver]
addresses = 127.0.0.1:$SILENT1, 127.0.0.1:$SILENT2, 127.0.0.1:$UNBOUND_PORT
timeout = 200ms"
ONE="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 200ms"
BODY="[server]
control = $SOCK
[zone example.test]"

start_flat_apexd "$BODY
$THREE"

# use RESOLVERS: the file apexd reads, replaced in one rename so that a
# reload never reads half of it.
use() {
	write_ini "$T_DIR/next.ini" "$APEX_PORT" "127.0.0.1:$NAMED_PORT"
	printf '\n%s\n%s\n' "$BODY" "$1" >>"$T_DIR/next.ini"
	mv "$T_DIR/next.ini" "$T_DIR/apexd.ini"
}

# One explanation, as the loop below checks it: the live chase reached
# unbound and gave the CDN's addresses. Its output goes to stdout.
explain_ok() {
	local out a
	out=$(ctl explain example.test 2>&1) || { printf '%s\n' "$out"; return 1; }
	printf '%s\n' "$out"
	[[ $out == *"live chase now"* && $out == *"result: 2 A addresses"* ]] || return 1
	for a in $WWW_A; do
		[[ $out == *"$a"* ]] || return 1
	done
}
check "explain under three resolvers: the third (unbound) answers" explain_ok

# Explanations back to back in the background, each result on its own
# line of the tally: ok (raced: a reload came while it ran, as it says),
# or the output that was wrong.
: >"$T_DIR/tally"
explain_loop() {
	local out
	while [[ ! -e $T_DIR/stop ]]; do
		if out=$(explain_ok); then
			if [[ $out == *"the configuration was reloaded meanwhile"* ]]; then
				echo "ok raced" >>"$T_DIR/tally"
			else
				echo ok >>"$T_DIR/tally"
			fi
		else
			printf 'bad: %s\n' "${out//$'\n'/ | }" >>"$T_DIR/tally"
		fi
	done
}
explain_loop &
LOOP_PID=$!
PIDS+=("$LOOP_PID")

reloads=0
end=$((SECONDS + RACE_SECONDS))
while [[ $SECONDS -lt $end ]] && proc_alive "$APEX_PID"; do
	if ((reloads % 2 == 0)); then use "$ONE"; else use "$THREE"; fi
	if ((reloads % 4 < 2)); then
		kill -HUP "$APEX_PID"
	else
		ctl reload >/dev/null || true
	fi
	reloads=$((reloads + 1))
	sleep 0.3
done
touch "$T_DIR/stop"
wait_exit "$LOOP_PID" 15 || true

n_ok=$(grep -c '^ok' "$T_DIR/tally" || true)
n_raced=$(grep -c '^ok raced$' "$T_DIR/tally" || true)
n_bad=$(grep -c '^bad' "$T_DIR/tally" || true)
say "$reloads reloads, $n_ok explanations right ($n_raced with a reload while they ran), $n_bad wrong"
grep '^bad' "$T_DIR/tally" | head -n 3 || true
check "apexd survived $reloads reloads racing explanations" proc_alive "$APEX_PID"
check "no AddressSanitizer report" bash -c "! grep -q 'AddressSanitizer' '$APEX_LOG'"
check "every explanation ended with the target's addresses ($n_bad wrong)" test "$n_bad" -eq 0
check "explanations ran during the reloads ($n_ok)" test "$n_ok" -ge 3
check "reloads came while explanations ran ($n_raced)" test "$n_raced" -ge 1
applied=$(grep -c 'reload: configuration reloaded from' "$APEX_LOG" || true)
check "the reloads were applied ($applied of $reloads)" test "$applied" -ge $((reloads / 2))
# A dead apexd failed the first check above; its exit status is in the log.
proc_alive "$APEX_PID" && stop_flat_apexd
finish
