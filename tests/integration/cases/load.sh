#!/usr/bin/env bash
# A short, bounded load through apexd with dnsperf (loopback only, a few
# seconds at a modest fixed rate): no query lost, no SERVFAIL, the same
# rcode mix as BIND gives directly, and a clean exit afterwards. Catches
# transaction slots or connections that leak under sustained traffic.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_real_apexd
need_python_dns
need dnsperf dig
start_named
start_apexd

queries=$T_DIR/queries.txt
# 6 queries, one NXDOMAIN, one big answer (TC over UDP, TCP retry inside
# apexd for TCP clients): 1/6 NXDOMAIN, the rest NOERROR.
printf '%s\n' "www.example.test A" "example.test SOA" "nothere.example.test A" \
	"big.example.test TXT" "alias1.example.test A" "example.test MX" >"$queries"

# perf PORT MODE SECONDS QPS: run dnsperf, keep its report in $T_DIR.
perf() {
	local out=$T_DIR/dnsperf-$1-$2.txt
	dnsperf -s 127.0.0.1 -p "$1" -m "$2" -d "$queries" -l "$3" -Q "$4" -c 4 -t 2 >"$out" 2>&1
	cat "$out"
}
perf_ok() {
	local out sent completed lost nx
	out=$(perf "$@") || { echo "$out"; return 1; }
	sent=$(sed -n 's/^ *Queries sent: *\([0-9]*\).*/\1/p' <<<"$out")
	completed=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' <<<"$out")
	lost=$(sed -n 's/^ *Queries lost: *\([0-9]*\).*/\1/p' <<<"$out")
	nx=$(grep -o 'NXDOMAIN [0-9]*' <<<"$out" | cut -d' ' -f2)
	echo "sent=$sent completed=$completed lost=$lost nxdomain=$nx"
	grep 'Response codes' <<<"$out"
	[[ ${sent:-0} -gt 0 && $lost == 0 && $completed == "$sent" ]] || return 1
	! grep -q 'SERVFAIL' <<<"$out" || return 1
	# dnsperf cycles through the file, whose third line is NXDOMAIN: of
	# 6k + r queries, k (and one more when r >= 3) are NXDOMAIN, as BIND
	# would answer. The run stops at a time, not at a multiple of 6.
	local want=$((sent / 6 + (sent % 6 >= 3 ? 1 : 0)))
	[[ ${nx:-0} -eq $want ]] || { echo "NXDOMAIN: $nx, want $want of $sent"; return 1; }
}
check "UDP: 3 s at 1000 qps, nothing lost" perf_ok "$APEX_PORT" udp 3 1000
check "TCP: 2 s at 300 qps, nothing lost" perf_ok "$APEX_PORT" tcp 2 300
check "still answering after the load" cmp_q www.example.test A --expect-min-answers 1
stop_apexd TERM 10
check "exit 0 after the load" test "${APEX_RC:-none}" = 0
check "stats: answers_relayed >= 3600" bash -c \
	"[[ \$(grep -o 'answers_relayed=[0-9]*' '$APEX_LOG' | tail -n1 | cut -d= -f2) -ge 3600 ]]"
finish
