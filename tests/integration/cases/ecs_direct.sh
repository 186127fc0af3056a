#!/usr/bin/env bash
# [resolver] ecs = yes (RFC 7871, issue 15): the client's subnet goes to
# the resolver on the chase, the target cache keeps each answer under the
# scope it came back with, and the answer echoes the client's option.
#
# The resolver is geocdn.py itself, a CDN that routes by subnet: 192.0.2/24
# and 127.1.1/24, 127.1.2/24 get /24 answers, 198.51/16 a /16 one,
# 2001:db8:1::/48 and 2001:db8:2::/56 theirs, everyone else (and a query
# without the option) the default with a scope as long as the subnet sent.
# Its log says which queries reached it and with what subnet, so "served
# from the cache" is proved by the CDN seeing nothing new.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools
need curl
find_apexd
APEXCTL=${APEXCTL:-$(dirname "$APEXD")/apexctl}
[[ -x $APEXCTL ]] || skip_case "apexctl not found next to $APEXD (set APEXCTL)"
SOCK=$T_DIR/apexd.sock
PROMCHECK=("$PY" "$INT_DIR/promcheck.py")

# geoaname is an ANAME in BIND's zone (through BIND, like any ANAME); the
# others are [alias] owners. BIND logs its queries (does it see a subnet?).
FLAT_EXTRA_ANAMES="example.test.zone geoaname 300 www.geo.test."
FLAT_BACKEND_OPTIONS="querylog yes;"
start_flat_backend
start_geocdn --ttl 300
MPORT=$(new_port)
apexd_ini() {
	printf '%s\n' "[server]
control = $SOCK
[listen]
metrics = 127.0.0.1:$MPORT
[resolver]
addresses = 127.0.0.1:$GEO_PORT
timeout = 1s
ecs = $1
ecs-prefix = 24, 56
[flatten]
min-ttl = 1s
[cache]
answers = yes
[zone example.test]
[alias]
geo.example.test = www.geo.test
geocn.example.test = cn.geo.test
geoflat.example.test = flat.geo.test"
}
start_flat_apexd "$(apexd_ini yes)"
W=www.geo.test
rules=(--rcode NOERROR --flag AA --no-cname)

# --- IPv4 subnets the client names (ECS in its query) ----------------------
M=$(geo_mark)
check "192.0.2.77/32: the /24 answer, echoed with scope 24" \
	fq geo.example.test A --subnet 192.0.2.77/32 "${rules[@]}" --addrs 203.0.113.24 --echo-scope 24
check "the CDN got the subnet cut to ecs-prefix 24 (192.0.2.0/24), once" \
	geo_is 1 --since "$M" --name $W --type A --ecs 192.0.2.0/24
check "... and never the client's /32" geo_is 0 --since "$M" --ecs 192.0.2.77/32
M=$(geo_mark)
check "192.0.2.200/32, inside the answered /24: the same answer, scope 24" \
	fq geo.example.test A --subnet 192.0.2.200/32 "${rules[@]}" --addrs 203.0.113.24 --echo-scope 24
check "... from the cache: the CDN saw no new query" geo_is 0 --since "$M" --name $W
M=$(geo_mark)
check "198.51.100.0/24: the /16 answer, echoed with scope 16" \
	fq geo.example.test A --subnet 198.51.100.0/24 "${rules[@]}" --addrs 203.0.113.16 --echo-scope 16
check "the CDN got 198.51.100.0/24" geo_is 1 --since "$M" --name $W --type A --ecs 198.51.100.0/24
M=$(geo_mark)
check "198.51.7.0/24, another /24 inside the answered /16: the /16 answer" \
	fq geo.example.test A --subnet 198.51.7.0/24 "${rules[@]}" --addrs 203.0.113.16 --echo-scope 16
check "... from the cache: the CDN saw no new query" geo_is 0 --since "$M" --name $W
check "over TCP, 198.51.200.0/24: the /16 answer from the cache" \
	fq geo.example.test A --tcp --subnet 198.51.200.0/24 "${rules[@]}" --addrs 203.0.113.16 --echo-scope 16
check "... still no new query" geo_is 0 --since "$M" --name $W
M=$(geo_mark)
check "10.64.0.0/10, shorter than ecs-prefix: the default answer, scope 10" \
	fq geo.example.test A --subnet 10.64.0.0/10 "${rules[@]}" --addrs 203.0.113.100 --echo-scope 10
check "the CDN got 10.64.0.0/10 as the client sent it" \
	geo_is 1 --since "$M" --name $W --type A --ecs 10.64.0.0/10
M=$(geo_mark)
check "192.0.3.0/24, next to the answered 192.0.2.0/24: not its answer" \
	fq geo.example.test A --subnet 192.0.3.9/32 "${rules[@]}" --addrs 203.0.113.100 --echo-scope 24
check "the CDN was asked for 192.0.3.0/24" geo_is 1 --since "$M" --name $W --ecs 192.0.3.0/24
dig_subnet() {
	local out
	out=$(dig_at "$APEX_PORT" +subnet=192.0.2.5/24 geo.example.test A)
	echo "$out"
	grep -q 'CLIENT-SUBNET: 192.0.2.0/24/24' <<<"$out" &&
		grep -qE '^geo\.example\.test\..*IN[[:space:]]+A[[:space:]]+203\.0\.113\.24$' <<<"$out"
}
check "dig +subnet=192.0.2.5/24: the /24 answer, CLIENT-SUBNET 192.0.2.0/24/24" dig_subnet

# --- IPv4 clients by their own address (no ECS): distinct /24s of 127/8 ----
M=$(geo_mark)
check "client 127.1.1.5: its /24's answer, no ECS in the answer" \
	fq geo.example.test A --source 127.1.1.5 "${rules[@]}" --addrs 203.0.113.11 --no-echo
check "the CDN got the client's address cut to /24 (127.1.1.0/24)" \
	geo_is 1 --since "$M" --name $W --type A --ecs 127.1.1.0/24
M=$(geo_mark)
check "client 127.1.1.200 (same /24): the same answer" \
	fq geo.example.test A --source 127.1.1.200 "${rules[@]}" --addrs 203.0.113.11 --no-echo
check "... from the cache: the CDN saw no new query" geo_is 0 --since "$M" --name $W
M=$(geo_mark)
dig_from() {
	local out
	out=$(dig_at "$APEX_PORT" -b "$1" +short geo.example.test A)
	echo "$out"
	[[ $out == "$2" ]]
}
check "dig -b 127.1.2.5: 127.1.2.0/24's answer" dig_from 127.1.2.5 203.0.113.12
check "the CDN got 127.1.2.0/24" geo_is 1 --since "$M" --name $W --type A --ecs 127.1.2.0/24
M=$(geo_mark)
check "dig -b 127.9.9.9: the default answer" dig_from 127.9.9.9 203.0.113.100
check "the CDN got 127.9.9.0/24" geo_is 1 --since "$M" --name $W --type A --ecs 127.9.9.0/24

# --- IPv6 -------------------------------------------------------------------
M=$(geo_mark)
check "2001:db8:1:ab00::/64: the /48 answer, echoed with scope 48" \
	fq geo.example.test AAAA --subnet 2001:db8:1:ab00::/64 "${rules[@]}" --addrs 2001:db8:cd::48 --echo-scope 48
check "the CDN got the subnet cut to ecs-prefix 56" \
	geo_is 1 --since "$M" --name $W --type AAAA --ecs 2001:db8:1:ab00::/56
M=$(geo_mark)
check "2001:db8:1:ff00::/56, inside the answered /48: the /48 answer" \
	fq geo.example.test AAAA --subnet 2001:db8:1:ff00::/56 "${rules[@]}" --addrs 2001:db8:cd::48 --echo-scope 48
check "... from the cache: the CDN saw no new query" geo_is 0 --since "$M" --name $W
M=$(geo_mark)
check "2001:db8:2::/56: its /56 answer" \
	fq geo.example.test AAAA --subnet 2001:db8:2::/56 "${rules[@]}" --addrs 2001:db8:cd::56 --echo-scope 56
check "2001:db8:2:100::/56, the next /56: not that answer" \
	fq geo.example.test AAAA --subnet 2001:db8:2:100::/56 "${rules[@]}" --addrs 2001:db8:cd::100 --echo-scope 56
check "the CDN was asked for each /56 once" geo_is 2 --since "$M" --name $W --type AAAA
M=$(geo_mark)
check "an IPv6 subnet asking A: the /48's A" \
	fq geo.example.test A --subnet 2001:db8:1:5::/64 "${rules[@]}" --addrs 203.0.113.48 --echo-scope 48
check "the CDN got an A query with 2001:db8:1::/56" \
	geo_is 1 --since "$M" --name $W --type A --ecs 2001:db8:1::/56
if [[ $HAVE_V6 -eq 1 ]]; then
	M=$(geo_mark)
	check "client ::1 by its address: the default AAAA, no ECS in the answer" \
		fq geo.example.test AAAA --server "[::1]:$APEX_PORT" "${rules[@]}" --addrs 2001:db8:cd::100 --no-echo
	check "the CDN got ::/56" geo_is 1 --since "$M" --name $W --type AAAA --ecs ::/56
fi

# --- opt-out (source prefix 0) ----------------------------------------------
M=$(geo_mark)
check "0.0.0.0/0 (opt-out) from 127.1.1.5: the default answer, scope 0" \
	fq geo.example.test A --source 127.1.1.5 --subnet 0.0.0.0/0 "${rules[@]}" --addrs 203.0.113.100 --echo-scope 0
check "the CDN got the chase without any subnet" geo_is 1 --since "$M" --name $W --type A --no-ecs
check "... and nothing with one" geo_is 0 --since "$M" --with-ecs
M=$(geo_mark)
check "opt-out again from 127.1.2.5: the opt-out entry, not 127.1.2.0/24's" \
	fq geo.example.test A --source 127.1.2.5 --subnet 0.0.0.0/0 "${rules[@]}" --addrs 203.0.113.100 --echo-scope 0
check "... from the cache: the CDN saw no new query" geo_is 0 --since "$M" --name $W
check "::/0 asking AAAA: the default AAAA, scope 0" \
	fq geo.example.test AAAA --subnet ::/0 "${rules[@]}" --addrs 2001:db8:cd::100 --echo-scope 0
check "the CDN got the AAAA chase without a subnet" geo_is 1 --since "$M" --name $W --type AAAA --no-ecs

# --- malformed client options: FORMERR, nothing chased ------------------------
M=$(geo_mark)
formerr() { fq geo.example.test A --ecs-raw "$1" --rcode FORMERR; }
check "ECS family 3: FORMERR" formerr 00031800c00002
check "ECS IPv4 source 33: FORMERR" formerr 00012100c000020100
check "ECS address bits set past the source: FORMERR" formerr 00011400c00003
check "ECS with a scope in a query: FORMERR" formerr 00011818c00002
check "ECS address longer than its source: FORMERR" formerr 00011000c0000200
check "ECS shorter than its 4 fixed octets: FORMERR" formerr 0001
check "the CDN saw none of them" geo_is 0 --since "$M"

# --- more owners and answers ----------------------------------------------------
M=$(geo_mark)
check "a CNAME chain inside the CDN's zone (cn -> www): the /24 answer" \
	fq geocn.example.test A --subnet 192.0.2.1/24 "${rules[@]}" --addrs 203.0.113.24 --echo-scope 24
check "the CDN got cn.geo.test with 192.0.2.0/24" geo_is 1 --since "$M" --name cn.geo.test --ecs 192.0.2.0/24
M=$(geo_mark)
check "a CDN answer with scope 0 for 192.0.2.0/24: echoed with scope 0" \
	fq geoflat.example.test A --subnet 192.0.2.1/24 "${rules[@]}" --addrs 203.0.113.200 --echo-scope 0
check "... and shared: 198.51.1.0/24 gets it from the cache" \
	fq geoflat.example.test A --subnet 198.51.1.0/24 "${rules[@]}" --addrs 203.0.113.200 --echo-scope 0
check "... client 127.1.2.5 too" fq geoflat.example.test A --source 127.1.2.5 "${rules[@]}" --addrs 203.0.113.200 --no-echo
check "the CDN was asked for flat.geo.test once" geo_is 1 --since "$M" --name flat.geo.test
M=$(geo_mark)
check "an ANAME owner in BIND's zone, 198.51.3.0/24: the cached /16 answer" \
	fq geoaname.example.test A --subnet 198.51.3.0/24 "${rules[@]}" --addrs 203.0.113.16 --echo-scope 16
check "... 192.0.2.9/32: the cached /24 answer" \
	fq geoaname.example.test A --subnet 192.0.2.9/32 "${rules[@]}" --addrs 203.0.113.24 --echo-scope 24
check "the CDN saw no new query" geo_is 0 --since "$M"

# BIND gets the client's query as it came, and apexd's own queries to
# BIND carry no subnet. Its query log shows an ECS option as "[ECS ...]".
bind_lines() { wc -l <"$T_DIR/named.log"; }
B=$(bind_lines)
M=$(geo_mark)
check "geoaname AAAA from 127.1.2.5 (no ECS): 127.1.2.0/24's AAAA" \
	fq geoaname.example.test AAAA --source 127.1.2.5 "${rules[@]}" --addrs 2001:db8:cd::12 --no-echo
sleep 0.3
check "the CDN got 127.1.2.0/24 for it" geo_is 1 --since "$M" --name $W --type AAAA --ecs 127.1.2.0/24
# bind_since MARK: BIND's query log lines after MARK (a count of them).
bind_since() { tail -n +"$(($1 + 1))" "$T_DIR/named.log" | grep 'query:' || true; }
bind_no_ecs() {
	local lines n e
	lines=$(bind_since "$1")
	echo "$lines"
	n=$(grep -c 'query: geoaname' <<<"$lines" || true)
	e=$(grep -c 'ECS' <<<"$lines" || true)
	echo "BIND: $n queries for geoaname, $e with ECS"
	[[ $n -ge 1 && $e -eq 0 ]]
}
check "BIND was asked about geoaname and saw no subnet at all" bind_no_ecs "$B"
B=$(bind_lines)
check "geoaname AAAA with 2001:db8:1::/48: the /48 answer" \
	fq geoaname.example.test AAAA --subnet 2001:db8:1::/48 --do "${rules[@]}" --addrs 2001:db8:cd::48 --echo-scope 48
sleep 0.3
bind_saw_ecs() { bind_since "$1" | grep 'query: geoaname' | grep -F "$2"; }
check "BIND got the client's option as the client sent it (DO=1 goes to BIND)" \
	bind_saw_ecs "$B" '[ECS 2001:db8:1::/48/0]'

# --- the answer cache ([cache] answers = yes) never crosses subnets ----------
round() {
	fq geo.example.test A --source 127.1.1.5 --addrs 203.0.113.11 &&
		fq geo.example.test A --source 127.1.2.5 --addrs 203.0.113.12 &&
		fq geo.example.test A --subnet 192.0.2.1/32 --addrs 203.0.113.24 &&
		fq geo.example.test A --subnet 198.51.1.1/32 --addrs 203.0.113.16 &&
		fq geo.example.test A --source 127.9.9.9 --addrs 203.0.113.100 &&
		fq geo.example.test A --source 127.1.1.6 --subnet 0.0.0.0/0 --addrs 203.0.113.100
}
rounds() { round && round && round; }
check "answers for 6 clients in turn, three rounds: each its own subnet's" rounds

check "every subnet the CDN got was in RFC 7871's strict form" "${GEOLOG[@]}" "$GEO_LOG" canonical

# --- apexctl explain NAME TYPE SUBNET ------------------------------------------
check "explain 192.0.2.1: the 192.0.2.0/24 entry" \
	out_has "scope: 192.0.2.0/24 answers this client" ctl explain geo.example.test A 192.0.2.1
check "explain 198.51.200.1: the 198.51.0.0/16 entry" \
	out_has "scope: 198.51.0.0/16 answers this client" ctl explain geo.example.test A 198.51.200.1
check "explain 2001:db8:1:77::1 AAAA: the 2001:db8:1::/48 entry" \
	out_has "scope: 2001:db8:1::/48 answers this client" ctl explain geo.example.test AAAA 2001:db8:1:77::1
check "explain 203.0.113.9: no entry covers 203.0.113.0/24" \
	out_has "scope: no entry covers 203.0.113.0/24" ctl explain geo.example.test A 203.0.113.9
check "explain with the subnet cut: 192.0.2.1/32 sent as 192.0.2.0/24" \
	out_has "sent to the resolver as 192.0.2.0/24" ctl explain geo.example.test A 192.0.2.1/32
check "explain geoflat: the /0 entry every client shares" \
	out_has "scope: /0, the entry every client shares" ctl explain geoflat.example.test A 10.1.1.1

# --- metrics -----------------------------------------------------------------
METRICS=$T_DIR/metrics.txt
check "GET /metrics" curl -sf --max-time 5 "http://127.0.0.1:$MPORT/metrics" -o "$METRICS"
# mval NAME OP VALUE: the metric compared with test(1)'s OP.
mval() {
	local v
	v=$("${PROMCHECK[@]}" value "$METRICS" "$1")
	echo "$1 = ${v:-missing} (want $2 $3)"
	[[ -n $v ]] && test "$v" "$2" "$3"
}
check "well-formed Prometheus text" "${PROMCHECK[@]}" check "$METRICS" --prefix apexd_
check "apexd_cache_scoped_entries counts the scopes kept" mval apexd_cache_scoped_entries -ge 12
check "apexd_cache_scope_evictions_total is there, 0" mval apexd_cache_scope_evictions_total -eq 0
stop_flat_apexd

# --- ecs = no: the CDN sees no subnet at all --------------------------------
start_flat_apexd "$(apexd_ini no)"
M=$(geo_mark)
check "ecs = no, 192.0.2.0/24: the default answer (no subnet sent)" \
	fq geo.example.test A --subnet 192.0.2.1/24 "${rules[@]}" --addrs 203.0.113.100 --no-echo
check "ecs = no, client 127.1.1.5: the default answer" \
	fq geo.example.test A --source 127.1.1.5 "${rules[@]}" --addrs 203.0.113.100
check "ecs = no, 2001:db8:1::/48 asking AAAA: the default AAAA" \
	fq geo.example.test AAAA --subnet 2001:db8:1::/48 "${rules[@]}" --addrs 2001:db8:cd::100 --no-echo
check "ecs = no, geocn: the default answer" fq geocn.example.test A --subnet 198.51.1.0/24 "${rules[@]}" --addrs 203.0.113.100
geo_atleast() {
	local n
	n=$(geo_count --since "$2")
	echo "geocdn saw $n queries since the mark"
	[[ $n -ge $1 ]]
}
check "the CDN was asked (A, AAAA, cn)" geo_atleast 3 "$M"
check "... and not one query carried a subnet" geo_is 0 --since "$M" --with-ecs
check "explain with a SUBNET says none is sent" \
	out_has "client subnet: not sent, [resolver] ecs = no" ctl explain geo.example.test A 192.0.2.1
stop_flat_apexd
finish
