#!/usr/bin/env bash
# Flattening answer rules (DESIGN.md "Answer rules") against a real BIND
# backend, a second named playing the CDN and unbound as the resolver:
# ANAME at the apex, wildcard ANAME, [alias], CNAME at an apex, CNAME
# policy apex/all, out-of-zone chains, in-zone chains, NODATA, loops,
# max-chain, siblings, invalid ANAME, TC, ANY, ANAME-type queries, DNSSEC
# and zones apexd does not flatten. Over UDP and TCP, with dnspython (the
# exact checks), dig and kdig. The zone's ANAME lines are made by
# docs/aname-line.sh, which is checked against a known line first.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need kdig

# The helper, against the line the design documents spell out byte by byte.
check "aname-line.sh: www.cdn.net. at @, TTL 600" test \
	"$(sh "$ANAME_LINE" @ 600 www.cdn.net.)" = '@ 600 IN TYPE65401 \# 13 037777770363646e036e657400'
check "aname-line.sh: no trailing dot, other type code" test \
	"$(sh "$ANAME_LINE" www 60 www.cdn.net 65305)" = 'www 60 IN TYPE65305 \# 13 037777770363646e036e657400'
check "aname-line.sh: rejects an empty label" bash -c "! sh '$ANAME_LINE' @ 60 a..b 2>/dev/null"

start_flat_backend
start_cdn
# www.slow.test: a zone whose only server never answers, so a chase of it
# times out (the sibling-fallback case).
start_blackhole
start_unbound "" "slow.test=127.0.0.1@$BLACKHOLE_PORT"
check "CDN serves www.cdn.test A x2 and AAAA" test "$WWW_A|$WWW_AAAA" = "198.51.100.1 198.51.100.2|2001:db8:cd::1"

RESOLVER="[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms"
ALIAS="[alias]
alias-owner.example.test = www.cdn.test"

# dig/kdig TOOL TRANSPORT NAME TYPE ADDRS: the answer holds exactly ADDRS,
# every RR owned by NAME as spelled, of TYPE; the header has aa.
client_answer() {
	local tool=$1 tr=$2 name=$3 type=$4 want=$5 out args=()
	if [[ $tool == dig ]]; then
		[[ $tr == tcp ]] && args+=(+tcp)
		out=$(dig @127.0.0.1 -p "$APEX_PORT" +time=3 +tries=1 +nocookie "${args[@]}" "$name" "$type")
	else
		[[ $tr == tcp ]] && args+=(+tcp)
		out=$(kdig @127.0.0.1 -p "$APEX_PORT" +time=3 +retry=0 "${args[@]}" "$name" "$type")
	fi
	echo "$out"
	grep -qiE '^;; flags: qr aa' <<<"$out" || { echo "no aa flag"; return 1; }
	local rrs got
	rrs=$(awk '!/^;/ && NF == 5 && $3 == "IN"' <<<"$out")
	got=$(awk '{print $5}' <<<"$rrs" | sort | tr '\n' ' ' | sed 's/ $//')
	[[ $got == "$want" ]] || { echo "addresses '$got', want '$want'"; return 1; }
	# kdig lowercases the name it sends (its QUESTION shows it), so the
	# spelling can only be checked with dig.
	local owner=$name.
	[[ $tool == kdig ]] && owner=$(tr '[:upper:]' '[:lower:]' <<<"$owner")
	if awk -v n="$owner" -v t="$type" '$1 != n || $4 != t' <<<"$rrs" | grep -q .; then
		echo "an RR not owned by $name. or not $type"
		return 1
	fi
}

# ---------------------------------------------------------------------
say "run 1: [flatten] cname = apex (default)"
start_flat_apexd "$RESOLVER
[flatten]
min-ttl = 5s
[zone example.test]
[zone apexcn.example.test]
[zone signed.test]
$ALIAS"

# The first answer comes from a fresh chase: TTL = min(ANAME 600, A 45).
check "apex A, first: CDN's addresses, AA, no CNAME, TTL 45" \
	fq example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --no-cname --ttl 43:45
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	check "$tr: apex A" fq "${t[@]}" example.test A --rcode NOERROR --flag AA --flag '!TC' --addrs "$WWW_A" --ttl 5:45 --no-ede
	check "$tr: apex AAAA" fq "${t[@]}" example.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA" --ttl 5:45
	check "$tr: apex A without EDNS" fq "${t[@]}" --no-edns example.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
	check "$tr: mixed-case name spelled back exactly (A)" fq "${t[@]}" ExAmPlE.TeSt A --flag AA --addrs "$WWW_A"
	check "$tr: mixed-case name spelled back exactly (AAAA)" fq "${t[@]}" eXaMpLe.tEsT. AAAA --flag AA --addrs "$WWW_AAAA"
	check "$tr: wildcard ANAME (A)" fq "${t[@]}" Foo.wild.example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --ttl 5:45
	check "$tr: wildcard ANAME (AAAA)" fq "${t[@]}" bar.WILD.example.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA"
	check "$tr: [alias] owner BIND has no data for (A)" fq "${t[@]}" alias-owner.example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --ttl 5:45
	check "$tr: [alias] owner (AAAA)" fq "${t[@]}" alias-owner.example.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA"
	check "$tr: CNAME at a configured apex flattened (cname=apex), TTL min(120, 45)" \
		fq "${t[@]}" apexcn.example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --no-cname --ttl 5:45
	check "$tr: noaaaa A: the v4-only target's address" fq "${t[@]}" noaaaa.example.test A --flag AA --addrs 198.51.100.4
	check "$tr: noaaaa AAAA: NODATA with example.test's SOA" \
		fq "${t[@]}" noaaaa.example.test AAAA --rcode NOERROR --flag AA --answers 0 --soa example.test
	check "$tr: target NXDOMAIN, no sibling: NODATA (A) with SOA" \
		fq "${t[@]}" nx.example.test A --rcode NOERROR --flag AA --answers 0 --soa example.test
	check "$tr: target NXDOMAIN, no sibling: NODATA (AAAA) with SOA" \
		fq "${t[@]}" nx.example.test AAAA --rcode NOERROR --flag AA --answers 0 --soa example.test
	check "$tr: target NXDOMAIN with a sibling A: still NODATA with SOA (not a failure)" \
		fq "${t[@]}" sib.example.test A --rcode NOERROR --answers 0 --soa example.test
	check "$tr: CNAME loop at the CDN (unbound gives up): SERVFAIL + EDE" \
		fq "${t[@]}" loop.example.test A --rcode SERVFAIL --ede-any --max-ms 2500
	# BIND itself answers SERVFAIL ("max. restarts reached") for l1.
	check "$tr: in-zone CNAME loop behind an ANAME: SERVFAIL + EDE" \
		fq "${t[@]}" iloop.example.test A --rcode SERVFAIL --ede-any --max-ms 2500
	check "$tr: target times out, sibling A: BIND's sibling within deadline + 1 s" \
		fq "${t[@]}" sib2.example.test A --rcode NOERROR --addrs 192.0.2.98 --max-ms 2500
	check "$tr: target times out, no sibling AAAA: SERVFAIL + EDE within deadline + 1 s" \
		fq "${t[@]}" sib2.example.test AAAA --rcode SERVFAIL --ede-any --max-ms 2500
	# Relayed byte for byte: no [zone] rule applies.
	check "$tr: invalid ANAME RDATA: BIND's answer relayed" cmp_q "${t[@]}" --edns bad.example.test A --expect-rcode NOERROR
	check "$tr: non-apex CNAME with cname=apex: relayed (CNAME visible)" \
		cmp_q "${t[@]}" --edns cn.example.test A --expect-rcode NOERROR --expect-min-answers 1
	for type in SOA NS MX; do
		check "$tr: apex $type is BIND's, byte for byte" cmp_q "${t[@]}" --edns example.test $type --expect-min-answers 1
	done
	check "$tr: other.test (not configured) apex A relayed" cmp_q "${t[@]}" --edns other.test A --expect-rcode NOERROR
	check "$tr: other.test (not configured) CNAME relayed" cmp_q "${t[@]}" --edns cn.other.test A --expect-min-answers 1
	check "$tr: ANAME-type query: the record, addresses in additional" \
		fq "${t[@]}" example.test TYPE65401 --rcode NOERROR --flag AA --answer-types TYPE65401 --additional-addrs "$WWW_A $WWW_AAAA"
	check "$tr: signed zone, DO=1: BIND's signed answer relayed" \
		cmp_q "${t[@]}" --do signed.test A --expect-min-answers 2
	check "$tr: signed zone, DO=1: the sibling with its RRSIG, not flattened" \
		fq "${t[@]}" --do signed.test A --flag AA --answer-types "A RRSIG" --answers 2 --rrsig yes
	check "$tr: signed zone, DO=1, ANAME-type query: BIND's signed answer relayed" \
		cmp_q "${t[@]}" --do signed.test TYPE65401 --expect-min-answers 2
	check "$tr: signed zone, DO=1, ANAME-type query: the record with its RRSIG" \
		fq "${t[@]}" --do signed.test TYPE65401 --flag AA --answer-types "TYPE65401 RRSIG" --answers 2 --rrsig yes
	check "$tr: signed zone without DO, ANAME-type query: the record, addresses in additional" \
		fq "${t[@]}" signed.test TYPE65401 --flag AA --answer-types TYPE65401 --rrsig no --additional-addrs "$WWW_A $WWW_AAAA"
	check "$tr: signed zone without DO: flattened" fq "${t[@]}" signed.test A --flag AA --addrs "$WWW_A" --rrsig no
	check "$tr: signed zone without DO: flattened (AAAA)" fq "${t[@]}" signed.test AAAA --flag AA --addrs "$WWW_AAAA" --rrsig no
done
check "other.test's targets never reached the resolver" test "$(unbound_saw ot.cdn.test)/$(unbound_saw ot2.cdn.test)" = 0/0
check "the in-zone loop never reached the resolver" test "$(unbound_saw l1.example.test)" = 0

# 40 AAAA behind an ANAME: 1100+ bytes.
check "udp, no EDNS: 40 AAAA do not fit 512: TC=1" fq --no-edns big.example.test AAAA --flag TC --flag AA
check "udp, EDNS 1232: all 40 AAAA" fq big.example.test AAAA --flag '!TC' --answers 40 --addrs "$(cdn_addrs many.cdn.test AAAA)"
check "tcp, no EDNS: all 40 AAAA" fq --tcp --no-edns big.example.test AAAA --flag '!TC' --answers 40 --addrs "$(cdn_addrs many.cdn.test AAAA)"
check "udp, EDNS 512: TC=1" fq --payload 512 big.example.test AAAA --flag TC

# ANY: RFC 8482 over UDP, everything over TCP.
check "udp: ANY at a flattened name: one HINFO RFC8482" fq example.test ANY --rcode NOERROR --hinfo-rfc8482
check "udp: ANY at the [alias] owner: one HINFO RFC8482" fq alias-owner.example.test ANY --rcode NOERROR --hinfo-rfc8482
check "tcp: ANY: BIND's ANY plus the addresses" \
	fq --tcp example.test ANY --rcode NOERROR --answer-types "SOA NS MX TXT TYPE65401 A AAAA"
any_addrs() {
	"$PY" - "$APEX_PORT" "$WWW_A $WWW_AAAA" <<'PY'
import sys, dns.message, dns.query
port, want = int(sys.argv[1]), sorted(sys.argv[2].split())
r = dns.query.tcp(dns.message.make_query("example.test", "ANY"), "127.0.0.1", port=port, timeout=3)
got = sorted(rd.address for rr in r.answer if rr.rdtype in (1, 28) for rd in rr)
print(r)
sys.exit(0 if got == want and all(rr.name.to_text() == "example.test." for rr in r.answer) else 1)
PY
}
check "tcp: ANY: the addresses are exactly the CDN's, at the apex" any_addrs

# dig and kdig see the same flattened answers.
for tool in dig kdig; do
	for tr in udp tcp; do
		check "$tool $tr: apex A" client_answer $tool $tr example.test A "$WWW_A"
		check "$tool $tr: apex AAAA" client_answer $tool $tr example.test AAAA "$WWW_AAAA"
		check "$tool $tr: mixed case" client_answer $tool $tr ExAmPle.TEST A "$WWW_A"
	done
done

stop_flat_apexd
check "run 1 stats: answers_flattened >= 40" stat_is answers_flattened -ge 40
check "run 1 stats: answers_sibling >= 2 (sib2 A, udp + tcp)" stat_is answers_sibling -ge 2
check "run 1 stats: aname_invalid >= 1" stat_is aname_invalid -ge 1
check "run 1 stats: signed_relayed >= 6 (A and ANAME-type, udp + tcp)" stat_is signed_relayed -ge 6
check "run 1 stats: answers_flatten_failed >= 4" stat_is answers_flatten_failed -ge 4
check "run 1 stats: aname_probes > 0" stat_is aname_probes -gt 0
check "run 1 stats: answers_flattened_local = 0 (cname=apex)" stat_is answers_flattened_local -eq 0

# ---------------------------------------------------------------------
say "run 2: [zone example.test] cname = all"
start_flat_apexd "$RESOLVER
[flatten]
min-ttl = 5s
[zone example.test]
cname = all
[zone signed.test]"
TAIL_A=$(cdn_addrs tail.cdn.test A)
TAIL_AAAA=$(cdn_addrs tail.cdn.test AAAA)
# A fresh chase: TTL = min(600, c1 100, c2 30, tail 45) = 30.
check "chain, first answer: TTL exactly the chain's minimum (28..30)" \
	fq chain.example.test A --rcode NOERROR --flag AA --addrs "$TAIL_A" --no-cname --ttl 28:30
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	check "$tr: non-apex CNAME flattened with cname=all, TTL min(120, 45)" \
		fq "${t[@]}" cn.example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --no-cname --ttl 5:45
	check "$tr: non-apex CNAME flattened (AAAA)" fq "${t[@]}" cn.example.test AAAA --flag AA --addrs "$WWW_AAAA" --no-cname
	check "$tr: chain across cdn.test and cdn2.test: TTL min = 30 (c2)" \
		fq "${t[@]}" chain.example.test A --rcode NOERROR --flag AA --addrs "$TAIL_A" --no-cname --ttl 5:30
	check "$tr: chain across two CDN zones (AAAA)" fq "${t[@]}" chain.example.test AAAA --flag AA --addrs "$TAIL_AAAA" --no-cname --ttl 5:30
	check "$tr: in-zone chain flattened locally, TTL min(120, 60)" \
		fq "${t[@]}" inzone.example.test A --rcode NOERROR --flag AA --addrs 192.0.2.77 --no-cname --ttl 5:60
	check "$tr: in-zone chain flattened locally (AAAA)" \
		fq "${t[@]}" InZone.example.test AAAA --flag AA --addrs 2001:db8::77 --no-cname
	check "$tr: ANAME still flattened with cname=all" fq "${t[@]}" example.test A --flag AA --addrs "$WWW_A"
	# Without recursion BIND stops xz at the zone's edge (no SOA in its
	# answer): the chase asks BIND for ns1.signed.test, and the NODATA
	# gets example.test's SOA asked of BIND. flatten_owner_soa has BIND
	# follow the chain itself.
	check "$tr: CNAME into another zone BIND serves (A): flattened" \
		fq "${t[@]}" xz.example.test A --rcode NOERROR --flag AA --addrs 192.0.2.53 --no-cname
	check "$tr: CNAME into another zone BIND serves, no AAAA there: NODATA with the owner zone's SOA" \
		fq "${t[@]}" xz.example.test AAAA --rcode NOERROR --flag AA --answers 0 --soa example.test
	check "$tr: CNAME into another zone BIND serves, NXDOMAIN there: NODATA with the owner zone's SOA" \
		fq "${t[@]}" xznx.example.test A --rcode NOERROR --flag AA --answers 0 --soa example.test
	# RFC 6672: below a DNAME every client label becomes a chase target;
	# apexd relays those answers instead.
	check "$tr: name below a DNAME with cname=all: BIND's answer relayed" \
		cmp_q "${t[@]}" --edns rnd-$tr.dn.example.test A --expect-rcode NOERROR --expect-min-answers 2
	check "$tr: name below a DNAME with cname=all (existing target): relayed, CNAME visible" \
		cmp_q "${t[@]}" --edns www.dn.example.test A --expect-rcode NOERROR --expect-min-answers 2
	check "$tr: a zone CNAME whose chain passes a DNAME: flattened" \
		fq "${t[@]}" viadn.example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --no-cname --ttl 5:45
done
check "names below the DNAME never reached the resolver" \
	test "$(unbound_saw rnd-udp.cdn.test)/$(unbound_saw rnd-tcp.cdn.test)" = 0/0
check "in-zone chain never reached the resolver" test "$(unbound_saw host.example.test)" = 0
stop_flat_apexd
check "run 2 stats: answers_flattened_local >= 4" stat_is answers_flattened_local -ge 4
check "run 2 stats: answers_flattened >= 8" stat_is answers_flattened -ge 8

# ---------------------------------------------------------------------
# unbound and BIND both refuse to follow a CNAME loop (SERVFAIL), so
# apexd's own loop detection needs a resolver that answers one hop at a
# time: a fake one, for which loop1.cdn.test and loop2.cdn.test are CNAMEs
# of each other.
say "run 4: a one-hop resolver serving a CNAME loop"
start_hop_resolver loop1.cdn.test=loop2.cdn.test loop2.cdn.test=loop1.cdn.test
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$HOP_PORT
timeout = 500ms
[zone example.test]"
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	check "$tr: CNAME loop seen by apexd's chase: SERVFAIL + EDE naming the loop" \
		fq "${t[@]}" loop.example.test A --rcode SERVFAIL --ede-any --ede-text loop --max-ms 2500
done
check "the one-hop resolver was asked for both loop names" bash -c \
	"grep -q '^loop1.cdn.test A' '$HOP_LOG' && grep -q '^loop2.cdn.test A' '$HOP_LOG'"
stop_flat_apexd
check "run 4 stats: chase_failures >= 1" stat_is chase_failures -ge 1

# ---------------------------------------------------------------------
say "run 3: max-chain = 1, TTLs clamped to [20, 30]"
start_flat_apexd "$RESOLVER
[flatten]
max-chain = 1
min-ttl = 20s
max-ttl = 30s
[zone example.test]
cname = all"
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	check "$tr: chain of 3 CNAMEs with max-chain = 1: SERVFAIL + EDE" \
		fq "${t[@]}" chain.example.test A --rcode SERVFAIL --ede-any --max-ms 2500
	check "$tr: target TTL 300 clamped to max-ttl 30" fq "${t[@]}" moving.example.test A --flag AA --addrs 198.51.100.11 --ttl 30:30
	check "$tr: target TTL 2 raised to min-ttl 20" fq "${t[@]}" short.example.test A --flag AA --addrs 198.51.100.30 --ttl 20:20
	check "$tr: one hop is within max-chain = 1" fq "${t[@]}" example.test A --flag AA --addrs "$WWW_A" --ttl 20:30
done
stop_flat_apexd
check "run 3 stats: answers_flatten_failed >= 2" stat_is answers_flatten_failed -ge 2
finish
