#!/usr/bin/env bash
# The passthrough corpus over TCP, zone transfers (every message relayed
# byte for byte), and dig/kdig over TCP as real clients.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_python_dns
need dig kdig
start_named
start_apexd

passthrough_corpus --tcp

check "AXFR example.test (several messages, all equal)" \
	cmp_q --tcp example.test AXFR --expect-min-messages 3 --expect-min-answers 100
check "AXFR signed.test" cmp_q --tcp signed.test AXFR --expect-min-answers 10
check "AXFR refused (dyn.test has no allow-transfer)" \
	cmp_q --tcp dyn.test AXFR --expect-rcode REFUSED
check "IXFR up to date (SOA only)" cmp_q --tcp example.test IXFR --ixfr-serial 2024010101
check "IXFR from an old serial (AXFR-style)" \
	cmp_q --tcp example.test IXFR --ixfr-serial 1 --expect-min-answers 100

same_out() {
	local a b
	a=$("$@" -p "$NAMED_PORT" 2>&1) || { echo "direct: $a"; return 1; }
	b=$("$@" -p "$APEX_PORT" 2>&1) || { echo "apexd: $b"; return 1; }
	[[ -n $a ]] || { echo "empty output from BIND: the comparison would prove nothing"; return 1; }
	[[ $a == "$b" ]] || { diff <(echo "$a") <(echo "$b") | head -20; return 1; }
}
check "dig axfr" same_out dig @127.0.0.1 +time=5 +tries=1 +nocookie +noall +answer example.test AXFR
check "dig axfr has all records" bash -c \
	"[[ \$(dig @127.0.0.1 -p $APEX_PORT +time=5 +tries=1 +noall +answer example.test AXFR | grep -c .) -gt 100 ]]"
for q in "www.example.test A" "big.example.test TXT" "example.test SOA" "example.test NS"; do
	# shellcheck disable=SC2086
	check "kdig +tcp $q" same_out kdig @127.0.0.1 +tcp +time=2 +retry=0 +short $q
	# shellcheck disable=SC2086
	check "dig +tcp $q" same_out dig @127.0.0.1 +tcp +time=2 +tries=1 +short $q
done
check "dig +tcp NXDOMAIN (authority SOA)" same_out dig @127.0.0.1 +tcp +time=2 +tries=1 +nocookie +noall +authority nothere.example.test A
check "dig +tcp +short over ::1" same_out dig @::1 +tcp +time=2 +tries=1 +short www.example.test A
finish
