#!/usr/bin/env bash
# Refresh ahead (issue 15): a target asked steadily never makes a client
# wait for the CDN after the first query, even when the CDN is slow. The
# target cache asks for a refresh once an entry has less left than a
# chase may take ([flatten] deadline, at most half the TTL), not only in
# the last 10% of its TTL: with a TTL of 6 s and a CDN that takes 1.2 s,
# a refresh started in the last 0.6 s ends after the entry expired, and
# the queries meanwhile wait on it.
#
# What decides, without any client-side clock:
#   - the CDN's own log (geocdn.py --delay): each refresh of a target
#     reached the CDN and was answered before the answer it replaces
#     expired (its TTL counted from when the CDN sent it);
#   - apexd's counters: after the two cold queries no lookup missed
#     (cache_misses) or waited on a chase (cache_coalesced), and no answer
#     was stale or cut by the deadline; the refreshes are prefetches.
# The trickle's latencies are printed, never judged (bench/refresh.sh
# measures them). With the last-10% rule alone, or with no prefetch, the
# CDN log shows refreshes answered after expiry and cache_coalesced or
# cache_misses grow: the case fails.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

TTL=6
DELAY=1.2
start_flat_backend
start_geocdn --ttl "$TTL" --delay "$DELAY"
# Both kinds of entry: www.geo.test is kept under the client's /24 scope
# (ecs = yes, clients from 127.1.1.0/24), flat.geo.test under /0.
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$GEO_PORT
timeout = 2s
ecs = yes
[flatten]
min-ttl = 1s
deadline = 3s
[zone example.test]
[alias]
geo.example.test = www.geo.test
geoflat.example.test = flat.geo.test"

TRICKLE=("$PY" "$INT_DIR/trickle.py")
M=$(geo_mark)
check "cold: geo.example.test from 127.1.1.5 (waits for the CDN once)" \
	fq geo.example.test A --source 127.1.1.5 --timeout 5 --rcode NOERROR --addrs 203.0.113.11
check "cold: geoflat.example.test (waits for the CDN once)" \
	fq geoflat.example.test A --source 127.1.1.5 --timeout 5 --rcode NOERROR --addrs 203.0.113.200
# Three TTLs and then some: at least three refreshes of each target.
check "a trickle of 6 queries a second per name for 20 s: every answer right, none lost" \
	"${TRICKLE[@]}" --server "127.0.0.1:$APEX_PORT" --rate 6 --duration 20 --timeout 5 \
	--slow-ms 600 --json "$T_DIR/trickle.json" \
	--spec "geo.example.test,A,203.0.113.11,127.1.1.5" \
	--spec "geoflat.example.test,A,203.0.113.200,127.1.1.6"
say "trickle: $(grep -o '"max": [0-9.]*' "$T_DIR/trickle.json" | tr '\n' ' ')(ms, not judged)"
refreshed() { "${GEOLOG[@]}" "$GEO_LOG" refresh --since "$M" --ttl "$TTL" --min 3 --name "$1" --type A; }
check "www.geo.test: every refresh answered by the CDN before the previous answer expired" \
	refreshed www.geo.test
check "flat.geo.test: likewise" refreshed flat.geo.test
all_scoped() {
	local n k
	n=$(geo_count --since "$M" --name www.geo.test)
	k=$(geo_count --since "$M" --name www.geo.test --ecs 127.1.1.0/24)
	echo "$n queries for www.geo.test, $k with 127.1.1.0/24"
	[[ $n -eq $k ]]
}
check "the CDN got www.geo.test with the client's /24 every time" all_scoped
stop_flat_apexd
check "no lookup missed after the two cold ones" stat_is cache_misses -eq 2
check "no lookup waited on a chase" stat_is cache_coalesced -eq 0
check "the refreshes were prefetches (at least 3 per name)" stat_is prefetches -ge 6
check "no answer was stale" stat_is answers_stale -eq 0
check "no answer hit the deadline" stat_is answers_flatten_deadline -eq 0
finish
