# shellcheck shell=bash
# Helpers for the reload cases (cases/reload_*.sh, query_log.sh). Sourced
# after lib.sh (and flatlib.sh when flattening is involved); uses APEX_PID,
# APEX_LOG and T_DIR from there.

# reloads_done: how many reloads apexd has applied or refused so far.
reloads_done() {
	grep -cE 'reload: configuration reloaded from|reload failed:' "$APEX_LOG" || true
}

# hup_wait: SIGHUP apexd and wait (up to 10 s) until it has logged the
# outcome of that reload, then a little more: the main thread logs just
# before it posts the new configuration, and each worker adopts it in its
# next loop turn (microseconds when idle).
hup_wait() {
	local before i
	before=$(reloads_done)
	kill -HUP "$APEX_PID"
	for ((i = 0; i < 100; i++)); do
		if [[ $(reloads_done) -gt $before ]]; then
			sleep 0.3
			return 0
		fi
		sleep 0.1
	done
	echo "apexd did not log the outcome of SIGHUP within 10 s"
	return 1
}

# last_reload_ok: the last reload outcome in the log is a success.
last_reload_ok() {
	grep -E 'reload: configuration reloaded from|reload failed:' "$APEX_LOG" | tail -n 1 |
		grep -q 'configuration reloaded'
}
