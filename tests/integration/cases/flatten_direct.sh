#!/usr/bin/env bash
# Answers straight from the caches: once an owner is known to hold an
# ANAME (or is an [alias] owner) and its target's addresses are cached, a
# plain A/AAAA query is answered without asking BIND. Queries that want
# BIND's own reply still go to BIND: DO=1 (signed zones are relayed), an
# EDNS client subnet, and a NODATA (its SOA comes from BIND).
# The counter answers_flattened_direct must count exactly the queries
# below that qualify, and every answer must follow the answer rules.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

start_flat_backend
start_cdn
start_unbound
start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 1s
[flatten]
min-ttl = 5s
[zone example.test]
[alias]
alias-owner.example.test = www.cdn.test"

rules=(--rcode NOERROR --flag AA --no-cname)
# Cold: the probe learns the ANAME, the chase fills the target cache.
check "cold apex A (through BIND)" fq example.test A "${rules[@]}" --addrs "$WWW_A" --ttl 5:45
# 1-2: warm, with and without EDNS.
check "warm apex A: answered from the caches" fq example.test A "${rules[@]}" --addrs "$WWW_A" --ttl 5:45 --no-ede
check "warm apex A without EDNS" fq example.test A --no-edns "${rules[@]}" --addrs "$WWW_A" --ttl 5:45
# DO=1 needs BIND's answer (is the zone signed?): not direct.
check "DO=1 goes through BIND, still flattened (unsigned zone)" fq example.test A --do "${rules[@]}" --addrs "$WWW_A"
# 3: TCP is no different.
check "warm apex A over TCP" fq example.test A --tcp "${rules[@]}" --addrs "$WWW_A" --ttl 5:45
# 4: the owner spelled as the client spelled it.
check "mixed case owner kept as asked" fq ExAmPlE.TeSt A "${rules[@]}" --addrs "$WWW_A"
# 5: an [alias] owner whose target is already cached: direct at once.
check "[alias] owner with a cached target" fq alias-owner.example.test A "${rules[@]}" --addrs "$WWW_A"
# 6: a cookie (dig's default) changes nothing: a flattened answer never
# echoes options, through BIND or not.
cookie_ok() {
	local out
	out=$(dig_at "$APEX_PORT" +cookie example.test A 2>&1)
	echo "$out" | grep -E 'status|flags|^example' || true
	grep -q 'status: NOERROR' <<<"$out" && grep -q 'flags: qr aa' <<<"$out" &&
		[[ $(grep -cE "^example\.test\..*IN[[:space:]]+A[[:space:]]+198\.51\.100\.[12]$" <<<"$out") -eq 2 ]]
}
check "a query with a cookie: the flattened A" cookie_ok
# A client subnet option may change the answer: through BIND.
check "a query with a client subnet goes through BIND, flattened" fq example.test A --subnet 192.0.2.0/24 "${rules[@]}" --addrs "$WWW_A"
# NODATA needs the zone's SOA from BIND's answer: not direct, ever.
check "NODATA (cold)" fq noaaaa.example.test AAAA --rcode NOERROR --flag AA --answers 0 --soa example.test
check "NODATA (warm) still carries the SOA" fq noaaaa.example.test AAAA --rcode NOERROR --flag AA --answers 0 --soa example.test

stop_flat_apexd
check "exactly the 6 qualifying queries were answered without BIND" stat_is answers_flattened_direct -eq 6
check "every apex/alias query was flattened" stat_is answers_flattened -ge 9
finish
