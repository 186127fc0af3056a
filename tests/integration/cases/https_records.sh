#!/usr/bin/env bash
# HTTPS and SVCB records (RFC 9460) at flattened owners: a query for HTTPS
# or SVCB at an ANAME, [alias] or flattened-CNAME owner gets the target's
# RRset re-owned to the query name, RDATA unchanged (TargetName "." keeps
# meaning "this name", whose addresses are the flattened ones; AliasMode
# stays AliasMode; alpn, port, ipv4hint, ech, ipv6hint as the CDN wrote
# them), TTL = min over the chain; a target without the type gives NODATA
# with the owner zone's SOA. Asked with dig and with kdig (two parsers of
# the SvcParams), compared with what the CDN itself serves.
#
# The flattening zones are copied and extended here (flatlib.sh reads
# FLAT_ZONES), so the other cases' zones stay as they are:
#   www.cdn.test      HTTPS 1 . (every known key) and HTTPS 2 svc.cdn.test.
#   aliased.cdn.test  HTTPS 0 www.cdn.test. (AliasMode)
#   svc1.cdn.test     SVCB 1 svc.cdn.test. alpn=dot port=853
#   hc1.cdn.test      CNAME (70) hc2.cdn2.test, HTTPS (200) there
#   v4only.cdn.test   no HTTPS
# and the owners: example.test (ANAME 600 -> www), aliasmode, svcb, hchain
# (ANAMEs), noaaaa (ANAME -> v4only), alias-https ([alias] -> www), and
# apexcn.example.test (a CNAME to www at the apex of a configured zone).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need kdig
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock

ECH=AAz+DQAIAQIDBAUGBwg=
FLAT_ZONES=$T_DIR/zones-https
mkdir -p "$FLAT_ZONES"
cp "$ZONES_DIR"/flat/* "$FLAT_ZONES/"
cat >>"$FLAT_ZONES/cdn.test.zone" <<EOF
;; https_records.sh: RFC 9460 records at the CDN.
www	45	IN	HTTPS	1 . alpn="h3,h2" port=8443 ipv4hint=198.51.100.1,198.51.100.2 ech=$ECH ipv6hint=2001:db8:cd::1
www	45	IN	HTTPS	2 svc.cdn.test. mandatory=alpn alpn=h2 no-default-alpn
svc	45	IN	A	198.51.100.70
aliased	45	IN	HTTPS	0 www.cdn.test.
svc1	45	IN	SVCB	1 svc.cdn.test. alpn=dot port=853
hc1	70	IN	CNAME	hc2.cdn2.test.
EOF
cat >>"$FLAT_ZONES/cdn2.test.zone" <<EOF
hc2	200	IN	HTTPS	1 . alpn=h2 port=443
EOF
cat >>"$FLAT_ZONES/example.test.zone" <<EOF
;; https_records.sh: the zone's own HTTPS at sib2 (ANAME to a target that
;; times out), the fallback when the chase fails.
sib2	300	IN	HTTPS	1 . alpn=h2
EOF
cat >>"$FLAT_ZONES/anames.list" <<EOF
example.test.zone	aliasmode	600	aliased.cdn.test.
example.test.zone	svcb	600	svc1.cdn.test.
example.test.zone	hchain	600	hc1.cdn.test.
EOF

start_flat_backend
start_cdn
# www.slow.test: its only server never answers (sib2's target).
start_blackhole
start_unbound "" "slow.test=127.0.0.1@$BLACKHOLE_PORT"
start_flat_apexd "[server]
control = $SOCK
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[flatten]
min-ttl = 1s
[zone example.test]
[zone apexcn.example.test]
[alias]
alias-https.example.test = www.cdn.test"

# rdata_of TOOL PORT NAME TYPE: the RDATA of the TYPE records in the answer
# section, in the tool's presentation format, sorted, one a line.
rdata_of() {
	local tool=$1 port=$2 name=$3 type=$4
	if [[ $tool == dig ]]; then
		dig @127.0.0.1 -p "$port" +time=3 +tries=1 +nocookie +norec +noall +answer "$name" "$type"
	else
		kdig @127.0.0.1 -p "$port" +time=3 +retry=0 +norec +noall +answer "$name" "$type"
	fi | awk -v t="$type" '$4 == t { $1 = $2 = $3 = $4 = ""; sub(/^ +/, ""); print }' | sort
}

# reowned TOOL OWNER TYPE TARGET [COUNT]: apexd's answer at OWNER is
# NOERROR, AA, no CNAME, every answer RR of TYPE owned by OWNER (as
# asked), and its RDATA are exactly the CDN's at TARGET (COUNT of them).
reowned() {
	local tool=$1 owner=$2 type=$3 target=$4 count=${5:-} out mine cdn
	if [[ $tool == dig ]]; then
		out=$(dig_at "$APEX_PORT" +norec "$owner" "$type")
	else
		out=$(kdig @127.0.0.1 -p "$APEX_PORT" +time=3 +retry=0 +norec "$owner" "$type")
	fi
	printf '%s\n' "$out"
	mine=$(rdata_of "$tool" "$APEX_PORT" "$owner" "$type")
	cdn=$(rdata_of "$tool" "$CDN_PORT" "$target" "$type")
	printf 'apexd:\n%s\nCDN:\n%s\n' "$mine" "$cdn"
	grep -qiE 'status: NOERROR' <<<"$out" || return 1
	grep -qiE 'flags: qr aa|flags: QR AA' <<<"$out" || return 1
	! grep -qE '[[:space:]]CNAME[[:space:]]' <<<"$out" || return 1
	[[ -n $mine && $mine == "$cdn" ]] || return 1
	[[ -z $count || $(wc -l <<<"$mine") -eq $count ]] || return 1
	# Every answer RR is owned by the name as asked.
	local owners
	owners=$(if [[ $tool == dig ]]; then
		dig_at "$APEX_PORT" +norec +noall +answer "$owner" "$type"
	else
		kdig @127.0.0.1 -p "$APEX_PORT" +time=3 +retry=0 +norec +noall +answer "$owner" "$type"
	fi | awk '{ print $1 }' | sort -u)
	[[ $owners == "$owner." ]]
}

# The CDN really serves what the cases below expect to see re-owned.
check "CDN: www.cdn.test has two HTTPS records" \
	test "$(rdata_of dig "$CDN_PORT" www.cdn.test HTTPS | wc -l)" -eq 2

for tool in dig kdig; do
	check "$tool: HTTPS at the ANAME apex = the target's RRset, re-owned" \
		reowned "$tool" example.test HTTPS www.cdn.test 2
	check "$tool: AliasMode stays AliasMode" reowned "$tool" aliasmode.example.test HTTPS aliased.cdn.test 1
	check "$tool: SVCB at an ANAME owner" reowned "$tool" svcb.example.test SVCB svc1.cdn.test 1
	check "$tool: HTTPS at an [alias] owner" reowned "$tool" alias-https.example.test HTTPS www.cdn.test 2
	check "$tool: HTTPS at a flattened apex CNAME" reowned "$tool" apexcn.example.test HTTPS www.cdn.test 2
	check "$tool: HTTPS through a CNAME chain at the target" reowned "$tool" hchain.example.test HTTPS hc2.cdn2.test 1
done

# The parameters, as dig prints them: TargetName "." and every key.
service_mode() {
	local out ech=${ECH//+/\\+}
	out=$(dig_at "$APEX_PORT" +norec +noall +answer example.test HTTPS)
	printf '%s\n' "$out"
	grep -qE "^example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+HTTPS[[:space:]]+1 \. alpn=\"h3,h2\" port=8443 ipv4hint=198\.51\.100\.1,198\.51\.100\.2 ech=$ech ipv6hint=2001:db8:cd::1\$" <<<"$out" &&
		grep -qE "^example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+HTTPS[[:space:]]+2 svc\.cdn\.test\. mandatory=alpn alpn=\"h2\" no-default-alpn\$" <<<"$out"
}
check "dig: ServiceMode with alpn, port, ipv4hint, ech, ipv6hint untouched" service_mode
alias_mode() {
	local out
	out=$(kdig @127.0.0.1 -p "$APEX_PORT" +time=3 +retry=0 +norec +noall +answer aliasmode.example.test HTTPS)
	printf '%s\n' "$out"
	grep -qE '^aliasmode\.example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+HTTPS[[:space:]]+0 www\.cdn\.test\.$' <<<"$out"
}
check "kdig: AliasMode 0 www.cdn.test. at the owner" alias_mode

# TTL: min over the chain (ANAME 600, www 45; ANAME 600, CNAME 70, HTTPS
# 200), less the seconds the answer has been cached.
rules=(--rcode NOERROR --flag AA --no-cname)
check "HTTPS TTL at the apex: the target's 45" fq example.test HTTPS "${rules[@]}" --answers 2 --ttl 1:45
check "HTTPS TTL through the chain: the CNAME's 70" fq hchain.example.test HTTPS "${rules[@]}" --answers 1 --ttl 1:70
check "SVCB TTL: the target's 45" fq svcb.example.test SVCB "${rules[@]}" --answers 1 --ttl 1:45
check "HTTPS over TCP" fq example.test HTTPS --tcp "${rules[@]}" --answers 2 --ttl 1:45
check "HTTPS without EDNS" fq example.test HTTPS --no-edns "${rules[@]}" --answers 2
# A target without HTTPS: NODATA with the owner zone's SOA, twice (cold,
# then from the target cache).
for i in 1 2; do
	check "HTTPS at an owner whose target has none: NODATA + SOA ($i)" \
		fq noaaaa.example.test HTTPS --rcode NOERROR --flag AA --answers 0 --soa example.test
done
nodata_kdig() {
	local out
	out=$(kdig @127.0.0.1 -p "$APEX_PORT" +time=3 +retry=0 +norec noaaaa.example.test HTTPS)
	printf '%s\n' "$out"
	grep -qE 'status: NOERROR' <<<"$out" && grep -qE 'ANSWER: 0' <<<"$out" &&
		grep -qE '^example\.test\.[[:space:]]+[0-9]+[[:space:]]+IN[[:space:]]+SOA' <<<"$out"
}
check "kdig: that NODATA carries example.test's SOA in authority" nodata_kdig
# BIND alone says NODATA too: the resolver's log shows it was the chase.
check "that NODATA came from a chase of the target" test "$(unbound_count v4only.cdn.test HTTPS)" -ge 1
# The failure rules of A/AAAA: a target that times out, with the zone's
# own HTTPS at the owner: those, relayed; a CNAME loop at the target:
# SERVFAIL with an Extended DNS Error; an NXDOMAIN target: NODATA.
check "target times out: the zone's own HTTPS at the owner (sibling)" \
	fq sib2.example.test HTTPS --rcode NOERROR --flag AA --answers 1 --answer-types HTTPS
check "target in a CNAME loop: SERVFAIL with EDE" fq loop.example.test HTTPS --rcode SERVFAIL --ede-any
check "NXDOMAIN target: NODATA with the owner zone's SOA" \
	fq nx.example.test HTTPS --rcode NOERROR --flag AA --answers 0 --soa example.test
# "." names the owner: its A are the flattened ones.
check "A at the apex: the target's addresses" fq example.test A "${rules[@]}" --addrs "$WWW_A"

# explain prints the RRset in presentation form.
check "apexctl explain example.test HTTPS shows the records" \
	out_has "IN HTTPS 1 . alpn=h3,h2 port=8443 ipv4hint=198.51.100.1,198.51.100.2 ech=$ECH ipv6hint=2001:db8:cd::1" \
	ctl explain example.test HTTPS
check "apexctl explain svcb.example.test SVCB" \
	out_has "IN SVCB 1 svc.cdn.test. alpn=dot port=853" ctl explain svcb.example.test SVCB

stop_flat_apexd
check "HTTPS/SVCB answers counted as flattened" stat_is answers_flattened -ge 20
check "the sibling fallback was counted" stat_is answers_sibling -ge 1
finish
