#!/usr/bin/env bash
# Siblings in a signed zone (issue 13): BIND signs sib.test with
# dnssec-policy and takes UPDATEs signed with a TSIG key; apexd, with
# `siblings = update`, transfers the zone, chases each ANAME's target and
# writes the A/AAAA siblings into BIND. Then, with real components:
#   - BIND serves the siblings signed (apex, www, the wildcard *.w; AAAA
#     at v4, whose target has only A, stays a NODATA);
#   - a validating unbound (the zone's KSK as trust anchor, a stub to
#     apexd) validates them (AD=1) and the NODATA; delv agrees;
#   - a secondary BIND transfers them and serves them signed;
#   - DNSViz through apexd: no errors, no warnings, SECURE;
#   - DO=1 (BIND's siblings, relayed) and DO=0 (flattened) agree;
#   - the CDN changes an address: the zone follows within the TTL plus a
#     few seconds, then, the target stable, the serial stays put for
#     3 TTLs (no UPDATE loop, no UPDATE for a decrementing TTL);
#   - apexctl explain and /metrics show the sibling state.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../siblib.sh
source "$INT_DIR/siblib.sh"
need_real_apexd
need_sib_tools
need dnsviz

check "TSIG keys made by tsig-keygen" sib_keys
start_sib_cdn
start_unbound
S_A=$(cdn_addrs s-www.cdn.test A)
S_AAAA=$(cdn_addrs s-www.cdn.test AAAA)
V4_A=$(cdn_addrs s-v4.cdn.test A)
check "CDN: s-www has A x2 and AAAA, s-v4 A only" \
	test "$S_A|$S_AAAA|$V4_A|$(cdn_addrs s-v4.cdn.test AAAA)" = \
	"198.51.100.71 198.51.100.72|2001:db8:cd::71|198.51.100.74|"

SIB_APEX_PORT=$(new_port)
SEC_PORT=$(new_port)
start_sib_primary
start_sib_secondary
start_sib_apexd

# at PORT NAME TYPE ARGS...: sibq with DO=1 against 127.0.0.1:PORT.
at() { sq --server "127.0.0.1:$1" --do "${@:2}"; }
P=$NAMED_PORT

# --- the siblings arrive in BIND, signed -------------------------------
check_within 15 "BIND: apex A = the CDN's, signed, TTL <= the target's 10 s" \
	at "$P" sib.test A --rcode NOERROR --addrs "$S_A" --signed --ttl 5:10
check_within 5 "BIND: apex AAAA = the CDN's, signed" at "$P" sib.test AAAA --addrs "$S_AAAA" --signed
check_within 5 "BIND: www A, signed" at "$P" www.sib.test A --addrs "$S_A" --signed
check_within 5 "BIND: www AAAA, signed" at "$P" www.sib.test AAAA --addrs "$S_AAAA" --signed
check_within 5 "BIND: wildcard sibling expanded at foo.w (A), signed" \
	at "$P" foo.w.sib.test A --addrs "$S_A" --signed
check_within 5 "BIND: wildcard sibling expanded at bar.w (AAAA), signed" \
	at "$P" bar.w.sib.test AAAA --addrs "$S_AAAA" --signed
check_within 5 "BIND: v4 A (target has A only), signed" at "$P" v4.sib.test A --addrs "$V4_A" --signed
check "BIND: v4 AAAA: NOERROR, no AAAA (NODATA)" at "$P" v4.sib.test AAAA --rcode NOERROR --addrs ""
check "BIND: the zone with its siblings passes dnssec-verify" sib_verified
SERIAL1=$(soa_serial "$P")
check "BIND: UPDATEs moved the serial past the file's 1 (now $SERIAL1)" test "${SERIAL1:-0}" -gt 1

# --- a validating resolver and delv ------------------------------------
check "trust anchor: sib.test's KSK (flags 257) through apexd" sib_trust_anchor
start_validator
V=$VAL_PORT
check "validator: apex A validated (AD=1), the CDN's addresses" \
	at "$V" sib.test A --rcode NOERROR --flag AD --addrs "$S_A"
check "validator: apex AAAA validated (AD=1)" at "$V" sib.test AAAA --rcode NOERROR --flag AD --addrs "$S_AAAA"
check "validator: www A validated" at "$V" www.sib.test A --flag AD --addrs "$S_A"
check "validator: wildcard foo.w A validated" at "$V" foo.w.sib.test A --flag AD --addrs "$S_A"
check "validator: v4 A validated" at "$V" v4.sib.test A --flag AD --addrs "$V4_A"
check "validator: v4 AAAA is a validated NODATA (NOERROR, no answer, AD=1)" \
	at "$V" v4.sib.test AAAA --rcode NOERROR --flag AD --addrs ""
check "validator: without DO, AD asked for (RFC 6840): AD=1 for the apex A" \
	sq --server "127.0.0.1:$V" --adflag sib.test A --flag AD --addrs "$S_A"
check "validator: it validated, no bogus answer logged" \
	bash -c "! grep -qi 'validation failure' '$VAL_LOG'"
check "delv @apexd: apex A fully validated" delv_ok "$APEX_PORT" sib.test A "$S_A"
check "delv @apexd: apex AAAA fully validated" delv_ok "$APEX_PORT" sib.test AAAA "$S_AAAA"
check "delv @apexd: v4 AAAA, a fully validated negative answer" delv_ok "$APEX_PORT" v4.sib.test AAAA ""

# --- the secondary ------------------------------------------------------
check_within 15 "secondary: apex A with its RRSIG (transferred from the primary)" \
	at "$SEC_PORT" sib.test A --rcode NOERROR --flag AA --addrs "$S_A" --signed
check "secondary: www AAAA with its RRSIG" at "$SEC_PORT" www.sib.test AAAA --addrs "$S_AAAA" --signed
same_serial() {
	local p s
	p=$(soa_serial "$P")
	s=$(soa_serial "$SEC_PORT")
	echo "primary $p, secondary $s"
	[[ -n $p && $p == "$s" ]]
}
check_within 10 "secondary: same serial as the primary" same_serial

# --- DO=1 and DO=0 through apexd agree ---------------------------------
for name in sib.test www.sib.test foo.w.sib.test; do
	check "apexd DO=1: $name A is BIND's signed sibling" at "$APEX_PORT" "$name" A --flag AA --addrs "$S_A" --signed
	check "apexd DO=0: $name A flattened, same addresses, no RRSIG" \
		fq "$name" A --flag AA --addrs "$S_A" --rrsig no
	check "apexd DO=1: $name AAAA" at "$APEX_PORT" "$name" AAAA --addrs "$S_AAAA" --signed
	check "apexd DO=0: $name AAAA" fq "$name" AAAA --flag AA --addrs "$S_AAAA" --rrsig no
done
check "apexd DO=0: v4 AAAA NODATA with the SOA" fq v4.sib.test AAAA --rcode NOERROR --answers 0 --soa sib.test

# --- what apexd says about it -------------------------------------------
explain_siblings() {
	local out
	out=$(ctl explain sib.test 2>&1) || { echo "$out"; return 1; }
	echo "$out"
	grep -q '^ *siblings:' <<<"$out"
}
check "apexctl explain sib.test: a siblings: block" explain_siblings
check "metrics: apexd_sibling_updates_total{result=\"ok\"} > 0" \
	metric_is 'apexd_sibling_updates_total{result="ok"}' -gt 0
check "metrics: apexd_sibling_owners = $SIB_OWNERS (every ANAME owner)" \
	metric_is apexd_sibling_owners -eq "$SIB_OWNERS"
check "metrics: apexd_sibling_transfers_total{kind=\"axfr\",result=\"ok\"} > 0" \
	metric_is 'apexd_sibling_transfers_total{kind="axfr",result="ok"}' -gt 0
check "metrics: apexd_sibling_changes_total > 0" metric_is apexd_sibling_changes_total -gt 0

no_secret() {
	local secret
	secret=$(sed -n 's/.*secret "\(.*\)";.*/\1/p' "$SIB_KEY")
	[[ -n $secret ]] || { echo "no secret in $SIB_KEY"; return 1; }
	! ctl explain sib.test | grep -qF "$secret" &&
		! grep -qF "$secret" "$APEX_LOG" "$T_DIR/metrics.txt"
}
check "the key's secret is in no explain output, log line or metric" no_secret

# --- DNSViz -------------------------------------------------------------
NAMES=(sib.test www.sib.test foo.w.sib.test v4.sib.test mail.sib.test)
dnsviz_signed() {
	sib_dnsviz_probe signed "${NAMES[@]}" && dnsviz_clean "$T_DIR/signed.grok.json" sib.test "${NAMES[@]}"
}
check "dnsviz: sib.test through apexd: no errors, no warnings, SECURE" dnsviz_signed

# --- the CDN changes an address -----------------------------------------
NEW_A="198.51.100.72 198.51.100.79"
check "CDN: s-www A becomes $NEW_A (UPDATE at the CDN)" cdn_update \
	"update delete s-www.cdn.test. A" \
	"update add s-www.cdn.test. $SIB_TTL A 198.51.100.72" \
	"update add s-www.cdn.test. $SIB_TTL A 198.51.100.79"
LIMIT=$((SIB_TTL + 5))
check_within "$LIMIT" "BIND: apex A follows within TTL + 5 s" at "$P" sib.test A --addrs "$NEW_A" --signed
all_follow() {
	local n
	for n in www gone foo.w; do
		at "$P" "$n.sib.test" A --addrs "$NEW_A" --signed || return 1
	done
}
check_within 5 "BIND: www, gone and the wildcard follow too" all_follow
check "BIND: the AAAA siblings did not change" at "$P" sib.test AAAA --addrs "$S_AAAA" --signed
check_within 5 "validator: the new apex A, validated" at "$V" sib.test A --flag AD --addrs "$NEW_A"
check_within 10 "secondary: the new apex A, signed" at "$SEC_PORT" sib.test A --addrs "$NEW_A" --signed
check_within "$LIMIT" "apexd DO=0: the flattened apex A agrees" fq sib.test A --flag AA --addrs "$NEW_A"
check "delv @apexd: the new apex A fully validated" delv_ok "$APEX_PORT" sib.test A "$NEW_A"
SERIAL2=$(soa_serial "$P")
check "BIND: the change moved the serial ($SERIAL1 -> $SERIAL2)" test "${SERIAL2:-0}" -gt "$SERIAL1"

# serial_still SECONDS: sib.test's serial at the primary stays as it is
# now, polled every second for SECONDS, and the apex keeps NEW_A.
serial_still() {
	local s0 s i
	s0=$(soa_serial "$P")
	for ((i = 0; i < $1; i++)); do
		sleep 1
		s=$(soa_serial "$P")
		[[ $s == "$s0" ]] || { echo "serial moved $s0 -> $s after ${i}s"; return 1; }
	done
	echo "serial $s0 for $1 s"
	at "$P" sib.test A --addrs "$NEW_A"
}
U0=$(metric 'apexd_sibling_updates_total{result="ok"}' || true)
check "target stable: the serial does not move for 3 x TTL" serial_still $((3 * SIB_TTL))
check "target stable: no UPDATE sent meanwhile" \
	metric_is 'apexd_sibling_updates_total{result="ok"}' -eq "${U0%.*}"
check "no chase failures" metric_is apexd_sibling_chase_failures_total -eq 0
no_refusals() {
	local r v bad=0
	# A series never incremented may be absent: that is 0.
	for r in refused notauth prereq timeout error; do
		v=$(metric "apexd_sibling_updates_total{result=\"$r\"}") || v=0
		echo "$r: $v"
		[[ ${v%.*} == 0 ]] || bad=1
	done
	return "$bad"
}
check "no UPDATE refused, failed or timed out" no_refusals

stop_flat_apexd
finish
