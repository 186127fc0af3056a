#!/usr/bin/env bash
# DNS over TLS (RFC 7858) on apexd's dot listener, with the certificate
# verified against the test CA everywhere: answers byte for byte equal to
# BIND's (over plain TCP), flattened answers equal to apexd's over TCP,
# 20 queries pipelined on one connection and 300 read only after all are
# sent, 65535-byte queries, kdig +tls, ALPN "dot", session resumption,
# garbage instead of a ClientHello, TLS 1.2 and 1.3 with min-version 1.2
# and 1.3, the idle timeout and max-connections counting TLS connections;
# counters at SIGTERM.
# The backend is flatlib.sh's: BIND with the flattening zones, a CDN named
# and unbound, so relayed and flattened answers both travel over TLS.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../tlslib.sh
source "$INT_DIR/tlslib.sh"
need_real_apexd
need_flat_tools
need_tls_tools
need kdig

start_flat_backend
start_cdn
start_unbound
make_certs

FLAT_INI="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
[flatten]
min-ttl = 5s
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test"
BACKEND=127.0.0.1:$NAMED_PORT

# ---------------------------------------------------------------------
say "run 1: DoT answers (min-version 1.2, the default)"
start_tls_apexd "$BACKEND" "$FLAT_INI"

# The corpus: relayed answers, over DoT byte for byte BIND's over TCP.
cmp_dot() { dd dot-cmp --ref "$NAMED_PORT" "$@"; }
check "SOA" cmp_dot example.test SOA --rcode NOERROR --min-answers 1
check "NS" cmp_dot example.test NS --rcode NOERROR --min-answers 1
check "MX" cmp_dot example.test MX --rcode NOERROR --min-answers 1
check "TXT" cmp_dot example.test TXT --rcode NOERROR --min-answers 1
check "A" cmp_dot mail.example.test A --rcode NOERROR --min-answers 1 --flag AA
check "AAAA" cmp_dot host.example.test AAAA --rcode NOERROR --min-answers 1
check "in-zone CNAME chain (BIND follows it)" cmp_dot inzone.example.test A --rcode NOERROR --min-answers 2
check "CNAME below the apex (relayed, cname = apex)" cmp_dot cn.example.test A --rcode NOERROR --min-answers 1
check "NXDOMAIN" cmp_dot nothere.example.test A --rcode NXDOMAIN
check "NODATA" cmp_dot mail.example.test AAAA --rcode NOERROR
check "no EDNS" cmp_dot --no-edns mail.example.test A --rcode NOERROR --min-answers 1
check "fixed ID 0" cmp_dot --id 0 mail.example.test A --rcode NOERROR --min-answers 1
check "fixed ID 65535" cmp_dot --id 65535 example.test SOA --rcode NOERROR --min-answers 1
check "mixed case" cmp_dot MaIl.ExAmPlE.TeSt A --rcode NOERROR --min-answers 1
check "signed DNSKEY, DO" cmp_dot --do signed.test DNSKEY --rcode NOERROR --min-answers 3
check "signed NXDOMAIN, DO (NSEC)" cmp_dot --do nothere.signed.test A --rcode NXDOMAIN
check "zone not configured (other.test, relayed)" cmp_dot other.test SOA --rcode NOERROR --min-answers 1
check "zone not served (REFUSED)" cmp_dot example.org A --rcode REFUSED

# Flattened answers over DoT.
check "flattened: ANAME at the apex (A)" dd dot-query example.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
check "flattened: ANAME at the apex (AAAA)" dd dot-query example.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA"
check "flattened: [alias] owner (A)" dd dot-query alias-owner.example.test A --rcode NOERROR --addrs "$WWW_A"
check "flattened: 40 AAAA (over 512 bytes, no TC over TLS)" \
	dd dot-query --no-edns big.example.test AAAA --rcode NOERROR --flag '!TC' \
	--addrs "$(cdn_addrs many.cdn.test AAAA)"

# The same flattened answers as apexd gives over plain TCP (TTLs masked:
# the cached target's TTL may tick between the two queries).
for q in "example.test A" "example.test AAAA" "alias-owner.example.test A" "noaaaa.example.test AAAA"; do
	# shellcheck disable=SC2086
	check "flattened $q over DoT = over TCP" dd dot-cmp --ref "$APEX_PORT" --mask-ttl $q --rcode NOERROR
done
check "flattened 40 AAAA without EDNS over DoT = over TCP" \
	dd dot-cmp --ref "$APEX_PORT" --mask-ttl --no-edns big.example.test AAAA --rcode NOERROR --min-answers 40

check "20 queries pipelined on one TLS connection" dd dot-pipeline --ref "$NAMED_PORT" --count 20
check "300 pipelined queries, answers read after all are sent (414 bytes each)" \
	dd dot-bulk --ref "$NAMED_PORT" --count 300 --do signed.test DNSKEY
# A DNS message over TCP may be 65535 bytes (RFC 1035 4.2.2); BIND answers
# one padded to that size, so apexd must too.
check "65000-byte query (EDNS padding): BIND's answer" \
	cmp_dot --pad-to 65000 mail.example.test A --rcode NOERROR --min-answers 1
check "65535-byte query (EDNS padding): BIND's answer" \
	cmp_dot --pad-to 65535 mail.example.test A --rcode NOERROR --min-answers 1

# kdig verifies the certificate with +tls-ca and +tls-hostname.
kdig_tls() {
	local a b
	a=$(kdig @127.0.0.1 -p "$NAMED_PORT" +tcp +time=3 +retry=0 +short "$@" 2>&1) || { echo "direct: $a"; return 1; }
	b=$(kdig @127.0.0.1 -p "$DOT_PORT" +tls-ca="$TLS_CA" +tls-hostname=localhost +time=3 +retry=0 +short "$@" 2>&1) ||
		{ echo "kdig +tls: $b"; return 1; }
	[[ -n $a ]] || { echo "empty answer from BIND"; return 1; }
	[[ $a == "$b" ]] || { diff <(echo "$a") <(echo "$b"); return 1; }
	echo "$b"
}
check "kdig +tls-ca +tls-hostname: SOA as BIND's" kdig_tls example.test SOA
check "kdig +tls-ca +tls-hostname: MX as BIND's" kdig_tls example.test MX
check "kdig +tls-ca +tls-hostname: CNAME chain as BIND's" kdig_tls inzone.example.test A
kdig_flat() {
	local out
	out=$(kdig @127.0.0.1 -p "$DOT_PORT" +tls-ca="$TLS_CA" +tls-hostname=localhost +time=3 +retry=0 +short example.test A 2>&1) ||
		{ echo "$out"; return 1; }
	echo "$out"
	[[ $(sort <<<"$out" | tr '\n' ' ' | sed 's/ $//') == "$WWW_A" ]]
}
check "kdig +tls: flattened apex A is the CDN's" kdig_flat
kdig_badname() {
	# The same query must fail when kdig expects another name: kdig
	# really checks the certificate.
	if kdig @127.0.0.1 -p "$DOT_PORT" +tls-ca="$TLS_CA" +tls-hostname=not-localhost.test \
		+time=3 +retry=0 example.test SOA >"$T_DIR/kdig-badname.out" 2>&1 &&
		grep -q 'status: NOERROR' "$T_DIR/kdig-badname.out"; then
		cat "$T_DIR/kdig-badname.out"
		return 1
	fi
	echo "refused: $(grep -i -m1 -E 'fail|error|certificate' "$T_DIR/kdig-badname.out")"
}
check "kdig +tls-hostname=another name: certificate refused" kdig_badname
check "python client: another hostname refused" dd dot-hostname --hostname not-localhost.test

# ALPN: the server offers "dot" (RFC 7858 section 3.2, ALPN "dot" per IANA).
check "ALPN: offering dot selects dot" dd dot-alpn --offer dot --expect dot --query
check "ALPN: offering h2,dot selects dot" dd dot-alpn --offer h2,dot --expect dot --query
check "ALPN: a client offering none is served" dd dot-alpn --offer '' --expect none --query
check "ALPN (GREASE): an unknown id next to dot is ignored" dd dot-alpn --offer ignore/dot,dot --expect dot --query
check "ALPN: HTTP ids only (h2, http/1.1): no_application_protocol (RFC 7301)" \
	dd dot-alpn --offer h2,http/1.1 --expect fail
openssl_alpn() {
	local out
	out=$(timeout 10 openssl s_client -connect "127.0.0.1:$DOT_PORT" -servername localhost \
		-CAfile "$TLS_CA" -verify_return_error -verify_hostname localhost -alpn dot </dev/null 2>&1) || true
	grep -E 'ALPN protocol|Verify return code|Protocol' <<<"$out"
	grep -q '^ALPN protocol: dot$' <<<"$out" && grep -q 'Verify return code: 0 (ok)' <<<"$out"
}
check "openssl s_client -alpn dot: ALPN protocol dot, verified" openssl_alpn

# Versions with min-version 1.2: both 1.2 and 1.3 work.
check "TLS 1.2-only client served (min-version 1.2)" dd dot-version --version 1.2 --expect ok
check "TLS 1.3-only client served" dd dot-version --version 1.3 --expect ok
s_client_version() {
	local v=$1 expect=$2 out
	out=$(timeout 10 openssl s_client -connect "127.0.0.1:$DOT_PORT" -servername localhost \
		-CAfile "$TLS_CA" -verify_return_error "-tls1_${v#1.}" </dev/null 2>&1) || true
	grep -E 'Cipher is|alert|error|Verify return' <<<"$out" | head -5
	if [[ $expect == ok ]]; then
		grep -q "^New, TLSv$v, Cipher is " <<<"$out" && grep -q 'Verify return code: 0 (ok)' <<<"$out"
	else
		grep -q '^New, (NONE), Cipher is (NONE)' <<<"$out" && ! grep -q '^New, TLSv' <<<"$out"
	fi
}
check "openssl s_client -tls1_2: handshake, verified" s_client_version 1.2 ok
check "openssl s_client -tls1_3: handshake, verified" s_client_version 1.3 ok

check "TLS 1.2 session resumed on reconnect" dd dot-resume --version 1.2
check "TLS 1.3 session resumed on reconnect (ticket)" dd dot-resume --version 1.3

check "garbage instead of a ClientHello: closed, apexd serves on" dd dot-garbage
check "after the garbage: UDP still answered" cmp_q --edns mail.example.test A --expect-min-answers 1
check "after the garbage: TCP still answered" cmp_q --tcp --edns mail.example.test A --expect-min-answers 1
check "apexd still running" proc_alive "$APEX_PID"

stop_flat_apexd
check "stats: dot_connections >= 40" stat_is dot_connections -ge 40
check "stats: queries_dot >= 350" stat_is queries_dot -ge 350
# start_tls_apexd's readiness probe is one TCP connect to the DoH port.
check "stats: doh_connections <= 1 (the readiness probe)" stat_is doh_connections -le 1
check "stats: queries_doh = 0" stat_is queries_doh -eq 0
check "stats: doh_http_errors = 0" stat_is doh_http_errors -eq 0
check "no sanitizer report" bash -c "! grep -E 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:' '$APEX_LOG'"

# ---------------------------------------------------------------------
say "run 2: tcp-idle-timeout = 2s applies to DoT"
start_tls_apexd "$BACKEND" "$FLAT_INI" tcp-idle-timeout=2s
check "idle TLS connections closed after 2 s; queries keep one open" dd dot-idle --idle 2
stop_flat_apexd
# Two idle after a handshake; the one that never sent a ClientHello meets
# the handshake deadline (min(5 s, tcp-idle-timeout)) instead.
check "run 2 stats: tcp_idle_closed >= 2" stat_is tcp_idle_closed -ge 2
check "run 2 stats: tls_handshake_timeouts >= 1" stat_is tls_handshake_timeouts -ge 1

# ---------------------------------------------------------------------
say "run 3: min-version = 1.3, max-connections = 3"
TLS_MIN_VERSION=1.3
start_tls_apexd "$BACKEND" "$FLAT_INI" max-connections=3
check "TLS 1.2-only client refused (min-version 1.3)" dd dot-version --version 1.2 --expect refused
check "TLS 1.2-only client refused on the DoH port too" dd dot-version --version 1.2 --expect refused --doh-port "$DOH_PORT"
check "TLS 1.3 client served" dd dot-version --version 1.3 --expect ok
check "openssl s_client -tls1_2: refused" s_client_version 1.2 refused
check "openssl s_client -tls1_3: handshake, verified" s_client_version 1.3 ok
check "kdig +tls (TLS 1.3) answered under min-version 1.3" kdig_tls example.test SOA
check "max-connections = 3 counts DoT and DoH connections" \
	dd dot-limit --max 3 --tcp-port "$APEX_PORT" --doh-port "$DOH_PORT"
stop_flat_apexd
check "run 3 stats: tcp_refused >= 2" stat_is tcp_refused -ge 2
finish
