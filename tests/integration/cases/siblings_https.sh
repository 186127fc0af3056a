#!/usr/bin/env bash
# HTTPS siblings in a signed zone (issue 15): with `siblings = update`,
# apexd chases each ANAME target's HTTPS RRset (RFC 9460) like its A and
# AAAA and writes it into BIND at the owner by UPDATE, so BIND signs it
# and secondaries transfer it. With real components (siblib.sh):
#   - the CDN (a BIND) publishes HTTPS ServiceMode with alpn and address
#     hints at s-www.cdn.test; the primary's update-policy grants the key
#     A AAAA HTTPS;
#   - the HTTPS sibling appears in the primary at the apex, www and the
#     wildcard *.w, the CDN's RDATA unchanged, signed (RRSIG over HTTPS),
#     the zone verifies, a secondary serves it signed after its transfer,
#     delv through apexd validates it, apexctl explain shows it;
#   - a change at the CDN reaches the zone within the TTL plus a few s;
#   - the target loses its HTTPS: the siblings go (signed NODATA), the
#     A/AAAA stay;
#   - an update-policy without HTTPS: apexd's HTTPS UPDATE is REFUSED,
#     logged once with the rcode, counted and retried, and an address
#     change at the CDN meanwhile is still written; HTTPS granted again,
#     the HTTPS sibling arrives.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../siblib.sh
source "$INT_DIR/siblib.sh"
need_real_apexd
need_sib_tools

check "TSIG keys made by tsig-keygen" sib_keys
start_sib_cdn
start_unbound
S_A=$(cdn_addrs s-www.cdn.test A)
S_AAAA=$(cdn_addrs s-www.cdn.test AAAA)
HTTPS1='1 . alpn="h3,h2" ipv4hint=198.51.100.71,198.51.100.72 ipv6hint=2001:db8:cd::71'
HTTPS2='1 . alpn="h2" ipv4hint=198.51.100.79'
HTTPS3='2 alt.cdn.test. alpn="h3" port=8443'

# https_at PORT NAME: NAME's HTTPS RRs at PORT as dig prints them, sorted.
https_at() {
	dig @127.0.0.1 -p "$1" +norec +short +time=2 +tries=1 +nocookie "$2" HTTPS | sort
}
check "UPDATE at the CDN: s-www gets HTTPS ServiceMode with hints" \
	cdn_update "update add s-www.cdn.test. $SIB_TTL HTTPS $HTTPS1"
check "CDN: s-www HTTPS is what was added" test "$(https_at "$CDN_PORT" s-www.cdn.test)" = "$HTTPS1"

SIB_APEX_PORT=$(new_port)
SEC_PORT=$(new_port)
SIB_UPDATE_POLICY="grant upd zonesub A AAAA HTTPS;"
# With client subnets on, the sibling chases still carry none (one record
# in the zone serves every client) and take the target cache's
# no-subnet entries.
# shellcheck disable=SC2034 # read by sib_ini (siblib.sh)
SIB_RESOLVER_EXTRA="ecs = yes"
start_sib_primary
start_sib_secondary
start_sib_apexd
P=$NAMED_PORT

# at PORT NAME TYPE ARGS...: sibq with DO=1 against 127.0.0.1:PORT.
at() { sq --server "127.0.0.1:$1" --do "${@:2}"; }
# https_is PORT NAME WANT: NAME's HTTPS RRset at PORT is exactly WANT
# (lines, sorted; "" for none).
https_is() {
	local got
	got=$(https_at "$1" "$2")
	echo "$2 HTTPS at $1: '${got//$'\n'/ | }', want '${3//$'\n'/ | }'"
	[[ $got == "$3" ]]
}
# https_signed PORT NAME WANT: as https_is, and the RRset has its RRSIG.
https_signed() { https_is "$@" && at "$1" "$2" HTTPS --signed; }

# --- the HTTPS siblings arrive in BIND, signed ----------------------------
check_within 20 "primary: apex HTTPS = the CDN's, signed" https_signed "$P" sib.test "$HTTPS1"
check "primary: apex HTTPS TTL <= the target's $SIB_TTL s" \
	at "$P" sib.test HTTPS --ttl "5:$SIB_TTL"
check_within 5 "primary: www HTTPS, signed" https_signed "$P" www.sib.test "$HTTPS1"
check_within 5 "primary: wildcard HTTPS expanded at foo.w, signed" \
	https_signed "$P" foo.w.sib.test "$HTTPS1"
check "primary: v4 (its target has no HTTPS): no HTTPS, a signed NODATA" \
	at "$P" v4.sib.test HTTPS --rcode NOERROR --nodata-proof
check "primary: the addresses are there too (apex A, signed)" \
	at "$P" sib.test A --addrs "$S_A" --signed
check "primary: the zone with its HTTPS siblings passes dnssec-verify" sib_verified
check_within 15 "secondary: apex HTTPS after its transfer, signed" \
	https_signed "$SEC_PORT" sib.test "$HTTPS1"
check "trust anchor: sib.test's KSK (flags 257) through apexd" sib_trust_anchor
delv_https() {
	local out
	out=$(delv_at "$APEX_PORT" sib.test HTTPS 2>&1)
	echo "$out"
	grep -q 'fully validated' <<<"$out" && grep -q 'alpn="h3,h2"' <<<"$out"
}
check "delv @apexd: apex HTTPS fully validated" delv_https
explain_https() {
	local out
	out=$(ctl explain sib.test 2>&1)
	echo "$out"
	grep -qE '^ *HTTPS in BIND: \[1 \. key1=.*\(TTL [0-9]+\)' <<<"$out" &&
		grep -q 'keeps A/AAAA/HTTPS here' <<<"$out"
}
check "apexctl explain sib.test: the HTTPS sibling" explain_https

# --- a change at the CDN ------------------------------------------------
say "the CDN changes its HTTPS RRset (TTL $SIB_TTL)"
LIMIT=$((SIB_TTL + 5))
check "UPDATE at the CDN: s-www HTTPS becomes two RRs" cdn_update \
	"update delete s-www.cdn.test. HTTPS" \
	"update add s-www.cdn.test. $SIB_TTL HTTPS $HTTPS2" \
	"update add s-www.cdn.test. $SIB_TTL HTTPS $HTTPS3"
WANT2=$(printf '%s\n%s\n' "$HTTPS2" "$HTTPS3" | sort)
check_within "$LIMIT" "primary: apex HTTPS follows within TTL + 5 s, signed" \
	https_signed "$P" sib.test "$WANT2"
check_within 5 "primary: www too" https_signed "$P" www.sib.test "$WANT2"
check "primary: apex A unchanged" at "$P" sib.test A --addrs "$S_A" --signed
check_within 15 "secondary: the new apex HTTPS, signed" https_signed "$SEC_PORT" sib.test "$WANT2"

# --- the target loses its HTTPS -----------------------------------------
say "the CDN deletes s-www's HTTPS RRset"
check "UPDATE at the CDN: delete s-www HTTPS" cdn_update "update delete s-www.cdn.test. HTTPS"
check_within "$LIMIT" "primary: apex HTTPS removed within TTL + 5 s (signed NODATA)" \
	at "$P" sib.test HTTPS --rcode NOERROR --nodata-proof
check_within 5 "primary: www HTTPS removed too" \
	at "$P" www.sib.test HTTPS --rcode NOERROR --nodata-proof
addrs_stay() {
	at "$P" sib.test A --addrs "$S_A" --signed && at "$P" sib.test AAAA --addrs "$S_AAAA" --signed
}
check "primary: apex A and AAAA stay" addrs_stay
check "the zone verifies" sib_verified

# --- an update-policy without HTTPS -------------------------------------
say "the primary's update-policy grants A AAAA only; the CDN publishes HTTPS again"
# refusals: apexd's log lines for sib.test's refused HTTPS UPDATE.
refusals() { grep -iE 'sib\.test' "$APEX_LOG" | grep -iE 'HTTPS' | grep -ciE 'REFUSED' || true; }
counted() {
	local v
	v=$(metric "$1") || v=0
	echo "$1 = $v (want >= $2)"
	[[ ${v%.*} -ge $2 ]]
}
R0=$(metric 'apexd_sibling_updates_total{result="refused"}' || echo 0)
R0=${R0%.*}
check "primary: update-policy now 'grant upd zonesub A AAAA;' (SIGHUP)" \
	sib_update_policy "grant upd zonesub A AAAA;"
check "UPDATE at the CDN: s-www HTTPS back" cdn_update \
	"update add s-www.cdn.test. $SIB_TTL HTTPS $HTTPS1"
# The NODATA of the step before lives 30 s (cdn.test's SOA minimum) in
# the resolver and the target cache: the HTTPS RRset is seen after it.
NEG=30
check_within $((NEG + LIMIT)) "refused: apexd's HTTPS UPDATE counted refused" \
	counted 'apexd_sibling_updates_total{result="refused"}' $((R0 + 1))
check "refused: BIND logged the denied update" grep -qiE 'update .*denied|update.*refused' "$T_DIR/named.log"
# Now, with HTTPS changes refused and retried, the addresses move: they
# must not wait behind them (one UPDATE is all or nothing).
MOVED_A="198.51.100.88"
check "UPDATE at the CDN: s-www A moves to $MOVED_A" cdn_update \
	"update delete s-www.cdn.test. A" "update add s-www.cdn.test. $SIB_TTL A $MOVED_A"
check_within "$LIMIT" "refused: the addresses are written all the same (apex A = $MOVED_A, signed)" \
	at "$P" sib.test A --addrs "$MOVED_A" --signed
check_within 5 "refused: www A too" at "$P" www.sib.test A --addrs "$MOVED_A" --signed
check_within 20 "refused: retried (another REFUSED counted within 20 s)" \
	counted 'apexd_sibling_updates_total{result="refused"}' $((R0 + 2))
check "refused: still no HTTPS at the apex (signed NODATA)" \
	at "$P" sib.test HTTPS --rcode NOERROR --nodata-proof
check "refused: logged once, with the zone, HTTPS and the rcode" test "$(refusals)" -eq 1
check "refused: the log line says what to grant" \
	grep -qE 'sib\.test.*UPDATE of HTTPS failed: REFUSED \(does the zone.s update-policy grant HTTPS' "$APEX_LOG"
explain_refused() {
	local out
	out=$(ctl explain sib.test 2>&1)
	echo "$out"
	grep -qE 'UPDATE of HTTPS failing: REFUSED' <<<"$out"
}
check "refused: apexctl explain shows the failing HTTPS UPDATEs" explain_refused
check "primary: update-policy grants HTTPS again (SIGHUP)" \
	sib_update_policy "grant upd zonesub A AAAA HTTPS;"
# The next retry is at most one backoff step (<= 40 s by now) away.
check_within 60 "granted: the apex HTTPS sibling arrives (apexd's retry), signed" \
	https_signed "$P" sib.test "$HTTPS1"
check_within 5 "granted: www too" https_signed "$P" www.sib.test "$HTTPS1"
check "the zone verifies at the end" sib_verified

stop_flat_apexd
finish
