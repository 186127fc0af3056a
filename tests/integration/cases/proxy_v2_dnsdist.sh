#!/usr/bin/env bash
# PROXY protocol v2 from dnsdist 1.7 (newServer{..., useProxyProtocol=true})
# in front of apexd, over UDP and TCP: the client dig talks to dnsdist
# from 127.0.0.2 (and ::1), dnsdist talks to apexd from 127.0.0.1, and
# apexd's query log names 127.0.0.2 (::1), the client the header carries.
# dnsdist's health checks carry a LOCAL header: apexd answers them as the
# balancer's own queries (the log names 127.0.0.1) and counts them. After
# a reload that no longer lists 127.0.0.1, the same headers are not
# believed: they are read as DNS (FORMERR to 127.0.0.1) and dnsdist's
# client gets no answer.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
# shellcheck source=../pplib.sh
source "$INT_DIR/pplib.sh"
need_real_apexd
need_pp_tools
need dnsdist

start_named
PP_DNSTAP=$T_DIR/pp.dnstap
start_pp_apexd "127.0.0.1" threads=2
start_dnsdist

CL2='127\.0\.0\.2#[0-9]+'
# dig_dd ARGS...: dig through dnsdist from 127.0.0.2.
dig_dd() { dig @127.0.0.1 -p "$DD_PORT" -b 127.0.0.2 +time=2 +tries=1 +nocookie "$@"; }

out=$(dig_dd www.example.test A)
check "UDP through dnsdist: answered" grep -q 'status: NOERROR' <<<"$out"
check "  the query log names the client 127.0.0.2, not dnsdist" \
	wait_line "udp $CL2 www\.example\.test\. A NOERROR"
out=$(dig_dd +tcp mail.example.test A)
check "TCP through dnsdist: answered" grep -q 'status: NOERROR' <<<"$out"
check "  the query log names the client 127.0.0.2" wait_line "tcp $CL2 mail\.example\.test\. A NOERROR"
out=$(dig_dd nothere.example.test A)
check "NXDOMAIN relayed through dnsdist" grep -q 'status: NXDOMAIN' <<<"$out"
check "  logged for 127.0.0.2" wait_line "udp $CL2 nothere\.example\.test\. A NXDOMAIN"
if [[ $HAVE_V6 -eq 1 ]]; then
	out=$(dig @::1 -p "$DD_PORT" +time=2 +tries=1 +nocookie www.example.test AAAA)
	check "an IPv6 client through dnsdist (over IPv4 to apexd): answered" \
		grep -q 'status: NOERROR' <<<"$out"
	check "  the query log names ::1" wait_line "udp ::1#[0-9]+ www\.example\.test\. AAAA NOERROR"
	out=$(dig @::1 -p "$DD_PORT" +tcp +time=2 +tries=1 +nocookie www.example.test AAAA)
	check "  and over TCP" wait_line "tcp ::1#[0-9]+ www\.example\.test\. AAAA NOERROR"
fi
check "no query of dnsdist's clients is logged as dnsdist's" \
	no_line "(udp|tcp) 127\.0\.0\.1#[0-9]+ (www|mail|nothere)\.example\.test\."

# dnsdist's health checks: example.test SOA every second, LOCAL header.
check "dnsdist's health checks (LOCAL) are answered as its own" \
	wait_line "udp 127\.0\.0\.1#[0-9]+ example\.test\. SOA NOERROR"
check "  counted in proxy_v2_local" pp_stat_is proxy_v2_local -ge 1
check "headers believed: proxy_v2_accepted >= 4" pp_stat_is proxy_v2_accepted -ge 4
check "nothing dropped" pp_stat_is proxy_v2_dropped -eq 0

say "reload: proxy-protocol-from no longer lists dnsdist's address"
check "SIGHUP with proxy-protocol-from = 127.0.0.9" pp_set_from 127.0.0.9
out=$(dig_dd untrusted.example.test A || true)
check "dnsdist's client gets no answer (apexd read the header as DNS)" \
	bash -c "! grep -q 'status: NOERROR' <<<'$out'"
check "  apexd answered the header bytes FORMERR, logged for the real peer" \
	wait_line "udp 127\.0\.0\.1#[0-9]+ - - FORMERR"
check "  the client's name was never logged" no_line "untrusted\.example\.test"
check "  no header was counted either way" pp_stat_is proxy_v2_dropped -eq 0

say "reload: trusted again"
check "SIGHUP with proxy-protocol-from = 127.0.0.0/30" pp_set_from 127.0.0.0/30
check "answered again through dnsdist" dd_until NXDOMAIN trusted.example.test A
check "  for 127.0.0.2" wait_line "udp $CL2 trusted\.example\.test\. A NXDOMAIN"
pp_stop_apexd
# dnstap_client PROTO ADDR: an AUTH_QUERY over PROTO from ADDR in the
# capture apexd wrote (complete once apexd has exited).
# (The reader reads all it is given: stopping at the first match would
# break tapdec.py's pipe, and pipefail would fail the check.)
dnstap_client() {
	"$PY" "$INT_DIR/tapdec.py" "$PP_DNSTAP" |
		"$PY" -c 'import json,sys
want = (sys.argv[1], sys.argv[2])
sys.exit(0 if any((m["type"], m["proto"], m["qaddr"]) == ("AUTH_QUERY",) + want
                  for m in [json.loads(l) for l in sys.stdin.readlines()]) else 1)' "$1" "$2"
}
check "dnstap names the header's client too: UDP from 127.0.0.2" dnstap_client UDP 127.0.0.2
check "  and TCP from 127.0.0.2" dnstap_client TCP 127.0.0.2
finish
