#!/usr/bin/env bash
# The SOA of a negative flattened answer is the owner zone's (RFC 2308 3:
# the SOA of the zone the owner is in), also when BIND followed the CNAME
# into another zone it serves and put that zone's SOA in authority. BIND
# 9.18 does that only when it offers recursion to the client (without,
# it stops at the zone's edge, which flatten_rules run 2 covers), so here
# it offers recursion to loopback and forwards to unbound.
# xz.example.test CNAME ns1.signed.test (A only), xznx.example.test
# CNAME gone.signed.test (no such name): with cname = all, AAAA at xz is
# NODATA after a chase through BIND, A at xznx is NODATA from BIND's own
# NXDOMAIN; both must carry example.test's SOA, not signed.test's.
# Functions run through `check` look unreachable to shellcheck (SC2317).
# shellcheck disable=SC2317,SC2119 source-path=SCRIPTDIR source=../lib.sh
source "$(dirname "$0")/../lib.sh"
# shellcheck source=../flatlib.sh
source "$INT_DIR/flatlib.sh"
need_real_apexd
need_flat_tools

start_cdn
start_unbound
FLAT_BACKEND_FORWARD="127.0.0.1 port $UNBOUND_PORT"
start_flat_backend

# bind_soa NAME TYPE ZONE: BIND's own answer carries ZONE's SOA, so the
# checks below would see the wrong one if apexd copied it.
bind_soa() {
	"$PY" - "$NAMED_PORT" "$1" "$2" "$3" <<'PY'
import sys, dns.message, dns.query, dns.rdatatype
port, name, rdtype, zone = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
r = dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=port, timeout=3)
print(r)
soas = [rr.name.to_text() for rr in r.authority if rr.rdtype == dns.rdatatype.SOA]
sys.exit(0 if soas == [zone] else 1)
PY
}
check "BIND follows xz into signed.test: its SOA in authority" bind_soa xz.example.test AAAA signed.test.
check "BIND follows xznx into signed.test: NXDOMAIN with its SOA" bind_soa xznx.example.test A signed.test.

start_flat_apexd "[resolver]
addresses = 127.0.0.1:$UNBOUND_PORT
timeout = 500ms
[flatten]
min-ttl = 5s
[zone example.test]
cname = all
[zone signed.test]"
for tr in udp tcp; do
	t=()
	[[ $tr == tcp ]] && t=(--tcp)
	check "$tr: xz A: flattened from BIND's chain across zones" \
		fq "${t[@]}" xz.example.test A --rcode NOERROR --flag AA --addrs 192.0.2.53 --no-cname
	check "$tr: xz AAAA (target without AAAA): NODATA with example.test's SOA" \
		fq "${t[@]}" xz.example.test AAAA --rcode NOERROR --flag AA --answers 0 --soa example.test
	check "$tr: xznx A (target NXDOMAIN in signed.test): NODATA with example.test's SOA" \
		fq "${t[@]}" xznx.example.test A --rcode NOERROR --flag AA --answers 0 --soa example.test
	check "$tr: the ANAME at the apex still flattens" \
		fq "${t[@]}" example.test A --rcode NOERROR --flag AA --addrs "$WWW_A"
	check "$tr: noaaaa AAAA (ANAME, NODATA at the target): example.test's SOA" \
		fq "${t[@]}" noaaaa.example.test AAAA --rcode NOERROR --flag AA --answers 0 --soa example.test
done
stop_flat_apexd
check "stats: answers_flattened_local >= 4 (xz A, xznx A; udp + tcp)" stat_is answers_flattened_local -ge 4
finish
