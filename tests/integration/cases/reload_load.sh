#!/usr/bin/env bash
# Reload under load: dnsperf sends a steady, bounded stream of queries
# (flattened and relayed) over UDP, then TCP, while SIGHUP swaps between
# two files every quarter second; the files differ in zones, aliases, TTL
# bounds, log level and an extra listener. No query may be lost, every
# reload must be applied, and apexd must exit cleanly afterwards.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
need_real_apexd
need_flat_tools
need dnsperf

start_flat_backend
start_cdn
start_unbound
RESOLVER="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms"
start_flat_apexd "$RESOLVER
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test"
EXTRA=$(new_port)

# Two files: A as started; B with another zone, no alias, other TTL
# bounds, log-level warning and one more UDP/TCP address.
cp "$T_DIR/apexd.ini" "$T_DIR/a.ini"
write_ini "$T_DIR/b.ini" "$APEX_PORT" "127.0.0.1:$NAMED_PORT" log-level=warning
sed -i -e "s/^udp = .*/&, 127.0.0.1:$EXTRA/" -e "s/^tcp = .*/&, 127.0.0.1:$EXTRA/" "$T_DIR/b.ini"
printf '\n%s\n[flatten]\nmin-ttl = 20s\nmax-ttl = 1h\n[zone example.test]\n[zone other.test]\n' \
	"$RESOLVER" >>"$T_DIR/b.ini"
check "file B is valid" "$APEXD" --check-config -c "$T_DIR/b.ini"

queries=$T_DIR/queries.txt
printf '%s\n' "example.test A" "example.test AAAA" "example.test SOA" "mail.example.test A" \
	"nothere.example.test A" "alias-owner.example.test A" "other.test A" \
	"cn.other.test A" >"$queries"
# Warm the target cache so that the load measures reloads, not first chases.
fq example.test A --rcode NOERROR >/dev/null
fq example.test AAAA --rcode NOERROR >/dev/null

# swapper SECONDS: SIGHUP every 0.25 s, alternating the files.
swapper() {
	local end=$((SECONDS + $1)) n=0
	while [[ $SECONDS -lt $end ]]; do
		if ((n % 2 == 0)); then cp "$T_DIR/b.ini" "$T_DIR/apexd.ini"; else cp "$T_DIR/a.ini" "$T_DIR/apexd.ini"; fi
		kill -HUP "$APEX_PID"
		n=$((n + 1))
		sleep 0.25
	done
	# End on file A, at log-level info.
	cp "$T_DIR/a.ini" "$T_DIR/apexd.ini"
	kill -HUP "$APEX_PID"
	echo "$n" >"$T_DIR/hups"
}

# perf_reload MODE SECONDS QPS: dnsperf bounded with -l while the swapper
# runs; "Queries lost: 0" and everything sent completed.
perf_reload() {
	local mode=$1 secs=$2 qps=$3 out=$T_DIR/dnsperf-$1.txt sent completed lost
	swapper "$((secs - 1))" &
	local sw=$!
	dnsperf -s 127.0.0.1 -p "$APEX_PORT" -m "$mode" -d "$queries" -l "$secs" -Q "$qps" \
		-c 4 -t 3 >"$out" 2>&1 || true
	wait "$sw"
	cat "$out"
	sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' "$out")
	completed=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' "$out")
	lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' "$out")
	echo "sent=$sent completed=$completed lost=$lost reloads=$(cat "$T_DIR/hups")"
	[[ ${sent:-0} -gt 0 && $lost == 0 && $completed == "$sent" ]]
}

before=$(grep -c 'reload: reading' "$APEX_LOG" || true)
check "UDP: 6 s at 2000 qps with a reload every 0.25 s: Queries lost: 0" perf_reload udp 6 2000
check "TCP: 4 s at 500 qps with a reload every 0.25 s: Queries lost: 0" perf_reload tcp 4 500
sleep 1
check "no reload failed" bash -c "! grep -q 'reload failed' '$APEX_LOG'"
# File B sets log-level warning, so only reloads from A (at info) log
# their start; at least a third of all of them did.
check "the reloads were applied (half of them log at info)" bash -c \
	"[[ \$(grep -c 'reload: reading' '$APEX_LOG') -ge \$(( $before + 10 )) ]]"
check "file A is in force at the end: the alias flattens" fq alias-owner.example.test A --rcode NOERROR --addrs "$WWW_A"
check "  and the extra listener of file B is gone" bash -c \
	"! dig @127.0.0.1 -p $EXTRA +time=1 +tries=1 example.test SOA | grep -q status:"
stop_flat_apexd
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$APEX_LOG'"
finish
