#!/usr/bin/env bash
# Failover inside the deadline with the default timeouts: the first
# resolver swallows every query (a blackhole), the second (unbound)
# answers. [resolver] timeout (1500ms) equals [flatten] deadline (1500ms)
# by default, so each try's timer must be cut to a share of what is left
# of the deadline: the client gets the flattened answer from the second
# resolver, not SERVFAIL at the deadline. Over UDP and TCP.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

start_flat_backend
start_cdn
start_blackhole
start_unbound

# No timeout or deadline keys: the defaults are what is tested.
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$BLACKHOLE_PORT, 127.0.0.1:$UNBOUND_PORT
[zone example.test]"

# The bound is the deadline (1500ms) plus 300ms of slack for a loaded
# machine; an answer at the deadline would be the fallback (SERVFAIL).
check "udp: silent first resolver: the second's answer within the deadline" \
	fq example.test A --rcode NOERROR --flag AA --addrs "$WWW_A" --no-ede --max-ms 1800
check "tcp: silent first resolver: the second's answer within the deadline (AAAA)" \
	fq --tcp example.test AAAA --rcode NOERROR --flag AA --addrs "$WWW_AAAA" --no-ede --max-ms 1800
check "the silent resolver was asked first (twice: A and AAAA)" blackhole_wait 2
check "unbound answered the chases" test "$(unbound_count www.cdn.test A)" -ge 1
stop_flat_apexd
check "stats: resolver_timeouts >= 2" stat_is resolver_timeouts -ge 2
check "stats: answers_flatten_deadline = 0" stat_is answers_flatten_deadline -eq 0
check "stats: answers_flatten_failed = 0" stat_is answers_flatten_failed -eq 0
finish
