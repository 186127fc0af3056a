#!/usr/bin/env bash
# Siblings when things go wrong (issue 13), against the signed, dynamic
# primary of siblib.sh, one BIND for the whole case and one apexd per
# step where the key differs:
#   1. wrong key (same name, another secret): BIND refuses the transfer
#      (NOTAUTH/BADSIG); apexd logs the zone and rcode once, counts it,
#      retries, and keeps answering DO=0 queries flattened;
#   2. no allow-update for apexd's key: UPDATE REFUSED, logged once,
#      counted, retried; BIND's allow-update fixed (SIGHUP), the siblings
#      arrive;
#   3. an ANAME deleted from the zone: apexd removes the siblings it wrote
#      there, and nothing else;
#   4. a target gone NXDOMAIN at the CDN: that owner's siblings are
#      deleted, BIND serves a signed NODATA;
#   5. the resolver down: the siblings stay as they are, chase failures
#      are counted; the resolver back, the zone follows the CDN again.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../siblib.sh
source "$INT_DIR/siblib.sh"
need_real_apexd
need_sib_tools

check "TSIG keys made by tsig-keygen (two secrets for one name)" sib_keys
start_sib_cdn
start_unbound
S_A=$(cdn_addrs s-www.cdn.test A)
S_AAAA=$(cdn_addrs s-www.cdn.test AAAA)
NX_A=$(cdn_addrs s-nx.cdn.test A)
NX_AAAA=$(cdn_addrs s-nx.cdn.test AAAA)
check "CDN: s-www and s-nx have A and AAAA" test -n "$S_A" -a -n "$S_AAAA" -a -n "$NX_A" -a -n "$NX_AAAA"

SIB_APEX_PORT=$(new_port)
# Updates only from an address nobody uses: apexd's UPDATE is REFUSED
# (the zone stays dynamic, so dnssec-policy needs no inline-signing).
SIB_ALLOW_UPDATE="192.0.2.1;"
start_sib_primary
P=$NAMED_PORT

at() { sq --server "127.0.0.1:$1" --do "${@:2}"; }
# refusal_lines RCODES: apexd log lines naming sib.test and one of RCODES
# (an extended regex of rcode names, any case).
refusal_lines() {
	grep -iE "sib\.test" "$APEX_LOG" | grep -ciE "$1" || true
}
# counted SERIES MIN: the series has reached MIN.
counted() {
	local v
	v=$(metric "$1") || v=0
	echo "$1 = $v (want >= $2)"
	[[ ${v%.*} -ge $2 ]]
}

# --- 1. wrong key -------------------------------------------------------
say "step 1: apexd's key has another secret"
start_sib_apexd "$SIB_WRONG_KEY"
# wrong_key_failures: transfers failed plus UPDATEs answered NOTAUTH.
wrong_key_failures() {
	local t u
	t=$(metric 'apexd_sibling_transfers_total{kind="axfr",result="failed"}') || t=0
	u=$(metric 'apexd_sibling_updates_total{result="notauth"}') || u=0
	echo "$((${t%.*} + ${u%.*}))"
}
at_least_failures() {
	local n
	n=$(wrong_key_failures)
	echo "failed transfers + NOTAUTH updates: $n (want >= $1)"
	[[ $n -ge $1 ]]
}
check_within 10 "wrong key: counted (transfers failed or updates NOTAUTH) within 10 s" at_least_failures 1
check_within 20 "wrong key: retried (a second failure counted within 20 s)" at_least_failures 2
check "wrong key: BIND's refusal logged once, with the zone and the rcode" \
	test "$(refusal_lines 'notauth|badsig|badkey')" -eq 1
check "wrong key: BIND logged the bad signature" grep -qiE 'sib\.test.*(tsig|signature).*(bad|fail)|BADSIG|bad signature' "$T_DIR/named.log"
check "wrong key: DO=0 apex A still flattened" fq sib.test A --flag AA --addrs "$S_A" --rrsig no
check "wrong key: DO=0 www AAAA still flattened" fq www.sib.test AAAA --flag AA --addrs "$S_AAAA"
check "wrong key: nothing written to BIND (apex A NODATA)" at "$P" sib.test A --rcode NOERROR --addrs ""
stop_flat_apexd
cp "$APEX_LOG" "$T_DIR/apexd-wrongkey.extra.log"

# --- 2. no allow-update, then fixed ------------------------------------
say "step 2: the right key, but BIND's allow-update does not list it"
start_sib_apexd
check_within 15 "refused: counted (apexd_sibling_updates_total{result=\"refused\"} > 0) within 15 s" \
	counted 'apexd_sibling_updates_total{result="refused"}' 1
check_within 30 "refused: retried (a second REFUSED counted within 30 s)" \
	counted 'apexd_sibling_updates_total{result="refused"}' 2
check "refused: logged once, with the zone and the rcode" test "$(refusal_lines refused)" -eq 1
check "refused: BIND logged the denied update" grep -qiE 'update .*denied|update.*refused' "$T_DIR/named.log"
check "refused: the transfer itself worked" \
	counted 'apexd_sibling_transfers_total{kind="axfr",result="ok"}' 1
check "refused: DO=0 apex A flattened" fq sib.test A --flag AA --addrs "$S_A" --rrsig no
check "refused: nothing in BIND yet (apex A NODATA)" at "$P" sib.test A --rcode NOERROR --addrs ""
check "BIND's allow-update now lists key upd (named.conf rewritten, SIGHUP)" sib_allow_update "key upd;"
check_within 30 "fixed: the apex siblings arrive, signed (within 30 s: apexd's retry)" \
	at "$P" sib.test A --addrs "$S_A" --signed
others_arrived() {
	at "$P" www.sib.test AAAA --addrs "$S_AAAA" --signed &&
		at "$P" gone.sib.test AAAA --addrs "$S_AAAA" --signed &&
		at "$P" nx.sib.test AAAA --addrs "$NX_AAAA" --signed &&
		at "$P" nx.sib.test A --addrs "$NX_A" --signed
}
check_within 10 "fixed: www, gone and nx get theirs too" others_arrived
check "fixed: updates counted ok" counted 'apexd_sibling_updates_total{result="ok"}' 1
check "fixed: the zone verifies" sib_verified

# --- 3. an ANAME removed ------------------------------------------------
say "step 3: the ANAME at gone.sib.test is deleted"
check "owners tracked: $SIB_OWNERS" metric_is apexd_sibling_owners -eq "$SIB_OWNERS"
check "UPDATE at the primary: delete gone's ANAME" primary_update "update delete gone.sib.test. TYPE65401"
check_within 10 "gone: A removed by apexd (NODATA, signed) within 10 s" \
	at "$P" gone.sib.test A --rcode NOERROR --addrs "" --nodata-proof
check "gone: AAAA removed too" at "$P" gone.sib.test AAAA --rcode NOERROR --addrs "" --nodata-proof
check "gone: the TXT that was not apexd's is still there" bash -c \
	"dig @127.0.0.1 -p $P +short +time=2 +tries=1 gone.sib.test TXT | grep -q 'kept when the ANAME goes'"
check "gone: the other owners keep theirs (www A)" at "$P" www.sib.test A --addrs "$S_A" --signed
check_within 5 "owners tracked: one less" metric_is apexd_sibling_owners -eq $((SIB_OWNERS - 1))

# --- 4. a target goes NXDOMAIN ------------------------------------------
say "step 4: s-nx.cdn.test is deleted at the CDN"
check "UPDATE at the CDN: delete s-nx" cdn_update "update delete s-nx.cdn.test."
check "CDN: s-nx is NXDOMAIN" bash -c \
	"dig @127.0.0.1 -p $CDN_PORT +time=2 +tries=1 s-nx.cdn.test A | grep -q 'status: NXDOMAIN'"
LIMIT=$((SIB_TTL + 5))
check_within "$LIMIT" "nx: A siblings deleted within TTL + 5 s: signed NODATA at BIND" \
	at "$P" nx.sib.test A --rcode NOERROR --addrs "" --nodata-proof
check_within 5 "nx: AAAA siblings deleted: signed NODATA" \
	at "$P" nx.sib.test AAAA --rcode NOERROR --addrs "" --nodata-proof
check "nx: through apexd DO=1, the same signed NODATA" \
	at "$APEX_PORT" nx.sib.test AAAA --rcode NOERROR --addrs "" --nodata-proof
check "nx: through apexd DO=0, NODATA with the SOA" fq nx.sib.test A --rcode NOERROR --answers 0 --soa sib.test
check "nx: the ANAME itself is still there" bash -c \
	"dig @127.0.0.1 -p $P +short +time=2 +tries=1 nx.sib.test TYPE65401 | grep -q ."

# --- 5. the resolver down -----------------------------------------------
say "step 5: the resolver stops; the CDN moves meanwhile"
f0=$(metric apexd_sibling_chase_failures_total || true)
f0=${f0%.*}
stop_unbound
MOVED_A="198.51.100.81"
check "UPDATE at the CDN: s-www A becomes $MOVED_A" cdn_update \
	"update delete s-www.cdn.test. A" "update add s-www.cdn.test. $SIB_TTL A $MOVED_A"
check_within "$LIMIT" "resolver down: chase failures counted within TTL + 5 s" \
	metric_is apexd_sibling_chase_failures_total -gt "${f0:-0}"
# siblings_stay SECONDS: the apex keeps its A and AAAA for SECONDS.
siblings_stay() {
	local i
	for ((i = 0; i < $1; i++)); do
		at "$P" sib.test A --addrs "$S_A" --signed || return 1
		at "$P" sib.test AAAA --addrs "$S_AAAA" --signed || return 1
		sleep 1
	done
}
check "resolver down: the siblings stay in place for 5 s more" siblings_stay 5
check "resolver down: www keeps its siblings too" at "$P" www.sib.test A --addrs "$S_A" --signed
start_unbound "$UNBOUND_PORT"
check_within 30 "resolver back: the zone follows the CDN (apex A = $MOVED_A within 30 s)" \
	at "$P" sib.test A --addrs "$MOVED_A" --signed
check_within 5 "resolver back: www too" at "$P" www.sib.test A --addrs "$MOVED_A" --signed
check "resolver back: AAAA unchanged" at "$P" sib.test AAAA --addrs "$S_AAAA" --signed
check "the zone verifies at the end" sib_verified
check "apexctl explain sib.test: a siblings: block" bash -c "'$APEXCTL' -s '$SIB_SOCK' explain sib.test | grep -q '^ *siblings:'"

stop_flat_apexd
finish
