#!/usr/bin/env bash
# Every kind of answer BIND gives over UDP reaches the client through apexd
# byte for byte, message ID included; plus dig and kdig as real clients.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
need_python_dns
need dig kdig
start_named
start_apexd

passthrough_corpus

# Real clients: the answer section through apexd is the one BIND gives.
same_short() {
	local a b
	a=$("$@" -p "$NAMED_PORT" 2>&1) || { echo "direct: $a"; return 1; }
	b=$("$@" -p "$APEX_PORT" 2>&1) || { echo "apexd: $b"; return 1; }
	[[ -n $a ]] || { echo "empty answer from BIND: the comparison would prove nothing"; return 1; }
	[[ $a == "$b" ]] || { printf 'direct:\n%s\napexd:\n%s\n' "$a" "$b"; return 1; }
}
for q in "www.example.test A" "example.test MX" "alias1.example.test A" \
	"_sip._udp.example.test SRV" "example.test TXT" "www.dn.example.test A"; do
	# shellcheck disable=SC2086 # split NAME TYPE on purpose
	check "dig +short $q" same_short dig @127.0.0.1 +time=2 +tries=1 +short $q
	# shellcheck disable=SC2086
	check "kdig +short $q" same_short kdig @127.0.0.1 +time=2 +retry=0 +short $q
done
check "dig +short over ::1" same_short dig @::1 +time=2 +tries=1 +short www.example.test AAAA
check "dig +dnssec +short signed" same_short dig @127.0.0.1 +time=2 +tries=1 +dnssec +short www.signed.test A
check "dig +short bigv4 (TC, retried over TCP by dig)" same_short dig @127.0.0.1 +time=2 +tries=1 +short bigv4.example.test A
finish
