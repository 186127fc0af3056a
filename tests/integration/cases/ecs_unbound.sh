#!/usr/bin/env bash
# [resolver] ecs = yes through a real Unbound with its subnet module
# (issue 15): apexd sends the client's subnet to Unbound, Unbound
# (module-config "subnetcache validator iterator", send-client-subnet for
# the CDN's address) passes it on to geocdn.py, the CDN's authoritative
# server (a stub zone), and hands the scope back; apexd keeps the answer
# under that scope. Proved by the CDN's log (which subnet reached it) and
# Unbound's (which queries apexd sent): a client inside an answered scope
# costs neither a query.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

start_flat_backend
start_geocdn --ttl 300
UNBOUND_MODULES="subnetcache validator iterator"
UNBOUND_WAIT_ZONE=geo.test
# The CDN is on 127.0.0.1: Unbound sends it subnets (and to no one else).
# always-forward: a client's own option goes on as it came (apexd already
# cut it to ecs-prefix).
UNBOUND_EXTRA="send-client-subnet: 127.0.0.1
client-subnet-always-forward: yes
max-client-subnet-ipv4: 24
max-client-subnet-ipv6: 56"
start_unbound "" "geo.test=127.0.0.1@$GEO_PORT"
apexd_ini() {
	printf '%s\n' "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
ecs = yes
ecs-prefix = 24, 56
[flatten]
min-ttl = 1s
[zone example.test]
[alias]
geo.example.test = www.geo.test
geocn.example.test = cn.geo.test"
}
start_flat_apexd "$(apexd_ini)"
W=www.geo.test
rules=(--rcode NOERROR --flag AA --no-cname)

# ub_is N NAME TYPE SINCE: Unbound logged N queries for NAME TYPE since
# the mark (a count of its log lines).
ub_mark() { wc -l <"$UNBOUND_LOG"; }
ub_is() {
	local want=$1 name=$2 type=$3 since=$4 n
	n=$(tail -n +"$((since + 1))" "$UNBOUND_LOG" | grep -ciE "info: [0-9.]+ ${name//./\\.}\. $type IN\$" || true)
	echo "unbound got $n queries for $name $type (want $want)"
	[[ $n -eq $want ]]
}

M=$(geo_mark)
U=$(ub_mark)
check "192.0.2.77/32 through Unbound: the /24 answer, scope 24 (Unbound's)" \
	fq geo.example.test A --subnet 192.0.2.77/32 "${rules[@]}" --addrs 203.0.113.24 --echo-scope 24
check "apexd asked Unbound once" ub_is 1 $W A "$U"
check "the CDN got 192.0.2.0/24 from Unbound" geo_is 1 --since "$M" --name $W --type A --ecs 192.0.2.0/24
M=$(geo_mark)
U=$(ub_mark)
check "192.0.2.200/32, inside the /24: the same answer" \
	fq geo.example.test A --subnet 192.0.2.200/32 "${rules[@]}" --addrs 203.0.113.24 --echo-scope 24
check "... from apexd's cache: Unbound got no query" ub_is 0 $W A "$U"
check "... nor the CDN" geo_is 0 --since "$M" --name $W
M=$(geo_mark)
check "198.51.100.0/24: the /16 answer, scope 16" \
	fq geo.example.test A --subnet 198.51.100.0/24 "${rules[@]}" --addrs 203.0.113.16 --echo-scope 16
check "the CDN got 198.51.100.0/24" geo_is 1 --since "$M" --name $W --type A --ecs 198.51.100.0/24
M=$(geo_mark)
U=$(ub_mark)
check "198.51.7.0/24, inside the /16: from apexd's cache" \
	fq geo.example.test A --subnet 198.51.7.0/24 "${rules[@]}" --addrs 203.0.113.16 --echo-scope 16
check "Unbound got no query" ub_is 0 $W A "$U"
check "... nor the CDN" geo_is 0 --since "$M" --name $W

M=$(geo_mark)
check "client 127.1.1.5 by its address: its /24's answer, no ECS echoed" \
	fq geo.example.test A --source 127.1.1.5 "${rules[@]}" --addrs 203.0.113.11 --no-echo
check "the CDN got 127.1.1.0/24 (not Unbound's own 127.0.0.1)" \
	geo_is 1 --since "$M" --name $W --type A --ecs 127.1.1.0/24
M=$(geo_mark)
check "client 127.1.2.5: its /24's answer" \
	fq geo.example.test A --source 127.1.2.5 "${rules[@]}" --addrs 203.0.113.12 --no-echo
check "the CDN got 127.1.2.0/24" geo_is 1 --since "$M" --name $W --type A --ecs 127.1.2.0/24
M=$(geo_mark)
U=$(ub_mark)
check "client 127.1.1.99: 127.1.1.0/24's answer from apexd's cache" \
	fq geo.example.test A --source 127.1.1.99 "${rules[@]}" --addrs 203.0.113.11
check "Unbound got no query" ub_is 0 $W A "$U"

M=$(geo_mark)
check "2001:db8:1:ab00::/64 AAAA: the /48 answer, scope 48" \
	fq geo.example.test AAAA --subnet 2001:db8:1:ab00::/64 "${rules[@]}" --addrs 2001:db8:cd::48 --echo-scope 48
check "the CDN got 2001:db8:1:ab00::/56" geo_is 1 --since "$M" --name $W --type AAAA --ecs 2001:db8:1:ab00::/56
M=$(geo_mark)
U=$(ub_mark)
check "2001:db8:1:ff00::/56, inside the /48: from apexd's cache" \
	fq geo.example.test AAAA --subnet 2001:db8:1:ff00::/56 "${rules[@]}" --addrs 2001:db8:cd::48 --echo-scope 48
check "Unbound got no query" ub_is 0 $W AAAA "$U"
M=$(geo_mark)
check "2001:db8:2:100::/56: the default AAAA, not a neighbour's" \
	fq geo.example.test AAAA --subnet 2001:db8:2:100::/56 "${rules[@]}" --addrs 2001:db8:cd::100 --echo-scope 56
check "the CDN got 2001:db8:2:100::/56" geo_is 1 --since "$M" --name $W --type AAAA --ecs 2001:db8:2:100::/56

M=$(geo_mark)
check "a CNAME chain at the CDN (cn -> www), 192.0.2.1/24: the /24 answer" \
	fq geocn.example.test A --subnet 192.0.2.1/24 "${rules[@]}" --addrs 203.0.113.24 --echo-scope 24
check "the CDN got cn.geo.test with 192.0.2.0/24" geo_is 1 --since "$M" --name cn.geo.test --ecs 192.0.2.0/24

# Opt-out: apexd sends Unbound no subnet; Unbound may then send its own
# querier's (apexd's, 127.0.0.0/24), never the client's.
M=$(geo_mark)
check "0.0.0.0/0 from 127.1.2.5 (opt-out): the default answer, scope 0" \
	fq geo.example.test A --source 127.1.2.5 --subnet 0.0.0.0/0 "${rules[@]}" --addrs 203.0.113.100 --echo-scope 0
check "the client's address never reached the CDN" geo_is 0 --since "$M" --ecs 127.1.2.0/24
optout_sent() {
	local n m k
	n=$(geo_count --since "$1" --name "$W")
	m=$(geo_count --since "$1" --name "$W" --no-ecs)
	k=$(geo_count --since "$1" --name "$W" --ecs 127.0.0.0/24)
	echo "$n queries: $m without ECS, $k with 127.0.0.0/24"
	geo_show --since "$1"
	[[ $n -eq 1 && $((m + k)) -eq 1 ]]
}
check "... the query that did carried at most 127.0.0.0/24" optout_sent "$M"

check "every subnet the CDN got was in RFC 7871's strict form" "${GEOLOG[@]}" "$GEO_LOG" canonical
stop_flat_apexd

# Unbound keeps answers by scope too: a new apexd (empty caches) asking for
# a client inside the /16 it already has is answered by Unbound alone.
start_flat_apexd "$(apexd_ini)"
M=$(geo_mark)
U=$(ub_mark)
check "new apexd, 198.51.9.0/24: the /16 answer, scope 16" \
	fq geo.example.test A --subnet 198.51.9.0/24 "${rules[@]}" --addrs 203.0.113.16 --echo-scope 16
check "apexd asked Unbound" ub_is 1 $W A "$U"
check "Unbound answered from its subnet cache: the CDN saw no query" geo_is 0 --since "$M" --name $W
M=$(geo_mark)
check "new apexd, 192.0.3.0/24 (no scope covers it): the default answer" \
	fq geo.example.test A --subnet 192.0.3.1/24 "${rules[@]}" --addrs 203.0.113.100 --echo-scope 24
check "the CDN got 192.0.3.0/24" geo_is 1 --since "$M" --name $W --ecs 192.0.3.0/24
stop_flat_apexd
finish
