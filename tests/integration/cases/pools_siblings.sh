#!/usr/bin/env bash
# Pools with `siblings = update` (issue 17): the siblings apexd writes at
# a pool owner are the pool's answer, merged as queries get it. With the
# sibling cast (siblib.sh): a signed, dynamic primary for sib.test, the
# CDN's cdn.test with two targets (TTL 10):
#   s-pa.cdn.test  A 198.51.100.81 .82        AAAA 2001:db8:cd::81
#   s-pb.cdn.test  A 198.51.100.91 .81 (again)
# and the owners
#   pool.sib.test   two ANAME records, s-pb and s-pa
#   apool.sib.test  [alias] = s-pb.cdn.test, s-pa.cdn.test
# pool = union: the primary holds the union of the addresses at both,
# signed; the AAAA is s-pa's alone. A change at one CDN target reaches the
# merged siblings. explain names the pool.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
# shellcheck source=../siblib.sh
source "$INT_DIR/siblib.sh"
need_real_apexd
need_sib_tools

# The sibling zones plus this case's owners and targets.
mkdir -p "$T_DIR/zones-sib"
cp "$SIB_ZONES"/* "$T_DIR/zones-sib/"
SIB_ZONES=$T_DIR/zones-sib
cat >>"$SIB_ZONES/anames.list" <<EOF
pool	600	s-pb.cdn.test.
pool	600	s-pa.cdn.test.
EOF
cat >>"$SIB_ZONES/cdn.test.extra" <<EOF
s-pa	10	IN	A	198.51.100.81
s-pa	10	IN	A	198.51.100.82
s-pa	10	IN	AAAA	2001:db8:cd::81
s-pb	10	IN	A	198.51.100.91
s-pb	10	IN	A	198.51.100.81
EOF

check "TSIG keys made by tsig-keygen" sib_keys
start_sib_cdn
start_unbound
SIB_APEX_PORT=$(new_port)
start_sib_primary
SIB_MPORT=$(new_port)
# shellcheck disable=SC2034 # read by start_flat_apexd (flatlib.sh)
FLAT_APEX_PORT=$SIB_APEX_PORT
# shellcheck disable=SC2034
FLAT_WAIT_ZONE=sib.test
start_flat_apexd "$(sib_ini "$SIB_KEY")
[alias]
apool.sib.test = s-pb.cdn.test, s-pa.cdn.test"
P=$NAMED_PORT

# addrs_is PORT NAME TYPE WANT: the sorted addresses at PORT are WANT.
addrs_is() {
	local got
	got=$(dig @127.0.0.1 -p "$1" +norec +short +time=2 +tries=1 +nocookie "$2" "$3" | sort | tr '\n' ' ')
	got=${got% }
	echo "$2 $3 at $1: '$got', want '$4'"
	[[ $got == "$4" ]]
}
UNION="198.51.100.81 198.51.100.82 198.51.100.91"

check_within 25 "primary: the ANAME pool's siblings are the union" \
	addrs_is "$P" pool.sib.test A "$UNION"
check_within 5 "primary: the pool's AAAA sibling is s-pa's (s-pb has none)" \
	addrs_is "$P" pool.sib.test AAAA "2001:db8:cd::81"
check_within 5 "primary: the [alias] pool's siblings are the union" \
	addrs_is "$P" apool.sib.test A "$UNION"
check "primary: the pool's siblings are signed, TTL at most the targets' 10 s" \
	sq --server "127.0.0.1:$P" --do pool.sib.test A --signed --ttl "5:10" --addrs "$UNION"
check "apexd answers the pool owner with the same union" \
	fq pool.sib.test A --addrs "$UNION"
check "UPDATE at the CDN: s-pb's .91 becomes .92" \
	cdn_update "update delete s-pb.cdn.test. A 198.51.100.91" \
	"update add s-pb.cdn.test. $SIB_TTL A 198.51.100.92"
check_within 30 "primary: the change reaches the merged siblings" \
	addrs_is "$P" pool.sib.test A "198.51.100.81 198.51.100.82 198.51.100.92"
check "explain shows the sibling owner's pool" \
	sh -c "'$APEXCTL' -s '$SIB_SOCK' explain pool.sib.test | grep -q 'the rest of its pool'"
stop_flat_apexd
finish
