#!/usr/bin/env bash
# tests/valgrind.sh - apexd under valgrind memcheck through a full
# start -> mixed load -> SIGTERM, failing on any memory error or any
# definite leak.
#
#     tests/valgrind.sh                 # builds build/ if needed; ~1-2 min
#     APEXD=path/to/apexd tests/valgrind.sh
#
# The load touches every transport and both answer paths: UDP and TCP
# (dnsperf, dig), DoT (kdig), DoH (curl, GET and POST), plain names
# relayed from BIND, a big answer retried over TCP, and flattened names
# (an ANAME at the apex and an [alias], chased through unbound at a
# second named playing the CDN). It reuses the integration harness
# (tests/integration/lib.sh, flatlib.sh, tlslib.sh) for the servers, so
# everything runs on loopback on free ports and is stopped by PID.
#
# valgrind runs with --leak-check=full --errors-for-leak-kinds=definite
# --error-exitcode=99: apexd's exit status is 99 on a memory error or a
# definite leak, and 0 otherwise. The report stays in valgrind.log in the
# case directory, kept when anything failed (APEX_KEEP_TMP=1 keeps it
# always) and summarised on stdout.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck source-path=SCRIPTDIR disable=SC2317,SC2119
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
export APEX_SOURCE_DIR=$ROOT
if [[ -z ${APEXD:-} ]]; then
	if [[ ! -x $ROOT/build/proxy/apexd ]]; then
		cmake -S "$ROOT" -B "$ROOT/build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
		cmake --build "$ROOT/build" -j2 --target apexd >/dev/null
	fi
	APEXD=$ROOT/build/proxy/apexd
fi
REAL_APEXD=$APEXD

# The harness takes its case name from $0; it is "valgrind".
# shellcheck source=integration/lib.sh
source "$ROOT/tests/integration/lib.sh"
# shellcheck source=integration/flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=integration/tlslib.sh
source "$INT_DIR/tlslib.sh"
need valgrind dnsperf kdig curl
need_flat_tools
need_tls_tools

VG_LOG=$T_DIR/valgrind.log
cat >"$T_DIR/apexd-vg.sh" <<EOF
#!/bin/sh
exec valgrind --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \\
	--show-leak-kinds=definite,possible --error-exitcode=99 --num-callers=30 \\
	--log-file="$VG_LOG" "$REAL_APEXD" "\$@"
EOF
chmod +x "$T_DIR/apexd-vg.sh"
APEXD=$T_DIR/apexd-vg.sh

start_flat_backend
start_cdn
start_unbound
# Under valgrind apexd is some 20-50 times slower: generous timeouts.
start_tls_apexd "127.0.0.1:$NAMED_PORT" "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 3s
[flatten]
deadline = 5s
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test" timeout=5s
say "apexd under valgrind: pid $APEX_PID"

# qok STATUS DIG-ARGS...: dig through apexd gets STATUS.
qok() {
	local want=$1 out
	shift
	out=$(dig @127.0.0.1 -p "$APEX_PORT" +time=10 +tries=1 "$@") || { echo "$out"; return 1; }
	grep -q "status: $want" <<<"$out" || { echo "$out"; return 1; }
}
check "UDP: plain name" qok NOERROR host.example.test A
check "UDP: flattened ANAME at the apex" qok NOERROR example.test A
check "UDP: [alias] owner" qok NOERROR alias-owner.example.test AAAA
check "UDP: NXDOMAIN" qok NXDOMAIN nothere.example.test A
check "UDP: MX" qok NOERROR example.test MX
check "TCP: plain" qok NOERROR +tcp host.example.test A
check "TCP: flattened" qok NOERROR +tcp example.test AAAA
dot_ok() {
	local out
	out=$(kdig @127.0.0.1 -p "$DOT_PORT" +tls +tls-ca="$TLS_CA" +tls-hostname=localhost +time=10 "$@") ||
		{ echo "$out"; return 1; }
	grep -q 'status: NOERROR' <<<"$out" || { echo "$out"; return 1; }
}
check "DoT: plain" dot_ok host.example.test A
check "DoT: flattened" dot_ok example.test AAAA
check "DoH GET: flattened" ddoh --method get example.test A --rcode NOERROR --min-answers 1
check "DoH POST: plain" ddoh --method post host.example.test A --rcode NOERROR --min-answers 1

queries=$T_DIR/queries.txt
printf '%s\n' "host.example.test A" "example.test A" "example.test AAAA" "alias-owner.example.test A" \
	"nothere.example.test A" "example.test MX" >"$queries"
check "dnsperf UDP: 5 s of mixed load" dnsperf -s 127.0.0.1 -p "$APEX_PORT" -d "$queries" -l 5 -Q 200 -c 2 -t 10
check "dnsperf TCP: 3 s of mixed load" dnsperf -s 127.0.0.1 -p "$APEX_PORT" -m tcp -d "$queries" -l 3 -Q 50 -c 2 -t 10
check "dnsperf DoT: 3 s of mixed load" dnsperf -s 127.0.0.1 -p "$DOT_PORT" -m dot -d "$queries" -l 3 -Q 50 -c 2 -t 10

stop_apexd TERM 60
check "apexd exited 0 under valgrind: no memory error, no definite leak (exit ${APEX_RC:-timeout})" \
	test "${APEX_RC:-timeout}" = 0
say "valgrind summary:"
sed -n '/HEAP SUMMARY/,$p' "$VG_LOG" | sed 's/^==[0-9]*== /    /'
check "valgrind: ERROR SUMMARY: 0 errors" grep -q 'ERROR SUMMARY: 0 errors' "$VG_LOG"
check "valgrind: definitely lost: 0 bytes" bash -c \
	"! grep -q 'definitely lost: [1-9]' '$VG_LOG'"
if [[ $FAILED -gt 0 ]]; then
	export APEX_KEEP_TMP=1
	say "valgrind report: $VG_LOG"
fi
finish
