#!/usr/bin/env bash
# Pools (issue 17): several targets at one owner. Two CDN zones (cdn.test
# and cdn2.test, served by the CDN's BIND) hold the targets; the owners:
#   pool.example.test    two ANAME records: pa.cdn.test (A .101 .102, AAAA,
#                        TTL 60) and pb.cdn2.test (A .201 and .101 again,
#                        TTL 30, an HTTPS record, no AAAA)
#   apool.example.test   [alias] = pb.cdn2.test, pa.cdn.test (listed order)
#   mixed.example.test   ANAMEs: loop1.cdn.test (a CNAME loop: the chase
#                        fails) and pb.cdn2.test
#   mixslow.example.test ANAMEs: www.slow.test (its server never answers)
#                        and pb.cdn2.test
#   dead.example.test    ANAMEs: loop1.cdn.test and loop2.cdn.test (both fail)
#   bigpool.example.test ANAMEs: b40.cdn.test and b40.cdn2.test (40 A each)
#   stalepool.example.test ANAMEs: short.cdn.test (TTL 2) and
#                        mail.example.test (in BIND's own zone)
# With pool = union: the union of the addresses (deduplicated, at most
# 64), TTL = min over the targets used; a failed target adds nothing; all
# failed: SERVFAIL with an EDE; ANY over TCP and HTTPS at a pool. Then
# apexd again with pool = failover: the first target in pool order with
# addresses (canonical order for the ANAMEs: pa.cdn.test sorts before
# pb.cdn2.test; listed order for [alias]).
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../reloadlib.sh
source "$INT_DIR/reloadlib.sh"
need_real_apexd
need_flat_tools
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock

FLAT_ZONES=$T_DIR/zones-pools
mkdir -p "$FLAT_ZONES"
cp "$ZONES_DIR"/flat/* "$FLAT_ZONES/"
{
	echo ';; pools.sh: the first CDN.'
	printf 'pa\t60\tIN\tA\t198.51.100.101\n'
	printf 'pa\t60\tIN\tA\t198.51.100.102\n'
	printf 'pa\t60\tIN\tAAAA\t2001:db8:cd::101\n'
	for i in $(seq 1 40); do printf 'b40\t300\tIN\tA\t198.51.101.%d\n' "$i"; done
} >>"$FLAT_ZONES/cdn.test.zone"
{
	echo ';; pools.sh: the second CDN.'
	printf 'pb\t30\tIN\tA\t198.51.100.201\n'
	printf 'pb\t30\tIN\tA\t198.51.100.101\n'
	printf 'pb\t30\tIN\tHTTPS\t1 . alpn=h2\n'
	for i in $(seq 1 40); do printf 'b40\t300\tIN\tA\t198.51.102.%d\n' "$i"; done
} >>"$FLAT_ZONES/cdn2.test.zone"
FLAT_EXTRA_ANAMES="example.test.zone	pool	600	pb.cdn2.test.
example.test.zone	pool	600	pa.cdn.test.
example.test.zone	mixed	600	loop1.cdn.test.
example.test.zone	mixed	600	pb.cdn2.test.
example.test.zone	mixslow	600	www.slow.test.
example.test.zone	mixslow	600	pb.cdn2.test.
example.test.zone	dead	600	loop1.cdn.test.
example.test.zone	dead	600	loop2.cdn.test.
example.test.zone	bigpool	600	b40.cdn.test.
example.test.zone	bigpool	600	b40.cdn2.test.
example.test.zone	stalepool	600	short.cdn.test.
example.test.zone	stalepool	600	mail.example.test."

start_flat_backend
start_cdn
start_blackhole
start_unbound "" "slow.test=127.0.0.1@$BLACKHOLE_PORT"

POOL_UNION="198.51.100.101 198.51.100.102 198.51.100.201"
PA_A="198.51.100.101 198.51.100.102"
PB_A="198.51.100.101 198.51.100.201"

apexd_with() {
	start_flat_apexd "[server]
control = $SOCK
[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[flatten]
min-ttl = 1s
pool = $1
[zone example.test]
[alias]
apool.example.test = pb.cdn2.test, pa.cdn.test"
}
# count_a NAME: the A records in apexd's answer for NAME.
count_a() {
	local n
	n=$(dig @127.0.0.1 -p "$APEX_PORT" +time=3 +tries=1 +nocookie +norec +noall +answer "$1" A |
		awk '$4 == "A"' | wc -l)
	echo "$n A records"
	[[ $n -eq $2 ]]
}

say "--- pool = union"
apexd_with union
check "BIND holds two ANAMEs at pool (NODATA for A there)" \
	out_has "status: NOERROR" dig @127.0.0.1 -p "$NAMED_PORT" +norec pool.example.test A
check "ANAME pool, A: the union of both CDNs, deduplicated" \
	fq pool.example.test A --rcode NOERROR --flag AA --no-cname --addrs "$POOL_UNION"
check "ANAME pool, TTL = min over the targets (pb's 30)" \
	fq pool.example.test A --addrs "$POOL_UNION" --ttl 1:30
check "ANAME pool, AAAA: only pa has one (pb's NODATA adds nothing)" \
	fq pool.example.test AAAA --rcode NOERROR --addrs "2001:db8:cd::101"
check "ANAME pool again: answered from the caches alone, same union" \
	fq pool.example.test A --addrs "$POOL_UNION" --ttl 1:30
check "[alias] pool, A: the same union" \
	fq apool.example.test A --rcode NOERROR --flag AA --addrs "$POOL_UNION" --ttl 1:30
check "pool, HTTPS: the first target with an RRset (pb's)" \
	out_has "alpn=\"h2\"" dig @127.0.0.1 -p "$APEX_PORT" +norec +noall +answer pool.example.test HTTPS
check "pool, ANY over TCP: BIND's records plus the pool's A and AAAA" \
	fq pool.example.test ANY --tcp --rcode NOERROR --answer-types "A AAAA TYPE65401"
check "pool, ANY over TCP: the A records are the union" \
	out_has "198.51.100.201" dig @127.0.0.1 -p "$APEX_PORT" +tcp +norec +noall +answer pool.example.test ANY
check "pool, a query for the ANAME type: BIND's two records, relayed" \
	fq pool.example.test TYPE65401 --rcode NOERROR --answers 2
check "a failed target (CNAME loop) beside a live one: the live one's addresses" \
	fq mixed.example.test A --rcode NOERROR --addrs "$PB_A"
check "a target whose server never answers beside a live one: the live one's" \
	fq mixslow.example.test A --rcode NOERROR --addrs "$PB_A"
check "every target fails: SERVFAIL with an EDE" \
	fq dead.example.test A --rcode SERVFAIL --ede-any
check "80 addresses from two CDNs: capped at 64" count_a bigpool.example.test 64
check "explain shows the pool, its mode and each target" \
	out_has "pool: 2 targets, pool = union" ctl explain pool.example.test
check "explain lists pb.cdn2.test as a pool target" \
	out_has "pool target 2: target cache, pb.cdn2.test." ctl explain pool.example.test
check "explain of the [alias] pool" \
	out_has "source: [alias] apool.example.test. = pb.cdn2.test., pa.cdn.test." \
	ctl explain apool.example.test
stop_flat_apexd
check "some pool answers came from the caches alone" stat_is answers_flattened_direct -ge 2

say "--- pool = failover"
apexd_with failover
check "ANAME pool, failover: pa.cdn.test (first in canonical order) alone" \
	fq pool.example.test A --rcode NOERROR --addrs "$PA_A" --ttl 1:60
check "[alias] pool, failover: pb.cdn2.test (first as listed) alone" \
	fq apool.example.test A --rcode NOERROR --addrs "$PB_A" --ttl 1:30
check "failover past a failed first target (loop1 sorts first) to pb" \
	fq mixed.example.test A --rcode NOERROR --addrs "$PB_A"
check "failover, AAAA: pa has one" \
	fq pool.example.test AAAA --addrs "2001:db8:cd::101"
check "failover, all fail: SERVFAIL with an EDE" \
	fq dead.example.test A --rcode SERVFAIL --ede-any
check "explain says failover" out_has "pool = failover" ctl explain pool.example.test

say "--- a dead CDN: stale values"
check "stalepool: short.cdn.test first (canonical order), failover serves it" \
	fq stalepool.example.test A --rcode NOERROR --addrs 198.51.100.30
stop_pid "$CDN_PID"
sleep 3 # short.cdn.test's TTL of 2 s runs out; its chase now fails
check "failover: a failed first target's stale value yields to the live second" \
	fq stalepool.example.test A --rcode NOERROR --addrs 192.0.2.25 --no-ede
sed -i 's/^pool = failover$/pool = union/' "$T_DIR/apexd.ini"
check "SIGHUP: pool = union" hup_wait
check "union: the failed target's stale value is served too, with EDE 3" \
	fq stalepool.example.test A --rcode NOERROR --addrs "192.0.2.25 198.51.100.30" --ede 3
stop_flat_apexd
finish
