#!/usr/bin/env bash
# Flattening when the resolver is down ([flatten] deadline 1500ms,
# [resolver] timeout 500ms): SERVFAIL + EDE within the deadline for a
# fresh target, the sibling A at the owner, failover along the resolver
# list, serve-stale (EDE 3) after the resolver died, and SERVFAIL + EDE
# with serve-stale = 0. Over UDP and TCP.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

start_flat_backend
start_cdn
DEAD_PORT=$(new_port) # nothing listens there
FLATTEN="[flatten]
deadline = 1500ms
min-ttl = 1s"

# ---------------------------------------------------------------------
say "run 1: the only resolver is dead"
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$DEAD_PORT
timeout = 500ms
$FLATTEN
[zone example.test]"
check "udp: fresh target, no resolver: SERVFAIL + EDE 22/23 within deadline + 1 s" \
	fq down.example.test A --rcode SERVFAIL --ede 22 --ede 23 --max-ms 2500
check "tcp: fresh target, no resolver: SERVFAIL + EDE 22/23 within deadline + 1 s" \
	fq --tcp down2.example.test A --rcode SERVFAIL --ede 22 --ede 23 --max-ms 2500
check "udp: again (failure remembered): SERVFAIL + EDE within deadline + 1 s" \
	fq down.example.test A --rcode SERVFAIL --ede-any --max-ms 2500
check "udp: no resolver, sibling A at the owner: BIND's sibling" \
	fq dsib.example.test A --rcode NOERROR --flag AA --addrs 192.0.2.97 --max-ms 2500
check "tcp: no resolver, sibling A at the owner: BIND's sibling" \
	fq --tcp dsib.example.test A --rcode NOERROR --flag AA --addrs 192.0.2.97 --max-ms 2500
check "udp: no resolver, no sibling AAAA: SERVFAIL + EDE" \
	fq dsib.example.test AAAA --rcode SERVFAIL --ede-any --max-ms 2500
check "names outside the flattened set still pass (MX)" cmp_q --edns example.test MX --expect-min-answers 1
stop_flat_apexd
check "run 1 stats: answers_flatten_failed >= 3" stat_is answers_flatten_failed -ge 3
check "run 1 stats: answers_sibling >= 2" stat_is answers_sibling -ge 2
check "run 1 stats: chase_failures >= 2" stat_is chase_failures -ge 2
check "run 1 stats: answers_stale = 0" stat_is answers_stale -eq 0

# ---------------------------------------------------------------------
say "run 2: failover (dead, silent, unbound), then serve-stale"
start_blackhole
start_unbound
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$DEAD_PORT, 127.0.0.1:$BLACKHOLE_PORT, 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
$FLATTEN
[zone example.test]"
check "udp: failover past a dead and a silent resolver: right answer within deadline + 1 s" \
	fq example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --no-ede --max-ms 2500
check "tcp: failover: right answer (AAAA)" \
	fq --tcp example.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA" --no-ede --max-ms 2500
check "the silent resolver was asked first" blackhole_wait 1
check "unbound answered the chase" test "$(unbound_count www.cdn.test A)" -ge 1

check "udp: short-lived target while the resolver is up" fq short.example.test A --flag AA --addrs 198.51.100.30 --no-ede
check "tcp: short-lived target (AAAA) while the resolver is up" fq --tcp short.example.test AAAA --flag AA --addrs 2001:db8:cd::30 --no-ede
stop_unbound
sleep 3 # the target's TTL (2 s, min-ttl 1 s) runs out
check "udp: resolver gone, target expired: the old address with EDE 3 (stale)" \
	fq short.example.test A --rcode NOERROR --flag AA --addrs 198.51.100.30 --ede 3 --max-ms 2500
check "tcp: resolver gone, target expired: the old address with EDE 3 (stale)" \
	fq --tcp short.example.test AAAA --rcode NOERROR --flag AA --addrs 2001:db8:cd::30 --ede 3 --max-ms 2500
check "udp: stale again (failure remembered)" \
	fq short.example.test A --rcode NOERROR --addrs 198.51.100.30 --ede 3 --max-ms 2500
stop_flat_apexd
check "run 2 stats: answers_stale >= 3" stat_is answers_stale -ge 3

# ---------------------------------------------------------------------
say "run 3: serve-stale = 0"
start_unbound
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
$FLATTEN
serve-stale = 0
[zone example.test]"
check "udp: short-lived target while the resolver is up" fq short.example.test A --flag AA --addrs 198.51.100.30
check "tcp: short-lived target (AAAA) while the resolver is up" fq --tcp short.example.test AAAA --flag AA --addrs 2001:db8:cd::30
stop_unbound
sleep 3
check "udp: serve-stale = 0, resolver gone: SERVFAIL + EDE, no stale" \
	fq short.example.test A --rcode SERVFAIL --ede-any --max-ms 2500
check "tcp: serve-stale = 0, resolver gone: SERVFAIL + EDE, no stale" \
	fq --tcp short.example.test AAAA --rcode SERVFAIL --ede-any --max-ms 2500
stop_flat_apexd
check "run 3 stats: answers_stale = 0" stat_is answers_stale -eq 0
check "run 3 stats: answers_flatten_failed >= 2" stat_is answers_flatten_failed -ge 2
finish
